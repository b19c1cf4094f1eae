import { BurndownError, ErrorCode } from '../domain/errors.js';
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
  /** Log level: `BURNDOWN_LOG_LEVEL` (fatal…trace, silent), default `info`. */
  readonly logLevel: string;
  /** Longest time to receive a whole request (headers and body), in ms. `BURNDOWN_REQUEST_TIMEOUT_MS`, default 30,000. */
  readonly requestTimeoutMs: number;
  /** Most open HTTP connections; more are closed at once. `BURNDOWN_MAX_CONNECTIONS`, default 1024. */
  readonly maxConnections: number;
  /** Longest hold a `POST /v1/check` may take, in seconds. `BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS`, default 900. */
  readonly checkHoldMaxTtlSeconds: number;
  /** Serve `/metrics` without a key. `BURNDOWN_METRICS_PUBLIC=1`; default off (any valid key). */
  readonly metricsPublic: boolean;
  /**
   * Encrypts license-file signing keys at rest (AES-256-GCM). `BURNDOWN_LICENSING_SECRET` (at least
   * 16 characters); when unset the keys are stored unencrypted.
   */
  readonly licensingSecret: string | null;
  /** Longest life of a license file, in seconds. `BURNDOWN_LICENSE_FILE_TTL_SECONDS`, default 7 days. */
  readonly licenseFileTtlSeconds: number;
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
  const logLevel = env['BURNDOWN_LOG_LEVEL'] || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      `BURNDOWN_LOG_LEVEL must be one of: ${LOG_LEVELS.join(', ')}`,
      { name: 'BURNDOWN_LOG_LEVEL' },
    );
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
    logLevel,
    requestTimeoutMs: integer(env, 'BURNDOWN_REQUEST_TIMEOUT_MS', 30_000, 1000, 3_600_000),
    maxConnections: integer(env, 'BURNDOWN_MAX_CONNECTIONS', 1024, 1, 1_000_000),
    checkHoldMaxTtlSeconds: integer(env, 'BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS', 900, 1, 30 * 24 * 3600),
    metricsPublic: metricsPublic === '1',
    licensingSecret,
    licenseFileTtlSeconds: integer(env, 'BURNDOWN_LICENSE_FILE_TTL_SECONDS', 7 * 86_400, 60, 366 * 86_400),
  });
}
