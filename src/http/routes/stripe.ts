import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import Stripe from 'stripe';
import { BurndownError, ErrorCode, invalidRequest } from '../../domain/errors.js';
import type { StripeEventRecord } from '../../domain/payments/payments.js';
import { formatInstant } from '../../domain/time/instant.js';
import { handleStripeEvent, listStripeEvents } from '../../services/stripe-payments.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { ErrorBody, errorResponses, ListOf, ListQuery, Time } from '../schemas.js';

/** Stripe's webhook settings: the endpoint's signing secret and the workspace its events apply to. */
export interface StripeWebhookOptions {
  /** `BURNDOWN_STRIPE_WEBHOOK_SECRET` (`whsec_…`); null: the webhook answers 503. */
  readonly webhookSecret: string | null;
  /** `BURNDOWN_STRIPE_WORKSPACE`, default `default`: the workspace whose customers and packs events name. */
  readonly workspaceId: string;
}

/** The path Stripe's webhook endpoint points at; public (the signature is its authentication). */
export const STRIPE_WEBHOOK_PATH = '/v1/integrations/stripe/webhook';

/** How old a signed delivery may be (Stripe's own default): older ones are replays, refused. */
export const STRIPE_SIGNATURE_TOLERANCE_SECONDS = 300;

const StripeWebhookReceipt = Type.Object({
  received: Type.Literal(true),
  status: Type.Union(
    ['processed', 'ignored', 'failed', 'duplicate'].map((s) => Type.Literal(s)),
    {
      description:
        '`processed`: applied now; `ignored`: nothing to do (an unhandled type, an unpaid session, a session granted already); `failed`: recorded with a reason (unknown customer or pack, unknown payment); `duplicate`: this event id was received before and changed nothing now',
    },
  ),
  reason: Type.Union([Type.String(), Type.Null()]),
});

const StripeEventBody = Type.Object({
  id: Type.String({ description: "Stripe's event id" }),
  type: Type.String(),
  status: Type.Union(['processed', 'ignored', 'failed'].map((s) => Type.Literal(s))),
  reason: Type.Union([Type.String(), Type.Null()]),
  customer_id: Type.Union([Type.String(), Type.Null()]),
  object_id: Type.Union([Type.String(), Type.Null()], { description: 'The Stripe object (cs_, ch_, dp_)' }),
  received_at: Time,
});

const StripeEventsQuery = Type.Object(
  {
    ...ListQuery.properties,
    status: Type.Optional(Type.Union(['processed', 'ignored', 'failed'].map((s) => Type.Literal(s)))),
  },
  { additionalProperties: false },
);

function presentStripeEvent(e: StripeEventRecord) {
  return {
    id: e.id,
    type: e.type,
    status: e.status,
    reason: e.reason,
    customer_id: e.customerId,
    object_id: e.objectId,
    received_at: formatInstant(e.receivedAt),
  };
}

function invalidSignature(why: string): BurndownError {
  return new BurndownError(ErrorCode.invalidSignature, `Stripe signature verification failed: ${why}`, {});
}

/**
 * `POST /v1/integrations/stripe/webhook` (public: verified by the `Stripe-Signature` header over
 * the raw body, with the official `stripe` package, 5 minutes of tolerance against the injected
 * clock) and `GET /v1/integrations/stripe/events` (admin: what was received and what became of it).
 */
export function registerStripeRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
  options: StripeWebhookOptions,
): void {
  const { ctx } = deps;
  // The signature covers the bytes as sent: this route (only) takes its body raw, whatever its type.
  void app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    raw.post(
      STRIPE_WEBHOOK_PATH,
      {
        schema: {
          tags: ['integrations'],
          summary:
            "Stripe's webhook: paid Checkout Sessions buy credit packs; refunds and disputes take credits back",
          description:
            'Point a Stripe webhook endpoint here (events `checkout.session.completed`, `checkout.session.async_payment_succeeded`, `charge.refunded`, `charge.dispute.created`, `charge.dispute.closed`). No API key: the `Stripe-Signature` header is verified against `BURNDOWN_STRIPE_WEBHOOK_SECRET` over the raw body, and a delivery older than 5 minutes is refused (400 `invalid_signature`, nothing changes). Each event id is applied once; other event types are answered 200 and recorded as ignored.',
          headers: Type.Object({ 'stripe-signature': Type.Optional(Type.String()) }),
          response: { 200: StripeWebhookReceipt, 400: ErrorBody, 413: ErrorBody, 503: ErrorBody },
        },
      },
      async (request) => {
        const secret = options.webhookSecret;
        if (secret === null) {
          throw new BurndownError(
            ErrorCode.serviceUnavailable,
            'Stripe webhooks are not configured (BURNDOWN_STRIPE_WEBHOOK_SECRET)',
            {},
          );
        }
        const header = request.headers['stripe-signature'];
        if (typeof header !== 'string' || header === '') throw invalidSignature('no Stripe-Signature header');
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        let event: { id?: unknown; type?: unknown; data?: { object?: unknown } };
        try {
          event = Stripe.webhooks.constructEvent(
            body,
            header,
            secret,
            STRIPE_SIGNATURE_TOLERANCE_SECONDS,
            undefined,
            ctx.clock.now(),
          ) as typeof event;
        } catch (error) {
          if (error instanceof SyntaxError) throw invalidRequest('the signed body is not JSON');
          throw invalidSignature(error instanceof Error ? error.message : 'unknown');
        }
        const object = event.data?.object;
        if (
          typeof event.id !== 'string' ||
          typeof event.type !== 'string' ||
          typeof object !== 'object' ||
          object === null
        )
          throw invalidRequest('the signed body is not a Stripe event (id, type, data.object)');
        const result = await handleStripeEvent(ctx, {
          workspaceId: options.workspaceId,
          event: { id: event.id, type: event.type, object: object as Record<string, unknown> },
        });
        return { received: true as const, status: result.status, reason: result.reason };
      },
    );
  });

  app.get<{ Querystring: Static<typeof StripeEventsQuery> }>(
    '/v1/integrations/stripe/events',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['integrations'],
        summary: 'Stripe events received, newest first, with what became of each (filter `status=failed`)',
        querystring: StripeEventsQuery,
        response: { 200: ListOf(StripeEventBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listStripeEvents(
        ctx,
        request.auth.workspaceId,
        (request.query.status as StripeEventRecord['status'] | undefined) ?? null,
        readPageRequest(request.query),
      );
      return presentPage(page, presentStripeEvent);
    },
  );
}
