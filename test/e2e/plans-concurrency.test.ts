import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../contract/postgres.js';
import { type HttpResponse, requireBuiltCli, ServerProcess } from './server-process.js';
import { amount, expectReconcileOk, readLedger, units } from './support.js';

/**
 * Plans under concurrency, over real HTTP against real server processes:
 *
 * - a held check (`POST /v1/check` with `hold`) decides and reserves in one transaction under the
 *   customer's lock, so N concurrent held checks against a balance that fits K allow exactly K;
 * - auto top-up fires in the transaction of the burn that crosses below the threshold, so
 *   concurrent debits buy exactly once per crossing, and never more than `max_per_period`.
 *
 * Every scenario runs against one SQLite server process and against several server processes
 * sharing one fresh PostgreSQL database (never skipped: see test/contract/postgres.ts), with the
 * requests spread across them.
 */

const PG_PROCESSES = 3;
const CUSTOMER = 'acme';
const FEATURE = 'gpt-x';
const CREDITS_PER_USE = '5';

/** One or more server processes on one database; request `i` goes to process `i mod n`. */
interface Cluster {
  readonly servers: readonly ServerProcess[];
  at(i: number): ServerProcess;
  cleanup(): Promise<void>;
}

interface Backend {
  readonly name: string;
  open(): Promise<Cluster>;
}

function clusterOf(servers: readonly ServerProcess[], after: () => Promise<void> = async () => {}): Cluster {
  return {
    servers,
    at: (i) => servers[i % servers.length]!,
    cleanup: async () => {
      await Promise.all(servers.map((s) => s.cleanup()));
      await after();
    },
  };
}

async function pgAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const BACKENDS: readonly Backend[] = [
  {
    name: 'SQLite, one server process',
    open: async () => clusterOf([await ServerProcess.start()]),
  },
  {
    name: `PostgreSQL, ${PG_PROCESSES} server processes on one database`,
    open: async () => {
      const databaseName = `bd_plans_${randomBytes(5).toString('hex')}`;
      await pgAdmin((c) => c.query(`CREATE DATABASE ${databaseName}`));
      const dropDatabase = () =>
        pgAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`)).then(() => {});
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${databaseName}`;
      // All start at once (migrations are safe under concurrent starts); cleaned up even when one fails.
      const started = await Promise.allSettled(
        Array.from({ length: PG_PROCESSES }, () =>
          ServerProcess.startOn(url.toString(), { BURNDOWN_PG_POOL_SIZE: '4' }),
        ),
      );
      const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) {
        await clusterOf(servers, dropDatabase).cleanup();
        throw failed.reason;
      }
      return clusterOf(servers, dropDatabase);
    },
  },
];

async function expectStatus(res: Promise<HttpResponse>, status: number): Promise<HttpResponse> {
  const r = await res;
  expect(r.status, r.text).toBe(status);
  return r;
}

/** Customer, metered feature, plan and subscription (no allowance), one grant, and optionally a pack. */
async function setup(
  cluster: Cluster,
  input: { grant: string; pack?: { credits: string } },
): Promise<{ grantId: string }> {
  await expectStatus(cluster.at(0).post('/v1/customers', { id: CUSTOMER }), 201);
  await expectStatus(
    cluster.at(1).post('/v1/features', { id: FEATURE, type: 'metered', credits_per_use: CREDITS_PER_USE }),
    201,
  );
  await expectStatus(
    cluster.at(2).post('/v1/plans', { id: 'pro', entitlements: [{ feature_id: FEATURE }], allowances: [] }),
    201,
  );
  await expectStatus(cluster.at(0).post(`/v1/customers/${CUSTOMER}/subscriptions`, { plan_id: 'pro' }), 201);
  const grant = await expectStatus(
    cluster.at(1).post(`/v1/customers/${CUSTOMER}/grants`, { amount: input.grant }),
    201,
  );
  if (input.pack) {
    await expectStatus(
      cluster.at(2).post('/v1/credit-packs', {
        id: 'p',
        credits: input.pack.credits,
        price: { amount: '10.00', currency: 'USD' },
      }),
      201,
    );
  }
  for (const server of cluster.servers) {
    const balance = await expectStatus(server.get(`/v1/customers/${CUSTOMER}/balance`), 200);
    expect(balance.body.available).toBe(input.grant);
  }
  return { grantId: grant.body.id };
}

async function balanceOf(
  server: ServerProcess,
): Promise<{ available: string; held: string; overage: string }> {
  const res = await expectStatus(server.get(`/v1/customers/${CUSTOMER}/balance`), 200);
  return { available: res.body.available, held: res.body.held, overage: res.body.overage };
}

