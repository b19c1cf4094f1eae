import { createHash } from 'node:crypto';
import type { Instant } from '../domain/time/instant.js';
import type {
  AuditQuery,
  AuditRecord,
  Page,
  PageRequest,
  ReadOperations,
  WriteOperations,
} from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/**
 * The audit log (docs/design.md, "Audit log"): every administrative change, recorded in the
 * transaction of the change, append-only and hash-chained per workspace.
 *
 * Audited: grants and voids, reversals of debits and events, credit types, meters and rates,
 * features, plans and credit packs (create, edit, archive), subscriptions (start, change, cancel),
 * purchases and auto top-up settings, customer edits, API keys (create, revoke) and workspaces.
 * Not audited: debits, holds and their captures and releases, event ingest and entitlement
 * checks — the usage path of an integration key. Each of those is itself an immutable ledger
 * entry or stored event, and keeping them out keeps the hot path free of the chain's lock.
 */

/** Who caused a write, carried explicitly from the transport into the unit of work. */
export interface RequestContext {
  /** The API key's id (never the key); null for the server's own upkeep. */
  readonly actorKeyId: string | null;
  /** The request's id (Fastify's `request.id`, echoed in logs). */
  readonly requestId: string | null;
}

/** The context of the server's own writes (sweeps, start-up): no key, no request. */
export const SYSTEM_REQUEST: RequestContext = { actorKeyId: null, requestId: null };

/** One administrative change, as a use case describes it; the unit of work stamps who and when. */
export interface AuditMessage {
  readonly workspaceId: string;
  /** `<target type>.<verb>`, e.g. `grant.created`, `plan.updated`. */
  readonly action: string;
  readonly targetType: string;
  readonly targetId: string;
  /** The state before (null: created); any JSON-like value (Amounts serialise as decimal strings). */
  readonly before: unknown;
  /** The state after (null: deleted). */
  readonly after: unknown;
}

/**
 * Canonical JSON: object keys sorted, Maps as objects, Sets as arrays, bigints as strings,
 * `undefined` members left out. The same value always gives the same text, so hashes are stable.
 */
export function canonicalAuditJson(value: unknown): string {
  return JSON.stringify(normalise(value));
}

function normalise(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return value;
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return normalise(withJson.toJSON());
  if (Array.isArray(value)) return value.map(normalise);
  if (value instanceof Set) return [...value].map(normalise);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries
    .map(([k, v]) => [String(k), v] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v !== undefined) out[k] = normalise(v);
  }
  return out;
}

/**
 * The hash of a record: SHA-256 (hex) over the JSON array of its fields in a fixed order, the
 * previous record's hash included, so changing, removing or reordering any record breaks every
 * hash after it.
 */
export function auditHash(record: Omit<AuditRecord, 'hash'>): string {
  const fields = [
    record.workspaceId,
    record.seq,
    record.id,
    record.at,
    record.actorKeyId,
    record.requestId,
    record.action,
    record.targetType,
    record.targetId,
    record.before,
    record.after,
    record.prevHash,
  ];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/**
 * Appends audit records inside a running write, each at the next position of its workspace's
 * chain (claiming it locks the chain's head until the transaction ends). Called by the unit of
 * work for a success's {@link AuditMessage}s, and by any write that records an administrative
 * change itself (webhook endpoints, for instance).
 */
export async function appendAudit(
  ctx: ServiceContext,
  tx: WriteOperations,
  now: Instant,
  request: RequestContext,
  messages: readonly AuditMessage[],
): Promise<readonly AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const m of messages) {
    const { seq, prevHash } = await tx.audit.claimNext(m.workspaceId);
    const unsigned: Omit<AuditRecord, 'hash'> = {
      workspaceId: m.workspaceId,
      seq,
      id: ctx.ids.newId('aud'),
      at: now,
      actorKeyId: request.actorKeyId,
      requestId: request.requestId,
      action: m.action,
      targetType: m.targetType,
      targetId: m.targetId,
      before: m.before === null || m.before === undefined ? null : canonicalAuditJson(m.before),
      after: m.after === null || m.after === undefined ? null : canonicalAuditJson(m.after),
      prevHash,
    };
    const record = { ...unsigned, hash: auditHash(unsigned) };
    await tx.audit.append(record);
    out.push(record);
  }
  return out;
}

