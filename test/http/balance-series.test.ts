import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

const DAY = 86_400_000;

/** GET /v1/customers/{id}/balance-series: every point is the balance `?at=` that instant answers. */
describe('HTTP balance series', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('answers one point per step, each equal to the balance at that instant', async () => {
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    const start = t.clock.now();
    await t.post('/v1/customers/acme/grants', { amount: '1000' });
    const promoExpiry = new Date(start + 2.5 * DAY).toISOString();
    await t.post('/v1/customers/acme/grants', { amount: '50', expires_at: promoExpiry });
    for (let day = 0; day < 6; day++) {
      t.clock.advance(DAY / 2);
      expect((await t.post('/v1/customers/acme/debits', { amount: '12.5' })).statusCode).toBe(201);
      t.clock.advance(DAY / 2);
    }
    const from = new Date(start).toISOString();
    const to = new Date(start + 5 * DAY).toISOString();
    const res = await t.get(`/v1/customers/acme/balance-series?from=${from}&to=${to}&step=day`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.points).toHaveLength(6);
    for (const point of body.points) {
      const at = (await t.get(`/v1/customers/acme/balance?at=${point.at}`)).json();
      expect(point).toEqual({ at: at.at, available: at.available, held: at.held, overage: at.overage });
    }
    // The promotional grant burns first; at day 2.5 its last 25 expire (before that day's debit).
    expect(body.points.map((p: { available: string }) => p.available)).toEqual([
      '1050',
      '1037.5',
      '1025',
      '987.5',
      '975',
      '962.5',
    ]);
    const hourly = await t.get(`/v1/customers/acme/balance-series?from=${from}&to=${to}&step=hour`);
    expect(hourly.json().points).toHaveLength(5 * 24 + 1);
  });

  it('refuses more than 1,000 points, a reversed range, a future end and an unknown step', async () => {
    await t.post('/v1/customers', { id: 'acme' });
    const now = t.clock.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const cases = [
      `from=${iso(now - 1001 * 3_600_000)}&to=${iso(now)}&step=hour`,
      `from=${iso(now)}&to=${iso(now - DAY)}&step=day`,
      `from=${iso(now - DAY)}&to=${iso(now + DAY)}&step=day`,
      `from=${iso(now - DAY)}&step=week`,
      `to=${iso(now)}&step=day`,
    ];
    for (const query of cases) {
      const res = await t.get(`/v1/customers/acme/balance-series?${query}`);
      expect(res.statusCode, query).toBe(400);
    }
    expect(
      (await t.get(`/v1/customers/nobody/balance-series?from=${iso(now - DAY)}&step=day`)).statusCode,
    ).toBe(404);
    const ok = await t.get(`/v1/customers/acme/balance-series?from=${iso(now - 999 * 3_600_000)}&step=hour`);
    expect(ok.json().points).toHaveLength(1000);
  });
});
