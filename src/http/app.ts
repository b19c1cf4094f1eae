import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import { parseRateLimit, type RateDecision, type RateLimitPolicy } from '../domain/limits/token-bucket.js';
import { HttpWebhookTransport } from '../infra/webhook-transport.js';
import type { ApiKeyScope } from '../ports/storage.js';
import { type ApiKeyResolver, apiKeyExpired, isExpired, keyUsageRecorderOf } from '../services/api-keys.js';
import type { ServiceContext } from '../services/context.js';
import { DEFAULT_LICENSING_OPTIONS, type LicensingOptions } from '../services/licensing-keys.js';
import { type Permission, permissionsOf } from '../services/permissions.js';
import { resolvePortalSession } from '../services/portal.js';
import { apiKeyResolverOf } from '../services/queries.js';
import { type RateLimiter, rateLimiterOf } from '../services/rate-limits.js';
import { DEFAULT_SECRET_OVERLAP_MS, type WebhookSettings } from '../services/webhook-endpoints.js';
import { statusOfErrorCode } from './error-status.js';
import { NOT_JSON_BODY } from './event-parsing.js';
import { errorBody, IdempotentWriter } from './idempotent-write.js';
import { jsonValueProblem, MAX_JSON_DEPTH } from './json-limits.js';
import { Metrics } from './metrics.js';
import {
  API_DESCRIPTION,
  documentedSchema,
  finishDocument,
  NamedSchemas,
  sharedNamedSchemas,
  TAGS,
} from './openapi.js';
import { operationKeyOf, permissionOf } from './permissions.js';
import { registerAdjustmentRoutes } from './routes/adjustments.js';
import { registerApiKeyRoutes } from './routes/api-keys.js';
import { registerAuditRoutes } from './routes/audit-log.js';
import { registerBalanceThresholdRoutes } from './routes/balance-thresholds.js';
import { registerBalanceRoutes } from './routes/balances.js';
import { DEFAULT_CHECK_HOLD_MAX_TTL_SECONDS, registerCheckRoutes } from './routes/check.js';
import { registerCorrectionRoutes } from './routes/corrections.js';
import { registerCreditPackRoutes } from './routes/credit-packs.js';
import { registerCreditTypeRoutes } from './routes/credit-types.js';
import { registerCustomerRoutes } from './routes/customers.js';
import { registerDebitRoutes } from './routes/debits.js';
import { registerEventRoutes } from './routes/events.js';
import { registerExportRoutes } from './routes/exports.js';
import { registerFeatureAndPlanRoutes } from './routes/features-plans.js';
import { registerFinanceRoutes } from './routes/finance.js';
import { registerForecastRoutes } from './routes/forecast.js';
import { registerGrantRoutes } from './routes/grants.js';
import { registerHoldRoutes } from './routes/holds.js';
import { registerImportRoutes } from './routes/imports.js';
import { registerLicensingRoutes } from './routes/licensing.js';
import { registerMeteringRoutes } from './routes/metering.js';
import { registerOperationRoutes } from './routes/operations.js';
import { portalToken, registerPortalRoutes } from './routes/portal.js';
import { registerReconciliationRoutes } from './routes/reconciliation.js';
import { registerStripeRoutes, STRIPE_WEBHOOK_PATH, type StripeWebhookOptions } from './routes/stripe.js';
import { registerSubscriptionRoutes } from './routes/subscriptions.js';
import { registerWebhookEndpointRoutes } from './routes/webhook-endpoints.js';
import { registerWorkspaceRoutes } from './routes/workspaces.js';
import { AmountText, BalanceBody, EntryBody, ErrorBody } from './schemas.js';
import { StaticFiles, type StaticFilesOptions } from './static-files.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's workspace and scope, set by the auth hook. */
    auth: RouteDepsAuth;
    /** The body exactly as received; the Idempotency-Key fingerprint is taken over it. */
    rawBody?: string;
  }
  interface FastifyContextConfig {
    /**
     * Marks a route that needs a key; routes without one are public (health, OpenAPI; metrics when
     * so configured). The value is the scope the route needed before permissions: what a key may
     * call is decided by OPERATION_PERMISSIONS (src/http/permissions.ts) alone.
     */
    scope?: ApiKeyScope | 'balance';
    /** A customer portal route: authenticated by the portal session cookie instead of a key. */
    portal?: boolean;
  }
}

