import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../contract/postgres.js';
import { type HttpResponse, ServerProcess } from './server-process.js';
import {
  type Entry,
  expectReconcileOk,
  prng,
  randomAmount,
  readLedger,
  runPool,
  seedFromEnv,
  sum,
  units,
} from './support.js';

/**
 * Several stateless server processes on one PostgreSQL database: thousands of concurrent debits,
 * holds and captures over hot and cold customers, with grants expiring mid-load, then faults
 * (terminated backends, a killed server). Never skipped: PostgreSQL comes from
 * BURNDOWN_TEST_POSTGRES_URL or the embedded server of the global setup (test/contract/postgres.ts).
 */
const PROCESSES = 4;
/**
 * How long after its own request is sent a "soon" grant expires. Each grant's instant is taken
 * just before its request, so a slow machine delays the request, never the margin (a grant already
 * expired when it arrives would be refused with 400); the load that follows lasts several seconds.
 */
const EXPIRY_MARGIN_MS = 2_000;

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

interface Outcome {
  readonly customer: string;
  readonly debitId: string;
  readonly amount: string;
}

/** Account balances (units) of one customer, summed from its ledger entries as the API lists them. */
function accountsFromEntries(entries: readonly Entry[]): Map<string, bigint> {
  const accounts = new Map<string, bigint>();
  for (const e of entries as (Entry & { from_account: string; to_account: string })[]) {
    accounts.set(e.from_account, (accounts.get(e.from_account) ?? 0n) - units(e.amount));
    accounts.set(e.to_account, (accounts.get(e.to_account) ?? 0n) + units(e.amount));
  }
  return accounts;
}

