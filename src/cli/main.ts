#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/config.js';
import { checkDatabaseUrl, DEFAULT_DATABASE_URL, describeDatabaseUrl } from '../config/database-url.js';
import { csvLine } from '../domain/csv/csv.js';
import { REVENUE_GROUP_BYS, type RevenueGroupBy } from '../domain/revenue/report.js';
import { parseInstant, whyNotAnInstant } from '../domain/time/instant.js';
import { type Jwks, VERIFY_EXIT_CODES, verifyLicenseFile } from '../licensing-verify/index.js';
import { createContext, databaseState, openStorage, startServer } from '../main.js';
import type { Storage } from '../ports/storage.js';
import { verifyAuditChains } from '../services/audit.js';
import { presentBalance } from '../services/balance-document.js';
import { DEFAULT_CREDIT_TYPE, DEFAULT_WORKSPACE } from '../services/context.js';
import { readBalance } from '../services/ledger.js';
import { backfillRate } from '../services/metering.js';
import { reconcileLedger } from '../services/reconcile.js';
import {
  JOURNAL_COLUMNS,
  journalLineFields,
  REVENUE_COLUMNS,
  revenueJournal,
  revenueReport,
  revenueRowFields,
} from '../services/revenue.js';
import { ProgressLine } from './progress-line.js';

/** A refusal of the command line itself (exit 2), as opposed to a failure while working (exit 1). */
class UsageError extends Error {}

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** What `--help` lists after the commands: everything the commands read from the environment. */
const ENVIRONMENT_HELP = `
Environment:
  BURNDOWN_DATABASE_URL       database of every command unless --database is given
                              (sqlite:<path> or postgres://…; default ${DEFAULT_DATABASE_URL},
                              relative to the working directory)
  BURNDOWN_PG_POOL_SIZE       PostgreSQL connections per process (default 10)
  BURNDOWN_PG_WRITE_BATCHES   PostgreSQL group commit: ledger-write batches in flight per process
                              (default 2; 0: every write in its own transaction)
  BURNDOWN_API_KEY            serve: admin key of the default workspace (generated once when unset)
  PORT, HOST                  serve: where to listen (default 7420 on 127.0.0.1)
  BURNDOWN_SWEEP_INTERVAL_MS  serve: how often due expiries and resets are written (default 1000)
  BURNDOWN_BODY_LIMIT         serve: largest request body in bytes (default 1048576)
  BURNDOWN_LOG_LEVEL          serve: fatal … trace, or silent (default info)
  BURNDOWN_LICENSING_SECRET   serve: encrypts license-file signing keys at rest (16+ characters)
  BURNDOWN_LICENSE_FILE_TTL_SECONDS  serve: longest life of a license file (default 604800)

Commands other than serve and migrate refuse a database that does not exist or was never
migrated (exit 2), so a wrong path never reports an empty ledger as proven.
`;

/** Every command takes `--database`, defaulting to BURNDOWN_DATABASE_URL. */
function withDatabase(command: Command): Command {
  return command.addOption(
    new Option(
      '--database <url>',
      `database: sqlite:<path> or postgres://… (default ${DEFAULT_DATABASE_URL})`,
    ).env('BURNDOWN_DATABASE_URL'),
  );
}

