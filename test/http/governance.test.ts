import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/time/clock.js';
import { RateLimiter } from '../../src/services/rate-limits.js';
import { expectObservedErrorsDocumented } from '../fixtures/documented-errors.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe('workspaces', () => {
  let t: TestApp;
  afterEach(async () => {
    if (t) await expectObservedErrorsDocumented(t.app);
    await t?.close();
  });

  it('the bootstrap key creates workspaces, each with its first admin key shown once', async () => {
    t = await createTestApp();
    const live = await t.post('/v1/workspaces', { id: 'live', name: 'Live' });
    expect(live.statusCode).toBe(201);
    expect(live.json()).toMatchObject({ id: 'live', name: 'Live', admin_key: { scope: 'admin' } });
    const liveKey = live.json().admin_key.key as string;
    expect(liveKey).toMatch(/^bd_/);
    expect((await t.post('/v1/workspaces', { id: 'live' })).statusCode).toBe(409);
    const listed = (await t.get('/v1/workspaces')).json().data.map((w: { id: string }) => w.id);
    expect(listed).toEqual(['default', 'live']);
    expect((await t.get('/v1/workspaces/live')).json().name).toBe('Live');
    expect((await t.get('/v1/workspaces/nope')).statusCode).toBe(404);
    // A workspace admin is not an installation admin.
    const denied = await t.post('/v1/workspaces', { id: 'x' }, as(liveKey));
    expect([denied.statusCode, denied.json().error.details.required]).toEqual([403, 'workspaces:admin']);
    // The new workspace is empty and its keys act there only.
    await t.post('/v1/customers', { id: 'acme' });
    expect((await t.get('/v1/customers', as(liveKey))).json().data).toEqual([]);
    expect((await t.get('/v1/customers/acme', as(liveKey))).statusCode).toBe(404);
    expect((await t.post('/v1/customers', { id: 'acme' }, as(liveKey))).statusCode).toBe(201);
    // Creating a workspace is audited in that workspace, the bootstrap key as the actor.
    const audit = (await t.get('/v1/audit-log', as(liveKey))).json().data;
    expect(audit[0]).toMatchObject({ action: 'workspace.created', target_id: 'live', seq: 1 });
    expect(JSON.stringify(audit)).not.toContain(liveKey);
  });
});

describe('scoped keys', () => {
  let t: TestApp;
  afterEach(async () => {
    if (t) await expectObservedErrorsDocumented(t.app);
    await t?.close();
  });

  it('takes resource:action permissions, never more than the creating key holds', async () => {
    t = await createTestApp();
    await t.post('/v1/customers', { id: 'acme' });
    const res = await t.post('/v1/api-keys', { permissions: ['events:write', 'balances:read'] });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ permissions: ['balances:read', 'events:write'], scope: 'write' });
    const key = res.json().key as string;
    expect((await t.get('/v1/customers/acme/balance', as(key))).statusCode).toBe(200);
    const refused = await t.post('/v1/customers/acme/debits', { amount: '1' }, as(key));
    expect([refused.statusCode, refused.json().error.details.required]).toEqual([403, 'ledger:write']);
    // Unknown, installation-level, or beyond the creator's own permissions: refused.
    expect((await t.post('/v1/api-keys', { permissions: ['ledger:fly'] })).statusCode).toBe(400);
    expect((await t.post('/v1/api-keys', { permissions: ['workspaces:admin'] })).statusCode).toBe(400);
    const narrow = (await t.post('/v1/api-keys', { permissions: ['keys:admin'] })).json().key as string;
    const escalate = await t.post('/v1/api-keys', { permissions: ['ledger:write'] }, as(narrow));
    expect([escalate.statusCode, escalate.json().error.details.field]).toEqual([400, 'permissions']);
    // A scope is a preset; both or neither is a 400.
    expect((await t.post('/v1/api-keys', { scope: 'read', permissions: ['ledger:read'] })).statusCode).toBe(
      400,
    );
    expect((await t.post('/v1/api-keys', {})).statusCode).toBe(400);
    const read = (await t.post('/v1/api-keys', { scope: 'read' })).json();
    expect(read.permissions).toContain('ledger:read');
    expect(read.permissions).not.toContain('ledger:write');
  });

  it('an expired key answers 401 api_key_expired; a live one records its last use at most once a minute', async () => {
    t = await createTestApp();
    const expiresAt = new Date(T0 + 3_600_000).toISOString();
    const created = await t.post('/v1/api-keys', { scope: 'read', expires_at: expiresAt });
    expect(created.json().expires_at).toBe(expiresAt);
    const { key, id } = created.json();
    expect((await t.get('/v1/customers', as(key))).statusCode).toBe(200);
    const lastUsed = async () => {
      await new Promise((resolve) => setTimeout(resolve, 20)); // the write after the request
      return (await t.get('/v1/api-keys')).json().data.find((k: { id: string }) => k.id === id).last_used_at;
    };
    expect(await lastUsed()).toBe(new Date(T0).toISOString());
    t.clock.advance(30_000);
    await t.get('/v1/customers', as(key));
    expect(await lastUsed()).toBe(new Date(T0).toISOString()); // not rewritten
    t.clock.advance(31_000);
    await t.get('/v1/customers', as(key));
    expect(await lastUsed()).toBe(new Date(T0 + 61_000).toISOString());
    t.clock.advance(3_600_000);
    const expired = await t.get('/v1/customers', as(key));
    expect([expired.statusCode, expired.json().error.code]).toEqual([401, 'api_key_expired']);
    expect(
      (await t.post('/v1/api-keys', { scope: 'read', expires_at: '2020-01-01T00:00:00Z' })).statusCode,
    ).toBe(400);
  });
});

