import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/**
 * `POST /v1/customers/{id}/adjustments` (issue #14, the dashboard's "adjust" action): one call, a
 * promotional grant for a positive amount or a debit for a negative one, the reason on the entry
 * and in the audit log; refusals and bad input leave nothing behind.
 */
describe('HTTP adjustments', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/grants', { amount: '100' })).statusCode).toBe(201);
  });
  afterEach(async () => {
    await t.close();
  });

  const available = async () => (await t.get('/v1/customers/acme/balance')).json().available as string;
  const audit = async () =>
    (await t.get('/v1/audit-log?action=adjustment.created')).json().data as {
      target_type: string;
      target_id: string;
      after: Record<string, unknown>;
    }[];

  it('a positive adjustment is a promotional grant, a negative one a debit, both audited with the reason', async () => {
    const add = await t.post('/v1/customers/acme/adjustments', { amount: '25.5', reason: 'goodwill' });
    expect(add.statusCode, add.body).toBe(201);
    const added = add.json();
    expect(added).toMatchObject({ direction: 'credit', amount: '25.5', reason: 'goodwill', debit: null });
    expect(added.grant).toMatchObject({
      amount: '25.5',
      category: 'promotional',
      description: 'Adjustment: goodwill',
    });
    expect(await available()).toBe('125.5');

    const remove = await t.post('/v1/customers/acme/adjustments', {
      amount: '-40',
      reason: 'double-billed job 42',
    });
    expect(remove.statusCode, remove.body).toBe(201);
    const removed = remove.json();
    expect(removed).toMatchObject({ direction: 'debit', amount: '-40', grant: null });
    expect(removed.debit).toMatchObject({ amount: '40', description: 'Adjustment: double-billed job 42' });
    expect(removed.debit.metadata).toEqual({ adjustment_reason: 'double-billed job 42' });
    expect(await available()).toBe('85.5');

    const records = await audit();
    expect(records.map((r) => [r.target_type, r.target_id, r.after.amount, r.after.reason])).toEqual([
      ['grant', added.grant.id, '25.5', 'goodwill'],
      ['debit', removed.debit.id, '-40', 'double-billed job 42'],
    ]);
  });

  it('refusals and bad input leave no entry and no audit record', async () => {
    const tooMuch = await t.post('/v1/customers/acme/adjustments', { amount: '-500', reason: 'x' });
    expect(tooMuch.statusCode).toBe(402);
    expect(tooMuch.json().error.code).toBe('insufficient_credits');
    for (const [body, code] of [
      [{ amount: '0', reason: 'x' }, 'invalid_amount'],
      [{ amount: '-0', reason: 'x' }, 'invalid_amount'],
      [{ amount: '1.0000000000001', reason: 'x' }, 'invalid_amount'],
      [{ amount: '5', reason: '   ' }, 'invalid_request'],
      [{ amount: '5' }, 'invalid_request'],
    ] as const) {
      const res = await t.post('/v1/customers/acme/adjustments', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code, JSON.stringify(body)).toBe(code);
    }
    expect((await t.post('/v1/customers/nobody/adjustments', { amount: '5', reason: 'x' })).statusCode).toBe(
      404,
    );
    expect(await available()).toBe('100');
    expect(await audit()).toEqual([]);
    // With overage allowed, a removal beyond the balance is owed.
    const owed = await t.post('/v1/customers/acme/adjustments', {
      amount: '-150',
      reason: 'chargeback',
      allow_overage: true,
    });
    expect(owed.statusCode).toBe(201);
    expect(owed.json().debit.overage).toBe('50');
  });
});