/** What the routes share: use cases, the idempotent writer and metrics. */
export interface RouteDeps {
  readonly ctx: ServiceContext;
  readonly writer: IdempotentWriter;
  readonly metrics: Metrics;
  /** The API-key cache; a revocation invalidates it before it is answered. */
  readonly keys: ApiKeyResolver;
  /** Where webhook endpoints may point and how long a rotated secret keeps signing. */
  readonly webhooks: WebhookSettings;
  /** The default rate limits (null: none), for routes that show them. */
  readonly rateLimits: RateLimitDefaults;
}

/**
 * Default rate limits; both off unless configured (BURNDOWN_RATE_LIMIT_PER_KEY,
 * BURNDOWN_RATE_LIMIT_PER_CUSTOMER). A key's own `rate_limit` replaces the per-key default.
 */
export interface RateLimitDefaults {
  readonly perKey: RateLimitPolicy | null;
  /** Per customer, on the usage routes (debits, holds, checks, event ingest). */
  readonly perCustomer: RateLimitPolicy | null;
}

/** The operations limited per customer too, and where each finds its customers. */
const PER_CUSTOMER_OPERATIONS: ReadonlySet<string> = new Set([
  'POST /v1/customers/{id}/debits',
  'POST /v1/customers/{id}/holds',
  'POST /v1/check',
  'POST /v1/events',
]);

/** Options of the HTTP app. */
export interface AppOptions {
  /** Largest request body in bytes (413 `payload_too_large` beyond). */
  readonly bodyLimit: number;
  /** Fastify logger level; `silent` in tests. */
  readonly logLevel?: string;
  /** Where log lines go (default stdout); tests capture them here. */
  readonly logStream?: { write(line: string): void };
  readonly metrics?: Metrics;
  /** Largest body of `POST /v1/events` (a batch of up to 10,000 events), default 32 MiB. */
  readonly eventsBodyLimit?: number;
  /**
   * Longest time a client may take to send a whole request (headers and body), in ms; beyond it
   * the server answers 408 `request_timeout` and closes the connection. Default 30 s.
   */
  readonly requestTimeoutMs?: number;
  /** Most open connections; further ones are closed at once. Default 1024. */
  readonly maxConnections?: number;
  /** Serve `/metrics` without a key (default: any valid key). */
  readonly metricsPublic?: boolean;
  /** Longest `ttl_seconds` of a hold taken by `POST /v1/check`. Default 900. */
  readonly checkHoldMaxTtlSeconds?: number;
  /**
   * Webhook settings. Default: the HTTP transport refusing private destinations, and a rotated
   * secret signing for 24 h more.
   */
  readonly webhooks?: WebhookSettings;
  /** Stripe's webhook (payments in); without it the webhook answers 503 and applies nothing. */
  readonly stripe?: StripeWebhookOptions;
  /** Default rate limits (default: none). */
  readonly rateLimits?: RateLimitDefaults;
  /** The rate limiter (tests inject one with their clock); default: over the storage's leases. */
  readonly rateLimiter?: RateLimiter;
  /** The built web app (dashboard and portal) to serve at `/`; absent: none is served. */
  readonly web?: StaticFilesOptions;
  /** License-file signing: the key-encryption secret and the longest file TTL. */
  readonly licensing?: LicensingOptions;
}

/** One Ajv error as Fastify hands it over (`verbose`: with the failing schema and its parent). */
interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  schema?: unknown;
  parentSchema?: Record<string, unknown>;
  keyword?: string;
}

/**
 * The values a schema made only of constants accepts (`enum`, `const`, or an `anyOf` of them,
 * nullable included), or null when it accepts something else. Unions of literals fail in Ajv with
 * "must be equal to constant" per branch, which tells the client nothing; the list does.
 */
function constantsOf(schema: unknown): unknown[] | null {
  if (typeof schema !== 'object' || schema === null) return null;
  const s = schema as Record<string, unknown>;
  if ('const' in s) return [s['const']];
  if (Array.isArray(s['enum'])) return [...s['enum']];
  if (s['type'] === 'null') return [null];
  if (Array.isArray(s['anyOf'])) {
    const all: unknown[] = [];
    for (const branch of s['anyOf']) {
      const values = constantsOf(branch);
      if (values === null) return null;
      all.push(...values);
    }
    return all;
  }
  return null;
}

