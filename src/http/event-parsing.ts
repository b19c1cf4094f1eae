import { parseInstant, whyNotAnInstant } from '../domain/time/instant.js';
import type { IncomingEvent } from '../services/metering.js';
import { jsonValueProblem } from './json-limits.js';

/** Marks a binary-mode CloudEvent body that is not JSON (its data cannot be metered). */
export const NOT_JSON_BODY = Symbol('not a JSON body');

/** Why one event of a batch was refused. */
export interface EventRejection {
  readonly code: 'invalid_event' | 'customer_not_found' | 'value_out_of_range' | 'internal_error';
  readonly message: string;
}

/** A customer id, as the `Id` schema has it (no `.` or `..` alone, no `..` inside). */
const ID = /^(?!\.{1,2}$)(?!.*\.\.)[A-Za-z0-9._:-]{1,128}$/;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;

/** The fields a native event may have (a set made once: this runs for every event of every batch). */
const NATIVE_EVENT_FIELDS: ReadonlySet<string> = new Set(['id', 'type', 'customer_id', 'time', 'data']);

/**
 * A native event: `{"id", "type", "customer_id", "time"?, "data"}`; `time` defaults to `now`, the
 * instant the server received the batch (as for CloudEvents).
 */
export function parseNativeEvent(raw: unknown, now: number): IncomingEvent | EventRejection {
  if (!isObject(raw)) return invalid('an event must be a JSON object');
  const problem = jsonValueProblem(raw, 'the event');
  if (problem !== null) return invalid(problem);
  if (!text(raw['id'], 256)) return invalid('id must be a string of 1 to 256 characters');
  if (!text(raw['type'], 256)) return invalid('type must be a string of 1 to 256 characters');
  if (typeof raw['customer_id'] !== 'string' || !ID.test(raw['customer_id'])) {
    return invalid('customer_id must be a customer id');
  }
  const time =
    raw['time'] === undefined ? now : typeof raw['time'] === 'string' ? parseInstant(raw['time']) : null;
  if (time === null) return invalidTime(raw['time']);
  if (!isObject(raw['data'])) return invalid('data must be a JSON object');
  for (const key of Object.keys(raw)) {
    if (!NATIVE_EVENT_FIELDS.has(key)) return invalid(`unknown field ${key}`);
  }
  return {
    id: raw['id'] as string,
    source: null,
    type: raw['type'] as string,
    customerId: raw['customer_id'],
    time,
    data: raw['data'],
  };
}

/**
 * A CloudEvent 1.0 in structured form. `subject` names the customer; `source` + `id` identify
 * the event; `time` defaults to when it arrives; `data` must be a JSON object (or JSON text of one).
 */
export function parseCloudEvent(raw: unknown, now: number): IncomingEvent | EventRejection {
  if (!isObject(raw)) return invalid('a CloudEvent must be a JSON object');
  const problem = jsonValueProblem(raw, 'the event');
  if (problem !== null) return invalid(problem);
  if (raw['specversion'] !== '1.0') return invalid('specversion must be "1.0"');
  if (!text(raw['id'], 256)) return invalid('id must be a non-empty string');
  if (!text(raw['source'], 1024)) return invalid('source must be a non-empty string');
  if (!text(raw['type'], 256)) return invalid('type must be a non-empty string');
  if (typeof raw['subject'] !== 'string' || !ID.test(raw['subject']))
    return invalid('subject must be the customer id');
  let time = now;
  if (raw['time'] !== undefined) {
    const parsed = typeof raw['time'] === 'string' ? parseInstant(raw['time']) : null;
    if (parsed === null) return invalidTime(raw['time']);
    time = parsed;
  }
  let data: unknown = raw['data'];
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      return invalid('data must be a JSON object');
    }
  }
  if (data === undefined && typeof raw['data_base64'] === 'string') {
    try {
      data = JSON.parse(Buffer.from(raw['data_base64'], 'base64').toString('utf8'));
    } catch {
      return invalid('data_base64 must hold a JSON object');
    }
  }
  if (!isObject(data)) return invalid('data must be a JSON object');
  if (data !== raw['data']) {
    // Data decoded from text was not part of the check above.
    const dataProblem = jsonValueProblem(data, 'the event data');
    if (dataProblem !== null) return invalid(dataProblem);
  }
  return {
    id: raw['id'] as string,
    source: raw['source'] as string,
    type: raw['type'] as string,
    customerId: raw['subject'],
    time,
    data,
  };
}

/** A CloudEvent in binary mode: attributes in `ce-*` headers, the body is `data`. */
export function parseBinaryCloudEvent(
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
  now: number,
) {
  if (typeof body === 'object' && body !== null && NOT_JSON_BODY in body) {
    return invalid('binary-mode data must be JSON (application/json or a +json media type)');
  }
  const header = (name: string) => {
    const value = headers[`ce-${name}`];
    return Array.isArray(value) ? value[0] : value;
  };
  return parseCloudEvent(
    {
      specversion: header('specversion'),
      id: header('id'),
      source: header('source'),
      type: header('type'),
      subject: header('subject'),
      ...(header('time') === undefined ? {} : { time: header('time') }),
      data: body,
    },
    now,
  );
}

function invalidTime(time: unknown): EventRejection {
  return invalid(
    `time ${typeof time === 'string' ? whyNotAnInstant(time) : 'must be an RFC 3339 timestamp'}`,
  );
}

function invalid(message: string): EventRejection {
  return { code: 'invalid_event', message };
}
