// Meter usage under load: 50,000 events of one customer over 30 days, grouped by two dimensions
// (6 models × 4 regions, hourly windows: ~17k rows). Measures how long reading all usage takes,
// how many bytes each answer carries, and how long GET /healthz waits meanwhile (the event loop).
// Usage: npm run build && node bench/meter-usage.mjs   (BENCH_EVENTS to change the count)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, log, num, startChild } from './lib.mjs';

const EVENTS = num('BENCH_EVENTS', 50_000);
// Rows per page (the server's default when unset; the old server had no paging).
const LIMIT = process.env.BENCH_LIMIT ?? '';
const KEY = 'bench-admin-key-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'burndown-usage-'));
const server = await startChild('server', [cli, 'serve'], {
  PORT: '0',
  BURNDOWN_API_KEY: KEY,
  BURNDOWN_DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
  BURNDOWN_LOG_LEVEL: 'warn',
});
const url = await server.url;
const call = async (method, path, body) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text;
};
try {
  await call('POST', '/v1/customers', { id: 'acme' });
  await call('POST', '/v1/meters', {
    id: 'tokens',
    event_type: 'llm.tokens',
    aggregation: 'sum',
    value_property: '$.tokens',
    group_by: { model: '$.model', region: '$.region' },
  });
  const start = Date.parse('2030-01-01T00:00:00Z');
  for (let i = 0; i < EVENTS; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(EVENTS, i + 10_000); j++) {
      batch.push({
        id: `e-${j}`,
        type: 'llm.tokens',
        customer_id: 'acme',
        time: new Date(start + Math.floor((j / EVENTS) * 30 * 86_400_000)).toISOString(),
        data: { model: `m${j % 6}`, region: `r${(j >> 3) % 4}`, tokens: (j % 100) + 1 },
      });
    }
    await call('POST', '/v1/events', batch);
  }
  // /healthz pinged back to back while usage is read; the longest wait is the event-loop stall.
  let pinging = true;
  let worstHealthz = 0;
  const pinger = (async () => {
    while (pinging) {
      const t0 = performance.now();
      await fetch(`${url}/healthz`).then((r) => r.text());
      worstHealthz = Math.max(worstHealthz, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const idleHealthz = worstHealthz;
  worstHealthz = 0;
  const t0 = performance.now();
  let pages = 0;
  let bytes = 0;
  let largest = 0;
  let rows = 0;
  let firstPageMs = 0;
  let worstPageMs = 0;
  let cursor = null;
  do {
    const p0 = performance.now();
    const q = `window=hour&group_by=model,region&customer_id=acme${LIMIT ? `&limit=${LIMIT}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const text = await call('GET', `/v1/meters/tokens/usage?${q}`);
    const pageMs = performance.now() - p0;
    if (pages === 0) firstPageMs = pageMs;
    worstPageMs = Math.max(worstPageMs, pageMs);
    pages += 1;
    bytes += text.length;
    largest = Math.max(largest, text.length);
    const body = JSON.parse(text);
    rows += body.data.length;
    cursor = body.next_cursor ?? null;
  } while (cursor !== null);
  const totalMs = performance.now() - t0;
  pinging = false;
  await pinger;
  log(`events ${EVENTS}, rows ${rows}, pages ${pages}`);
  log(
    `first page ${firstPageMs.toFixed(0)} ms, slowest page ${worstPageMs.toFixed(0)} ms, all pages ${totalMs.toFixed(0)} ms`,
  );
  log(`largest answer ${(largest / 1024).toFixed(0)} kB, all answers ${(bytes / 1024).toFixed(0)} kB`);
  log(
    `slowest /healthz meanwhile ${worstHealthz.toFixed(0)} ms (${idleHealthz.toFixed(0)} ms in the idle second before)`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
