/**
 * `CreditLedger.takeChanges`: the immutable change set the storage port persists. It answers what
 * changed since loading or the previous take, shares nothing the engine mutates afterwards, and
 * resets the tracking, so a ledger saved twice hands each change over once.
 */
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { isEmptyChangeSet, type LedgerChanges } from '../../src/domain/ledger/changes.js';
import {
  CreditLedger,
  type DebitRecord,
  emptyLedgerSnapshot,
  type NewGrant,
  type ReversibleDebit,
} from '../../src/domain/ledger/credit-ledger.js';
import type { HoldState } from '../../src/domain/ledger/types.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { newGrant } from '../fixtures/grants.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const a = (text: string) => Amount.parse(text);

const grantInput = (amount: string, extra: Partial<NewGrant> = {}): NewGrant => newGrant(amount, T0, extra);

function debited(outcome: ReturnType<CreditLedger['debit']>): DebitRecord {
  if ('refused' in outcome) throw new Error(`refused: ${outcome.refused}`);
  return outcome;
}

function held(outcome: ReturnType<CreditLedger['placeHold']>): HoldState {
  if ('refused' in outcome) throw new Error(`refused: ${outcome.refused}`);
  return outcome;
}

/** The change set's content as plain text, to compare it before and after the engine went on. */
function textOf(changes: LedgerChanges): string {
  return JSON.stringify(changes, (_key, value: unknown) =>
    value instanceof Map ? [...value] : value instanceof Amount ? value.toString() : value,
  );
}

