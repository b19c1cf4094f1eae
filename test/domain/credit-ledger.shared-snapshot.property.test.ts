/**
 * A snapshot is read-only and may be shared: the SQLite caches hand the same snapshot (the last
 * change set's open grants and active holds) to every write of a ledger, and the engine copies
 * what it takes. Property: a ledger reloaded from each change set it handed over, its objects
 * frozen so that any write to them throws, behaves exactly like one ledger that never reloads;
 * and the grants a change set lists as open (some of them the very objects of an earlier change
 * set, when unchanged since) are what the continuous ledger holds, after a save that goes on with
 * the same ledger as after one that reloads.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { LedgerChanges } from '../../src/domain/ledger/changes.js';
import {
  CreditLedger,
  type CreditLedgerSnapshot,
  emptyLedgerSnapshot,
} from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

type Op =
  | { kind: 'grant'; amount: number; priority: number; expiresIn: number | null; effectiveIn: number }
  | { kind: 'debit'; amount: number; overage: boolean }
  | { kind: 'hold'; amount: number; ttl: number }
  | { kind: 'capture'; pick: number; amount: number | null }
  | { kind: 'release'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'save' }
  | { kind: 'take' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 50 }),
    priority: fc.integer({ min: 0, max: 2 }),
    expiresIn: fc.option(fc.integer({ min: 1, max: 5 * HOUR }), { nil: null }),
    effectiveIn: fc.constantFrom(0, 0, HOUR, 2 * HOUR),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 30 }),
    overage: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    amount: fc.integer({ min: 1, max: 20 }),
    ttl: fc.integer({ min: 1, max: 3 * HOUR }),
  }),
  fc.record({
    kind: fc.constant('capture' as const),
    pick: fc.nat(),
    amount: fc.option(fc.integer({ min: 1, max: 25 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 2 * HOUR }) }),
  fc.constant({ kind: 'save' as const }),
  fc.constant({ kind: 'take' as const }),
);

/** Applies one operation; the answer as text (refusals included) so two ledgers can be compared. */
function apply(ledger: CreditLedger, o: Op, now: number, holdIds: readonly string[]): string {
  const amount = (n: number) => Amount.fromUnits(BigInt(n) * 10n ** 11n); // tenths of a credit
  // A refusal by its kind only: a reloaded ledger no longer holds finished holds, so it cannot
  // say how one ended (storage answers that), but it refuses the same operations.
  const text = (v: unknown) =>
    typeof v === 'object' && v !== null && 'refused' in v
      ? `refused: ${String(v.refused)}`
      : JSON.stringify(v, (_k, x: unknown) =>
          x instanceof Amount ? x.toString() : x instanceof Map ? [...x] : x,
        );
  ledger.advanceTo(now);
  switch (o.kind) {
    case 'grant':
      return text(
        ledger.grant(
          newGrant(String(o.amount), now + o.effectiveIn, {
            priority: o.priority,
            expiresAt: o.expiresIn === null ? null : now + o.effectiveIn + o.expiresIn,
          }),
          now,
        ),
      );
    case 'debit':
      return text(ledger.debit({ amount: amount(o.amount), allowOverage: o.overage }, now));
    case 'hold':
      return text(ledger.placeHold({ amount: amount(o.amount), expiresAt: now + o.ttl }, now));
    case 'capture': {
      const holdId = holdIds[o.pick % Math.max(1, holdIds.length)] ?? 'none';
      const input = { holdId, amount: o.amount === null ? null : amount(o.amount), allowOverage: false };
      return text(ledger.capture(input, now));
    }
    case 'release':
      return text(ledger.release(holdIds[o.pick % Math.max(1, holdIds.length)] ?? 'none', now));
    default:
      return '';
  }
}

/** What a cache keeps of a change set, every object in it frozen: the next ledger must not write to them. */
function frozenSnapshot(changes: LedgerChanges): CreditLedgerSnapshot {
  for (const g of changes.openGrants) Object.freeze(g);
  for (const h of changes.activeHolds) {
    Object.freeze(h.portions);
    Object.freeze(h.drawdowns);
    Object.freeze(h);
  }
  return Object.freeze({
    customerId: changes.customerId,
    creditType: changes.creditType,
    accounts: Object.freeze(changes.accounts),
    grants: Object.freeze(changes.openGrants),
    holds: Object.freeze(changes.activeHolds),
  });
}

/** A ledger's state as text: accounts, open grants (by id), active holds. */
function stateOf(ledger: CreditLedger, now: number): string {
  const grants = [...ledger.grants.values()]
    .filter((g) => g.available.isPositive() || g.held.isPositive())
    .map((g) => [g.id, g.available.toString(), g.held.toString(), g.closedReason, g.activated])
    .sort();
  const holds = [...ledger.holds.values()]
    .filter((h) => h.status === 'active')
    .map((h) => [h.id, h.amount.toString(), h.portions.map((p) => `${p.grantId}:${p.amount.toString()}`)])
    .sort();
  const accounts = Object.entries(ledger.accounts).map(([k, v]) => `${k}=${v.toString()}`);
  return JSON.stringify({ accounts, grants, holds, balance: ledger.balance(now).available.toString() });
}

describe('CreditLedger on a shared, read-only snapshot', () => {
  it('never writes to the snapshot it was given, and reloading from its change sets changes nothing', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const continuous = new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());
        const reloadIds = new SequentialIds();
        let reloaded = new CreditLedger(Object.freeze(emptyLedgerSnapshot('c', 'credits')), reloadIds);
        let now = T0;
        const holdIds: string[] = [];
        for (const o of ops) {
          if (o.kind === 'advance') now += o.ms;
          if (o.kind === 'save' || o.kind === 'take') {
            // A save hands the changes to storage (and the cache) and goes on with the same ledger,
            // as a write that saves twice does; a take also reloads, as the next write would.
            continuous.takeChanges();
            const changes = reloaded.takeChanges();
            const fromChanges = new CreditLedger(frozenSnapshot(changes), new SequentialIds());
            expect(stateOf(fromChanges, now)).toBe(stateOf(continuous, now));
            if (o.kind === 'take') reloaded = new CreditLedger(frozenSnapshot(changes), reloadIds);
            continue;
          }
          const answer = apply(continuous, o, now, holdIds);
          expect(apply(reloaded, o, now, holdIds)).toBe(answer);
          if (o.kind === 'hold' && !answer.includes('refused'))
            holdIds.push((JSON.parse(answer) as { id: string }).id);
          expect(stateOf(reloaded, now)).toBe(stateOf(continuous, now));
        }
      }),
      { numRuns: 600 },
    );
  });
});
