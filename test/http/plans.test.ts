import { afterEach, describe, expect, it } from 'vitest';
import { sweepDueSubscriptions } from '../../src/services/subscriptions.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

const DAY = 86_400_000;
// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely; assertions check them
type Body = Record<string, any>;

for (const dialect of DIALECTS) {
  describe(`plans, subscriptions, packs and check (${dialect.name})`, () => {
    let t: TestApp;
    afterEach(async () => t?.close());

    const open = async (start: string) => {
      t = await createTestApp({ start: Date.parse(start), storage: await dialect.open() });
      return t;
    };
    const ok = async (res: Promise<{ statusCode: number; json(): unknown; body: string }>, status = 201) => {
      const r = await res;
      expect(r.statusCode, r.body).toBe(status);
      return r.json() as Body;
    };
    const balance = async (customer = 'acme', query = '') =>
      ok(t.get(`/v1/customers/${customer}/balance${query}`), 200);
    const grants = async (customer = 'acme') =>
      (await ok(t.get(`/v1/customers/${customer}/grants?limit=1000`), 200)).data as Body[];

    async function hybridSetup(rollover: unknown = null) {
      await ok(t.post('/v1/customers', { id: 'acme' }));
      await ok(t.post('/v1/features', { id: 'gpt-x', type: 'metered', credits_per_use: '5' }));
      await ok(
        t.post('/v1/plans', {
          id: 'pro',
          name: 'Pro',
          entitlements: [{ feature_id: 'gpt-x' }],
          allowances: [{ amount: '500', period: 'P1M', rollover }],
          price: { amount: '29.00', currency: 'USD' },
        }),
      );
      await ok(
        t.post('/v1/credit-packs', {
          id: '10k',
          credits: '10000',
          price: { amount: '100.00', currency: 'USD' },
          volume_discounts: [{ min_quantity: 5, percent_off: '10' }],
        }),
      );
    }

    it('hybrid pricing: 500 included a month burned first, packs roll over, balance across a reset', async () => {
      await open('2026-01-31T10:00:00.000Z');
      await hybridSetup();
      const sub = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      expect(sub.plan_version).toBe(1);
      expect(sub.current_period).toEqual({
        start: '2026-01-31T10:00:00.000Z',
        end: '2026-02-28T10:00:00.000Z',
      });
      expect((await balance()).available).toBe('500');
      const bought = await ok(t.post('/v1/customers/acme/purchases', { pack_id: '10k', quantity: 1 }));
      expect(bought.grant.category).toBe('paid');
      expect(bought.grant.cost_basis).toEqual({ amount: '100', currency: 'USD' });
      expect((await balance()).available).toBe('10500');
      const debit = await ok(t.post('/v1/customers/acme/debits', { amount: '600', feature_id: 'gpt-x' }));
      const allowance = (await grants()).find((g) => g.category === 'allowance')!;
      expect(debit.drawdowns).toEqual([
        { grant_id: allowance.id, amount: '500' },
        { grant_id: bought.grant.id, amount: '100' },
      ]);
      t.clock.set(Date.parse('2026-02-28T09:59:59.999Z'));
      expect((await balance()).available).toBe('9900');
      t.clock.set(Date.parse('2026-02-28T10:00:00.000Z'));
      expect((await balance()).available).toBe('10400');
      t.clock.set(Date.parse('2026-03-31T10:00:00.000Z'));
      await ok(t.post('/v1/customers/acme/debits', { amount: '1' }));
      const allowances = (await grants()).filter((g) => g.category === 'allowance');
      expect(allowances.map((g) => [g.effective_at, g.expires_at])).toEqual([
        ['2026-01-31T10:00:00.000Z', '2026-02-28T10:00:00.000Z'],
        ['2026-02-28T10:00:00.000Z', '2026-03-31T10:00:00.000Z'],
        ['2026-03-31T10:00:00.000Z', '2026-04-30T10:00:00.000Z'],
      ]);
      // The February allowance went unused and expired exactly at the reset (breakage).
      const ledger = await ok(t.get('/v1/customers/acme/ledger?limit=1000'), 200);
      const expiries = (ledger.data as Body[]).filter((e) => e.type === 'expiry');
      expect(expiries.map((e) => [e.at, e.amount])).toEqual([['2026-03-31T10:00:00.000Z', '500']]);
      expect((await balance()).available).toBe('10399');
      const reconciliation = await ok(t.get('/v1/reconciliation'), 200);
      expect(reconciliation.ok, JSON.stringify(reconciliation)).toBe(true);
    });

    it('downtime catch-up: three missed resets are issued exactly once with the right rollover', async () => {
      await open('2026-01-15T00:00:00.000Z');
      await hybridSetup({ max_percent: '50' });
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      await ok(t.post('/v1/customers/acme/debits', { amount: '100' }));
      // The server is down for three periods: nothing runs until the clock reads mid-April.
      t.clock.set(Date.parse('2026-04-20T00:00:00.000Z'));
      const first = await sweepDueSubscriptions(t.ctx);
      expect(first).toEqual({ customers: 1, failed: 0 });
      const second = await sweepDueSubscriptions(t.ctx);
      expect(second).toEqual({ customers: 0, failed: 0 });
      const all = await grants();
      // Grants made at the same instant list in id order, which is random within a millisecond.
      const kinds = all
        .map((g) => [g.metadata.allowance_kind, g.metadata.period_index, g.amount, g.remaining])
        .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
      expect(kinds).toEqual([
        ['allowance', 0, '500', '0'],
        ['allowance', 1, '500', '0'],
        ['rollover', 1, '250', '0'],
        ['allowance', 2, '500', '0'],
        ['rollover', 2, '250', '0'],
        ['allowance', 3, '500', '500'],
        ['rollover', 3, '250', '250'],
      ]);
      // Period 0 left 400 unused: 250 carried (cap 50 % of 500). Each later reset had 500 unused and
      // 250 live rollover: the old rollover was trimmed to make room (oldest first), 250 carried.
      expect((await balance()).available).toBe('750');
      const ledger = (await ok(t.get('/v1/customers/acme/ledger?limit=1000'), 200)).data as Body[];
      const breakage = ledger.filter((e) => e.type === 'expiry').map((e) => [e.at, e.amount]);
      expect(breakage).toEqual([
        ['2026-02-15T00:00:00.000Z', '400'],
        ['2026-03-15T00:00:00.000Z', '250'],
        ['2026-03-15T00:00:00.000Z', '500'],
        ['2026-04-15T00:00:00.000Z', '250'],
        ['2026-04-15T00:00:00.000Z', '500'],
      ]);
      const reconciliation = await ok(t.get('/v1/reconciliation'), 200);
      expect(reconciliation.ok, JSON.stringify(reconciliation)).toBe(true);
    });

    it('check: no entitlement, ok, insufficient credits, usage limit, soft limit with an overage cap', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(t.post('/v1/customers', { id: 'nobody' }));
      await ok(t.post('/v1/features', { id: 'sso', type: 'boolean' }));
      await ok(t.post('/v1/features', { id: 'seats', type: 'config' }));
      await ok(t.post('/v1/features', { id: 'exports', type: 'metered' }));
      await ok(
        t.post('/v1/plans', {
          id: 'team',
          entitlements: [
            { feature_id: 'gpt-x', overage: { max: '50' } },
            { feature_id: 'sso' },
            { feature_id: 'seats', config: { seats: 10 } },
            { feature_id: 'exports', usage_limit: { amount: '3', period: 'P1D' } },
          ],
          allowances: [{ amount: '100', period: 'P1M' }],
        }),
      );
      const check = (body: Record<string, unknown>) => ok(t.post('/v1/check', body), 200);
      expect(await check({ customer_id: 'nobody', feature_id: 'gpt-x' })).toMatchObject({
        allowed: false,
        reason: 'no_entitlement',
        credits: '5',
        available: '0',
        hold_id: null,
      });
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      expect(await check({ customer_id: 'acme', feature_id: 'gpt-x', quantity: '100' })).toMatchObject({
        allowed: true,
        reason: 'ok',
        credits: '500',
        available: '500',
      });
      expect(await check({ customer_id: 'acme', feature_id: 'gpt-x', quantity: '101' })).toMatchObject({
        allowed: false,
        reason: 'insufficient_credits',
        credits: '505',
      });
      expect(await check({ customer_id: 'acme', feature_id: 'sso' })).toMatchObject({
        reason: 'no_entitlement',
      });

      await ok(t.post('/v1/customers', { id: 'beta' }));
      await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'team' }));
      expect(await check({ customer_id: 'beta', feature_id: 'sso' })).toMatchObject({
        allowed: true,
        credits: '0',
      });
      expect(await check({ customer_id: 'beta', feature_id: 'seats' })).toMatchObject({
        allowed: true,
        config: { seats: 10 },
      });
      // Soft limit: 100 available, overage up to 50: 150 credits (30 uses) fit, 155 do not.
      expect(await check({ customer_id: 'beta', feature_id: 'gpt-x', quantity: '30' })).toMatchObject({
        allowed: true,
      });
      expect(await check({ customer_id: 'beta', feature_id: 'gpt-x', quantity: '31' })).toMatchObject({
        allowed: false,
        reason: 'limit_reached',
      });
      // Usage limit: 3 exports a day, counted by debits that name the feature.
      for (let i = 0; i < 3; i++) {
        expect(await check({ customer_id: 'beta', feature_id: 'exports' })).toMatchObject({ allowed: true });
        await ok(t.post('/v1/customers/beta/debits', { amount: '1', feature_id: 'exports', quantity: '1' }));
      }
      expect(await check({ customer_id: 'beta', feature_id: 'exports' })).toMatchObject({
        allowed: false,
        reason: 'limit_reached',
        usage: { used: '3', limit: '3', period_start: '2026-01-01T00:00:00.000Z' },
      });
      t.clock.advance(DAY);
      expect(await check({ customer_id: 'beta', feature_id: 'exports' })).toMatchObject({ allowed: true });
      // Unknown feature and customer are 404s; a bad quantity is a 400.
      expect((await t.post('/v1/check', { customer_id: 'beta', feature_id: 'nope' })).statusCode).toBe(404);
      expect((await t.post('/v1/check', { customer_id: 'ghost', feature_id: 'sso' })).statusCode).toBe(404);
      const bad = await t.post('/v1/check', { customer_id: 'beta', feature_id: 'sso', quantity: 1 });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('invalid_amount');
    });

    it('check with hold reserves the credits; capture burns them', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      const held = await ok(
        t.post('/v1/check', {
          customer_id: 'acme',
          feature_id: 'gpt-x',
          quantity: '60',
          hold: { ttl_seconds: 60 },
        }),
        200,
      );
      expect(held).toMatchObject({ allowed: true, credits: '300', available: '500' });
      expect(held.hold_id).toMatch(/^hld_/);
      expect((await balance()).available).toBe('200');
      const refused = await ok(
        t.post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x', quantity: '60', hold: {} }),
        200,
      );
      expect(refused).toMatchObject({ allowed: false, reason: 'insufficient_credits', hold_id: null });
      await ok(t.post(`/v1/holds/${held.hold_id}/capture`, { amount: '290' }));
      expect((await balance()).available).toBe('210');
    });

    it('applies_to: a restricted grant serves only its feature; balances per feature', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(t.post('/v1/features', { id: 'images', type: 'metered', credits_per_use: '1' }));
      const promo = await ok(
        t.post('/v1/customers/acme/grants', {
          amount: '100',
          category: 'promotional',
          applies_to: ['images'],
        }),
      );
      const general = await ok(t.post('/v1/customers/acme/grants', { amount: '50', priority: 20 }));
      expect((await balance()).available).toBe('150');
      expect((await balance('acme', '?feature_id=images')).available).toBe('150');
      expect((await balance('acme', '?feature_id=gpt-x')).available).toBe('50');
      const forImages = await ok(
        t.post('/v1/customers/acme/debits', { amount: '120', feature_id: 'images' }),
      );
      expect(forImages.drawdowns).toEqual([
        { grant_id: promo.id, amount: '100' },
        { grant_id: general.id, amount: '20' },
      ]);
      const refused = await t.post('/v1/customers/acme/debits', { amount: '31', feature_id: 'gpt-x' });
      expect(refused.statusCode).toBe(402);
      expect(refused.json().error.details).toEqual({ available: '30', requested: '31' });
      await ok(t.post('/v1/customers/acme/grants', { amount: '10', applies_to: ['images'] }));
      const unattributed = await t.post('/v1/customers/acme/debits', { amount: '31' });
      expect(unattributed.statusCode).toBe(402);
      expect(
        (await t.post('/v1/customers/acme/debits', { amount: '1', feature_id: 'nope' })).statusCode,
      ).toBe(404);
    });

    it('plan versions: PUT makes version 2; subscriptions keep theirs until changed', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      const sub = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      const v2 = await ok(
        t.request({
          method: 'PUT',
          url: '/v1/plans/pro',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({
            entitlements: [{ feature_id: 'gpt-x' }],
            allowances: [{ amount: '800', period: 'P1M' }],
            price: { amount: '39.00', currency: 'USD' },
          }),
        }),
      );
      expect(v2.version).toBe(2);
      expect((await ok(t.get('/v1/plans/pro?version=1'), 200)).allowances[0].amount).toBe('500');
      t.clock.set(Date.parse('2026-02-01T00:00:00.000Z'));
      await ok(t.post('/v1/customers/acme/debits', { amount: '1' }));
      expect((await balance()).available).toBe('499');
      // Upgrade mid-period (price up: now): the 300 increase prorated over the 28 days of February.
      t.clock.set(Date.parse('2026-02-15T00:00:00.000Z'));
      const changed = await ok(t.post(`/v1/subscriptions/${sub.id}/change`, { plan_id: 'pro' }), 200);
      expect(changed.plan_version).toBe(2);
      expect((await balance()).available).toBe('649');
      t.clock.set(Date.parse('2026-03-01T00:00:00.000Z'));
      expect((await balance()).available).toBe('800');
    });

    it('downgrade waits for the period end; cancel at period end stops the resets', async () => {
      await open('2026-01-10T00:00:00.000Z');
      await hybridSetup();
      await ok(
        t.post('/v1/plans', {
          id: 'basic',
          entitlements: [{ feature_id: 'gpt-x' }],
          allowances: [{ amount: '100', period: 'P1M' }],
          price: { amount: '9.00', currency: 'USD' },
        }),
      );
      const sub = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      t.clock.set(Date.parse('2026-01-20T00:00:00.000Z'));
      const changed = await ok(t.post(`/v1/subscriptions/${sub.id}/change`, { plan_id: 'basic' }), 200);
      expect(changed.plan_id).toBe('pro');
      expect(changed.pending_change).toEqual({
        plan_id: 'basic',
        plan_version: 1,
        at: '2026-02-10T00:00:00.000Z',
      });
      expect((await balance()).available).toBe('500');
      t.clock.set(Date.parse('2026-02-10T00:00:00.000Z'));
      expect((await balance()).available).toBe('100');
      expect((await ok(t.get(`/v1/subscriptions/${sub.id}`), 200)).plan_id).toBe('basic');
      const canceled = await ok(t.post(`/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true }), 200);
      expect(canceled.cancel_at).toBe('2026-03-10T00:00:00.000Z');
      t.clock.set(Date.parse('2026-03-10T00:00:00.000Z'));
      expect((await balance()).available).toBe('0');
      const ended = await ok(t.get(`/v1/subscriptions/${sub.id}`), 200);
      expect(ended).toMatchObject({ status: 'canceled', ended_at: '2026-03-10T00:00:00.000Z' });
      expect((await t.post(`/v1/subscriptions/${sub.id}/cancel`, {})).json().error.code).toBe(
        'subscription_not_active',
      );
      expect(await ok(t.post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x' }), 200)).toMatchObject({
        allowed: false,
        reason: 'no_entitlement',
      });
    });

    it('auto top-up: a hold (plain or from a held check) that crosses the threshold buys, once', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      await ok(t.post('/v1/customers/acme/grants', { amount: '550' }));
      await ok(
        t.request({
          method: 'PUT',
          url: '/v1/customers/acme/auto-top-up',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ threshold: '1000', pack_id: '10k', max_per_period: 5 }),
        }),
        200,
      );
      const held = await ok(
        t.post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x', quantity: '20', hold: {} }),
        200,
      );
      expect(held.allowed).toBe(true);
      expect(await balance()).toMatchObject({ available: '10950', held: '100' });
      await ok(t.post(`/v1/holds/${held.hold_id}/capture`, {}));
      expect((await balance()).available).toBe('10950');
      const hold = await ok(t.post('/v1/customers/acme/holds', { amount: '9951' }));
      expect(hold.status).toBe('active');
      expect(await balance()).toMatchObject({ available: '10999', held: '9951' });
      const purchases = (await ok(t.get('/v1/customers/acme/purchases'), 200)).data as Body[];
      expect(purchases.map((p) => p.source)).toEqual(['auto_top_up', 'auto_top_up']);
    });

    const put = (url: string, body: unknown) =>
      t.request({
        method: 'PUT',
        url,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });

    it('rollover carries across a plan version change, within one cap', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup({ max: '250' });
      const sub = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      await ok(t.post('/v1/customers/acme/debits', { amount: '100' }));
      t.clock.set(Date.parse('2026-02-01T00:00:00.000Z'));
      expect((await balance()).available).toBe('750');
      await ok(
        put('/v1/plans/pro', {
          entitlements: [{ feature_id: 'gpt-x' }],
          allowances: [{ amount: '500', period: 'P1M', rollover: { max: '250' } }],
          price: { amount: '29.00', currency: 'USD' },
        }),
      );
      t.clock.set(Date.parse('2026-02-10T00:00:00.000Z'));
      expect(
        (await ok(t.post(`/v1/subscriptions/${sub.id}/change`, { plan_id: 'pro' }), 200)).plan_version,
      ).toBe(2);
      // March: February's unused 500 and January's live 250 share the cap of 250 (oldest trimmed).
      t.clock.set(Date.parse('2026-03-01T00:00:00.000Z'));
      expect((await balance()).available).toBe('750');
      t.clock.set(Date.parse('2026-04-01T00:00:00.000Z'));
      expect((await balance()).available).toBe('750');
      expect((await ok(t.get('/v1/reconciliation'), 200)).ok).toBe(true);
    });

    it("cancel after a plan change voids the old plan's allowance and rollover credits too", async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup({ max: '250' });
      await ok(
        t.post('/v1/plans', {
          id: 'api-only',
          entitlements: [],
          allowances: [],
          price: { amount: '49.00', currency: 'USD' },
        }),
      );
      const sub = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      t.clock.set(Date.parse('2026-02-05T00:00:00.000Z'));
      expect((await balance()).available).toBe('750');
      await ok(t.post(`/v1/subscriptions/${sub.id}/change`, { plan_id: 'api-only' }), 200);
      await ok(t.post(`/v1/subscriptions/${sub.id}/cancel`, {}), 200);
      expect((await balance()).available).toBe('0');
    });

    it('several subscriptions of one customer reset in one time order, however late processed', async () => {
      await open('2026-01-15T00:00:00.000Z');
      await ok(t.post('/v1/customers', { id: 'busy' }));
      await ok(t.post('/v1/customers', { id: 'quiet' }));
      for (const id of ['a', 'b']) {
        await ok(
          t.post('/v1/plans', {
            id,
            allowances: [{ amount: '100', period: 'P1M', rollover: { max: '100' } }],
          }),
        );
      }
      for (const c of ['busy', 'quiet'])
        await ok(t.post(`/v1/customers/${c}/subscriptions`, { plan_id: 'b' }));
      t.clock.set(Date.parse('2026-01-20T00:00:00.000Z'));
      for (const c of ['busy', 'quiet'])
        await ok(t.post(`/v1/customers/${c}/subscriptions`, { plan_id: 'a' }));
      t.clock.set(Date.parse('2026-02-16T00:00:00.000Z'));
      await balance('busy');
      t.clock.set(Date.parse('2026-02-25T00:00:00.000Z'));
      expect((await balance('busy')).available).toBe('400');
      expect((await balance('quiet')).available).toBe('400');
    });

    it('resets due at the same instant all carry their rollover (two subscriptions; daily and weekly)', async () => {
      await open('2026-01-05T00:00:00.000Z');
      await ok(t.post('/v1/customers', { id: 'twin' }));
      await ok(t.post('/v1/customers', { id: 'mixed' }));
      for (const id of ['a', 'b']) {
        await ok(
          t.post('/v1/plans', {
            id,
            allowances: [{ amount: '100', period: 'P1M', rollover: { max: '100' } }],
          }),
        );
      }
      await ok(
        t.post('/v1/plans', {
          id: 'daily-weekly',
          allowances: [
            { amount: '10', period: 'P1D', rollover: { max: '10' } },
            { amount: '100', period: 'P1W', rollover: { max: '100' } },
          ],
        }),
      );
      await ok(t.post('/v1/customers/twin/subscriptions', { plan_id: 'a' }));
      await ok(t.post('/v1/customers/twin/subscriptions', { plan_id: 'b' }));
      await ok(t.post('/v1/customers/mixed/subscriptions', { plan_id: 'daily-weekly' }));
      t.clock.set(Date.parse('2026-01-12T00:00:00.000Z'));
      // Weekly: 100 new + 100 carried; daily: 10 new + 10 carried (the cap trims older carries).
      expect((await balance('mixed')).available).toBe('220');
      t.clock.set(Date.parse('2026-02-05T00:00:00.000Z'));
      expect((await balance('twin')).available).toBe('400');
      expect((await ok(t.get('/v1/reconciliation'), 200)).ok).toBe(true);
    });

    it('subscribing twice to the same plan is a 409 already_subscribed, unless allow_multiple', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      const first = await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
      const before = await ok(t.get('/v1/customers/acme/ledger?limit=1000'), 200);
      const again = await t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' });
      expect(again.statusCode, again.body).toBe(409);
      expect(again.json().error).toMatchObject({
        code: 'already_subscribed',
        details: { subscription_id: first.id, plan_id: 'pro' },
      });
      // Nothing was written: one subscription, one allowance, the same ledger.
      expect((await ok(t.get('/v1/customers/acme/subscriptions'), 200)).data).toHaveLength(1);
      expect((await balance()).available).toBe('500');
      expect(await ok(t.get('/v1/customers/acme/ledger?limit=1000'), 200)).toEqual(before);
      // A future start on the same plan is refused too; another plan is not.
      const later = await t.post('/v1/customers/acme/subscriptions', {
        plan_id: 'pro',
        start_at: '2026-06-01T00:00:00Z',
      });
      expect(later.statusCode).toBe(409);
      await ok(t.post('/v1/plans', { id: 'other', allowances: [{ amount: '1', period: 'P1M' }] }));
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'other' }));
      // Asked for explicitly, a second subscription adds its allowance.
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro', allow_multiple: true }));
      expect((await balance()).available).toBe('1001');
      // Changing another subscription onto a plan the customer is already on is refused the same way.
      const other = (await ok(t.get('/v1/customers/acme/subscriptions'), 200)).data.find(
        (s: Body) => s.plan_id === 'other',
      );
      const change = await t.post(`/v1/subscriptions/${other.id}/change`, { plan_id: 'pro' });
      expect(change.statusCode, change.body).toBe(409);
      expect(change.json().error).toMatchObject({ code: 'already_subscribed', details: { plan_id: 'pro' } });
      expect((await balance()).available).toBe('1001');
      await ok(t.post(`/v1/subscriptions/${other.id}/change`, { plan_id: 'pro', allow_multiple: true }), 200);
      // Once the first has ended, subscribing again is a plain new subscription.
      await ok(t.post('/v1/customers', { id: 'beta' }));
      const b1 = await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'pro' }));
      await ok(t.post(`/v1/subscriptions/${b1.id}/cancel`, {}), 200);
      t.clock.advance(1000);
      await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'pro' }));
      expect((await ok(t.get('/v1/reconciliation'), 200)).ok).toBe(true);
    });

    it('concurrent subscriptions of one customer to one plan: exactly one starts', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' })),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409]);
      expect((await ok(t.get('/v1/customers/acme/subscriptions'), 200)).data).toHaveLength(1);
      expect((await balance()).available).toBe('500');
    });

    it('a backdated start may not reach behind entries already recorded', async () => {
      await open('2026-03-01T00:00:00.000Z');
      await hybridSetup();
      await ok(t.post('/v1/customers/acme/debits', { amount: '100', allow_overage: true }));
      const refused = await t.post('/v1/customers/acme/subscriptions', {
        plan_id: 'pro',
        start_at: '2026-02-15T00:00:00Z',
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.details).toMatchObject({
        field: 'start_at',
        latest_entry_at: '2026-03-01T00:00:00.000Z',
      });
      t.clock.advance(1000);
      await ok(
        t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro', start_at: '2026-03-01T00:00:00Z' }),
      );
      expect((await balance()).available).toBe('400');
    });

    it('restricted credits do not serve a customer in debt; check and debit agree', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(
        t.post('/v1/plans', { id: 'metered', entitlements: [{ feature_id: 'gpt-x' }], allowances: [] }),
      );
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'metered' }));
      await ok(t.post('/v1/customers/acme/debits', { amount: '50', allow_overage: true }));
      await ok(t.post('/v1/customers/acme/grants', { amount: '100', applies_to: ['gpt-x'] }));
      const check = await ok(
        t.post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x', quantity: '16' }),
        200,
      );
      expect(check).toMatchObject({
        allowed: false,
        reason: 'insufficient_credits',
        credits: '80',
        available: '50',
      });
      const debit = await t.post('/v1/customers/acme/debits', { amount: '80', feature_id: 'gpt-x' });
      expect(debit.statusCode).toBe(402);
      expect(debit.json().error.details).toEqual({ available: '50', requested: '80' });
      await ok(t.post('/v1/customers/acme/debits', { amount: '50', feature_id: 'gpt-x' }));
    });

    /** acme on a plan that limits gpt-x to 10 a day; answers a check (held when `hold` is given). */
    async function limitedToTenADay() {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      await ok(
        t.post('/v1/plans', {
          id: 'limited',
          entitlements: [{ feature_id: 'gpt-x', usage_limit: { amount: '10', period: 'P1D' } }],
          allowances: [{ amount: '1000', period: 'P1M' }],
        }),
      );
      await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'limited' }));
      return (quantity: string, hold?: object) =>
        ok(
          t.post('/v1/check', {
            customer_id: 'acme',
            feature_id: 'gpt-x',
            quantity,
            ...(hold ? { hold } : {}),
          }),
          200,
        );
    }

    it('a held check counts its usage; a released hold gives it back, a captured one keeps it', async () => {
      const check = await limitedToTenADay();
      const first = await check('6', {});
      expect((await check('5')).reason).toBe('limit_reached');
      await ok(t.post(`/v1/holds/${first.hold_id}/release`), 200);
      expect((await check('10')).allowed).toBe(true);
      const second = await check('10', { ttl_seconds: 60 });
      await ok(t.post(`/v1/holds/${second.hold_id}/capture`, {}));
      expect((await check('1')).reason).toBe('limit_reached');
      // An expired hold gives its usage back too.
      t.clock.advance(86_400_000);
      await check('7', { ttl_seconds: 60 });
      expect((await check('4')).reason).toBe('limit_reached');
      // Expired a second later: its usage is back at once (read), and stays back once recorded.
      t.clock.advance(61_000);
      expect((await check('10')).allowed).toBe(true);
      await ok(t.post('/v1/customers/acme/debits', { amount: '1' }));
      expect((await check('10')).allowed).toBe(true);
      expect((await check('11')).reason).toBe('limit_reached');
    });

    it('reversing the capture of a held check gives its usage back, to the period the check counted it in', async () => {
      const check = await limitedToTenADay();
      // Held on day 1 (10 of 10), captured on day 2, reversed on day 2: day 1's counter gets it back.
      t.clock.advance(23 * 3_600_000 + 55 * 60_000); // 23:55 on day 1
      const held = await check('10', { ttl_seconds: 900 });
      expect((await check('1')).reason).toBe('limit_reached');
      t.clock.advance(10 * 60_000); // 00:05 on day 2
      const captured = await ok(t.post(`/v1/holds/${held.hold_id}/capture`, {}));
      await check('4', {}); // day 2's own use (a held check counts it)
      expect((await check('7')).reason).toBe('limit_reached');
      await ok(t.post(`/v1/debits/${captured.id}/reverse`, { reason: 'check captured by mistake' }));
      // Day 2 is unchanged by the reversal (4 used), so 7 more is still past the limit.
      expect((await check('7')).reason).toBe('limit_reached');
      expect((await check('6')).allowed).toBe(true);
      // The same on one day: a captured check's reversal frees the limit at once.
      t.clock.advance(86_400_000);
      const again = await check('10', { ttl_seconds: 60 });
      const capturedAgain = await ok(t.post(`/v1/holds/${again.hold_id}/capture`, {}));
      expect((await check('1')).reason).toBe('limit_reached');
      await ok(
        t.post(`/v1/debits/${capturedAgain.id}/reverse`, { reason: 'refund', amount: capturedAgain.amount }),
      );
      expect((await check('10')).allowed).toBe(true);
    });

    it('refuses two allowances with one key and a rate priced by two features', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      const twice = await t.post('/v1/plans', {
        id: 'dup',
        allowances: [
          { amount: '100', period: 'P1M' },
          { amount: '200', period: 'P1M' },
        ],
      });
      expect(twice.statusCode).toBe(400);
      await ok(t.post('/v1/meters', { id: 'm', event_type: 'x', aggregation: 'count' }));
      await ok(t.post('/v1/rates', { id: 'r', meter_id: 'm', credits_per_unit: '1' }));
      await ok(t.post('/v1/features', { id: 'f1', type: 'metered', rate_ids: ['r'] }));
      const second = await t.post('/v1/features', { id: 'f2', type: 'metered', rate_ids: ['r'] });
      expect(second.statusCode).toBe(400);
      expect(second.json().error.details).toMatchObject({ field: 'rate_ids', feature_id: 'f1' });
    });

    it('purchases: volume discount priced once on the total; auto top-up fires once per crossing', async () => {
      await open('2026-01-01T00:00:00.000Z');
      await hybridSetup();
      const bulk = await ok(t.post('/v1/customers/acme/purchases', { pack_id: '10k', quantity: 5 }));
      expect(bulk).toMatchObject({
        credits: '50000',
        price: { amount: '450', currency: 'USD' },
        percent_off: '10',
      });
      expect(bulk.grant.cost_basis).toEqual({ amount: '450', currency: 'USD' });
      const rule = await ok(
        t.request({
          method: 'PUT',
          url: '/v1/customers/acme/auto-top-up',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({
            threshold: '1000',
            pack_id: '10k',
            quantity: 1,
            max_per_period: 2,
            period: 'P1M',
          }),
        }),
        200,
      );
      expect(rule.count_in_period).toBe(0);
      await ok(t.post('/v1/customers/acme/debits', { amount: '48999' }));
      expect((await balance()).available).toBe('1001');
      const crossing = await ok(t.post('/v1/customers/acme/debits', { amount: '2' }));
      expect(crossing.balance_after.available).toBe('10999');
      // A second crossing in the period buys again; at 1000 exactly nothing crossed; the third
      // crossing finds the cap (2 per period) reached.
      await ok(t.post('/v1/customers/acme/debits', { amount: '10000' }));
      expect((await balance()).available).toBe('10999');
      await ok(t.post('/v1/customers/acme/debits', { amount: '9999' }));
      expect((await balance()).available).toBe('1000');
      await ok(t.post('/v1/customers/acme/debits', { amount: '1' }));
      expect((await balance()).available).toBe('999');
      const purchases = await ok(t.get('/v1/customers/acme/purchases'), 200);
      expect((purchases.data as Body[]).map((p) => p.source).sort()).toEqual([
        'api',
        'auto_top_up',
        'auto_top_up',
      ]);
    });
  });
}
