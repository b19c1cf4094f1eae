import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BALANCE_EVENTS } from '../../src/http/webhook-events/balance.js';
import { sweepRunwayAlerts } from '../../src/services/runway-alerts.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/*
 * `balance.runway_below` (issue #14): a `runway_hours` threshold fires from the periodic sweep
 * when the forecast runway is under it, once per crossing (no storm on later sweeps), re-arms when
 * the runway recovers, follows the injected clock, and never fires from a write's balance check.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const ajv = new Ajv({ strict: false });
(formats as unknown as { default: (a: Ajv) => void }).default(ajv);
const validate = ajv.compile(BALANCE_EVENTS.find((e) => e.type === 'balance.runway_below')!.data);

for (const dialect of DIALECTS) {
  describe(`runway alerts (${dialect.name})`, () => {
    let t: TestApp;
    let seen = 0;
    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      seen = 0;
    });
    afterEach(async () => {
      await t.close();
    });

    const runwayFacts = async () => {
      const rows = await t.storage.read.outbox.listAfter('default', seen, 10_000);
      if (rows.length > 0) seen = rows[rows.length - 1]!.seq;
      return rows.filter((r) => r.type === 'balance.runway_below' || r.type.startsWith('balance.'));
    };
    /** Burns `perDay` a day for `days` days, debiting at midday. */
    const burn = async (customer: string, perDay: string, days: number) => {
      for (let d = 0; d < days; d++) {
        t.clock.advance(DAY / 2);
        const r = await t.post(`/v1/customers/${customer}/debits`, { amount: perDay, allow_overage: true });
        expect(r.statusCode, r.body).toBe(201);
        t.clock.advance(DAY / 2);
      }
    };

    it('fires once when the runway drops under the threshold, re-arms when it recovers, fires again', async () => {
      await t.post('/v1/customers', { id: 'acme' });
      await t.post('/v1/customers', { id: 'idle' });
      await t.post('/v1/customers/idle/grants', { amount: '10' });
      await t.post('/v1/customers/acme/grants', { amount: '1500' });
      t.clock.advance(DAY - (t.clock.now() % DAY));
      // A workspace default: 72 hours.
      const thr = await t.post('/v1/balance-thresholds', { kind: 'runway_hours', value: '72' });
      expect(thr.statusCode, thr.body).toBe(201);
      expect(thr.json()).toMatchObject({ kind: 'runway_hours', value: '72', customer_id: null });
      const thrId = (thr.json() as { id: string }).id;

      await burn('acme', '100', 10); // 500 left at 100 a day: 5 days of runway
      let sweep = await sweepRunwayAlerts(t.ctx);
      expect(sweep.fired).toBe(0);
      expect(sweep.forecasts).toBe(2); // acme and idle (idle burns nothing: no runway, never below)
      expect((await runwayFacts()).filter((f) => f.type === 'balance.runway_below')).toEqual([]);

      await burn('acme', '100', 3); // 200 left: 2 days
      const forecast = (await t.get('/v1/customers/acme/forecast')).json() as { runway_seconds: number };
      expect(forecast.runway_seconds).toBeLessThan(72 * 3600);
      sweep = await sweepRunwayAlerts(t.ctx);
      expect(sweep.fired).toBe(1);
      const below = (await runwayFacts()).filter((f) => f.type === 'balance.runway_below');
      expect(below).toHaveLength(1);
      expect(below[0]!.customerId).toBe('acme');
      expect(validate(below[0]!.data), JSON.stringify(validate.errors)).toBe(true);
      expect(below[0]!.data).toMatchObject({
        customer_id: 'acme',
        credit_type: 'credits',
        threshold: { id: thrId, kind: 'runway_hours', value: '72' },
        runway_seconds: forecast.runway_seconds,
        available: '200',
      });

      // No storm: later sweeps (and the clock moving on) write nothing while it stays below.
      expect((await sweepRunwayAlerts(t.ctx)).fired).toBe(0);
      t.clock.advance(HOUR);
      expect((await sweepRunwayAlerts(t.ctx)).fired).toBe(0);
      expect((await runwayFacts()).filter((f) => f.type === 'balance.runway_below')).toEqual([]);

      // A top-up recovers the runway: the threshold re-arms (silently), then fires on the next drop.
      await t.post('/v1/customers/acme/grants', { amount: '2000' });
      sweep = await sweepRunwayAlerts(t.ctx);
      expect(sweep).toMatchObject({ fired: 0, rearmed: 1 });
      expect((await sweepRunwayAlerts(t.ctx)).rearmed).toBe(0);
      await burn('acme', '100', 20); // 2200 - 2000 = 200 left
      expect((await sweepRunwayAlerts(t.ctx)).fired).toBe(1);
      expect((await runwayFacts()).filter((f) => f.type === 'balance.runway_below')).toHaveLength(1);
    });

    it("a customer's own runway threshold replaces the default; writes never fire it; bad values are refused", async () => {
      await t.post('/v1/customers', { id: 'acme' });
      await t.post('/v1/customers/acme/grants', { amount: '1000' });
      t.clock.advance(DAY - (t.clock.now() % DAY));
      await t.post('/v1/balance-thresholds', { kind: 'runway_hours', value: '24' });
      const own = await t.post('/v1/balance-thresholds', {
        customer_id: 'acme',
        kind: 'runway_hours',
        value: '240',
      });
      expect(own.statusCode).toBe(201);
      await burn('acme', '100', 5); // 500 left: 5 days (< 240 h, > 24 h)
      // Writes alone never write balance.runway_below.
      expect((await runwayFacts()).filter((f) => f.type === 'balance.runway_below')).toEqual([]);
      await sweepRunwayAlerts(t.ctx);
      const below = (await runwayFacts()).filter((f) => f.type === 'balance.runway_below');
      expect(below.map((f) => (f.data as { threshold: { value: string } }).threshold.value)).toEqual(['240']);

      for (const value of ['0', '8785', '-1']) {
        const bad = await t.post('/v1/balance-thresholds', { kind: 'runway_hours', value });
        expect(bad.statusCode).toBe(400);
        expect((bad.json() as { error: { code: string } }).error.code).toBe('invalid_amount');
      }
    });
  });
}
