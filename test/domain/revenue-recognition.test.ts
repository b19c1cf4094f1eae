/**
 * Examples of revenue recognition (src/domain/revenue) and of the CSV format, one rule at a time:
 * the entry → movement mapping (clawbacks are refunds; an unknown flow throws), the cumulative
 * rounding rule in 0-, 2- and 3-decimal currencies, proportional breakage and its true-up, money
 * text, and RFC 4180 round trips.
 */
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { csvLine, parseCsv } from '../../src/domain/csv/csv.js';
import {
  type BreakagePolicy,
  costInMinorUnits,
  formatMinorUnits,
  type GrantMovement,
  movementOfEntry,
  type RevenueGrant,
  recognitionOf,
  recognizeGrant,
} from '../../src/domain/revenue/recognition.js';

const A = (s: string) => Amount.parse(s);
const AT_EXPIRY: BreakagePolicy = { policy: 'at_expiry', expectedBreakageRate: Amount.ZERO };
const grant = (credits: string, cost: string, currency: string): RevenueGrant => ({
  id: 'g',
  customerId: 'c',
  creditType: 'credits',
  packId: null,
  credits: A(credits),
  costBasis: { amount: A(cost), currency },
  createdAt: 0,
});
const totals = (consumed: string, expired = '0', refunded = '0') => ({
  consumed: A(consumed).units,
  expired: A(expired).units,
  voided: 0n,
  refunded: A(refunded).units,
});

describe('movementOfEntry', () => {
  const flow = (fromAccount: string, toAccount: string) => ({
    fromAccount,
    toAccount,
    amount: A('2'),
    at: 5,
  });
  it('maps the ledger flows of a grant to movements', () => {
    expect(movementOfEntry(flow('issued', 'grant:g'), 'g')).toBeNull();
    expect(movementOfEntry(flow('grant:g', 'held:g'), 'g')).toBeNull();
    expect(movementOfEntry(flow('held:g', 'grant:g'), 'g')).toBeNull();
    expect(movementOfEntry(flow('grant:g', 'consumed'), 'g')?.kind).toBe('consumed');
    expect(movementOfEntry(flow('held:g', 'consumed'), 'g')?.kind).toBe('consumed');
    expect(movementOfEntry(flow('grant:g', 'overage'), 'g')?.kind).toBe('consumed');
    expect(movementOfEntry(flow('consumed', 'grant:g'), 'g')?.kind).toBe('unconsumed');
    expect(movementOfEntry(flow('grant:g', 'expired'), 'g')?.kind).toBe('expired');
    expect(movementOfEntry(flow('held:g', 'voided'), 'g')?.kind).toBe('voided');
    expect(movementOfEntry(flow('grant:g', 'clawed_back'), 'g')).toEqual({
      at: 5,
      kind: 'refunded',
      credits: A('2'),
    });
    expect(movementOfEntry(flow('grant:other', 'consumed'), 'g')).toBeNull();
  });
  it('throws on a flow it does not know rather than mis-state the books', () => {
    expect(() => movementOfEntry(flow('grant:g', 'somewhere'), 'g')).toThrow(/no meaning/);
    expect(() => movementOfEntry(flow('overage', 'grant:g'), 'g')).toThrow(/no meaning/);
  });
});

