import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
import { StripePaymentProvider } from './infra/payments/stripe-provider.js';
import { systemClock } from './infra/system-clock.js';
import { HttpWebhookTransport } from './infra/webhook-transport.js';
import type { DatabaseState, Storage } from './ports/storage.js';
import { ensureAdminKey } from './services/api-keys.js';
import { sweepExpiryNotices } from './services/balance-alerts.js';
import type { ServiceContext } from './services/context.js';
import { sweepDueLedgers } from './services/ledger.js';
import { sweepSilentMachines } from './services/licensing.js';
import { RUNWAY_SWEEP_INTERVAL_MS, sweepRunwayAlerts } from './services/runway-alerts.js';
import { sweepDueSubscriptions } from './services/subscriptions.js';
import { chargeWaitingTopUps } from './services/top-ups.js';
import { WebhookDispatcher } from './services/webhook-dispatcher.js';
import { PostgresStorage } from './storage/postgres/postgres-storage.js';
import { SqliteStorage } from './storage/sqlite/sqlite-storage.js';

/**
 * The composition root: the only place that picks a storage adapter and wires the real clock,
 * ids and transports together.
 */

/** Opens the storage named by a database URL: `sqlite:<path>` or `postgres://…`. */
export async function openStorage(
  databaseUrl: string,
  options: { metrics?: Metrics; poolSize?: number; writeBatches?: number } = {},
): Promise<Storage> {
  if (databaseUrl.startsWith('sqlite:')) {
    const path = sqlitePathOf(databaseUrl);
    const storage = await SqliteStorage.open({
      path,
      onBatch: (size) => options.metrics?.commitBatch.observe(size),
    });
    if (options.metrics) {
      options.metrics.storageGauges = () => {
        const { journalMode, synchronous, pipelinedWalSync, walSyncs } = storage.durability();
        return [
          {
            name: 'burndown_sqlite_wal',
            help: '1 when the SQLite journal mode is WAL',
            value: journalMode === 'wal' ? 1 : 0,
          },
          {
            name: 'burndown_sqlite_synchronous',
            help: 'PRAGMA synchronous of the SQLite writer (1 = NORMAL with the pipelined WAL sync, 2 = FULL)',
            value: synchronous,
          },
          {
            name: 'burndown_sqlite_pipelined_wal_sync',
            help: '1 when every write is answered only after a WAL fdatasync made it durable, off the event loop',
            value: pipelinedWalSync ? 1 : 0,
          },
          {
            name: 'burndown_sqlite_wal_syncs',
            help: 'WAL fdatasyncs since start that made committed write batches durable before they were answered',
            value: walSyncs,
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
      ...(options.writeBatches === undefined ? {} : { writeBatches: options.writeBatches }),
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
    await openStorage(config.databaseUrl, {
      metrics,
      poolSize: config.pgPoolSize,
      writeBatches: config.pgWriteBatches,
    }),
    metrics,
    systemClock,
  );
  const ctx = createContext(storage);
  const generatedKey = await ensureAdminKey(ctx, config.apiKey);
  const transport = new HttpWebhookTransport({
    allowPrivate: config.webhooksAllowPrivate,
    timeoutMs: config.webhookTimeoutMs,
  });
  // The web app `npm run build` puts next to the compiled server (dist/web); none when not built.
  const webRoot = fileURLToPath(new URL('./web/', import.meta.url));
  const webBuilt = existsSync(`${webRoot}index.html`);
  const app = await buildApp(ctx, {
    webhooks: { transport, secretOverlapMs: config.webhookSecretOverlapHours * 3_600_000 },
    bodyLimit: config.bodyLimit,
    logLevel: config.logLevel,
    metrics,
    requestTimeoutMs: config.requestTimeoutMs,
    maxConnections: config.maxConnections,
    metricsPublic: config.metricsPublic,
    checkHoldMaxTtlSeconds: config.checkHoldMaxTtlSeconds,
    stripe: { webhookSecret: config.stripeWebhookSecret, workspaceId: config.stripeWorkspace },
    rateLimits: { perKey: config.rateLimitPerKey, perCustomer: config.rateLimitPerCustomer },
    ...(webBuilt ? { web: { root: webRoot, portalFrameAncestors: config.portalFrameAncestors } } : {}),
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
  let lastNotices = 0;
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
        // Notices are days ahead: a scan a minute is timely, and spares a range read every second.
        if (now - lastNotices > 60_000 && config.expiryNoticeLeadsMs.length > 0) {
          lastNotices = now;
          await sweepExpiryNotices(ctx, config.expiryNoticeLeadsMs);
        }
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
  // balance.runway_below: a forecast per watched customer, in a loop of its own so a large
  // workspace never delays expiries and renewals; runways move by the hour, every few minutes is enough.
  let runwaySweep: Promise<void> | null = null;
  const runwaySweeper = setInterval(() => {
    if (runwaySweep !== null) return;
    runwaySweep = sweepRunwayAlerts(ctx)
      .then(() => undefined)
      .catch((error: unknown) => app.log.error({ err: error }, 'runway sweep failed'))
      .finally(() => {
        runwaySweep = null;
      });
  }, RUNWAY_SWEEP_INTERVAL_MS);
  runwaySweeper.unref();
  // The webhook dispatcher runs beside the API (never inside a request): a slow or dead receiver
  // holds one of its slots, not a request. Several processes may run it on one PostgreSQL database.
  const dispatcher = new WebhookDispatcher(ctx, {
    transport,
    concurrency: config.webhookConcurrency,
    disableAfterMs: config.webhookDisableAfterDays * 86_400_000,
    onError: (error) => app.log.error({ err: error }, 'webhook dispatcher failed'),
  });
  if (config.webhookIntervalMs > 0) dispatcher.start(config.webhookIntervalMs);
  // Auto top-ups charged through Stripe: a loop of their own, so a slow charge never delays expiries.
  const provider = config.stripeSecretKey === null ? null : new StripePaymentProvider(config.stripeSecretKey);
  let charging = false;
  const topUpWorker = setInterval(() => {
    if (provider === null || charging) return;
    charging = true;
    void chargeWaitingTopUps(ctx, provider)
      .catch((error: unknown) => app.log.error({ err: error }, 'top-up worker failed'))
      .finally(() => {
        charging = false;
      });
  }, config.sweepIntervalMs);
  topUpWorker.unref();
  return {
    app,
    url,
    generatedKey,
    async stop() {
      clearInterval(sweeper);
      await dispatcher.stop();
      clearInterval(topUpWorker);
      clearInterval(runwaySweeper);
      await runwaySweep;
      await app.close();
      await storage.close();
    },
  };
}
