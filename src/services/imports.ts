import { Amount } from '../domain/amount/amount.js';
import { parseCsv } from '../domain/csv/csv.js';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import { GRANT_CATEGORIES, type GrantCategory } from '../domain/ledger/types.js';
import { type Instant, parseInstant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import { customerLockKey, DEFAULT_CREDIT_TYPE, type ServiceContext } from './context.js';
import { LedgerSession } from './ledger-session.js';
import { recordGrantRevenuePolicy } from './revenue.js';
import { audited, command, type WriteCommand } from './unit-of-work.js';

/**
 * CSV imports for migrating from another system: customers, grants, and opening balances.
 *
 * - **Row by row**: every row is validated and every problem reported (row = the CSV line, column,
 *   a stable code, a message); one bad row and nothing is written (400 `invalid_import`).
 * - **All or nothing**: the whole import is one transaction over every customer it touches.
 * - **Dry run**: validates against the committed data and answers what would happen; it never
 *   opens a write transaction, so it writes nothing.
 * - **Idempotent**: a customer row is keyed by its id (an existing customer is left unchanged); a
 *   grant or opening balance row by its `external_id` (opening balances default to
 *   `<customer_id>/<credit_type>`), recorded with the grant in the same transaction, so running
 *   the same file again creates nothing and reports every row `unchanged`.
 */

/** What an import brings in. */
export type ImportKind = 'customers' | 'grants' | 'opening_balances';
export const IMPORT_KINDS: readonly ImportKind[] = ['customers', 'grants', 'opening_balances'];

/** Most data rows one import takes (a larger migration is split into several files). */
export const MAX_IMPORT_ROWS = 10_000;

/** The columns each kind accepts; the required ones first. */
const COLUMNS: Record<ImportKind, { required: readonly string[]; optional: readonly string[] }> = {
  customers: { required: ['id'], optional: ['name', 'metadata'] },
  grants: {
    required: ['external_id', 'customer_id', 'amount'],
    optional: [
      'credit_type',
      'category',
      'priority',
      'effective_at',
      'expires_at',
      'cost_basis_amount',
      'cost_basis_currency',
      'description',
    ],
  },
  opening_balances: {
    required: ['customer_id', 'amount'],
    optional: ['external_id', 'credit_type', 'expires_at', 'cost_basis_amount', 'cost_basis_currency'],
  },
};

/** One problem of one row: `row` is the CSV line (1 is the header). */
export interface ImportProblem {
  readonly row: number;
  readonly column: string | null;
  readonly code:
    | 'csv_syntax'
    | 'unknown_column'
    | 'missing_column'
    | 'required'
    | 'invalid_id'
    | 'invalid_amount'
    | 'invalid_time'
    | 'invalid_value'
    | 'invalid_json'
    | 'duplicate_in_file'
    | 'unknown_customer'
    | 'unknown_credit_type'
    | 'too_many_rows';
  readonly message: string;
}

/** A validated row, ready to write. */
type PlannedRow =
  | {
      readonly kind: 'customer';
      readonly row: number;
      readonly externalId: string;
      readonly name: string | null;
      readonly metadata: Record<string, unknown>;
    }
  | {
      readonly kind: 'grant';
      readonly row: number;
      readonly externalId: string;
      readonly customerId: string;
      readonly creditType: string;
      readonly amount: Amount;
      readonly category: GrantCategory;
      readonly priority: number;
      readonly effectiveAt: Instant | null;
      readonly expiresAt: Instant | null;
      readonly costBasis: { readonly amount: Amount; readonly currency: string } | null;
      readonly description: string | null;
    };

/** What happened (or, in a dry run, would happen) to one row. */
export interface ImportRowResult {
  readonly row: number;
  readonly externalId: string;
  readonly status: 'created' | 'unchanged';
  /** The customer or grant id (null in a dry run for what would be created). */
  readonly objectId: string | null;
}

/** The answer of an import. */
export interface ImportResult {
  readonly kind: ImportKind;
  readonly dryRun: boolean;
  readonly created: number;
  readonly unchanged: number;
  readonly rows: readonly ImportRowResult[];
}

const ID_PATTERN = /^(?!\.{1,2}$)(?!.*\.\.)[A-Za-z0-9._:-]{1,128}$/;
const EXTERNAL_ID_PATTERN = /^[\x21-\x7e]{1,255}$/;
const CURRENCY_PATTERN = /^[A-Z]{3}$/;

function refuse(problems: readonly ImportProblem[]): BurndownError {
  return new BurndownError(
    ErrorCode.invalidImport,
    `the import has ${problems.length} problem(s); nothing was written`,
    { problems: problems.slice(0, 1000), total: problems.length },
  );
}

/** Validates the CSV text row by row (pure checks), throwing `invalid_import` with every problem. */
export function planImport(kind: ImportKind, text: string): PlannedRow[] {
  const parsed = parseCsv(text);
  if ('message' in parsed) {
    throw refuse([{ row: parsed.line, column: null, code: 'csv_syntax', message: parsed.message }]);
  }
  const [header, ...records] = parsed.records;
  const problems: ImportProblem[] = [];
  if (!header)
    throw refuse([{ row: 1, column: null, code: 'missing_column', message: 'the CSV has no header' }]);
  const spec = COLUMNS[kind];
  const known = new Set([...spec.required, ...spec.optional]);
  const names = header.fields.map((f) => f.trim());
  for (const name of names) {
    if (!known.has(name)) {
      problems.push({
        row: header.line,
        column: name,
        code: 'unknown_column',
        message: `unknown column "${name}"`,
      });
    }
  }
  for (const name of spec.required) {
    if (!names.includes(name)) {
      problems.push({
        row: header.line,
        column: name,
        code: 'missing_column',
        message: `column "${name}" is required`,
      });
    }
  }
  if (records.length > MAX_IMPORT_ROWS) {
    problems.push({
      row: records[MAX_IMPORT_ROWS]!.line,
      column: null,
      code: 'too_many_rows',
      message: `an import takes at most ${MAX_IMPORT_ROWS} rows`,
    });
  }
  if (problems.length > 0) throw refuse(problems);
  const planned: PlannedRow[] = [];
  const seen = new Map<string, number>();
  for (const record of records) {
    const cell = (name: string): string | null => {
      const i = names.indexOf(name);
      const value = i < 0 ? undefined : record.fields[i];
      return value === undefined || value.trim() === '' ? null : value.trim();
    };
    const problem = (column: string | null, code: ImportProblem['code'], message: string) =>
      problems.push({ row: record.line, column, code, message });
    if (record.fields.length !== names.length) {
      problem(null, 'csv_syntax', `the row has ${record.fields.length} fields, the header ${names.length}`);
      continue;
    }
    const before = problems.length;
    for (const name of spec.required)
      if (cell(name) === null) problem(name, 'required', `${name} is required`);
    if (problems.length > before) continue;
    const row =
      kind === 'customers'
        ? readCustomerRow(cell, problem, record.line)
        : readGrantRow(kind, cell, problem, record.line);
    if (row === null || problems.length > before) continue;
    const earlier = seen.get(row.externalId);
    if (earlier !== undefined) {
      problem(
        kind === 'customers' ? 'id' : 'external_id',
        'duplicate_in_file',
        `${row.externalId} is also on row ${earlier}`,
      );
      continue;
    }
    seen.set(row.externalId, record.line);
    planned.push(row);
  }
  if (problems.length > 0) throw refuse(problems);
  return planned;
}

type Cell = (name: string) => string | null;
type Problem = (column: string | null, code: ImportProblem['code'], message: string) => void;

function readCustomerRow(cell: Cell, problem: Problem, line: number): PlannedRow | null {
  const id = cell('id')!;
  if (!ID_PATTERN.test(id)) {
    problem('id', 'invalid_id', 'id must be 1 to 128 of A-Z a-z 0-9 . _ : -');
    return null;
  }
  let metadata: Record<string, unknown> = {};
  const text = cell('metadata');
  if (text !== null) {
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new Error('not an object');
      metadata = value as Record<string, unknown>;
      if (text.length > 16 * 1024) throw new Error('too large');
    } catch {
      problem('metadata', 'invalid_json', 'metadata must be a JSON object of at most 16 KiB');
      return null;
    }
  }
  const name = cell('name');
  if (name !== null && name.length > 256) {
    problem('name', 'invalid_value', 'name must be at most 256 characters');
    return null;
  }
  return { kind: 'customer', row: line, externalId: id, name, metadata };
}

