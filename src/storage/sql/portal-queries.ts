import type { Instant } from '../../domain/time/instant.js';
import type {
  PortalReadOperations,
  PortalScope,
  PortalSessionRecord,
  PortalWriteOperations,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';

const COLUMNS = `id, workspace_id, customer_id, scope, code_hash, code_expires_at, code_used_at, session_hash,
  session_expires_at, revoked_at, created_at`;

/** SQL of portal sessions (both dialects). */
export const PQ = {
  insert: `INSERT INTO portal_sessions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  get: `SELECT ${COLUMNS} FROM portal_sessions WHERE workspace_id = ? AND id = ?`,
  byCode: `SELECT ${COLUMNS} FROM portal_sessions WHERE code_hash = ?`,
  bySession: `SELECT ${COLUMNS} FROM portal_sessions WHERE session_hash = ?`,
  redeem: `UPDATE portal_sessions SET code_used_at = ?, session_hash = ?, session_expires_at = ?
     WHERE id = ? AND code_used_at IS NULL AND revoked_at IS NULL AND code_expires_at > ?`,
  refresh: `UPDATE portal_sessions SET session_hash = ?, session_expires_at = ?
     WHERE id = ? AND session_hash = ? AND revoked_at IS NULL AND session_expires_at > ?`,
  revoke: `UPDATE portal_sessions SET revoked_at = ? WHERE workspace_id = ? AND id = ? AND revoked_at IS NULL`,
} as const;

interface PortalRow {
  id: string;
  workspace_id: string;
  customer_id: string;
  scope: string;
  code_hash: string;
  code_expires_at: number | string;
  code_used_at: number | string | null;
  session_hash: string | null;
  session_expires_at: number | string | null;
  revoked_at: number | string | null;
  created_at: number | string;
}

const instantOrNull = (v: number | string | null): Instant | null => (v === null ? null : Number(v));

function fromRow(r: PortalRow): PortalSessionRecord {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    customerId: r.customer_id,
    scope: r.scope as PortalScope,
    codeHash: r.code_hash,
    codeExpiresAt: Number(r.code_expires_at),
    codeUsedAt: instantOrNull(r.code_used_at),
    sessionHash: r.session_hash,
    sessionExpiresAt: instantOrNull(r.session_expires_at),
    revokedAt: instantOrNull(r.revoked_at),
    createdAt: Number(r.created_at),
  };
}

/** Reads of portal sessions over one executor. */
export class PortalReads implements PortalReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  private async one(sql: string, params: readonly unknown[]): Promise<PortalSessionRecord | null> {
    const row = await this.db.get<PortalRow>(sql, params);
    return row ? fromRow(row) : null;
  }

  get(workspaceId: string, id: string) {
    return this.one(PQ.get, [workspaceId, id]);
  }

  findByCodeHash(codeHash: string) {
    return this.one(PQ.byCode, [codeHash]);
  }

  findBySessionHash(sessionHash: string) {
    return this.one(PQ.bySession, [sessionHash]);
  }
}

/** Writes of portal sessions inside the caller's transaction. */
export class PortalWrites extends PortalReads implements PortalWriteOperations {
  async insert(r: PortalSessionRecord): Promise<void> {
    await this.db.run(PQ.insert, [
      r.id,
      r.workspaceId,
      r.customerId,
      r.scope,
      r.codeHash,
      r.codeExpiresAt,
      r.codeUsedAt,
      r.sessionHash,
      r.sessionExpiresAt,
      r.revokedAt,
      r.createdAt,
    ]);
  }

  async redeem(id: string, sessionHash: string, sessionExpiresAt: Instant, now: Instant): Promise<boolean> {
    return (await this.db.run(PQ.redeem, [now, sessionHash, sessionExpiresAt, id, now])) === 1;
  }

  async refresh(
    id: string,
    oldHash: string,
    newHash: string,
    sessionExpiresAt: Instant,
    now: Instant,
  ): Promise<boolean> {
    return (await this.db.run(PQ.refresh, [newHash, sessionExpiresAt, id, oldHash, now])) === 1;
  }

  async revoke(workspaceId: string, id: string, now: Instant): Promise<boolean> {
    return (await this.db.run(PQ.revoke, [now, workspaceId, id])) === 1;
  }
}
