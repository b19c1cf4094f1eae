/**
 * Sweeps keep several customers' writes in flight (src/services/sweep-concurrency.ts), so an
 * expiry storm shares commits instead of paying one commit and one sync per customer.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/time/clock.js';
import { SequentialIds } from '../../src/infra/ids.js';
import { sweepExpiryNotices } from '../../src/services/balance-alerts.js';
import type { ServiceContext } from '../../src/services/context.js';
import { createCustomer } from '../../src/services/customers.js';
import { grantCredits, readBalance, sweepDueLedgers } from '../../src/services/ledger.js';
import { sweepDueSubscriptions } from '../../src/services/subscriptions.js';
import { forEachConcurrently } from '../../src/services/sweep-concurrency.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { newGrant } from '../fixtures/grants.js';
import { createTestApp } from '../fixtures/harness.js';

describe('forEachConcurrently', () => {
  it('runs every item, at most `limit` at a time, starting them in order', async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    await forEachConcurrently(
      Array.from({ length: 20 }, (_, i) => i),
      async (i) => {
        started.push(i);
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
      },
      4,
    );
    expect(started).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(most).toBe(4);
  });

  it('tries every item when some fail, then throws the first failure', async () => {
    const done: number[] = [];
    const run = forEachConcurrently(
      [1, 2, 3, 4, 5],
      async (i) => {
        await new Promise((resolve) => setImmediate(resolve));
        if (i === 2 || i === 4) throw new Error(`item ${i}`);
        done.push(i);
      },
      2,
    );
    await expect(run).rejects.toThrow('item 2');
    expect(done.sort()).toEqual([1, 3, 5]);
  });

  it('does nothing for no items', async () => {
    await forEachConcurrently([], async () => {
      throw new Error('never called');
    });
  });
});

describe('sweeps share commits across customers (SQLite)', () => {
  const T0 = Date.parse('2026-03-01T00:00:00Z');
  const HOUR = 3_600_000;
  const CUSTOMERS = 40;
  let storage: SqliteStorage;
  let clock: ManualClock;
  let ctx: ServiceContext;
  let batches: number[];

  beforeEach(async () => {
    batches = [];
    storage = await SqliteStorage.open({
      path: join(mkdtempSync(join(tmpdir(), 'burndown-sweep-')), 'db.sqlite'),
      synchronous: 'OFF',
      onBatch: (size) => batches.push(size),
    });
    clock = new ManualClock(T0);
    ctx = { storage, clock, ids: new SequentialIds() };
    for (let c = 0; c < CUSTOMERS; c++) {
      const customerId = `c${c}`;
      await storage.write(`default/${customerId}`, async (tx) => {
        await createCustomer(tx, {
          workspaceId: 'default',
          id: customerId,
          name: null,
          metadata: {},
          now: T0,
        });
        await grantCredits(ctx, tx, {
          key: { workspaceId: 'default', customerId, creditType: 'credits' },
          grant: newGrant('10', T0, { category: 'promotional', expiresAt: T0 + 2 * HOUR }),
          now: T0,
        });
      });
    }
    batches = [];
  });
  afterEach(async () => {
    await storage.close();
  });

  it("settles every customer's expiry in far fewer commits than customers", async () => {
    clock.set(T0 + 3 * HOUR);
    expect(await sweepDueLedgers(ctx)).toBe(CUSTOMERS);
    // One write per customer, awaited one by one, was one commit each.
    expect(batches.length).toBeLessThanOrEqual(CUSTOMERS / 4);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(CUSTOMERS);
    for (let c = 0; c < CUSTOMERS; c++) {
      const balance = await readBalance(ctx, {
        key: { workspaceId: 'default', customerId: `c${c}`, creditType: 'credits' },
        at: null,
      });
      expect(balance.available.toString()).toBe('0');
    }
    expect(await sweepDueLedgers(ctx)).toBe(0);
  });

  it('writes each expiry notice once, in far fewer commits than notices', async () => {
    clock.set(T0 + HOUR);
    expect(await sweepExpiryNotices(ctx, [2 * HOUR])).toBe(CUSTOMERS);
    // The read of what is due is a write of its own (under its lock), then the notices share commits.
    expect(batches.length).toBeLessThanOrEqual(1 + CUSTOMERS / 4);
    expect(await sweepExpiryNotices(ctx, [2 * HOUR])).toBe(0);
  });
});

describe('subscription resets share commits across customers (SQLite)', () => {
  it("issues every customer's next allowance once, in far fewer commits than customers", async () => {
    const start = Date.parse('2026-03-01T00:00:00Z');
    const batches: number[] = [];
    const storage = await SqliteStorage.open({ path: ':memory:', onBatch: (size) => batches.push(size) });
    const t = await createTestApp({ start, storage });
    try {
      const post = async (url: string, body: unknown) => {
        const r = await t.post(url, body);
        expect(r.statusCode, r.body).toBeLessThan(300);
      };
      await post('/v1/plans', {
        id: 'daily',
        time_zone: 'UTC',
        billing_period: 'P1D',
        allowances: [{ amount: '100', period: 'P1D', rollover: null }],
      });
      const customers = 40;
      for (let c = 0; c < customers; c++) {
        await post('/v1/customers', { id: `c${c}` });
        await post(`/v1/customers/c${c}/subscriptions`, { plan_id: 'daily' });
      }
      t.clock.set(start + 86_400_000 + 1000);
      batches.length = 0;
      expect(await sweepDueSubscriptions(t.ctx)).toEqual({ customers, failed: 0 });
      expect(batches.length).toBeLessThanOrEqual(customers / 4);
      expect(await sweepDueSubscriptions(t.ctx)).toEqual({ customers: 0, failed: 0 });
      const balance = (await t.get('/v1/customers/c7/balance')).json() as { available: string };
      expect(balance.available).toBe('100');
    } finally {
      await t.close();
    }
  });
});
