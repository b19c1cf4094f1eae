import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import {
  disputedCredits,
  fromMinorUnits,
  type PaymentRecord,
  refundClawback,
  toMinorUnits,
} from '../../src/domain/payments/payments.js';

const payment = (credits: string, amountMinor: bigint): PaymentRecord => ({
  workspaceId: 'ws',
  id: 'cs_1',
  customerId: 'acme',
  purchaseId: 'pur_1',
  grantId: 'grt_1',
  creditType: 'credits',
  credits: Amount.parse(credits),
  amountMinor,
  currency: 'USD',
  paymentIntentId: 'pi_1',
  chargeId: null,
  refundedMinor: 0n,
  refundCredits: Amount.ZERO,
  disputeCredits: Amount.ZERO,
  dispute: null,
  createdAt: 0,
  updatedAt: 0,
});

describe('payments in: money and refund shares', () => {
  it('converts minor units by the currency exponent (2, 0 or 3), exactly both ways', () => {
    expect(fromMinorUnits(1999n, 'usd').toString()).toBe('19.99');
    expect(fromMinorUnits(1999n, 'JPY').toString()).toBe('1999');
    expect(fromMinorUnits(1999n, 'kwd').toString()).toBe('1.999');
    expect(toMinorUnits(Amount.parse('19.99'), 'USD')).toBe(1999n);
    expect(toMinorUnits(Amount.parse('1.999'), 'KWD')).toBe(1999n);
    expect(toMinorUnits(Amount.parse('0.5'), 'JPY')).toBeNull();
  });

  it('partial refunds, in any steps, claw back exactly the share of their sum, and all of it at the end', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 8 }),
        (paidMinor, creditsWhole, steps) => {
          const p = payment(`${creditsWhole}.000000000007`, BigInt(paidMinor));
          let cumulative = 0n;
          for (const step of steps) {
            cumulative += BigInt(step);
            const { credits, refundedNowMinor } = refundClawback(p, cumulative);
            const capped = cumulative > p.amountMinor ? p.amountMinor : cumulative;
            if (refundedNowMinor > 0n) {
              p.refundCredits = p.refundCredits.plus(credits);
              p.refundedMinor = capped;
            }
            const due =
              capped === p.amountMinor ? p.credits : p.credits.mulRatio(capped, p.amountMinor, 'down');
            expect(p.refundCredits.equals(due)).toBe(true);
          }
          const full = refundClawback(p, p.amountMinor);
          p.refundCredits = p.refundCredits.plus(full.credits);
          expect(p.refundCredits.equals(p.credits)).toBe(true);
          // The same cumulative amount again takes nothing.
          expect(refundClawback({ ...p, refundedMinor: p.amountMinor }, p.amountMinor).credits.isZero()).toBe(
            true,
          );
        },
      ),
    );
  });

  it('a dispute concerns its share of the credits, never more than is left', () => {
    const p = payment('100', 900n);
    expect(disputedCredits(p, 450n).toString()).toBe('50');
    expect(disputedCredits(p, 900n).toString()).toBe('100');
    expect(disputedCredits({ ...p, refundCredits: Amount.parse('80') }, 900n).toString()).toBe('20');
  });
});
