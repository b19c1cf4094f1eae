import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { LedgerChanges } from '../../src/domain/ledger/changes.js';
import type { LedgerEntry } from '../../src/domain/ledger/types.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { buildApp } from '../../src/http/app.js';
import { Metrics } from '../../src/http/metrics.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import { observeCommittedEntries } from '../../src/infra/observed-storage.js';
import { instrumentStorage } from '../../src/main.js';
import type { Storage, WriteOperations } from '../../src/ports/storage.js';
import type { WebhookResponse, WebhookTransport } from '../../src/ports/webhooks.js';
import { ensureAdminKey } from '../../src/services/api-keys.js';
import type { ServiceContext } from '../../src/services/context.js';
import { sweepDueLedgers } from '../../src/services/ledger.js';
import { WebhookDispatcher } from '../../src/services/webhook-dispatcher.js';
import { DEFAULT_SECRET_OVERLAP_MS, type WebhookSettings } from '../../src/services/webhook-endpoints.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { T0, TEST_API_KEY } from '../fixtures/harness.js';

/**
 * Operational visibility: one structured log line per request (never the key), and business
 * metrics on /metrics after known operations, on both dialects (the gauges read the database).
 */

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function observedApp(raw: Storage, webhooks?: WebhookSettings) {
  const clock = new ManualClock(T0);
  const metrics = new Metrics();
  const storage = instrumentStorage(raw, metrics, clock);
  const ctx: ServiceContext = { storage, clock, ids: new TimeOrderedIds(() => clock.now()) };
  await ensureAdminKey(ctx, TEST_API_KEY);
  const lines: string[] = [];
  const app = await buildApp(ctx, {
    bodyLimit: 1024 * 1024,
    logLevel: 'info',
    logStream: { write: (line: string) => void lines.push(line) },
    metrics,
    ...(webhooks === undefined ? {} : { webhooks }),
  });
  closers.push(async () => {
    await app.close();
    await raw.close();
  });
  const auth = { authorization: `Bearer ${TEST_API_KEY}` };
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': 'application/json', ...headers },
      payload: JSON.stringify(body),
    });
  const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });
  const scrape = async () => {
    const response = await get('/metrics');
    expect(response.statusCode).toBe(200);
    return response.body;
  };
  return { app, clock, ctx, lines, post, get, scrape };
}

