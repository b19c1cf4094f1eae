import { Readable } from 'node:stream';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { csvLine } from '../../domain/csv/csv.js';
import { invalidRequest } from '../../domain/errors.js';
import type { Instant } from '../../domain/time/instant.js';
import type { ResumeKey } from '../../ports/storage.js';
import { type ExportKind, type ExportRow, exportRows } from '../../services/exports.js';
import type { RouteDeps } from '../app.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import { errorResponses, Id } from '../schemas.js';
import { FINANCE_SCOPES } from './finance.js';

type Cell = string | number | boolean | null;
const iso = (at: Instant | null) => (at === null ? null : new Date(at).toISOString());

/** The columns of each export and how a row becomes them (the CSV header and the NDJSON keys). */
const SHAPES: { [K in ExportKind]: { columns: readonly string[]; cells: (row: ExportRow<K>) => Cell[] } } = {
  'ledger-entries': {
    columns: [
      'seq',
      'id',
      'customer_id',
      'credit_type',
      'type',
      'amount',
      'from_account',
      'to_account',
      'grant_id',
      'ref',
      'at',
      'recorded_at',
      'balance_after',
    ],
    cells: (e) => [
      e.seq,
      e.id,
      e.customerId,
      e.creditType,
      e.type,
      e.amount.toString(),
      e.fromAccount,
      e.toAccount,
      e.grantId,
      e.ref,
      iso(e.at),
      iso(e.recordedAt),
      e.balanceAfter.toString(),
    ],
  },
  grants: {
    columns: [
      'id',
      'customer_id',
      'credit_type',
      'category',
      'amount',
      'remaining',
      'priority',
      'effective_at',
      'expires_at',
      'created_at',
      'cost_basis_amount',
      'cost_basis_currency',
      'closed_reason',
      'closed_at',
      'description',
      'metadata',
    ],
    cells: (g) => [
      g.id,
      g.customerId,
      g.creditType,
      g.category,
      g.amount.toString(),
      g.available.plus(g.held).toString(),
      g.priority,
      iso(g.effectiveAt),
      iso(g.expiresAt),
      iso(g.createdAt),
      g.costBasis?.amount.toString() ?? null,
      g.costBasis?.currency ?? null,
      g.closedReason,
      iso(g.closedAt),
      g.description,
      JSON.stringify(g.metadata),
    ],
  },
  events: {
    columns: [
      'id',
      'source',
      'type',
      'customer_id',
      'time',
      'received_at',
      'unmetered',
      'duplicates',
      'reversed_at',
      'data',
    ],
    cells: (e) => [
      e.id,
      e.source,
      e.type,
      e.customerId,
      iso(e.time),
      iso(e.receivedAt),
      e.unmetered,
      e.duplicates,
      iso(e.reversedAt),
      JSON.stringify(e.data),
    ],
  },
  usage: {
    columns: ['event_key', 'rate_id', 'customer_id', 'debit_id', 'quantity', 'credits', 'created_at'],
    cells: (b) => [
      b.eventKey,
      b.rateId,
      b.customerId,
      b.debitId,
      b.quantity.toString(),
      b.credits.toString(),
      iso(b.createdAt),
    ],
  },
};

const ExportQuerySchema = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('ndjson')])),
    customer_id: Type.Optional(Id),
    from: Type.Optional(Type.String({ description: 'RFC 3339, inclusive' })),
    to: Type.Optional(Type.String({ description: 'RFC 3339, exclusive' })),
    after: Type.Optional(
      Type.String({ maxLength: 2048, description: 'Resume strictly after the row whose `cursor` this is' }),
    ),
  },
  { additionalProperties: false },
);

/** What each export's rows are dated by (the `from`/`to` filter). */
const DATED_BY: Record<ExportKind, string> = {
  'ledger-entries': 'the entry instant (at)',
  grants: 'creation',
  events: 'the event time',
  usage: 'when the burn was recorded',
};

/** Rows per chunk written to the socket: one storage page (see EXPORT_PAGE_SIZE) is split into these. */
const ROWS_PER_CHUNK = 500;

/**
 * Streaming exports: `GET /v1/exports/{ledger-entries,grants,events,usage}` in NDJSON (default)
 * or CSV (`format=csv` or `Accept: text/csv`). Every row carries its own `cursor` (the last
 * column / key): a client whose download broke resumes with `?after=<the last cursor it got>`.
 * The body is a Node Readable pulled by the socket: the next page is read from the database only
 * when the previous one has been written, so memory stays flat however many rows there are.
 */
export function registerExportRoutes(app: FastifyInstance, { ctx }: RouteDeps): void {
  for (const kind of Object.keys(SHAPES) as ExportKind[]) {
    app.get<{ Querystring: Static<typeof ExportQuerySchema> }>(
      `/v1/exports/${kind}`,
      {
        config: { scope: FINANCE_SCOPES.exports },
        schema: {
          tags: ['finance'],
          summary: `Stream every ${kind.replace('-', ' ')} row of the workspace (NDJSON or CSV; filters: customer, time by ${DATED_BY[kind]}; resumable with after=<cursor>)`,
          querystring: ExportQuerySchema,
          response: {
            200: Type.String({ description: 'NDJSON (one object per line) or CSV with a header line' }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const q = request.query;
        const from = q.from === undefined ? null : readTime(q.from, 'from');
        const to = q.to === undefined ? null : readTime(q.to, 'to');
        if (from !== null && to !== null && to <= from)
          throw invalidRequest('to must be after from', { field: 'to' });
        const after: ResumeKey | null =
          q.after === undefined || q.after === '' ? null : decodeCursor(q.after);
        const csv =
          q.format !== undefined ? q.format === 'csv' : (request.headers.accept ?? '').includes('text/csv');
        const shape = SHAPES[kind] as { columns: readonly string[]; cells: (row: unknown) => Cell[] };
        const rows = exportRows(
          ctx,
          kind,
          { workspaceId: request.auth.workspaceId, customerId: q.customer_id ?? null, from, to },
          after,
        );
        // A bad cursor is a 400 before any byte is sent: read the first row now.
        const iterator = rows[Symbol.asyncIterator]();
        const first = await iterator.next();
        const body = Readable.from(
          encode(first, iterator, (row) => shape.cells(row), shape.columns, csv),
          { objectMode: false },
        );
        return reply
          .type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(body);
      },
    );
  }
}

/** The export's text in chunks of {@link ROWS_PER_CHUNK} rows, pulled one at a time. */
async function* encode(
  first: IteratorResult<{ row: unknown; key: ResumeKey }>,
  rest: AsyncIterator<{ row: unknown; key: ResumeKey }>,
  cells: (row: unknown) => Cell[],
  columns: readonly string[],
  csv: boolean,
): AsyncGenerator<string> {
  let chunk = csv ? csvLine([...columns, 'cursor']) : '';
  let count = 0;
  let next = first;
  while (!next.done) {
    const values = cells(next.value.row);
    const cursor = encodeCursor(next.value.key);
    if (csv) {
      chunk += csvLine([...values.map(cellText), cursor]);
    } else {
      const record: Record<string, Cell> = {};
      columns.forEach((c, i) => {
        record[c] = values[i] ?? null;
      });
      record['cursor'] = cursor;
      chunk += `${JSON.stringify(record)}\n`;
    }
    count += 1;
    if (count % ROWS_PER_CHUNK === 0) {
      yield chunk;
      chunk = '';
    }
    next = await rest.next();
  }
  if (chunk !== '') yield chunk;
}

function cellText(value: Cell): string {
  return value === null ? '' : String(value);
}
