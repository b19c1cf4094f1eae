import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import type { ServiceContext } from '../../src/services/context.js';
import { createCustomer } from '../../src/services/customers.js';
import { grantCredits } from '../../src/services/ledger.js';
import { createMeter, createRate, type IncomingEvent, ingestEvents } from '../../src/services/metering.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { adminQuery, POSTGRES_URL } from '../contract/postgres.js';
import { startDelayingProxy } from '../fixtures/delaying-proxy.js';
import { newGrant } from '../fixtures/grants.js';
import { watchingQueries } from '../fixtures/watched-queries.js';

/**
 * Event ingest on PostgreSQL reads the ledgers of a chunk's customers together: one statement
 * for all of them (`prefetchCustomerWrites`) instead of two round trips per customer (its upkeep,
 * then its ledger); and it saves them together, so their statements leave in one flight on the
 * pipelined connection instead of one round trip each. Queries are counted at the driver, flights
 * at the wire (a proxy that delays every answer).
 */

const WS = 'ws';
const T0 = Date.parse('2026-03-01T00:00:00Z');
const CUSTOMERS = 60;

const schema = `bd_ingest_trips_${randomBytes(5).toString('hex')}`;
let proxy: Awaited<ReturnType<typeof startDelayingProxy>>;
/** Seeds the data directly. */
let direct: PostgresStorage;
/** Ingests through the proxy. */
let storage: PostgresStorage;
let ctx: ServiceContext;
let now = T0;
const contextOf = (s: PostgresStorage) =>
  ({ storage: s, clock: { now: () => now }, ids: new TimeOrderedIds(() => now) }) as ServiceContext;

beforeAll(async () => {
  await adminQuery(`CREATE SCHEMA ${schema}`);
  direct = await PostgresStorage.open({ connectionString: POSTGRES_URL, schema, poolSize: 2 });
  const target = new URL(POSTGRES_URL);
  proxy = await startDelayingProxy({ host: target.hostname, port: Number(target.port || 5432) }, 5);
  const viaProxy = new URL(POSTGRES_URL);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  storage = await PostgresStorage.open({ connectionString: viaProxy.toString(), schema, poolSize: 1 });
  ctx = contextOf(storage);
  const seeding = contextOf(direct);
  await direct.write(`${WS}/#meters`, async (tx) => {
    await tx.ensureWorkspace(WS, now);
    await createMeter(tx, {
      workspaceId: WS,
      id: 'tokens',
      eventType: 'llm.tokens',
      aggregation: 'sum',
      valueProperty: '$.tokens',
      groupBy: {},
      now,
    });
    await createRate(tx, {
      workspaceId: WS,
      id: 'tokens-rate',
      meterId: 'tokens',
      filter: {},
      creditType: 'credits',
      pricing: { credits_per_unit: '0.5' },
      now,
    });
  });
  for (let i = 0; i < CUSTOMERS; i++) {
    const customerId = `c${i}`;
    await direct.write(`${WS}/${customerId}`, async (tx) => {
      await createCustomer(tx, { workspaceId: WS, id: customerId, name: null, metadata: {}, now });
      await grantCredits(seeding, tx, {
        key: { workspaceId: WS, customerId, creditType: 'credits' },
        grant: newGrant('1000', T0),
        now,
      });
    });
  }
}, 60_000);

afterAll(async () => {
  await storage?.close();
  await direct?.close();
  await proxy?.close();
  await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

/** One event of 10 tokens per customer. */
const batch = (tag: string): IncomingEvent[] =>
  Array.from({ length: CUSTOMERS }, (_, i) => ({
    id: `${tag}-${i}`,
    source: null,
    type: 'llm.tokens',
    customerId: `c${i}`,
    time: now,
    data: { tokens: 10 },
  }));

/** The queries pooled clients send while `work` runs, and the flights they leave in. */
async function countQueries(work: () => Promise<unknown>): Promise<{ queries: number; flights: number }> {
  let sent = 0;
  const flightsBefore = proxy.flights();
  await watchingQueries(() => {
    sent++;
  }, work);
  return { queries: sent, flights: proxy.flights() - flightsBefore };
}

describe('PostgreSQL event ingest', () => {
  it('reads a chunk of customers in one statement and saves them in one flight', async () => {
    // The first batch fills the process's caches (customers, rating rules); the second is measured.
    now = T0 + 1000;
    expect(new Set(await ingestEvents(ctx, WS, batch('warm')))).toEqual(new Set(['accepted']));
    now = T0 + 2000;
    let outcomes: unknown[] = [];
    const { queries, flights } = await countQueries(async () => {
      outcomes = await ingestEvents(ctx, WS, batch('measured'));
    });
    expect(new Set(outcomes)).toEqual(new Set(['accepted']));
    // BEGIN with the locks, the events, the read of every ledger, one save per customer, the
    // burns, COMMIT: 68 queries when written. Reading each customer's upkeep and ledger apart: 187.
    expect(queries).toBeLessThanOrEqual(CUSTOMERS * 1.2);
    // Those queries left in 9 flights when written (the saves of all 60 customers in one); saved
    // one after another, each query was a flight of its own: 68.
    expect(flights).toBeLessThanOrEqual(12);
    // Each customer paid 2 × 10 tokens × 0.5 credits.
    const balance = await direct.read.loadLedger({
      workspaceId: WS,
      customerId: 'c7',
      creditType: 'credits',
    });
    expect(balance.grants.map((g) => g.available.toString())).toEqual([Amount.parse('990').toString()]);
  });
});
