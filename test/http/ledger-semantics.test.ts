import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

const HOUR = 3600_000;
const iso = (ms: number) => new Date(ms).toISOString();

for (const dialect of DIALECTS) {
  describe(`ledger semantics over HTTP (${dialect.name})`, () => {
    let t: TestApp;
    const grant = async (body: Record<string, unknown>) => {
      const res = await t.post('/v1/customers/acme/grants', body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string };
    };
    const balance = async (query = '') => (await t.get(`/v1/customers/acme/balance${query}`)).json();
    const ledger = async () =>
      (await t.get('/v1/customers/acme/ledger?limit=1000')).json().data as {
        type: string;
        amount: string;
        at: string;
        grant_id: string | null;
      }[];

    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    });
    afterEach(async () => {
      expect((await reconcileLedger(t.storage)).failures).toEqual([]);
      await t.close();
    });

    it('expires exactly at expires_at, without waiting for any background job', async () => {
      const g = await grant({ amount: '100', expires_at: iso(T0 + HOUR) });
      await t.post('/v1/customers/acme/debits', { amount: '30' });
      t.clock.set(T0 + HOUR - 1);
      expect((await balance()).available).toBe('70');
      t.clock.set(T0 + HOUR);
      const now = await balance();
      expect([now.available, now.grants]).toEqual(['0', []]);
      expect((await t.get(`/v1/grants/${g.id}`)).json()).toMatchObject({ status: 'expired', remaining: '0' });
      const expiry = (await ledger()).find((e) => e.type === 'expiry');
      expect(expiry).toMatchObject({ amount: '70', at: iso(T0 + HOUR), grant_id: g.id });
      // the past is still readable, before and after the expiry
      expect((await balance(`?at=${iso(T0 + HOUR - 1)}`)).available).toBe('70');
      expect((await balance(`?at=${iso(T0 + HOUR)}`)).available).toBe('0');
      expect((await balance(`?at=${iso(T0 - 1)}`)).available).toBe('0');
    });

    it('reads balances at past instants from the entries', async () => {
      await grant({ amount: '10' });
      t.clock.advance(1000);
      await t.post('/v1/customers/acme/debits', { amount: '4' });
      t.clock.advance(1000);
      await grant({ amount: '2.5', priority: 1 });
      t.clock.advance(1000);
      expect((await balance(`?at=${iso(T0)}`)).available).toBe('10');
      expect((await balance(`?at=${iso(T0 + 1000)}`)).available).toBe('6');
      expect((await balance(`?at=${iso(T0 + 2000)}`)).available).toBe('8.5');
      expect(
        (await balance(`?at=${iso(T0 + 2000)}`)).grants.map((g: { remaining: string }) => g.remaining),
      ).toEqual(['2.5', '6']);
      expect((await t.get(`/v1/customers/acme/balance?at=${iso(T0 + 10 * HOUR)}`)).statusCode).toBe(400);
    });

    it('lets a hold capture from a grant that expired meanwhile; the released rest leaves as expiry', async () => {
      const g = await grant({ amount: '100', expires_at: iso(T0 + HOUR) });
      const hold = (await t.post('/v1/customers/acme/holds', { amount: '40', ttl_seconds: 7200 })).json();
      expect(hold.drawdowns).toEqual([{ grant_id: g.id, amount: '40' }]);
      t.clock.set(T0 + HOUR + 1);
      expect(await balance()).toMatchObject({ available: '0', held: '40' });
      const capture = await t.post(`/v1/holds/${hold.id}/capture`, { amount: '31.5' });
      expect(capture.statusCode, capture.body).toBe(201);
      expect(capture.json()).toMatchObject({
        amount: '31.5',
        hold_id: hold.id,
        drawdowns: [{ grant_id: g.id, amount: '31.5' }],
      });
      expect(await balance()).toMatchObject({ available: '0', held: '0' });
      const types = (await ledger()).map((e) => `${e.type}:${e.amount}`);
      expect(types).toEqual([
        'grant:100',
        'hold:40',
        'expiry:60',
        'capture:31.5',
        'release:8.5',
        'expiry:8.5',
      ]);
      expect((await t.get(`/v1/holds/${hold.id}`)).json()).toMatchObject({
        status: 'captured',
        captured_amount: '31.5',
      });
    });

    it('voids the free remainder now and keeps held portions capturable until released', async () => {
      const g = await grant({ amount: '50' });
      const hold = (await t.post('/v1/customers/acme/holds', { amount: '20' })).json();
      const voided = await t.post(`/v1/grants/${g.id}/void`, { reason: 'chargeback' });
      expect(voided.json()).toMatchObject({ status: 'voided', remaining: '20', held: '20' });
      expect((await t.post(`/v1/grants/${g.id}/void`, {})).json().error.code).toBe('grant_not_active');
      expect((await t.post(`/v1/holds/${hold.id}/release`)).json()).toMatchObject({ status: 'released' });
      expect((await t.get(`/v1/grants/${g.id}`)).json()).toMatchObject({ remaining: '0', held: '0' });
      expect((await ledger()).map((e) => e.type)).toEqual(['grant', 'hold', 'void', 'release', 'void']);
      expect((await t.post(`/v1/holds/${hold.id}/release`)).json().error.code).toBe('hold_not_active');
    });

    it('records overage as debt that the next grant pays first', async () => {
      await grant({ amount: '10' });
      const debit = (await t.post('/v1/customers/acme/debits', { amount: '25', allow_overage: true })).json();
      expect([debit.overage, debit.balance_after.available, debit.balance_after.overage]).toEqual([
        '15',
        '-15',
        '15',
      ]);
      expect((await t.post('/v1/customers/acme/debits', { amount: '1' })).json().error).toMatchObject({
        code: 'insufficient_credits',
        details: { available: '-15', requested: '1' },
      });
      await grant({ amount: '100' });
      expect(await balance()).toMatchObject({ available: '85', overage: '0' });
      expect((await ledger()).map((e) => e.type)).toEqual([
        'grant',
        'debit',
        'overage',
        'grant',
        'overage_settled',
      ]);
    });

    it('keeps a future grant pending until effective, then it pays debt at that instant', async () => {
      await t.post('/v1/customers/acme/debits', { amount: '5', allow_overage: true });
      const g = await grant({ amount: '20', effective_at: iso(T0 + HOUR) });
      expect((await t.get(`/v1/grants/${g.id}`)).json().status).toBe('pending');
      expect(await balance()).toMatchObject({ available: '-5', overage: '5' });
      t.clock.set(T0 + HOUR);
      expect(await balance()).toMatchObject({ available: '15', overage: '0' });
      const settled = (await ledger()).find((e) => e.type === 'overage_settled');
      expect(settled).toMatchObject({ amount: '5', at: iso(T0 + HOUR) });
    });

    it('releases expired holds by themselves, exactly once', async () => {
      await grant({ amount: '10' });
      const hold = (await t.post('/v1/customers/acme/holds', { amount: '10', ttl_seconds: 60 })).json();
      expect((await balance()).available).toBe('0');
      t.clock.advance(60_000);
      expect(await balance()).toMatchObject({ available: '10', held: '0' });
      expect((await t.get(`/v1/holds/${hold.id}`)).json().status).toBe('expired');
      expect((await t.post(`/v1/holds/${hold.id}/capture`, {})).json().error.code).toBe('hold_not_active');
      await t.get('/v1/customers/acme/ledger');
      await t.get('/v1/customers/acme/ledger');
      expect((await ledger()).filter((e) => e.type === 'release')).toHaveLength(1);
    });

    it('captures beyond the hold like a debit, and refuses a short excess without touching the hold', async () => {
      await grant({ amount: '50' });
      const hold = (await t.post('/v1/customers/acme/holds', { amount: '40' })).json();
      const refused = await t.post(`/v1/holds/${hold.id}/capture`, { amount: '60.000000000001' });
      expect([refused.statusCode, refused.json().error.code]).toEqual([402, 'insufficient_credits']);
      expect(await balance()).toMatchObject({ available: '10', held: '40' });
      const captured = await t.post(`/v1/holds/${hold.id}/capture`, { amount: '45' });
      expect(captured.json()).toMatchObject({ amount: '45', overage: '0' });
      expect(await balance()).toMatchObject({ available: '5', held: '0' });
    });

    it('burns in the documented order: priority, soonest expiry, older effective_at, id', async () => {
      const late = await grant({ amount: '1', priority: 5, expires_at: iso(T0 + 3 * HOUR) });
      const soon = await grant({ amount: '1', priority: 5, expires_at: iso(T0 + 2 * HOUR) });
      const never = await grant({ amount: '1', priority: 5 });
      const first = await grant({ amount: '1', priority: 1 });
      const older = await grant({ amount: '1', priority: 5, effective_at: iso(T0 - HOUR) });
      const debit = (await t.post('/v1/customers/acme/debits', { amount: '5' })).json();
      expect(debit.drawdowns.map((d: { grant_id: string }) => d.grant_id)).toEqual([
        first.id,
        soon.id,
        late.id,
        older.id,
        never.id,
      ]);
    });

    it('serves a reconciliation report', async () => {
      await grant({ amount: '10' });
      const report = await t.get('/v1/reconciliation');
      expect(report.statusCode).toBe(200);
      expect(report.json()).toMatchObject({ ok: true, failures: [] });
    });
  });
}
