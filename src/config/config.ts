import { DEFAULT_EXPIRY_NOTICE_LEADS_MS, parseNoticeLeads } from '../domain/alerts/balance-thresholds.js';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import { parseRateLimit, type RateLimitPolicy } from '../domain/limits/token-bucket.js';
import { checkDatabaseUrl, DEFAULT_DATABASE_URL } from './database-url.js';

/** The service's configuration, parsed and validated once from the environment, then frozen. */
export interface Config {
  /** TCP port of the HTTP server. `PORT`, default 7420. */
  readonly port: number;
  /** Interface to bind. `HOST`, default 127.0.0.1 (not exposed until you say so). */
  readonly host: string;
  /** Admin key of the default workspace. `BURNDOWN_API_KEY`; when unset, one is generated at first start. */
  readonly apiKey: string | null;
  /** `sqlite:<path>` (default `sqlite:./data/burndown.db`) or `postgres://…`. `BURNDOWN_DATABASE_URL`. */
  readonly databaseUrl: string;
  /** How often expired grants and holds are swept into the ledger, in ms. `BURNDOWN_SWEEP_INTERVAL_MS`, default 1000. */
  readonly sweepIntervalMs: number;
  /** Largest accepted request body in bytes. `BURNDOWN_BODY_LIMIT`, default 1 MiB. */
  readonly bodyLimit: number;
  /** Connections per process to PostgreSQL. `BURNDOWN_PG_POOL_SIZE`, default 10. */
  readonly pgPoolSize: number;
  /**
   * Group commit on PostgreSQL: ledger-write batches in flight at once per process, each one
   * transaction. `BURNDOWN_PG_WRITE_BATCHES`, default 2; 0 runs every write in its own transaction.
   */
  readonly pgWriteBatches: number;
  /** Log level: `BURNDOWN_LOG_LEVEL` (fatal…trace, silent), default `info`. */
  readonly logLevel: string;
  /** Longest time to receive a whole request (headers and body), in ms. `BURNDOWN_REQUEST_TIMEOUT_MS`, default 30,000. */
  readonly requestTimeoutMs: number;
  /** Most open HTTP connections; more are closed at once. `BURNDOWN_MAX_CONNECTIONS`, default 1024. */
  readonly maxConnections: number;
  /** Longest hold a `POST /v1/check` may take, in seconds. `BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS`, default 900. */
  readonly checkHoldMaxTtlSeconds: number;
  /**
   * Lead times of `grant.expiring_soon`, in ms: each open grant gets one notice per lead time.
   * `BURNDOWN_EXPIRY_NOTICE_LEADS` (e.g. `7d,1d,12h`; empty: none), default 7d and 1d.
   */
  readonly expiryNoticeLeadsMs: readonly number[];
  /** Serve `/metrics` without a key. `BURNDOWN_METRICS_PUBLIC=1`; default off (any valid key). */
  readonly metricsPublic: boolean;
  /**
   * Let webhook endpoints point at private, loopback and link-local addresses.
   * `BURNDOWN_WEBHOOKS_ALLOW_PRIVATE=1`; default off (server-side request forgery guard). Tests set it.
   */
  readonly webhooksAllowPrivate: boolean;
  /** How often the webhook dispatcher runs, in ms; 0 disables it in this process. `BURNDOWN_WEBHOOK_INTERVAL_MS`, default 1000. */
  readonly webhookIntervalMs: number;
  /** Deliveries one process sends at once. `BURNDOWN_WEBHOOK_CONCURRENCY`, default 8. */
  readonly webhookConcurrency: number;
  /** An endpoint failing this many days in a row is disabled. `BURNDOWN_WEBHOOK_DISABLE_AFTER_DAYS`, default 5. */
  readonly webhookDisableAfterDays: number;
  /** How long a rotated secret keeps signing, in hours. `BURNDOWN_WEBHOOK_SECRET_OVERLAP_HOURS`, default 24. */
  readonly webhookSecretOverlapHours: number;
  /** Longest wait for a receiver's answer, in ms. `BURNDOWN_WEBHOOK_TIMEOUT_MS`, default 15,000. */
  readonly webhookTimeoutMs: number;
  /**
   * Signing secret of the Stripe webhook endpoint (`whsec_…`). `BURNDOWN_STRIPE_WEBHOOK_SECRET`;
   * unset: `POST /v1/integrations/stripe/webhook` answers 503 and applies nothing.
   */
  readonly stripeWebhookSecret: string | null;
  /** The workspace Stripe's events apply to. `BURNDOWN_STRIPE_WORKSPACE`, default `default`. */
  readonly stripeWorkspace: string;
  /**
   * Stripe secret API key (`sk_…` or a restricted `rk_…` allowed to create PaymentIntents), used to
   * charge auto top-ups whose provider is `stripe`. `BURNDOWN_STRIPE_SECRET_KEY`; unset: such
   * top-ups stay pending (nothing is charged or granted).
   */
  readonly stripeSecretKey: string | null;
  /**
   * Default rate limit of every key without its own, `<requests>/<seconds>s` (a token bucket: a
   * burst of <requests>, refilled at <requests> per <seconds>). `BURNDOWN_RATE_LIMIT_PER_KEY`;
   * default none.
   */
  readonly rateLimitPerKey: RateLimitPolicy | null;
  /**
   * Rate limit per customer on debits, holds, checks and event ingest, same form.
   * `BURNDOWN_RATE_LIMIT_PER_CUSTOMER`; default none.
   */
  readonly rateLimitPerCustomer: RateLimitPolicy | null;
  /**
   * Origins that may embed the customer portal in an iframe (CSP `frame-ancestors`).
   * `BURNDOWN_PORTAL_FRAME_ANCESTORS`, space- or comma-separated `https://app.example.com`; default none.
   */
  readonly portalFrameAncestors: readonly string[];
  /**
   * Encrypts license-file signing keys at rest (AES-256-GCM). `BURNDOWN_LICENSING_SECRET` (at least
   * 16 characters); when unset the keys are stored unencrypted.
   */
  readonly licensingSecret: string | null;
  /** Longest life of a license file, in seconds. `BURNDOWN_LICENSE_FILE_TTL_SECONDS`, default 7 days. */
  readonly licenseFileTtlSeconds: number;
}

