import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger } from '../../src/domain/ledger/credit-ledger.js';
import { noteLoaded } from '../../src/services/balance-facts.js';
import { customerLockKey, DEFAULT_WORKSPACE } from '../../src/services/context.js';
import { persistLedger } from '../../src/services/ledger-persistence.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { expectErrorEnvelope } from '../fixtures/bad-input.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { newGrant } from '../fixtures/grants.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

/**
 * Regression tests of the hardening issue's items 1, 2, 5, 6 and 13, on every dialect: values
 * past the amount range, deep nesting, NUL characters and the contract's edges. Each refusal is
 * a 4xx with its stable code, changes nothing, and leaves every read path and the books intact.
 */

const deep = (levels: number, leaf: unknown = 1): unknown => {
  let value: unknown = leaf;
  for (let i = 0; i < levels; i += 1) value = { a: value };
  return value;
};
/** JSON text of {@link deep}, written without JSON.stringify (which overflows near 5,000 levels). */
const deepText = (levels: number): string => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
/** A JSON body with `marker` replaced by raw JSON text (too deep to stringify). */
const withRaw = (value: unknown, raw: string): string => JSON.stringify(value).replace('"@RAW@"', raw);

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field
async function expectStatus(res: Promise<LightMyRequestResponse>, status: number): Promise<any> {
  const r = await res;
  expect(r.statusCode, r.payload.slice(0, 400)).toBe(status);
  return r.json();
}

/** Every read of a customer and the workspace answers 200, and the books reconcile. */
async function expectReadable(t: TestApp, customerId: string): Promise<void> {
  for (const url of [
    `/v1/customers/${customerId}`,
    `/v1/customers/${customerId}/balance`,
    `/v1/customers/${customerId}/ledger?limit=1000`,
    `/v1/customers/${customerId}/grants`,
    '/v1/reconciliation',
  ]) {
    const res = await t.get(url);
    expect(res.statusCode, `${url}: ${res.payload.slice(0, 300)}`).toBe(200);
  }
  const report = await reconcileLedger(t.storage);
  expect(report.failures).toEqual([]);
  expect(report.ok).toBe(true);
}

/**
 * Brings a customer's `issued` and `consumed` to 10^30 − 10^20 + 1, just under the account range
 * (no client request can: one value has at most 20 integer digits), through the same ledger engine
 * and persistence the services use.
 */
async function seedNearAccountRange(t: TestApp, customerId: string): Promise<void> {
  const nearLimit = Amount.parse(`${'9'.repeat(30)}`).minus(Amount.parse('99999999999999999998'));
  await t.storage.write(customerLockKey(DEFAULT_WORKSPACE, customerId), async (tx) => {
    const key = { workspaceId: DEFAULT_WORKSPACE, customerId, creditType: 'credits' };
    const snapshot = await tx.loadLedgerForUpdate(key);
    const ledger = new CreditLedger(snapshot, t.ctx.ids);
    const loaded = noteLoaded(ledger);
    ledger.advanceTo(T0);
    ledger.grant(newGrant(nearLimit, T0, { category: 'promotional' }), T0);
    const debit = ledger.debit({ amount: nearLimit, allowOverage: false }, T0);
    expect('refused' in debit).toBe(false);
    await persistLedger(t.ctx, tx, DEFAULT_WORKSPACE, ledger, T0, loaded);
  });
}

/** What a client can observe of a customer (to prove a refusal changed nothing). */
async function observe(t: TestApp, customerId: string): Promise<unknown> {
  return {
    balance: (await t.get(`/v1/customers/${customerId}/balance`)).json(),
    ledger: (await t.get(`/v1/customers/${customerId}/ledger?limit=1000`)).json(),
  };
}

const THIRTY_SIX_DIGITS = `1${'0'.repeat(35)}`;