/** The database a command works on, announced on stderr (stdout stays parseable), password hidden. */
function chooseDatabase(option: string | undefined): string {
  let url: string;
  try {
    url = checkDatabaseUrl(option || DEFAULT_DATABASE_URL, '--database (or BURNDOWN_DATABASE_URL)');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  process.stderr.write(`burndown: database ${describeDatabaseUrl(url)}\n`);
  return url;
}

/** Opens a database that must already exist and hold Burndown's schema; refuses anything else. */
async function openExisting(url: string): Promise<Storage> {
  const state = await databaseState(url);
  if (state !== 'ready') {
    const where = describeDatabaseUrl(url);
    throw new UsageError(
      state === 'missing'
        ? `no database at ${where}: pass --database (or set BURNDOWN_DATABASE_URL) to the one the server uses, or create it with ${url.startsWith('sqlite:') ? '"burndown migrate"' : 'createdb, then "burndown migrate"'}`
        : `${where} is not a Burndown database (its schema was never migrated): check --database, or run "burndown migrate" to set it up`,
    );
  }
  return openStorage(url, { poolSize: loadConfig().pgPoolSize });
}

function time(text: string | undefined, name: string): number | null {
  if (text === undefined) return null;
  const at = parseInstant(text);
  if (at === null) throw new UsageError(`--${name} ${whyNotAnInstant(text)}`);
  return at;
}

function positiveInteger(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new UsageError(`expected a positive integer, got "${text}"`);
  return Number(text);
}

/** The `burndown` command: thin over the services, never over HTTP internals. */
const program = new Command()
  .name('burndown')
  .description('Burndown: credit ledger for credit-based and usage-based pricing')
  .version(VERSION, '-V, --version', 'print the version and exit')
  .addHelpText('after', ENVIRONMENT_HELP);

withDatabase(
  program.command('serve').description('run the HTTP server (creates and migrates the database first)'),
).action(async (options: { database?: string }) => {
  const databaseUrl = chooseDatabase(options.database);
  const config = { ...loadConfig(), databaseUrl };
  const server = await startServer(config);
  if (server.generatedKey) {
    process.stdout.write(
      `\nNo BURNDOWN_API_KEY was set, so an admin key was generated. It is shown only this once:\n\n  ${server.generatedKey}\n\n` +
        'Store it now (only its hash is kept). Use it as: Authorization: Bearer <key>\n\n',
    );
  }
  process.stdout.write(
    `burndown listening on ${server.url} (database ${describeDatabaseUrl(databaseUrl)})\n`,
  );
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
});

withDatabase(
  program.command('migrate').description('create the database if needed, apply pending migrations and exit'),
).action(async (options: { database?: string }) => {
  const databaseUrl = chooseDatabase(options.database);
  const storage = await openStorage(databaseUrl, { poolSize: loadConfig().pgPoolSize });
  try {
    await storage.migrate();
  } finally {
    await storage.close();
  }
  process.stdout.write('migrations applied\n');
});

withDatabase(
  program
    .command('reconcile')
    .description('replay the ledger and prove its invariants; exits 1 naming each failing account')
    .option('--json', 'print the report as JSON')
    .option('--progress', 'report progress on stderr even when it is not a terminal')
    .option('--progress-every <rows>', 'rows read between progress reports', positiveInteger, 100_000),
).action(
  async (options: { database?: string; json?: boolean; progress?: boolean; progressEvery: number }) => {
    const storage = await openExisting(chooseDatabase(options.database));
    const showProgress = options.progress === true || process.stderr.isTTY === true;
    const line = new ProgressLine(process.stderr, 0);
    let report: Awaited<ReturnType<typeof reconcileLedger>>;
    try {
      report = await reconcileLedger(storage, {
        progressEvery: options.progressEvery,
        ...(showProgress
          ? {
              onProgress: (p) =>
                line.update(
                  `reconcile: reading ${p.phase}: ${p.entries} entries, ${p.accounts} accounts, ${p.grants} grants, ${p.events} events`,
                ),
            }
          : {}),
      });
    } finally {
      line.done();
      await storage.close();
    }
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(
        `reconcile: ${report.entries} entries, ${report.accounts} accounts, ${report.grants} grants, ${report.events} events: ${report.ok ? 'OK' : 'FAILED'}\n`,
      );
      for (const f of report.failures) {
        process.stdout.write(
          `  [${f.check}] workspace=${f.workspaceId} customer=${f.customerId ?? '-'} credit_type=${f.creditType ?? '-'} account=${f.account ?? '-'}: ${f.message}\n`,
        );
      }
    }
    process.exitCode = report.ok ? 0 : 1;
  },
);

const audit = program.command('audit').description('the audit log of administrative changes');
withDatabase(
  audit
    .command('verify')
    .description("prove every workspace's audit chain unbroken; exits 1 naming the first bad record")
    .option('--json', 'print the result as JSON'),
).action(async (options: { database?: string; json?: boolean }) => {
  const storage = await openExisting(chooseDatabase(options.database));
  let result: Awaited<ReturnType<typeof verifyAuditChains>>;
  try {
    result = await verifyAuditChains(storage.read);
  } finally {
    await storage.close();
  }
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(
      `audit verify: ${result.records} records in ${result.workspaces} workspace chains: ${result.ok ? 'OK' : 'BROKEN'}\n`,
    );
    for (const head of result.heads) {
      process.stdout.write(`  head workspace=${head.workspaceId} seq=${head.seq} hash=${head.hash}\n`);
    }
    const b = result.firstBreak;
    if (b) {
      process.stdout.write(
        `  first bad record: workspace=${b.workspaceId} seq=${b.seq} id=${b.recordId ?? '-'}: ${b.reason}\n`,
      );
    }
  }
  process.exitCode = result.ok ? 0 : 1;
});

