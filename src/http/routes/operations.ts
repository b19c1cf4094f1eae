import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../app.js';

/** `GET /healthz`, `GET /openapi.json`, `GET /metrics`: public, no tenant data. */
export function registerOperationRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type('application/json; charset=utf-8').send('{"status":"ok"}');
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(deps.metrics.render());
  });
}
