import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import { invalidRequest } from '../../domain/errors.js';
import { checkAndHoldCommand } from '../../services/commands.js';
import { checkNow } from '../../services/entitlements.js';
import { requirePositiveAmount } from '../../services/ledger.js';
import type { RouteDeps } from '../app.js';
import { presentCheck } from '../plan-presenters.js';
import { CheckBody, CheckRequestBody } from '../plan-schemas.js';
import { errorResponses } from '../schemas.js';

const ONE = Amount.of('1');
const DEFAULT_HOLD_TTL_SECONDS = 60;

/**
 * Default bound on `hold.ttl_seconds` of a check: a `check` key (held by the product's
 * enforcement path) must not be able to pin a customer's credits for long.
 */
export const DEFAULT_CHECK_HOLD_MAX_TTL_SECONDS = 900;

/**
 * The real-time check: may this customer use this feature now (and reserve the credits for at
 * most `holdMaxTtlSeconds`)?
 */
export function registerCheckRoutes(
  app: FastifyInstance,
  { ctx, writer }: RouteDeps,
  holdMaxTtlSeconds: number,
): void {
  app.post<{ Body: Static<typeof CheckRequestBody> }>(
    '/v1/check',
    {
      config: { scope: 'check' },
      schema: {
        tags: ['check'],
        summary: 'Check an entitlement; with hold, an allowed check reserves its credits atomically',
        body: CheckRequestBody,
        response: { 200: CheckBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const input = {
        workspaceId: request.auth.workspaceId,
        customerId: body.customer_id,
        featureId: body.feature_id,
        quantity: body.quantity === undefined ? ONE : requirePositiveAmount(body.quantity, 'quantity'),
      };
      if (body.hold === undefined || body.hold === null) {
        // A check without hold writes nothing; with an Idempotency-Key its first answer is kept
        // and replayed like any POST's (the fast path is for requests without one).
        if (request.headers['idempotency-key'] === undefined) return presentCheck(await checkNow(ctx, input));
        return writer.runSeparately(request, reply, async () => ({
          status: 200,
          body: presentCheck(await checkNow(ctx, input)),
        }));
      }
      const ttlSeconds = body.hold.ttl_seconds ?? Math.min(DEFAULT_HOLD_TTL_SECONDS, holdMaxTtlSeconds);
      if (ttlSeconds > holdMaxTtlSeconds) {
        throw invalidRequest(`hold.ttl_seconds must be at most ${holdMaxTtlSeconds}`, {
          field: 'hold.ttl_seconds',
          maximum: holdMaxTtlSeconds,
        });
      }
      const ttlMs = ttlSeconds * 1000;
      return writer.run(request, reply, checkAndHoldCommand(ctx, { ...input, ttlMs }), (result) => ({
        status: 200,
        body: presentCheck(result),
      }));
    },
  );
}
