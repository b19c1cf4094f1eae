import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { DebitRecord } from '../../src/domain/ledger/credit-ledger.js';
import type { BalanceView, GrantCategory } from '../../src/domain/ledger/types.js';
import { presentDebit, presentDebitText } from '../../src/http/presenters.js';
import { balanceJson, presentBalance } from '../../src/services/balance-document.js';
import { JsonText, jsonOf, jsonWithEmbedded } from '../../src/services/json-text.js';

// Text that JSON must escape: quotes, backslashes, control characters, lone surrogates, emoji.
const text = fc.string({ unit: 'binary', maxLength: 12 });
const amount = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map((units) => Amount.fromUnits(units));
const instant = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });
const category = fc.constantFrom<GrantCategory>('paid', 'promotional', 'allowance');
// A few ids, so the same grant comes back with the same or changed fields (cache hits and stale entries).
const grantId = fc.constantFrom('g-1', 'g-2', 'g-"3"', 'g\\4', 'g-\u2028');

const anyGrant = fc.record({
  grantId,
  remaining: amount,
  expiresAt: fc.option(instant, { nil: null }),
  priority: fc.integer({ min: -1000, max: 1000 }),
  category,
});
// Few values per field: the same grant often comes back with exactly one field changed.
const nearlyTheSameGrant = fc.record({
  grantId: fc.constantFrom('g-1', 'g-2'),
  remaining: fc.constantFrom(Amount.of('1'), Amount.of('2.5'), Amount.of('-3')),
  expiresAt: fc.constantFrom(null, 0, 86_400_000),
  priority: fc.constantFrom(0, 1),
  category: fc.constantFrom<GrantCategory>('paid', 'promotional'),
});
const grant = fc.oneof(anyGrant, nearlyTheSameGrant);

const balance: fc.Arbitrary<BalanceView> = fc.record({
  customerId: text,
  creditType: text,
  at: instant,
  available: amount,
  held: amount,
  overage: amount,
  grants: fc.array(grant, { maxLength: 6 }),
  nextExpiry: fc.option(fc.record({ at: instant, amount }), { nil: null }),
});

const metadataValue = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null));
const debit: fc.Arbitrary<DebitRecord> = fc.record({
  id: text,
  customerId: text,
  creditType: text,
  amount,
  drawdowns: fc.array(fc.record({ grantId: text, amount }), { maxLength: 3 }),
  overage: amount,
  holdId: fc.option(text, { nil: null }),
  featureId: fc.option(text, { nil: null }),
  quantity: fc.option(amount, { nil: null }),
  createdAt: instant,
  description: fc.option(text, { nil: null }),
  metadata: fc.dictionary(
    text.filter((k) => k !== '__proto__'),
    metadataValue,
    { maxKeys: 3 },
  ),
});

describe('answers built as text', () => {
  it('a balance is the same text as JSON.stringify of its document, whatever the grant texts remembered', () => {
    fc.assert(
      fc.property(fc.array(balance, { minLength: 1, maxLength: 8 }), (balances) => {
        // Several balances in a row: later ones meet the texts the earlier ones left behind.
        for (const b of balances) expect(balanceJson(b)).toBe(JSON.stringify(presentBalance(b)));
      }),
      { numRuns: 300 },
    );
  });

  it('a debit is the same text as JSON.stringify of its document', () => {
    fc.assert(
      fc.property(debit, balance, (d, b) => {
        const answer = presentDebitText(d, b);
        expect(answer).toBeInstanceOf(JsonText);
        expect(jsonOf(answer)).toBe(JSON.stringify(presentDebit(d, b)));
      }),
      { numRuns: 300 },
    );
  });

  it('a grant whose remaining changed is never answered with its earlier text', () => {
    const before: BalanceView = {
      customerId: 'c',
      creditType: 'credits',
      at: 0,
      available: Amount.of('10'),
      held: Amount.ZERO,
      overage: Amount.ZERO,
      grants: [{ grantId: 'g', remaining: Amount.of('10'), expiresAt: null, priority: 1, category: 'paid' }],
      nextExpiry: null,
    };
    expect(JSON.parse(balanceJson(before)).grants[0].remaining).toBe('10');
    const after: BalanceView = { ...before, grants: [{ ...before.grants[0]!, remaining: Amount.of('8.5') }] };
    expect(JSON.parse(balanceJson(after)).grants[0].remaining).toBe('8.5');
    expect(JSON.parse(balanceJson(before)).grants[0].remaining).toBe('10');
  });

  it('jsonOf serialises anything but a JsonText, and embeds one as is', () => {
    expect(jsonOf({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
    expect(jsonOf(new JsonText('{"b":2}'))).toBe('{"b":2}');
    expect(jsonWithEmbedded({ a: 1 }, 'k"ey', '[true]', { z: null })).toBe(
      '{"a":1,"k\\"ey":[true],"z":null}',
    );
  });
});
