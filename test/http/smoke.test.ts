import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

describe('HTTP smoke', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('grants, debits in burn-down order and reports the balance', async () => {
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    const promo = await t.post('/v1/customers/acme/grants', {
      amount: '100',
      category: 'promotional',
      expires_at: '2026-02-01T00:00:00Z',
    });
    expect(promo.statusCode).toBe(201);
    const paid = await t.post('/v1/customers/acme/grants', { amount: '1000' });
    const debit = await t.post('/v1/customers/acme/debits', { amount: '150.25' });
    expect(debit.statusCode).toBe(201);
    expect(debit.json().drawdowns).toEqual([
      { grant_id: promo.json().id, amount: '100' },
      { grant_id: paid.json().id, amount: '50.25' },
    ]);
    const balance = (await t.get('/v1/customers/acme/balance')).json();
    expect(balance.available).toBe('949.75');
    t.clock.advance(40 * 24 * 3600 * 1000);
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('949.75');
  });
});
