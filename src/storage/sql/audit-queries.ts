import type {
  AuditQuery,
  AuditReadOperations,
  AuditRecord,
  AuditWriteOperations,
  Page,
  PageRequest,
} from '../../ports/storage.js';
import type { SqlExecutor } from './executor.js';
import { afterSeq, pageOf } from './paging.js';

/**
 * SQL of the audit log (both dialects). Appends claim the next position by updating the chain's
 * head row (`UPDATE … RETURNING`), which on PostgreSQL locks that row until the transaction ends:
 * two transactions appending to one workspace's chain queue there, whatever customers they touch.
 * SQLite has one writer, so its transactions are serial anyway.
 */
export const AQ = {
  seedHead: `INSERT INTO audit_heads (workspace_id, seq, hash) VALUES (?, 0, '') ON CONFLICT (workspace_id) DO NOTHING`,
  claimHead: 'UPDATE audit_heads SET seq = seq + 1 WHERE workspace_id = ? RETURNING seq, hash',
  setHeadHash: 'UPDATE audit_heads SET hash = ? WHERE workspace_id = ? AND seq = ?',
  insert: `INSERT INTO audit_log (workspace_id, seq, id, at, actor_key_id, request_id, action, target_type,
       target_id, before_json, after_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  // A workspace with records but no head row (someone deleted it) shows with seq -1.
  heads: `SELECT w.workspace_id, COALESCE(h.seq, -1) AS seq, COALESCE(h.hash, '') AS hash
     FROM (SELECT workspace_id FROM audit_heads WHERE seq > 0 UNION SELECT workspace_id FROM audit_log) w
     LEFT JOIN audit_heads h ON h.workspace_id = w.workspace_id ORDER BY w.workspace_id`,
} as const;

interface AuditRow {
  workspace_id: string;
  seq: number | string;
  id: string;
  at: number | string;
  actor_key_id: string | null;
  request_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  before_json: string | null;
  after_json: string | null;
  prev_hash: string;
  hash: string;
}

function fromRow(r: AuditRow): AuditRecord {
  return {
    workspaceId: r.workspace_id,
    seq: Number(r.seq),
    id: r.id,
    at: Number(r.at),
    actorKeyId: r.actor_key_id,
    requestId: r.request_id,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    before: r.before_json,
    after: r.after_json,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** Reads of the audit log over one executor. */
export class AuditReads implements AuditReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async list(query: AuditQuery, page: PageRequest): Promise<Page<AuditRecord>> {
    const where = ['workspace_id = ?', 'seq > ?'];
    const params: unknown[] = [query.workspaceId, afterSeq(page)];
    const add = (clause: string, value: unknown) => {
      if (value === null) return;
      where.push(clause);
      params.push(value);
    };
    add('actor_key_id = ?', query.actorKeyId);
    add('action = ?', query.action);
    add('target_type = ?', query.targetType);
    add('target_id = ?', query.targetId);
    add('at >= ?', query.from);
    add('at < ?', query.to);
    params.push(page.limit + 1);
    const rows = await this.db.all<AuditRow>(
      `SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`,
      params,
    );
    return pageOf(rows.map(fromRow), page.limit, (r) => [String(r.seq)]);
  }

  async heads(): Promise<readonly { workspaceId: string; seq: number; hash: string }[]> {
    const rows = await this.db.all<{ workspace_id: string; seq: number | string; hash: string }>(
      AQ.heads,
      [],
    );
    return rows.map((r) => ({ workspaceId: r.workspace_id, seq: Number(r.seq), hash: r.hash }));
  }
}

/** Appends audit records inside the caller's transaction. */
export class AuditWrites extends AuditReads implements AuditWriteOperations {
  async claimNext(workspaceId: string): Promise<{ seq: number; prevHash: string }> {
    await this.db.run(AQ.seedHead, [workspaceId]);
    const head = await this.db.get<{ seq: number | string; hash: string }>(AQ.claimHead, [workspaceId]);
    if (!head) throw new Error(`audit chain head of ${workspaceId} missing after seeding`);
    return { seq: Number(head.seq), prevHash: head.hash };
  }

  async append(r: AuditRecord): Promise<void> {
    await this.db.run(AQ.insert, [
      r.workspaceId,
      r.seq,
      r.id,
      r.at,
      r.actorKeyId,
      r.requestId,
      r.action,
      r.targetType,
      r.targetId,
      r.before,
      r.after,
      r.prevHash,
      r.hash,
    ]);
    if ((await this.db.run(AQ.setHeadHash, [r.hash, r.workspaceId, r.seq])) !== 1) {
      throw new Error(`audit record ${r.seq} of ${r.workspaceId} is not at the position claimed`);
    }
  }
}
