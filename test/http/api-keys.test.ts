import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

describe('API keys', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await t.post('/v1/customers', { id: 'acme' });
  });
  afterEach(async () => {
    await t.close();
  });

  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  it('creates scoped keys shown once, enforces scopes, and revokes them', async () => {
    const created = await t.post('/v1/api-keys', { scope: 'read', name: 'dashboard' });
    expect(created.statusCode).toBe(201);
    const { id, key } = created.json();
    expect(key).toMatch(/^bd_/);
    expect((await t.get('/v1/customers/acme', as(key))).statusCode).toBe(200);
    const write = await t.post('/v1/customers', { id: 'other' }, as(key));
    expect([write.statusCode, write.json().error.code]).toEqual([403, 'forbidden']);
    const listed = (await t.get('/v1/api-keys')).json().data;
    expect(listed.find((k: { id: string }) => k.id === id)).toMatchObject({
      scope: 'read',
      name: 'dashboard',
    });
    expect(JSON.stringify(listed)).not.toContain(key);
    expect((await t.get('/v1/api-keys', as(key))).statusCode).toBe(403);
    expect((await t.post(`/v1/api-keys/${id}/revoke`)).json().revoked_at).not.toBeNull();
    t.clock.advance(10_000); // past the key cache's lifetime
    expect((await t.get('/v1/customers/acme', as(key))).json().error.code).toBe('unauthorized');
    expect((await t.post(`/v1/api-keys/${id}/revoke`)).statusCode).toBe(404);
  });

  it('lets a check key read balances but not write', async () => {
    const { key } = (await t.post('/v1/api-keys', { scope: 'check' })).json();
    expect((await t.get('/v1/customers/acme/balance', as(key))).statusCode).toBe(200);
    expect((await t.post('/v1/customers/acme/debits', { amount: '1' }, as(key))).statusCode).toBe(403);
  });

  it('never stores or replays a created key in plain text', async () => {
    const first = await t.post('/v1/api-keys', { scope: 'read' }, { 'idempotency-key': 'new-key' });
    const replay = await t.post('/v1/api-keys', { scope: 'read' }, { 'idempotency-key': 'new-key' });
    expect(first.json().key).toMatch(/^bd_/);
    expect(replay.json()).toMatchObject({ id: first.json().id, key: null });
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });
});
