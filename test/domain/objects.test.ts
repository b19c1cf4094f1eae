import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extend } from '../../src/domain/objects.js';

describe('extend', () => {
  it('equals the spread literal it replaces: same own keys in the same order, extra wins, base untouched', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.integer()),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.integer()),
        (base, extra) => {
          // fast-check's dictionaries may carry a __proto__ key; extend is for objects the code built.
          fc.pre(!Object.hasOwn(base, '__proto__'));
          const before = JSON.stringify(base);
          const copy = extend(base, extra);
          const literal = { ...base, ...extra };
          expect(Object.keys(copy)).toEqual(Object.keys(literal));
          expect(copy).toEqual(literal);
          expect(copy).not.toBe(base);
          expect(JSON.stringify(base)).toBe(before);
        },
      ),
    );
  });

  it('copies own enumerable properties only, onto a plain object', () => {
    const proto = { inherited: 1 };
    const base = Object.create(proto) as { own?: number; inherited?: number };
    base.own = 2;
    const copy = extend(base, { now: 3 });
    expect(copy).toEqual({ own: 2, now: 3 });
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
  });
});