withDatabase(
  program
    .command('balance')
    .description("print a customer's balance")
    .argument('<customer>', 'customer id')
    .option('--credit-type <id>', 'credit type', DEFAULT_CREDIT_TYPE)
    .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
    .option('--at <time>', 'an instant in the past (RFC 3339)'),
).action(
  async (
    customer: string,
    options: { database?: string; creditType: string; workspace: string; at?: string },
  ) => {
    const at = time(options.at, 'at');
    const storage = await openExisting(chooseDatabase(options.database));
    try {
      const balance = await readBalance(createContext(storage), {
        key: { workspaceId: options.workspace, customerId: customer, creditType: options.creditType },
        at,
      });
      process.stdout.write(`${JSON.stringify(presentBalance(balance), null, 2)}\n`);
    } finally {
      await storage.close();
    }
  },
);

withDatabase(
  program
    .command('backfill')
    .description('apply a rate created later to stored events it has not burned yet (idempotent)')
    .requiredOption('--rate <id>', 'rate id')
    .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
    .option('--from <time>', 'only events at or after this instant (RFC 3339)')
    .option('--to <time>', 'only events before this instant (RFC 3339)'),
).action(
  async (options: { database?: string; rate: string; workspace: string; from?: string; to?: string }) => {
    const from = time(options.from, 'from');
    const to = time(options.to, 'to');
    const storage = await openExisting(chooseDatabase(options.database));
    try {
      const progress = new ProgressLine(process.stderr);
      const result = await backfillRate(
        createContext(storage),
        { workspaceId: options.workspace, rateId: options.rate, from, to },
        (p) =>
          progress.update(
            `backfill ${options.rate}: ${p.scanned} events scanned, ${p.burned} burned, ${p.alreadyBurned} already burned`,
          ),
      );
      progress.done();
      process.stdout.write(
        `backfill ${options.rate}: ${result.scanned} events scanned, ${result.burned} burned, ${result.alreadyBurned} already burned\n`,
      );
    } finally {
      await storage.close();
    }
  },
);

/** The options `report revenue` and `report journal` share, checked before any database is opened. */
function reportRange(options: { from: string; to: string; currency?: string; format: string }) {
  const from = time(options.from, 'from')!;
  const to = time(options.to, 'to')!;
  if (to <= from) throw new UsageError('--to must be after --from');
  if (options.currency !== undefined && !/^[A-Z]{3}$/.test(options.currency)) {
    throw new UsageError(`--currency must be an ISO 4217 code such as USD, got "${options.currency}"`);
  }
  if (options.format !== 'json' && options.format !== 'csv') {
    throw new UsageError(`--format must be json or csv, got "${options.format}"`);
  }
  return { from, to, currency: options.currency ?? null, csv: options.format === 'csv' };
}

/** Rows of text fields as CSV (with a header) or as JSON objects keyed by the columns. */
function printTable(columns: readonly string[], rows: readonly string[][], csv: boolean, extra: object = {}) {
  if (csv) {
    process.stdout.write(csvLine(columns) + rows.map(csvLine).join(''));
    return;
  }
  const objects = rows.map((fields) => Object.fromEntries(columns.map((c, i) => [c, fields[i]])));
  process.stdout.write(`${JSON.stringify({ ...extra, rows: objects }, null, 2)}\n`);
}

const report = program.command('report').description('finance reports of the books (read only)');

