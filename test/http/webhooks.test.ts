import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { RETRY_DELAYS_MS } from '../../src/domain/webhooks/retry.js';
import { WEBHOOK_EVENTS } from '../../src/http/webhook-events/index.js';
import { HttpWebhookTransport } from '../../src/infra/webhook-transport.js';
import { sweepDueSubscriptions } from '../../src/services/subscriptions.js';
import { WebhookDispatcher } from '../../src/services/webhook-dispatcher.js';
import { DEFAULT_SECRET_OVERLAP_MS } from '../../src/services/webhook-endpoints.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';
import { verifyStandardWebhook, WebhookReceiver } from '../fixtures/webhook-receiver.js';

/**
 * Outbound webhooks end to end in one process: a real receiver on 127.0.0.1, the real HTTP
 * transport, and the dispatcher driven by hand under a manual clock (jitter fixed at 0.5, so every
 * wait is exactly the schedule's).
 */
// RFC 3339 as the API writes it (TypeBox validates no format unless told how).
FormatRegistry.Set('date-time', (v) =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v),
);

describe('outbound webhooks', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let dispatcher: WebhookDispatcher;

  async function open(options: { timeoutMs?: number; disableAfterMs?: number } = {}) {
    receiver = await WebhookReceiver.start();
    const transport = new HttpWebhookTransport({ allowPrivate: true, timeoutMs: options.timeoutMs ?? 2000 });
    t = await createTestApp({ webhooks: { transport, secretOverlapMs: DEFAULT_SECRET_OVERLAP_MS } });
    dispatcher = new WebhookDispatcher(t.ctx, {
      transport,
      random: () => 0.5,
      ...(options.disableAfterMs ? { disableAfterMs: options.disableAfterMs } : {}),
      onError: (error) => {
        throw error;
      },
    });
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
  }

  afterEach(async () => {
    await dispatcher?.stop();
    await t?.close();
    await receiver?.close();
  });

  async function createEndpoint(body: Record<string, unknown> = {}) {
    const res = await t.post('/v1/webhook-endpoints', { url: receiver.url, ...body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string };
  }

  async function grant(amount = '100', customer = 'acme') {
    const res = await t.post(`/v1/customers/${customer}/grants`, { amount });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string };
  }

  /** Moves the clock to `ms` after the start of the test and runs the dispatcher once. */
  async function runAt(offsetMs: number, start: number) {
    t.clock.set(start + offsetMs);
    return dispatcher.runOnce();
  }

  async function attemptsOf(endpointId: string) {
    const res = await t.get(`/v1/webhook-endpoints/${endpointId}/attempts`);
    expect(res.statusCode).toBe(200);
    return res.json().data as {
      event_id: string;
      attempt: number;
      attempted_at: string;
      status_code: number | null;
      error: string | null;
      outcome: string;
      response_excerpt: string | null;
    }[];
  }

  it('signs each delivery per Standard Webhooks; the secret is shown once; webhook-id is the event id', async () => {
    await open();
    const created = await t.post(
      '/v1/webhook-endpoints',
      { url: receiver.url, description: 'billing' },
      { 'idempotency-key': 'ep-1' },
    );
    expect(created.statusCode).toBe(201);
    const endpoint = created.json();
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const replay = await t.post(
      '/v1/webhook-endpoints',
      { url: receiver.url, description: 'billing' },
      { 'idempotency-key': 'ep-1' },
    );
    expect(replay.json()).toMatchObject({ id: endpoint.id, secret: null });
    expect(JSON.stringify((await t.get(`/v1/webhook-endpoints/${endpoint.id}`)).json())).not.toContain(
      'whsec_',
    );

    const g = await grant('250');
    expect(receiver.received).toHaveLength(0);
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(1);
    const payload = verifyStandardWebhook(endpoint.secret, receiver.received[0]!);
    expect(payload.type).toBe('grant.created');
    expect(payload.data).toMatchObject({ grant_id: g.id, customer_id: 'acme', amount: '250' });
    const eventId = String(receiver.received[0]!.headers['webhook-id']);
    expect(eventId).toMatch(/^evt_/);
    expect(Number(receiver.received[0]!.headers['webhook-timestamp'])).toBe(Math.floor(t.clock.now() / 1000));
    // A wrong secret does not verify.
    expect(() =>
      verifyStandardWebhook(`whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`, receiver.received[0]!),
    ).toThrow();
    const log = await t.get(`/v1/webhook-events/${eventId}`);
    expect(log.json().deliveries).toEqual([
      expect.objectContaining({ endpoint_id: endpoint.id, state: 'delivered', attempts: 1 }),
    ]);
    expect((await t.get(`/v1/webhook-events/${eventId}/attempts`)).json().data).toEqual([
      expect.objectContaining({ status_code: 204, outcome: 'delivered', attempt: 1 }),
    ]);
    // Nothing left to send.
    expect((await dispatcher.runOnce()).attempted).toBe(0);
  });

  it('endpoint changes are audited with the actor and before/after, never with a signing secret', async () => {
    await open();
    const ep = await createEndpoint({ description: 'billing' });
    expect(
      (
        await t.request({
          method: 'PATCH',
          url: `/v1/webhook-endpoints/${ep.id}`,
          payload: { description: 'ops' },
        })
      ).statusCode,
    ).toBe(200);
    const rotated = await t.post(`/v1/webhook-endpoints/${ep.id}/rotate-secret`, {});
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect((await t.request({ method: 'DELETE', url: `/v1/webhook-endpoints/${ep.id}` })).statusCode).toBe(
      204,
    );
    const log = (await t.get('/v1/audit-log?target_type=webhook_endpoint')).json();
    expect(log.data.map((r: { action: string }) => r.action)).toEqual([
      'webhook_endpoint.created',
      'webhook_endpoint.updated',
      'webhook_endpoint.secret_rotated',
      'webhook_endpoint.deleted',
    ]);
    expect(
      log.data.every(
        (r: { target_id: string; actor_key_id: string }) =>
          r.target_id === ep.id && r.actor_key_id.startsWith('key_'),
      ),
    ).toBe(true);
    expect(log.data[1]).toMatchObject({ before: { description: 'billing' }, after: { description: 'ops' } });
    expect(log.data[3]).toMatchObject({ before: { id: ep.id }, after: null });
    const text = JSON.stringify(log);
    expect(text).not.toContain(ep.secret);
    expect(text).not.toContain(rotated.json().secret);
  });

  it('an endpoint receives only events written after it was created, and only the types it subscribed to', async () => {
    await open();
    await grant('1');
    t.clock.advance(1);
    const endpoint = await createEndpoint({ event_types: ['grant.voided'] });
    const g = await grant('2');
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(0);
    expect((await t.post(`/v1/grants/${g.id}/void`, {})).statusCode).toBe(200);
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(1);
    expect(verifyStandardWebhook(endpoint.secret, receiver.received[0]!).type).toBe('grant.voided');
    const bad = await t.post('/v1/webhook-endpoints', { url: receiver.url, event_types: ['grant.creatd'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_request');
  });

  it('retries a receiver that fails its first 3 attempts on the schedule (0, 5 s, 5 min), same webhook-id', async () => {
    await open();
    const start = t.clock.now();
    const endpoint = await createEndpoint();
    receiver.answer = (_r, i) => (i < 3 ? { status: 500, body: 'x'.repeat(5000) } : { status: 200 });
    await grant();
    await runAt(0, start);
    expect(receiver.received).toHaveLength(1);
    await runAt(RETRY_DELAYS_MS[0]! - 1, start);
    expect(receiver.received).toHaveLength(1);
    await runAt(RETRY_DELAYS_MS[0]!, start);
    expect(receiver.received).toHaveLength(2);
    await runAt(RETRY_DELAYS_MS[0]! + RETRY_DELAYS_MS[1]! - 1, start);
    expect(receiver.received).toHaveLength(2);
    await runAt(RETRY_DELAYS_MS[0]! + RETRY_DELAYS_MS[1]!, start);
    expect(receiver.received).toHaveLength(3);
    await runAt(RETRY_DELAYS_MS[0]! + RETRY_DELAYS_MS[1]! + RETRY_DELAYS_MS[2]!, start);
    expect(receiver.received).toHaveLength(4);
    const ids = new Set(receiver.received.map((r) => r.headers['webhook-id']));
    expect(ids.size).toBe(1);
    for (const r of receiver.received) verifyStandardWebhook(endpoint.secret, r);
    const attempts = await attemptsOf(endpoint.id);
    expect(attempts.map((a) => [a.attempt, a.status_code, a.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 500, 'retry'],
      [3, 500, 'retry'],
      [4, 200, 'delivered'],
    ]);
    expect(attempts.map((a) => Date.parse(a.attempted_at) - start)).toEqual([0, 5_000, 305_000, 2_105_000]);
    // The response excerpt is at most 1 kB.
    expect(attempts[0]!.response_excerpt).toHaveLength(1024);
  });

  it('a receiver slower than the timeout is a failed attempt, retried later', async () => {
    await open({ timeoutMs: 200 });
    const start = t.clock.now();
    const endpoint = await createEndpoint();
    receiver.answer = (_r, i) => (i === 0 ? { status: 200, delayMs: 1500 } : { status: 200 });
    await grant();
    await runAt(0, start);
    const [first] = await attemptsOf(endpoint.id);
    expect(first).toMatchObject({ status_code: null, outcome: 'retry' });
    expect(first!.error).toMatch(/no answer within 200 ms/);
    await runAt(5_000, start);
    expect((await attemptsOf(endpoint.id)).map((a) => a.outcome)).toEqual(['retry', 'delivered']);
  });

  it('410 disables the endpoint, records endpoint.disabled, and nothing more is sent to it', async () => {
    await open();
    const gone = await createEndpoint();
    receiver.answer = () => ({ status: 410 });
    await grant();
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(1);
    const after = (await t.get(`/v1/webhook-endpoints/${gone.id}`)).json();
    expect(after).toMatchObject({ enabled: false, disabled_reason: 'gone' });
    const facts = await t.storage.read.outbox.listAfter('default', 0, 100);
    expect(facts.map((f) => f.type)).toContain('endpoint.disabled');
    expect(facts.find((f) => f.type === 'endpoint.disabled')!.data).toMatchObject({
      endpoint_id: gone.id,
      reason: 'gone',
    });
    await grant();
    t.clock.advance(3_600_000);
    await dispatcher.drain();
    expect(receiver.received).toHaveLength(1);
  });

  it('429 with Retry-After (seconds) waits that long instead of the 5 s step', async () => {
    await open();
    const start = t.clock.now();
    const endpoint = await createEndpoint();
    receiver.answer = (_r, i) =>
      i === 0 ? { status: 429, headers: { 'retry-after': '120' } } : { status: 200 };
    await grant();
    await runAt(0, start);
    await runAt(5_000, start);
    await runAt(119_999, start);
    expect(receiver.received).toHaveLength(1);
    await runAt(120_000, start);
    expect(receiver.received).toHaveLength(2);
    expect((await attemptsOf(endpoint.id)).map((a) => a.status_code)).toEqual([429, 200]);
  });

  it('a disabled endpoint gets nothing; enabled again, what waited is sent', async () => {
    await open();
    const endpoint = await createEndpoint();
    receiver.answer = () => ({ status: 500 });
    await grant();
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(1);
    expect((await t.post(`/v1/webhook-endpoints/${endpoint.id}/disable`, {})).json()).toMatchObject({
      enabled: false,
      disabled_reason: 'manual',
    });
    await grant();
    t.clock.advance(86_400_000);
    await dispatcher.drain();
    expect(receiver.received).toHaveLength(1);
    receiver.answer = () => ({ status: 200 });
    expect((await t.post(`/v1/webhook-endpoints/${endpoint.id}/enable`, {})).json().enabled).toBe(true);
    await dispatcher.drain();
    // The retrying delivery resumes; the event written while disabled was never fanned out to it.
    expect(receiver.received).toHaveLength(2);
  });

  it("one customer's events reach an endpoint in order: a later one waits while an earlier one retries", async () => {
    await open();
    const endpoint = await createEndpoint();
    expect((await t.post('/v1/customers', { id: 'beta' })).statusCode).toBe(201);
    receiver.answer = (_r, i) => (i === 0 ? { status: 503 } : { status: 200 });
    const first = await grant('1');
    const second = await grant('2');
    await grant('3', 'beta');
    await dispatcher.runOnce();
    // acme's first failed; acme's second waits; beta's went.
    const sent = () =>
      receiver.received.map(
        (r) => verifyStandardWebhook(endpoint.secret, r).data as { grant_id: string; customer_id: string },
      );
    expect(sent().map((d) => d.customer_id)).toEqual(expect.arrayContaining(['acme', 'beta']));
    expect(sent()).toHaveLength(2);
    t.clock.advance(5_000);
    await dispatcher.drain();
    expect(
      sent()
        .filter((d) => d.customer_id === 'acme')
        .map((d) => d.grant_id),
    ).toEqual([first.id, first.id, second.id]);
  });

  it('rotation: both secrets sign during the overlap, then only the new one', async () => {
    await open();
    const endpoint = await createEndpoint();
    const rotated = await t.post(`/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {});
    expect(rotated.statusCode).toBe(200);
    const secret = rotated.json().secret as string;
    expect(secret).not.toBe(endpoint.secret);
    await grant();
    await dispatcher.runOnce();
    const during = receiver.received[0]!;
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    verifyStandardWebhook(secret, during);
    verifyStandardWebhook(endpoint.secret, during);
    t.clock.advance(DEFAULT_SECRET_OVERLAP_MS);
    await grant();
    await dispatcher.runOnce();
    const afterOverlap = receiver.received[1]!;
    expect(String(afterOverlap.headers['webhook-signature']).split(' ')).toHaveLength(1);
    verifyStandardWebhook(secret, afterOverlap);
    expect(() => verifyStandardWebhook(endpoint.secret, afterOverlap)).toThrow();
  });

  it('replays one event or a time range (delivered ones included) with the same webhook-id; a deleted endpoint is 404', async () => {
    await open();
    const start = t.clock.now();
    const endpoint = await createEndpoint();
    await grant('1');
    t.clock.advance(1000);
    await grant('2');
    // One customer's events go one at a time, in order: two rounds.
    await dispatcher.drain();
    expect(receiver.received).toHaveLength(2);
    const firstId = String(receiver.received[0]!.headers['webhook-id']);
    const one = await t.post(`/v1/webhook-endpoints/${endpoint.id}/replay`, { event_id: firstId });
    expect(one.statusCode).toBe(202);
    expect(one.json()).toEqual({ queued: 1 });
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received[2]!.headers['webhook-id']).toBe(firstId);
    const range = await t.post(`/v1/webhook-endpoints/${endpoint.id}/replay`, {
      from: new Date(start).toISOString(),
      to: new Date(start + 2000).toISOString(),
    });
    expect(range.json()).toEqual({ queued: 2 });
    await dispatcher.drain();
    expect(receiver.received).toHaveLength(5);
    const unknown = await t.post(`/v1/webhook-endpoints/${endpoint.id}/replay`, { event_id: 'evt_nope' });
    expect(unknown.statusCode).toBe(404);
    expect(
      (await t.request({ method: 'DELETE', url: `/v1/webhook-endpoints/${endpoint.id}` })).statusCode,
    ).toBe(204);
    const deleted = await t.post(`/v1/webhook-endpoints/${endpoint.id}/replay`, { event_id: firstId });
    expect(deleted.statusCode).toBe(404);
    expect(deleted.json().error.code).toBe('not_found');
    expect((await t.get(`/v1/webhook-endpoints/${endpoint.id}`)).statusCode).toBe(404);
    expect((await t.get('/v1/webhook-endpoints')).json().data).toEqual([]);
  });

  it('recent attempts across endpoints: newest first, filtered by outcome, paged, with event type and delivery state', async () => {
    await open();
    const start = t.clock.now();
    const good = await createEndpoint({ description: 'good' });
    const badReceiver = await WebhookReceiver.start();
    badReceiver.answer = () => ({ status: 500 });
    const bad = await createEndpoint({ description: 'bad', url: badReceiver.url });
    await grant('10');
    await runAt(0, start);
    await grant('20');
    await runAt(1, start);
    type Row = {
      id: string;
      endpoint_id: string;
      outcome: string;
      event_type: string | null;
      delivery_state: string | null;
      event_id: string;
    };
    const all = (await t.get('/v1/webhook-attempts')).json() as { data: Row[]; next_cursor: string | null };
    // The bad endpoint's second event waits behind its first (one customer's events stay in order).
    expect(all.data).toHaveLength(3);
    // Newest first, across both endpoints.
    expect([...all.data].map((a) => a.id)).toEqual(
      [...all.data]
        .map((a) => a.id)
        .sort()
        .reverse(),
    );
    expect(new Set(all.data.map((a) => a.endpoint_id))).toEqual(new Set([good.id, bad.id]));
    expect(all.data.every((a) => a.event_type === 'grant.created')).toBe(true);
    const failing = (await t.get('/v1/webhook-attempts?outcome=retry,failed,gone')).json() as { data: Row[] };
    expect(failing.data.map((a) => [a.endpoint_id, a.outcome, a.delivery_state])).toEqual([
      [bad.id, 'retry', 'pending'],
    ]);
    // Paging: pages of two give the same three, in order.
    const first = (await t.get('/v1/webhook-attempts?limit=2')).json() as {
      data: Row[];
      next_cursor: string;
    };
    const second = (await t.get(`/v1/webhook-attempts?limit=2&cursor=${first.next_cursor}`)).json() as {
      data: Row[];
      next_cursor: string | null;
    };
    expect([...first.data, ...second.data].map((a) => a.id)).toEqual(all.data.map((a) => a.id));
    expect(second.next_cursor).toBeNull();
    const one = (await t.get(`/v1/webhook-attempts?endpoint_id=${good.id}`)).json() as { data: Row[] };
    expect(one.data.map((a) => a.outcome)).toEqual(['delivered', 'delivered']);
    // The replay button's call: the failed event queued again for the bad endpoint.
    const replay = await t.post(`/v1/webhook-endpoints/${bad.id}/replay`, {
      event_id: failing.data[0]!.event_id,
    });
    expect(replay.statusCode).toBe(202);
    // Bad input is a structured 4xx.
    const wrong = await t.get('/v1/webhook-attempts?outcome=exploded');
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.code).toBe('invalid_request');
    expect((await t.get('/v1/webhook-attempts?endpoint_id=whe_nope')).statusCode).toBe(404);
    await badReceiver.close();
  });

  it('an endpoint failing for the configured days is disabled with endpoint.disabled', async () => {
    await open({ disableAfterMs: 86_400_000 });
    const endpoint = await createEndpoint();
    receiver.answer = () => ({ status: 500 });
    await grant();
    for (let i = 0; i < 12; i++) {
      await dispatcher.runOnce();
      const log = (
        await t.get(`/v1/webhook-events/${String(receiver.received[0]!.headers['webhook-id'])}`)
      ).json();
      const next = log.deliveries[0].next_attempt_at as string | null;
      if (next === null) break;
      t.clock.set(Math.max(t.clock.now(), Date.parse(next)));
    }
    const state = (await t.get(`/v1/webhook-endpoints/${endpoint.id}`)).json();
    expect(state).toMatchObject({ enabled: false, disabled_reason: 'failing' });
    // Attempts at 0, 5 s, 5 min 5 s, 35 min 5 s, 2 h 35 min 5 s, 7 h 35 min 5 s, 17 h 35 min 5 s, 27 h 35 min 5 s: the last is past a day.
    expect(receiver.received).toHaveLength(8);
    const facts = await t.storage.read.outbox.listAfter('default', 0, 100);
    expect(facts.filter((f) => f.type === 'endpoint.disabled')).toHaveLength(1);
  });

  it('every fact the core emits matches the JSON Schema its event type publishes', async () => {
    await open();
    await t.post('/v1/features', { id: 'chat', type: 'metered', credits_per_use: '1' });
    await t.post('/v1/plans', {
      id: 'pro',
      name: 'Pro',
      entitlements: [{ feature_id: 'chat' }],
      allowances: [{ amount: '500', period: 'P1M' }],
      price: { amount: '29.00', currency: 'USD' },
    });
    await t.post('/v1/credit-packs', {
      id: '10k',
      credits: '10000',
      price: { amount: '100.00', currency: 'USD' },
    });
    const sub = (await t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' })).json();
    await t.post('/v1/customers/acme/purchases', { pack_id: '10k', quantity: 2 });
    const g = await grant('5');
    await t.post(`/v1/grants/${g.id}/void`, { reason: 'test' });
    t.clock.advance(32 * 86_400_000);
    await sweepDueSubscriptions(t.ctx);
    await t.post(`/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    await createEndpoint();
    receiver.answer = () => ({ status: 410 });
    await grant('1');
    await dispatcher.runOnce();
    const facts = await t.storage.read.outbox.listAfter('default', 0, 1000);
    const types = new Set(facts.map((f) => f.type));
    for (const type of [
      'grant.created',
      'grant.voided',
      'purchase.created',
      'subscription.renewed',
      'subscription.canceled',
      'endpoint.disabled',
    ]) {
      expect(types, type).toContain(type);
    }
    for (const fact of facts) {
      const definition = WEBHOOK_EVENTS.find((e) => e.type === fact.type);
      expect(definition, `${fact.type} is in the catalog`).toBeDefined();
      const errors = [...Value.Errors(definition!.data, fact.data)].map((e) => `${e.path} ${e.message}`);
      expect(errors, `${fact.type} ${JSON.stringify(fact.data)}`).toEqual([]);
    }
  });

  it('publishes every event type in the OpenAPI webhooks section', async () => {
    await open();
    const doc = (await t.get('/openapi.json', { authorization: '' })).json();
    expect(Object.keys(doc.webhooks).sort()).toEqual(WEBHOOK_EVENTS.map((e) => e.type).sort());
    expect(
      doc.webhooks['grant.created'].post.requestBody.content['application/json'].schema.properties.data
        .properties,
    ).toHaveProperty('amount');
  });

  it('only admin keys manage endpoints', async () => {
    await open();
    const key = (await t.post('/v1/api-keys', { scope: 'write' })).json().key as string;
    const res = await t.post(
      '/v1/webhook-endpoints',
      { url: receiver.url },
      { authorization: `Bearer ${key}` },
    );
    expect(res.statusCode).toBe(403);
  });
});

describe('webhook endpoint URLs (server-side request forgery guard)', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  it('refuses non-http(s), too long and private URLs with stable codes, at creation and at update', async () => {
    t = await createTestApp();
    const cases: [string, string][] = [
      ['ftp://example.com/hook', 'invalid_webhook_url'],
      ['not a url', 'invalid_webhook_url'],
      ['javascript:alert(1)', 'invalid_webhook_url'],
      [`https://example.com/${'a'.repeat(2049)}`, 'webhook_url_too_long'],
      ['http://127.0.0.1/hook', 'webhook_url_not_allowed'],
      ['http://10.1.2.3/hook', 'webhook_url_not_allowed'],
      ['http://192.168.0.10/hook', 'webhook_url_not_allowed'],
      ['http://169.254.169.254/latest/meta-data', 'webhook_url_not_allowed'],
      ['http://[::1]/hook', 'webhook_url_not_allowed'],
      ['http://[fe80::1]/hook', 'webhook_url_not_allowed'],
      ['http://[fd00::1]/hook', 'webhook_url_not_allowed'],
      ['http://[::ffff:127.0.0.1]/hook', 'webhook_url_not_allowed'],
      ['http://localhost:8080/hook', 'webhook_url_not_allowed'],
    ];
    for (const [url, code] of cases) {
      const res = await t.post('/v1/webhook-endpoints', { url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe(code);
    }
    const ok = await t.post('/v1/webhook-endpoints', { url: 'https://93.184.215.14/hook' });
    expect(ok.statusCode).toBe(201);
    const patched = await t.request({
      method: 'PATCH',
      url: `/v1/webhook-endpoints/${ok.json().id}`,
      payload: { url: 'http://10.0.0.1/x' },
    });
    expect(patched.statusCode).toBe(400);
    expect(patched.json().error.code).toBe('webhook_url_not_allowed');
  });

  it('checks again at delivery time: an endpoint now resolving to a private address gets nothing', async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const permissive = new HttpWebhookTransport({ allowPrivate: true });
      t = await createTestApp({ webhooks: { transport: permissive, secretOverlapMs: 0 } });
      await t.post('/v1/customers', { id: 'acme' });
      const endpoint = (await t.post('/v1/webhook-endpoints', { url: receiver.url })).json();
      const strict = new WebhookDispatcher(t.ctx, {
        transport: new HttpWebhookTransport({ allowPrivate: false }),
        random: () => 0.5,
      });
      await t.post('/v1/customers/acme/grants', { amount: '1' });
      await strict.runOnce();
      expect(receiver.received).toHaveLength(0);
      const attempts = (await t.get(`/v1/webhook-endpoints/${endpoint.id}/attempts`)).json().data;
      expect(attempts[0]).toMatchObject({ status_code: null, outcome: 'retry' });
      expect(attempts[0].error).toMatch(/not allowed/);
    } finally {
      await receiver.close();
    }
  });
});
