import { Readable } from 'node:stream';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { formatInstant } from '../../domain/time/instant.js';
import type { AuditQuery, AuditRecord } from '../../ports/storage.js';
import { readAuditLog, streamAuditLog } from '../../services/audit.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import { errorResponses } from '../schemas.js';

const Filters = {
  actor: Type.Optional(Type.String({ maxLength: 128, description: 'The acting API key id' })),
  action: Type.Optional(Type.String({ maxLength: 128, description: 'e.g. `grant.created`' })),
  target_type: Type.Optional(Type.String({ maxLength: 64, description: 'e.g. `grant`, `plan`, `api_key`' })),
  target_id: Type.Optional(Type.String({ maxLength: 256 })),
  from: Type.Optional(Type.String({ description: 'RFC 3339, inclusive' })),
  to: Type.Optional(Type.String({ description: 'RFC 3339, exclusive' })),
};
const ListQuery = Type.Object(
  { ...Filters, limit: Type.Optional(Type.String()), cursor: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const ExportQuery = Type.Object(
  { ...Filters, format: Type.Optional(Type.Union([Type.Literal('ndjson'), Type.Literal('csv')])) },
  { additionalProperties: false },
);

const AuditRecordBody = Type.Object({
  id: Type.String(),
  seq: Type.Integer({ description: 'Position in the workspace chain, from 1, without gaps' }),
  at: Type.String(),
  actor_key_id: Type.Union([Type.String(), Type.Null()]),
  request_id: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  target_type: Type.String(),
  target_id: Type.String(),
  before: Type.Unknown({ description: 'State before (null: created)' }),
  after: Type.Unknown({ description: 'State after (null: removed)' }),
  prev_hash: Type.String({ description: 'Hash of the previous record (empty for the first)' }),
  hash: Type.String({ description: 'SHA-256 over this record and prev_hash (docs/design.md)' }),
});

function presentAudit(r: AuditRecord) {
  return {
    id: r.id,
    seq: r.seq,
    at: formatInstant(r.at),
    actor_key_id: r.actorKeyId,
    request_id: r.requestId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    before: r.before === null ? null : (JSON.parse(r.before) as unknown),
    after: r.after === null ? null : (JSON.parse(r.after) as unknown),
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

const CSV_COLUMNS = [
  'seq',
  'id',
  'at',
  'actor_key_id',
  'request_id',
  'action',
  'target_type',
  'target_id',
  'before',
  'after',
  'prev_hash',
  'hash',
] as const;

/** One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
function csvField(value: string | number | null): string {
  const text = value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(r: AuditRecord): string {
  const row = {
    seq: r.seq,
    id: r.id,
    at: formatInstant(r.at),
    actor_key_id: r.actorKeyId,
    request_id: r.requestId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    before: r.before,
    after: r.after,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
  return `${CSV_COLUMNS.map((c) => csvField(row[c])).join(',')}\r\n`;
}

function readQuery(
  workspaceId: string,
  q: Static<typeof ListQuery> | Static<typeof ExportQuery>,
): AuditQuery {
  return {
    workspaceId,
    actorKeyId: q.actor ?? null,
    action: q.action ?? null,
    targetType: q.target_type ?? null,
    targetId: q.target_id ?? null,
    from: q.from === undefined ? null : readTime(q.from, 'from'),
    to: q.to === undefined ? null : readTime(q.to, 'to'),
  };
}

/** The workspace's audit log: a filtered, paged listing and a streamed export (NDJSON or CSV). */
export function registerAuditRoutes(app: FastifyInstance, { ctx }: RouteDeps): void {
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/audit-log',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['audit log'],
        summary: "The workspace's audit log, oldest first, filtered by actor, action, target and time",
        querystring: ListQuery,
        response: {
          200: Type.Object({
            data: Type.Array(AuditRecordBody),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const page = await readAuditLog(
        ctx,
        readQuery(request.auth.workspaceId, request.query),
        readPageRequest(request.query),
      );
      return presentPage(page, presentAudit);
    },
  );

  app.get<{ Querystring: Static<typeof ExportQuery> }>(
    '/v1/audit-log/export',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['audit log'],
        summary: 'Export the audit log (all matching records) as NDJSON (default) or CSV, streamed',
        querystring: ExportQuery,
        response: {
          200: Type.String({
            description: 'NDJSON: one record per line; CSV: a header line, then one per line',
          }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const query = readQuery(request.auth.workspaceId, request.query);
      const csv = request.query.format === 'csv';
      async function* lines() {
        if (csv) yield `${CSV_COLUMNS.join(',')}\r\n`;
        for await (const r of streamAuditLog(ctx, query)) {
          yield csv ? csvLine(r) : `${JSON.stringify(presentAudit(r))}\n`;
        }
      }
      return reply
        .type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .send(Readable.from(lines()));
    },
  );
}
