import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BurndownError, ErrorCode, invalidRequest } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import type { PortalSessionRecord } from '../../ports/storage.js';
import { purchaseCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { forecastCustomer } from '../../services/forecast.js';
import { readBalance } from '../../services/ledger.js';
import {
  createPortalSession,
  exchangePortalCode,
  PORTAL_SCOPES,
  type PortalSessionGrant,
  refreshPortalSession,
  revokePortalSession,
  SESSION_TTL_MS,
} from '../../services/portal.js';
import {
  getCustomer,
  listCreditPacks,
  listEntries,
  listFeatures,
  listGrants,
  listRates,
} from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentCreditPack, presentFeature, presentPurchase } from '../plan-presenters.js';
import { CreatePurchaseBody, CreditPackBody, FeatureBody, PurchaseBody } from '../plan-schemas.js';
import { presentBalance, presentEntry, presentGrant } from '../presenters.js';
import {
  BalanceBody,
  EntryBody,
  errorResponses,
  ForecastBody,
  ForecastQuery,
  GrantBody,
  Id,
  IdParams,
  ListOf,
  OpaqueId,
} from '../schemas.js';
import { presentForecast } from './forecast.js';
import { presentRate, RateBody } from './metering.js';

/** The portal session cookie: sent only to the portal API, never readable by scripts. */
export const PORTAL_COOKIE = 'burndown_portal';
const COOKIE_PATH = '/v1/portal';

declare module 'fastify' {
  interface FastifyRequest {
    /** The customer portal session, set by the portal auth hook on portal routes. */
    portal?: PortalSessionRecord;
  }
}

const CreatePortalSessionBody = Type.Object(
  {
    scope: Type.Optional(
      Type.Union(
        PORTAL_SCOPES.map((s) => Type.Literal(s)),
        { description: '`read` (default) or `read+topup` (may also buy credit packs)' },
      ),
    ),
  },
  { additionalProperties: false },
);
const PortalSessionCreated = Type.Object({
  id: Type.String(),
  customer_id: Type.String(),
  scope: Type.String(),
  code: Type.String({ description: 'Single use; shown once' }),
  code_expires_at: Type.String(),
  portal_url: Type.String({ description: 'Relative URL of the portal that exchanges the code' }),
});
const PortalSessionBody = Type.Object({
  customer_id: Type.String(),
  customer_name: Type.Union([Type.String(), Type.Null()]),
  scope: Type.String(),
  expires_at: Type.String(),
});
const ExchangeBody = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
const RevokedBody = Type.Object({ id: Type.String(), revoked_at: Type.String() });
const SessionIdParams = Type.Object({ session_id: OpaqueId });
const PortalListQuery = Type.Object(
  {
    credit_type: Type.Optional(Id),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1–1000, default 100' })),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
const PricesBody = Type.Object({
  features: Type.Array(FeatureBody),
  rates: Type.Array(RateBody),
  credit_packs: Type.Array(CreditPackBody),
});
/** Routes without parameters refuse any (a customer id passed to one is an error, not ignored). */
const NoQuery = Type.Object({}, { additionalProperties: false });
const PortalPurchaseBody = Type.Object({ ...PurchaseBody.properties, balance_after: BalanceBody });

/** Reads the portal cookie from the Cookie header. */
export function portalToken(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === PORTAL_COOKIE) return rest.join('=');
  }
  return undefined;
}

function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  maxAgeSeconds: number,
) {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  reply.header(
    'set-cookie',
    `${PORTAL_COOKIE}=${token}; Path=${COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`,
  );
}

/** The session of a portal route (the hook guarantees it). */
function session(request: FastifyRequest): PortalSessionRecord {
  if (!request.portal) throw new BurndownError(ErrorCode.unauthorized, 'no portal session', {});
  return request.portal;
}

const portalKey = (request: FastifyRequest, creditType: string | undefined) => {
  const s = session(request);
  return {
    workspaceId: s.workspaceId,
    customerId: s.customerId,
    creditType: creditType ?? DEFAULT_CREDIT_TYPE,
  };
};

/** One CSV field, quoted when it must be (RFC 4180). */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

const PORTAL_TAG = ['portal'];
/** Portal routes are authenticated by the session cookie, not an API key. */
const PORTAL_SECURITY = [{ portalSession: [] }];

/**
 * The customer portal's API: the operator creates a session (API key), the portal exchanges its
 * code for a cookie, and every `/v1/portal/…` route answers about that session's customer only.
 * No portal route takes a customer id: there is nothing to point at another customer with.
 */
