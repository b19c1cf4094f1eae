import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

const DAY = 86_400_000;

/** GET /v1/customers/{id}/forecast over a real ledger. */
describe('HTTP forecast', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('a steady burn of 100 a day forecasts its depletion, with the model and the known future', async () => {
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    await t.post('/v1/customers/acme/grants', { amount: '5000' });
    // Move to a UTC midnight, then burn 100 a day for 28 days.
    t.clock.advance(DAY - (t.clock.now() % DAY));
    for (let d = 0; d < 28; d++) {
      t.clock.advance(DAY / 2);
      expect((await t.post('/v1/customers/acme/debits', { amount: '100' })).statusCode).toBe(201);
      t.clock.advance(DAY / 2);
    }
    const expiresAt = new Date(t.clock.now() + 3 * DAY).toISOString();
    await t.post('/v1/customers/acme/grants', { amount: '50', expires_at: expiresAt, priority: 20 });
    const res = await t.get('/v1/customers/acme/forecast');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('forecast');
    expect(body.available).toBe('2250');
    expect(body.model.window_days).toBe(28);
    expect(body.model.mean_per_day).toBe('100');
    // 2200 of burn-first credits last 22 days; the priority-20 grant expires unused on day 3.
    expect(Date.parse(body.depletion.p50) - t.clock.now()).toBe(22 * DAY);
    expect(body.runway_seconds).toBe(22 * 86_400);
    expect(body.known_future.expiries).toEqual([
      expect.objectContaining({ at: expiresAt.replace(/\.\d+Z$/, '.000Z'), remaining: '50' }),
    ]);
    expect(body.known_future.projected_expiries).toEqual([expect.objectContaining({ unused: '50' })]);
    expect(body.daily_consumption).toHaveLength(29);
  });

  it('no usage is an honest answer; an unknown customer is a 404', async () => {
    await t.post('/v1/customers', { id: 'idle' });
    await t.post('/v1/customers/idle/grants', { amount: '10' });
    const body = (await t.get('/v1/customers/idle/forecast')).json();
    expect(body.status).toBe('no_recent_usage');
    expect(body.depletion).toBeNull();
    expect(body.runway_seconds).toBeNull();
    expect((await t.get('/v1/customers/nobody/forecast')).statusCode).toBe(404);
  });

  it('customer summaries: a page of balances with a 7-day burn rate and runway', async () => {
    for (const id of ['a', 'b', 'c']) await t.post('/v1/customers', { id });
    await t.post('/v1/customers/a/grants', { amount: '700' });
    await t.post('/v1/customers/b/grants', {
      amount: '10',
      expires_at: new Date(t.clock.now() + 2 * DAY).toISOString(),
    });
    t.clock.advance(DAY - (t.clock.now() % DAY));
    for (let d = 0; d < 7; d++) {
      await t.post('/v1/customers/a/debits', { amount: '10' });
      t.clock.advance(DAY);
    }
    const first = await t.get('/v1/customer-summaries?limit=2');
    expect(first.statusCode).toBe(200);
    const body = first.json();
    expect(body.data.map((s: { customer: { id: string } }) => s.customer.id)).toEqual(['a', 'b']);
    const [a, b] = body.data;
    expect(a.available).toBe('630');
    expect(a.burn_per_day).toBe('10');
    expect(a.runway_seconds).toBe(63 * 86_400);
    expect(a.daily_consumption).toHaveLength(14);
    expect(b.runway_seconds).toBeNull();
    expect(b.expiring_soon).toBe('0');
    const rest = (await t.get(`/v1/customer-summaries?limit=2&cursor=${body.next_cursor}`)).json();
    expect(rest.data.map((s: { customer: { id: string } }) => s.customer.id)).toEqual(['c']);
    expect((await t.get('/v1/customer-summaries?credit_type=nope')).statusCode).toBe(404);
  });

  it('customer summary totals sum every customer, past the first page of the workspace', async () => {
    // 1,005 customers: more than one internal page (1,000) of customers.
    for (let i = 0; i < 1005; i++) {
      expect((await t.post('/v1/customers', { id: `k${String(i).padStart(4, '0')}` })).statusCode).toBe(201);
    }
    for (const i of [0, 500, 1004]) {
      await t.post(`/v1/customers/k${String(i).padStart(4, '0')}/grants`, {
        amount: '100.5',
        expires_at: new Date(t.clock.now() + 3 * DAY).toISOString(),
      });
    }
    await t.post('/v1/customers/k1004/debits', { amount: '0.25' });
    await t.post('/v1/customers/k0000/debits', { amount: '150', allow_overage: true });
    t.clock.advance(1); // summaries count consumption up to now, exclusive
    const totals = await t.get('/v1/customer-summaries/totals');
    expect(totals.statusCode).toBe(200);
    const body = totals.json();
    expect(body).toMatchObject({
      credit_type: 'credits',
      customers: 1005,
      available: '151.25', // 100.5 + 100.25 − 49.5 (k0000 is empty and owes 49.5: its available is −49.5)
      held: '0',
      overage: '49.5',
      expiring_soon: '200.75',
    });
    expect(body.daily_consumption).toHaveLength(14);
    expect(body.daily_consumption.at(-1).consumed).toBe('150.25');
    // The same as the sum of every customer's summary, page by page.
    let cursor: string | null = null;
    let available = 0;
    let count = 0;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = (await t.get(`/v1/customer-summaries?limit=1000${query}`)).json() as {
        data: { available: string }[];
        next_cursor: string | null;
      };
      for (const s of page.data) available += Number(s.available);
      count += page.data.length;
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(count).toBe(1005);
    expect(available).toBe(151.25);
    expect((await t.get('/v1/customer-summaries/totals?credit_type=nope')).statusCode).toBe(404);
  });

  it('customer summaries sorted by balance, burn and runway across every customer, searched and paged', async () => {
    // 25 customers: balance 10·i, and every third burns i a day (runway 10 days, or none).
    const expected: { id: string; available: number; burn: number }[] = [];
    for (let i = 1; i <= 25; i++) {
      const id = `c${String(i).padStart(2, '0')}`;
      await t.post('/v1/customers', { id, name: i === 7 ? 'Seventh Heaven' : null });
      await t.post(`/v1/customers/${id}/grants`, { amount: String(20 * i) });
    }
    t.clock.advance(DAY - (t.clock.now() % DAY));
    for (let d = 0; d < 7; d++) {
      for (let i = 3; i <= 25; i += 3) {
        const id = `c${String(i).padStart(2, '0')}`;
        expect((await t.post(`/v1/customers/${id}/debits`, { amount: String(i) })).statusCode).toBe(201);
      }
      t.clock.advance(DAY);
    }
    for (let i = 1; i <= 25; i++) {
      const burn = i % 3 === 0 ? i : 0;
      expected.push({ id: `c${String(i).padStart(2, '0')}`, available: 20 * i - 7 * burn, burn });
    }
    type Row = { customer: { id: string }; available: string; runway_seconds: number | null };
    const all = async (query: string): Promise<Row[]> => {
      const rows: Row[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.get(
          `/v1/customer-summaries?limit=4&${query}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { data: Row[]; next_cursor: string | null };
        expect(body.data.length).toBeLessThanOrEqual(4);
        rows.push(...body.data);
        cursor = body.next_cursor;
      } while (cursor);
      return rows;
    };
    const byBalanceDesc = [...expected].sort((a, b) => b.available - a.available || (a.id < b.id ? 1 : -1));
    const got = await all('sort=available&order=desc');
    expect(got.map((r) => r.customer.id)).toEqual(byBalanceDesc.map((e) => e.id));
    expect(got.map((r) => Number(r.available))).toEqual(byBalanceDesc.map((e) => e.available));
    // At risk: only burning customers, shortest runway first (available ÷ burn).
    const burning = expected
      .filter((e) => e.burn > 0)
      .map((e) => ({ id: e.id, runway: Math.floor((e.available * 86_400) / e.burn) }))
      .sort((a, b) => a.runway - b.runway || (a.id < b.id ? -1 : 1));
    const risk = await all('sort=runway&burning=true');
    expect(risk.map((r) => [r.customer.id, r.runway_seconds])).toEqual(burning.map((e) => [e.id, e.runway]));
    const burnAsc = await all('sort=burn_per_day');
    expect(burnAsc.slice(-3).map((r) => r.customer.id)).toEqual(['c18', 'c21', 'c24']);
    // Search by id or name, case-insensitive.
    expect((await all('q=SEVENTH')).map((r) => r.customer.id)).toEqual(['c07']);
    expect((await all('q=c2&sort=available')).map((r) => r.customer.id)).toEqual(
      expected
        .filter((e) => e.id.startsWith('c2'))
        .sort((a, b) => a.available - b.available)
        .map((e) => e.id),
    );
    // A cursor of another sort is refused, not misread.
    const page = (await t.get('/v1/customer-summaries?limit=2&sort=available')).json() as {
      next_cursor: string;
    };
    const wrong = await t.get(`/v1/customer-summaries?limit=2&sort=runway&cursor=${page.next_cursor}`);
    expect(wrong.statusCode).toBe(400);
    expect((wrong.json() as { error: { code: string } }).error.code).toBe('invalid_request');
  });
});
