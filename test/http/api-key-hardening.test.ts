import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { ApiKeyResolver, ensureAdminKey, hashApiKey } from '../../src/services/api-keys.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, TEST_API_KEY, type TestApp } from '../fixtures/harness.js';

/*
 * Hardening of API keys (items 7, 11, 12 of the hardening issue): revocation takes effect at once
 * here and within the cache lifetime (500 ms) on another app (process) sharing the database; a
 * revoked admin key cannot mint a key after its revocation was answered, whatever the cache says;
 * the key cache holds hashes only, bounded; BURNDOWN_API_KEY rotation revokes the old env key;
 * /metrics needs a key unless configured public.
 */

const as = (key: string) => ({ authorization: `Bearer ${key}` });

for (const dialect of DIALECTS) {
  describe(`API key revocation and rotation (${dialect.name})`, () => {
    let t: TestApp;
    let other: FastifyInstance | null = null;
    afterEach(async () => {
      await other?.close();
      other = null;
      await t.close();
    });

    /** A second app on the same storage and clock: another server process, as far as keys go. */
    async function secondApp(): Promise<FastifyInstance> {
      other = await buildApp(t.ctx, { bodyLimit: 1024 * 1024, logLevel: 'silent' });
      return other;
    }
    const inject = (app: FastifyInstance, method: 'GET' | 'POST', url: string, key: string, body?: unknown) =>
      app.inject({
        method,
        url,
        headers: { ...as(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });

    it('a revoked key is refused by the revoking server at once, by another within 1 s', async () => {
      t = await createTestApp({ storage: await dialect.open() });
      const b = await secondApp();
      const { id, key } = (await t.post('/v1/api-keys', { scope: 'read' })).json();
      // Both servers have the key cached as usable.
      expect((await t.get('/v1/customers', as(key))).statusCode).toBe(200);
      expect((await inject(b, 'GET', '/v1/customers', key)).statusCode).toBe(200);
      expect((await t.post(`/v1/api-keys/${id}/revoke`)).statusCode).toBe(200);
      // The revoking server: at once, no clock movement at all.
      const here = await t.get('/v1/customers', as(key));
      expect([here.statusCode, here.json().error.code]).toEqual([401, 'unauthorized']);
      // The other server: once its cached entry is older than its 500 ms lifetime.
      t.clock.advance(501);
      expect((await inject(b, 'GET', '/v1/customers', key)).statusCode).toBe(401);
    });

    it('a revoked admin key cannot mint or revoke keys once its revocation was answered, even from a cache', async () => {
      t = await createTestApp({ storage: await dialect.open() });
      const b = await secondApp();
      const doomed = (await t.post('/v1/api-keys', { scope: 'admin', name: 'doomed' })).json();
      const victim = (await t.post('/v1/api-keys', { scope: 'read' })).json();
      // Server b has the doomed key cached as a usable admin key…
      expect((await inject(b, 'GET', '/v1/api-keys', doomed.key)).statusCode).toBe(200);
      // …when server t revokes it and answers.
      expect((await t.post(`/v1/api-keys/${doomed.id}/revoke`)).statusCode).toBe(200);
      // Still inside b's cache lifetime: the write re-reads the key in its transaction and refuses.
      const minted = await inject(b, 'POST', '/v1/api-keys', doomed.key, { scope: 'admin' });
      expect([minted.statusCode, minted.json().error.code]).toEqual([401, 'unauthorized']);
      const revoked = await inject(b, 'POST', `/v1/api-keys/${victim.id}/revoke`, doomed.key, {});
      expect(revoked.statusCode).toBe(401);
      const keys = (await t.get('/v1/api-keys')).json().data as { id: string; revoked_at: string | null }[];
      expect(keys).toHaveLength(3);
      expect(keys.find((k) => k.id === victim.id)?.revoked_at).toBeNull();
    });

    it('rotating BURNDOWN_API_KEY revokes the key the previous value created; a revoked value is refused', async () => {
      t = await createTestApp({ storage: await dialect.open() });
      const made = (await t.post('/v1/api-keys', { scope: 'admin', name: 'ops' })).json();
      const rotated = 'rotated-admin-key-0123456789';
      await ensureAdminKey(t.ctx, rotated);
      const keys = (await t.get('/v1/api-keys', as(rotated))).json().data as {
        id: string;
        name: string | null;
        revoked_at: string | null;
      }[];
      const envKeys = keys.filter((k) => k.name === 'BURNDOWN_API_KEY');
      expect(envKeys.map((k) => k.revoked_at === null).sort()).toEqual([false, true]);
      // Keys made over the API are left alone.
      expect(keys.find((k) => k.id === made.id)?.revoked_at).toBeNull();
      // The old value no longer works (the revocation was committed before any request).
      const refreshed = await createTestAppOn(t);
      expect((await refreshed.inject({ url: '/v1/customers', headers: as(TEST_API_KEY) })).statusCode).toBe(
        401,
      );
      await refreshed.close();
      // Starting again with the same value changes nothing; going back to a revoked value fails.
      await ensureAdminKey(t.ctx, rotated);
      expect(
        ((await t.get('/v1/api-keys', as(rotated))).json().data as { revoked_at: string | null }[]).filter(
          (k) => k.revoked_at === null,
        ),
      ).toHaveLength(2);
      await expect(ensureAdminKey(t.ctx, TEST_API_KEY)).rejects.toThrow(/revoked/);
    });

    it('the env key name is reserved', async () => {
      t = await createTestApp({ storage: await dialect.open() });
      const res = await t.post('/v1/api-keys', { scope: 'admin', name: 'BURNDOWN_API_KEY' });
      expect([res.statusCode, res.json().error.code, res.json().error.details.field]).toEqual([
        400,
        'invalid_request',
        'name',
      ]);
    });
  });
}

/** A fresh app (empty key cache) on a test app's storage. */
async function createTestAppOn(t: TestApp): Promise<FastifyInstance> {
  return buildApp(t.ctx, { bodyLimit: 1024 * 1024, logLevel: 'silent' });
}

describe('API key cache', () => {
  it('keeps hashes, never the keys, and stays bounded however many bogus keys are tried', async () => {
    const t = await createTestApp();
    try {
      let lookups = 0;
      const storage = {
        ...t.storage,
        read: {
          ...t.storage.read,
          findApiKeyByHash: (hash: string) => {
            lookups += 1;
            return t.storage.read.findApiKeyByHash(hash);
          },
        },
      } as typeof t.storage;
      const resolver = new ApiKeyResolver(storage, () => t.clock.now(), 500, 100);
      const cache = resolver as unknown as { usable: Map<string, unknown>; unknown: Map<string, unknown> };
      for (let i = 0; i < 1000; i++) {
        expect(await resolver.resolve(`bogus-${i}-${'x'.repeat(400)}`)).toBeNull();
      }
      expect(resolver.size).toBeLessThanOrEqual(100);
      for (const key of [...cache.usable.keys(), ...cache.unknown.keys()])
        expect(key).toMatch(/^[0-9a-f]{64}$/);
      // A key longer than any we issue is refused without a lookup (or a cache entry).
      const before = lookups;
      expect(await resolver.resolve('y'.repeat(15_000))).toBeNull();
      expect(lookups).toBe(before);
      // A real key is cached by its hash.
      const found = await resolver.resolve(TEST_API_KEY);
      expect(found?.keyHash).toBe(hashApiKey(TEST_API_KEY));
      expect(cache.usable.has(hashApiKey(TEST_API_KEY))).toBe(true);
      expect(cache.usable.has(TEST_API_KEY)).toBe(false);
    } finally {
      await t.close();
    }
  });
});

describe('/metrics', () => {
  it('needs a key of any scope unless public', async () => {
    const t = await createTestApp();
    try {
      const anonymous = await t.app.inject({ url: '/metrics' });
      expect([anonymous.statusCode, anonymous.json().error.code]).toEqual([401, 'unauthorized']);
      const { key } = (await t.post('/v1/api-keys', { scope: 'check' })).json();
      const withKey = await t.app.inject({ url: '/metrics', headers: as(key) });
      expect(withKey.statusCode).toBe(200);
      expect(withKey.body).toContain('burndown_http_requests_total');
      const open = await buildApp(t.ctx, { bodyLimit: 1024 * 1024, logLevel: 'silent', metricsPublic: true });
      expect((await open.inject({ url: '/metrics' })).statusCode).toBe(200);
      await open.close();
    } finally {
      await t.close();
    }
  });
});