describe('CreditLedger.takeChanges', () => {
  it('hands over what changed, by kind, and the ledger state after', () => {
    const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
    const g1 = ledger.grant(grantInput('10'), T0);
    const g2 = ledger.grant(grantInput('5', { priority: 1, expiresAt: T0 + HOUR }), T0);
    const first = ledger.takeChanges();
    expect(first.customerId).toBe('c1');
    expect(first.creditType).toBe('credits');
    expect(first.entries.map((e) => [e.type, e.amount.toString()])).toEqual([
      ['grant', '10'],
      ['grant', '5'],
    ]);
    expect(first.grants.map((c) => [c.grant.id, c.change])).toEqual([
      [g1.id, 'created'],
      [g2.id, 'created'],
    ]);
    expect(first.grantsCreated.map((g) => g.id)).toEqual([g1.id, g2.id]);
    expect(first.accounts.issued.toString()).toBe('-15');

    // g2 burns first (priority 1): emptied, so reshaped; g1 only moves credits.
    const debit = debited(ledger.debit({ amount: a('6'), allowOverage: false }, T0 + 1));
    const hold = held(ledger.placeHold({ amount: a('2'), expiresAt: T0 + HOUR }, T0 + 1));
    const second = ledger.takeChanges();
    expect(second.entries.map((e) => e.type)).toEqual(['debit', 'debit', 'hold']);
    expect(second.grants.map((c) => [c.grant.id, c.change])).toEqual([
      [g2.id, 'reshaped'],
      [g1.id, 'amounts'],
    ]);
    expect(second.grantsCreated).toEqual([]);
    expect(second.debitsCreated.map((d) => d.id)).toEqual([debit.id]);
    expect(second.holds.map((h) => [h.id, h.status])).toEqual([[hold.id, 'active']]);
    expect(second.openGrants.map((g) => [g.id, g.available.toString(), g.held.toString()])).toEqual([
      [g1.id, '7', '2'],
    ]);
    expect(second.activeHolds.map((h) => h.id)).toEqual([hold.id]);
    // A changed grant or hold still open or active is copied once: the same object in both lists.
    expect(second.openGrants[0]).toBe(second.grants[1]!.grant);
    expect(second.activeHolds[0]).toBe(second.holds[0]);
    expect(second.accounts.consumed.toString()).toBe('6');
  });

  it('answers copies that later operations never change', () => {
    const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
    const grant = ledger.grant(grantInput('10'), T0);
    const debit = debited(ledger.debit({ amount: a('3'), allowOverage: false }, T0 + 1));
    const hold = held(ledger.placeHold({ amount: a('2'), expiresAt: T0 + HOUR }, T0 + 1));
    const target: ReversibleDebit = {
      debit,
      reversed: {
        overage: Amount.ZERO,
        byGrant: new Map(),
        paidBack: new Map(),
        quantity: Amount.ZERO,
        history: [],
      },
    };
    const reversal = ledger.reverse({ target, amount: a('1'), reason: 'first' }, T0 + 2);
    expect('refused' in reversal).toBe(false);
    const taken = ledger.takeChanges();
    const before = textOf(taken);
    expect(
      taken.debitsReversed.map((r) => [r.debitId, r.reversed.byGrant.get(grant.id)?.toString()]),
    ).toEqual([[debit.id, '1']]);

    // The engine goes on: the hold is captured, the grant drawn and voided, the debit reversed again.
    const capture = ledger.capture({ holdId: hold.id, amount: null, allowOverage: false }, T0 + 3);
    expect('refused' in capture).toBe(false);
    debited(ledger.debit({ amount: a('1'), allowOverage: false }, T0 + 4));
    ledger.reverse({ target, amount: a('1'), reason: 'second' }, T0 + 5);
    ledger.voidGrant(grant.id, T0 + 6);

    expect(textOf(taken)).toBe(before);
    expect(taken.holds[0]!.status).toBe('active');
    expect(taken.holds[0]!.portions[0]!.amount.toString()).toBe('2');
    expect(taken.openGrants[0]!.closedReason).toBeNull();
    expect(taken.debitsReversed[0]!.reversed.history.map((h) => h.reason)).toEqual(['first']);
    // The engine's state did change: the change set is not it. (A grant changed after a take is a
    // new copy, so the engine's grant is read again by id.)
    expect(hold.status).toBe('captured');
    expect(ledger.grants.get(grant.id)!.closedReason).toBe('voided');
    expect(grant.closedReason).toBeNull();
    // Frozen: no part of what was handed over can be replaced.
    expect(Object.isFrozen(taken)).toBe(true);
    expect(() => Object.assign(taken, { entries: [] })).toThrow(TypeError);
  });

  it('keeps the strongest kind of change a grant had since the last take: created, then reshaped, then amounts', () => {
    const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
    ledger.grant(grantInput('10'), T0);
    debited(ledger.debit({ amount: a('1'), allowOverage: false }, T0)); // amounts, after created
    expect(ledger.takeChanges().grants.map((c) => c.change)).toEqual(['created']);
    const hold = held(ledger.placeHold({ amount: a('4'), expiresAt: T0 + 3 * HOUR }, T0 + 1));
    ledger.takeChanges();
    // Activated (reshaped), then a debit moves only its credits (amounts): storage must still
    // write the activation, so the change stays "reshaped".
    const later = ledger.grant({ ...grantInput('5', { priority: -1 }), effectiveAt: T0 + HOUR }, T0 + 2);
    ledger.takeChanges();
    ledger.advanceTo(T0 + HOUR);
    debited(ledger.debit({ amount: a('1'), allowOverage: false }, T0 + HOUR));
    const after = ledger.takeChanges();
    expect(
      after.grants.map((c) => [c.grant.id, c.change, c.grant.activated, c.grant.available.toString()]),
    ).toEqual([[later.id, 'reshaped', true, '4']]);
    expect(hold.status).toBe('active');
  });

  it('resets the tracking: the next take answers only what changed since, empty when nothing did', () => {
    const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), new SequentialIds());
    const grant = ledger.grant(grantInput('10'), T0);
    const hold = held(ledger.placeHold({ amount: a('4'), expiresAt: T0 + HOUR }, T0));
    expect(ledger.isDirty).toBe(true);
    const first = ledger.takeChanges();
    expect(first.entries).toHaveLength(2);
    expect(ledger.isDirty).toBe(false);
    expect(ledger.newEntries).toEqual([]);
    expect(ledger.newDebits).toEqual([]);
    expect(ledger.changedHolds.size).toBe(0);

    const empty = ledger.takeChanges();
    expect(isEmptyChangeSet(empty)).toBe(true);
    expect(isEmptyChangeSet(first)).toBe(false);
    // An empty change set still says what the ledger holds (a save of it leaves the state as is).
    expect(empty.openGrants.map((g) => [g.id, g.available.toString(), g.held.toString()])).toEqual([
      [grant.id, '6', '4'],
    ]);
    expect(empty.activeHolds.map((h) => h.id)).toEqual([hold.id]);
    expect(empty.accounts.issued.toString()).toBe('-10');

    // The hold expires on access: only that is in the next change set.
    ledger.advanceTo(T0 + HOUR);
    expect(ledger.isDirty).toBe(true);
    const third = ledger.takeChanges();
    expect(third.entries.map((e) => [e.type, e.amount.toString()])).toEqual([['release', '4']]);
    expect(third.holds.map((h) => [h.id, h.status])).toEqual([[hold.id, 'expired']]);
    expect(third.grants.map((c) => [c.grant.id, c.change, c.grant.available.toString()])).toEqual([
      [grant.id, 'amounts', '10'],
    ]);
    expect(third.activeHolds).toEqual([]);
    expect(first.entries.map((e) => e.type)).toEqual(['grant', 'hold']);
    expect(ledger.isDirty).toBe(false);
  });
});
