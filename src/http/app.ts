import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, LogController } from 'fastify';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import type { ApiKeyScope } from '../ports/storage.js';
import { ApiKeyResolver, type RouteScope, scopeAllows } from '../services/api-keys.js';
import type { ServiceContext } from '../services/context.js';
import { statusOfErrorCode } from './error-status.js';
import { NOT_JSON_BODY } from './event-parsing.js';
import { errorBody, IdempotentWriter } from './idempotent-write.js';
import { Metrics } from './metrics.js';
import { registerApiKeyRoutes } from './routes/api-keys.js';
import { registerBalanceRoutes } from './routes/balances.js';
import { registerCheckRoutes } from './routes/check.js';
import { registerCorrectionRoutes } from './routes/corrections.js';
import { registerCreditPackRoutes } from './routes/credit-packs.js';
import { registerCreditTypeRoutes } from './routes/credit-types.js';
import { registerCustomerRoutes } from './routes/customers.js';
import { registerDebitRoutes } from './routes/debits.js';
import { registerEventRoutes } from './routes/events.js';
import { registerFeatureAndPlanRoutes } from './routes/features-plans.js';
import { registerGrantRoutes } from './routes/grants.js';
import { registerHoldRoutes } from './routes/holds.js';
import { registerMeteringRoutes } from './routes/metering.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerReconciliationRoutes } from './routes/reconciliation.js';
import { registerSubscriptionRoutes } from './routes/subscriptions.js';
import { ErrorBody } from './schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's workspace and scope, set by the auth hook. */
    auth: { workspaceId: string; scope: ApiKeyScope };
    /** The body exactly as received; the Idempotency-Key fingerprint is taken over it. */
    rawBody?: string;
  }
  interface FastifyContextConfig {
    /** Scope the route needs; routes without one are public (health, OpenAPI, metrics). */
    scope?: RouteScope;
  }
}

/** What the routes share: use cases, the idempotent writer and metrics. */
export interface RouteDeps {
  readonly ctx: ServiceContext;
  readonly writer: IdempotentWriter;
  readonly metrics: Metrics;
}

/** Options of the HTTP app. */
export interface AppOptions {
  /** Largest request body in bytes (413 `payload_too_large` beyond). */
  readonly bodyLimit: number;
  /** Fastify logger level; `silent` in tests. */
  readonly logLevel?: string;
  readonly metrics?: Metrics;
  /** Largest body of `POST /v1/events` (a batch of up to 10,000 events), default 32 MiB. */
  readonly eventsBodyLimit?: number;
}

/** Maps anything thrown while handling a request to the contract's error envelope. */
export function toBurndownError(error: unknown): BurndownError {
  if (error instanceof BurndownError) return error;
  const e = error as Omit<FastifyError, 'validation'> & {
    validation?: {
      instancePath?: string;
      message?: string;
      params?: Record<string, unknown>;
      parentSchema?: Record<string, unknown>;
      keyword?: string;
    }[];
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

/** Builds the HTTP app: auth, errors, OpenAPI and the routes of API.md. Does not listen. */
export async function buildApp(ctx: ServiceContext, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Ids may be 128 characters (API.md); the router's default limit is 100.
    routerOptions: { maxParamLength: 512 },
    // Errors the router raises before any hook (bad percent-encoding, …) get the envelope too.
    frameworkErrors: (error, _request, reply) => {
      const mapped = toBurndownError(error);
      (reply as FastifyReply)
        .code(statusOfErrorCode(mapped.code))
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(errorBody(mapped)));
    },
    logger: { level: options.logLevel ?? 'info' },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    return503OnClosing: true,
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
  const metrics = options.metrics ?? new Metrics();
  const deps: RouteDeps = { ctx, writer: new IdempotentWriter(ctx), metrics };
  const keys = new ApiKeyResolver(ctx.storage, () => ctx.clock.now());

  app.decorateRequest('auth', undefined as unknown as RouteDepsAuth);
  app.decorateRequest('rawBody', undefined);

  // JSON only; the raw text is kept for idempotency fingerprints. An empty body reads as none.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
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
  // CloudEvents structured and batched modes are JSON too.
  for (const type of ['application/cloudevents+json', 'application/cloudevents-batch+json']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (request, body, done) => {
      request.rawBody = body as string;
      return parseJson(request, body as string, done);
    });
  }

  app.addHook('onRequest', async (request) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const record = match ? await keys.resolve(match[1]!) : null;
    if (!record) throw new BurndownError(ErrorCode.unauthorized, 'missing or unknown API key', {});
    if (!scopeAllows(record.scope, scope)) {
      throw new BurndownError(
        ErrorCode.forbidden,
        `this key's scope (${record.scope}) does not allow this call`,
        {
          required: scope,
        },
      );
    }
    request.auth = { workspaceId: record.workspaceId, scope: record.scope };
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler((error, request, reply) => {
    const mapped = toBurndownError(error);
    const status = statusOfErrorCode(mapped.code);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(mapped)));
  });
  app.setNotFoundHandler((request, reply) => {
    const body = errorBody(
      new BurndownError(ErrorCode.notFound, `no route ${request.method} ${request.url.split('?')[0]}`, {}),
    );
    return reply.code(404).type('application/json; charset=utf-8').send(JSON.stringify(body));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Burndown API',
        version: '1',
        description: 'Credit ledger: grants, burn-down debits, holds, balances. Amounts are decimal strings.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.addSchema(ErrorBody);

  registerOperationRoutes(app, deps);
  registerCustomerRoutes(app, deps);
  registerCreditTypeRoutes(app, deps);
  registerGrantRoutes(app, deps);
  registerDebitRoutes(app, deps);
  registerHoldRoutes(app, deps);
  registerCorrectionRoutes(app, deps);
  registerBalanceRoutes(app, deps);
  registerReconciliationRoutes(app, deps);
  registerApiKeyRoutes(app, deps);
  registerEventRoutes(app, deps, options.eventsBodyLimit ?? 32 * 1024 * 1024);
  registerMeteringRoutes(app, deps);
  registerFeatureAndPlanRoutes(app, deps);
  registerSubscriptionRoutes(app, deps);
  registerCreditPackRoutes(app, deps);
  registerCheckRoutes(app, deps);
  await app.ready();
  return app;
}

/** Teaches ajv the `x-amount` marker keyword (annotation only; it validates nothing). */
function markAmountKeyword(ajv: {
  addKeyword(definition: { keyword: string; schemaType: string }): unknown;
}) {
  ajv.addKeyword({ keyword: 'x-amount', schemaType: 'boolean' });
  return ajv;
}

type RouteDepsAuth = { workspaceId: string; scope: ApiKeyScope };
