// The usage events of the ingest benchmark (bench/events.mjs) and of its ceiling
// (bench/events-ceiling.mjs), so both write the same rows: ids, customers, type and data.
import { customerId } from './lib.mjs';

export const EVENT_TYPE = 'llm.tokens';
export const MODELS = ['gpt-x', 'gpt-x-mini', 'claude-y', 'llama-z'];
export const WORKSPACE = 'default';

/** Unique, roughly time-ordered event ids: `<run tag>-<stream>-<sequence>`. */
export const eventId = (tag, stream, seq) => `${tag}-${stream}-${seq}`;

/** Customer ids as seeded by lib.mjs's seedCustomers, precomputed. */
export const customerIds = (n) => Array.from({ length: n }, (_, i) => customerId(i));

/** A random event's customer and data (tokens 1–2,000, one of four models). */
export function randomEvent(customers) {
  return {
    customer: customers[(Math.random() * customers.length) | 0],
    model: MODELS[(Math.random() * MODELS.length) | 0],
    tokens: 1 + ((Math.random() * 2000) | 0),
  };
}

/** The stored `data` column of such an event: JSON.stringify of the request's `data`. */
export const dataText = (e) => `{"model":"${e.model}","tokens":${e.tokens}}`;

/**
 * The JSON body of a batch of `size` native events, built as text (cheap for the load generator).
 * Ids are `eventId(tag, stream, firstSeq + i)`; every event's time is `timeIso`.
 */
export function batchBody(customers, tag, stream, firstSeq, size, timeIso) {
  const parts = new Array(size);
  for (let i = 0; i < size; i++) {
    const e = randomEvent(customers);
    parts[i] =
      `{"id":"${eventId(tag, stream, firstSeq + i)}","type":"${EVENT_TYPE}","customer_id":"${e.customer}",` +
      `"time":"${timeIso}","data":${dataText(e)}}`;
  }
  return `[${parts.join(',')}]`;
}