function readAmount(text: string, column: string, problem: Problem, positive: boolean): Amount | null {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string' || parsed.isNegative() || (positive && parsed.isZero())) {
    problem(
      column,
      'invalid_amount',
      `${column} must be a ${positive ? 'positive' : 'non-negative'} decimal string`,
    );
    return null;
  }
  return parsed;
}

function readInstant(text: string | null, column: string, problem: Problem): Instant | null | undefined {
  if (text === null) return null;
  const at = parseInstant(text);
  if (at === null) {
    problem(column, 'invalid_time', `${column} must be an RFC 3339 timestamp`);
    return undefined;
  }
  return at;
}

function readGrantRow(kind: ImportKind, cell: Cell, problem: Problem, line: number): PlannedRow | null {
  const customerId = cell('customer_id')!;
  const creditType = cell('credit_type') ?? DEFAULT_CREDIT_TYPE;
  if (!ID_PATTERN.test(customerId)) problem('customer_id', 'invalid_id', 'customer_id is not a valid id');
  if (!ID_PATTERN.test(creditType)) problem('credit_type', 'invalid_id', 'credit_type is not a valid id');
  const externalId = cell('external_id') ?? `${customerId}/${creditType}`;
  if (!EXTERNAL_ID_PATTERN.test(externalId)) {
    problem('external_id', 'invalid_id', 'external_id must be 1 to 255 printable ASCII characters');
  }
  const amount = readAmount(cell('amount')!, 'amount', problem, true);
  const effectiveAt = readInstant(cell('effective_at'), 'effective_at', problem);
  const expiresAt = readInstant(cell('expires_at'), 'expires_at', problem);
  const costText = cell('cost_basis_amount');
  const currency = cell('cost_basis_currency');
  let costBasis: { amount: Amount; currency: string } | null = null;
  if ((costText === null) !== (currency === null)) {
    problem(
      costText === null ? 'cost_basis_amount' : 'cost_basis_currency',
      'required',
      'cost_basis_amount and cost_basis_currency go together',
    );
  } else if (costText !== null && currency !== null) {
    const cost = readAmount(costText, 'cost_basis_amount', problem, false);
    if (!CURRENCY_PATTERN.test(currency)) {
      problem(
        'cost_basis_currency',
        'invalid_value',
        'cost_basis_currency must be an ISO 4217 code (e.g. USD)',
      );
    } else if (cost !== null) {
      costBasis = { amount: cost, currency };
    }
  }
  const categoryText = cell('category');
  let category: GrantCategory = kind === 'opening_balances' && costBasis === null ? 'promotional' : 'paid';
  if (categoryText !== null) {
    if (!(GRANT_CATEGORIES as readonly string[]).includes(categoryText)) {
      problem('category', 'invalid_value', `category must be one of ${GRANT_CATEGORIES.join(', ')}`);
    } else {
      category = categoryText as GrantCategory;
    }
  }
  if (costBasis !== null && category !== 'paid') {
    problem('cost_basis_amount', 'invalid_value', 'only paid credits carry a cost basis');
  }
  let priority = 10;
  const priorityText = cell('priority');
  if (priorityText !== null) {
    priority = Number(priorityText);
    if (!/^\d{1,9}$/.test(priorityText))
      problem('priority', 'invalid_value', 'priority must be a whole number');
  }
  if (typeof effectiveAt === 'number' && typeof expiresAt === 'number' && expiresAt <= effectiveAt) {
    problem('expires_at', 'invalid_time', 'expires_at must be after effective_at');
  }
  const description = cell('description');
  if (amount === null || effectiveAt === undefined || expiresAt === undefined) return null;
  return {
    kind: 'grant',
    row: line,
    externalId,
    customerId,
    creditType,
    amount,
    category,
    priority,
    effectiveAt,
    expiresAt,
    costBasis,
    description: description ?? (kind === 'opening_balances' ? 'opening balance (import)' : null),
  };
}