describe('rate limits', () => {
  let t: TestApp;
  afterEach(async () => {
    if (t) await expectObservedErrorsDocumented(t.app);
    await t?.close();
  });

  it('are off by default: no RateLimit headers', async () => {
    t = await createTestApp();
    const res = await t.get('/v1/customers');
    expect(res.headers['ratelimit-limit']).toBeUndefined();
  });

  it('a key with its own limit gets 429 with Retry-After and RateLimit-* once its bucket is empty, refilled by the clock', async () => {
    t = await createTestApp();
    const { key } = (await t.post('/v1/api-keys', { scope: 'read', rate_limit: '3/60s' })).json();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await t.get('/v1/customers', as(key))).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await t.get('/v1/customers', as(key));
    expect(refused.json().error.code).toBe('rate_limited');
    expect(refused.headers['retry-after']).toBe('20'); // one token every 20 s
    expect(refused.headers['ratelimit-limit']).toBe('3');
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(refused.headers['ratelimit-reset']).toBe('60');
    t.clock.advance(20_000);
    const again = await t.get('/v1/customers', as(key));
    expect([again.statusCode, again.headers['ratelimit-remaining']]).toEqual([200, '0']);
    // Other keys have their own buckets (and no limit by default).
    expect((await t.get('/v1/customers')).statusCode).toBe(200);
  });

  it('limits each customer on the usage routes, and a default per-key limit applies to keys without their own', async () => {
    const clock = new ManualClock(T0);
    t = await createTestApp({
      clock,
      rateLimits: { perKey: { limit: 1000, windowMs: 1000 }, perCustomer: { limit: 2, windowMs: 1000 } },
      rateLimiter: new RateLimiter(null, () => clock.now()),
    });
    await t.post('/v1/customers', { id: 'acme' });
    await t.post('/v1/customers', { id: 'beta' });
    await t.post('/v1/customers/acme/grants', { amount: '100' });
    await t.post('/v1/customers/beta/grants', { amount: '100' });
    const debit = (customer: string) => t.post(`/v1/customers/${customer}/debits`, { amount: '1' });
    expect([(await debit('acme')).statusCode, (await debit('acme')).statusCode]).toEqual([201, 201]);
    const third = await debit('acme');
    expect([third.statusCode, third.json().error.details]).toEqual([
      429,
      { limited: 'customer', customer_id: 'acme', retry_after_seconds: 1 },
    ]);
    expect((await debit('beta')).statusCode).toBe(201);
    // Reads are not limited per customer; the per-key default shows in the headers.
    const read = await t.get('/v1/customers/acme/balance');
    expect([read.statusCode, read.headers['ratelimit-limit']]).toEqual([200, '1000']);
    clock.advance(500);
    expect((await debit('acme')).statusCode).toBe(201);
  });
});
