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
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000'))
        return `${where} holds a NUL character (\\u0000), which no text may contain`;
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth + 1 > MAX_JSON_DEPTH) return `${where} is nested more than ${MAX_JSON_DEPTH} levels deep`;
    if (Array.isArray(current)) {
      for (const item of current) stack.push({ value: item, depth: depth + 1 });
    } else {
      for (const [key, item] of Object.entries(current)) {
        if (key.includes('\u0000'))
          return `${where} holds a NUL character (\\u0000), which no text may contain`;
        stack.push({ value: item, depth: depth + 1 });
      }
    }
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