export function registerPortalRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { ctx, writer } = deps;

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreatePortalSessionBody> }>(
    '/v1/customers/:id/portal-sessions',
    {
      config: { scope: 'write' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: PORTAL_TAG,
        summary:
          'Create a customer portal session: a single-use code (valid 60 s) the portal exchanges for a 15-minute cookie session',
        params: IdParams,
        body: CreatePortalSessionBody,
        response: { 201: PortalSessionCreated, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { record, code } = await createPortalSession(ctx, {
        workspaceId: request.auth.workspaceId,
        customerId: request.params.id,
        scope: request.body.scope ?? 'read',
      });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        id: record.id,
        customer_id: record.customerId,
        scope: record.scope,
        code,
        code_expires_at: formatInstant(record.codeExpiresAt),
        portal_url: `/portal?code=${encodeURIComponent(code)}`,
      });
    },
  );

  app.post<{ Params: Static<typeof SessionIdParams> }>(
    '/v1/portal-sessions/:session_id/revoke',
    {
      config: { scope: 'write' },
      schema: {
        tags: PORTAL_TAG,
        summary: 'Revoke a portal session: its code and its cookie stop working at once',
        params: SessionIdParams,
        response: { 200: RevokedBody, ...errorResponses },
      },
    },
    async (request) => {
      const record = await revokePortalSession(ctx, request.auth.workspaceId, request.params.session_id);
      return { id: record.id, revoked_at: formatInstant(record.revokedAt ?? ctx.clock.now()) };
    },
  );

  const presentSession = async (grant: PortalSessionGrant) => {
    const customer = await getCustomer(ctx, grant.record.workspaceId, grant.record.customerId);
    return {
      customer_id: grant.record.customerId,
      customer_name: customer.name,
      scope: grant.record.scope,
      expires_at: formatInstant(grant.expiresAt),
    };
  };

  app.post<{ Body: Static<typeof ExchangeBody> }>(
    '/v1/portal/session',
    {
      schema: {
        tags: PORTAL_TAG,
        summary: 'Exchange a portal code (once) for a session cookie (httpOnly, SameSite=Strict, 15 minutes)',
        security: [],
        body: ExchangeBody,
        response: { 200: PortalSessionBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const grant = await exchangePortalCode(ctx, request.body.code);
      setSessionCookie(request, reply, grant.token, SESSION_TTL_MS / 1000);
      reply.header('cache-control', 'no-store');
      return presentSession(grant);
    },
  );

  app.post(
    '/v1/portal/session/refresh',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: 'A new session token and 15 more minutes (the old cookie stops working)',
        querystring: NoQuery,
        security: PORTAL_SECURITY,
        response: { 200: PortalSessionBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const grant = await refreshPortalSession(ctx, portalToken(request) ?? '');
      setSessionCookie(request, reply, grant.token, SESSION_TTL_MS / 1000);
      return presentSession(grant);
    },
  );

  app.post(
    '/v1/portal/session/end',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: 'Sign out of the portal: the session is revoked and the cookie cleared',
        querystring: NoQuery,
        security: PORTAL_SECURITY,
        response: { 200: RevokedBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const s = session(request);
      const record = await revokePortalSession(ctx, s.workspaceId, s.id);
      setSessionCookie(request, reply, '', 0);
      return { id: record.id, revoked_at: formatInstant(record.revokedAt ?? ctx.clock.now()) };
    },
  );

  app.get(
    '/v1/portal/me',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session's customer, scope and expiry",
        querystring: NoQuery,
        security: PORTAL_SECURITY,
        response: { 200: PortalSessionBody, ...errorResponses },
      },
    },
    async (request) => {
      const s = session(request);
      const customer = await getCustomer(ctx, s.workspaceId, s.customerId);
      return {
        customer_id: s.customerId,
        customer_name: customer.name,
        scope: s.scope,
        expires_at: formatInstant(s.sessionExpiresAt ?? 0),
      };
    },
  );

  app.get<{ Querystring: Static<typeof ForecastQuery> }>(
    '/v1/portal/balance',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session customer's balance",
        security: PORTAL_SECURITY,
        querystring: ForecastQuery,
        response: { 200: BalanceBody, ...errorResponses },
      },
    },
    async (request) =>
      presentBalance(
        await readBalance(ctx, { key: portalKey(request, request.query.credit_type), at: null }),
      ),
  );

  app.get<{ Querystring: Static<typeof ForecastQuery> }>(
    '/v1/portal/forecast',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session customer's depletion forecast (runway)",
        security: PORTAL_SECURITY,
        querystring: ForecastQuery,
        response: { 200: ForecastBody, ...errorResponses },
      },
    },
    async (request) =>
      presentForecast(await forecastCustomer(ctx, portalKey(request, request.query.credit_type))),
  );

  app.get<{ Querystring: Static<typeof PortalListQuery> }>(
    '/v1/portal/grants',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session customer's active grants, with their expiries",
        security: PORTAL_SECURITY,
        querystring: PortalListQuery,
        response: { 200: ListOf(GrantBody), ...errorResponses },
      },
    },
    async (request) => {
      const key = portalKey(request, request.query.credit_type);
      const { page, now } = await listGrants(
        ctx,
        key.workspaceId,
        key.customerId,
        { status: 'active', creditType: key.creditType },
        readPageRequest(request.query),
      );
      return presentPage(page, (g) => presentGrant(g, now));
    },
  );

  app.get<{ Querystring: Static<typeof PortalListQuery> }>(
    '/v1/portal/ledger',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session customer's ledger, newest first, paged",
        security: PORTAL_SECURITY,
        querystring: PortalListQuery,
        response: { 200: ListOf(EntryBody), ...errorResponses },
      },
    },
    async (request) => {
      const key = portalKey(request, request.query.credit_type);
      const page = await listEntries(
        ctx,
        key,
        { from: null, to: null, order: 'desc' },
        readPageRequest(request.query),
      );
      return presentPage(page, presentEntry);
    },
  );

  app.get<{ Querystring: Static<typeof ForecastQuery> }>(
    '/v1/portal/ledger.csv',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: "The session customer's whole ledger as CSV (oldest first)",
        security: PORTAL_SECURITY,
        querystring: ForecastQuery,
        response: {
          200: { type: 'string', description: 'text/csv: at,type,amount,balance_after,reference' },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const key = portalKey(request, request.query.credit_type);
      const lines = ['at,type,amount,balance_after,reference'];
      let after: readonly string[] | null = null;
      do {
        const page = await listEntries(
          ctx,
          key,
          { from: null, to: null, order: 'asc' },
          { after, limit: 1000 },
        );
        for (const e of page.items) {
          lines.push(
            [
              formatInstant(e.at),
              e.type,
              e.amount.toString(),
              e.balanceAfter.toString(),
              e.ref ?? e.grantId ?? '',
            ]
              .map(csvField)
              .join(','),
          );
        }
        after = page.nextAfter;
      } while (after !== null);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="ledger-${key.creditType}.csv"`)
        .header('cache-control', 'no-store')
        .send(`${lines.join('\r\n')}\r\n`);
    },
  );

  app.get(
    '/v1/portal/prices',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary: 'What actions cost: features (credits per use), rates (credits per unit) and credit packs',
        querystring: NoQuery,
        security: PORTAL_SECURITY,
        response: { 200: PricesBody, ...errorResponses },
      },
    },
    async (request) => {
      const ws = session(request).workspaceId;
      const features = await listFeatures(ctx, ws, { after: null, limit: 1000 });
      const rates = await listRates(ctx, ws, { after: null, limit: 1000 });
      const packs = await listCreditPacks(ctx, ws, { after: null, limit: 1000 });
      return {
        features: features.items.filter((f) => f.archivedAt === null).map(presentFeature),
        rates: rates.items.map(presentRate),
        credit_packs: packs.items.map(presentCreditPack),
      };
    },
  );

  app.post<{ Body: Static<typeof CreatePurchaseBody> }>(
    '/v1/portal/purchases',
    {
      config: { portal: true },
      schema: {
        tags: PORTAL_TAG,
        summary:
          'Buy credit packs for the session customer (needs the read+topup scope); send an Idempotency-Key so a retry never buys twice',
        security: PORTAL_SECURITY,
        body: CreatePurchaseBody,
        response: { 201: PortalPurchaseBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const s = session(request);
      if (s.scope !== 'read+topup') {
        throw new BurndownError(ErrorCode.forbidden, 'this portal session may not buy credits', {
          required: 'read+topup',
        });
      }
      // Idempotency keys are per workspace; a portal's key is made the customer's own so two
      // customers' portals choosing the same key never share an answer.
      const key = request.headers['idempotency-key'];
      if (typeof key === 'string') {
        if (key.length > 100)
          throw invalidRequest('Idempotency-Key is too long', { field: 'Idempotency-Key' });
        request.headers['idempotency-key'] = `portal:${s.customerId}:${key}`;
      }
      const purchase = purchaseCommand(ctx, {
        workspaceId: s.workspaceId,
        customerId: s.customerId,
        packId: request.body.pack_id,
        quantity: request.body.quantity ?? 1,
      });
      return writer.run(request, reply, purchase, (bought) => ({
        status: 201,
        body: { ...presentPurchase(bought.purchase), balance_after: presentBalance(bought.balance) },
      }));
    },
  );
}
