import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BALANCE_EVENTS } from '../../src/http/webhook-events/balance.js';
import type { StoredOutboxRecord } from '../../src/ports/storage.js';
import { sweepExpiryNotices } from '../../src/services/balance-alerts.js';
import { sweepDueLedgers } from '../../src/services/ledger.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

/*
 * Balance alerts over HTTP on both dialects (issue #11, events and alerts): the crossing rule
 * (`before > level ≥ after`, once per crossing, re-armed by recovery), percent and default
 * thresholds, every kind of write that moves a balance, the sweeper's expiries and notices, and the
 * published schemas of every fact written.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ALERT_TYPES = new Set(BALANCE_EVENTS.map((e) => e.type));

const ajv = new Ajv({ strict: false });
// ajv-formats is CommonJS: its plugin is the default export's default under ESM.
(formats as unknown as { default: (a: Ajv) => void }).default(ajv);
const validators = new Map(BALANCE_EVENTS.map((e) => [e.type, ajv.compile(e.data)]));

for (const dialect of DIALECTS) {
  describe(`balance alerts (${dialect.name})`, () => {
    let t: TestApp;
    let seen = 0;

    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      seen = 0;
      expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    });
    afterEach(async () => {
      // Every fact written validates against its published schema.
      const all = await t.storage.read.outbox.listAfter('default', 0, 10_000);
      for (const fact of all) {
        const validate = validators.get(fact.type);
        if (!validate) continue;
        expect(validate(fact.data), `${fact.type}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
      expect((await reconcileLedger(t.storage)).failures).toEqual([]);
      await t.close();
    });

    const ok = async (res: Promise<{ statusCode: number; body: string; json(): unknown }>, status = 201) => {
      const r = await res;
      expect(r.statusCode, r.body).toBe(status);
      return r.json() as Record<string, unknown> & { id: string };
    };
    const grant = (amount: string, more: Record<string, unknown> = {}, customer = 'acme') =>
      ok(t.post(`/v1/customers/${customer}/grants`, { amount, ...more }));
    const debit = (amount: string, more: Record<string, unknown> = {}, customer = 'acme') =>
      ok(t.post(`/v1/customers/${customer}/debits`, { amount, ...more }));
    const threshold = (body: Record<string, unknown>) => ok(t.post('/v1/balance-thresholds', body));
    /** The alert facts written since the last call, oldest first. */
    const facts = async (): Promise<StoredOutboxRecord[]> => {
      const rows = await t.storage.read.outbox.listAfter('default', seen, 10_000);
      if (rows.length > 0) seen = rows[rows.length - 1]!.seq;
      return rows.filter((r) => ALERT_TYPES.has(r.type));
    };
    const types = async () => (await facts()).map((f) => f.type);

    it('fires balance.low when a debit lands exactly on the threshold, once, and again after recovery', async () => {
      await grant('100');
      const thr = await threshold({ customer_id: 'acme', kind: 'amount', value: '30' });
      await debit('60');
      expect(await types()).toEqual([]);
      await debit('10'); // 40 → 30: lands on the threshold
      const low = await facts();
      expect(low.map((f) => f.type)).toEqual(['balance.low']);
      expect(low[0]!.customerId).toBe('acme');
      expect(low[0]!.data).toEqual({
        customer_id: 'acme',
        credit_type: 'credits',
        threshold: { id: thr.id, kind: 'amount', value: '30', level: '30' },
        balance_before: '40',
        balance_after: '30',
      });
      await debit('5'); // already below: nothing more
      expect(await types()).toEqual([]);
      await grant('10'); // 25 → 35: recovered
      const recovered = await facts();
      expect(recovered.map((f) => f.type)).toEqual(['balance.recovered']);
      expect(recovered[0]!.data).toMatchObject({ balance_before: '25', balance_after: '35' });
      await debit('5'); // 35 → 30: fires again
      expect(await types()).toEqual(['balance.low']);
    });

    it('a threshold at 0 fires with balance.depleted when the balance reaches 0; overage.started when it goes below', async () => {
      await grant('10');
      await threshold({ kind: 'amount', value: '0' });
      await debit('10');
      expect((await types()).sort()).toEqual(['balance.depleted', 'balance.low']);
      await grant('5');
      expect(await types()).toEqual(['balance.recovered']);
      await debit('8', { allow_overage: true });
      const last = await facts();
      expect(last.map((f) => f.type).sort()).toEqual(['balance.depleted', 'balance.low', 'overage.started']);
      expect(last.find((f) => f.type === 'overage.started')!.data).toMatchObject({
        balance_before: '5',
        balance_after: '-3',
        overage: '3',
      });
      await debit('1', { allow_overage: true }); // more overage: no new fact
      expect(await types()).toEqual([]);
    });

    it('a threshold created while the balance is below it stays silent until a write crosses it from above', async () => {
      await grant('10');
      await threshold({ customer_id: 'acme', kind: 'amount', value: '50' });
      await debit('1');
      expect(await types()).toEqual([]);
      await grant('100'); // 9 → 109: it never fired, so nothing recovers
      expect(await types()).toEqual([]);
      await debit('59'); // 109 → 50
      expect(await types()).toEqual(['balance.low']);
    });

    it('percent thresholds are a percent of the credits granted in force, depleted grants included', async () => {
      await grant('100');
      const thr = await threshold({ customer_id: 'acme', kind: 'percent', value: '25' });
      await debit('74');
      expect(await types()).toEqual([]);
      await debit('1'); // 26 → 25 = 25% of 100
      const [low] = await facts();
      expect(low?.data).toMatchObject({
        threshold: { id: thr.id, kind: 'percent', value: '25', level: '25' },
      });
      await grant('100'); // 125 of 200 granted: level 50, above it
      const [recovered] = await facts();
      expect(recovered?.type).toBe('balance.recovered');
      expect(recovered?.data).toMatchObject({ threshold: { level: '50' }, balance_after: '125' });
      await debit('100'); // the first grant is depleted (still granted in force): 25 ≤ 50
      const [again] = await facts();
      expect(again?.type).toBe('balance.low');
      expect(again?.data).toMatchObject({ threshold: { level: '50' }, balance_after: '25' });
    });

    it("workspace defaults apply to customers without their own thresholds of that credit type; a customer's own replace them", async () => {
      await ok(t.post('/v1/customers', { id: 'beta' }));
      await grant('100');
      await grant('100', {}, 'beta');
      const def = await threshold({ kind: 'amount', value: '50' });
      const own = await threshold({ customer_id: 'beta', kind: 'amount', value: '20' });
      await debit('50');
      await debit('50', {}, 'beta');
      const first = await facts();
      expect(
        first.map((f) => [f.customerId, f.type, (f.data as { threshold: { id: string } }).threshold.id]),
      ).toEqual([['acme', 'balance.low', def.id]]);
      await debit('30', {}, 'beta');
      const second = await facts();
      expect(
        second.map((f) => [f.customerId, (f.data as { threshold: { id: string } }).threshold.id]),
      ).toEqual([['beta', own.id]]);
      const listed = await ok(t.get('/v1/balance-thresholds'), 200);
      expect((listed['data'] as { id: string }[]).map((x) => x.id)).toEqual([def.id]);
      const ofBeta = await ok(t.get('/v1/balance-thresholds?customer_id=beta'), 200);
      expect(ofBeta['data']).toEqual([
        {
          id: own.id,
          customer_id: 'beta',
          credit_type: 'credits',
          kind: 'amount',
          value: '20',
          created_at: new Date(T0).toISOString(),
        },
      ]);
    });

    it('50 concurrent debits crossing one threshold write exactly one balance.low', async () => {
      await grant('100');
      await threshold({ customer_id: 'acme', kind: 'amount', value: '50' });
      const results = await Promise.all(
        Array.from({ length: 50 }, () => t.post('/v1/customers/acme/debits', { amount: '2' })),
      );
      expect(results.map((r) => r.statusCode)).toEqual(Array(50).fill(201));
      const all = await facts();
      expect(all.map((f) => f.type).sort()).toEqual(['balance.depleted', 'balance.low']);
      expect(all.find((f) => f.type === 'balance.low')!.data).toMatchObject({
        balance_before: '52',
        balance_after: '50',
      });
    });

    it('a refused debit writes no balance facts', async () => {
      await grant('10');
      await threshold({ kind: 'amount', value: '5' });
      const refused = await t.post('/v1/customers/acme/debits', { amount: '20' });
      expect(refused.statusCode).toBe(402);
      expect(await types()).toEqual([]);
    });

    it('a void that crosses fires', async () => {
      const g = await grant('100');
      await grant('10');
      await threshold({ kind: 'amount', value: '20' });
      await ok(t.post(`/v1/grants/${g.id}/void`, {}), 200);
      expect(
        (await facts()).map((f) => [f.type, (f.data as { balance_after: string }).balance_after]),
      ).toEqual([['balance.low', '10']]);
    });

    it('an expiry applied by the sweeper, with no traffic, fires grant.expired and the crossing', async () => {
      await grant('100', { expires_at: new Date(T0 + DAY).toISOString() });
      await grant('10');
      await threshold({ kind: 'amount', value: '20' });
      t.clock.advance(DAY + 1);
      expect(await sweepDueLedgers(t.ctx)).toBe(1);
      const all = await facts();
      expect(all.map((f) => f.type).sort()).toEqual(['balance.low', 'grant.expired']);
      expect(all.find((f) => f.type === 'grant.expired')!.data).toMatchObject({
        amount: '100',
        amount_expired: '100',
        expired_at: new Date(T0 + DAY).toISOString(),
      });
      expect(await sweepDueLedgers(t.ctx)).toBe(0);
      expect(await types()).toEqual([]);
    });

    it('a debit refused once an expiry is due writes nothing; the next write applies the expiry and its facts', async () => {
      await grant('100', { expires_at: new Date(T0 + DAY).toISOString() });
      await threshold({ kind: 'amount', value: '20' });
      t.clock.advance(DAY);
      const refused = await t.post('/v1/customers/acme/debits', { amount: '5' });
      expect(refused.statusCode).toBe(402);
      // The refused debit saved nothing, so its ledger's expiry is applied by the next write.
      expect(await types()).toEqual([]);
      await grant('1'); // this write applies the expiry (100 → 1): its facts, not the refusal's
      expect((await types()).sort()).toEqual(['balance.low', 'grant.expired']);
    });

    it('a hold whose TTL lapses writes hold.expired, and its release of credits recovers', async () => {
      await grant('100');
      await threshold({ kind: 'amount', value: '50' });
      const hold = await ok(t.post('/v1/customers/acme/holds', { amount: '60', ttl_seconds: 60 }));
      expect(await types()).toEqual(['balance.low']);
      t.clock.advance(61_000);
      expect(await sweepDueLedgers(t.ctx)).toBe(1);
      const all = await facts();
      expect(all.map((f) => f.type).sort()).toEqual(['balance.recovered', 'hold.expired']);
      expect(all.find((f) => f.type === 'hold.expired')!.data).toMatchObject({
        hold_id: hold.id,
        amount: '60',
      });
    });

    it('an ingested event whose burn crosses fires', async () => {
      await ok(
        t.post('/v1/meters', {
          id: 'tokens',
          event_type: 'llm.tokens',
          aggregation: 'sum',
          value_property: '$.tokens',
        }),
      );
      await ok(t.post('/v1/rates', { id: 'r', meter_id: 'tokens', credits_per_unit: '1' }));
      await grant('100');
      await threshold({ kind: 'percent', value: '10' });
      const ingest = await t.post('/v1/events', [
        {
          id: 'e1',
          type: 'llm.tokens',
          customer_id: 'acme',
          time: new Date(T0).toISOString(),
          data: { tokens: 95 },
        },
      ]);
      expect(ingest.statusCode, ingest.body).toBeLessThan(300);
      expect(
        (await facts()).map((f) => [f.type, (f.data as { balance_after: string }).balance_after]),
      ).toEqual([['balance.low', '5']]);
    });

    it('grant.expiring_soon fires once per lead time with the injected clock', async () => {
      const g = await grant('100', { expires_at: new Date(T0 + 10 * DAY).toISOString() });
      await grant('5', { expires_at: new Date(T0 + 20 * HOUR).toISOString() });
      const leads = [7 * DAY, DAY];
      // The 5-credit grant is within both lead times already.
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(2);
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(0);
      t.clock.advance(3 * DAY); // 7 days before the big grant's expiry
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(1);
      t.clock.advance(5 * DAY); // 2 days left
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(0);
      t.clock.advance(DAY); // 1 day left
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(1);
      expect(await sweepExpiryNotices(t.ctx, leads)).toBe(0);
      const notices = (await facts()).filter((f) => f.type === 'grant.expiring_soon');
      expect(notices.map((f) => (f.data as { lead_seconds: number }).lead_seconds)).toEqual([
        7 * 86_400,
        86_400,
        7 * 86_400,
        86_400,
      ]);
      expect(notices[2]!.data).toMatchObject({
        grant_id: g.id,
        remaining: '100',
        expires_at: new Date(T0 + 10 * DAY).toISOString(),
      });
    });

    it('thresholds: bad values, unknown customers and credit types are refused; delete removes', async () => {
      const bad = await t.post('/v1/balance-thresholds', { kind: 'percent', value: '101' });
      expect(bad.statusCode).toBe(400);
      expect((bad.json() as { error: { code: string } }).error.code).toBe('invalid_amount');
      const negative = await t.post('/v1/balance-thresholds', { kind: 'amount', value: '-1' });
      expect((negative.json() as { error: { code: string } }).error.code).toBe('invalid_amount');
      const kind = await t.post('/v1/balance-thresholds', { kind: 'ratio', value: '1' });
      expect(kind.statusCode).toBe(400);
      expect(
        (await t.post('/v1/balance-thresholds', { customer_id: 'nobody', kind: 'amount', value: '1' }))
          .statusCode,
      ).toBe(404);
      expect(
        (await t.post('/v1/balance-thresholds', { credit_type: 'gold', kind: 'amount', value: '1' }))
          .statusCode,
      ).toBe(404);
      expect((await t.get('/v1/balance-thresholds?customer_id=nobody')).statusCode).toBe(404);
      const thr = await threshold({ kind: 'amount', value: '1' });
      expect((await ok(t.get(`/v1/balance-thresholds/${thr.id}`), 200))['value']).toBe('1');
      expect(
        (await t.request({ method: 'DELETE', url: `/v1/balance-thresholds/${thr.id}` })).statusCode,
      ).toBe(204);
      expect((await t.get(`/v1/balance-thresholds/${thr.id}`)).statusCode).toBe(404);
      expect(
        (await t.request({ method: 'DELETE', url: `/v1/balance-thresholds/${thr.id}` })).statusCode,
      ).toBe(404);
      await grant('10');
      await debit('10');
      expect(await types()).toEqual(['balance.depleted']);
    });
  });
}
