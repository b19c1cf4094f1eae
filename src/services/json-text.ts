/**
 * A body already serialised as JSON text, embedded as is wherever a presented body is serialised
 * ({@link jsonOf}). A presenter returns one when it can build the text for less than
 * `JSON.stringify` of an object tree: a debit's answer lists every grant of the customer, and
 * most of them are unchanged since the previous answer, so their text is reused
 * (src/services/balance-document.ts). Node 20 has no `JSON.rawJSON` to do this inside
 * `JSON.stringify`, so a `JsonText` is only ever a whole body, never a part of one.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** The JSON text of a presented body: a {@link JsonText}'s own text, anything else `JSON.stringify`'d. */
export function jsonOf(body: unknown): string {
  return body instanceof JsonText ? body.text : JSON.stringify(body);
}

/**
 * `JSON.stringify({ ...before, [key]: <value whose JSON text is rawJson>, ...after })`, with the
 * keys in that order, without serialising the embedded value again. `before` and `after` must be
 * plain objects with at least one key each that `JSON.stringify` keeps (not undefined).
 */
export function jsonWithEmbedded(
  before: Readonly<Record<string, unknown>>,
  key: string,
  rawJson: string,
  after: Readonly<Record<string, unknown>>,
): string {
  const head = JSON.stringify(before);
  const tail = JSON.stringify(after);
  return `${head.slice(0, -1)},${JSON.stringify(key)}:${rawJson},${tail.slice(1)}`;
}
