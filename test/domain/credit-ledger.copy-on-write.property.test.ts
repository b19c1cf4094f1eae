/**
 * The engine's grants are copy on write (CreditLedger.mutableGrant): a grant is the snapshot's own
 * object, shared with caches and change sets, until the engine first changes it. Two ways that can
 * go wrong, both money bugs: a write to a shared object (it would corrupt a cache or a change set
 * already handed to storage), and a stale read (code that reads a grant it changed through a
 * reference to the object the copy replaced).
 *
 * Property, over every operation that moves a grant (grant, debit, hold, capture, release, void,
 * clawback, dispute hold, rollover trim, reversal, balance, time passing): a ledger that takes its
 * change set at each save and reloads from it at each take, every object it is given or hands over
 * frozen (so a write to one throws), answers, holds and hands over exactly what a ledger that never
 * takes a change set does. The latter creates every grant itself and so never copies one: it is the
 * reference without copy on write. Change sets handed over never change afterwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { GrantSnapshot, LedgerChanges } from '../../src/domain/ledger/changes.js';
import {
  CreditLedger,
  type CreditLedgerSnapshot,
  emptyLedgerSnapshot,
  type ReversibleDebit,
} from '../../src/domain/ledger/credit-ledger.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

type Op =
  | { kind: 'grant'; amount: number; priority: number; expiresIn: number | null; effectiveIn: number }
  | { kind: 'debit'; amount: number; overage: boolean }
  | { kind: 'hold'; amount: number; ttl: number }
  | { kind: 'capture'; pick: number; amount: number | null; overage: boolean }
  | { kind: 'release'; pick: number }
  | { kind: 'void'; pick: number }
  | { kind: 'clawback'; pick: number; amount: number }
  | { kind: 'holdGrant'; pick: number; amount: number; ttl: number }
  | { kind: 'expirePart'; pick: number; amount: number }
  | { kind: 'reverse'; pick: number; amount: number | null }
  | { kind: 'balance' }
  | { kind: 'advance'; ms: number }
  | { kind: 'save' }
  | { kind: 'take' };

const pickOf = fc.nat();
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('grant' as const),
      amount: fc.integer({ min: 1, max: 50 }),
      priority: fc.integer({ min: 0, max: 2 }),
      expiresIn: fc.option(fc.integer({ min: 1, max: 5 * HOUR }), { nil: null }),
      effectiveIn: fc.constantFrom(0, 0, HOUR, 2 * HOUR),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('debit' as const),
      amount: fc.integer({ min: 1, max: 300 }),
      overage: fc.boolean(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      amount: fc.integer({ min: 1, max: 200 }),
      ttl: fc.integer({ min: 1, max: 3 * HOUR }),
    }),
    weight: 3,
  },
  fc.record({
    kind: fc.constant('capture' as const),
    pick: pickOf,
    amount: fc.option(fc.integer({ min: 1, max: 250 }), { nil: null }),
    overage: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), pick: pickOf }),
  fc.record({ kind: fc.constant('void' as const), pick: pickOf }),
  fc.record({
    kind: fc.constant('clawback' as const),
    pick: pickOf,
    amount: fc.integer({ min: 1, max: 300 }),
  }),
  fc.record({
    kind: fc.constant('holdGrant' as const),
    pick: pickOf,
    amount: fc.integer({ min: 1, max: 300 }),
    ttl: fc.integer({ min: 1, max: 3 * HOUR }),
  }),
  fc.record({
    kind: fc.constant('expirePart' as const),
    pick: pickOf,
    amount: fc.integer({ min: 1, max: 300 }),
  }),
  fc.record({
    kind: fc.constant('reverse' as const),
    pick: pickOf,
    amount: fc.option(fc.integer({ min: 1, max: 300 }), { nil: null }),
  }),
  fc.constant({ kind: 'balance' as const }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 2 * HOUR }) }),
  fc.constant({ kind: 'save' as const }),
  fc.constant({ kind: 'take' as const }),
);

const amount = (n: number) => Amount.fromUnits(BigInt(n) * 10n ** 10n); // hundredths of a credit
const json = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (x instanceof Amount ? x.toString() : x instanceof Map ? [...x] : x));
/**
 * An answer as text; a refusal by its kind only: a reloaded ledger no longer holds finished holds or
 * closed grants, so it cannot say how one ended (storage answers that), but it refuses the same.
 */
const answerText = (v: unknown) =>
  typeof v === 'object' && v !== null && 'refused' in v ? `refused: ${String(v.refused)}` : json(v);

