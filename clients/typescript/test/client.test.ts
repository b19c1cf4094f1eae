/**
 * The client against a real server: `node dist/cli/main.js serve` over SQLite on a random port,
 * started here. Covers every operation group, typed errors, idempotent retries and paging.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, startLocalServer } from '../../../examples/local-server.js';
import { BurndownApiError, type BurndownClient, createBurndownClient } from '../src/index.js';

let server: LocalServer;
let bd: BurndownClient;

beforeAll(async () => {
  server = await startLocalServer();
  bd = createBurndownClient({ baseUrl: server.url, apiKey: server.apiKey });
});
afterAll(async () => {
  await server?.stop();
});

async function refusal(call: Promise<unknown>): Promise<BurndownApiError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof BurndownApiError) return error;
    throw error;
  }
  throw new Error('expected an error answer');
}

describe('@burndown/client against a real server', () => {
  it('customers and credit types: create, get, update, list with an async iterator over pages', async () => {
    for (const id of ['c-1', 'c-2', 'c-3', 'c-4', 'c-5']) {
      const c = await bd.POST('/v1/customers', { body: { id, name: `Customer ${id}` } });
      expect(c.id).toBe(id);
    }
    const updated = await bd.PATCH('/v1/customers/{id}', {
      params: { path: { id: 'c-1' } },
      body: { name: 'One' },
    });
    expect(updated.name).toBe('One');
    expect((await bd.GET('/v1/customers/{id}', { params: { path: { id: 'c-1' } } })).name).toBe('One');
    const ids: string[] = [];
    for await (const c of bd.list('/v1/customers', { params: { query: { limit: '2' } } })) ids.push(c.id);
    expect(ids).toEqual(expect.arrayContaining(['c-1', 'c-2', 'c-3', 'c-4', 'c-5']));
    expect(ids.length).toBe(5);
    await bd.POST('/v1/credit-types', { body: { id: 'gpu-seconds' } });
    const types = await bd.GET('/v1/credit-types');
    expect(types.data.map((t) => t.id)).toContain('gpu-seconds');
    const missing = await refusal(bd.GET('/v1/customers/{id}', { params: { path: { id: 'nobody' } } }));
    expect(missing.status).toBe(404);
    expect(missing.code).toBe('not_found');
    const dup = await refusal(bd.POST('/v1/customers', { body: { id: 'c-1' } }));
    expect([dup.status, dup.code]).toEqual([409, 'already_exists']);
  });

  it('grants, debits, holds, corrections, balances and the ledger; amounts are strings', async () => {
    const path = { id: 'c-2' };
    const grant = await bd.POST('/v1/customers/{id}/grants', { params: { path }, body: { amount: '100.5' } });
    expect(grant.remaining).toBe('100.5');
    expect(typeof grant.amount).toBe('string');
    expect((await bd.GET('/v1/grants/{grant_id}', { params: { path: { grant_id: grant.id } } })).id).toBe(
      grant.id,
    );
    const debit = await bd.POST('/v1/customers/{id}/debits', { params: { path }, body: { amount: '0.5' } });
    expect(debit.balance_after.available).toBe('100');
    const short = await refusal(
      bd.POST('/v1/customers/{id}/debits', { params: { path }, body: { amount: '1000' } }),
    );
    expect([short.status, short.code]).toEqual([402, 'insufficient_credits']);
    expect(short.details).toMatchObject({ available: '100', requested: '1000' });
    const hold = await bd.POST('/v1/customers/{id}/holds', { params: { path }, body: { amount: '40' } });
    expect((await bd.GET('/v1/holds/{hold_id}', { params: { path: { hold_id: hold.id } } })).status).toBe(
      'active',
    );
    const capture = await bd.POST('/v1/holds/{hold_id}/capture', {
      params: { path: { hold_id: hold.id } },
      body: { amount: '30' },
    });
    expect(capture.hold_id).toBe(hold.id);
    const again = await refusal(
      bd.POST('/v1/holds/{hold_id}/release', { params: { path: { hold_id: hold.id } } }),
    );
    expect([again.status, again.code]).toEqual([409, 'hold_not_active']);
    const hold2 = await bd.POST('/v1/customers/{id}/holds', { params: { path }, body: { amount: '10' } });
    expect(
      (await bd.POST('/v1/holds/{hold_id}/release', { params: { path: { hold_id: hold2.id } } })).status,
    ).toBe('released');
    const reversal = await bd.POST('/v1/debits/{id}/reverse', {
      params: { path: { id: debit.id } },
      body: { reason: 'test' },
    });
    expect(reversal.amount).toBe('0.5');
    const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path } });
    expect(balance.available).toBe('70.5');
    const series = await bd.GET('/v1/customers/{id}/balance-series', {
      params: { path, query: { from: new Date(Date.now() - 3600_000).toISOString(), step: 'hour' } },
    });
    expect(series.points.length).toBeGreaterThan(0);
    let entries = 0;
    for await (const entry of bd.list('/v1/customers/{id}/ledger', {
      params: { path, query: { limit: '2' } },
    })) {
      expect(typeof entry.amount).toBe('string');
      entries += 1;
    }
    expect(entries).toBeGreaterThan(4);
    const voided = await bd.POST('/v1/grants/{grant_id}/void', {
      params: { path: { grant_id: grant.id } },
      body: {},
    });
    expect(voided.status).toBe('voided');
    const grants = await bd.GET('/v1/customers/{id}/grants', { params: { path } });
    expect(grants.data.length).toBe(1);
    const report = await bd.GET('/v1/reconciliation');
    expect(report).toBeTypeOf('object');
  });

  it('metering: meters, rates, events (native), usage, quote, backfill, event reversal', async () => {
    await bd.POST('/v1/customers/{id}/grants', { params: { path: { id: 'c-3' } }, body: { amount: '1000' } });
    await bd.POST('/v1/meters', {
      body: { id: 'tok', event_type: 'tok', aggregation: 'sum', value_property: '$.n' },
    });
    expect((await bd.GET('/v1/meters/{id}', { params: { path: { id: 'tok' } } })).id).toBe('tok');
    expect((await bd.GET('/v1/meters')).data.length).toBe(1);
    const ingest = await bd.POST('/v1/events', {
      body: [{ id: 'ev-1', type: 'tok', customer_id: 'c-3', data: { n: 10 } }],
    } as never);
    expect(ingest.accepted).toBe(1);
    await bd.POST('/v1/rates', { body: { id: 'tok-rate', meter_id: 'tok', credits_per_unit: '2' } });
    expect((await bd.GET('/v1/rates/{id}', { params: { path: { id: 'tok-rate' } } })).meter_id).toBe('tok');
    expect((await bd.GET('/v1/rates')).data.length).toBe(1);
    const backfill = await bd.POST('/v1/backfills', { body: { rate_id: 'tok-rate' } });
    expect(backfill).toBeTypeOf('object');
    const quote = await bd.POST('/v1/quote', {
      body: { customer_id: 'c-3', events: [{ type: 'tok', data: { n: 5 } }] },
    });
    expect(quote.credits).toBe('10');
    const usage = await bd.GET('/v1/meters/{id}/usage', {
      params: { path: { id: 'tok' }, query: { customer_id: 'c-3', window: 'day' } },
    });
    expect(usage.data[0]?.value).toBe('10');
    const events = await bd.GET('/v1/events', { params: { query: { customer_id: 'c-3' } } });
    expect(events.data[0]?.id).toBe('ev-1');
    const reversed = await bd.POST('/v1/events/{id}/reverse', {
      params: { path: { id: 'ev-1' } },
      body: { reason: 'x' },
    });
    expect(reversed).toBeTypeOf('object');
    const refused = await refusal(
      bd.POST('/v1/events', { body: [{ id: 'bad', type: 'tok', customer_id: 'nobody' }] } as never),
    );
    expect([refused.status, refused.code]).toEqual([400, 'invalid_batch']);
  });

  it('catalogue: features, plans, subscriptions, packs, purchases, auto top-up, check', async () => {
    await bd.POST('/v1/features', { body: { id: 'f', type: 'metered', credits_per_use: '3' } });
    await bd.PUT('/v1/features/{id}', {
      params: { path: { id: 'f' } },
      body: { type: 'metered', credits_per_use: '4' },
    });
    expect((await bd.GET('/v1/features/{id}', { params: { path: { id: 'f' } } })).credits_per_use).toBe('4');
    await bd.POST('/v1/features', { body: { id: 'old', type: 'boolean' } });
    await bd.DELETE('/v1/features/{id}', { params: { path: { id: 'old' } } });
    expect((await bd.GET('/v1/features')).data.length).toBeGreaterThan(0);
    const planBody = {
      name: 'P',
      entitlements: [{ feature_id: 'f' }],
      allowances: [{ amount: '100', period: 'P1M' as const }],
    };
    await bd.POST('/v1/plans', { body: { id: 'p', ...planBody } });
    await bd.POST('/v1/plans', { body: { id: 'q', ...planBody } });
    const v2 = await bd.PUT('/v1/plans/{id}', { params: { path: { id: 'p' } }, body: planBody });
    expect(v2.version).toBe(2);
    expect((await bd.GET('/v1/plans/{id}', { params: { path: { id: 'p' } } })).id).toBe('p');
    expect((await bd.GET('/v1/plans')).data.length).toBe(2);
    const sub = await bd.POST('/v1/customers/{id}/subscriptions', {
      params: { path: { id: 'c-4' } },
      body: { plan_id: 'p' },
    });
    const twice = await refusal(
      bd.POST('/v1/customers/{id}/subscriptions', {
        params: { path: { id: 'c-4' } },
        body: { plan_id: 'p' },
      }),
    );
    expect([twice.status, twice.code]).toEqual([409, 'already_subscribed']);
    expect(
      (await bd.GET('/v1/subscriptions/{subscription_id}', { params: { path: { subscription_id: sub.id } } }))
        .plan_id,
    ).toBe('p');
    expect(
      (await bd.GET('/v1/customers/{id}/subscriptions', { params: { path: { id: 'c-4' } } })).data.length,
    ).toBe(1);
    const check = await bd.POST('/v1/check', {
      body: { customer_id: 'c-4', feature_id: 'f', hold: { ttl_seconds: 60 } },
    });
    expect(check.allowed).toBe(true);
    expect(check.hold_id).not.toBeNull();
    await bd.POST('/v1/subscriptions/{subscription_id}/change', {
      params: { path: { subscription_id: sub.id } },
      body: { plan_id: 'q' },
    });
    await bd.POST('/v1/subscriptions/{subscription_id}/cancel', {
      params: { path: { subscription_id: sub.id } },
      body: {},
    });
    const pack = await bd.POST('/v1/credit-packs', {
      body: { id: 'pk', credits: '500', price: { amount: '5.00', currency: 'USD' } },
    });
    expect((await bd.GET('/v1/credit-packs/{id}', { params: { path: { id: 'pk' } } })).credits).toBe('500');
    expect((await bd.GET('/v1/credit-packs')).data.length).toBe(1);
    await bd.POST('/v1/customers/{id}/purchases', {
      params: { path: { id: 'c-5' } },
      body: { pack_id: pack.id },
    });
    expect(
      (await bd.GET('/v1/customers/{id}/purchases', { params: { path: { id: 'c-5' } } })).data.length,
    ).toBe(1);
    await bd.PUT('/v1/customers/{id}/auto-top-up', {
      params: { path: { id: 'c-5' } },
      body: { threshold: '10', pack_id: 'pk' },
    });
    expect(
      (await bd.GET('/v1/customers/{id}/auto-top-up', { params: { path: { id: 'c-5' } } })).pack_id,
    ).toBe('pk');
    await bd.DELETE('/v1/customers/{id}/auto-top-up', { params: { path: { id: 'c-5' } } });
  });

  it('API keys: create, list, revoke; a read key gets a typed 403', async () => {
    const created = await bd.POST('/v1/api-keys', { body: { scope: 'read', name: 'reader' } });
    const reader = createBurndownClient({ baseUrl: server.url, apiKey: created.key });
    expect((await reader.GET('/v1/customers')).data.length).toBeGreaterThan(0);
    const forbidden = await refusal(reader.POST('/v1/customers', { body: { id: 'x' } }));
    expect([forbidden.status, forbidden.code]).toEqual([403, 'forbidden']);
    expect((await bd.GET('/v1/api-keys')).data.length).toBeGreaterThan(1);
    await bd.POST('/v1/api-keys/{key_id}/revoke', { params: { path: { key_id: created.id } } });
    const unauthorized = await refusal(reader.GET('/v1/customers'));
    expect([unauthorized.status, unauthorized.code]).toEqual([401, 'unauthorized']);
  });
});

describe('idempotent writes and safe retries', () => {
  /** A fetch that fails or answers as told before passing requests on, recording what it saw. */
  function flaky(script: ('network' | 503 | 429 | 'in-progress' | 'pass')[]) {
    const seen: { method: string; key: string | null }[] = [];
    const fetchImpl = async (request: Request) => {
      seen.push({ method: request.method, key: request.headers.get('idempotency-key') });
      const step = script.shift() ?? 'pass';
      if (step === 'network') {
        // The request reaches the server, but the answer is lost.
        await fetch(request.clone()).then((r) => r.arrayBuffer());
        throw new TypeError('fetch failed');
      }
      if (step === 503 || step === 429)
        return new Response('', { status: step, headers: { 'retry-after': '0' } });
      if (step === 'in-progress') {
        return Response.json(
          { error: { code: 'request_in_progress', message: 'busy', details: {} } },
          { status: 409 },
        );
      }
      return fetch(request);
    };
    return { seen, fetchImpl };
  }

  it('gives every write an Idempotency-Key and keeps it across retries: a lost answer never debits twice', async () => {
    await bd.POST('/v1/customers', { body: { id: 'retry' } });
    await bd.POST('/v1/customers/{id}/grants', {
      params: { path: { id: 'retry' } },
      body: { amount: '100' },
    });
    const { seen, fetchImpl } = flaky(['network', 503, 'in-progress', 429, 'pass']);
    const client = createBurndownClient({
      baseUrl: server.url,
      apiKey: server.apiKey,
      fetch: fetchImpl,
      maxRetries: 5,
      retryDelayMs: () => 1,
    });
    const debit = await client.POST('/v1/customers/{id}/debits', {
      params: { path: { id: 'retry' } },
      body: { amount: '10' },
    });
    expect(debit.amount).toBe('10');
    expect(seen.length).toBe(5);
    const keys = new Set(seen.map((s) => s.key));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path: { id: 'retry' } } });
    expect(balance.available).toBe('90');
  });

  it('reads carry no key; a caller-chosen key is kept; retries stop at maxRetries', async () => {
    const { seen, fetchImpl } = flaky([503, 503, 503]);
    const client = createBurndownClient({
      baseUrl: server.url,
      apiKey: server.apiKey,
      fetch: fetchImpl,
      maxRetries: 2,
      retryDelayMs: () => 1,
    });
    const error = await refusal(client.GET('/v1/customers'));
    expect(error.status).toBe(503);
    expect(seen).toEqual([
      { method: 'GET', key: null },
      { method: 'GET', key: null },
      { method: 'GET', key: null },
    ]);
    const own = flaky([]);
    const c2 = createBurndownClient({ baseUrl: server.url, apiKey: server.apiKey, fetch: own.fetchImpl });
    await c2.POST('/v1/customers', { body: { id: 'own-key' }, headers: { 'Idempotency-Key': 'mine-1' } });
    expect(own.seen[0]?.key).toBe('mine-1');
    const reused = await refusal(
      c2.POST('/v1/customers', { body: { id: 'other' }, headers: { 'Idempotency-Key': 'mine-1' } }),
    );
    expect([reused.status, reused.code]).toEqual([422, 'idempotency_key_reused']);
  });
});