describe('recognition', () => {
  it('rounds the cost to the minor unit of 0-, 2- and 3-decimal currencies', () => {
    expect(costInMinorUnits({ amount: A('1000'), currency: 'JPY' })).toBe(1000n);
    expect(costInMinorUnits({ amount: A('10.005'), currency: 'USD' })).toBe(1001n);
    expect(costInMinorUnits({ amount: A('1.2345'), currency: 'KWD' })).toBe(1235n);
    expect(formatMinorUnits(1235n, 'KWD')).toBe('1.235');
    expect(formatMinorUnits(5n, 'USD')).toBe('0.05');
    expect(formatMinorUnits(-5n, 'USD')).toBe('-0.05');
    expect(formatMinorUnits(1200n, 'JPY')).toBe('1200');
  });

  it('recognises cost × consumed share, cumulatively rounded, and the parts always sum to the cost', () => {
    const g = grant('3', '10.00', 'USD');
    expect(recognitionOf(g, AT_EXPIRY, totals('1'))).toEqual({
      recognised: 333n,
      breakage: 0n,
      refunded: 0n,
      deferred: 667n,
    });
    expect(recognitionOf(g, AT_EXPIRY, totals('2'))).toMatchObject({ recognised: 667n, deferred: 333n });
    // 1 consumed, 1 expired, 1 refunded: 3.33 + 3.34 + 3.33 = 10.00 exactly, nothing deferred.
    expect(recognitionOf(g, AT_EXPIRY, totals('1', '1', '1'))).toEqual({
      recognised: 333n,
      breakage: 334n,
      refunded: 333n,
      deferred: 0n,
    });
  });

  it('periods are differences of cumulative values: thirds of a yen never drift', () => {
    const g = grant('3', '100', 'JPY');
    const movements: GrantMovement[] = [1, 2, 3].map((at) => ({ at, kind: 'consumed', credits: A('1') }));
    const periods = recognizeGrant({ grant: g, policy: AT_EXPIRY, movements, boundaries: [0, 2, 3, 4] });
    expect(periods.map((p) => p.recognised)).toEqual([33n, 34n, 33n]);
    expect(periods.map((p) => p.additions)).toEqual([100n, 0n, 0n]);
    expect(periods.map((p) => p.closing)).toEqual([67n, 33n, 0n]);
  });

  it('a reversal recognises less in its period', () => {
    const g = grant('10', '10.00', 'USD');
    const movements: GrantMovement[] = [
      { at: 1, kind: 'consumed', credits: A('4') },
      { at: 5, kind: 'unconsumed', credits: A('1') },
    ];
    const [first, second] = recognizeGrant({ grant: g, policy: AT_EXPIRY, movements, boundaries: [0, 3, 6] });
    expect(first).toMatchObject({ recognised: 400n, closing: 600n });
    expect(second).toMatchObject({ opening: 600n, recognised: -100n, closing: 700n });
  });

  it('proportional breakage follows consumption, never beyond what is open, and is trued up at expiry', () => {
    const g = grant('100', '10.00', 'USD');
    const policy: BreakagePolicy = { policy: 'proportional', expectedBreakageRate: A('0.2') };
    // 40 consumed: 40 × 0.2 / 0.8 = 10 credits of breakage.
    expect(recognitionOf(g, policy, totals('40'))).toMatchObject({
      recognised: 400n,
      breakage: 100n,
      deferred: 500n,
    });
    // 90 consumed: the estimate (22.5) is capped at the 10 still open.
    expect(recognitionOf(g, policy, totals('90'))).toMatchObject({
      recognised: 900n,
      breakage: 100n,
      deferred: 0n,
    });
    // Expired with 60 unused after 40 consumed: breakage is what actually expired.
    expect(recognitionOf(g, policy, totals('40', '60'))).toMatchObject({ breakage: 600n, deferred: 0n });
    // At expiry of only 5 after 95 consumed: the earlier estimate is reversed down to 5 credits.
    expect(recognitionOf(g, policy, totals('95', '5'))).toMatchObject({ breakage: 50n, deferred: 0n });
  });
});

describe('csv', () => {
  it('quotes only what must be quoted and reads it back', () => {
    const fields = ['plain', 'a,b', 'say "hi"', 'two\nlines', ''];
    const text = csvLine(['h1', 'h2', 'h3', 'h4', 'h5']) + csvLine(fields);
    expect(csvLine(fields)).toBe('plain,"a,b","say ""hi""","two\nlines",\r\n');
    const parsed = parseCsv(`\uFEFF${text}\r\n`);
    if ('message' in parsed) throw new Error(parsed.message);
    expect(parsed.records.map((r) => r.fields)).toEqual([['h1', 'h2', 'h3', 'h4', 'h5'], fields]);
    expect(parsed.records.map((r) => r.line)).toEqual([1, 2]);
  });
  it('reports the line of a malformed record', () => {
    expect(parseCsv('a,b\n1,"open\n')).toMatchObject({ message: 'a quoted field is not closed' });
    expect(parseCsv('a,b\nx"y,1\n')).toEqual({ line: 2, message: 'a quote inside an unquoted field' });
    expect(parseCsv('a\n"x"y\n')).toMatchObject({ line: 2 });
  });
});
