import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../app.js';

/**
 * `GET /healthz`, `GET /openapi.json`: public, no tenant data. `GET /metrics` needs a key of any
 * scope unless `metricsPublic` (route names, volumes and latencies are operational intelligence).
 */
export function registerOperationRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
  options: { readonly metricsPublic: boolean },
): void {
  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type('application/json; charset=utf-8').send('{"status":"ok"}');
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/metrics',
    { schema: { hide: true }, config: options.metricsPublic ? {} : { scope: 'balance' } },
    async (_request, reply) => {
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await deps.metrics.render());
    },
  );
}