/** The value of one sample of the exposition text (labels in the order prom-client prints them). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('request logs', () => {
  it('one line per request with id, route template, status, duration, key id and workspace; never the key', async () => {
    const t = await observedApp(await DIALECTS[0]!.open());
    const keyId = (await t.get('/v1/api-keys')).json().data[0].id as string;
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    expect((await t.get('/v1/customers/acme/balance')).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/v1/customers/acme/balance' })).statusCode).toBe(401);
    const wrong = await t.app.inject({
      url: '/v1/customers/acme/balance',
      headers: { authorization: 'Bearer not-a-key-but-a-secret-0123' },
    });
    expect(wrong.statusCode).toBe(401);

    const text = t.lines.join('');
    expect(text).not.toContain(TEST_API_KEY);
    expect(text).not.toContain('not-a-key-but-a-secret-0123');
    const records = t.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // Fastify's own "incoming request" / "request completed" pair is off: one line each.
    expect(records.every((r) => r['msg'] === 'request')).toBe(true);
    expect(records).toHaveLength(5);
    const balance = records[2]!;
    expect(balance).toMatchObject({
      level: 30,
      method: 'GET',
      route: '/v1/customers/:id/balance',
      url: '/v1/customers/acme/balance',
      status: 200,
      key_id: keyId,
      workspace: expect.any(String),
    });
    expect(typeof balance['reqId']).toBe('string');
    expect(typeof balance['duration_ms']).toBe('number');
    expect(records[3]).toMatchObject({ status: 401, key_id: null, workspace: null });
    // Neither the key's hash is logged.
    for (const r of records) expect(Object.keys(r)).not.toContain('keyHash');
  });

  it('BURNDOWN_LOG_LEVEL defaults to info and takes only pino levels', () => {
    expect(loadConfig({}).logLevel).toBe('info');
    expect(loadConfig({ BURNDOWN_LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(() => loadConfig({ BURNDOWN_LOG_LEVEL: 'verbose' })).toThrow(/BURNDOWN_LOG_LEVEL must be one of/);
  });

  it('logs nothing per request above info (BURNDOWN_LOG_LEVEL=warn)', async () => {
    const raw = await DIALECTS[0]!.open();
    const clock = new ManualClock(T0);
    const ctx: ServiceContext = { storage: raw, clock, ids: new TimeOrderedIds(() => clock.now()) };
    await ensureAdminKey(ctx, TEST_API_KEY);
    const lines: string[] = [];
    const app = await buildApp(ctx, {
      bodyLimit: 1024 * 1024,
      logLevel: 'warn',
      logStream: { write: (line: string) => void lines.push(line) },
    });
    closers.push(async () => {
      await app.close();
      await raw.close();
    });
    await app.inject({ url: '/healthz' });
    expect(lines).toEqual([]);
  });
});

for (const dialect of DIALECTS) {
  describe(`business metrics (${dialect.name})`, () => {
    it('counts events by outcome and credits by flow; reads holds, overage and sweeper lag from the database', async () => {
      const t = await observedApp(await dialect.open());
      const ok = async (response: Promise<{ statusCode: number; body: string }>, status: number) => {
        const r = await response;
        expect(r.statusCode, r.body).toBe(status);
        return JSON.parse(r.body);
      };
      await ok(t.post('/v1/customers', { id: 'acme' }), 201);
      await ok(t.post('/v1/customers', { id: 'beta' }), 201);
      const expiresAt = new Date(T0 + 3_600_000).toISOString();
      await ok(t.post('/v1/customers/acme/grants', { amount: '100', expires_at: expiresAt }), 201);
      await ok(t.post('/v1/customers/acme/grants', { amount: '50' }), 201);
      await ok(t.post('/v1/customers/acme/debits', { amount: '30' }), 201);
      await ok(t.post('/v1/customers/acme/holds', { amount: '10', ttl_seconds: 300 }), 201);
      await ok(t.post('/v1/customers/beta/debits', { amount: '5', allow_overage: true }), 201);
      // Metering: 2 tokens burn 2 credits; a repeated id, an unmetered type, an unknown customer.
      await ok(
        t.post('/v1/meters', {
          id: 'tokens',
          event_type: 'llm.tokens',
          aggregation: 'sum',
          value_property: '$.tokens',
        }),
        201,
      );
      await ok(t.post('/v1/rates', { id: 'per-token', meter_id: 'tokens', credits_per_unit: '1' }), 201);
      const batch = [
        { id: 'e1', type: 'llm.tokens', customer_id: 'acme', data: { tokens: 2 } },
        { id: 'e1', type: 'llm.tokens', customer_id: 'acme', data: { tokens: 2 } },
        { id: 'e2', type: 'page.view', customer_id: 'acme', data: {} },
        { id: 'e3', type: 'llm.tokens', customer_id: 'nobody', data: { tokens: 1 } },
      ];
      const answer = await ok(t.post('/v1/events', batch, { 'idempotency-key': 'batch-1' }), 202);
      expect(answer).toMatchObject({ accepted: 2, duplicates: 1, unmetered: 1 });
      expect(answer.rejected).toHaveLength(1);
      // A replay of the same Idempotency-Key is not counted again.
      await ok(t.post('/v1/events', batch, { 'idempotency-key': 'batch-1' }), 202);
      // A batch whose every event is rejected (400 invalid_batch) still counts its rejection.
      await ok(t.post('/v1/events', [{ id: 'e4', type: 'llm.tokens', customer_id: 'nobody' }]), 400);

      let m = await t.scrape();
      expect(sample(m, 'burndown_events_total', 'outcome="accepted"')).toBe(2);
      expect(sample(m, 'burndown_events_total', 'outcome="unmetered"')).toBe(1);
      expect(sample(m, 'burndown_events_total', 'outcome="duplicate"')).toBe(1);
      expect(sample(m, 'burndown_events_total', 'outcome="rejected"')).toBe(2);
      expect(sample(m, 'burndown_credits_granted_total', 'credit_type="credits"')).toBe(150);
      expect(sample(m, 'burndown_credits_burned_total', 'credit_type="credits"')).toBe(37);
      expect(sample(m, 'burndown_credits_expired_total', 'credit_type="credits"')).toBeUndefined();
      expect(sample(m, 'burndown_holds_open', 'credit_type="credits"')).toBe(1);
      expect(sample(m, 'burndown_holds_open_credits', 'credit_type="credits"')).toBe(10);
      expect(sample(m, 'burndown_overage_outstanding_credits', 'credit_type="credits"')).toBe(5);
      expect(sample(m, 'burndown_overage_ledgers', 'credit_type="credits"')).toBe(1);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="grant_expiry"')).toBe(0);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="hold_expiry"')).toBe(0);
      expect(sample(m, 'burndown_metrics_database_read_ok')).toBe(1);

      // One second past the grant's expiry, before the sweeper ran: the lag shows it.
      t.clock.set(T0 + 3_601_000);
      m = await t.scrape();
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="grant_expiry"')).toBe(1);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="hold_expiry"')).toBe(3301);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="subscription_reset"')).toBe(0);

      await sweepDueLedgers(t.ctx);
      m = await t.scrape();
      // 100 − 30 debited − 2 burned by e1 = 68 left on the expiring grant (the hold's 10 came back first).
      expect(sample(m, 'burndown_credits_expired_total', 'credit_type="credits"')).toBe(68);
      expect(sample(m, 'burndown_credits_granted_total', 'credit_type="credits"')).toBe(150);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="grant_expiry"')).toBe(0);
      expect(sample(m, 'burndown_sweeper_lag_seconds', 'kind="hold_expiry"')).toBe(0);
      expect(sample(m, 'burndown_holds_open', 'credit_type="credits"')).toBeUndefined();
      expect(sample(m, 'burndown_overage_outstanding_credits', 'credit_type="credits"')).toBe(5);

      // A grant to beta pays its overage first: the debt leaves the gauge.
      await ok(t.post('/v1/customers/beta/grants', { amount: '20' }), 201);
      m = await t.scrape();
      expect(sample(m, 'burndown_overage_outstanding_credits', 'credit_type="credits"')).toBeUndefined();
      expect(sample(m, 'burndown_credits_granted_total', 'credit_type="credits"')).toBe(170);
      // The existing names keep working.
      expect(m).toContain(
        'burndown_http_requests_total{method="POST",route="/v1/customers/:id/debits",status="201"} 2',
      );
      expect(m).toContain('burndown_http_request_duration_seconds_bucket');
    });

    it('counts nothing of a write that rolled back', async () => {
      const t = await observedApp(await dialect.open());
      await t.post('/v1/customers', { id: 'acme' });
      await t.post('/v1/customers/acme/grants', { amount: '10' });
      // All or nothing: a debit beyond the balance is refused and records no entry.
      expect((await t.post('/v1/customers/acme/debits', { amount: '11' })).statusCode).toBe(402);
      const m = await t.scrape();
      expect(sample(m, 'burndown_credits_burned_total', 'credit_type="credits"')).toBeUndefined();
      expect(sample(m, 'burndown_credits_granted_total', 'credit_type="credits"')).toBe(10);
    });
  });
}

describe('the committed-entries seam', () => {
  /** A storage whose write runs `work` `attempts` times (a retried transaction), then commits or fails. */
  function fakeStorage(attempts: number, commit: boolean): Storage {
    const tx = { saveLedger: () => undefined } as unknown as WriteOperations;
    return {
      dialect: 'sqlite',
      async write<T>(
        _key: string | readonly string[],
        work: (tx: WriteOperations) => Promise<T>,
      ): Promise<T> {
        let result: T | undefined;
        for (let i = 0; i < attempts; i++) result = await work(tx);
        if (!commit) throw new Error('commit failed');
        return result as T;
      },
    } as unknown as Storage;
  }
  const entry = { type: 'grant', creditType: 'credits' } as unknown as LedgerEntry;
  const changeSet = () => ({ entries: [entry] }) as unknown as LedgerChanges;

  it('reports the entries of the last attempt once, after the commit', async () => {
    const seen: (readonly LedgerEntry[])[] = [];
    const storage = observeCommittedEntries(fakeStorage(3, true), (entries) => seen.push(entries));
    await storage.write('k', async (tx) => {
      const c = changeSet();
      await tx.saveLedger('ws', c, 0);
      await tx.saveLedger('ws', c, 0); // the same change set saved twice: still its entries once
    });
    expect(seen).toEqual([[entry]]);
  });

  it('reports nothing of a write that failed, and a throwing observer never fails a write', async () => {
    const seen: unknown[] = [];
    const failing = observeCommittedEntries(fakeStorage(1, false), (entries) => seen.push(entries));
    await expect(failing.write('k', async (tx) => tx.saveLedger('ws', changeSet(), 0))).rejects.toThrow(
      'commit failed',
    );
    expect(seen).toEqual([]);
    const throwing = observeCommittedEntries(fakeStorage(1, true), () => {
      throw new Error('observer');
    });
    await expect(
      throwing.write('k', async (tx) => tx.saveLedger('ws', changeSet(), 0)),
    ).resolves.toBeUndefined();
  });
});