describe.each(DIALECTS)('extreme input ($name)', (dialect) => {
  let t: TestApp;

  beforeEach(async () => {
    t = await createTestApp({ storage: await dialect.open() });
    await expectStatus(t.post('/v1/customers', { id: 'acme' }), 201);
    await expectStatus(t.post('/v1/customers/acme/grants', { amount: '1000' }), 201);
    await expectStatus(
      t.post('/v1/meters', { id: 'm', event_type: 'use', aggregation: 'sum', value_property: '$.n' }),
      201,
    );
  });

  afterEach(async () => {
    await t.close();
  });

  const event = (id: string, n: unknown, time = '2026-01-01T00:00:00Z') => ({
    id,
    type: 'use',
    customer_id: 'acme',
    time,
    data: { n },
  });

  it('item 1: an event whose value or price leaves the value range is rejected alone; the customer stays readable', async () => {
    await expectStatus(t.post('/v1/rates', { id: 'one', meter_id: 'm', credits_per_unit: '1' }), 201);
    await expectStatus(t.post('/v1/rates', { id: 'ten', meter_id: 'm', credits_per_unit: '10' }), 201);
    const body = await expectStatus(
      t.post('/v1/events', [
        event('ok-1', 5),
        event('big-36a', THIRTY_SIX_DIGITS),
        event('big-36b', THIRTY_SIX_DIGITS),
        event('big-1e35', 1e35),
        event('big-37', `1${'0'.repeat(36)}`),
        // 10^19 is in range, but the rate of 10 prices it at 10^20: past the value range.
        event('price-too-big', '10000000000000000000'),
        event('ok-2', '7.5'),
      ]),
      202,
    );
    expect(body.accepted).toBe(2);
    expect(
      body.rejected.map((r: { index: number; error: { code: string } }) => [r.index, r.error.code]),
    ).toEqual([
      [1, 'value_out_of_range'],
      [2, 'value_out_of_range'],
      [3, 'value_out_of_range'],
      [4, 'value_out_of_range'],
      [5, 'value_out_of_range'],
    ]);
    // The two valid events burned 12.5 × (1 + 10); nothing of the others is stored.
    const balance = await expectStatus(t.get('/v1/customers/acme/balance'), 200);
    expect(balance.available).toBe('862.5');
    const usage = await expectStatus(t.get('/v1/meters/m/usage?customer_id=acme&window=month'), 200);
    expect(usage.data.map((row: { value: string }) => row.value)).toEqual(['12.5']);
    // A quote of such an event is a 422, not a 500.
    expectErrorEnvelope(
      await t.post('/v1/quote', {
        customer_id: 'acme',
        events: [{ type: 'use', data: { n: THIRTY_SIX_DIGITS } }],
      }),
      422,
      'amount_out_of_range',
    );
    // The rejected events can be sent again later with a value in range.
    const retry = await expectStatus(t.post('/v1/events', [event('big-36a', 1)]), 202);
    expect(retry.accepted).toBe(1);
    await expectStatus(t.post('/v1/customers/acme/debits', { amount: '1' }), 201);
    await expectReadable(t, 'acme');
  });

  it('item 1: a package or tiered price past the value range is rejected alone', async () => {
    await expectStatus(
      t.post('/v1/rates', {
        id: 'pkg',
        meter_id: 'm',
        package: { size: '0.000000000001', credits: '99999999999999999999' },
      }),
      201,
    );
    const body = await expectStatus(
      t.post('/v1/events', [event('tiny', '0.000000000001'), event('two', '0.000000000002')]),
      202,
    );
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([
      { index: 1, error: expect.objectContaining({ code: 'value_out_of_range' }) },
    ]);
    await expectReadable(t, 'acme');
  });

  it('item 1: a write that would carry an account past 10^30 is 422 amount_out_of_range and changes nothing', async () => {
    await seedNearAccountRange(t, 'acme');
    await expectReadable(t, 'acme');
    const before = await observe(t, 'acme');
    // `issued` and `consumed` are near 10^30: one more maximal grant or debit would pass it.
    expectErrorEnvelope(
      await t.post('/v1/customers/acme/grants', { amount: '99999999999999999999' }),
      422,
      'amount_out_of_range',
    );
    expectErrorEnvelope(
      await t.post('/v1/customers/acme/debits', { amount: '99999999999999999999', allow_overage: true }),
      422,
      'amount_out_of_range',
    );
    await expectStatus(t.post('/v1/rates', { id: 'one', meter_id: 'm', credits_per_unit: '1' }), 201);
    // The only event of the batch is rejected, so the batch is a 400 invalid_batch.
    const events = await expectStatus(t.post('/v1/events', [event('e-big', '99999999999999999999')]), 400);
    expect(events.rejected).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'value_out_of_range' }) },
    ]);
    expect(await observe(t, 'acme')).toEqual(before);
    // In a batch, only the event that would pass the range is refused: the customer's smaller
    // event and another customer's event are kept.
    await expectStatus(t.post('/v1/customers', { id: 'beta' }), 201);
    const batch = await expectStatus(
      t.post('/v1/events', [
        event('e-big-2', '99999999999999999999'),
        event('e-small', '2'),
        { ...event('e-beta', '99999999999999999999'), customer_id: 'beta' },
      ]),
      202,
    );
    expect(batch.accepted).toBe(2);
    expect(batch.rejected).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'value_out_of_range' }) },
    ]);
    await expectReadable(t, 'beta');
    // Smaller writes still go through.
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('998');
    await expectStatus(t.post('/v1/customers/acme/grants', { amount: '1' }), 201);
    await expectStatus(t.post('/v1/customers/acme/debits', { amount: '1' }), 201);
    await expectReadable(t, 'acme');
  });

  it('item 1: only new events reserve: a duplicate near the account range is a duplicate, and an id refused in a batch gets its next occurrence', async () => {
    await seedNearAccountRange(t, 'acme');
    await expectStatus(t.post('/v1/rates', { id: 'one', meter_id: 'm', credits_per_unit: '1' }), 201);
    // About 10^20 of room is left in `consumed`: 9 × 10^19 of it goes to one event.
    const first = await expectStatus(t.post('/v1/events', [event('x-1', '90000000000000000000')]), 202);
    expect(first.accepted).toBe(1);
    // Sent again, it is a duplicate (it burns nothing again, so its size no longer matters), and it
    // takes no room from the new event after it.
    const again = await expectStatus(
      t.post('/v1/events', [event('x-1', '90000000000000000000'), event('x-2', '5000000000000000000')]),
      202,
    );
    expect(again).toMatchObject({ accepted: 1, duplicates: 1, rejected: [] });
    // The same new id twice: the first occurrence does not fit and is refused; the second, small,
    // is the one stored (as if the first had never been sent), and nothing of the first remains.
    const before = await observe(t, 'acme');
    const twice = await expectStatus(
      t.post('/v1/events', [event('y', '90000000000000000000'), event('y', '1')]),
      202,
    );
    expect(twice).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(twice.rejected).toEqual([
      { index: 0, error: expect.objectContaining({ code: 'value_out_of_range' }) },
    ]);
    const listed = (await t.get('/v1/events?customer_id=acme&limit=100')).json().data as {
      id: string;
      data: { n: unknown };
      duplicates: number;
      burns: { credits: string }[];
    }[];
    const ys = listed.filter((e) => e.id === 'y');
    expect(ys).toHaveLength(1);
    expect(ys[0]).toMatchObject({ data: { n: '1' }, duplicates: 0, burns: [{ credits: '1' }] });
    const after = (await t.get('/v1/customers/acme/balance')).json();
    expect(after.available).toBe(
      Amount.parse((before as { balance: { available: string } }).balance.available)
        .minus(Amount.parse('1'))
        .toString(),
    );
    await expectReadable(t, 'acme');
  });

  it('items 2 and 5: an event nested 10,000 deep is rejected alone; the three valid ones are kept', async () => {
    await expectStatus(t.post('/v1/rates', { id: 'one', meter_id: 'm', credits_per_unit: '1' }), 201);
    const nested = { ...event('deep', 1), data: { n: 1, x: '@RAW@' } };
    const batch = withRaw([event('a', 1), event('b', 2), event('c', 3), nested], deepText(10_000));
    const body = await expectStatus(t.post('/v1/events', batch, { 'idempotency-key': 'deep-batch' }), 202);
    expect(body.accepted).toBe(3);
    expect(body.rejected).toEqual([{ index: 3, error: expect.objectContaining({ code: 'invalid_event' }) }]);
    expect(body.rejected[0].error.message).toContain('32 levels');
    // Data nested to the limit is fine (the event is level 1, data 2, x's objects 3 … 32).
    const atLimit = await expectStatus(
      t.post('/v1/events', [{ ...event('d', 1), data: { n: 1, x: deep(30) } }]),
      202,
    );
    expect(atLimit.accepted).toBe(1);
    const overLimit = await expectStatus(
      t.post('/v1/events', [{ ...event('e', 1), data: { n: 1, x: deep(31) } }]),
      400,
    );
    expect(overLimit.rejected).toHaveLength(1);
    // CloudEvents whose data is JSON text are checked too.
    const ce = await expectStatus(
      t.request({
        method: 'POST',
        url: '/v1/events',
        headers: { 'content-type': 'application/cloudevents+json' },
        payload: JSON.stringify({
          specversion: '1.0',
          id: 'ce-deep',
          source: 's',
          type: 'use',
          subject: 'acme',
          data: deepText(10_000),
        }),
      }),
      400,
    );
    expect(ce.rejected).toEqual([{ index: 0, error: expect.objectContaining({ code: 'invalid_event' }) }]);
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('993');
    await expectReadable(t, 'acme');
  });

  it('item 5: deep nesting anywhere else is 400 invalid_request naming the limit, and nothing is stored', async () => {
    const cases: [string, string][] = [
      ['/v1/customers', withRaw({ id: 'deep', metadata: { x: '@RAW@' } }, deepText(10_000))],
      ['/v1/customers', JSON.stringify({ id: 'deep', metadata: { x: deep(31) } })],
      ['/v1/customers/acme/grants', withRaw({ amount: '1', metadata: { x: '@RAW@' } }, deepText(5_000))],
      ['/v1/customers/acme/debits', withRaw({ amount: '1', metadata: { x: '@RAW@' } }, deepText(5_000))],
      ['/v1/features', withRaw({ id: 'f', type: 'config', config: '@RAW@' }, deepText(10_000))],
      [
        '/v1/quote',
        withRaw({ customer_id: 'acme', events: [{ type: 'use', data: '@RAW@' }] }, deepText(10_000)),
      ],
    ];
    const before = await observe(t, 'acme');
    for (const [url, body] of cases) {
      const res = await t.post(url, body);
      expectErrorEnvelope(res, 400, 'invalid_request');
      expect(res.json().error.message).toContain('32 levels');
      expect(res.json().error.details).toEqual({ max_depth: 32 });
    }
    expect(await observe(t, 'acme')).toEqual(before);
    expect((await t.get('/v1/customers/deep')).statusCode).toBe(404);
    // At the limit (the body is level 1, metadata 2, x's objects 3 … 32) it is accepted.
    await expectStatus(t.post('/v1/customers', { id: 'deep', metadata: { x: deep(30) } }), 201);
  });

  it('item 6: a NUL character in any text is 400 (per event: rejected alone)', async () => {
    const before = await observe(t, 'acme');
    const cases: [string, unknown][] = [
      ['/v1/customers', { id: 'nul', name: 'a\u0000b' }],
      ['/v1/customers', { id: 'nul', metadata: { 'k\u0000': 'v' } }],
      ['/v1/customers/acme/grants', { amount: '1', description: '\u0000' }],
      ['/v1/customers/acme/debits', { amount: '1', metadata: { note: 'x\u0000' } }],
      ['/v1/credit-types', { id: 'ct', name: '\u0000' }],
      ['/v1/meters', { id: 'm2', event_type: 'a\u0000', aggregation: 'count' }],
    ];
    for (const [url, body] of cases) {
      const res = await t.post(url, body);
      expectErrorEnvelope(res, 400, 'invalid_request');
      expect(res.json().error.message).toContain('NUL');
    }
    expectErrorEnvelope(
      await t.get('/v1/meters/m/usage?customer_id=acme&group_by=%00'),
      400,
      'invalid_request',
    );
    expect(await observe(t, 'acme')).toEqual(before);
    const body = await expectStatus(
      t.post('/v1/events', [event('ok', 1), event('bad\u0000id', 1), { ...event('x', 1), type: 'u\u0000' }]),
      202,
    );
    expect(body.accepted).toBe(1);
    expect(
      body.rejected.map((r: { index: number; error: { code: string } }) => [r.index, r.error.code]),
    ).toEqual([
      [1, 'invalid_event'],
      [2, 'invalid_event'],
    ]);
    await expectReadable(t, 'acme');
  });

  it('item 13: ids may not be "." or ".." or contain ".."', async () => {
    for (const id of ['.', '..', 'a..b', '..a', 'a..']) {
      expectErrorEnvelope(await t.post('/v1/customers', { id }), 400, 'invalid_request');
      const res = await t.post('/v1/events', [{ ...event('e', 1), customer_id: id }]);
      expect(res.json().rejected[0].error.code).toBe('invalid_event');
    }
    expectErrorEnvelope(await t.get('/v1/customers/a..b'), 400, 'invalid_request');
    for (const id of ['a.b', '.a', 'a.', 'v1.2.3']) await expectStatus(t.post('/v1/customers', { id }), 201);
  });

  it('item 13: a leap second is refused with a message saying so', async () => {
    const res = await t.post('/v1/customers/acme/grants', {
      amount: '1',
      expires_at: '2026-06-30T23:59:60Z',
    });
    expectErrorEnvelope(res, 400, 'invalid_request');
    expect(res.json().error.message).toMatch(/leap second/);
    const body = await expectStatus(t.post('/v1/events', [event('leap', 1, '2026-06-30T23:59:60Z')]), 400);
    expect(body.rejected[0].error.message).toMatch(/leap second/);
  });

  it('item 13: trailing zeros past the 12th decimal are accepted (they carry no value); other 13th digits are refused', async () => {
    const grant = await expectStatus(
      t.post('/v1/customers/acme/grants', { amount: '1.000000000000000' }),
      201,
    );
    expect(grant.amount).toBe('1');
    expectErrorEnvelope(
      await t.post('/v1/customers/acme/grants', { amount: '1.0000000000001' }),
      400,
      'invalid_amount',
    );
  });

  it('item 13: the Idempotency-Key fingerprint compares the parsed request, not its bytes', async () => {
    const headers = { 'idempotency-key': 'fp-1' };
    const first = await t.post(
      '/v1/customers/acme/debits',
      '{"amount":"2","metadata":{"a":1,"b":2}}',
      headers,
    );
    expect(first.statusCode).toBe(201);
    const reordered = await t.post(
      '/v1/customers/acme/debits',
      '{ "metadata": { "b": 2, "a": 1.0 },\n  "amount": "2" }',
      headers,
    );
    expect(reordered.statusCode).toBe(201);
    expect(reordered.headers['idempotent-replayed']).toBe('true');
    expect(reordered.payload).toBe(first.payload);
    expectErrorEnvelope(
      await t.post('/v1/customers/acme/debits', '{"amount":"2","metadata":{"a":1,"b":3}}', headers),
      422,
      'idempotency_key_reused',
    );
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('998');
  });
});
