/**
 * Limits every parsed JSON value must meet before anything serialises or stores it:
 * `JSON.parse` copes with any nesting, but the recursion after it (`JSON.stringify`, schema
 * validation, fingerprints) overflows the stack near 5,000 levels, and PostgreSQL text cannot hold
 * a NUL character. Checking once, iteratively, turns both into a 400 (or, per event, a rejection
 * of that event alone) instead of a 500.
 */

/** Deepest nesting of objects and arrays in a request body (or in one event), the top level counting as 1. */
export const MAX_JSON_DEPTH = 32;

/** What is wrong with a JSON value, as a message naming where; null when it is fine. */
export function jsonValueProblem(value: unknown, where = 'the body'): string | null {
  const problem = problemIn(value, 1);
  if (problem === null) return null;
  return problem === 'nul'
    ? `${where} holds a NUL character (\\u0000), which no text may contain`
    : `${where} is nested more than ${MAX_JSON_DEPTH} levels deep`;
}

/**
 * The first problem in `value` at nesting level `depth`. Recursive, allocating nothing (it runs on
 * every event of every batch): the recursion stops at {@link MAX_JSON_DEPTH}, so it cannot overflow.
 */
function problemIn(value: unknown, depth: number): 'nul' | 'depth' | null {
  if (typeof value === 'string') return value.includes('\u0000') ? 'nul' : null;
  if (typeof value !== 'object' || value === null) return null;
  if (depth > MAX_JSON_DEPTH) return 'depth';
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = problemIn(item, depth + 1);
      if (problem !== null) return problem;
    }
    return null;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    if (key.includes('\u0000')) return 'nul';
    const problem = problemIn(record[key], depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * The canonical JSON text of a value that passed {@link jsonValueProblem}: object keys sorted, no
 * whitespace. Two bodies that parse to the same value have the same canonical text, so an
 * idempotency fingerprint built on it ignores key order and formatting.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
