/**
 * The engine asserts its invariants where balances change (CreditLedger.record): a deliberately
 * broken engine or a corrupted snapshot must trip them with an InvariantViolation (a bug: 500, the
 * transaction rolls back), never persist a negative or overfull grant.
 */
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger, type IdSource, InvariantViolation } from '../../src/domain/ledger/credit-ledger.js';
import type { GrantState } from '../../src/domain/ledger/types.js';

const T0 = 1_700_000_000_000;
const a = (text: string) => Amount.of(text);

class Ids implements IdSource {
  private n = 0;
  newId(prefix: string): string {
    this.n += 1;
    return `${prefix}_${this.n}`;
  }
}

function grant(overrides: Partial<GrantState> = {}): GrantState {
  return {
    id: 'grt_a',
    customerId: 'c1',
    creditType: 'credits',
    category: 'paid',
    amount: a('100'),
    priority: 10,
    effectiveAt: T0 - 1000,
    expiresAt: null,
    createdAt: T0 - 1000,
    costBasis: null,
    appliesTo: null,
    description: null,
    metadata: {},
    available: a('100'),
    held: a('0'),
    closedReason: null,
    closedAt: null,
    activated: true,
    ...overrides,
  };
}

function ledgerOf(...grants: GrantState[]): CreditLedger {
  const zero = a('0');
  return new CreditLedger(
    {
      customerId: 'c1',
      creditType: 'credits',
      accounts: {
        issued: a('-100'),
        consumed: zero,
        expired: zero,
        voided: zero,
        overage: zero,
        clawed_back: zero,
      },
      grants,
      holds: [],
    },
    new Ids(),
  );
}

const debit = { amount: a('10'), allowOverage: false, description: null, metadata: {} };

describe('CreditLedger invariants', () => {
  it('a sound snapshot debits without tripping anything', () => {
    const ledger = ledgerOf(grant());
    const outcome = ledger.debit(debit, T0);
    expect('refused' in outcome).toBe(false);
    expect(ledger.grants.get('grt_a')?.available.toString()).toBe('90');
  });

  it('a grant whose held part is below zero trips the check on the next entry that moves it', () => {
    const ledger = ledgerOf(grant({ held: a('-1') }));
    expect(() => ledger.debit(debit, T0)).toThrow(InvariantViolation);
  });

  it('a grant holding more than it was granted trips the check', () => {
    const ledger = ledgerOf(grant({ available: a('150') }));
    expect(() => ledger.debit(debit, T0)).toThrow(/holds? 140 of its 100/);
  });

  it('an engine that draws more than a grant has (a broken burn) trips the check', () => {
    const ledger = ledgerOf(grant({ available: a('5') }));
    // Break the engine: skip the all-or-nothing check and record a burn larger than the grant.
    const record = (ledger as unknown as { record: (...args: unknown[]) => void }).record.bind(ledger);
    expect(() => record('debit', a('10'), 'grant:grt_a', 'consumed', 'grt_a', 'dbt_x', T0, T0)).toThrow(
      InvariantViolation,
    );
  });

  it('an entry with a negative amount or between one account and itself trips the check', () => {
    const ledger = ledgerOf(grant());
    const record = (ledger as unknown as { record: (...args: unknown[]) => void }).record.bind(ledger);
    expect(() => record('debit', a('-1'), 'grant:grt_a', 'consumed', 'grt_a', null, T0, T0)).toThrow(
      InvariantViolation,
    );
    expect(() => record('debit', a('1'), 'consumed', 'consumed', null, null, T0, T0)).toThrow(
      InvariantViolation,
    );
    expect(ledger.newEntries).toHaveLength(0);
  });
});