function rateLimit(env: NodeJS.ProcessEnv, name: string): RateLimitPolicy | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  const policy = parseRateLimit(raw);
  if (policy === null) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      `${name} must be <requests>/<seconds>s, e.g. 100/1s or 6000/60s`,
      { name },
    );
  }
  return policy;
}

/** An origin a CSP source list may name: scheme, host, optional port; nothing else. */
const ORIGIN = /^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$/;

function origins(env: NodeJS.ProcessEnv, name: string): string[] {
  const list = (env[name] ?? '').split(/[\s,]+/).filter((o) => o !== '');
  for (const origin of list) {
    if (!ORIGIN.test(origin)) {
      throw new BurndownError(
        ErrorCode.invalidRequest,
        `${name} must list origins such as https://app.example.com (got ${JSON.stringify(origin)})`,
        { name },
      );
    }
  }
  return list;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      `${name} must be an integer between ${min} and ${max}`,
      { name },
    );
  }
  return Number(raw);
}

/** The levels `BURNDOWN_LOG_LEVEL` takes (pino's); `info` logs one line per request. */
export const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads the configuration; throws a clear error naming the variable that is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const apiKey = env['BURNDOWN_API_KEY'];
  if (apiKey !== undefined && apiKey !== '' && apiKey.length < 16) {
    throw new BurndownError(ErrorCode.invalidRequest, 'BURNDOWN_API_KEY must be at least 16 characters', {});
  }
  const databaseUrl = checkDatabaseUrl(env['BURNDOWN_DATABASE_URL'] || DEFAULT_DATABASE_URL);
  const metricsPublic = env['BURNDOWN_METRICS_PUBLIC'] ?? '';
  if (!['', '0', '1'].includes(metricsPublic)) {
    throw new BurndownError(ErrorCode.invalidRequest, 'BURNDOWN_METRICS_PUBLIC must be 0 or 1', {
      name: 'BURNDOWN_METRICS_PUBLIC',
    });
  }
  const allowPrivate = env['BURNDOWN_WEBHOOKS_ALLOW_PRIVATE'] ?? '';
  if (!['', '0', '1'].includes(allowPrivate)) {
    throw new BurndownError(ErrorCode.invalidRequest, 'BURNDOWN_WEBHOOKS_ALLOW_PRIVATE must be 0 or 1', {
      name: 'BURNDOWN_WEBHOOKS_ALLOW_PRIVATE',
    });
  }
  const logLevel = env['BURNDOWN_LOG_LEVEL'] || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      `BURNDOWN_LOG_LEVEL must be one of: ${LOG_LEVELS.join(', ')}`,
      { name: 'BURNDOWN_LOG_LEVEL' },
    );
  }
  const leads = env['BURNDOWN_EXPIRY_NOTICE_LEADS'];
  let expiryNoticeLeadsMs: readonly number[] = DEFAULT_EXPIRY_NOTICE_LEADS_MS;
  if (leads !== undefined) {
    try {
      expiryNoticeLeadsMs = parseNoticeLeads(leads);
    } catch (error) {
      throw new BurndownError(
        ErrorCode.invalidRequest,
        `BURNDOWN_EXPIRY_NOTICE_LEADS: ${(error as Error).message}`,
        { name: 'BURNDOWN_EXPIRY_NOTICE_LEADS' },
      );
    }
  }
  const licensingSecret = env['BURNDOWN_LICENSING_SECRET'] || null;
  if (licensingSecret !== null && licensingSecret.length < 16) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      'BURNDOWN_LICENSING_SECRET must be at least 16 characters',
      {
        name: 'BURNDOWN_LICENSING_SECRET',
      },
    );
  }
  return Object.freeze({
    port: integer(env, 'PORT', 7420, 0, 65535),
    host: env['HOST'] || '127.0.0.1',
    apiKey: apiKey ? apiKey : null,
    databaseUrl,
    sweepIntervalMs: integer(env, 'BURNDOWN_SWEEP_INTERVAL_MS', 1000, 10, 3_600_000),
    bodyLimit: integer(env, 'BURNDOWN_BODY_LIMIT', 1024 * 1024, 1024, 256 * 1024 * 1024),
    pgPoolSize: integer(env, 'BURNDOWN_PG_POOL_SIZE', 10, 1, 1000),
    pgWriteBatches: integer(env, 'BURNDOWN_PG_WRITE_BATCHES', 2, 0, 1000),
    logLevel,
    requestTimeoutMs: integer(env, 'BURNDOWN_REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
    maxConnections: integer(env, 'BURNDOWN_MAX_CONNECTIONS', 1024, 1, 1_000_000),
    checkHoldMaxTtlSeconds: integer(env, 'BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS', 900, 1, 30 * 24 * 3600),
    metricsPublic: metricsPublic === '1',
    webhooksAllowPrivate: allowPrivate === '1',
    webhookIntervalMs: integer(env, 'BURNDOWN_WEBHOOK_INTERVAL_MS', 1000, 0, 3_600_000),
    webhookConcurrency: integer(env, 'BURNDOWN_WEBHOOK_CONCURRENCY', 8, 1, 1000),
    webhookDisableAfterDays: integer(env, 'BURNDOWN_WEBHOOK_DISABLE_AFTER_DAYS', 5, 1, 365),
    webhookSecretOverlapHours: integer(env, 'BURNDOWN_WEBHOOK_SECRET_OVERLAP_HOURS', 24, 0, 24 * 30),
    webhookTimeoutMs: integer(env, 'BURNDOWN_WEBHOOK_TIMEOUT_MS', 15_000, 100, 60_000),
    expiryNoticeLeadsMs,
    stripeWebhookSecret: env['BURNDOWN_STRIPE_WEBHOOK_SECRET'] || null,
    stripeWorkspace: env['BURNDOWN_STRIPE_WORKSPACE'] || 'default',
    stripeSecretKey: env['BURNDOWN_STRIPE_SECRET_KEY'] || null,
    rateLimitPerKey: rateLimit(env, 'BURNDOWN_RATE_LIMIT_PER_KEY'),
    rateLimitPerCustomer: rateLimit(env, 'BURNDOWN_RATE_LIMIT_PER_CUSTOMER'),
    portalFrameAncestors: origins(env, 'BURNDOWN_PORTAL_FRAME_ANCESTORS'),
    licensingSecret,
    licenseFileTtlSeconds: integer(env, 'BURNDOWN_LICENSE_FILE_TTL_SECONDS', 7 * 86_400, 60, 366 * 86_400),
  });
}