describe(`PostgreSQL: ${PROCESSES} server processes on one database`, () => {
  let databaseUrl = '';
  let databaseName = '';
  let servers: ServerProcess[] = [];
  const rand = prng(seedFromEnv());

  beforeAll(async () => {
    databaseName = `bd_mp_${randomBytes(5).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${databaseName}`));
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
    // All start at once: migrations must be safe under concurrent starts.
    servers = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        ServerProcess.startOn(databaseUrl, { BURNDOWN_PG_POOL_SIZE: '6' }),
      ),
    );
  }, 120_000);

  // DROP DATABASE waits for a checkpoint, which takes minutes on a machine whose disk is busy.
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.cleanup()));
    if (databaseName) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
  }, 180_000);

  const server = (i: number) => servers[i % servers.length]!;

  /** Every server's state (pid, or how it ended) and log tail: printed whenever a test fails. */
  const reports = () => servers.map((s, i) => s.report(`server ${i}`)).join('\n');
  beforeEach((context) => {
    context.onTestFailed(() => {
      process.stderr.write(`\n=== ${context.task.name}: server processes ===\n${reports()}\n`);
    });
  });

  /** Fails with every server's exit status and log tail when one died without being killed. */
  function expectNoCrash() {
    const crashed = servers.filter((s) => s.crashed !== null);
    expect(crashed.length, `a server process died on its own:\n${reports()}`).toBe(0);
  }

  /** Sends a mix of debits and holds (captured or released) to all processes; returns what succeeded. */
  async function load(options: {
    customers: readonly { id: string; overage: boolean }[];
    operations: number;
    pick: () => number;
    alive: () => ServerProcess[];
    events?: boolean;
  }): Promise<{ outcomes: Outcome[]; sent: number; failures: number; lost: number; eventsAccepted: number }> {
    const outcomes: Outcome[] = [];
    let failures = 0;
    const run = randomBytes(4).toString('hex');
    /** Debits sent whose answer never came back; re-sent below with the same key. */
    const lost = new Map<string, { customer: string; body: unknown }>();
    const events = { accepted: 0 };
    const ops = Array.from({ length: options.operations }, (_, i) => i);
    await runPool(ops, 64, async (i) => {
      const customer = options.customers[options.pick()]!;
      const alive = options.alive();
      const target = alive[i % alive.length]!;
      const key = `op-${run}-${i}`;
      const amount = randomAmount(rand, 0, 15, 3);
      if (units(amount) === 0n) return;
      const body = { amount, allow_overage: customer.overage };
      try {
        if (options.events && customer.overage && rand() < 0.3) {
          // Only customers that may owe overage: a burn never refuses usage, so it may go below zero.
          // Usage events, priced by a rate and burned with overage allowed, sent to any process.
          const batch = Array.from({ length: 1 + Math.floor(rand() * 5) }, (_, k) => ({
            id: `ev-${run}-${i}-${k}`,
            type: 'api.call',
            customer_id: customer.id,
            time: new Date().toISOString(),
            data: { units: 1 + Math.floor(rand() * 9) },
          }));
          const res: HttpResponse = await target.post('/v1/events', batch);
          if (res.status !== 202 || res.body.accepted !== batch.length) failures += 1;
          else events.accepted += batch.length;
          return;
        }
        if (rand() < 0.7) {
          lost.set(key, { customer: customer.id, body });
          const res: HttpResponse = await target.post(`/v1/customers/${customer.id}/debits`, body, {
            'idempotency-key': key,
          });
          lost.delete(key);
          if (res.status === 201) outcomes.push({ customer: customer.id, debitId: res.body.id, amount });
          else if (res.status !== 402) failures += 1;
          return;
        }
        const hold: HttpResponse = await target.post(`/v1/customers/${customer.id}/holds`, {
          amount,
          ttl_seconds: 30,
        });
        if (hold.status !== 201) {
          if (hold.status !== 402) failures += 1;
          return;
        }
        const other = alive[(i + 1) % alive.length]!;
        if (rand() < 0.3) {
          const res = await other.post(`/v1/holds/${hold.body.id}/release`);
          if (res.status !== 200) failures += 1;
          return;
        }
        const captureAmount = rand() < 0.5 ? amount : randomAmount(rand, 0, 10, 2);
        const res: HttpResponse = await other.post(
          `/v1/holds/${hold.body.id}/capture`,
          units(captureAmount) === 0n ? {} : { amount: captureAmount, allow_overage: customer.overage },
        );
        if (res.status === 201)
          outcomes.push({ customer: customer.id, debitId: res.body.id, amount: res.body.amount });
        else if (res.status !== 402) failures += 1;
      } catch {
        failures += 1; // the connection died (a killed process): the outcome is unknown to the client
      }
    });
    expectNoCrash();
    // A debit whose answer was lost is re-sent with its key: it either replays what was written, or runs once now.
    for (const [key, l] of lost) {
      const res: HttpResponse = await options.alive()[0]!.post(`/v1/customers/${l.customer}/debits`, l.body, {
        'idempotency-key': key,
      });
      if (res.status === 201)
        outcomes.push({ customer: l.customer, debitId: res.body.id, amount: res.body.amount });
    }
    return { outcomes, sent: ops.length, failures, lost: lost.size, eventsAccepted: events.accepted };
  }

  /** Every acknowledged debit is in its ledger exactly once, and the balances equal the entries. */
  async function verify(
    customers: readonly { id: string; overage: boolean }[],
    outcomes: readonly Outcome[],
  ) {
    const reader = servers.find((s) => s.running)!;
    for (const customer of customers) {
      const entries = await readLedger(reader, customer.id);
      const consumed = new Map<string, bigint>();
      for (const e of entries) {
        if (e.type === 'debit' || e.type === 'capture' || e.type === 'overage') {
          consumed.set(e.ref!, (consumed.get(e.ref!) ?? 0n) + units(e.amount));
        }
      }
      const acknowledged = outcomes.filter((o) => o.customer === customer.id);
      for (const o of acknowledged)
        expect(consumed.get(o.debitId), `debit ${o.debitId}`).toBe(units(o.amount));
      expect(new Set(acknowledged.map((o) => o.debitId)).size).toBe(acknowledged.length);
      const accounts = accountsFromEntries(entries);
      const free = sum([...accounts].filter(([a]) => a.startsWith('grant:')).map(([, v]) => v));
      const held = sum([...accounts].filter(([a]) => a.startsWith('held:')).map(([, v]) => v));
      const balance: HttpResponse = await reader.get(`/v1/customers/${customer.id}/balance`);
      expect(units(balance.body.available)).toBe(free + (accounts.get('overage') ?? 0n));
      expect(units(balance.body.held)).toBe(held);
      if (!customer.overage) {
        expect(units(balance.body.available) >= 0n).toBe(true);
        for (const e of entries) expect(units(e.balance_after) >= 0n, `balance_after of ${e.id}`).toBe(true);
        expect(accounts.get('overage') ?? 0n).toBe(0n);
      }
      for (const [account, value] of accounts) {
        if (account.startsWith('grant:') || account.startsWith('held:'))
          expect(value >= 0n, account).toBe(true);
      }
    }
    await expectReconcileOk(reader);
  }

  it('serves thousands of concurrent operations over hot and cold customers without double spending', async () => {
    const hot = ['hot-1', 'hot-2', 'hot-3'].map((id, i) => ({ id, overage: i === 2 }));
    const cold = Array.from({ length: 60 }, (_, i) => ({ id: `cold-${i}`, overage: false }));
    const customers = [...hot, ...cold];
    await runPool(customers, 16, async (c) => {
      expect((await server(0).post('/v1/customers', { id: c.id })).status).toBe(201);
    });
    // Grants expiring mid-load: each instant is taken just before its own request (see EXPIRY_MARGIN_MS).
    let lastExpiry = 0;
    const soon = () => {
      lastExpiry = Date.now() + EXPIRY_MARGIN_MS;
      return new Date(lastExpiry).toISOString();
    };
    await runPool(customers, 16, async (c) => {
      const isHot = c.id.startsWith('hot');
      const grants = isHot
        ? [
            () => ({ amount: '300', priority: 1, expires_at: soon() }),
            () => ({ amount: '2500', priority: 5 }),
          ]
        : [() => ({ amount: '60', expires_at: soon() }), () => ({ amount: '20' })];
      for (const g of grants) {
        const res = await server(1).post(`/v1/customers/${c.id}/grants`, g());
        expect(res.status, res.text).toBe(201);
      }
    });
    expect(
      (
        await server(2).post('/v1/meters', {
          id: 'calls',
          event_type: 'api.call',
          aggregation: 'sum',
          value_property: '$.units',
        })
      ).status,
    ).toBe(201);
    expect(
      (await server(3).post('/v1/rates', { id: 'per-call', meter_id: 'calls', credits_per_unit: '0.25' }))
        .status,
    ).toBe(201);
    const { outcomes, failures, eventsAccepted } = await load({
      events: true,
      customers,
      operations: 3000,
      pick: () =>
        rand() < 0.6 ? Math.floor(rand() * hot.length) : hot.length + Math.floor(rand() * cold.length),
      alive: () => servers,
    });
    expect(failures).toBe(0);
    expect(outcomes.length).toBeGreaterThan(1000);
    expect(eventsAccepted).toBeGreaterThan(50);
    // Every accepted event is stored once and burned once (reconcile (d), run by verify below).
    const usage: HttpResponse = await server(0).get('/v1/meters/calls/usage?window=month');
    expect(usage.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastExpiry - Date.now() + 50)));
    await verify(customers, outcomes);
  }, 120_000);

  it('keeps every acknowledged write when backends are terminated and a server is killed mid-load', async () => {
    const customers = [
      { id: 'fault-hot', overage: false },
      ...Array.from({ length: 10 }, (_, i) => ({ id: `fault-${i}`, overage: i % 2 === 1 })),
    ];
    for (const c of customers) {
      expect((await server(0).post('/v1/customers', { id: c.id })).status).toBe(201);
      expect((await server(0).post(`/v1/customers/${c.id}/grants`, { amount: '500' })).status).toBe(201);
    }
    const victim = servers[PROCESSES - 1]!;
    let killed = false;
    const faults = (async () => {
      for (let round = 0; round < 4; round++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        await admin((c) =>
          c.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [databaseName],
          ),
        );
        if (round === 1) {
          await victim.kill('SIGKILL');
          killed = true;
        }
      }
    })();
    const { outcomes } = await load({
      customers,
      operations: 2000,
      pick: () => (rand() < 0.5 ? 0 : Math.floor(rand() * customers.length)),
      alive: () => (killed ? servers.filter((s) => s !== victim) : servers),
    });
    await faults;
    expectNoCrash();
    expect(outcomes.length).toBeGreaterThan(500);
    await verify(customers, outcomes);
  }, 120_000);
});
