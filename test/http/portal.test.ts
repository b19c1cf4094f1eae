import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/** Every portal API route, each called as the portal would (cookie, no key). */
const PORTAL_READS = [
  '/v1/portal/me',
  '/v1/portal/balance',
  '/v1/portal/forecast',
  '/v1/portal/grants',
  '/v1/portal/ledger',
  '/v1/portal/ledger.csv',
  '/v1/portal/prices',
];

/** The customer portal's sessions and API: one customer's data, by cookie, and nothing else. */
describe('customer portal API', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    for (const id of ['acme', 'globex']) expect((await t.post('/v1/customers', { id })).statusCode).toBe(201);
    await t.post('/v1/customers/acme/grants', { amount: '100' });
    await t.post('/v1/customers/acme/debits', { amount: '30', description: 'a, "quoted" use' });
    await t.post('/v1/customers/globex/grants', { amount: '9999' });
    await t.post('/v1/credit-packs', {
      id: 'starter',
      credits: '500',
      price: { amount: '5.00', currency: 'USD' },
    });
    await t.post('/v1/features', { id: 'report', type: 'metered', credits_per_use: '2.5' });
  });
  afterEach(async () => {
    await t.close();
  });

  const cookieOf = (res: LightMyRequestResponse) => {
    const header = res.headers['set-cookie'];
    const text = Array.isArray(header) ? header[0]! : String(header);
    return { header: text, pair: text.split(';')[0]! };
  };
  /** A request as the portal makes it: the cookie, and no Authorization header. */
  const portal = (cookie: string, method: 'GET' | 'POST', url: string, body?: unknown, headers = {}) =>
    t.app.inject({
      method,
      url,
      headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  const open = async (customer: string, scope?: string) => {
    const created = await t.post(`/v1/customers/${customer}/portal-sessions`, scope ? { scope } : undefined);
    expect(created.statusCode).toBe(201);
    const exchange = await t.app.inject({
      method: 'POST',
      url: '/v1/portal/session',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ code: created.json().code }),
    });
    expect(exchange.statusCode).toBe(200);
    return { created: created.json(), exchange, cookie: cookieOf(exchange).pair };
  };

  it('a code opens one short session, once: httpOnly, SameSite=Strict, 15 minutes, no reuse, no late use', async () => {
    const created = await t.post('/v1/customers/acme/portal-sessions', { scope: 'read' });
    const body = created.json();
    expect(body).toMatchObject({ customer_id: 'acme', scope: 'read' });
    expect(body.portal_url).toBe(`/portal?code=${encodeURIComponent(body.code)}`);
    expect(Date.parse(body.code_expires_at) - t.clock.now()).toBe(60_000);
    const exchange = () =>
      t.app.inject({
        method: 'POST',
        url: '/v1/portal/session',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ code: body.code }),
      });
    const first = await exchange();
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ customer_id: 'acme', scope: 'read' });
    const cookie = cookieOf(first).header;
    expect(cookie).toMatch(
      /^burndown_portal=ps_[A-Za-z0-9_-]+; Path=\/v1\/portal; HttpOnly; SameSite=Strict; Max-Age=900$/,
    );
    const reused = await exchange();
    expect(reused.statusCode).toBe(401);
    expect(reused.json().error.code).toBe('unauthorized');

    const late = await t.post('/v1/customers/acme/portal-sessions', {});
    t.clock.advance(60_001);
    const lateExchange = await t.app.inject({
      method: 'POST',
      url: '/v1/portal/session',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ code: late.json().code }),
    });
    expect(lateExchange.statusCode).toBe(401);
    // Codes and tokens are stored hashed: neither appears in the table.
    const stored = await t.storage.read.portal.get('default', body.id);
    expect(JSON.stringify(stored)).not.toContain(body.code);
    expect(JSON.stringify(stored)).not.toContain(cookieOf(first).pair.split('=')[1]);
  });

  it('reads only the session customer; another customer is out of reach in every call', async () => {
    const { cookie } = await open('acme');
    for (const url of PORTAL_READS) {
      const res = await portal(cookie, 'GET', url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toContain('globex');
      expect(res.body, url).not.toContain('9999');
      // Naming another customer is refused, not honoured.
      const other = await portal(cookie, 'GET', `${url}?customer_id=globex`);
      expect(other.statusCode, url).toBe(400);
    }
    expect((await portal(cookie, 'GET', '/v1/portal/balance')).json()).toMatchObject({
      customer_id: 'acme',
      available: '70',
    });
    // The cookie is no API key: the operator API of another (or the same) customer stays closed.
    for (const url of [
      '/v1/customers/globex/balance',
      '/v1/customers/globex/ledger',
      '/v1/customers/globex/forecast',
      '/v1/customers/acme/balance',
      '/v1/customers',
    ]) {
      expect((await portal(cookie, 'GET', url)).statusCode, url).toBe(401);
    }
    expect((await portal(cookie, 'POST', '/v1/customers/globex/portal-sessions', {})).statusCode).toBe(401);
    expect(
      (await portal(cookie, 'POST', '/v1/portal/purchases', { pack_id: 'starter', customer_id: 'globex' }))
        .statusCode,
    ).toBe(400);
    // No cookie, or a made-up one: 401 on every portal route.
    for (const url of PORTAL_READS) {
      expect((await t.app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await portal('burndown_portal=ps_forged', 'GET', url)).statusCode, url).toBe(401);
    }
  });

  it('the ledger as CSV, quoted where needed; prices from features, rates and packs', async () => {
    const { cookie } = await open('acme');
    const csv = await portal(cookie, 'GET', '/v1/portal/ledger.csv');
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('at,type,amount,balance_after,reference');
    expect(lines.map((l) => l.split(',')[1])).toEqual(['type', 'grant', 'debit']);
    const prices = (await portal(cookie, 'GET', '/v1/portal/prices')).json();
    expect(
      prices.features.map((f: { id: string; credits_per_use: string }) => [f.id, f.credits_per_use]),
    ).toEqual([['report', '2.5']]);
    expect(prices.credit_packs.map((p: { id: string }) => p.id)).toEqual(['starter']);
  });

  it('buys a pack with the topup scope only, idempotently, for its own customer', async () => {
    const reader = await open('acme', 'read');
    const refused = await portal(reader.cookie, 'POST', '/v1/portal/purchases', { pack_id: 'starter' });
    expect(refused.statusCode).toBe(403);
    const buyer = await open('acme', 'read+topup');
    const buy = () =>
      portal(
        buyer.cookie,
        'POST',
        '/v1/portal/purchases',
        { pack_id: 'starter' },
        { 'idempotency-key': 'k1' },
      );
    const first = await buy();
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ customer_id: 'acme', credits: '500' });
    const again = await buy();
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('570');
    // Another customer's portal with the same key buys its own pack, not a replay of acme's.
    const other = await open('globex', 'read+topup');
    const theirs = await portal(
      other.cookie,
      'POST',
      '/v1/portal/purchases',
      { pack_id: 'starter' },
      { 'idempotency-key': 'k1' },
    );
    expect(theirs.statusCode).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json().customer_id).toBe('globex');
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('570');
  });

  it('sessions expire after 15 minutes, refresh rotates the token, revoke and sign-out end them', async () => {
    const { cookie, created } = await open('acme');
    t.clock.advance(14 * 60_000);
    const refreshed = await portal(cookie, 'POST', '/v1/portal/session/refresh');
    expect(refreshed.statusCode).toBe(200);
    const next = cookieOf(refreshed).pair;
    expect(next).not.toBe(cookie);
    expect((await portal(cookie, 'GET', '/v1/portal/me')).statusCode).toBe(401);
    t.clock.advance(14 * 60_000);
    expect((await portal(next, 'GET', '/v1/portal/me')).statusCode).toBe(200);
    t.clock.advance(60_001);
    expect((await portal(next, 'GET', '/v1/portal/me')).statusCode).toBe(401);

    const second = await open('acme');
    const revoked = await t.post(`/v1/portal-sessions/${second.created.id}/revoke`);
    expect(revoked.statusCode).toBe(200);
    expect((await portal(second.cookie, 'GET', '/v1/portal/me')).statusCode).toBe(401);
    expect((await t.post('/v1/portal-sessions/ps_nothing/revoke')).statusCode).toBe(404);

    const third = await open('acme');
    const end = await portal(third.cookie, 'POST', '/v1/portal/session/end');
    expect(end.statusCode).toBe(200);
    expect(cookieOf(end).header).toContain('Max-Age=0');
    expect((await portal(third.cookie, 'GET', '/v1/portal/me')).statusCode).toBe(401);
    expect(created.customer_id).toBe('acme');
  });

  it('a session for an unknown customer is a 404', async () => {
    expect((await t.post('/v1/customers/nobody/portal-sessions', {})).statusCode).toBe(404);
  });
});