/**
 * Checks the planned rows against committed data (customers and credit types exist; what earlier
 * imports created) and answers what the import would do. Reads only: this is the whole dry run.
 */
export async function dryRunImport(
  ctx: ServiceContext,
  input: { workspaceId: string; kind: ImportKind; rows: readonly PlannedRow[] },
): Promise<ImportResult> {
  const reads = ctx.storage.read;
  const problems: ImportProblem[] = [];
  const results: ImportRowResult[] = [];
  const known = new Map<string, string>();
  if (input.kind !== 'customers') {
    const ids = input.rows.map((r) => r.externalId);
    for (const record of await reads.finance.importRecords(input.workspaceId, input.kind, ids)) {
      known.set(record.externalId, record.objectId);
    }
  }
  const creditTypes = new Map<string, boolean>();
  for (const row of input.rows) {
    if (row.kind === 'customer') {
      const exists = (await reads.getCustomer(input.workspaceId, row.externalId)) !== null;
      results.push({
        row: row.row,
        externalId: row.externalId,
        status: exists ? 'unchanged' : 'created',
        objectId: exists ? row.externalId : null,
      });
      continue;
    }
    const done = known.get(row.externalId);
    if (done !== undefined) {
      results.push({ row: row.row, externalId: row.externalId, status: 'unchanged', objectId: done });
      continue;
    }
    if ((await reads.getCustomer(input.workspaceId, row.customerId)) === null) {
      problems.push({
        row: row.row,
        column: 'customer_id',
        code: 'unknown_customer',
        message: `customer "${row.customerId}" does not exist (import customers first)`,
      });
    }
    let typeExists = creditTypes.get(row.creditType);
    if (typeExists === undefined) {
      typeExists =
        row.creditType === DEFAULT_CREDIT_TYPE ||
        (await reads.getCreditType(input.workspaceId, row.creditType)) !== null;
      creditTypes.set(row.creditType, typeExists);
    }
    if (!typeExists) {
      problems.push({
        row: row.row,
        column: 'credit_type',
        code: 'unknown_credit_type',
        message: `credit type "${row.creditType}" does not exist`,
      });
    }
    results.push({ row: row.row, externalId: row.externalId, status: 'created', objectId: null });
  }
  if (problems.length > 0) throw refuse(problems);
  return summarise(input.kind, true, results);
}

