import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { jsonCell } from '../../src/http/routes/exports.js';
import { amountText } from '../../src/storage/sql/finance-queries.js';

/**
 * Exports write text on fast paths: stored amounts without parsing the canonical ones (the text
 * must be what Amount writes), and strings quoted without JSON.stringify when nothing needs escaping
 * (the text must be what JSON.stringify writes).
 */
describe('amountText (exports)', () => {
  it('gives Amount.toString() for canonical SQLite text and PostgreSQL NUMERIC(48,12) text alike', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), (units) => {
        const amount = Amount.fromUnits(units);
        const canonical = amount.toString();
        expect(amountText(canonical)).toBe(canonical);
        // What PostgreSQL answers: always 12 decimals.
        const negative = units < 0n;
        const digits = (negative ? -units : units).toString().padStart(13, '0');
        const numeric = `${negative ? '-' : ''}${digits.slice(0, -12)}.${digits.slice(-12)}`;
        expect(amountText(numeric)).toBe(canonical);
      }),
    );
  });

  it('normalises the non-canonical forms', () => {
    expect(amountText('-0')).toBe('0');
    expect(amountText('007')).toBe('7');
    expect(amountText('1.50')).toBe('1.5');
    expect(amountText('-0.000')).toBe('0');
    expect(amountText(12)).toBe('12');
  });
});

describe('jsonCell (exports)', () => {
  it('writes what JSON.stringify writes, for any string and the other cells', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })),
        (value) => {
          expect(jsonCell(value)).toBe(JSON.stringify(value));
        },
      ),
      { numRuns: 5000 },
    );
    for (const value of ['a"b', 'a\\b', '\n', '\u0000', '\u2028', '\ud800', '\udc00x', '😀', '\u007f', '']) {
      expect(jsonCell(value)).toBe(JSON.stringify(value));
    }
    for (const value of [null, true, false, 0, 42, -1.5]) expect(jsonCell(value)).toBe(JSON.stringify(value));
  });
});
