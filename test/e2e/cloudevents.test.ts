import { CloudEvent, emitterFor, HTTP, httpTransport, type Message, Mode } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_API_KEY, requireBuiltCli, ServerProcess } from './server-process.js';
import { amount, entriesByRef, expectReconcileOk, readLedger, sum, units } from './support.js';

/**
 * CloudEvents 1.0 over HTTP against a real server, with the official JavaScript SDK as the
 * client: structured mode (`HTTP.structured`), binary mode (`HTTP.binary`), batched mode (the SDK
 * parses batches but has no batch serializer, so the batch is a JSON array of the SDK's events,
 * checked by the SDK's own `HTTP.toEvent`) and the SDK's emitter. docs/api.md: `subject` is the
 * customer, `source` + `id` identify the event, `time` and `data` feed the meter, malformed
 * events are refused one by one (`invalid_event` at their index) and the rest is kept.
 */

const EVENT_TYPE = 'com.example.tokens';
const RATE = '0.002';
const GRANT = '1000';
const SOURCE_A = 'https://producer.example/svc-a';
const SOURCE_B = 'https://producer.example/svc-b';

const BATCH = 'application/cloudevents-batch+json';

interface Posted {
  readonly status: number;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected loosely
  readonly body: any;
}

describe('e2e: CloudEvents with the official SDK', () => {
  let s: ServerProcess;

  beforeAll(async () => {
    requireBuiltCli();
    s = await ServerProcess.start();
    const meter = await s.post('/v1/meters', {
      id: 'ce-tokens',
      event_type: EVENT_TYPE,
      aggregation: 'sum',
      value_property: '$.tokens',
    });
    expect(meter.status, meter.text).toBe(201);
    const rate = await s.post('/v1/rates', { id: 'ce-rate', meter_id: 'ce-tokens', credits_per_unit: RATE });
    expect(rate.status, rate.text).toBe(201);
  });

  afterAll(async () => {
    if (!s) return;
    await s.stop();
    await expectReconcileOk(s);
    await s.cleanup();
  });

  /** POSTs an SDK message (its headers and body, unchanged) to /v1/events with the API key. */
  async function postMessage(message: Message): Promise<Posted> {
    const headers: Record<string, string> = { authorization: `Bearer ${E2E_API_KEY}` };
    for (const [name, value] of Object.entries(message.headers)) {
      if (typeof value === 'string') headers[name] = value;
    }
    const response = await fetch(`${s.url}/v1/events`, {
      method: 'POST',
      headers,
      body: message.body as string | Uint8Array,
    });
    const text = await response.text();
    const json = (response.headers.get('content-type') ?? '').includes('json');
    return { status: response.status, text, body: json ? JSON.parse(text) : text };
  }

  /** A batched-mode message: a JSON array of events; the SDK must read it back as the same events. */
  function batchMessage(events: readonly (CloudEvent<unknown> | Record<string, unknown>)[]): Message {
    const message = { headers: { 'content-type': BATCH }, body: JSON.stringify(events) };
    return message;
  }

  async function createCustomer(id: string, grant: string | null = GRANT): Promise<void> {
    const created = await s.post('/v1/customers', { id });
    expect(created.status, created.text).toBe(201);
    if (grant === null) return;
    const granted = await s.post(`/v1/customers/${id}/grants`, { amount: grant });
    expect(granted.status, granted.text).toBe(201);
  }

  async function usage(
    query: string,
  ): Promise<{ window_start: string; window_end: string; value: string }[]> {
    const res = await s.get(`/v1/meters/ce-tokens/usage?${query}`);
    expect(res.status, res.text).toBe(200);
    return (res.body.data as { window_start: string; window_end: string; value: string }[]).map(
      ({ window_start, window_end, value }) => ({ window_start, window_end, value }),
    );
  }

  /** Available balance must be the grant minus exactly tokens × RATE, and one burn per rated event. */
  async function expectBurned(customer: string, tokens: readonly number[]): Promise<void> {
    const credits = tokens.map((t) => BigInt(t) * units(RATE));
    const balance = await s.get(`/v1/customers/${customer}/balance`);
    expect(balance.status, balance.text).toBe(200);
    expect(balance.body.available, `${customer} available`).toBe(amount(units(GRANT) - sum(credits)));
    const burns = entriesByRef(await readLedger(s, customer), ['debit', 'overage']);
    const burned = [...burns.values()].map((entries) => amount(sum(entries.map((e) => units(e.amount)))));
    expect(burned.sort(), `${customer}: one burn per event`).toEqual(credits.map(amount).sort());
  }

  const accepted = (n: number, duplicates = 0) => ({ accepted: n, duplicates, unmetered: 0, rejected: [] });
  const invalidAt = (index: number) => ({
    index,
    error: { code: 'invalid_event', message: expect.any(String) },
  });

  it('structured, binary and batched modes: subject is the customer, time and data feed the meter', async () => {
    await createCustomer('ce-acme');
    await createCustomer('ce-beta');

    // Structured mode. A time with an offset: 07:30+02:00 is 05:30Z.
    const structured = HTTP.structured(
      new CloudEvent({
        id: 'evt-1',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-acme',
        time: '2026-03-04T07:30:00+02:00',
        datacontenttype: 'application/json',
        data: { tokens: 1200, model: 'gpt-x' },
      }),
    );
    expect(structured.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(await postMessage(structured)).toMatchObject({ status: 202, body: accepted(1) });

    // Binary mode: attributes in ce-* headers (an extension attribute too), the body is the data.
    const binary = HTTP.binary(
      new CloudEvent({
        id: 'evt-2',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-acme',
        time: '2026-03-04T06:15:00.000Z',
        tenant: 'blue',
        data: { tokens: 300 },
      }),
    );
    expect(binary.headers['ce-subject']).toBe('ce-acme');
    expect(binary.headers['ce-tenant']).toBe('blue');
    expect(await postMessage(binary)).toMatchObject({ status: 202, body: accepted(1) });

    // Batched mode: per-index outcomes; an unknown subject is customer_not_found, the rest is kept.
    const batch = batchMessage([
      new CloudEvent({
        id: 'evt-3',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-beta',
        time: '2026-03-05T23:59:59.999Z',
        data: { tokens: 50 },
      }),
      new CloudEvent({
        id: 'evt-4',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-acme',
        time: '2026-03-04T05:59:59.999Z', // the same hour as evt-1
        data: { tokens: 7 },
      }),
      new CloudEvent({
        id: 'evt-5',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-nobody',
        time: '2026-03-04T05:00:00.000Z',
        data: { tokens: 1_000_000 },
      }),
      // Binary data: the SDK sends it as data_base64; here it is the UTF-8 of a JSON object.
      new CloudEvent({
        id: 'evt-6',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-beta',
        time: '2026-03-06T00:00:00.000Z',
        datacontenttype: 'application/json',
        data: new TextEncoder().encode('{"tokens": 11}'),
      }),
    ]);
    const parsedBySdk = HTTP.toEvent(batch) as CloudEvent<unknown>[];
    expect(parsedBySdk.map((e) => e.id)).toEqual(['evt-3', 'evt-4', 'evt-5', 'evt-6']);
    expect(JSON.parse(batch.body as string)[3]).toHaveProperty('data_base64');
    expect(await postMessage(batch)).toMatchObject({
      status: 202,
      body: {
        accepted: 3,
        duplicates: 0,
        rejected: [{ index: 2, error: { code: 'customer_not_found', message: expect.any(String) } }],
      },
    });

    // Without `time` the event is dated when it arrives.
    const before = new Date(Date.now() - 1000).toISOString();
    const untimed = await postMessage({
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: 'evt-7',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-beta',
        data: { tokens: 2 },
      }),
    });
    expect(untimed).toMatchObject({ status: 202, body: accepted(1) });
    const after = new Date(Date.now() + 1000).toISOString();

    expect(await usage('customer_id=ce-acme&window=hour')).toEqual([
      { window_start: '2026-03-04T05:00:00.000Z', window_end: '2026-03-04T06:00:00.000Z', value: '1207' },
      { window_start: '2026-03-04T06:00:00.000Z', window_end: '2026-03-04T07:00:00.000Z', value: '300' },
    ]);
    expect(await usage('customer_id=ce-beta&window=day&to=2026-04-01T00:00:00.000Z')).toEqual([
      { window_start: '2026-03-05T00:00:00.000Z', window_end: '2026-03-06T00:00:00.000Z', value: '50' },
      { window_start: '2026-03-06T00:00:00.000Z', window_end: '2026-03-07T00:00:00.000Z', value: '11' },
    ]);
    // The time-zone of the windows applies to the same instants: 23:59:59.999Z is the 6th in Berlin.
    expect(
      await usage('customer_id=ce-beta&window=day&time_zone=Europe/Berlin&to=2026-04-01T00:00:00.000Z'),
    ).toEqual([
      { window_start: '2026-03-05T23:00:00.000Z', window_end: '2026-03-06T23:00:00.000Z', value: '61' },
    ]);
    const now = await usage(`customer_id=ce-beta&window=month&from=${before}&to=${after}`);
    expect(now.map((r) => r.value)).toEqual(['2']);
    // The unknown subject stored nothing.
    expect(await usage('window=month&to=2026-04-01T00:00:00.000Z')).toEqual([
      { window_start: '2026-03-01T00:00:00.000Z', window_end: '2026-04-01T00:00:00.000Z', value: '1568' },
    ]);
    await expectBurned('ce-acme', [1200, 300, 7]);
    await expectBurned('ce-beta', [50, 11, 2]);
  });

  it('identity is (source, id): same id from another source is new; same source and id is a duplicate', async () => {
    await createCustomer('ce-gamma');
    await createCustomer('ce-delta');
    const event = (source: string, tokens: number, extra: Record<string, unknown> = {}) =>
      new CloudEvent({
        id: 'dup-1',
        source,
        type: EVENT_TYPE,
        subject: 'ce-gamma',
        time: '2026-05-01T10:00:00.000Z',
        data: { tokens },
        ...extra,
      });

    expect(await postMessage(HTTP.structured(event(SOURCE_A, 100)))).toMatchObject({
      status: 202,
      body: accepted(1),
    });
    // The same source and id again, whatever the mode, data, time or subject: a duplicate.
    expect(await postMessage(HTTP.structured(event(SOURCE_A, 100)))).toMatchObject({
      status: 202,
      body: accepted(0, 1),
    });
    expect(
      await postMessage(HTTP.binary(event(SOURCE_A, 999, { time: '2026-05-02T10:00:00.000Z' }))),
    ).toMatchObject({ status: 202, body: accepted(0, 1) });
    expect(await postMessage(HTTP.binary(event(SOURCE_A, 5, { subject: 'ce-delta' })))).toMatchObject({
      status: 202,
      body: accepted(0, 1),
    });
    // The same id from another source is another event.
    expect(await postMessage(HTTP.binary(event(SOURCE_B, 10)))).toMatchObject({
      status: 202,
      body: accepted(1),
    });
    // A native event with that id has no source: another event again.
    const native = await s.post('/v1/events', {
      id: 'dup-1',
      type: EVENT_TYPE,
      customer_id: 'ce-gamma',
      time: '2026-05-01T10:00:00.000Z',
      data: { tokens: 1 },
    });
    expect(native.status, native.text).toBe(202);
    expect(native.body).toEqual(accepted(1));
    // In one batch: both known events are duplicates; a third source is new, once.
    const SOURCE_C = 'urn:producer:c';
    expect(
      await postMessage(
        batchMessage([event(SOURCE_A, 1), event(SOURCE_B, 1), event(SOURCE_C, 20), event(SOURCE_C, 20)]),
      ),
    ).toMatchObject({ status: 202, body: accepted(1, 3) });

    expect(await usage('customer_id=ce-gamma&window=day')).toEqual([
      { window_start: '2026-05-01T00:00:00.000Z', window_end: '2026-05-02T00:00:00.000Z', value: '131' },
    ]);
    expect(await usage('customer_id=ce-delta&window=day')).toEqual([]);
    await expectBurned('ce-gamma', [100, 10, 1, 20]);
    await expectBurned('ce-delta', []);
  });

  it('malformed CloudEvents in a batch are rejected at their index as invalid_event; the rest is kept', async () => {
    await createCustomer('ce-eps');
    const valid = (id: string, tokens: number, extra: Record<string, unknown> = {}, strict = true) =>
      new CloudEvent(
        {
          id,
          source: SOURCE_A,
          type: EVENT_TYPE,
          subject: 'ce-eps',
          time: '2026-06-01T12:00:00.000Z',
          data: { tokens },
          ...extra,
        },
        strict,
      );
    const noSubject = new CloudEvent({
      id: 'bad-subject-missing',
      source: SOURCE_A,
      type: EVENT_TYPE,
      time: '2026-06-01T12:00:00.000Z',
      data: { tokens: 1 },
    });
    const raw = (overrides: Record<string, unknown>) => ({ ...valid('raw', 1).toJSON(), ...overrides });
    const withoutId = raw({});
    delete withoutId['id'];
    const batch = batchMessage([
      valid('ok-1', 5),
      noSubject,
      valid('bad-specversion', 1, { specversion: '0.3' }),
      valid('bad-text-data', 1, { datacontenttype: 'text/plain', data: 'five tokens' }),
      valid('bad-binary-data', 1, { data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) }),
      valid('bad-array-data', 1, { data: [1, 2] }, false),
      valid('bad-subject', 1, { subject: 'not a customer id!' }),
      raw({ id: 'bad-time', time: 'yesterday' }),
      withoutId,
      raw({ id: 'bad-no-source', source: undefined }),
      raw({ id: 'bad-no-type', type: '' }),
      valid('ok-2', 6),
    ]);
    const res = await postMessage(batch);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({
      accepted: 2,
      duplicates: 0,
      unmetered: 0,
      rejected: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(invalidAt),
    });

    // Single events, structured and binary: 400 invalid_batch with the rejection at index 0, nothing stored.
    for (const message of [
      HTTP.structured(noSubject),
      HTTP.structured(valid('bad-specversion', 1, { specversion: '0.3' })),
      HTTP.binary(noSubject),
      HTTP.binary(valid('bad-specversion', 1, { specversion: '0.3' })),
      HTTP.binary(valid('bad-array-data', 1, { data: [1, 2] }, false)),
    ]) {
      const single = await postMessage(message);
      expect(single.status, single.text).toBe(400);
      expect(single.body).toEqual({
        error: { code: 'invalid_batch', message: expect.any(String), details: { rejected: 1 } },
        accepted: 0,
        duplicates: 0,
        unmetered: 0,
        rejected: [invalidAt(0)],
      });
    }

    // A rejected event was not stored: fixed and sent again, it is accepted, not a duplicate.
    expect(
      await postMessage(HTTP.structured(noSubject.cloneWith({ subject: 'ce-eps' }) as CloudEvent<unknown>)),
    ).toMatchObject({ status: 202, body: accepted(1) });

    expect(await usage('customer_id=ce-eps&window=day')).toEqual([
      { window_start: '2026-06-01T00:00:00.000Z', window_end: '2026-06-02T00:00:00.000Z', value: '12' },
    ]);
    await expectBurned('ce-eps', [5, 6, 1]);
  });

  it('binary mode with non-JSON data (text/plain body) is an invalid_event at index 0 (so the batch is invalid_batch)', async () => {
    await createCustomer('ce-zeta');
    const message = HTTP.binary(
      new CloudEvent({
        id: 'bad-text',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-zeta',
        datacontenttype: 'text/plain',
        data: 'five tokens',
      }),
    );
    expect(message.headers['content-type']).toBe('text/plain');
    const res = await postMessage(message);
    expect(res.status, res.text).toBe(400);
    expect(res.body).toEqual({
      error: { code: 'invalid_batch', message: expect.any(String), details: { rejected: 1 } },
      accepted: 0,
      duplicates: 0,
      unmetered: 0,
      rejected: [invalidAt(0)],
    });
    expect(await usage('customer_id=ce-zeta&window=month')).toEqual([]);
  });

  it('binary mode with a structured-syntax JSON media type (+json) is JSON data and is accepted', async () => {
    await createCustomer('ce-theta');
    const message = HTTP.binary(
      new CloudEvent({
        id: 'vendor-json',
        source: SOURCE_A,
        type: EVENT_TYPE,
        subject: 'ce-theta',
        time: '2026-08-01T00:00:00.000Z',
        datacontenttype: 'application/vnd.example.usage+json',
        data: { tokens: 9 },
      }),
    );
    expect(message.headers['content-type']).toBe('application/vnd.example.usage+json');
    const res = await postMessage(message);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual(accepted(1));
    await expectBurned('ce-theta', [9]);
  });

  it("the SDK's own emitter (http transport) works unchanged in binary and structured mode", async () => {
    await createCustomer('ce-eta');
    const transport = httpTransport(`${s.url}/v1/events`);
    const headers = { authorization: `Bearer ${E2E_API_KEY}` };
    const modes = [Mode.BINARY, Mode.STRUCTURED] as const;
    for (const [i, mode] of modes.entries()) {
      const emit = emitterFor(transport, { mode });
      const event = new CloudEvent({
        id: `emitted-${i}`,
        source: SOURCE_B,
        type: EVENT_TYPE,
        subject: 'ce-eta',
        time: '2026-07-01T00:00:00.000Z',
        data: { tokens: 40 + i },
      });
      // Per-call options reach the transport: that is where the API key goes.
      const response = (await emit(event, { headers })) as { body: string };
      expect(JSON.parse(response.body), mode).toEqual(accepted(1));
    }
    expect(await usage('customer_id=ce-eta&window=month')).toEqual([
      { window_start: '2026-07-01T00:00:00.000Z', window_end: '2026-08-01T00:00:00.000Z', value: '81' },
    ]);
    await expectBurned('ce-eta', [40, 41]);
  });
});