function summarise(kind: ImportKind, dryRun: boolean, rows: ImportRowResult[]): ImportResult {
  const created = rows.filter((r) => r.status === 'created').length;
  return { kind, dryRun, created, unchanged: rows.length - created, rows };
}

/**
 * The import as one write command over every customer it touches (all or nothing). The rows are
 * checked again inside the transaction (an earlier import may have committed meanwhile: its rows
 * are then `unchanged`), so a concurrent re-run cannot create anything twice.
 */
export function importCommand(
  ctx: ServiceContext,
  input: { workspaceId: string; kind: ImportKind; rows: readonly PlannedRow[] },
): WriteCommand<ImportResult> {
  const customers = [
    ...new Set(input.rows.map((r) => (r.kind === 'customer' ? r.externalId : r.customerId))),
  ].sort();
  const lockKeys = customers.map((c) => customerLockKey(input.workspaceId, c));
  // An import is an administrative change: one audit record names what it created.
  return audited(
    command(lockKeys.length === 0 ? `${input.workspaceId}/#imports` : lockKeys, async (tx, now) => {
      const results = await writeImport(ctx, tx, input, now);
      return summarise(input.kind, false, results);
    }),
    (result) => ({
      workspaceId: input.workspaceId,
      action: `import.${input.kind}`,
      targetType: 'import',
      targetId: input.kind,
      before: null,
      after: {
        created: result.created,
        unchanged: result.unchanged,
        objects: result.rows.filter((r) => r.status === 'created').map((r) => r.objectId),
      },
    }),
  );
}

