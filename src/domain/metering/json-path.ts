/**
 * The JSONPath subset meters use to read event data: `$.tokens`, `$.usage.input_tokens`,
 * `$['model name']`, `$.items[0].qty`. Compiled once per meter.
 */
export type JsonPath = readonly (string | number)[];

const SEGMENT = /^(?:\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\])/;

/** Parses a path, or returns null when it is not one of the supported forms. */
export function parseJsonPath(text: string): JsonPath | null {
  if (!text.startsWith('$') || text.length > 256) return null;
  const segments: (string | number)[] = [];
  let rest = text.slice(1);
  while (rest.length > 0) {
    const m = SEGMENT.exec(rest);
    if (!m) return null;
    if (m[1] !== undefined) segments.push(m[1]);
    else if (m[2] !== undefined) segments.push(Number(m[2]));
    else segments.push((m[3] ?? m[4] ?? '').replace(/\\(.)/g, '$1'));
    rest = rest.slice(m[0].length);
  }
  return segments.length > 0 ? segments : null;
}

/** The value at `path` in `data`, or undefined when any step is missing. */
export function readJsonPath(data: unknown, path: JsonPath): unknown {
  let current: unknown = data;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (typeof segment === 'number') {
      if (!Array.isArray(current)) return undefined;
      current = current[segment];
    } else {
      if (Array.isArray(current) || !Object.hasOwn(current, segment)) return undefined;
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return current;
}
