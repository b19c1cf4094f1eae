/**
 * The JSON limits walk every event of every batch, so they run without allocating, by a recursion
 * that stops at the depth limit: these pin the limit exactly, and that no depth overflows the stack.
 */
import { describe, expect, it } from 'vitest';
import { jsonValueProblem, MAX_JSON_DEPTH } from '../../src/http/json-limits.js';

/** `depth` levels of alternating objects and arrays around a string. */
function nested(depth: number, leaf: unknown = 'x'): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

describe('jsonValueProblem', () => {
  it('accepts exactly the documented depth and refuses one level more', () => {
    expect(jsonValueProblem(nested(MAX_JSON_DEPTH))).toBeNull();
    expect(jsonValueProblem(nested(MAX_JSON_DEPTH + 1), 'the event')).toBe(
      `the event is nested more than ${MAX_JSON_DEPTH} levels deep`,
    );
    // Scalars inside the deepest container do not count as a level.
    expect(jsonValueProblem(nested(MAX_JSON_DEPTH, 42))).toBeNull();
  });

  it('refuses any depth without overflowing the stack', () => {
    expect(jsonValueProblem(nested(200_000))).toMatch(/nested more than 32 levels deep/);
  });

  it('finds a NUL character in a value or a key, at any place of a wide value', () => {
    const wide = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, [i, `v${i}`]]));
    expect(jsonValueProblem(wide)).toBeNull();
    expect(jsonValueProblem({ ...wide, last: ['ok', 'bad\u0000'] }, 'the body')).toBe(
      'the body holds a NUL character (\\u0000), which no text may contain',
    );
    expect(jsonValueProblem({ ...wide, 'bad\u0000key': 1 })).toMatch(/NUL character/);
    expect(jsonValueProblem('plain\u0000')).toMatch(/NUL character/);
  });

  it('ignores inherited properties, as the object a JSON parser makes has none', () => {
    const proto = { inherited: 'bad\u0000' };
    expect(jsonValueProblem(Object.create(proto))).toBeNull();
  });
});
