import { Readable } from 'node:stream';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { csvLine } from '../../domain/csv/csv.js';
import { invalidRequest } from '../../domain/errors.js';
import type { Instant } from '../../domain/time/instant.js';
import type { ResumeKey } from '../../ports/storage.js';
import { type ExportKind, type ExportPage, type ExportRow, exportPages } from '../../services/exports.js';
import type { RouteDeps } from '../app.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { readTime } from '../route-helpers.js';
import { errorResponses, Id } from '../schemas.js';
import { FINANCE_SCOPES } from './finance.js';

type Cell = string | number | boolean | null;
/**
 * An instant as RFC 3339 with milliseconds (what `Date.toISOString()` writes). Rows of an export
 * come in bunches within the same second, so the text up to the second is kept from the last
 * call and only the milliseconds are written: two dates per entry otherwise cost more than the
 * rest of its line.
 */
const iso = (() => {
  let second = Number.NaN;
  let prefix = '';
  return (at: Instant | null): string | null => {
    if (at === null) return null;
    if (!Number.isInteger(at)) return new Date(at).toISOString();
    const ms = ((at % 1000) + 1000) % 1000;
    const s = at - ms;
    if (s !== second) {
      const text = new Date(s).toISOString();
      if (text.length !== 24) return new Date(at).toISOString(); // years beyond 9999 or before 0
      second = s;
      prefix = text.slice(0, 20);
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
  };
})();

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
      e.amount,
      e.fromAccount,
      e.toAccount,
      e.grantId,
      e.ref,
      iso(e.at),
      iso(e.recordedAt),
      e.balanceAfter,
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
        const pages = exportPages(
          ctx,
          kind,
          { workspaceId: request.auth.workspaceId, customerId: q.customer_id ?? null, from, to },
          after,
        );
        // A bad cursor is a 400 before any byte is sent: read the first page now.
        const iterator = pages[Symbol.asyncIterator]();
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

/**
 * The export's text in chunks of {@link ROWS_PER_CHUNK} rows, pulled one at a time. Each NDJSON
 * line is written by concatenation with the keys' JSON written once (no object per row for
 * `JSON.stringify` to walk): the same text `JSON.stringify` gives for an object with these keys.
 */
async function* encode(
  first: IteratorResult<ExportPage<unknown>>,
  rest: AsyncIterator<ExportPage<unknown>>,
  cells: (row: unknown) => Cell[],
  columns: readonly string[],
  csv: boolean,
): AsyncGenerator<string> {
  const prefixes = [...columns, 'cursor'].map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);
  const lines: string[] = csv ? [csvLine([...columns, 'cursor'])] : [];
  for (let next = first; !next.done; next = await rest.next()) {
    const { rows, keys } = next.value;
    for (let r = 0; r < rows.length; r += 1) {
      const values = cells(rows[r]);
      values.push(encodeCursor(keys[r]!));
      if (csv) {
        lines.push(csvLine(values.map(cellText)));
      } else {
        let line = '';
        for (let i = 0; i < values.length; i += 1) line += prefixes[i] + jsonCell(values[i] ?? null);
        lines.push(`${line}}\n`);
      }
      if (lines.length >= ROWS_PER_CHUNK) {
        yield lines.join('');
        lines.length = 0;
      }
    }
  }
  if (lines.length > 0) yield lines.join('');
}

/**
 * Strings `JSON.stringify` writes as they are between quotes: only characters from U+0020 up,
 * without the quote (U+0022), the backslash (U+005C) and surrogates (lone ones are escaped; any
 * surrogate takes the slow path, same output).
 */
const PLAIN_JSON_STRING = /^[\u0020\u0021\u0023-\u005b\u005d-\ud7ff\ue000-\uffff]*$/;

/**
 * One cell as JSON: strings quoted (escaped by `JSON.stringify` when they need it: testing first
 * halves the cost for the ids and dates exports are made of), numbers, booleans and null as themselves.
 */
export function jsonCell(value: Cell): string {
  if (typeof value !== 'string') return String(value);
  return PLAIN_JSON_STRING.test(value) ? `"${value}"` : JSON.stringify(value);
}

function cellText(value: Cell): string {
  return value === null ? '' : String(value);
}