/** Freezes what a cache or storage would keep of a change set: nothing of it may be written again. */
function freezeChanges(changes: LedgerChanges): void {
  for (const { grant } of changes.grants) Object.freeze(grant);
  for (const grant of changes.openGrants) Object.freeze(grant);
  for (const hold of changes.activeHolds) {
    Object.freeze(hold.portions);
    Object.freeze(hold.drawdowns);
    Object.freeze(hold);
  }
}

/**
 * One ledger and what storage would hand it: stored grants by id (depleted and closed ones are not
 * loaded with a snapshot, so voids, clawbacks and reversals adopt them), reversible debits, and the
 * settlement history corrections load.
 */
class Harness {
  readonly ids = new SequentialIds();
  ledger: CreditLedger;
  private readonly stored = new Map<string, GrantSnapshot>();
  readonly targets = new Map<string, ReversibleDebit>();
  private readonly settlements: { grantId: string; amount: Amount }[] = [];
  private readonly paidBack = new Map<string, Map<string, Amount>>();
  private settlementsLoaded = false;
  readonly handedOver: { changes: LedgerChanges; text: string }[] = [];

  /** `reloads`: takes change sets and reloads from them; otherwise never takes (the reference). */
  constructor(private readonly reloads: boolean) {
    this.ledger = new CreditLedger(Object.freeze(emptyLedgerSnapshot('c', 'credits')), this.ids);
  }

  /** Loads a stored grant the ledger does not hold (as services do before voiding or reversing). */
  adopt(grantId: string): void {
    const stored = this.stored.get(grantId);
    if (stored !== undefined && !this.ledger.grants.has(grantId)) this.ledger.adoptGrant(stored);
  }

  save(reload: boolean): void {
    if (!this.reloads) return;
    const changes = this.ledger.takeChanges();
    freezeChanges(changes);
    for (const { grant } of changes.grants) this.stored.set(grant.id, grant);
    for (const e of changes.entries)
      if (e.type === 'overage_settled' && e.grantId !== null)
        this.settlements.push({ grantId: e.grantId, amount: e.amount });
    for (const r of changes.debitsReversed) this.paidBack.set(r.debitId, new Map(r.reversed.paidBack));
    this.handedOver.push({ changes, text: json(changes) });
    // A changed grant still open is the same object in both lists.
    for (const { grant } of changes.grants)
      if (grant.available.isPositive() || grant.held.isPositive())
        expect(changes.openGrants).toContain(grant);
    if (!reload) return;
    const snapshot: CreditLedgerSnapshot = Object.freeze({
      customerId: changes.customerId,
      creditType: changes.creditType,
      accounts: Object.freeze({ ...changes.accounts }),
      grants: Object.freeze(changes.openGrants),
      holds: Object.freeze(changes.activeHolds),
    });
    this.ledger = new CreditLedger(snapshot, this.ids);
    this.settlementsLoaded = false;
  }

  /** What a correction loads before reversing: the settlements stored and what was refunded of them. */
  loadSettlements(): void {
    if (this.settlementsLoaded) return;
    const refunded = new Map<string, Amount>();
    for (const byGrant of this.paidBack.values())
      for (const [grantId, a] of byGrant)
        refunded.set(grantId, (refunded.get(grantId) ?? Amount.ZERO).plus(a));
    for (const s of this.settlements) this.adopt(s.grantId);
    this.ledger.loadSettlements({ settlements: this.settlements, refunded });
    this.settlementsLoaded = true;
  }
}

/** The ledger's state as text: accounts, open grants (every field that changes), active holds. */
function stateOf(ledger: CreditLedger, now: number): string {
  const grants = [...ledger.grants.values()]
    .filter((g) => g.available.isPositive() || g.held.isPositive())
    .map((g) => [g.id, g.available.toString(), g.held.toString(), g.closedReason, g.closedAt, g.activated])
    .sort();
  const holds = [...ledger.holds.values()]
    .filter((h) => h.status === 'active')
    .map((h) => [h.id, h.amount.toString(), h.portions.map((p) => `${p.grantId}:${p.amount.toString()}`)])
    .sort();
  const accounts = Object.entries(ledger.accounts).map(([k, v]) => `${k}=${String(v)}`);
  return JSON.stringify({ accounts, grants, holds, balance: json(ledger.balance(now)) });
}