const byUnits = (a: string, b: string) => {
  const d = units(a) - units(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

// ---------------------------------------------------------------------------------------------
// Auto top-up: the expected outcome, derived by replaying the debits one at a time.
// ---------------------------------------------------------------------------------------------

interface TopUpRule {
  readonly threshold: string;
  readonly packCredits: string;
  readonly maxPerPeriod: number;
}

/**
 * Serial replay of `count` equal debits. Debits of one customer are serialised, and with equal
 * amounts every serial order gives the same sequence of balances, so this is THE outcome of the
 * concurrent run. A crossing is a burn with available ≥ threshold before and < threshold after;
 * it tops up (in its own transaction, so the next burn sees the new balance) while the period's
 * count is below the cap.
 */
function replayDebits(initial: string, debit: string, count: number, rule: TopUpRule) {
  const threshold = units(rule.threshold);
  let available = units(initial);
  let crossings = 0;
  let topUps = 0;
  const balancesAfter: string[] = [];
  for (let i = 0; i < count; i++) {
    const before = available;
    available -= units(debit);
    if (available < 0n) throw new Error('replay: a debit would be refused; pick other numbers');
    if (before >= threshold && available < threshold) {
      crossings += 1;
      if (topUps < rule.maxPerPeriod) {
        topUps += 1;
        available += units(rule.packCredits);
      }
    }
    balancesAfter.push(amount(available));
  }
  return { crossings, topUps, final: amount(available), balancesAfter };
}

async function runTopUpScenario(
  cluster: Cluster,
  input: { initial: string; debit: string; debits: number; rule: TopUpRule },
) {
  const { initial, debit, debits, rule } = input;
  const expected = replayDebits(initial, debit, debits, rule);
  await setup(cluster, { grant: initial, pack: { credits: rule.packCredits } });
  const put = await expectStatus(
    cluster.at(0).request('PUT', `/v1/customers/${CUSTOMER}/auto-top-up`, {
      threshold: rule.threshold,
      pack_id: 'p',
      quantity: 1,
      max_per_period: rule.maxPerPeriod,
      period: 'P1M',
    }),
    200,
  );
  expect(put.body).toMatchObject({ enabled: true, threshold: rule.threshold, count_in_period: 0 });

  // All debits at once, spread over the processes.
  const responses = await Promise.all(
    Array.from({ length: debits }, (_, i) =>
      cluster.at(i).post(`/v1/customers/${CUSTOMER}/debits`, { amount: debit, metadata: { i } }),
    ),
  );
  const failures = responses.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.text}`);
  expect(failures, 'every debit succeeds').toEqual([]);
  for (const r of responses) {
    expect(r.body.amount).toBe(debit);
    expect(r.body.overage).toBe('0');
  }
  // Each debit's balance_after includes its own top-up: together they are the serial replay.
  expect(
    responses.map((r) => r.body.balance_after.available as string).sort(byUnits),
    'balances after the debits (any serial order gives the same multiset)',
  ).toEqual([...expected.balancesAfter].sort(byUnits));

  const purchases = await expectStatus(
    cluster.at(1).get(`/v1/customers/${CUSTOMER}/purchases?limit=1000`),
    200,
  );
  const list = purchases.body.data as {
    id: string;
    source: string;
    pack_id: string;
    quantity: number;
    credits: string;
    grant_id: string;
  }[];
  expect(purchases.body.next_cursor).toBeNull();
  const auto = list.filter((p) => p.source === 'auto_top_up');
  expect(auto, JSON.stringify(list)).toHaveLength(expected.topUps);
  expect(list).toHaveLength(expected.topUps);
  expect(auto.length).toBeLessThanOrEqual(rule.maxPerPeriod);
  for (const p of auto) expect(p).toMatchObject({ pack_id: 'p', quantity: 1, credits: rule.packCredits });
  expect(new Set(auto.map((p) => p.grant_id)).size).toBe(auto.length);

  for (const server of cluster.servers) {
    expect(await balanceOf(server)).toEqual({ available: expected.final, held: '0', overage: '0' });
    const ruleNow = await expectStatus(server.get(`/v1/customers/${CUSTOMER}/auto-top-up`), 200);
    expect(ruleNow.body.count_in_period).toBe(expected.topUps);
  }

  // The ledger: the debits, the initial grant and one paid grant per top-up, nothing else.
  const ledger = await readLedger(cluster.at(2), CUSTOMER);
  const debitEntries = ledger.filter((e) => e.type === 'debit');
  expect(new Set(debitEntries.map((e) => e.ref)).size).toBe(debits);
  const grantEntries = ledger.filter((e) => e.type === 'grant');
  expect(grantEntries).toHaveLength(1 + expected.topUps);
  expect(new Set(ledger.map((e) => e.type))).toEqual(new Set(['grant', 'debit']));
  const grants = await expectStatus(cluster.at(0).get(`/v1/customers/${CUSTOMER}/grants?limit=1000`), 200);
  // The initial grant is `paid` too (the default category): top-up grants are the ones a purchase made.
  const bought = (
    grants.body.data as { id: string; amount: string; metadata: Record<string, unknown> }[]
  ).filter((g) => g.metadata['purchase_id'] !== undefined);
  expect(bought.map((g) => [g.id, g.metadata['purchase_id']]).sort()).toEqual(
    auto.map((p) => [p.grant_id, p.id]).sort(),
  );
  for (const g of bought) expect(g.amount).toBe(rule.packCredits);

  await expectReconcileOk(cluster.at(0));
  return expected;
}

for (const backend of BACKENDS) {
  describe(`e2e: plans under concurrency (${backend.name})`, () => {
    let cluster: Cluster | null = null;

    beforeAll(() => requireBuiltCli());
    afterEach(async () => {
      await cluster?.cleanup();
      cluster = null;
    });

    it('40 concurrent held checks on a balance that fits 7: exactly 7 allowed and held, 33 refused', async () => {
      const N = 40;
      const K = 7;
      const quantity = '10';
      const perCheck = units(CREDITS_PER_USE) * 10n; // 50 credits a check
      const leftOver = units('20'); // less than one more check
      const initial = perCheck * BigInt(K) + leftOver; // 370
      cluster = await backend.open();
      const c = cluster;
      await setup(c, { grant: amount(initial) });

      const responses = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          c.at(i).post('/v1/check', {
            customer_id: CUSTOMER,
            feature_id: FEATURE,
            quantity,
            hold: { ttl_seconds: 300 },
          }),
        ),
      );
      expect(
        responses.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`),
        'every check answers 200',
      ).toEqual([]);
      const allowed = responses.filter((r) => r.body.allowed === true);
      const refused = responses.filter((r) => r.body.allowed !== true);
      expect(allowed).toHaveLength(K);
      expect(refused).toHaveLength(N - K);
      for (const r of allowed) {
        expect(r.body).toMatchObject({ reason: 'ok', credits: amount(perCheck) });
        expect(r.body.hold_id).toMatch(/^hld_/);
      }
      for (const r of refused) {
        // Refused only once all K holds were placed: each saw what the K holds left.
        expect(r.body).toMatchObject({
          allowed: false,
          reason: 'insufficient_credits',
          credits: amount(perCheck),
          available: amount(leftOver),
          hold_id: null,
        });
      }
      const holdIds = allowed.map((r) => r.body.hold_id as string);
      expect(new Set(holdIds).size).toBe(K);
      // Serialised: the allowed checks saw initial, initial − 50, …, each balance exactly once.
      expect(allowed.map((r) => r.body.available as string).sort(byUnits)).toEqual(
        Array.from({ length: K }, (_, j) => amount(initial - perCheck * BigInt(K - 1 - j))),
      );

      const held = perCheck * BigInt(K);
      for (const server of c.servers) {
        expect(await balanceOf(server)).toEqual({
          available: amount(initial - held),
          held: amount(held),
          overage: '0',
        });
      }
      for (const [i, id] of holdIds.entries()) {
        const hold = await expectStatus(c.at(i).get(`/v1/holds/${id}`), 200);
        expect(hold.body).toMatchObject({ id, status: 'active', amount: amount(perCheck) });
      }
      const ledger = await readLedger(c.at(0), CUSTOMER);
      const holdEntries = ledger.filter((e) => e.type === 'hold');
      expect([...new Set(holdEntries.map((e) => e.ref))].sort()).toEqual([...holdIds].sort());
      expect(ledger.filter((e) => !['grant', 'hold'].includes(e.type))).toEqual([]);
      await expectReconcileOk(c.at(1));

      // The holds are real: released concurrently, everything is available again.
      const released = await Promise.all(holdIds.map((id, i) => c.at(i + 1).post(`/v1/holds/${id}/release`)));
      expect(released.map((r) => r.status)).toEqual(holdIds.map(() => 200));
      expect(await balanceOf(c.at(2))).toEqual({ available: amount(initial), held: '0', overage: '0' });
      await expectReconcileOk(c.at(0));
    });

    it('auto top-up fires exactly once when 30 concurrent debits cross the threshold once', async () => {
      cluster = await backend.open();
      const expected = await runTopUpScenario(cluster, {
        initial: '1050',
        debit: '10',
        debits: 30,
        // The first top-up lifts the balance far above the threshold: one crossing only.
        rule: { threshold: '1000', packCredits: '100000', maxPerPeriod: 5 },
      });
      // 1050 − 30 × 10 + 100000
      expect(expected).toMatchObject({ crossings: 1, topUps: 1, final: '100750' });
    });

    it('auto top-up fires once per crossing under concurrent debits, capped by max_per_period', async () => {
      cluster = await backend.open();
      // 1050 − 10 × 5 = 1000; the 6th debit crosses (990) and buys 100 → 1090; 9 debits later the
      // balance is 1000 again and the next one crosses again: crossings at debits 6, 16, 26 and 36.
      // The 4th crossing finds the cap (3 per period) reached: 1090 − 9 × 10 − 10 − 40 = 950.
      const expected = await runTopUpScenario(cluster, {
        initial: '1050',
        debit: '10',
        debits: 40,
        rule: { threshold: '1000', packCredits: '100', maxPerPeriod: 3 },
      });
      expect(expected).toMatchObject({ crossings: 4, topUps: 3, final: '950' });
    });
  });
}
