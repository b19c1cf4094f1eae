import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Metrics, RequestLatencyHistogram } from '../../src/http/metrics.js';

/**
 * The per-request metrics are kept as plain counts and written as text at scrape time (prom-client's
 * own `observe` costs microseconds on every request): the text must be exactly what prom-client
 * writes for the same observations, so dashboards and alerts see no difference.
 */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ROUTES = ['/v1/customers/:id/debits', '/v1/check', 'unmatched', 'a "quoted" \\ route\nwith a newline'];

async function promClientText(observations: readonly [string, number][]): Promise<string> {
  const registry = new Registry();
  const histogram = new Histogram({
    name: 'burndown_http_request_duration_seconds',
    help: 'HTTP request latency by route template',
    labelNames: ['route'] as const,
    buckets: BUCKETS,
    registers: [registry],
  });
  for (const [route, seconds] of observations) histogram.observe({ route }, seconds);
  return registry.metrics();
}

describe('RequestLatencyHistogram', () => {
  it('writes the same exposition text as prom-client for any observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.constantFrom(...ROUTES),
            fc.oneof(fc.constantFrom(...BUCKETS, 0, 3, 1e-9), fc.double({ min: 0, max: 5, noNaN: true })),
          ),
          { maxLength: 60 },
        ),
        async (observations) => {
          const ours = new RequestLatencyHistogram(
            'burndown_http_request_duration_seconds',
            'HTTP request latency by route template',
            BUCKETS,
          );
          for (const [route, seconds] of observations) ours.observe(route, seconds);
          expect(ours.render()).toBe(await promClientText(observations));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('counts requests by method, route and status in the scrape', async () => {
    const metrics = new Metrics();
    metrics.observeRequest('POST', '/v1/customers/:id/debits', 201, 0.002);
    metrics.observeRequest('POST', '/v1/customers/:id/debits', 201, 0.003);
    metrics.observeRequest('POST', '/v1/customers/:id/debits', 402, 0.001);
    metrics.observeRequest('GET', '/v1/check', 200, 0.0004);
    const first = await metrics.render();
    expect(first).toContain(
      'burndown_http_requests_total{method="POST",route="/v1/customers/:id/debits",status="201"} 2\n',
    );
    expect(first).toContain(
      'burndown_http_requests_total{method="POST",route="/v1/customers/:id/debits",status="402"} 1\n',
    );
    expect(first).toContain('burndown_http_requests_total{method="GET",route="/v1/check",status="200"} 1\n');
    expect(first).toContain(
      'burndown_http_request_duration_seconds_count{route="/v1/customers/:id/debits"} 3\n',
    );
    expect(first).toContain(
      'burndown_http_request_duration_seconds_bucket{le="0.0005",route="/v1/check"} 1\n',
    );
    // A second scrape counts from the start, not from the previous scrape.
    metrics.observeRequest('GET', '/v1/check', 200, 0.0004);
    const second = await metrics.render();
    expect(second).toContain('burndown_http_requests_total{method="GET",route="/v1/check",status="200"} 2\n');
    expect(second).toContain('burndown_http_request_duration_seconds_count{route="/v1/check"} 2\n');
  });
});
