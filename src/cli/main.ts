#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { parseInstant } from '../domain/time/instant.js';
import { createContext, openStorage, startServer } from '../main.js';
import { presentBalance } from '../services/balance-document.js';
import { DEFAULT_CREDIT_TYPE, DEFAULT_WORKSPACE } from '../services/context.js';
import { readBalance } from '../services/ledger.js';
import { backfillRate } from '../services/metering.js';
import { reconcileLedger } from '../services/reconcile.js';

/** A progress line redrawn in place on a terminal, printed every few seconds otherwise. */
class ProgressLine {
  private last = 0;
  private spinner = 0;
  constructor(private readonly out: NodeJS.WriteStream) {}

  update(text: string): void {
    if (this.out.isTTY) {
      const frame = '|/-\\'[this.spinner++ % 4];
      this.out.write(`\r${frame} ${text}\u001b[K`);
    } else if (Date.now() - this.last > 2000) {
      this.last = Date.now();
      this.out.write(`${text}\n`);
    }
  }

  done(): void {
    if (this.out.isTTY) this.out.write('\r\u001b[K');
  }
}

/** The `burndown` command: thin over the services, never over HTTP internals. */
const program = new Command()
  .name('burndown')
  .description('Burndown: credit ledger for credit-based and usage-based pricing');

program
  .command('serve')
  .description('run the HTTP server (migrates the database first)')
  .action(async () => {
    const config = loadConfig();
    const server = await startServer(config);
    if (server.generatedKey) {
      process.stdout.write(
        `\nNo BURNDOWN_API_KEY was set, so an admin key was generated. It is shown only this once:\n\n  ${server.generatedKey}\n\n` +
          'Store it now (only its hash is kept). Use it as: Authorization: Bearer <key>\n\n',
      );
    }
    process.stdout.write(`burndown listening on ${server.url} (database ${config.databaseUrl})\n`);
    const stop = async () => {
      await server.stop();
      process.exit(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    const config = loadConfig();
    const storage = await openStorage(config.databaseUrl, { poolSize: config.pgPoolSize });
    await storage.migrate();
    await storage.close();
    process.stdout.write('migrations applied\n');
  });

program
  .command('reconcile')
  .description('replay the ledger and prove its invariants; exits 1 naming each failing account')
  .option('--json', 'print the report as JSON')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig();
    const storage = await openStorage(config.databaseUrl, { poolSize: config.pgPoolSize });
    const report = await reconcileLedger(storage);
    await storage.close();
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
  });

program
  .command('balance')
  .description("print a customer's balance")
  .argument('<customer>', 'customer id')
  .option('--credit-type <id>', 'credit type', DEFAULT_CREDIT_TYPE)
  .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
  .option('--at <time>', 'an instant in the past (RFC 3339)')
  .action(async (customer: string, options: { creditType: string; workspace: string; at?: string }) => {
    const config = loadConfig();
    const storage = await openStorage(config.databaseUrl, { poolSize: config.pgPoolSize });
    try {
      const at = options.at === undefined ? null : parseInstant(options.at);
      if (options.at !== undefined && at === null) throw new Error('--at must be an RFC 3339 timestamp');
      const balance = await readBalance(createContext(storage), {
        key: { workspaceId: options.workspace, customerId: customer, creditType: options.creditType },
        at,
      });
      process.stdout.write(`${JSON.stringify(presentBalance(balance), null, 2)}\n`);
    } finally {
      await storage.close();
    }
  });

program
  .command('backfill')
  .description('apply a rate created later to stored events it has not burned yet (idempotent)')
  .requiredOption('--rate <id>', 'rate id')
  .option('--workspace <id>', 'workspace', DEFAULT_WORKSPACE)
  .option('--from <time>', 'only events at or after this instant (RFC 3339)')
  .option('--to <time>', 'only events before this instant (RFC 3339)')
  .action(async (options: { rate: string; workspace: string; from?: string; to?: string }) => {
    const config = loadConfig();
    const storage = await openStorage(config.databaseUrl, { poolSize: config.pgPoolSize });
    try {
      const time = (text: string | undefined, name: string) => {
        if (text === undefined) return null;
        const at = parseInstant(text);
        if (at === null) throw new Error(`--${name} must be an RFC 3339 timestamp`);
        return at;
      };
      const progress = new ProgressLine(process.stderr);
      const result = await backfillRate(
        createContext(storage),
        {
          workspaceId: options.workspace,
          rateId: options.rate,
          from: time(options.from, 'from'),
          to: time(options.to, 'to'),
        },
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
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`burndown: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
