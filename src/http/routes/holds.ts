import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { captureHoldCommand, placeHoldCommand, releaseHoldCommand } from '../../services/commands.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { requirePositiveAmount } from '../../services/ledger.js';
import { getHold } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentDebitText, presentHold } from '../presenters.js';
import { readMetadata } from '../route-helpers.js';
import {
  CaptureHoldBody,
  CreateHoldBody,
  DebitBody,
  EmptyBody,
  ErrorBody,
  errorResponses,
  HoldBody,
  HoldIdParams,
  IdParams,
} from '../schemas.js';

/** Default lifetime of a hold when the client gives no `ttl_seconds`. */
export const DEFAULT_HOLD_TTL_SECONDS = 300;

/** Holds: reserve now, capture or release later. */
export function registerHoldRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof CreateHoldBody> }>(
    '/v1/customers/:id/holds',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['holds'],
        summary: 'Reserve credits (pins grant portions in burn-down order)',
        params: IdParams,
        body: CreateHoldBody,
        response: { 201: HoldBody, 402: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const amount = requirePositiveAmount(body.amount, 'amount');
      const metadata = readMetadata(body.metadata);
      const workspaceId = request.auth.workspaceId;
      return writer.run(
        request,
        reply,
        placeHoldCommand(ctx, {
          key: {
            workspaceId,
            customerId: request.params.id,
            creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
          },
          amount,
          ttlMs: (body.ttl_seconds ?? DEFAULT_HOLD_TTL_SECONDS) * 1000,
          featureId: body.feature_id ?? null,
          description: body.description ?? null,
          metadata,
        }),
        (done, now) => ({ status: 201, body: presentHold(done.hold, now) }),
      );
    },
  );

  app.get<{ Params: Static<typeof HoldIdParams> }>(
    '/v1/holds/:hold_id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['holds'],
        summary: 'Get a hold',
        params: HoldIdParams,
        response: { 200: HoldBody, ...errorResponses },
      },
    },
    async (request) => {
      const hold = await getHold(ctx, request.auth.workspaceId, request.params.hold_id);
      return presentHold(hold, ctx.clock.now());
    },
  );

  app.post<{ Params: Static<typeof HoldIdParams>; Body: Static<typeof CaptureHoldBody> | undefined }>(
    '/v1/holds/:hold_id/capture',
    {
      config: { scope: 'write' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['holds'],
        summary: 'Capture (part of) a hold; the rest is released, any excess drawn like a debit',
        params: HoldIdParams,
        body: CaptureHoldBody,
        response: { 201: DebitBody, 402: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const amount = body.amount === undefined ? null : requirePositiveAmount(body.amount, 'amount');
      const metadata = body.metadata === undefined ? null : readMetadata(body.metadata);
      const workspaceId = request.auth.workspaceId;
      const capture = await captureHoldCommand(ctx, {
        workspaceId,
        holdId: request.params.hold_id,
        amount,
        allowOverage: body.allow_overage ?? false,
        description: body.description ?? null,
        metadata,
      });
      return writer.run(request, reply, capture, (done) => ({
        status: 201,
        body: presentDebitText(done.debit, done.balance),
      }));
    },
  );

  app.post<{ Params: Static<typeof HoldIdParams>; Body: Static<typeof EmptyBody> | undefined }>(
    '/v1/holds/:hold_id/release',
    {
      config: { scope: 'write' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['holds'],
        summary: 'Release an active hold',
        params: HoldIdParams,
        body: EmptyBody,
        response: { 200: HoldBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const workspaceId = request.auth.workspaceId;
      const release = await releaseHoldCommand(ctx, { workspaceId, holdId: request.params.hold_id });
      return writer.run(request, reply, release, (hold, now) => ({
        status: 200,
        body: presentHold(hold, now),
      }));
    },
  );
}