/** The allowed values to name when the first failure is a value outside an enumeration. */
function allowedValuesOf(issues: readonly ValidationIssue[], first: ValidationIssue): unknown[] | null {
  if (first.keyword !== 'const' && first.keyword !== 'enum' && first.keyword !== 'anyOf') return null;
  // A union's own error comes after its branches' errors, at the same place in the document; the
  // last one is the outermost union (a nullable enumeration is a union of a union and null).
  const union = issues.findLast((v) => v.keyword === 'anyOf' && v.instancePath === first.instancePath);
  const values = constantsOf(union?.parentSchema ?? first.parentSchema);
  return values !== null && values.length > 0 ? values : null;
}

/** How often Node looks for requests past their timeout: a timeout fires within this after its bound. */
const CONNECTIONS_CHECK_INTERVAL_MS = 250;

/** Maps anything thrown while handling a request to the contract's error envelope. */
export function toBurndownError(error: unknown): BurndownError {
  if (error instanceof BurndownError) return error;
  const e = error as Omit<FastifyError, 'validation'> & {
    validation?: ValidationIssue[];
    validationContext?: string;
  };
  if (e.validation && e.validation.length > 0) {
    const first = e.validation[0]!;
    const amountError = e.validation.find(
      (v) => v.parentSchema?.['x-amount'] === true && v.keyword !== 'required',
    );
    const missing = first.params?.['missingProperty'];
    const extra = first.params?.['additionalProperty'];
    const path = (amountError ?? first).instancePath?.replace(/^\//, '').replace(/\//g, '.') ?? '';
    const field =
      typeof missing === 'string'
        ? [path, missing].filter(Boolean).join('.')
        : typeof extra === 'string'
          ? [path, extra].filter(Boolean).join('.')
          : path;
    const where =
      e.validationContext === 'querystring'
        ? 'query parameter'
        : e.validationContext === 'params'
          ? 'path parameter'
          : 'field';
    if (amountError) {
      return new BurndownError(
        ErrorCode.invalidAmount,
        `${field || 'amount'} must be a decimal string such as "25" or "0.5"`,
        { field },
      );
    }
    const allowed = allowedValuesOf(e.validation, first);
    if (allowed !== null) {
      const list = allowed.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
      return new BurndownError(
        ErrorCode.invalidRequest,
        `${where} ${field || '(body)'} must be one of: ${list}`,
        {
          field,
          location: e.validationContext ?? 'body',
          allowed,
        },
      );
    }
    const message =
      typeof missing === 'string'
        ? `${where} ${field} is required`
        : typeof extra === 'string'
          ? `unknown ${where} ${field}`
          : `${where} ${field || '(body)'} ${first.message ?? 'is invalid'}`;
    return new BurndownError(ErrorCode.invalidRequest, message, {
      field,
      location: e.validationContext ?? 'body',
    });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BurndownError(ErrorCode.payloadTooLarge, 'request body is too large', {});
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BurndownError(ErrorCode.unsupportedMediaType, 'Content-Type must be application/json', {});
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BurndownError(ErrorCode.invalidRequest, 'request body is not valid JSON', {});
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413)
      return new BurndownError(ErrorCode.payloadTooLarge, 'request body is too large', {});
    return new BurndownError(ErrorCode.invalidRequest, e.message, {});
  }
  return new BurndownError(ErrorCode.internalError, 'internal error', {}, { cause: error });
}

