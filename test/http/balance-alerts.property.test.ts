import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepDueLedgers } from '../../src/services/ledger.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/*
 * For random sequences of grants (some expiring), debits (some with overage, some refused) and
 * time jumps applied by the sweeper, the balance facts match the balance path exactly: each write
 * that takes the balance from above the threshold to at or below it while armed writes one
 * balance.low with that before and after, a later rise above it one balance.recovered, the two
 * alternate, and balance.depleted marks exactly the writes that reach 0 from above.
 */

const HOUR = 3_600_000;

type Step =
  | { readonly kind: 'grant'; readonly amount: number; readonly expiresInHours: number | null }
  | { readonly kind: 'debit'; readonly amount: number; readonly overage: boolean }
  | { readonly kind: 'advance'; readonly hours: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 60 }),
    expiresInHours: fc.option(fc.integer({ min: 1, max: 48 }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 40 }),
    overage: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('advance' as const), hours: fc.integer({ min: 1, max: 30 }) }),
);

interface Fact {
  type: string;
  data: { balance_before: string; balance_after: string };
}

describe('balance alerts (property)', () => {
  // One app for every run (building one is the slow part); each run has its own customer.
  let t: TestApp;
  let run = 0;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('facts alternate and match the balance path exactly', { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 50 }),
        fc.array(stepArb, { minLength: 1, maxLength: 14 }),
        async (level, steps) => {
          run += 1;
          const customer = `c${run}`;
          {
            expect((await t.post('/v1/customers', { id: customer })).statusCode).toBe(201);
            const created = await t.post('/v1/balance-thresholds', {
              customer_id: customer,
              kind: 'amount',
              value: String(level),
            });
            expect(created.statusCode, created.body).toBe(201);
            const balance = async () =>
              Number(
                ((await t.get(`/v1/customers/${customer}/balance`)).json() as { available: string })
                  .available,
              );
            let seq = 0;
            const newFacts = async (): Promise<Fact[]> => {
              const rows = await t.storage.read.outbox.listAfter('default', seq, 100_000);
              if (rows.length > 0) seq = rows[rows.length - 1]!.seq;
              return rows
                .filter((r) => r.customerId === customer && r.type.startsWith('balance.'))
                .map((r) => ({ type: r.type, data: r.data as Fact['data'] }));
            };
            let before = 0;
            let fired = false;
            for (const step of steps) {
              if (step.kind === 'grant') {
                const expires =
                  step.expiresInHours === null
                    ? {}
                    : { expires_at: new Date(t.clock.now() + step.expiresInHours * HOUR).toISOString() };
                expect(
                  (
                    await t.post(`/v1/customers/${customer}/grants`, {
                      amount: String(step.amount),
                      ...expires,
                    })
                  ).statusCode,
                ).toBe(201);
              } else if (step.kind === 'debit') {
                const r = await t.post(`/v1/customers/${customer}/debits`, {
                  amount: String(step.amount),
                  allow_overage: step.overage,
                });
                expect([201, 402]).toContain(r.statusCode);
              } else {
                t.clock.advance(step.hours * HOUR);
                await sweepDueLedgers(t.ctx);
              }
              const after = await balance();
              const expected: Fact[] = [];
              const moved = { balance_before: String(before), balance_after: String(after) };
              if (!fired && before > level && after <= level) {
                expected.push({ type: 'balance.low', data: moved });
                fired = true;
              } else if (fired && after > level) {
                expected.push({ type: 'balance.recovered', data: moved });
                fired = false;
              }
              if (before > 0 && after <= 0) expected.push({ type: 'balance.depleted', data: moved });
              const got = (await newFacts()).map((f) => ({
                type: f.type,
                data: { balance_before: f.data.balance_before, balance_after: f.data.balance_after },
              }));
              expect(got, `step ${JSON.stringify(step)}`).toEqual(expected);
              before = after;
            }
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
