import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/*
 * Metering and rating over HTTP against the contract (docs/api.md "Usage events", "Meters", "Rates";
 * docs/design.md "Metering and rating", Finance (d)). Every test ends with a passing reconciliation.
 */

interface LedgerEntry {
  id: string;
  type: string;
  amount: string;
  ref: string | null;
  balance_after: string;
}

/** The in-memory SQLite connection behind the test app (for checks and deliberate corruption). */
const db = (t: TestApp) =>
  (
    t.storage as unknown as {
      writer: {
        prepare(sql: string): { all(...a: unknown[]): unknown[]; run(...a: unknown[]): { changes: number } };
      };
    }
  ).writer;

const burnsOf = (t: TestApp) =>
  db(t)
    .prepare(
      'SELECT event_key, rate_id, customer_id, quantity, credits FROM event_burns ORDER BY event_key, rate_id',
    )
    .all() as {
    event_key: string;
    rate_id: string;
    customer_id: string;
    quantity: string;
    credits: string;
  }[];
const eventCount = (t: TestApp) =>
  (db(t).prepare('SELECT COUNT(*) AS n FROM events').all()[0] as { n: number }).n;

async function balance(t: TestApp, customer: string, creditType = 'credits') {
  const res = await t.get(`/v1/customers/${customer}/balance?credit_type=${creditType}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { available: string; overage: string; held: string };
}

async function ledger(t: TestApp, customer: string, creditType = 'credits'): Promise<LedgerEntry[]> {
  const res = await t.get(`/v1/customers/${customer}/ledger?credit_type=${creditType}&limit=1000`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().data;
}

/** Credits burned per debit (debit + overage entries share the debit's ref), in ledger order. */
async function burnedPerDebit(t: TestApp, customer: string, creditType = 'credits'): Promise<string[]> {
  const sums = new Map<string, bigint>();
  for (const e of await ledger(t, customer, creditType)) {
    if (e.type !== 'debit' && e.type !== 'overage') continue;
    const [int = '0', frac = ''] = e.amount.split('.');
    const units = BigInt(int) * 10n ** 12n + BigInt(frac.padEnd(12, '0'));
    sums.set(e.ref ?? e.id, (sums.get(e.ref ?? e.id) ?? 0n) + units);
  }
  return [...sums.values()].map((units) => {
    const int = units / 10n ** 12n;
    const frac = (units % 10n ** 12n).toString().padStart(12, '0').replace(/0+$/, '');
    return frac ? `${int}.${frac}` : `${int}`;
  });
}

async function usage(t: TestApp, query: string) {
  const res = await t.get(`/v1/meters/tokens/usage?${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return (
    res.json() as { data: { window_start: string; window_end: string; value: string; group: object }[] }
  ).data;
}

const ok201 = async (res: Promise<{ statusCode: number; body: string }>) => {
  const r = await res;
  expect(r.statusCode, r.body).toBe(201);
};

describe('metering and rating over HTTP', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await createTestApp();
    await ok201(t.post('/v1/customers', { id: 'acme' }));
    await ok201(t.post('/v1/customers', { id: 'beta' }));
    await ok201(t.post('/v1/customers/acme/grants', { amount: '1000' }));
    await ok201(
      t.post('/v1/meters', {
        id: 'tokens',
        event_type: 'llm.tokens',
        aggregation: 'sum',
        value_property: '$.tokens',
        group_by: { model: '$.model', kind: '$.kind' },
      }),
    );
  });

  afterEach(async () => {
    const report = await reconcileLedger(t.storage);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    await t.close();
  });

  const event = (id: string, tokens: unknown, extra: Record<string, unknown> = {}, data: object = {}) => ({
    id,
    type: 'llm.tokens',
    customer_id: 'acme',
    time: '2026-01-01T10:00:00Z',
    data: { model: 'gpt-x', kind: 'output', tokens, ...data },
    ...extra,
  });

  it('a mixed batch: exact accepted/duplicate/rejected outcomes, every valid event kept and burned once, replay changes nothing', async () => {
    await ok201(
      t.post('/v1/rates', {
        id: 'out',
        meter_id: 'tokens',
        filter: { model: 'gpt-x', kind: 'output' },
        credits_per_unit: '0.002',
      }),
    );
    await ok201(
      t.post('/v1/rates', {
        id: 'in',
        meter_id: 'tokens',
        filter: { kind: 'input' },
        package: { size: '1000', credits: '1' },
      }),
    );
    const previous = await t.post('/v1/events', event('prev-1', 100));
    expect(previous.json()).toEqual({ accepted: 1, duplicates: 0, unmetered: 0, rejected: [] });

    const valid = (id: string, tokens: number, kind = 'output', more: Record<string, unknown> = {}) =>
      event(id, tokens, more, { kind });
    const { id: _dropId, ...withoutId } = valid('x', 1);
    const { type: _dropType, ...withoutType } = valid('no-type', 1);
    const { customer_id: _dropCustomer, ...withoutCustomer } = valid('no-customer', 1);
    const { data: _dropData, ...withoutData } = valid('no-data', 1);
    const batch: unknown[] = [
      /* 0 */ valid('e1', 1000), // out: 2
      /* 1 */ 42,
      /* 2 */ withoutId,
      /* 3 */ { ...valid('x', 1), id: '' },
      /* 4 */ { ...valid('x', 1), id: 123 },
      /* 5 */ { ...valid('x', 1), id: 'x'.repeat(257) },
      /* 6 */ withoutType,
      /* 7 */ { ...valid('bad-type', 1), type: 7 },
      /* 8 */ withoutCustomer,
      /* 9 */ { ...valid('bad-customer', 1), customer_id: 'not a valid id!' },
      /* 10 */ { ...valid('null-time', 1), time: null }, // time may be left out, not null
      /* 11 */ { ...valid('bad-time', 1), time: 'yesterday' },
      /* 12 */ { ...valid('impossible-time', 1), time: '2026-02-30T00:00:00Z' },
      /* 13 */ { ...valid('number-time', 1), time: 1767225600000 },
      /* 14 */ withoutData,
      /* 15 */ { ...valid('array-data', 1), data: [1, 2] },
      /* 16 */ { ...valid('string-data', 1), data: '{"tokens":1}' },
      /* 17 */ { ...valid('null-data', 1), data: null },
      /* 18 */ valid('e1', 999_999), // duplicate inside the batch, whatever its body
      /* 19 */ { ...valid('ghost', 5000), customer_id: 'nobody' },
      /* 20 */ valid('prev-1', 777), // duplicate of an earlier batch
      /* 21 */ valid('e2', 1500, 'input'), // in: 2 packages = 2
      /* 22 */ { ...valid('e3', 500), customer_id: 'beta' }, // out: 1 (beta has no grant → overage)
      /* 23 */ valid('late', 250, 'output', { time: '2025-06-01T08:00:00Z' }), // late: out 0.5
      /* 24 */ { ...valid('other-type', 100), type: 'other.type' }, // no meter: stored, not burned
      /* 25 */ valid('ghost', 300), // the id an unknown customer could not claim: accepted, out 0.6
      /* 26 */ { ...valid('later-valid', 1), time: 'soon' }, // invalid…
      /* 27 */ valid('later-valid', 50), // …so the same id here is new: out 0.1
      /* 28 */ { ...valid('e1', 10), customer_id: 'beta' }, // same id, other customer: still a duplicate
      /* 29 */ valid('unpriced', 80, 'output', { data: { model: 'other', kind: 'output', tokens: 80 } }), // no rate
      /* 30 */ valid('no-value', 0, 'output', { data: { model: 'gpt-x', kind: 'output' } }), // kept, not metered
    ];
    const res = await t.post('/v1/events', batch);
    expect(res.statusCode, res.body).toBe(202);
    const body = res.json() as {
      accepted: number;
      duplicates: number;
      unmetered: number;
      rejected: { index: number; error: { code: string; message: string } }[];
    };
    const invalidIndexes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 26];
    expect(body.rejected.map((r) => [r.index, r.error.code])).toEqual(
      [...invalidIndexes.map((i) => [i, 'invalid_event']), [19, 'customer_not_found']].sort(
        (x, y) => +x[0]! - +y[0]!,
      ),
    );
    for (const r of body.rejected) expect(r.error.message).toEqual(expect.any(String));
    expect(body.duplicates).toBe(3); // 18, 20, 28
    expect(body.accepted).toBe(9); // 0, 21, 22, 23, 24, 25, 27, 29, 30
    expect(body.unmetered).toBe(2); // 24 (no meter for its type), 30 (no value to read)
    expect(body.accepted + body.duplicates + body.rejected.length).toBe(batch.length);
    expect(eventCount(t)).toBe(10); // prev-1 + the 9 accepted

    // Burns: exactly one per (accepted event, matching rate).
    expect(burnsOf(t).map((b) => [b.event_key, b.rate_id, b.customer_id, b.quantity, b.credits])).toEqual([
      ['id:e1', 'out', 'acme', '1000', '2'],
      ['id:e2', 'in', 'acme', '1500', '2'],
      ['id:e3', 'out', 'beta', '500', '1'],
      ['id:ghost', 'out', 'acme', '300', '0.6'],
      ['id:late', 'out', 'acme', '250', '0.5'],
      ['id:later-valid', 'out', 'acme', '50', '0.1'],
      ['id:prev-1', 'out', 'acme', '100', '0.2'],
    ]);
    const acmeBurned = ['0.2', '2', '2', '0.5', '0.6', '0.1']; // prev-1, then the batch in index order
    expect((await burnedPerDebit(t, 'acme')).sort()).toEqual([...acmeBurned].sort());
    expect((await balance(t, 'acme')).available).toBe('994.6'); // 1000 − 5.4
    expect(await balance(t, 'beta')).toMatchObject({ available: '-1', overage: '1' });

    // Meter usage reflects exactly the valid events (the duplicates' bodies are ignored).
    expect(await usage(t, 'customer_id=acme&window=month&group_by=kind,model')).toEqual([
      {
        window_start: '2025-06-01T00:00:00.000Z',
        window_end: '2025-07-01T00:00:00.000Z',
        value: '250',
        group: { kind: 'output', model: 'gpt-x' },
      },
      {
        window_start: '2026-01-01T00:00:00.000Z',
        window_end: '2026-02-01T00:00:00.000Z',
        value: '1500',
        group: { kind: 'input', model: 'gpt-x' },
      },
      {
        window_start: '2026-01-01T00:00:00.000Z',
        window_end: '2026-02-01T00:00:00.000Z',
        value: '1450', // prev-1 100 + e1 1000 + ghost 300 + later-valid 50
        group: { kind: 'output', model: 'gpt-x' },
      },
      {
        window_start: '2026-01-01T00:00:00.000Z',
        window_end: '2026-02-01T00:00:00.000Z',
        value: '80',
        group: { kind: 'output', model: 'other' },
      },
    ]);
    expect(await usage(t, 'customer_id=beta&window=day')).toEqual([
      {
        window_start: '2026-01-01T00:00:00.000Z',
        window_end: '2026-01-02T00:00:00.000Z',
        value: '500',
        group: {},
      },
    ]);

    // Replaying the whole batch changes nothing.
    const entriesBefore = await ledger(t, 'acme');
    const replay = await t.post('/v1/events', batch);
    expect(replay.statusCode, replay.body).toBe(202);
    expect(replay.json()).toEqual({ accepted: 0, duplicates: 12, unmetered: 0, rejected: body.rejected });
    expect(eventCount(t)).toBe(10);
    expect(burnsOf(t)).toHaveLength(7);
    expect(await ledger(t, 'acme')).toEqual(entriesBefore);
    expect((await balance(t, 'acme')).available).toBe('994.6');
    expect((await balance(t, 'beta')).available).toBe('-1');
    expect(await usage(t, 'customer_id=acme&window=month')).toEqual([
      expect.objectContaining({ value: '250' }),
      expect.objectContaining({ value: '3030' }),
    ]);
  });

  it('a batch of 10,001 events is refused whole with 413 payload_too_large; 10,000 is accepted', async () => {
    await ok201(t.post('/v1/meters', { id: 'calls', event_type: 'u', aggregation: 'count' }));
    await ok201(t.post('/v1/rates', { id: 'per-call', meter_id: 'calls', credits_per_unit: '0.001' }));
    const small = (i: number) => ({
      id: `b${i}`,
      type: 'u',
      customer_id: 'acme',
      time: '2026-01-01T00:00:00Z',
      data: {},
    });
    const tooMany = Array.from({ length: 10_001 }, (_, i) => small(i));
    const payload = JSON.stringify(tooMany);
    expect(payload.length).toBeLessThan(1024 * 1024); // the count limit, not the body limit, refuses it
    const res = await t.post('/v1/events', payload);
    expect(res.statusCode, res.body).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
    expect(eventCount(t)).toBe(0);
    expect(burnsOf(t)).toEqual([]);
    expect((await balance(t, 'acme')).available).toBe('1000');
    expect((await t.get('/v1/meters/calls/usage?window=day')).json()).toEqual({
      data: [],
      next_cursor: null,
    });
    // The same through CloudEvents batched mode.
    const ce = await t.post(
      '/v1/events',
      tooMany.map((e) => ({
        specversion: '1.0',
        id: e.id,
        source: 's',
        type: e.type,
        subject: 'acme',
        data: e.data,
      })),
      { 'content-type': 'application/cloudevents-batch+json' },
    );
    expect(ce.statusCode, ce.body).toBe(413);
    expect(eventCount(t)).toBe(0);

    const res10k = await t.post('/v1/events', tooMany.slice(0, 10_000));
    expect(res10k.statusCode, res10k.body).toBe(202);
    expect(res10k.json()).toEqual({ accepted: 10_000, duplicates: 0, unmetered: 0, rejected: [] });
    expect(eventCount(t)).toBe(10_000);
    expect((await balance(t, 'acme')).available).toBe('990');
    expect((await t.get('/v1/meters/calls/usage?window=day')).json().data).toEqual([
      expect.objectContaining({ window_start: '2026-01-01T00:00:00.000Z', value: '10000' }),
    ]);
  });

  it('graduated tiers: crossing boundaries inside one event, restarting at tier 1 in a new UTC month, late events in their own period', async () => {
    await ok201(
      t.post('/v1/rates', {
        id: 'tiered',
        meter_id: 'tokens',
        tiers: [
          { up_to: '1000', credits_per_unit: '0.01' },
          { up_to: '5000', credits_per_unit: '0.005' },
          { up_to: null, credits_per_unit: '0.001' },
        ],
      }),
    );
    t.clock.set(Date.parse('2026-02-02T00:00:00Z'));
    const at = (id: string, tokens: number, time: string) => event(id, tokens, { time });
    const send = async (...events: unknown[]) => {
      const res = await t.post('/v1/events', events);
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json().accepted).toBe(events.length);
    };
    await send(at('jan-1', 800, '2026-01-10T12:00:00Z')); // 800 × 0.01 = 8
    // 4700 more in one event: 200 × 0.01 + 4000 × 0.005 + 500 × 0.001 = 2 + 20 + 0.5
    await send(at('jan-2', 4700, '2026-01-31T23:59:59.999Z'));
    // February restarts at tier 1: 1000 × 0.01 + 500 × 0.005 = 12.5
    await send(at('feb-1', 1500, '2026-02-01T00:00:00.000Z'));
    // A late January event is priced on January's usage (5500 before: last tier): 100 × 0.001
    await send(at('jan-late', 100, '2026-01-15T00:00:00Z'));
    // Several events of one batch accumulate: 3500 × 0.005 = 17.5, then 1000 × 0.001 = 1
    await send(at('feb-2', 3500, '2026-02-01T10:00:00Z'), at('feb-3', 1000, '2026-02-01T11:00:00Z'));
    // A February event in +01:00 that is still January 31 in UTC belongs to January.
    await send(at('jan-tz', 10, '2026-02-01T00:30:00+01:00')); // 10 × 0.001

    expect(await burnedPerDebit(t, 'acme')).toEqual(['8', '22.5', '12.5', '0.1', '17.5', '1', '0.01']);
    expect(burnsOf(t).map((b) => [b.event_key, b.quantity, b.credits])).toEqual([
      ['id:feb-1', '1500', '12.5'],
      ['id:feb-2', '3500', '17.5'],
      ['id:feb-3', '1000', '1'],
      ['id:jan-1', '800', '8'],
      ['id:jan-2', '4700', '22.5'],
      ['id:jan-late', '100', '0.1'],
      ['id:jan-tz', '10', '0.01'],
    ]);
    const entries = await ledger(t, 'acme');
    expect(entries.filter((e) => e.type === 'debit').map((e) => e.balance_after)).toEqual([
      '992',
      '969.5',
      '957',
      '956.9',
      '939.4',
      '938.4',
      '938.39',
    ]);
    expect((await balance(t, 'acme')).available).toBe('938.39');
    // A quote prices on the current period's usage (February: 6000 so far) and writes nothing.
    const quote = await t.post('/v1/quote', {
      customer_id: 'acme',
      events: [{ type: 'llm.tokens', data: { model: 'gpt-x', kind: 'output', tokens: 2000 } }],
    });
    expect(quote.json()).toMatchObject({
      credits: '2',
      lines: [{ rate_id: 'tiered', quantity: '2000', credits: '2' }],
    });
    expect((await balance(t, 'acme')).available).toBe('938.39');
    expect(burnsOf(t)).toHaveLength(7);
  });

  it('every rate that matches an event burns it once, each in its own credit type', async () => {
    await ok201(t.post('/v1/credit-types', { id: 'gpu' }));
    await ok201(
      t.post('/v1/rates', {
        id: 'r-unit',
        meter_id: 'tokens',
        filter: { model: 'gpt-x' },
        credits_per_unit: '0.002',
      }),
    );
    await ok201(
      t.post('/v1/rates', { id: 'r-pkg', meter_id: 'tokens', package: { size: '1000', credits: '1' } }),
    );
    await ok201(
      t.post('/v1/rates', {
        id: 'r-tier',
        meter_id: 'tokens',
        filter: { kind: 'output' },
        tiers: [
          { up_to: '1000', credits_per_unit: '0.01' },
          { up_to: null, credits_per_unit: '0.005' },
        ],
      }),
    );
    await ok201(
      t.post('/v1/rates', { id: 'r-gpu', meter_id: 'tokens', credit_type: 'gpu', credits_per_unit: '1' }),
    );
    await ok201(
      t.post('/v1/rates', {
        id: 'r-miss',
        meter_id: 'tokens',
        filter: { model: 'other' },
        credits_per_unit: '5',
      }),
    );

    const res = await t.post('/v1/events', [
      event('multi', 1500),
      event('input-only', 200, {}, { kind: 'input' }),
    ]);
    expect(res.json()).toEqual({ accepted: 2, duplicates: 0, unmetered: 0, rejected: [] });
    expect(burnsOf(t).map((b) => [b.event_key, b.rate_id, b.credits])).toEqual([
      ['id:input-only', 'r-gpu', '200'],
      ['id:input-only', 'r-pkg', '1'],
      ['id:input-only', 'r-unit', '0.4'],
      ['id:multi', 'r-gpu', '1500'],
      ['id:multi', 'r-pkg', '2'],
      ['id:multi', 'r-tier', '12.5'], // 1000 × 0.01 + 500 × 0.005
      ['id:multi', 'r-unit', '3'],
    ]);
    expect((await burnedPerDebit(t, 'acme')).sort()).toEqual(['0.4', '1', '12.5', '2', '3'].sort());
    expect((await balance(t, 'acme')).available).toBe('981.1'); // 1000 − 18.9
    expect(await balance(t, 'acme', 'gpu')).toMatchObject({ available: '-1700', overage: '1700' });
    // Re-sending changes nothing.
    expect((await t.post('/v1/events', [event('multi', 1500)])).json()).toMatchObject({
      accepted: 0,
      duplicates: 1,
    });
    expect(burnsOf(t)).toHaveLength(7);
    expect((await balance(t, 'acme')).available).toBe('981.1');
  });

  it('refuses a rate on a max or unique_count meter with 400, accepts one on a count meter', async () => {
    for (const aggregation of ['max', 'unique_count'] as const) {
      await ok201(
        t.post('/v1/meters', {
          id: `m-${aggregation}`,
          event_type: 'llm.tokens',
          aggregation,
          value_property: '$.tokens',
        }),
      );
      const res = await t.post('/v1/rates', {
        id: `r-${aggregation}`,
        meter_id: `m-${aggregation}`,
        credits_per_unit: '1',
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
      expect((await t.get(`/v1/rates/r-${aggregation}`)).statusCode).toBe(404);
    }
    await ok201(t.post('/v1/meters', { id: 'm-count', event_type: 'llm.tokens', aggregation: 'count' }));
    await ok201(t.post('/v1/rates', { id: 'r-count', meter_id: 'm-count', credits_per_unit: '0.5' }));
    await t.post('/v1/events', [event('c1', 10), event('c2', 20)]);
    expect((await balance(t, 'acme')).available).toBe('999');
  });

  it('reconciliation check (d) fails when a burn is missing, or when an event has a burn no rate matches', async () => {
    await ok201(
      t.post('/v1/rates', {
        id: 'out',
        meter_id: 'tokens',
        filter: { kind: 'output' },
        credits_per_unit: '0.002',
      }),
    );
    t.clock.advance(1000); // events clearly after the rate: each must have its burn
    await t.post('/v1/events', [event('r1', 100), event('r2', 200), event('r3', 300, {}, { kind: 'input' })]);
    expect((await reconcileLedger(t.storage)).ok).toBe(true);

    const [removed] = db(t)
      .prepare("SELECT * FROM event_burns WHERE event_key = 'id:r2' AND rate_id = 'out'")
      .all() as Record<string, unknown>[];
    expect(removed).toBeDefined();
    expect(
      db(t).prepare("DELETE FROM event_burns WHERE event_key = 'id:r2' AND rate_id = 'out'").run().changes,
    ).toBe(1);
    const missing = await reconcileLedger(t.storage);
    expect(missing.ok).toBe(false);
    expect(missing.failures).toEqual([
      expect.objectContaining({ check: 'event_burn', workspaceId: 'default', customerId: 'acme' }),
    ]);
    expect(missing.failures[0]!.message).toContain('id:r2');

    // Put it back: reconciliation passes again.
    const columns = Object.keys(removed!);
    const insert = `INSERT INTO event_burns (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    db(t)
      .prepare(insert)
      .run(...columns.map((c) => removed![c]));
    expect((await reconcileLedger(t.storage)).ok).toBe(true);

    // A burn of an event the rate does not match (r3 is an input event) is caught too.
    db(t)
      .prepare(insert)
      .run(...columns.map((c) => (c === 'event_key' ? 'id:r3' : removed![c])));
    const extra = await reconcileLedger(t.storage);
    expect(extra.failures).toEqual([expect.objectContaining({ check: 'event_burn' })]);
    expect(extra.failures[0]!.message).toContain('id:r3');
    db(t).prepare("DELETE FROM event_burns WHERE event_key = 'id:r3'").run();
  });

  it('reconciliation check (d) does not demand a burn from an event stored before its rate existed, even in the same millisecond', async () => {
    // The clock does not move: the event and the rate share one millisecond, but the event was
    // stored (and rated against the rules of that moment) before the rate was created.
    const res = await t.post('/v1/events', event('before-rate', 100));
    expect(res.json()).toMatchObject({ accepted: 1 });
    await ok201(t.post('/v1/rates', { id: 'later', meter_id: 'tokens', credits_per_unit: '0.002' }));
    expect(burnsOf(t)).toEqual([]);
    const report = await reconcileLedger(t.storage);
    // A backfill applies it once; then the event has its one burn.
    expect((await t.post('/v1/backfills', { rate_id: 'later' })).json()).toMatchObject({ burned: 1 });
    expect(burnsOf(t)).toHaveLength(1);
    // Before the backfill, the event had no burn by a rate created after it was stored: no failure.
    expect(report.failures).toEqual([]);
  });
});