/** Builds the HTTP app: auth, errors, OpenAPI and the routes of docs/api.md. Does not listen. */
export async function buildApp(ctx: ServiceContext, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Ids may be 128 characters (docs/api.md); the router's default limit is 100.
    routerOptions: { maxParamLength: 512 },
    // Errors the router raises before any hook (bad percent-encoding, …) get the envelope too.
    frameworkErrors: (error, _request, reply) => {
      const mapped = toBurndownError(error);
      (reply as FastifyReply)
        .code(statusOfErrorCode(mapped.code))
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(errorBody(mapped)));
    },
    logger: {
      level: options.logLevel ?? 'info',
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
    // Slow clients (slowloris, a dribbled body) cannot hold a connection past this bound.
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    http: { connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS },
    clientErrorHandler: answerClientError,
    ajv: {
      customOptions: {
        coerceTypes: false,
        removeAdditional: false,
        useDefaults: false,
        allErrors: false,
        verbose: true,
      },
      plugins: [markAmountKeyword as never],
    },
  });
  app.server.maxConnections = options.maxConnections ?? 1024;
  // Node's own headers timeout (60 s) would otherwise outlast a shorter request timeout.
  app.server.headersTimeout = Math.min(app.server.headersTimeout, app.server.requestTimeout);
  const metrics = options.metrics ?? new Metrics();
  const keys = apiKeyResolverOf(ctx);
  const webhooks = options.webhooks ?? {
    transport: new HttpWebhookTransport({ allowPrivate: false }),
    secretOverlapMs: DEFAULT_SECRET_OVERLAP_MS,
  };
  const rateLimits: RateLimitDefaults = options.rateLimits ?? { perKey: null, perCustomer: null };
  const deps: RouteDeps = { ctx, writer: new IdempotentWriter(ctx), metrics, keys, webhooks, rateLimits };
  const limiter = options.rateLimiter ?? rateLimiterOf(ctx);
  const usage = keyUsageRecorderOf(ctx, (error) =>
    app.log.warn({ err: error }, 'API key last-used time not recorded'),
  );
  const keyPolicies = new Map<string, RateLimitPolicy | null>();
  const keyPolicyOf = (rateLimit: string | null): RateLimitPolicy | null => {
    if (rateLimit === null) return rateLimits.perKey;
    let policy = keyPolicies.get(rateLimit);
    if (policy === undefined) {
      policy = parseRateLimit(rateLimit);
      keyPolicies.set(rateLimit, policy);
    }
    return policy ?? rateLimits.perKey;
  };

  app.decorateRequest('auth', undefined as unknown as RouteDepsAuth);
  app.decorateRequest('rawBody', undefined);

  // JSON only; the raw text is kept for idempotency fingerprints. An empty body reads as none.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    // CSV imports take text/csv only (a JSON body is a 415, not a confusing "must be string").
    if (request.routeOptions.url === '/v1/imports') {
      return done(new BurndownError(ErrorCode.unsupportedMediaType, 'Content-Type must be text/csv', {}));
    }
    if (text.trim() === '') return done(null, undefined);
    return parseJson(request, text, done);
  });
  // CloudEvents binary mode: the body is the event's data, in whatever media type it declares.
  // JSON-like bodies are parsed; anything else reaches the route as text and is refused per event.
  // Every other request with another media type is a 415.
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    if (request.headers['ce-specversion'] === undefined || request.routeOptions.url !== '/v1/events') {
      return done(
        new BurndownError(ErrorCode.unsupportedMediaType, 'Content-Type must be application/json', {}),
      );
    }
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type.endsWith('+json') || type.endsWith('/json')) return parseJson(request, text, done);
    return done(null, { [NOT_JSON_BODY]: type });
  });
  // CSV imports (POST /v1/imports) take text/csv; every other route refuses it as it refuses any
  // media type but JSON.
  app.addContentTypeParser('text/csv', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    if (request.routeOptions.url !== '/v1/imports') {
      return done(
        new BurndownError(ErrorCode.unsupportedMediaType, 'Content-Type must be application/json', {}),
      );
    }
    return done(null, body);
  });
  // CloudEvents structured and batched modes are JSON too.
  for (const type of ['application/cloudevents+json', 'application/cloudevents-batch+json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (request, body, done) => {
      request.rawBody = body as string;
      return parseJson(request, body as string, done);
    });
  }

  // Authentication runs on request, before the body is read: an unknown key gets its 401 and the
  // connection is closed (the error handler sets Connection: close) without reading the body.
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.portal === true) {
      const record = await resolvePortalSession(ctx, portalToken(request));
      request.portal = record;
      request.auth = {
        workspaceId: record.workspaceId,
        scope: 'read',
        keyHash: '',
        keyId: `portal:${record.id}`,
        // A portal session holds no API permission: its rights are the portal routes' own, for one customer.
        permissions: new Set<Permission>(),
      };
      return;
    }
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const resolved = match ? await keys.resolve(match[1]!) : null;
    if (!resolved) throw new BurndownError(ErrorCode.unauthorized, 'missing or unknown API key', {});
    const record = resolved.record;
    const now = ctx.clock.now();
    if (isExpired(record, now)) throw apiKeyExpired(record);
    const operation = operationKeyOf(request.method, request.routeOptions.url ?? '');
    const required = permissionOf(operation);
    const permissions = permissionsOf(record);
    if (required === undefined) {
      // Fail closed: a route nobody declared a permission for is callable by no key.
      throw new BurndownError(ErrorCode.forbidden, `no permission is declared for ${operation}`, {
        operation,
      });
    }
    if (!permissions.has(required)) {
      throw new BurndownError(ErrorCode.forbidden, `this key lacks the permission ${required}`, {
        required,
        scope: record.scope,
      });
    }
    request.auth = {
      workspaceId: record.workspaceId,
      scope: record.scope,
      keyHash: resolved.keyHash,
      keyId: record.id,
      permissions,
    };
    usage.noteUsed(record, now);
    const policy = keyPolicyOf(record.rateLimit);
    if (policy !== null) {
      enforce(reply, await limiter.take(`key:${record.id}`, policy), { limited: 'key', key_id: record.id });
    }
  });

  // Per-customer limits on the usage routes, once the body names the customers.
  // Registered only when configured: a hook costs every request its call even when it does nothing.
  const perCustomerPolicy = rateLimits.perCustomer;
  if (perCustomerPolicy !== null)
    app.addHook('preHandler', async (request, reply) => {
      const policy = perCustomerPolicy;
      if (request.auth === undefined) return;
      const operation = operationKeyOf(request.method, request.routeOptions.url ?? '');
      if (!PER_CUSTOMER_OPERATIONS.has(operation)) return;
      for (const customerId of customersOf(request.params, request.body)) {
        const decision = await limiter.take(`customer:${request.auth.workspaceId}/${customerId}`, policy);
        enforce(reply, decision, { limited: 'customer', customer_id: customerId });
      }
    });

  // Deep nesting and NUL characters are refused before validation, so neither reaches a
  // recursive serialiser or a store (events are checked one by one instead: a bad one is
  // rejected alone).
  app.addHook('preValidation', (request, _reply, done) => {
    const inputs: [unknown, string][] = [
      [request.query, 'the query'],
      [request.params, 'the path'],
    ];
    // Event batches are checked per event; Stripe's webhook body is raw bytes, checked by its signature.
    const url = request.routeOptions.url;
    if (url !== '/v1/events' && url !== STRIPE_WEBHOOK_PATH) inputs.push([request.body, 'the body']);
    for (const [value, where] of inputs) {
      const problem = jsonValueProblem(value, where);
      if (problem !== null) {
        done(invalidRequest(problem, problem.includes('nested') ? { max_depth: MAX_JSON_DEPTH } : {}));
        return;
      }
    }
    done();
  });

  // One log line per request (Fastify's own two lines are off): the route template as well as the
  // URL, and the key's id, never the key or its hash.
  const logRequests = ['info', 'debug', 'trace'].includes(app.log.level);
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const seconds = reply.elapsedTime / 1000;
    metrics.observeRequest(request.method, route, status, seconds);
    if (logRequests) {
      const auth = request.auth;
      request.log.info(
        {
          method: request.method,
          route,
          url: request.url,
          status,
          duration_ms: Math.trunc(reply.elapsedTime * 1000) / 1000,
          key_id: auth?.keyId ?? null,
          workspace: auth?.workspaceId ?? null,
        },
        'request',
      );
    }
    done();
  });

  // Event outcomes as answered (the answer comes after the batch is durable); a replayed answer
  // of an Idempotency-Key counted already.
  // (Callback style: an async hook costs every request a promise and a microtask.)
  app.addHook('onSend', (request, reply, payload, done) => {
    if (
      request.method === 'POST' &&
      request.routeOptions.url === '/v1/events' &&
      typeof payload === 'string' &&
      reply.getHeader('idempotent-replayed') === undefined
    ) {
      countEventOutcomes(metrics, payload);
    }
    done(null, payload);
  });

  app.setErrorHandler((error, request, reply) => {
    const mapped = toBurndownError(error);
    const status = statusOfErrorCode(mapped.code);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    // Whatever body an unauthenticated client is still sending is not read: the connection closes.
    if (status === 401) reply.header('connection', 'close');
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(mapped)));
  });
  // The router answers 404 for a known path with a wrong method; the routes are remembered as they
  // are registered so that case becomes a 405 naming the methods the path does take.
  const routes = new KnownRoutes();
  const registered: RegisteredRoute[] = [];
  registeredRoutes.set(app, registered);
  app.addHook('onRoute', (route) => {
    routes.add(route.method, route.url);
    const scope = (route.config as { scope?: ApiKeyScope | 'balance' } | undefined)?.scope ?? null;
    for (const m of typeof route.method === 'string' ? [route.method] : route.method) {
      registered.push({ method: m.toUpperCase(), url: route.url, scope });
    }
  });
  const staticFiles = options.web ? new StaticFiles(options.web) : null;
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // The web app answers GETs outside the API; whatever it does not have falls through to 404.
    if (staticFiles && (await staticFiles.serve(request, reply)) === 'served') return reply;
    const allow = routes.methodsOf(path);
    if (allow.length > 0) {
      const body = errorBody(
        new BurndownError(ErrorCode.methodNotAllowed, `${request.method} is not allowed on ${path}`, {
          method: request.method,
          allow,
        }),
      );
      return reply
        .code(405)
        .header('allow', allow.join(', '))
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(body));
    }
    const body = errorBody(
      new BurndownError(ErrorCode.notFound, `no route ${request.method} ${request.url.split('?')[0]}`, {}),
    );
    return reply.code(404).type('application/json; charset=utf-8').send(JSON.stringify(body));
  });

  const named = new NamedSchemas();
  sharedNamedSchemas(named, { Amount: AmountText, LedgerEntry: EntryBody, Balance: BalanceBody });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Burndown API',
        version: '1',
        description: API_DESCRIPTION,
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: 'http://127.0.0.1:7420', description: 'A local server (`npm start`)' }],
      tags: [...TAGS],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key: `Authorization: Bearer <key>`',
          },
          portalSession: {
            type: 'apiKey',
            in: 'cookie',
            name: 'burndown_portal',
            description: 'A customer portal session (`POST /v1/portal/session` sets it)',
          },
        },
      },
      security: [{ bearer: [] }],
    },
    // The document only: routes keep validating with their own schemas.
    transform: ({ schema, url, route }) => {
      const documented = documentedSchema({ schema: schema as Record<string, unknown>, url, route });
      return { schema: documented as never, url };
    },
    transformObject: (documentObject) =>
      finishDocument((documentObject as { openapiObject: Record<string, unknown> }).openapiObject, named),
  });
  app.addSchema(ErrorBody);

  registerOperationRoutes(app, deps, { metricsPublic: options.metricsPublic ?? false });
  registerCustomerRoutes(app, deps);
  registerCreditTypeRoutes(app, deps);
  registerGrantRoutes(app, deps);
  registerDebitRoutes(app, deps);
  registerAdjustmentRoutes(app, deps);
  registerHoldRoutes(app, deps);
  registerCorrectionRoutes(app, deps);
  registerBalanceRoutes(app, deps);
  registerBalanceThresholdRoutes(app, deps);
  registerForecastRoutes(app, deps);
  registerPortalRoutes(app, deps);
  registerReconciliationRoutes(app, deps);
  registerApiKeyRoutes(app, deps);
  registerEventRoutes(app, deps, options.eventsBodyLimit ?? 32 * 1024 * 1024);
  registerMeteringRoutes(app, deps);
  registerFeatureAndPlanRoutes(app, deps);
  registerSubscriptionRoutes(app, deps);
  registerLicensingRoutes(app, deps, options.licensing ?? DEFAULT_LICENSING_OPTIONS);
  registerCreditPackRoutes(app, deps);
  registerWebhookEndpointRoutes(app, deps);
  registerCheckRoutes(app, deps, options.checkHoldMaxTtlSeconds ?? DEFAULT_CHECK_HOLD_MAX_TTL_SECONDS);
  registerFinanceRoutes(app, deps);
  registerExportRoutes(app, deps);
  registerImportRoutes(app, deps);
  registerStripeRoutes(app, deps, options.stripe ?? { webhookSecret: null, workspaceId: 'default' });
  registerWorkspaceRoutes(app, deps);
  registerAuditRoutes(app, deps);
  await app.ready();
  return app;
}