/** The first record that breaks a chain, and why. */
export interface AuditBreak {
  readonly workspaceId: string;
  /** The position where the chain breaks (the record expected there). */
  readonly seq: number;
  readonly recordId: string | null;
  readonly reason: string;
}

/** What {@link verifyAuditChains} found. */
export interface AuditVerification {
  readonly ok: boolean;
  readonly workspaces: number;
  readonly records: number;
  /** Every chain's head as verified (publish these to detect a rewrite of the whole log). */
  readonly heads: readonly { readonly workspaceId: string; readonly seq: number; readonly hash: string }[];
  readonly firstBreak: AuditBreak | null;
}

/**
 * Proves every workspace's chain unbroken: positions 1…head without gaps, each record's
 * `prevHash` the previous record's hash, each hash recomputed from the record, and the head row
 * matching the last record (a deleted last record shows there). Reads in pages of `pageSize`.
 */
export async function verifyAuditChains(read: ReadOperations, pageSize = 1000): Promise<AuditVerification> {
  let records = 0;
  const heads = await read.audit.heads();
  for (const head of heads) {
    let expected = 1;
    let prevHash = '';
    let lastId: string | null = null;
    const broken = (seq: number, recordId: string | null, reason: string): AuditVerification => ({
      ok: false,
      workspaces: heads.length,
      records,
      heads,
      firstBreak: { workspaceId: head.workspaceId, seq, recordId, reason },
    });
    let page: PageRequest = { after: null, limit: pageSize };
    for (;;) {
      const got = await read.audit.list(
        {
          workspaceId: head.workspaceId,
          actorKeyId: null,
          action: null,
          targetType: null,
          targetId: null,
          from: null,
          to: null,
        },
        page,
      );
      for (const r of got.items) {
        if (r.seq !== expected)
          return broken(expected, r.id, `record ${expected} is missing (next is ${r.seq})`);
        if (r.prevHash !== prevHash)
          return broken(r.seq, r.id, 'prev_hash does not match the previous record');
        const { hash, ...rest } = r;
        if (auditHash(rest) !== hash) return broken(r.seq, r.id, 'hash does not match the record (altered)');
        prevHash = hash;
        lastId = r.id;
        expected += 1;
        records += 1;
      }
      if (got.nextAfter === null) break;
      page = { after: got.nextAfter, limit: pageSize };
    }
    if (head.seq !== expected - 1) {
      return broken(
        expected,
        lastId,
        `the chain head is at ${head.seq} but the last record is ${expected - 1}`,
      );
    }
    if (head.hash !== prevHash)
      return broken(expected - 1, lastId, 'the chain head hash does not match the last record');
  }
  return { ok: true, workspaces: heads.length, records, heads, firstBreak: null };
}

/** One page of a workspace's audit log matching the query, oldest first. */
export async function readAuditLog(
  ctx: ServiceContext,
  query: AuditQuery,
  page: PageRequest,
): Promise<Page<AuditRecord>> {
  return ctx.storage.read.audit.list(query, page);
}

/** Every record matching the query, oldest first, read in pages (constant memory however long the log). */
export async function* streamAuditLog(
  ctx: ServiceContext,
  query: AuditQuery,
  pageSize = 1000,
): AsyncGenerator<AuditRecord> {
  let page: PageRequest = { after: null, limit: pageSize };
  for (;;) {
    const got = await ctx.storage.read.audit.list(query, page);
    yield* got.items;
    if (got.nextAfter === null) return;
    page = { after: got.nextAfter, limit: pageSize };
  }
}