describe('CreditLedger copy on write', () => {
  it('a ledger reloaded from frozen change sets behaves as one that never copies a grant, and writes nothing shared', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 80 }), (ops) => {
        const reference = new Harness(false);
        const reloaded = new Harness(true);
        const both = [reference, reloaded];
        let now = T0;
        const grantIds: string[] = [];
        const holdIds: string[] = [];
        const debitIds: string[] = [];
        const clawedBack = new Map<string, number>();
        const pick = <T>(list: readonly T[], i: number): T | undefined => list[i % Math.max(1, list.length)];
        for (const o of ops) {
          if (o.kind === 'advance') {
            now += o.ms;
            continue;
          }
          if (o.kind === 'save' || o.kind === 'take') {
            for (const h of both) h.save(o.kind === 'take');
            continue;
          }
          const answers = both.map((h) => {
            const l = h.ledger;
            l.advanceTo(now);
            const grantId = pick(grantIds, 'pick' in o ? o.pick : 0);
            if (grantId !== undefined) h.adopt(grantId);
            switch (o.kind) {
              case 'grant': {
                const expiresAt = o.expiresIn === null ? null : now + o.effectiveIn + o.expiresIn;
                const input = newGrant(amount(o.amount * 10), now + o.effectiveIn, {
                  priority: o.priority,
                  expiresAt,
                });
                return answerText(l.grant(input, now));
              }
              case 'debit':
                return answerText(l.debit({ amount: amount(o.amount), allowOverage: o.overage }, now));
              case 'hold':
                return answerText(l.placeHold({ amount: amount(o.amount), expiresAt: now + o.ttl }, now));
              case 'capture': {
                const input = {
                  holdId: pick(holdIds, o.pick) ?? 'none',
                  amount: o.amount === null ? null : amount(o.amount),
                  allowOverage: o.overage,
                };
                return answerText(l.capture(input, now));
              }
              case 'release':
                return answerText(l.release(pick(holdIds, o.pick) ?? 'none', now));
              case 'void':
                return grantId === undefined ? 'none' : answerText(l.voidGrant(grantId, now));
              case 'clawback': {
                if (grantId === undefined) return 'none';
                // The caller bounds what is clawed back of a grant by its amount.
                const key = `${h === reloaded}/${grantId}`;
                const total = Number(l.grants.get(grantId)!.amount.units / 10n ** 10n);
                const n = Math.min(o.amount, total - (clawedBack.get(key) ?? 0));
                if (n <= 0) return 'bounded';
                clawedBack.set(key, (clawedBack.get(key) ?? 0) + n);
                return answerText(l.clawBack(grantId, amount(n), now));
              }
              case 'holdGrant': {
                if (grantId === undefined) return 'none';
                const input = {
                  grantId,
                  amount: amount(o.amount),
                  expiresAt: now + o.ttl,
                  description: null,
                  metadata: {},
                };
                return answerText(l.holdGrant(input, now));
              }
              case 'expirePart': {
                const grant = grantId === undefined ? undefined : l.grants.get(grantId);
                // Nothing to trim (a reloaded ledger may not hold a grant that has nothing left).
                if (grant === undefined || grant.closedReason !== null) return 'nothing';
                const trim = Amount.min(amount(o.amount), grant.available);
                if (!trim.isPositive()) return 'nothing';
                l.expirePart(grant.id, trim, now);
                return `trimmed ${trim.toString()}`;
              }
              case 'reverse': {
                const debitId = pick(debitIds, o.pick);
                if (debitId === undefined) return 'none';
                const target = h.targets.get(debitId)!;
                h.loadSettlements();
                for (const d of target.debit.drawdowns) h.adopt(d.grantId);
                l.advanceTo(now);
                const input = { target, amount: o.amount === null ? null : amount(o.amount), reason: 'r' };
                return answerText(l.reverse(input, now));
              }
              case 'balance':
                return answerText(l.balance(now));
              default:
                throw new Error(`${(o as Op).kind} is handled above`);
            }
          });
          expect(answers[1]).toBe(answers[0]);
          expect(stateOf(reloaded.ledger, now)).toBe(stateOf(reference.ledger, now));
          const answer = answers[0]!;
          if (!answer.startsWith('{')) continue;
          const id = (JSON.parse(answer) as { id?: string }).id;
          if (id === undefined) continue;
          if (o.kind === 'grant') grantIds.push(id);
          if (o.kind === 'hold' || o.kind === 'holdGrant') holdIds.push(id);
          if (o.kind === 'debit' || o.kind === 'capture') {
            debitIds.push(id);
            for (const h of both) {
              const debit = h.ledger.newDebits.find((d) => d.id === id)!;
              const reversed = {
                overage: Amount.ZERO,
                byGrant: new Map<string, Amount>(),
                paidBack: new Map<string, Amount>(),
                quantity: Amount.ZERO,
                history: [],
              };
              h.targets.set(id, { debit, reversed });
            }
          }
        }
        // Nothing handed over moved afterwards.
        for (const { changes, text } of reloaded.handedOver) expect(json(changes)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});