/** A registered route: method, URL pattern and `config.scope` (null: public). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly scope: ApiKeyScope | 'balance' | null;
}

const registeredRoutes = new WeakMap<FastifyInstance, readonly RegisteredRoute[]>();

/** Every route the app registered (method, URL pattern, scope marker), HEAD routes included. */
export function routesOf(app: FastifyInstance): readonly RegisteredRoute[] {
  return registeredRoutes.get(app) ?? [];
}

/** The registered routes' paths and methods, to tell a wrong method (405) from an unknown path (404). */
class KnownRoutes {
  private readonly byPattern = new Map<string, { readonly match: RegExp; readonly methods: Set<string> }>();

  add(method: string | readonly string[], url: string): void {
    let known = this.byPattern.get(url);
    if (!known) {
      // `:name` matches one non-empty path segment, as in the router; everything else is literal.
      const source = url
        .split('/')
        .map((segment) =>
          segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/');
      known = { match: new RegExp(`^${source}$`), methods: new Set() };
      this.byPattern.set(url, known);
    }
    for (const m of typeof method === 'string' ? [method] : method) known.methods.add(m.toUpperCase());
  }

  /** The methods some route takes at `path`, sorted; empty when no route has that path. */
  methodsOf(path: string): string[] {
    const methods = new Set<string>();
    for (const { match, methods: ms } of this.byPattern.values()) {
      if (match.test(path)) for (const m of ms) methods.add(m);
    }
    return [...methods].sort();
  }
}

/** Teaches ajv the `x-amount` marker keyword (annotation only; it validates nothing). */
function markAmountKeyword(ajv: {
  addKeyword(definition: { keyword: string; schemaType: string }): unknown;
}) {
  ajv.addKeyword({ keyword: 'x-amount', schemaType: 'boolean' });
  return ajv;
}

/** The caller, as the auth hook found it; `keyHash` lets a write re-check the key in its transaction. */
export type RouteDepsAuth = {
  workspaceId: string;
  scope: ApiKeyScope;
  keyHash: string;
  keyId: string;
  permissions: ReadonlySet<Permission>;
};

/**
 * Sets the RateLimit-* headers (draft-ietf-httpapi-ratelimit-headers-07's three fields:
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` in seconds) and refuses with 429
 * `rate_limited` and `Retry-After` when the bucket is empty. Of several limits on one request, the
 * last one checked sets the headers (a refusal's are always its own).
 */
function enforce(reply: FastifyReply, decision: RateDecision, details: Record<string, unknown>): void {
  reply.header('ratelimit-limit', String(decision.limit));
  reply.header('ratelimit-remaining', String(decision.remaining));
  reply.header('ratelimit-reset', String(decision.resetSeconds));
  if (decision.allowed) return;
  reply.header('retry-after', String(decision.retryAfterSeconds));
  throw new BurndownError(ErrorCode.rateLimited, 'rate limit exceeded; retry after the Retry-After seconds', {
    ...details,
    retry_after_seconds: decision.retryAfterSeconds,
  });
}

/**
 * The customers a usage request is about: the path's `id`, a check's `customer_id`, or the
 * `customer_id` (native) or `subject` (CloudEvents) of each event of a batch, once each.
 * Malformed bodies name none here; validation refuses them.
 */
function customersOf(params: unknown, body: unknown): string[] {
  const found = new Set<string>();
  const id = (params as Record<string, unknown> | undefined)?.['id'];
  if (typeof id === 'string') return [id];
  const add = (item: unknown) => {
    if (typeof item !== 'object' || item === null) return;
    const r = item as Record<string, unknown>;
    const c = r['customer_id'] ?? r['subject'];
    if (typeof c === 'string') found.add(c);
  };
  if (Array.isArray(body)) body.forEach(add);
  else if (typeof body === 'object' && body !== null) {
    const events = (body as Record<string, unknown>)['events'];
    if (Array.isArray(events)) events.forEach(add);
    else add(body);
  }
  return [...found];
}

/** Counts the outcomes of an answer of `POST /v1/events` (202, or 400/500 with the same counts). */
function countEventOutcomes(metrics: Metrics, payload: string): void {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return;
  }
  if (typeof body !== 'object' || body === null) return;
  const b = body as Record<string, unknown>;
  const count = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) ? v.length : 0);
  if (!('accepted' in b) || !('rejected' in b)) return;
  metrics.observeEvents({
    accepted: count(b['accepted']),
    duplicates: count(b['duplicates']),
    unmetered: count(b['unmetered']),
    rejected: count(b['rejected']),
  });
}

/**
 * Answers what Node reports before a request reaches Fastify, or while its body is still arriving
 * (a request past its timeout, oversized headers, malformed HTTP), with the error envelope, then
 * closes the connection.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const mapped =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new BurndownError(ErrorCode.requestTimeout, 'the request was not received in time', {})
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new BurndownError(ErrorCode.headersTooLarge, 'request headers are too large', {})
        : new BurndownError(ErrorCode.invalidRequest, 'malformed HTTP request', {});
  const status = statusOfErrorCode(mapped.code);
  const body = JSON.stringify(errorBody(mapped));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