for (const dialect of DIALECTS) {
  describe(`webhook backlog metrics (${dialect.name})`, () => {
    it('counts events not fanned out and deliveries pending, and how late the oldest due one is', async () => {
      let status = 503;
      const transport: WebhookTransport = {
        checkDestination: async () => {},
        send: async (): Promise<WebhookResponse> => ({
          statusCode: status,
          retryAfter: null,
          excerpt: null,
          error: null,
          latencyMs: 1,
        }),
      };
      const t = await observedApp(await dialect.open(), {
        transport,
        secretOverlapMs: DEFAULT_SECRET_OVERLAP_MS,
      });
      const dispatcher = new WebhookDispatcher(t.ctx, { transport, random: () => 0.5 });
      const backlog = async () => {
        const m = await t.scrape();
        return {
          unfanned: sample(m, 'burndown_outbox_events_unfanned'),
          pending: sample(m, 'burndown_webhook_deliveries_pending'),
          lag: sample(m, 'burndown_webhook_delivery_lag_seconds'),
        };
      };
      expect(await backlog()).toEqual({ unfanned: 0, pending: 0, lag: 0 });
      const endpoint = await t.post('/v1/webhook-endpoints', {
        url: 'https://hooks.example.com/burndown',
        event_types: ['grant.created'],
      });
      expect(endpoint.statusCode, endpoint.body).toBe(201);
      expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
      expect((await t.post('/v1/customers/acme/grants', { amount: '10' })).statusCode).toBe(201);
      // The grant's fact waits in the outbox until a dispatcher round fans it out.
      const before = await backlog();
      expect(before.unfanned).toBeGreaterThanOrEqual(1);
      expect(before.pending).toBe(0);

      // Fanned out into one delivery, whose first attempt fails: it waits for its retry.
      await dispatcher.runOnce();
      expect(await backlog()).toEqual({ unfanned: 0, pending: 1, lag: 0 });

      // An hour later, with no dispatcher running, the retry is overdue: the lag shows by how much.
      t.clock.set(T0 + 3_600_000);
      const late = await backlog();
      expect(late.pending).toBe(1);
      expect(late.lag).toBeGreaterThan(0);
      expect(late.lag).toBeLessThan(3_600);

      // The receiver answers again: delivered, nothing pending, no lag.
      status = 200;
      await dispatcher.drain();
      expect(await backlog()).toEqual({ unfanned: 0, pending: 0, lag: 0 });
    });
  });
}
