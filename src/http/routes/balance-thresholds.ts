import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { BalanceThreshold } from '../../domain/alerts/balance-thresholds.js';
import { formatInstant } from '../../domain/time/instant.js';
import {
  createThresholdCommand,
  deleteThresholdCommand,
  getThreshold,
  listThresholds,
  readThresholdValue,
} from '../../services/balance-alerts.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import { execute } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { AmountText, errorResponses, Id, Nullable, OpaqueId } from '../schemas.js';

/** Body of `POST /v1/balance-thresholds`. */
export const CreateBalanceThresholdBody = Type.Object(
  {
    customer_id: Type.Optional(
      Nullable({
        ...Id,
        description: 'The customer it watches; left out or null: the workspace default for the credit type',
      }),
    ),
    credit_type: Type.Optional({ ...Id, description: 'Default "credits"' }),
    kind: Type.Union([Type.Literal('amount'), Type.Literal('percent'), Type.Literal('runway_hours')], {
      description:
        '`amount`: an amount of credits; `percent`: a percent (0 to 100) of the credits granted in force (both fire balance.low); ' +
        '`runway_hours`: hours of forecast runway (more than 0, at most 8784; fires balance.runway_below from a periodic sweep)',
    }),
    value: {
      ...AmountText,
      description:
        'Decimal string ≥ 0 (a percent is at most 100; runway hours are more than 0, at most 8784)',
    },
  },
  { additionalProperties: false },
);

/** A balance threshold as the API shows it. */
export const BalanceThresholdBody = Type.Object({
  id: Type.String(),
  customer_id: Nullable(Type.String({ description: 'null: the workspace default' })),
  credit_type: Type.String(),
  kind: Type.Union([Type.Literal('amount'), Type.Literal('percent'), Type.Literal('runway_hours')]),
  value: AmountText,
  created_at: Type.String({ format: 'date-time' }),
});

/** Filters of `GET /v1/balance-thresholds`. */
export const ListBalanceThresholdsQuery = Type.Object(
  {
    customer_id: Type.Optional({
      ...Id,
      description: "The customer's own thresholds; left out: the workspace defaults",
    }),
    credit_type: Type.Optional(Id),
  },
  { additionalProperties: false },
);

const ThresholdParams = Type.Object({ threshold_id: OpaqueId });

/** The API form of a threshold. */
export function presentThreshold(t: BalanceThreshold): Static<typeof BalanceThresholdBody> {
  return {
    id: t.id,
    customer_id: t.customerId,
    credit_type: t.creditType,
    kind: t.kind,
    value: t.value.toString(),
    created_at: formatInstant(t.createdAt),
  };
}

/** Balance thresholds: create, list, read, delete (the events they fire are in docs/api.md). */
export function registerBalanceThresholdRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateBalanceThresholdBody> }>(
    '/v1/balance-thresholds',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['alerts'],
        summary:
          'Create a balance threshold: balance.low fires when a write takes the available balance from above it to at or below it',
        body: CreateBalanceThresholdBody,
        response: { 201: BalanceThresholdBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const create = createThresholdCommand(ctx, {
        workspaceId: request.auth.workspaceId,
        customerId: body.customer_id ?? null,
        creditType: body.credit_type ?? DEFAULT_CREDIT_TYPE,
        kind: body.kind,
        value: readThresholdValue(body.value, body.kind),
      });
      return writer.run(request, reply, create, (threshold) => ({
        status: 201,
        body: presentThreshold(threshold),
      }));
    },
  );

  app.get<{ Querystring: Static<typeof ListBalanceThresholdsQuery> }>(
    '/v1/balance-thresholds',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['alerts'],
        summary: "A customer's own thresholds, or (without customer_id) the workspace defaults; oldest first",
        querystring: ListBalanceThresholdsQuery,
        response: {
          200: Type.Object({ data: Type.Array(BalanceThresholdBody), next_cursor: Type.Null() }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const thresholds = await listThresholds(ctx, {
        workspaceId: request.auth.workspaceId,
        customerId: request.query.customer_id ?? null,
        creditType: request.query.credit_type ?? null,
      });
      return { data: thresholds.map(presentThreshold), next_cursor: null };
    },
  );

  app.get<{ Params: Static<typeof ThresholdParams> }>(
    '/v1/balance-thresholds/:threshold_id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['alerts'],
        summary: 'Get a balance threshold',
        params: ThresholdParams,
        response: { 200: BalanceThresholdBody, ...errorResponses },
      },
    },
    async (request) =>
      presentThreshold(await getThreshold(ctx, request.auth.workspaceId, request.params.threshold_id)),
  );

  app.delete<{ Params: Static<typeof ThresholdParams> }>(
    '/v1/balance-thresholds/:threshold_id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['alerts'],
        summary: 'Delete a balance threshold (204) and its per-customer state',
        params: ThresholdParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await execute(
        ctx,
        deleteThresholdCommand({ workspaceId: request.auth.workspaceId, id: request.params.threshold_id }),
      );
      return reply.code(204).send();
    },
  );
}
