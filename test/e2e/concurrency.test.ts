import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, ServerProcess } from './server-process.js';
import {
  amount,
  type Entry,
  entriesByRef,
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
 * Many concurrent debits, holds, captures and releases on ONE customer over real HTTP against a
 * real server process; afterwards the balance, the ledger and `burndown reconcile` must agree
 * exactly with what the clients were told.
 */

const OPERATIONS = 400;
const CONNECTIONS = 50;
const HOUR = 3600 * 1000;

type FollowUp = 'capture_full' | 'capture_partial' | 'capture_excess' | 'release' | 'race';
type Op =
  | {
      readonly kind: 'debit';
      readonly index: number;
      readonly amount: string;
      readonly idempotencyKey: string | null;
    }
  | {
      readonly kind: 'hold';
      readonly index: number;
      readonly amount: string;
      readonly followUp: FollowUp;
      readonly extra: string;
    };

interface DebitResponse {
  id: string;
  amount: string;
  overage: string;
  hold_id: string | null;
  drawdowns: { grant_id: string; amount: string }[];
  balance_after: { available: string; held: string; overage: string };
}

/** What the clients observed: every request sent and every answer received. */
class Observed {
  debitsSent = 0;
  debitStatuses = new Map<number, number>();
  holdsSent = 0;
  holdStatuses = new Map<number, number>();
  capturesSent = 0;
  captureStatuses = new Map<number, number>();
  /** Successful debits (POST /debits 201) by id. */
  debits = new Map<string, DebitResponse>();
  /** Successful captures (201) by debit id. */
  captures = new Map<string, DebitResponse>();
  /** Successful holds by id, with the amount finally captured from them (null: released). */
  holds = new Map<
    string,
    { amount: string; drawdowns: { grant_id: string; amount: string }[]; captured: string | null }
  >();
  refusals: { requested: string; available: string }[] = [];
  raceOutcomes: string[] = [];
  failures: string[] = [];

  count(map: Map<number, number>, status: number) {
    map.set(status, (map.get(status) ?? 0) + 1);
  }
}

function makeOperations(seed: number): Op[] {
  const rand = prng(seed);
  const ops: Op[] = [];
  const followUps: FollowUp[] = ['capture_full', 'capture_partial', 'capture_excess', 'release', 'race'];
  for (let i = 0; i < OPERATIONS; i++) {
    if (rand() < 0.7) {
      ops.push({
        kind: 'debit',
        index: i,
        amount: randomAmount(rand, 1, 40, 6),
        idempotencyKey: rand() < 0.5 ? `conc-${seed}-${i}` : null,
      });
    } else {
      ops.push({
        kind: 'hold',
        index: i,
        amount: randomAmount(rand, 1, 20, 4),
        followUp: followUps[Math.floor(rand() * followUps.length)]!,
        extra: randomAmount(rand, 1, 10, 3),
      });
    }
  }
  return ops;
}

const GRANTS = (now: number) => [
  {
    amount: '500.125',
    priority: 1,
    category: 'allowance',
    expires_at: new Date(now + 72 * HOUR).toISOString(),
  },
  {
    amount: '750.25',
    priority: 5,
    category: 'promotional',
    expires_at: new Date(now + 1 * HOUR).toISOString(),
  },
  {
    amount: '1000.5',
    priority: 5,
    category: 'promotional',
    expires_at: new Date(now + 2 * HOUR).toISOString(),
  },
  { amount: '2000', priority: 10, category: 'paid', expires_at: null },
];

/** The contract's error envelope of a refused request. */
function errorOf(body: unknown): { code?: string; details?: Record<string, string> } {
  return (body as { error?: { code?: string; details?: Record<string, string> } } | null)?.error ?? {};
}

const minUnits = (a: bigint, b: bigint) => (a < b ? a : b);

function sumDrawdowns(drawdowns: readonly { amount: string }[]): bigint {
  return sum(drawdowns.map((d) => units(d.amount)));
}

/** grant id → total, for comparing drawdowns with ledger entries regardless of order. */
function byGrant(items: readonly { grant_id: string | null; amount: string }[]): Record<string, string> {
  const totals = new Map<string, bigint>();
  for (const d of items)
    totals.set(d.grant_id ?? '-', (totals.get(d.grant_id ?? '-') ?? 0n) + units(d.amount));
  return Object.fromEntries([...totals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([g, v]) => [g, amount(v)]));
}

async function runScenario(server: ServerProcess, allowOverage: boolean, seed: number) {
  const customer = `conc-${allowOverage ? 'overage' : 'strict'}-${seed}`;
  expect((await server.post('/v1/customers', { id: customer, name: 'Concurrency' })).status).toBe(201);
  const now = Date.now();
  let granted = 0n;
  for (const grant of GRANTS(now)) {
    const res = await server.post(`/v1/customers/${customer}/grants`, grant);
    expect(res.status, res.text).toBe(201);
    granted += units(grant.amount);
  }

  const ops = makeOperations(seed);
  const seen = new Observed();
  const base = `/v1/customers/${customer}`;

  const capture = async (holdId: string, body: Record<string, unknown>) => {
    seen.capturesSent += 1;
    const res = await server.post<DebitResponse>(`/v1/holds/${holdId}/capture`, body);
    seen.count(seen.captureStatuses, res.status);
    return res;
  };

  const started = Date.now();
  await runPool(ops, CONNECTIONS, async (op) => {
    if (op.kind === 'debit') {
      seen.debitsSent += 1;
      const res = await server.post<DebitResponse>(
        `${base}/debits`,
        { amount: op.amount, allow_overage: allowOverage, metadata: { op: op.index } },
        op.idempotencyKey ? { 'idempotency-key': op.idempotencyKey } : {},
      );
      seen.count(seen.debitStatuses, res.status);
      if (res.status === 201) {
        if (res.body.amount !== op.amount)
          seen.failures.push(`debit ${op.index}: amount ${res.body.amount} ≠ ${op.amount}`);
        seen.debits.set(res.body.id, res.body);
      } else if (res.status === 402) {
        const details = errorOf(res.body).details;
        if (errorOf(res.body).code !== 'insufficient_credits' || details?.['requested'] !== op.amount) {
          seen.failures.push(`debit ${op.index}: unexpected 402 body ${res.text}`);
        }
        seen.refusals.push({
          requested: details?.['requested'] ?? '',
          available: details?.['available'] ?? '',
        });
      } else {
        seen.failures.push(`debit ${op.index}: status ${res.status} ${res.text}`);
      }
      return;
    }

    seen.holdsSent += 1;
    const placed = await server.post(`${base}/holds`, { amount: op.amount, ttl_seconds: 600 });
    seen.count(seen.holdStatuses, placed.status);
    if (placed.status === 402) {
      const details = placed.body.error?.details;
      if (placed.body.error?.code !== 'insufficient_credits')
        seen.failures.push(`hold ${op.index}: ${placed.text}`);
      else if (!allowOverage)
        seen.refusals.push({ requested: details.requested, available: details.available });
      return;
    }
    if (placed.status !== 201) {
      seen.failures.push(`hold ${op.index}: status ${placed.status} ${placed.text}`);
      return;
    }
    const hold = placed.body as {
      id: string;
      amount: string;
      status: string;
      drawdowns: { grant_id: string; amount: string }[];
    };
    if (
      hold.status !== 'active' ||
      hold.amount !== op.amount ||
      sumDrawdowns(hold.drawdowns) !== units(op.amount)
    ) {
      seen.failures.push(`hold ${op.index}: bad hold ${placed.text}`);
    }
    const record = { amount: hold.amount, drawdowns: hold.drawdowns, captured: null as string | null };
    seen.holds.set(hold.id, record);

    const release = async () => {
      const res = await server.post(`/v1/holds/${hold.id}/release`, {});
      if (res.status === 200 && res.body.status !== 'released')
        seen.failures.push(`release ${hold.id}: ${res.text}`);
      return res;
    };
    const captured = (res: { status: number; body: DebitResponse; text: string }, requested: string) => {
      if (res.body.hold_id !== hold.id || res.body.amount !== requested)
        seen.failures.push(`capture ${hold.id}: ${res.text}`);
      seen.captures.set(res.body.id, res.body);
      record.captured = res.body.amount;
    };

    switch (op.followUp) {
      case 'capture_full': {
        const res = await capture(hold.id, {});
        if (res.status === 201) captured(res, hold.amount);
        else seen.failures.push(`full capture ${hold.id}: ${res.status} ${res.text}`);
        break;
      }
      case 'capture_partial': {
        const part = amount(units(hold.amount) / 2n > 0n ? units(hold.amount) / 2n : units(hold.amount));
        const res = await capture(hold.id, { amount: part });
        if (res.status === 201) captured(res, part);
        else seen.failures.push(`partial capture ${hold.id}: ${res.status} ${res.text}`);
        break;
      }
      case 'capture_excess': {
        // More than held: the excess is drawn like a debit (402 when short, unless overage is allowed).
        const more = amount(units(hold.amount) + units(op.extra));
        const res = await capture(hold.id, { amount: more, allow_overage: allowOverage });
        if (res.status === 201) captured(res, more);
        else if (res.status === 402 && !allowOverage) {
          if (res.body && errorOf(res.body).code !== 'insufficient_credits')
            seen.failures.push(`excess capture: ${res.text}`);
          // The refused capture changed nothing: the hold is still active and can be released.
          const released = await release();
          if (released.status !== 200)
            seen.failures.push(`release after 402 ${hold.id}: ${released.status} ${released.text}`);
        } else seen.failures.push(`excess capture ${hold.id}: ${res.status} ${res.text}`);
        break;
      }
      case 'release': {
        const res = await release();
        if (res.status !== 200) seen.failures.push(`release ${hold.id}: ${res.status} ${res.text}`);
        break;
      }
      case 'race': {
        // Capture and release at the same time on two connections: exactly one may win.
        const [cap, rel] = await Promise.all([
          server.post<DebitResponse>(`/v1/holds/${hold.id}/capture`, {}),
          release(),
        ]);
        seen.raceOutcomes.push(`${cap.status}/${rel.status}`);
        if (cap.status === 201 && rel.status === 409) {
          captured(cap, hold.amount);
          if (errorOf(rel.body).code !== 'hold_not_active') seen.failures.push(`race release: ${rel.text}`);
        } else if (cap.status === 409 && rel.status === 200) {
          if (errorOf(cap.body).code !== 'hold_not_active') seen.failures.push(`race capture: ${cap.text}`);
        } else {
          seen.failures.push(
            `race on ${hold.id}: capture ${cap.status} ${cap.text} / release ${rel.status} ${rel.text}`,
          );
        }
        break;
      }
    }
  });
  const elapsed = Date.now() - started;

  // --- What the clients were told ---------------------------------------------------------
  expect(seen.failures, `seed ${seed}`).toEqual([]);
  const debit201 = seen.debitStatuses.get(201) ?? 0;
  const debit402 = seen.debitStatuses.get(402) ?? 0;
  expect(debit201 + debit402, `debit statuses ${JSON.stringify([...seen.debitStatuses])}`).toBe(
    seen.debitsSent,
  );
  expect(
    (seen.holdStatuses.get(201) ?? 0) + (seen.holdStatuses.get(402) ?? 0),
    `hold statuses ${JSON.stringify([...seen.holdStatuses])}`,
  ).toBe(seen.holdsSent);
  expect(
    (seen.captureStatuses.get(201) ?? 0) + (seen.captureStatuses.get(402) ?? 0),
    `capture statuses ${JSON.stringify([...seen.captureStatuses])}`,
  ).toBe(seen.capturesSent);
  expect(seen.debits.size).toBe(debit201);
  expect(seen.holds.size).toBe(seen.holdStatuses.get(201) ?? 0);
  expect(seen.debitsSent + seen.holdsSent).toBe(OPERATIONS);
  expect(debit201).toBeGreaterThan(0);

  const requestedDebits = sum(ops.flatMap((op) => (op.kind === 'debit' ? [units(op.amount)] : [])));
  if (allowOverage) {
    expect(debit402, 'with allow_overage no debit is refused').toBe(0);
  } else if (requestedDebits > granted) {
    // The debits alone ask for more than was ever granted, so some must have been refused.
    expect(debit402).toBeGreaterThan(0);
  }
  for (const refusal of seen.refusals) {
    // A refusal must be real: what was available was less than what was asked.
    expect(units(refusal.available) < units(refusal.requested), JSON.stringify(refusal)).toBe(true);
  }

  for (const d of [...seen.debits.values(), ...seen.captures.values()]) {
    expect(sumDrawdowns(d.drawdowns) + units(d.overage), `debit ${d.id}`).toBe(units(d.amount));
    if (!allowOverage) {
      expect(d.overage).toBe('0');
      expect(units(d.balance_after.available) >= 0n, `balance_after of ${d.id}`).toBe(true);
    }
  }

  const debited = sum([...seen.debits.values()].map((d) => units(d.amount)));
  const captured = sum([...seen.captures.values()].map((d) => units(d.amount)));
  const overageCharged = sum(
    [...seen.debits.values(), ...seen.captures.values()].map((d) => units(d.overage)),
  );
  const expectedAvailable = granted - debited - captured;

  // --- The balance ---------------------------------------------------------------------------
  const balanceRes = await server.get(`${base}/balance`);
  expect(balanceRes.status).toBe(200);
  const balance = balanceRes.body as {
    available: string;
    held: string;
    overage: string;
    grants: { grant_id: string; remaining: string }[];
  };
  expect(balance.available, `seed ${seed}`).toBe(amount(expectedAvailable));
  expect(balance.held).toBe('0');
  if (allowOverage) {
    // The debt is exactly the shortfall: what was consumed beyond what was granted.
    const shortfall = expectedAvailable < 0n ? -expectedAvailable : 0n;
    expect(balance.overage).toBe(amount(shortfall));
    if (requestedDebits > granted) expect(units(balance.overage) > 0n).toBe(true);
  } else {
    expect(units(balance.available) >= 0n, 'never below zero without allow_overage').toBe(true);
    expect(balance.overage).toBe('0');
  }
  // available = Σ remaining − held − overage
  expect(amount(sum(balance.grants.map((g) => units(g.remaining))))).toBe(
    amount(units(balance.available) + units(balance.overage)),
  );

  // --- The ledger -----------------------------------------------------------------------------
  const ledger = await readLedger(server, customer);
  const types = new Set(ledger.map((e) => e.type));
  for (const t of ['expiry', 'void', 'adjustment']) expect(types.has(t), `unexpected ${t} entry`).toBe(false);
  expect(new Set(ledger.map((e) => e.id)).size, 'entry ids are unique').toBe(ledger.length);
  const grantEntries = ledger.filter((e) => e.type === 'grant');
  expect(grantEntries).toHaveLength(GRANTS(now).length);
  expect(sum(grantEntries.map((e) => units(e.amount)))).toBe(granted);

  // Every successful debit or capture has exactly one set of consumption entries (ref = its id);
  // nothing else consumed credits (a refused request left no trace).
  const consumption = entriesByRef(ledger, ['debit', 'capture', 'overage']);
  expect(
    [...consumption.keys()].sort(),
    'exactly the successful debits and captures consumed credits',
  ).toEqual([...seen.debits.keys(), ...seen.captures.keys()].sort());
  for (const d of [...seen.debits.values(), ...seen.captures.values()]) {
    const entries = consumption.get(d.id)!;
    const drawType = d.hold_id === null ? 'debit' : 'capture';
    expect(
      entries.every((e) => e.type === drawType || e.type === 'overage'),
      `${d.id}: ${JSON.stringify(entries)}`,
    ).toBe(true);
    const draws = entries.filter((e) => e.type === drawType);
    const overage = entries.filter((e) => e.type === 'overage');
    if (drawType === 'debit') {
      // One entry per drawdown: one set of entries per debit, never two.
      expect(draws.length, `debit ${d.id}`).toBe(d.drawdowns.length);
    }
    expect(byGrant(draws), `${drawType} ${d.id}`).toEqual(byGrant(d.drawdowns));
    expect(overage.length, `overage entries of ${d.id}`).toBe(units(d.overage) > 0n ? 1 : 0);
    expect(sum(overage.map((e) => units(e.amount))), `overage of ${d.id}`).toBe(units(d.overage));
    expect(sum(entries.map((e) => units(e.amount))), `total of ${d.id}`).toBe(units(d.amount));
  }
  const settled = sum(ledger.filter((e) => e.type === 'overage_settled').map((e) => units(e.amount)));
  expect(amount(overageCharged - settled), 'overage owed = overage charged − overage settled').toBe(
    balance.overage,
  );

  const holdEntries = entriesByRef(ledger, ['hold']);
  expect([...holdEntries.keys()].sort(), 'exactly the successful holds have hold entries').toEqual(
    [...seen.holds.keys()].sort(),
  );
  const releaseEntries = entriesByRef(ledger, ['release']);
  for (const [id, h] of seen.holds) {
    expect(sum(holdEntries.get(id)!.map((e) => units(e.amount)))).toBe(units(h.amount));
    const capturedFromHold = h.captured === null ? 0n : minUnits(units(h.captured), units(h.amount));
    const released = sum((releaseEntries.get(id) ?? []).map((e) => units(e.amount)));
    expect(released, `released part of hold ${id}`).toBe(units(h.amount) - capturedFromHold);
  }
  const last = ledger[ledger.length - 1] as Entry;
  expect(last.balance_after, 'the last entry carries the final balance').toBe(balance.available);

  // --- The CLI sees the same balance and proves the ledger --------------------------------
  const cliBalance = await server.runCli(['balance', customer]);
  expect(cliBalance.code, cliBalance.stderr).toBe(0);
  const printed = JSON.parse(cliBalance.stdout) as { available: string; overage: string; held: string };
  expect([printed.available, printed.held, printed.overage]).toEqual([
    balance.available,
    balance.held,
    balance.overage,
  ]);
  await expectReconcileOk(server);

  return {
    elapsed,
    debit201,
    debit402,
    holds: seen.holds.size,
    holds402: seen.holdStatuses.get(402) ?? 0,
    captures: seen.captures.size,
    races: seen.raceOutcomes.length,
    available: balance.available,
    overage: balance.overage,
    entries: ledger.length,
  };
}

describe('e2e: concurrent writes on one customer', () => {
  let server: ServerProcess | null = null;

  beforeAll(() => requireBuiltCli());
  afterEach(async () => {
    await server?.cleanup();
    server = null;
  });

  it(`${OPERATIONS} concurrent debits, holds, captures and releases never overdraw and the ledger matches exactly`, async () => {
    const seed = seedFromEnv();
    server = await ServerProcess.start();
    const stats = await runScenario(server, false, seed);
    console.info(`[e2e concurrency strict] seed=${seed}`, stats);
    await server.stop();
    // The database closed cleanly still reconciles.
    await expectReconcileOk(server);
  });

  it('with allow_overage the balance may go negative and the overage is exactly the shortfall', async () => {
    const seed = seedFromEnv();
    server = await ServerProcess.start();
    const stats = await runScenario(server, true, seed);
    console.info(`[e2e concurrency overage] seed=${seed}`, stats);
    expect(units(stats.available) < 0n).toBe(true);
    await server.stop();
    await expectReconcileOk(server);
  });

  it('reconciliation run while debits stream in reports OK (a consistent snapshot, no false alarms)', async () => {
    server = await ServerProcess.start();
    const s = server;
    const customer = 'live-reconcile';
    expect((await s.post('/v1/customers', { id: customer })).status).toBe(201);
    expect((await s.post(`/v1/customers/${customer}/grants`, { amount: '1000000000' })).status).toBe(201);
    // Some history first, so that reading the ledger takes a while.
    await runPool(
      Array.from({ length: 400 }, (_, i) => i),
      20,
      async () => {
        expect((await s.post(`/v1/customers/${customer}/debits`, { amount: '1.5' })).status).toBe(201);
      },
    );
    let streaming = true;
    let streamed = 0;
    const traffic = Array.from({ length: 20 }, async () => {
      for (let i = 0; streaming && i < 5_000; i++) {
        const res = await s.post(`/v1/customers/${customer}/debits`, { amount: '0.25' });
        if (res.status !== 201) throw new Error(`debit during reconcile: ${res.status} ${res.text}`);
        streamed += 1;
      }
    });
    const cli: string[] = [];
    const endpoint: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const run = await s.runCli(['reconcile']);
        cli.push(`exit ${run.code}: ${run.stdout.trim()}`);
        const res = await s.get('/v1/reconciliation');
        // The reconciliation endpoint (when this build has it) must agree.
        if (res.status !== 404 || res.body?.error?.code !== 'not_found') {
          endpoint.push(
            `${res.status} ok=${res.body?.ok} ${JSON.stringify(res.body?.failures ?? res.body).slice(0, 300)}`,
          );
        }
      }
    } finally {
      streaming = false;
      await Promise.all(traffic);
    }
    console.info('[e2e live reconcile]', { streamed, cli, endpoint });
    expect(streamed).toBeGreaterThan(0);
    expect(
      cli.filter((line) => !line.startsWith('exit 0:')),
      'reconcile under live traffic',
    ).toEqual([]);
    expect(
      endpoint.filter((line) => !line.startsWith('200 ok=true')),
      'GET /v1/reconciliation under live traffic',
    ).toEqual([]);
    // Idle again: the books balance exactly.
    const balance = (await s.get(`/v1/customers/${customer}/balance`)).body;
    const debited = sum(
      (await readLedger(s, customer)).filter((e) => e.type === 'debit').map((e) => units(e.amount)),
    );
    expect(balance.available).toBe(amount(units('1000000000') - debited));
    expect(debited).toBe(units('1.5') * 400n + units('0.25') * BigInt(streamed));
    await expectReconcileOk(s);
  });

  it('the same Idempotency-Key sent concurrently debits once', async () => {
    server = await ServerProcess.start();
    const customer = 'idem-race';
    expect((await server.post('/v1/customers', { id: customer })).status).toBe(201);
    expect((await server.post(`/v1/customers/${customer}/grants`, { amount: '100' })).status).toBe(201);
    const body = { amount: '7.125' };
    const headers = { 'idempotency-key': 'same-key-everywhere' };
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => server!.post(`/v1/customers/${customer}/debits`, body, headers)),
    );
    const statuses = responses.map((r) => r.status);
    expect(
      statuses.every((s) => s === 201 || s === 409),
      JSON.stringify(statuses),
    ).toBe(true);
    for (const r of responses.filter((r) => r.status === 409))
      expect(r.body.error.code).toBe('request_in_progress');
    const created = responses.filter((r) => r.status === 201);
    expect(created.filter((r) => r.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    // A retry after the dust settles replays the same debit; a different body is refused.
    const retry = await server.post(`/v1/customers/${customer}/debits`, body, headers);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.id).toBe(created[0]!.body.id);
    const reused = await server.post(`/v1/customers/${customer}/debits`, { amount: '8' }, headers);
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
    const ledger = await readLedger(server, customer);
    expect(ledger.filter((e) => e.type === 'debit').map((e) => [e.ref, e.amount])).toEqual([
      [retry.body.id, '7.125'],
    ]);
    expect((await server.get(`/v1/customers/${customer}/balance`)).body.available).toBe('92.875');
    await expectReconcileOk(server);
  });
});
