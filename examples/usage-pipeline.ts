/**
 * A usage pipeline: events leave the product as CloudEvents built with the official SDK
 * (`cloudevents`), in structured mode, binary mode and as a batch, and Burndown meters, prices and
 * burns them at ingest. Re-sending an event is a duplicate and burns nothing. Run:
 * `npx tsx examples/usage-pipeline.ts` (starts a local server unless BURNDOWN_URL and
 * BURNDOWN_API_KEY are set).
 */
import { createBurndownClient } from '@burndown/client';
import { CloudEvent, HTTP } from 'cloudevents';
import { runExample } from './local-server.js';

await runExample(async ({ url, apiKey }) => {
  const bd = createBurndownClient({ baseUrl: url, apiKey });
  const suffix = Date.now().toString(36);
  const customer = `pipeline-${suffix}`;
  const type = `com.example.llm.tokens.${suffix}`;
  await bd.POST('/v1/customers', { body: { id: customer } });
  await bd.POST('/v1/customers/{id}/grants', {
    params: { path: { id: customer } },
    body: { amount: '1000' },
  });
  await bd.POST('/v1/meters', {
    body: { id: `tokens-${suffix}`, event_type: type, aggregation: 'sum', value_property: '$.tokens' },
  });
  await bd.POST('/v1/rates', {
    body: { id: `tokens-rate-${suffix}`, meter_id: `tokens-${suffix}`, credits_per_unit: '0.01' },
  });

  const event = (id: string, tokens: number) =>
    new CloudEvent({ id, source: 'app://chat', type, subject: customer, data: { tokens } });

  /** Sends one HTTP message the SDK built (headers and body) to POST /v1/events. */
  async function send(message: { headers: Record<string, unknown>; body: unknown }) {
    const res = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: {
        ...(message.headers as Record<string, string>),
        authorization: `Bearer ${apiKey}`,
        'idempotency-key': crypto.randomUUID(),
      },
      body: typeof message.body === 'string' ? message.body : JSON.stringify(message.body),
    });
    const body = (await res.json()) as { accepted: number; duplicates: number };
    if (res.status !== 202) throw new Error(`events answered ${res.status}: ${JSON.stringify(body)}`);
    return body;
  }

  // Structured mode: the whole event is the JSON body (application/cloudevents+json).
  console.log('structured', await send(HTTP.structured(event('e-1', 1000))));
  // Binary mode: attributes in ce-* headers, the body is the data.
  console.log('binary', await send(HTTP.binary(event('e-2', 2000))));
  // A batch (application/cloudevents-batch+json), the first event again among them: a duplicate.
  const batch = [event('e-1', 1000), event('e-3', 500), event('e-4', 500)];
  console.log(
    'batch',
    await send({
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify(batch.map((e) => e.toJSON())),
    }),
  );

  // 4,000 tokens at 0.01 credits: 40 credits burned.
  const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path: { id: customer } } });
  console.log(`available after usage: ${balance.available}`);
  let events = 0;
  for await (const stored of bd.list('/v1/events', {
    params: { query: { customer_id: customer, limit: '2' } },
  })) {
    events += 1;
    console.log(`  ${stored.id} (${stored.source}) ${stored.status}, duplicates ${stored.duplicates}`);
  }
  if (balance.available !== '960' || events !== 4) throw new Error('unexpected usage');
});
