import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/*
 * A `check` key must not be able to pin a customer's credits for long (hardening issue, item 9):
 * holds taken by POST /v1/check live at most BURNDOWN_CHECK_HOLD_MAX_TTL_SECONDS (default 900 s);
 * a longer ttl_seconds is refused with 400 invalid_request and nothing is held.
 */
for (const dialect of DIALECTS) {
  describe(`check holds are bounded in time (${dialect.name})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t.close();
    });

    async function setup(): Promise<string> {
      t = await createTestApp({ storage: await dialect.open() });
      for (const [url, body] of [
        ['/v1/customers', { id: 'acme' }],
        ['/v1/features', { id: 'gpt-x', type: 'metered', credits_per_use: '5' }],
        ['/v1/plans', { id: 'pro', entitlements: [{ feature_id: 'gpt-x' }] }],
        ['/v1/customers/acme/subscriptions', { plan_id: 'pro' }],
        ['/v1/customers/acme/grants', { amount: '1000' }],
      ] as const) {
        const res = await t.post(url, body);
        expect(res.statusCode, res.body).toBeLessThan(300);
      }
      return (await t.post('/v1/api-keys', { scope: 'check' })).json().key as string;
    }
    const check = (key: string, ttl: number | undefined, app = t.app) =>
      app.inject({
        method: 'POST',
        url: '/v1/check',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: JSON.stringify({
          customer_id: 'acme',
          feature_id: 'gpt-x',
          quantity: '100',
          hold: ttl === undefined ? {} : { ttl_seconds: ttl },
        }),
      });
    const available = async () => (await t.get('/v1/customers/acme/balance')).json().available;

    it('refuses a 30-day hold from a check key and holds nothing', async () => {
      const key = await setup();
      const res = await check(key, 30 * 24 * 3600);
      expect([res.statusCode, res.json().error.code, res.json().error.details]).toEqual([
        400,
        'invalid_request',
        { field: 'hold.ttl_seconds', maximum: 900 },
      ]);
      expect(await available()).toBe('1000');
      const bounded = await check(key, 900);
      expect(bounded.statusCode, bounded.body).toBe(200);
      const hold = (await t.get(`/v1/holds/${bounded.json().hold_id}`)).json();
      expect(Date.parse(hold.expires_at) - t.clock.now()).toBe(900_000);
      expect(await available()).toBe('500');
    });

    it('the bound is configurable, and the default lifetime never passes it', async () => {
      const key = await setup();
      const strict = await buildApp(t.ctx, {
        bodyLimit: 1 << 20,
        logLevel: 'silent',
        checkHoldMaxTtlSeconds: 30,
      });
      try {
        expect((await check(key, 31, strict)).statusCode).toBe(400);
        const defaulted = await check(key, undefined, strict);
        expect(defaulted.statusCode, defaulted.body).toBe(200);
        const hold = (await t.get(`/v1/holds/${defaulted.json().hold_id}`)).json();
        expect(Date.parse(hold.expires_at) - t.clock.now()).toBe(30_000);
      } finally {
        await strict.close();
      }
    });
  });
}
