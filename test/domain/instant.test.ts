import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatInstant, parseInstant, whyNotAnInstant } from '../../src/domain/time/instant.js';

describe('instants', () => {
  it('format exactly as Date#toISOString over years 0–9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), (ms) => {
        expect(formatInstant(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
    for (const edge of [0, -1, 951_782_400_000, 4_107_542_399_999, 253_402_300_799_999]) {
      expect(formatInstant(edge)).toBe(new Date(edge).toISOString());
    }
  });

  it('format the same instants again and again, past the reuse bound, exactly as the first time', () => {
    // Recently formatted instants are reused: a value seen before, interleaved with thousands of new
    // ones (so the bounded reuse empties itself several times), still formats as toISOString does.
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (repeated, seed) => {
          for (let i = 0; i < 10_000; i++) {
            const ms = i % 3 === 0 ? repeated[i % repeated.length]! : seed + i * 1_009;
            expect(formatInstant(ms)).toBe(new Date(ms).toISOString());
          }
        },
      ),
      { numRuns: 5 },
    );
  });

  it('format instants that share a slot of the recent ones, alternately, each as itself', () => {
    // Recent texts are kept direct-mapped by value (4,093 slots): instants 4,093 ms apart share a
    // slot and evict each other; negative instants map to slots too.
    fc.assert(
      fc.property(
        fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 - 4_093 * 8 }),
        fc.integer({ min: 1, max: 8 }),
        (ms, k) => {
          for (let i = 0; i < 6; i++) {
            const value = i % 2 === 0 ? ms : ms + 4_093 * k;
            expect(formatInstant(value)).toBe(new Date(value).toISOString());
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('parse RFC 3339 with offsets and round-trip through the formatter', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.parse('8999-12-31T23:59:59.999Z') }), (ms) => {
        expect(parseInstant(formatInstant(ms))).toBe(ms);
      }),
    );
    // Years outside 1000–8999 are refused (Date.UTC would read 0099 as 1999; periods near 9999
    // would run past what RFC 3339 can write).
    expect(parseInstant('0099-01-01T00:00:00Z')).toBeNull();
    expect(parseInstant('0999-12-31T23:59:59Z')).toBeNull();
    expect(parseInstant('1000-01-01T00:00:00Z')).toBe(Date.UTC(1000, 0, 1));
    expect(parseInstant('9000-01-01T00:00:00Z')).toBeNull();
    expect(parseInstant('2026-01-01T01:00:00+01:00')).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(parseInstant('2026-01-01T00:00:00.123456Z')).toBe(Date.parse('2026-01-01T00:00:00.123Z'));
    for (const bad of [
      '2026-02-30T00:00:00Z',
      '2026-01-01',
      '2026-01-01T00:00:00',
      '2026-13-01T00:00:00Z',
      'now',
    ]) {
      expect(parseInstant(bad)).toBeNull();
    }
  });

  it('explains a refusal: a leap second, a year out of range, or not RFC 3339', () => {
    expect(parseInstant('2026-06-30T23:59:60Z')).toBeNull();
    expect(whyNotAnInstant('2026-06-30T23:59:60Z')).toMatch(/leap second.*:59\.999/);
    expect(whyNotAnInstant('2016-12-31T23:59:60.5+00:00')).toMatch(/leap second/);
    expect(whyNotAnInstant('0999-01-01T00:00:00Z')).toBe('must be in the years 1000 to 8999');
    expect(whyNotAnInstant('yesterday')).toMatch(/^must be an RFC 3339 timestamp/);
  });
});
