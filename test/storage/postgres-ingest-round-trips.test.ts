import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import type { Storage } from '../../src/ports/storage.js';
import type { ServiceContext } from '../../src/services/context.js';
import { createCustomer } from '../../src/services/customers.js';
import { grantCredits } from '../../src/services/ledger.js';
import { createMeter, createRate, type IncomingEvent, ingestEvents } from '../../src/services/metering.js';
import { openPostgresInFreshSchema } from '../contract/postgres.js';
import { newGrant } from '../fixtures/grants.js';

/**
 * Event ingest on PostgreSQL reads the ledgers of a chunk's customers together: one statement
 * for all of them (`prefetchCustomerWrites`) instead of two round trips per customer (its upkeep,
 * then its ledger). Counted at the driver: every query a pooled client sends.
 */

const WS = 'ws';
const T0 = Date.parse('2026-03-01T00:00:00Z');
const CUSTOMERS = 60;

let storage: Storage;
let ctx: ServiceContext;
let now = T0;

beforeAll(async () => {
  storage = await openPostgresInFreshSchema();
  ctx = { storage, clock: { now: () => now }, ids: new TimeOrderedIds(() => now) } as ServiceContext;
  await storage.write(`${WS}/#meters`, async (tx) => {
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
    await storage.write(`${WS}/${customerId}`, async (tx) => {
      await createCustomer(tx, { workspaceId: WS, id: customerId, name: null, metadata: {}, now });
      await grantCredits(ctx, tx, {
        key: { workspaceId: WS, customerId, creditType: 'credits' },
        grant: newGrant('1000', T0),
        now,
      });
    });
  }
});

afterAll(async () => {
  await storage.close();
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

/** The queries pooled clients send while `work` runs. */
async function countQueries(work: () => Promise<unknown>): Promise<number> {
  const query = pg.Client.prototype.query;
  let sent = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    sent++;
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = query;
  }
  return sent;
}

describe('PostgreSQL event ingest', () => {
  it('reads a chunk of customers in one statement: about one round trip per event, not three', async () => {
    // The first batch fills the process's caches (customers, rating rules); the second is measured.
    now = T0 + 1000;
    expect(new Set(await ingestEvents(ctx, WS, batch('warm')))).toEqual(new Set(['accepted']));
    now = T0 + 2000;
    let outcomes: unknown[] = [];
    const queries = await countQueries(async () => {
      outcomes = await ingestEvents(ctx, WS, batch('measured'));
    });
    expect(new Set(outcomes)).toEqual(new Set(['accepted']));
    // BEGIN with the locks, the events, the read of every ledger, one save per customer, the
    // burns, COMMIT: 68 queries when written. Reading each customer's upkeep and ledger apart: 187.
    expect(queries).toBeLessThanOrEqual(CUSTOMERS * 1.2);
    // Each customer paid 2 × 10 tokens × 0.5 credits.
    const balance = await storage.read.loadLedger({
      workspaceId: WS,
      customerId: 'c7',
      creditType: 'credits',
    });
    expect(balance.grants.map((g) => g.available.toString())).toEqual([Amount.parse('990').toString()]);
  });
});
