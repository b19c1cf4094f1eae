import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { reconcileWorkspace } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { errorResponses } from '../schemas.js';

const ReconciliationBody = Type.Object({
  ok: Type.Boolean(),
  entries: Type.Integer(),
  accounts: Type.Integer(),
  grants: Type.Integer(),
  events: Type.Integer(),
  failures: Type.Array(
    Type.Object({
      check: Type.String(),
      workspace_id: Type.String(),
      customer_id: Type.Union([Type.String(), Type.Null()]),
      credit_type: Type.Union([Type.String(), Type.Null()]),
      account: Type.Union([Type.String(), Type.Null()]),
      message: Type.String(),
    }),
  ),
});

/** `GET /v1/reconciliation`: replays the workspace's ledger and proves its invariants (admin only). */
export function registerReconciliationRoutes(app: FastifyInstance, { ctx }: RouteDeps): void {
  app.get(
    '/v1/reconciliation',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['operations'],
        summary:
          "Replay the workspace's ledger: cached balances = Σ entries, entries sum to zero, grants within bounds",
        response: { 200: ReconciliationBody, ...errorResponses },
      },
    },
    async (request) => {
      const report = await reconcileWorkspace(ctx, request.auth.workspaceId);
      return {
        ok: report.ok,
        entries: report.entries,
        accounts: report.accounts,
        grants: report.grants,
        events: report.events,
        failures: report.failures.map((f) => ({
          check: f.check,
          workspace_id: f.workspaceId,
          customer_id: f.customerId,
          credit_type: f.creditType,
          account: f.account,
          message: f.message,
        })),
      };
    },
  );
}