async function writeImport(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; kind: ImportKind; rows: readonly PlannedRow[] },
  now: Instant,
): Promise<ImportRowResult[]> {
  const { workspaceId, kind } = input;
  const results = new Map<number, ImportRowResult>();
  const problems: ImportProblem[] = [];
  const known = new Map<string, string>();
  if (kind !== 'customers') {
    const ids = input.rows.map((r) => r.externalId);
    for (const record of await tx.finance.importRecords(workspaceId, kind, ids)) {
      known.set(record.externalId, record.objectId);
    }
  }
  const byCustomer = new Map<string, Extract<PlannedRow, { kind: 'grant' }>[]>();
  for (const row of input.rows) {
    if (row.kind === 'customer') {
      const created = await tx.insertCustomer({
        workspaceId,
        id: row.externalId,
        name: row.name,
        metadata: row.metadata,
        createdAt: now,
      });
      results.set(row.row, {
        row: row.row,
        externalId: row.externalId,
        status: created ? 'created' : 'unchanged',
        objectId: row.externalId,
      });
      continue;
    }
    const done = known.get(row.externalId);
    if (done !== undefined) {
      results.set(row.row, { row: row.row, externalId: row.externalId, status: 'unchanged', objectId: done });
      continue;
    }
    const list = byCustomer.get(row.customerId) ?? [];
    list.push(row);
    byCustomer.set(row.customerId, list);
  }
  for (const [customerId, rows] of byCustomer) {
    if ((await tx.getCustomer(workspaceId, customerId)) === null) {
      for (const row of rows) {
        problems.push({
          row: row.row,
          column: 'customer_id',
          code: 'unknown_customer',
          message: `customer "${customerId}" does not exist (import customers first)`,
        });
      }
      continue;
    }
    const session = await LedgerSession.open(ctx, tx, { workspaceId, customerId }, now);
    for (const row of rows) {
      if (
        row.creditType !== DEFAULT_CREDIT_TYPE &&
        (await tx.getCreditType(workspaceId, row.creditType)) === null
      ) {
        problems.push({
          row: row.row,
          column: 'credit_type',
          code: 'unknown_credit_type',
          message: `credit type "${row.creditType}" does not exist`,
        });
        continue;
      }
      const ledger = await session.ledger(row.creditType);
      if (!ledger.accounts.issued.minus(row.amount).isWithinAccountRange()) {
        problems.push({
          row: row.row,
          column: 'amount',
          code: 'invalid_amount',
          message: 'amount would carry the ledger past the amount range',
        });
        continue;
      }
      const grant = ledger.grant(
        {
          amount: row.amount,
          category: row.category,
          priority: row.priority,
          effectiveAt: row.effectiveAt ?? now,
          expiresAt: row.expiresAt,
          costBasis: row.costBasis,
          appliesTo: null,
          description: row.description,
          metadata: { import_kind: kind, import_external_id: row.externalId },
        },
        now,
      );
      await tx.finance.insertImportRecord({
        workspaceId,
        kind,
        externalId: row.externalId,
        objectId: grant.id,
        createdAt: now,
      });
      await recordGrantRevenuePolicy(tx, workspaceId, grant, now);
      results.set(row.row, {
        row: row.row,
        externalId: row.externalId,
        status: 'created',
        objectId: grant.id,
      });
    }
    if (problems.length === 0) await session.save();
  }
  // A problem found inside the transaction rolls everything back (thrown, not a refusal value).
  if (problems.length > 0) throw refuse(problems);
  return [...results.values()].sort((a, b) => a.row - b.row);
}
