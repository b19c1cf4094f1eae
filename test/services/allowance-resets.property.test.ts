import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anniversary, PERIODS, type Period, periodContaining } from '../../src/domain/time/periods.js';
import { sweepDueSubscriptions } from '../../src/services/subscriptions.js';
import { createTestApp } from '../fixtures/harness.js';

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe'];
const LENGTH: Record<Period, number> = {
  P1D: 86_400_000,
  P1W: 604_800_000,
  P1M: 2_629_746_000,
  P1Y: 31_556_952_000,
};

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely; assertions check them
type Body = Record<string, any>;

const ruleArb = fc.oneof(
  fc.constant(null),
  fc.record({
    max: fc.integer({ min: 0, max: 1500 }).map(String),
    expires_after_periods: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
  }),
  fc.record({
    max_percent: fc.integer({ min: 0, max: 100 }).map(String),
    expires_after_periods: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
  }),
);

const stepArb = fc.record({
  /** How far the clock moves, as a fraction of a period (up to three periods: downtime). */
  advance: fc.integer({ min: 0, max: 300 }),
  /** Percent of the available balance to burn after moving (0: none). */
  burn: fc.integer({ min: 0, max: 100 }),
  /** Whether the sweeper (or a restart's catch-up) runs before the burn. */
  sweep: fc.boolean(),
});

/**
 * Random subscriptions through random time jumps (downtime of up to three periods), burns and
 * sweeps: every period's allowance is issued exactly once with the right bounds, live rollovers
 * never exceed the cap, a second catch-up finds nothing to do, and the ledger reconciles.
 */
describe('allowance resets (property)', () => {
  it('issue every period exactly once, respect the rollover cap, and reconcile', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PERIODS.filter((p) => p !== 'P1Y')),
        fc.constantFrom(...ZONES),
        fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-12-31T00:00:00Z') }),
        fc.integer({ min: 1, max: 1000 }),
        ruleArb,
        fc.array(stepArb, { minLength: 1, maxLength: 6 }),
        async (period, zone, start, amount, rollover, steps) => {
          const t = await createTestApp({ start });
          try {
            const post = async (url: string, body: unknown) => {
              const r = await t.post(url, body);
              expect(r.statusCode, r.body).toBeLessThan(300);
              return r.json() as Body;
            };
            await post('/v1/customers', { id: 'c' });
            await post('/v1/plans', {
              id: 'p',
              time_zone: zone,
              billing_period: period,
              allowances: [{ amount: String(amount), period, rollover }],
            });
            await post('/v1/customers/c/subscriptions', { plan_id: 'p' });
            const cap =
              rollover === null
                ? 0
                : 'max' in rollover
                  ? Number(rollover.max)
                  : (amount * Number(rollover.max_percent)) / 100;
            for (const step of steps) {
              t.clock.advance(Math.floor((LENGTH[period] * step.advance) / 100));
              if (step.sweep) await sweepDueSubscriptions(t.ctx);
              const available = Number(((await t.get('/v1/customers/c/balance')).json() as Body).available);
              const burn = Math.floor((available * step.burn) / 100);
              if (burn > 0) await post('/v1/customers/c/debits', { amount: String(burn) });

              const now = t.clock.now();
              const grants = (await t.get('/v1/customers/c/grants?limit=1000')).json().data as Body[];
              const allowances = grants
                .filter((g) => g.metadata.allowance_kind === 'allowance')
                .sort((a, b) => a.metadata.period_index - b.metadata.period_index);
              const current = periodContaining(start, period, now, zone).index;
              expect(allowances.map((g) => g.metadata.period_index)).toEqual(
                Array.from({ length: current + 1 }, (_, i) => i),
              );
              for (const g of allowances) {
                const k = g.metadata.period_index as number;
                expect(Date.parse(g.effective_at)).toBe(anniversary(start, period, k, zone));
                expect(Date.parse(g.expires_at)).toBe(anniversary(start, period, k + 1, zone));
                expect(g.amount).toBe(String(amount));
              }
              const liveRollover = grants
                .filter((g) => g.metadata.allowance_kind === 'rollover' && g.status === 'active')
                .reduce((sum, g) => sum + Number(g.remaining), 0);
              expect(liveRollover).toBeLessThanOrEqual(cap + 1e-9);
              // A second catch-up right away has nothing left to do.
              expect(await sweepDueSubscriptions(t.ctx)).toEqual({ customers: 0, failed: 0 });
            }
            const reconciliation = (await t.get('/v1/reconciliation')).json() as Body;
            expect(reconciliation.ok, JSON.stringify(reconciliation)).toBe(true);
          } finally {
            await t.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);
});
