import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/ports/storage.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

/*
 * Items 3 and 4 of the hardening issue over HTTP, on every dialect: unreadable or unpriced usage
 * is visible (invalid_batch, unmetered, GET /v1/events), and wrong burns can be corrected
 * (reversals of debits, captures and events). Every test ends with a clean reconciliation.
 */

const HOUR = 3600_000;
const iso = (ms: number) => new Date(ms).toISOString();

interface Entry {
  type: string;
  amount: string;
  at: string;
  grant_id: string | null;
  ref: string | null;
  from_account: string;
  to_account: string;
}

for (const dialect of DIALECTS) {
  /** Registers a test on SQLite only (it is not reported as skipped elsewhere). */
  const itOnSqlite: typeof it = dialect.name === 'sqlite' ? it : ((() => undefined) as unknown as typeof it);
  describe(`events and corrections over HTTP (${dialect.name})`, () => {
    let t: TestApp;
    const created = async (res: Promise<{ statusCode: number; body: string; json(): unknown }>) => {
      const r = await res;
      expect(r.statusCode, r.body).toBe(201);
      return r.json() as Record<string, unknown> & { id: string };
    };
    const grant = (body: Record<string, unknown>) => created(t.post('/v1/customers/acme/grants', body));
    const debit = (body: Record<string, unknown>) => created(t.post('/v1/customers/acme/debits', body));
    const balance = async (query = '') => {
      const res = await t.get(`/v1/customers/acme/balance${query}`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as {
        available: string;
        overage: string;
        grants: { grant_id: string; remaining: string }[];
      };
    };
    const ledger = async () => (await t.get('/v1/customers/acme/ledger?limit=1000')).json().data as Entry[];
    const event = (id: string, tokens: number | string | undefined, more: Record<string, unknown> = {}) => ({
      id,
      type: 'llm.tokens',
      customer_id: 'acme',
      time: iso(T0),
      data: tokens === undefined ? { model: 'gpt-x' } : { model: 'gpt-x', tokens },
      ...more,
    });
    const usage = async () =>
      (await t.get('/v1/meters/tokens/usage?customer_id=acme&window=month')).json().data as {
        value: string;
      }[];

    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      await created(t.post('/v1/customers', { id: 'acme' }));
      await created(
        t.post('/v1/meters', {
          id: 'tokens',
          event_type: 'llm.tokens',
          aggregation: 'sum',
          value_property: '$.tokens',
          group_by: { model: '$.model' },
        }),
      );
      await created(t.post('/v1/rates', { id: 'per-token', meter_id: 'tokens', credits_per_unit: '0.5' }));
    });
    afterEach(async () => {
      expect((await reconcileLedger(t.storage)).failures).toEqual([]);
      await t.close();
    });

    describe('POST /v1/events', () => {
      it('answers 400 invalid_batch with the same counts when every event was rejected, and stores nothing', async () => {
        const res = await t.post('/v1/events', [
          { ...event('a', 1), customer_id: 'nobody' },
          { ...event('b', 1), time: 'yesterday' },
        ]);
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json()).toEqual({
          error: { code: 'invalid_batch', message: expect.any(String), details: { rejected: 2 } },
          accepted: 0,
          duplicates: 0,
          unmetered: 0,
          rejected: [
            { index: 0, error: { code: 'customer_not_found', message: expect.any(String) } },
            { index: 1, error: { code: 'invalid_event', message: expect.any(String) } },
          ],
        });
        // A single invalid event too; and the refusal is not stored under its Idempotency-Key.
        const single = await t.post(
          '/v1/events',
          { ...event('c', 1), customer_id: 'later' },
          { 'idempotency-key': 'k1' },
        );
        expect(single.statusCode).toBe(400);
        expect(single.json().error.code).toBe('invalid_batch');
        await created(t.post('/v1/customers', { id: 'later' }));
        const retry = await t.post(
          '/v1/events',
          { ...event('c', 1), customer_id: 'later' },
          { 'idempotency-key': 'k1' },
        );
        expect(retry.statusCode, retry.body).toBe(202);
        expect(retry.json()).toMatchObject({ accepted: 1 });
        expect((await t.get('/v1/events')).json().data.map((e: { id: string }) => e.id)).toEqual(['c']);
      });

      it('answers 500 (not 400) when nothing was stored because of a server error, so the client retries', async () => {
        await t.close();
        const real = await dialect.open();
        let failIngest = true;
        const storage = new Proxy(real, {
          get(target, prop) {
            if (prop === 'write') {
              return (lockKey: string | readonly string[], work: Parameters<Storage['write']>[1]) =>
                failIngest && Array.isArray(lockKey)
                  ? Promise.reject(new Error('disk on fire'))
                  : target.write(lockKey, work);
            }
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        t = await createTestApp({ storage });
        await created(t.post('/v1/customers', { id: 'acme' }));
        const res = await t.post('/v1/events', [event('f1', 1), { ...event('f2', 1), time: 'bad' }]);
        expect(res.statusCode, res.body).toBe(500);
        expect(res.json()).toMatchObject({
          error: { code: 'internal_error' },
          accepted: 0,
          rejected: [
            { index: 0, error: { code: 'internal_error' } },
            { index: 1, error: { code: 'invalid_event' } },
          ],
        });
        failIngest = false;
        expect((await t.post('/v1/events', event('f1', 1))).statusCode).toBe(202);
      });

      it('answers 202 when only duplicates came, and counts them', async () => {
        expect((await t.post('/v1/events', event('d1', 2))).statusCode).toBe(202);
        const again = await t.post('/v1/events', [event('d1', 2), { ...event('x', 1), time: 'bad' }]);
        expect(again.statusCode, again.body).toBe(202);
        expect(again.json()).toMatchObject({ accepted: 0, duplicates: 1, unmetered: 0 });
      });

      it('counts unmetered events (no meter for the type, a missing or non-numeric value): stored, nothing burned', async () => {
        await grant({ amount: '100' });
        const res = await t.post('/v1/events', [
          event('ok', 4),
          event('no-value', undefined),
          event('text-value', 'many'),
          { ...event('other-type', 3), type: 'no.meter' },
        ]);
        expect(res.statusCode, res.body).toBe(202);
        expect(res.json()).toEqual({ accepted: 4, duplicates: 0, unmetered: 3, rejected: [] });
        expect((await balance()).available).toBe('98');
        const listed = (await t.get('/v1/events?status=unmetered')).json();
        expect(listed.data.map((e: { id: string }) => e.id).sort()).toEqual([
          'no-value',
          'other-type',
          'text-value',
        ]);
        for (const e of listed.data) expect(e).toMatchObject({ status: 'unmetered', burns: [] });
        const burned = (await t.get('/v1/events?status=burned')).json();
        expect(burned.data.map((e: { id: string }) => e.id)).toEqual(['ok']);
      });

      it('defaults a native event time to the instant the batch was received', async () => {
        t.clock.set(T0 + 5 * HOUR);
        const { time: _time, ...withoutTime } = event('no-time', 10);
        const res = await t.post('/v1/events', withoutTime);
        expect(res.statusCode, res.body).toBe(202);
        const [listed] = (await t.get('/v1/events')).json().data;
        expect(listed).toMatchObject({
          id: 'no-time',
          time: iso(T0 + 5 * HOUR),
          received_at: iso(T0 + 5 * HOUR),
        });
        // null is not "left out"
        const bad = await t.post('/v1/events', { ...event('null-time', 1), time: null });
        expect(bad.statusCode).toBe(400);
      });
    });

    describe('GET /v1/events', () => {
      it('filters by customer, type, time range and status, pages with a cursor, and shows each burn', async () => {
        const g = await grant({ amount: '3' });
        await created(t.post('/v1/customers', { id: 'beta' }));
        const batch = [
          event('e1', 2, { time: iso(T0 + 1000) }), // 1 credit from the grant
          event('e2', 8, { time: iso(T0 + 2000) }), // 4 credits: 2 from the grant, 2 overage
          event('e3', 1, { time: iso(T0 + 3000), customer_id: 'beta' }),
          { ...event('e4', 1, { time: iso(T0 + 4000) }), type: 'other' },
          event('e5', 6, { time: iso(T0 + 5000) }),
        ];
        expect((await t.post('/v1/events', batch)).statusCode).toBe(202);
        await t.post('/v1/events', [event('e1', 99), event('e1', 98)]);

        const all = (await t.get('/v1/events?customer_id=acme')).json();
        expect(all.data.map((e: { id: string }) => e.id)).toEqual(['e1', 'e2', 'e4', 'e5']);
        expect(all.next_cursor).toBeNull();
        const e2 = all.data[1];
        expect(e2).toMatchObject({
          id: 'e2',
          source: null,
          type: 'llm.tokens',
          customer_id: 'acme',
          time: iso(T0 + 2000),
          status: 'burned',
          duplicates: 0,
          reversed_at: null,
          data: { model: 'gpt-x', tokens: 8 },
          burns: [
            {
              rate_id: 'per-token',
              quantity: '8',
              credits: '4',
              debit_id: expect.stringMatching(/^dbt_/),
              drawdowns: [{ grant_id: g.id, amount: '2' }],
              overage: '2',
              reversed: '0',
            },
          ],
        });
        expect(all.data[0]).toMatchObject({ duplicates: 2 });

        const dup = (await t.get('/v1/events?status=duplicate')).json();
        expect(dup.data.map((e: { id: string }) => e.id)).toEqual(['e1']);
        const typed = (await t.get('/v1/events?type=other')).json();
        expect(typed.data.map((e: { id: string }) => e.id)).toEqual(['e4']);
        const ranged = (await t.get(`/v1/events?from=${iso(T0 + 2000)}&to=${iso(T0 + 5000)}`)).json();
        expect(ranged.data.map((e: { id: string }) => e.id)).toEqual(['e2', 'e3', 'e4']);

        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const q = cursor === null ? '' : `&cursor=${cursor}`;
          const res = await t.get(`/v1/events?limit=2${q}`);
          expect(res.statusCode, res.body).toBe(200);
          const page = res.json() as { data: { id: string }[]; next_cursor: string | null };
          expect(page.data.length).toBeLessThanOrEqual(2);
          seen.push(...page.data.map((e) => e.id));
          cursor = page.next_cursor;
        } while (cursor !== null);
        expect(seen).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);

        for (const bad of ['status=reversed', 'limit=0', 'cursor=%21%21', 'from=yesterday', 'unknown=1']) {
          const res = await t.get(`/v1/events?${bad}`);
          expect(res.statusCode, bad).toBe(400);
        }
      });
    });

    describe('corrections', () => {
      it('reverses a debit fully: credits go back to their grants, last drawn first, visible at every instant', async () => {
        const a = await grant({ amount: '10', priority: 1 });
        const b = await grant({ amount: '10', priority: 2 });
        t.clock.advance(1000);
        const d = await debit({ amount: '15' });
        t.clock.advance(1000);
        const res = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'double charge' });
        expect(res.statusCode, res.body).toBe(201);
        const body = res.json();
        expect(body).toMatchObject({
          type: 'reversal',
          debit_id: d.id,
          amount: '15',
          overage_cancelled: '0',
          returned: [
            { grant_id: b.id, amount: '5', left_again_as: null },
            { grant_id: a.id, amount: '10', left_again_as: null },
          ],
          reason: 'double charge',
          balance_after: { available: '20' },
        });
        const reversals = (await ledger()).filter((e) => e.type === 'reversal');
        expect(reversals.map((e) => [e.amount, e.grant_id, e.from_account, e.to_account, e.ref])).toEqual([
          ['5', b.id, 'consumed', `grant:${b.id}`, body.id],
          ['10', a.id, 'consumed', `grant:${a.id}`, body.id],
        ]);
        expect((await balance(`?at=${iso(T0 + 1500)}`)).available).toBe('5');
        expect((await balance(`?at=${iso(T0 + 2000)}`)).available).toBe('20');
        expect((await balance()).available).toBe('20');
        // Nothing left: 409 nothing_to_reverse, and nothing written.
        const again = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'again' });
        expect(again.statusCode).toBe(409);
        expect(again.json().error).toMatchObject({
          code: 'nothing_to_reverse',
          details: { reversible: '0' },
        });
        expect((await ledger()).filter((e) => e.type === 'reversal')).toHaveLength(2);
      });

      it('reverses part of a debit, never more than is left, idempotently with Idempotency-Key', async () => {
        const a = await grant({ amount: '10', priority: 1 });
        const b = await grant({ amount: '10', priority: 2 });
        const d = await debit({ amount: '15' });
        const first = await t.post(
          `/v1/debits/${d.id}/reverse`,
          { amount: '7', reason: 'partial refund' },
          { 'idempotency-key': 'r1' },
        );
        expect(first.statusCode, first.body).toBe(201);
        expect(first.json().returned).toEqual([
          { grant_id: b.id, amount: '5', kind: 'drawdown', left_again_as: null },
          { grant_id: a.id, amount: '2', kind: 'drawdown', left_again_as: null },
        ]);
        const replay = await t.post(
          `/v1/debits/${d.id}/reverse`,
          { amount: '7', reason: 'partial refund' },
          { 'idempotency-key': 'r1' },
        );
        expect(replay.statusCode).toBe(201);
        expect(replay.headers['idempotent-replayed']).toBe('true');
        expect(replay.json().id).toBe(first.json().id);
        expect((await balance()).available).toBe('12');
        const over = await t.post(`/v1/debits/${d.id}/reverse`, { amount: '8.5', reason: 'too much' });
        expect(over.statusCode).toBe(409);
        expect(over.json().error).toMatchObject({
          code: 'reversal_exceeds_burn',
          details: { reversible: '8', requested: '8.5' },
        });
        expect((await balance()).available).toBe('12');
        const rest = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'the rest' });
        expect(rest.statusCode, rest.body).toBe(201);
        expect(rest.json()).toMatchObject({ amount: '8', returned: [{ grant_id: a.id, amount: '8' }] });
        expect((await balance()).available).toBe('20');
      });

      it('refuses bad reversal requests with 4xx and writes nothing', async () => {
        await grant({ amount: '10' });
        const d = await debit({ amount: '4' });
        const before = await ledger();
        for (const [body, status] of [
          [{}, 400],
          [{ reason: '' }, 400],
          [{ reason: '   ' }, 400],
          [{ reason: 'x', amount: '0' }, 400],
          [{ reason: 'x', amount: '-1' }, 400],
          [{ reason: 'x', amount: '1.0000000000001' }, 400],
          [{ reason: 'x', amount: 1 }, 400],
          [{ reason: 'x', extra: true }, 400],
        ] as const) {
          const res = await t.post(`/v1/debits/${d.id}/reverse`, body);
          expect(res.statusCode, JSON.stringify(body)).toBe(status);
          expect(res.json().error.code).toMatch(/^invalid_/);
        }
        expect((await t.post('/v1/debits/dbt_nope/reverse', { reason: 'x' })).statusCode).toBe(404);
        expect((await t.post('/v1/events/nope/reverse', { reason: 'x' })).statusCode).toBe(404);
        expect(await ledger()).toEqual(before);
      });

      it('returns parts whose grant has expired or been voided, and they leave again at once', async () => {
        const expiring = await grant({ amount: '5', priority: 1, expires_at: iso(T0 + HOUR) });
        const voided = await grant({ amount: '5', priority: 2 });
        const kept = await grant({ amount: '5', priority: 3 });
        const d = await debit({ amount: '12' });
        expect((await t.post(`/v1/grants/${voided.id}/void`, {})).statusCode).toBe(200);
        t.clock.set(T0 + 2 * HOUR);
        const res = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'wrong customer' });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json()).toMatchObject({
          amount: '12',
          returned: [
            { grant_id: kept.id, amount: '2', left_again_as: null },
            { grant_id: voided.id, amount: '5', left_again_as: 'void' },
            { grant_id: expiring.id, amount: '5', left_again_as: 'expiry' },
          ],
          balance_after: { available: '5' },
        });
        const tail = (await ledger()).slice(-5).map((e) => [e.type, e.amount, e.grant_id]);
        expect(tail).toEqual([
          ['reversal', '2', kept.id],
          ['reversal', '5', voided.id],
          ['void', '5', voided.id],
          ['reversal', '5', expiring.id],
          ['expiry', '5', expiring.id],
        ]);
        expect((await t.get(`/v1/grants/${expiring.id}`)).json()).toMatchObject({
          status: 'expired',
          remaining: '0',
        });
        expect((await t.get(`/v1/grants/${voided.id}`)).json()).toMatchObject({
          status: 'voided',
          remaining: '0',
        });
        expect((await balance(`?at=${iso(T0 + 2 * HOUR - 1)}`)).available).toBe('3');
        expect((await balance(`?at=${iso(T0 + 2 * HOUR)}`)).available).toBe('5');
      });

      it('cancels the overage a debit recorded first, then returns its drawdowns', async () => {
        const g = await grant({ amount: '10' });
        const d = await debit({ amount: '14', allow_overage: true });
        expect(await balance()).toMatchObject({ available: '-4', overage: '4' });
        const part = await t.post(`/v1/debits/${d.id}/reverse`, { amount: '3', reason: 'goodwill' });
        expect(part.statusCode, part.body).toBe(201);
        expect(part.json()).toMatchObject({ overage_cancelled: '3', returned: [] });
        expect(await balance()).toMatchObject({ available: '-1', overage: '1' });
        const rest = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'goodwill' });
        expect(rest.json()).toMatchObject({
          amount: '11',
          overage_cancelled: '1',
          returned: [{ grant_id: g.id, amount: '10' }],
        });
        expect(await balance()).toMatchObject({ available: '10', overage: '0' });
        const entries = (await ledger()).filter((e) => e.type === 'reversal');
        expect(entries.map((e) => [e.amount, e.from_account, e.to_account])).toEqual([
          ['3', 'consumed', 'overage'],
          ['1', 'consumed', 'overage'],
          ['10', 'consumed', `grant:${g.id}`],
        ]);
      });

      it('refunds overage already paid to the grants that paid it (latest settlement first) after cancelling what is owed', async () => {
        const g1 = await grant({ amount: '10' });
        const d = await debit({ amount: '16', allow_overage: true }); // 10 from g1, 6 overage
        const g2 = await grant({ amount: '3' }); // pays 3 of the debt
        t.clock.advance(1000);
        const g3 = await grant({ amount: '2' }); // pays 2 more: 1 still owed
        expect(await balance()).toMatchObject({ available: '-1', overage: '1' });
        t.clock.advance(1000);
        const part = await t.post(`/v1/debits/${d.id}/reverse`, { amount: '4', reason: 'wrong usage' });
        expect(part.statusCode, part.body).toBe(201);
        expect(part.json()).toMatchObject({
          amount: '4',
          overage_cancelled: '1',
          overage_refunded: '3',
          returned: [
            { grant_id: g3.id, amount: '2', kind: 'paid_overage', left_again_as: null },
            { grant_id: g2.id, amount: '1', kind: 'paid_overage', left_again_as: null },
          ],
          usage_returned: null,
        });
        expect(await balance()).toMatchObject({ available: '3', overage: '0' });
        // g2 is voided meanwhile: the rest of what it paid goes back and leaves again at once.
        expect((await t.post(`/v1/grants/${g2.id}/void`, {})).statusCode).toBe(200);
        const rest = await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'wrong usage' });
        expect(rest.statusCode, rest.body).toBe(201);
        expect(rest.json()).toMatchObject({
          amount: '12',
          overage_cancelled: '0',
          overage_refunded: '2',
          returned: [
            { grant_id: g2.id, amount: '2', kind: 'paid_overage', left_again_as: 'void' },
            { grant_id: g1.id, amount: '10', kind: 'drawdown', left_again_as: null },
          ],
        });
        // All 16 came back: 10 to g1, 2 to g3, 3 to g2 (which was voided).
        expect(await balance()).toMatchObject({ available: '12', overage: '0' });
        const reversals = (await ledger()).filter(
          (e) => e.ref === part.json().id || e.ref === rest.json().id,
        );
        expect(reversals.map((e) => [e.type, e.amount, e.from_account, e.to_account])).toEqual([
          ['reversal', '1', 'consumed', 'overage'],
          ['reversal', '2', 'consumed', `grant:${g3.id}`],
          ['reversal', '1', 'consumed', `grant:${g2.id}`],
          ['reversal', '2', 'consumed', `grant:${g2.id}`],
          ['void', '2', `grant:${g2.id}`, 'voided'],
          ['reversal', '10', 'consumed', `grant:${g1.id}`],
        ]);
        expect((await t.post(`/v1/debits/${d.id}/reverse`, { reason: 'again' })).json().error.code).toBe(
          'nothing_to_reverse',
        );
        // Before the reversals, the balance still shows the burn.
        expect(await balance(`?at=${encodeURIComponent(iso(T0 + 1500))}`)).toMatchObject({
          available: '-1',
          overage: '1',
        });
      });

      it('reverses an event whose overage a later grant paid: the payer gets it back', async () => {
        const g1 = await grant({ amount: '2' });
        await t.post('/v1/events', [event('big', 8)]); // 4 credits: 2 from g1, 2 overage
        expect(await balance()).toMatchObject({ available: '-2', overage: '2' });
        const g2 = await grant({ amount: '5' });
        expect(await balance()).toMatchObject({ available: '3', overage: '0' });
        const res = await t.post('/v1/events/big/reverse', { reason: 'test traffic' });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json().reversals).toMatchObject([
          {
            amount: '4',
            overage_cancelled: '0',
            overage_refunded: '2',
            returned: [
              { grant_id: g2.id, amount: '2', kind: 'paid_overage' },
              { grant_id: g1.id, amount: '2', kind: 'drawdown' },
            ],
          },
        ]);
        expect(await balance()).toMatchObject({ available: '7', overage: '0' });
      });

      it("gives a debit's quantity back to its feature's usage counter: a limited feature is allowed again", async () => {
        await created(t.post('/v1/features', { id: 'exports', type: 'metered', credits_per_use: '1' }));
        await created(
          t.post('/v1/plans', {
            id: 'team',
            entitlements: [{ feature_id: 'exports', usage_limit: { amount: '3', period: 'P1D' } }],
          }),
        );
        await created(t.post('/v1/customers/acme/subscriptions', { plan_id: 'team' }));
        await grant({ amount: '100' });
        const check = async (quantity: string) => {
          const res = await t.post('/v1/check', { customer_id: 'acme', feature_id: 'exports', quantity });
          expect(res.statusCode, res.body).toBe(200);
          return res.json() as { allowed: boolean; reason: string; usage: { used: string } };
        };
        const d = await debit({ amount: '3', feature_id: 'exports', quantity: '1' });
        const other = await debit({ amount: '2', feature_id: 'exports', quantity: '2' });
        expect(await check('1')).toMatchObject({
          allowed: false,
          reason: 'limit_reached',
          usage: { used: '3' },
        });
        t.clock.advance(HOUR);
        // Fully: all of its quantity comes back.
        const full = await t.post(`/v1/debits/${other.id}/reverse`, { reason: 'wrong usage' });
        expect(full.json()).toMatchObject({ amount: '2', usage_returned: '2' });
        expect(await check('2')).toMatchObject({ allowed: true, usage: { used: '1' } });
        // In parts: the share reversed, rounded down at 12 decimals; the last part gives the rest.
        const thirds: string[] = [];
        for (let i = 0; i < 3; i++) {
          const res = await t.post(`/v1/debits/${d.id}/reverse`, { amount: '1', reason: 'wrong usage' });
          expect(res.statusCode, res.body).toBe(201);
          thirds.push(res.json().usage_returned);
        }
        expect(thirds).toEqual(['0.333333333333', '0.333333333333', '0.333333333334']);
        expect(await check('3')).toMatchObject({ allowed: true, usage: { used: '0' } });
        // A debit naming no feature stores no quantity.
        const plain = await debit({ amount: '1' });
        expect(
          (await t.post(`/v1/debits/${plain.id}/reverse`, { reason: 'x' })).json().usage_returned,
        ).toBeNull();
      });

      it('reverses a capture through its debit id', async () => {
        const g = await grant({ amount: '10' });
        const hold = await created(t.post('/v1/customers/acme/holds', { amount: '6' }));
        const capture = await created(t.post(`/v1/holds/${hold.id}/capture`, { amount: '4' }));
        expect((await balance()).available).toBe('6');
        const res = await t.post(`/v1/debits/${capture.id}/reverse`, { reason: 'service failed' });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json()).toMatchObject({ amount: '4', returned: [{ grant_id: g.id, amount: '4' }] });
        expect((await balance()).available).toBe('10');
      });

      it('reverses an event: its burns go back and it leaves meter usage and the tier usage', async () => {
        await created(
          t.post('/v1/rates', {
            id: 'tiered',
            meter_id: 'tokens',
            filter: { model: 'gpt-x' },
            tiers: [
              { up_to: '10', credits_per_unit: '1' },
              { up_to: null, credits_per_unit: '0' },
            ],
          }),
        );
        const g = await grant({ amount: '100' });
        await t.post('/v1/events', [event('u1', 8), event('u2', 4, { time: iso(T0 + 1000) })]);
        // u1: 4 (per-token) + 8 (tier 1); u2: 2 + 2 (tier 1 up to 10, then free)
        expect((await balance()).available).toBe('84');
        expect(await usage()).toMatchObject([{ value: '12' }]);
        t.clock.advance(HOUR);
        const res = await t.post('/v1/events/u1/reverse', { reason: 'test traffic' });
        expect(res.statusCode, res.body).toBe(201);
        const body = res.json();
        expect(body).toMatchObject({
          event_id: 'u1',
          customer_id: 'acme',
          reason: 'test traffic',
          reversed_at: iso(T0 + HOUR),
        });
        expect(body.reversals.map((r: { amount: string }) => r.amount).sort()).toEqual(['4', '8']);
        expect((await balance()).available).toBe('96');
        expect(await usage()).toMatchObject([{ value: '4' }]);
        const [listed] = (await t.get('/v1/events?customer_id=acme&limit=1')).json().data;
        expect(listed).toMatchObject({ id: 'u1', reversed_at: iso(T0 + HOUR) });
        for (const burn of listed.burns) expect(burn.reversed).toBe(burn.credits);
        // The tier usage left too: a new event of 6 tokens prices in tier 1 again (4 + 6 = 10).
        await t.post('/v1/events', event('u3', 6, { time: iso(T0 + 2000) }));
        expect((await balance()).available).toBe(String(96 - 3 - 6));
        // Again: 409; with an amount: 400.
        expect((await t.post('/v1/events/u1/reverse', { reason: 'again' })).json().error.code).toBe(
          'nothing_to_reverse',
        );
        const partial = await t.post('/v1/events/u2/reverse', { reason: 'x', amount: '1' });
        expect(partial.statusCode).toBe(400);
        expect(partial.json().error.details).toMatchObject({ field: 'amount' });
        // Part of an event's credits goes back through its burn's debit; the event keeps counting.
        const u2 = (await t.get('/v1/events?customer_id=acme'))
          .json()
          .data.find((e: { id: string }) => e.id === 'u2');
        const debitId = u2.burns.find((b: { rate_id: string }) => b.rate_id === 'per-token').debit_id;
        expect(
          (await t.post(`/v1/debits/${debitId}/reverse`, { amount: '1', reason: 'price fix' })).statusCode,
        ).toBe(201);
        expect(await usage()).toMatchObject([{ value: '10' }]);
        expect(g.id).toMatch(/^grt_/);
      });

      // Tampering needs direct SQL on the SQLite file; the check it proves is shared by both adapters.
      itOnSqlite(
        'reconcile fails (reversal_bounds) when a debit records more reversed than it burned, or entries disagree',
        async () => {
          await grant({ amount: '10' });
          const d = await debit({ amount: '4' });
          expect((await t.post(`/v1/debits/${d.id}/reverse`, { amount: '1', reason: 'x' })).statusCode).toBe(
            201,
          );
          const db = (
            t.storage as unknown as {
              writer: {
                prepare(sql: string): { all(...a: unknown[]): unknown[]; run(...a: unknown[]): unknown };
              };
            }
          ).writer;
          const [row] = db.prepare('SELECT reversed FROM debits WHERE id = ?').all(d.id) as {
            reversed: string;
          }[];
          const original = row!.reversed;
          const stored = JSON.parse(original) as {
            grants: [string, string][];
            history: [string, string, string, number][];
          };
          const inflated = {
            ...stored,
            grants: stored.grants.map(([g]) => [g, '5']),
            history: stored.history.map(([id, , reason, at]) => [id, '5', reason, at]),
          };
          db.prepare('UPDATE debits SET reversed = ? WHERE id = ?').run(JSON.stringify(inflated), d.id);
          const report = await reconcileLedger(t.storage);
          expect(report.failures.map((f) => f.check)).toEqual(['reversal_bounds', 'reversal_bounds']);
          expect(report.failures.map((f) => f.message).join('\n')).toMatch(
            /back to grt_.*which gave 4[\s\S]*entries of/,
          );
          // A refund of paid overage to a grant that never paid debt is caught too.
          const refunded = {
            ...stored,
            overage: '1',
            grants: [],
            paid: stored.grants.map(([g]) => [g, '1']),
          };
          db.prepare('UPDATE debits SET reversed = ? WHERE id = ?').run(JSON.stringify(refunded), d.id);
          const messages = (await reconcileLedger(t.storage)).failures.map((f) => f.message).join('\n');
          expect(messages).toMatch(/overage reversed 1/);
          expect(messages).toMatch(/grant grt_\S+ was refunded 1 of paid overage but paid 0/);
          db.prepare('UPDATE debits SET reversed = ? WHERE id = ?').run(original, d.id);
        },
      );

      it('reverses an unmetered event (nothing burned): it only leaves the listing of counting events', async () => {
        await t.post('/v1/events', event('nv', undefined));
        const res = await t.post('/v1/events/nv/reverse', { reason: 'junk' });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json().reversals).toEqual([]);
        const [listed] = (await t.get('/v1/events')).json().data;
        expect(listed).toMatchObject({ id: 'nv', status: 'unmetered', reversed_at: expect.any(String) });
      });
    });
  });
}
