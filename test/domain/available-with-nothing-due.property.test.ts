/**
 * A check reads a stored ledger's balance off its snapshot when nothing of it falls due by now,
 * without building an engine. Property: over random ledgers (grants pending, expiring, restricted
 * to a feature; debits into overage; holds expiring), saved at one instant and read at a later
 * one, the snapshot read answers exactly what an engine built from the snapshot and advanced to
 * that instant answers, for every feature filter; and it declines (null) exactly when advancing
 * would change the ledger.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import {
  availableWithNothingDue,
  CreditLedger,
  type CreditLedgerSnapshot,
  emptyLedgerSnapshot,
} from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const tenths = (n: number) => Amount.fromUnits(BigInt(n) * 10n ** 11n);

type Op =
  | { kind: 'grant'; amount: number; effectiveIn: number; expiresIn: number | null; feature: boolean }
  | { kind: 'debit'; amount: number; overage: boolean; feature: boolean }
  | { kind: 'hold'; amount: number; ttl: number }
  | { kind: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 50 }),
    effectiveIn: fc.constantFrom(0, 0, HOUR, 3 * HOUR),
    expiresIn: fc.option(fc.integer({ min: 1, max: 6 * HOUR }), { nil: null }),
    feature: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: fc.integer({ min: 1, max: 40 }),
    overage: fc.boolean(),
    feature: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    amount: fc.integer({ min: 1, max: 20 }),
    ttl: fc.integer({ min: 1, max: 4 * HOUR }),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 2 * HOUR }) }),
);

describe('availableWithNothingDue', () => {
  it('answers what an advanced engine answers, and declines exactly when something is due', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 8 * HOUR }),
        (ops, readAfter) => {
          const ledger = new CreditLedger(emptyLedgerSnapshot('c', 'credits'), new SequentialIds());
          let now = T0;
          for (const o of ops) {
            ledger.advanceTo(now);
            if (o.kind === 'advance') now += o.ms;
            else if (o.kind === 'grant') {
              const effectiveAt = now + o.effectiveIn;
              ledger.grant(
                newGrant(tenths(o.amount), effectiveAt, {
                  expiresAt: o.expiresIn === null ? null : effectiveAt + o.expiresIn,
                  appliesTo: o.feature ? ['f1'] : null,
                }),
                now,
              );
            } else if (o.kind === 'debit') {
              const featureId = o.feature ? 'f1' : null;
              ledger.debit({ amount: tenths(o.amount), allowOverage: o.overage, featureId }, now);
            } else ledger.placeHold({ amount: tenths(o.amount), expiresAt: now + o.ttl }, now);
          }
          // What storage keeps of the ledger as saved at `now`.
          const changes = ledger.takeChanges();
          const snapshot: CreditLedgerSnapshot = {
            customerId: 'c',
            creditType: 'credits',
            accounts: changes.accounts,
            grants: changes.openGrants,
            holds: changes.activeHolds,
          };
          const at = now + readAfter;
          for (const featureId of [undefined, null, 'f1', 'f2']) {
            const engine = new CreditLedger(snapshot, new SequentialIds());
            engine.advanceTo(at);
            const read = availableWithNothingDue(snapshot, at, featureId);
            expect(read === null).toBe(engine.isDirty);
            if (read !== null) expect(read.toString()).toBe(engine.availableAt(at, featureId).toString());
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