withDatabase(
  report
    .command('revenue')
    .description(
      'deferred revenue roll-forward of paid credits per currency and group: opening, additions, recognised, breakage, refunds, closing (totals last)',
    )
    .requiredOption('--from <time>', 'start of the range, inclusive (RFC 3339)')
    .requiredOption('--to <time>', 'end of the range, exclusive (RFC 3339)')
    .option('--currency <code>', 'only grants whose cost basis is in this currency')
    .option('--group-by <group>', `${REVENUE_GROUP_BYS.join(' | ')}`, 'customer')
    .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
    .option('--format <format>', 'json | csv', 'json'),
).action(
  async (options: {
    database?: string;
    from: string;
    to: string;
    currency?: string;
    groupBy: string;
    workspace: string;
    format: string;
  }) => {
    const range = reportRange(options);
    if (!(REVENUE_GROUP_BYS as readonly string[]).includes(options.groupBy)) {
      throw new UsageError(
        `--group-by must be one of ${REVENUE_GROUP_BYS.join(', ')}, got "${options.groupBy}"`,
      );
    }
    const storage = await openExisting(chooseDatabase(options.database));
    try {
      const result = await revenueReport(createContext(storage), {
        workspaceId: options.workspace,
        from: range.from,
        to: range.to,
        currency: range.currency,
        groupBy: options.groupBy as RevenueGroupBy,
      });
      printTable(REVENUE_COLUMNS, [...result.rows, ...result.totals].map(revenueRowFields), range.csv, {
        from: new Date(range.from).toISOString(),
        to: new Date(range.to).toISOString(),
        group_by: options.groupBy,
        currency: range.currency,
      });
    } finally {
      await storage.close();
    }
  },
);

withDatabase(
  report
    .command('journal')
    .description('the revenue facts as balanced double-entry journal lines per currency and month')
    .requiredOption('--from <time>', 'start of the range, inclusive (RFC 3339)')
    .requiredOption('--to <time>', 'end of the range, exclusive (RFC 3339)')
    .option('--currency <code>', 'only grants whose cost basis is in this currency')
    .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
    .option('--format <format>', 'json | csv', 'json'),
).action(
  async (options: {
    database?: string;
    from: string;
    to: string;
    currency?: string;
    workspace: string;
    format: string;
  }) => {
    const range = reportRange(options);
    const storage = await openExisting(chooseDatabase(options.database));
    try {
      const lines = await revenueJournal(createContext(storage), {
        workspaceId: options.workspace,
        from: range.from,
        to: range.to,
        currency: range.currency,
      });
      printTable(JOURNAL_COLUMNS, lines.map(journalLineFields), range.csv);
    } finally {
      await storage.close();
    }
  },
);
/** A JWKS from a file or an http(s) URL. */
async function readJwks(source: string): Promise<Jwks> {
  let text: string;
  if (/^https?:\/\//.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`--jwks ${source} answered ${res.status}`);
    text = await res.text();
  } else {
    try {
      text = readFileSync(source, 'utf8');
    } catch {
      throw new UsageError(`--jwks: cannot read ${source}`);
    }
  }
  const parsed = JSON.parse(text) as Jwks;
  if (!Array.isArray(parsed?.keys)) throw new UsageError('--jwks is not a JWKS document ({"keys": [...]})');
  return parsed;
}

program
  .command('license')
  .description('software licensing tools')
  .command('verify')
  .description(
    `verify a license file offline: exit 0 when valid; otherwise ${Object.entries(VERIFY_EXIT_CODES)
      .map(([error, code]) => `${code} ${error}`)
      .join(', ')}`,
  )
  .argument('<file>', 'the license file (compact JWS), or - for stdin')
  .requiredOption('--jwks <file|url>', 'the public key set (GET /v1/licensing/jwks), a file or an URL')
  .option('--fingerprint <fingerprint>', "this machine's fingerprint (a file for another machine is refused)")
  .option('--now <time>', "the verifier's now (RFC 3339; default the clock)")
  .option('--last-known-time <time>', 'the latest instant this machine has seen (clock rollback detection)')
  .action(
    async (
      file: string,
      options: { jwks: string; fingerprint?: string; now?: string; lastKnownTime?: string },
    ) => {
      const now = time(options.now, 'now');
      const lastKnownTime = time(options.lastKnownTime, 'last-known-time');
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch {
        throw new UsageError(`cannot read ${file}`);
      }
      const verdict = await verifyLicenseFile(text, await readJwks(options.jwks), {
        ...(options.fingerprint !== undefined ? { fingerprint: options.fingerprint } : {}),
        ...(now !== null ? { now } : {}),
        ...(lastKnownTime !== null ? { lastKnownTime } : {}),
      });
      if (verdict.ok) {
        process.stdout.write(
          `${JSON.stringify({ valid: true, kid: verdict.kid, payload: verdict.payload }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `${JSON.stringify({ valid: false, error: verdict.error, message: verdict.message })}\n`,
      );
      process.stderr.write(`burndown: license file refused: ${verdict.error}: ${verdict.message}\n`);
      process.exitCode = VERIFY_EXIT_CODES[verdict.error];
    },
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`burndown: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
