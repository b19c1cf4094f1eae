import type { FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import { sqlitePathOf } from './config/database-url.js';
import { BurndownError, ErrorCode } from './domain/errors.js';
import type { Clock } from './domain/time/clock.js';
import { buildApp } from './http/app.js';
import { IDEMPOTENCY_RETENTION_MS } from './http/idempotent-write.js';
import { Metrics } from './http/metrics.js';
import { TimeOrderedIds } from './infra/ids.js';
import { observeCommittedEntries } from './infra/observed-storage.js';
import { systemClock } from './infra/system-clock.js';
import type { DatabaseState, Storage } from './ports/storage.js';
import { ensureAdminKey } from './services/api-keys.js';
import type { ServiceContext } from './services/context.js';
import { sweepDueLedgers } from './services/ledger.js';
import { sweepSilentMachines } from './services/licensing.js';
import { sweepDueSubscriptions } from './services/subscriptions.js';
import { PostgresStorage } from './storage/postgres/postgres-storage.js';
import { SqliteStorage } from './storage/sqlite/sqlite-storage.js';

/**
 * The composition root: the only place that picks a storage adapter and wires the real clock,
 * ids and transports together.
 */

/** Opens the storage named by a database URL: `sqlite:<path>` or `postgres://…`. */
export async function openStorage(
  databaseUrl: string,
  options: { metrics?: Metrics; poolSize?: number } = {},
): Promise<Storage> {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = sqlitePathOf(databaseUrl);
    const storage = await SqliteStorage.open({
      path,
      onBatch: (size) => options.metrics?.commitBatch.observe(size),
    });
    if (options.metrics) {
      options.metrics.storageGauges = () => {
        const { journalMode, synchronous } = storage.durability();
        return [
          {
            name: 'burndown_sqlite_wal',
            help: '1 when the SQLite journal mode is WAL',
            value: journalMode === 'wal' ? 1 : 0,
          },
          {
            name: 'burndown_sqlite_synchronous',
            help: 'PRAGMA synchronous of the SQLite writer (2 = FULL: every commit fsyncs the WAL)',
            value: synchronous,
          },
        ];
      };
    }
    return storage;
  }
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    return PostgresStorage.open({
      connectionString: databaseUrl,
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    });
  }
  throw new BurndownError(
    ErrorCode.invalidRequest,
    'BURNDOWN_DATABASE_URL must start with sqlite: or postgres://',
    {},
  );
}

/** What a database URL points at, without creating or migrating anything (see {@link DatabaseState}). */
export async function databaseState(databaseUrl: string): Promise<DatabaseState> {
  if (databaseUrl.startsWith('sqlite:')) return SqliteStorage.state(sqlitePathOf(databaseUrl));
  return PostgresStorage.state({ connectionString: databaseUrl });
}

/**
 * Connects a storage to the metrics: ledger entries are counted once committed (one seam, the
 * storage's `write`), and the database gauges are read at each scrape at `clock`'s now.
 */
export function instrumentStorage(storage: Storage, metrics: Metrics, clock: Clock): Storage {
  metrics.databaseGauges = async () => {
    const now = clock.now();
    return { now, gauges: await storage.operationalGauges(now) };
  };
  return observeCommittedEntries(storage, (entries) => metrics.observeEntries(entries));
}

/** The real-time service context for a storage. */
export function createContext(storage: Storage): ServiceContext {
  return { storage, clock: systemClock, ids: new TimeOrderedIds(() => systemClock.now()) };
}

/** A running server and how to stop it. */
export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  /** The admin key generated at first start, if one was (shown once). */
  readonly generatedKey: string | null;
  stop(): Promise<void>;
}

/** Starts the HTTP server with a background sweeper for due expiries and old idempotency records. */
export async function startServer(config: Config): Promise<RunningServer> {
  const metrics = new Metrics();
  const storage = instrumentStorage(
    await openStorage(config.databaseUrl, { metrics, poolSize: config.pgPoolSize }),
    metrics,
    systemClock,
  );
  const ctx = createContext(storage);
  const generatedKey = await ensureAdminKey(ctx, config.apiKey);
  const app = await buildApp(ctx, {
    bodyLimit: config.bodyLimit,
    logLevel: config.logLevel,
    metrics,
    requestTimeoutMs: config.requestTimeoutMs,
    maxConnections: config.maxConnections,
    metricsPublic: config.metricsPublic,
    checkHoldMaxTtlSeconds: config.checkHoldMaxTtlSeconds,
    licensing: { secret: config.licensingSecret, maxFileTtlMs: config.licenseFileTtlSeconds * 1000 },
  });
  if (config.licensingSecret === null) {
    app.log.warn('BURNDOWN_LICENSING_SECRET is not set: license-file signing keys are stored unencrypted');
  }
  // Resets missed while the server was down are issued before it takes traffic (each exactly once).
  for (;;) {
    const swept = await sweepDueSubscriptions(ctx, {
      onError: (error) => app.log.error({ err: error }, 'subscription catch-up failed'),
    });
    if (swept.customers - swept.failed === 0) break;
  }
  const url = await app.listen({ port: config.port, host: config.host });
  let sweeping = false;
  let lastCleanup = 0;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void (async () => {
      try {
        await sweepDueSubscriptions(ctx, {
          onError: (error) => app.log.error({ err: error }, 'subscription renewal failed'),
        });
        const swept = await sweepDueLedgers(ctx);
        if (swept > 0) metrics.sweeps.inc({}, swept);
        await sweepSilentMachines(ctx);
        const now = ctx.clock.now();
        if (now - lastCleanup > 60_000) {
          lastCleanup = now;
          await storage.write('idempotency-cleanup', async (tx) =>
            tx.deleteIdempotencyBefore(now - IDEMPOTENCY_RETENTION_MS),
          );
        }
      } catch (error) {
        app.log.error({ err: error }, 'sweeper failed');
      } finally {
        sweeping = false;
      }
    })();
  }, config.sweepIntervalMs);
  sweeper.unref();
  return {
    app,
    url,
    generatedKey,
    async stop() {
      clearInterval(sweeper);
      await app.close();
      await storage.close();
    },
  };
}
