import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, ServerProcess } from './server-process.js';
import {
  amount,
  entriesByRef,
  expectReconcileOk,
  prng,
  readLedger,
  runPool,
  seedFromEnv,
  sum,
  units,
} from './support.js';

/**
 * Crash safety of metering: several large event batches (spread over many customers) are being
 * ingested concurrently when the server is SIGKILLed. After a restart on the same database every
 * event ever sent is either fully in (stored AND burned exactly once) or absent: never stored
 * without its burn, never burned twice. Each customer's events of one request are one
 * transaction, so they are all in or all absent together, and a batch that was answered 202 is in
 * whole. Re-sending every batch then counts the events already in as duplicates and accepts the
 * rest; afterwards each event is in exactly once, every balance is exactly what the rate says
 * (computed with BigInt) and `burndown reconcile` passes.
 *
 * Which events are stored is read from the meter's usage: each event of a customer gets its own
 * hour, so a window of the hourly usage names exactly one event. Burns are read from the ledger
 * (one debit per rated event: entries grouped by `ref`) and, to tie each burn to its event
 * (metadata.event_id, which the API does not expose on ledger entries), from the database file.
 */

const CUSTOMERS = 200;
const BATCHES = 5;
const PER_BATCH = 5_000;
/** Batches with this index are sent as CloudEvents (batched mode); the others as native events. */
const CLOUDEVENTS_BATCH = BATCHES - 1;
const EVENT_TYPE = 'com.example.tokens';
const CE_SOURCE = 'urn:e2e:ingest-crash';
/** 12 fractional digits: every burn is an exact product, nothing to round. */
const RATE = '0.003141592653';
/** Customers with index % 10 === 0 get a tiny grant and burn mostly into overage. */
const BIG_GRANT = '100000';
const SMALL_GRANT = '0.5';
const BASE_TIME = Date.parse('2026-02-01T00:00:00.000Z');
const HOUR = 3_600_000;
/**
 * When to kill: the server's event loop is busy while it ingests (so /metrics cannot be polled
 * then), but the WAL file grows as soon as the first ingest transaction writes its frames. The
 * kill lands a random delay after that growth, so it hits a different point of the ingest on
 * every run: sometimes before the first commit, usually between commits.
 */
const KILL_SPREAD_MS = 700;
/** Bound on waiting for the WAL to grow. */
const WAL_DEADLINE_MS = 20_000;

interface SentEvent {
  readonly batch: number;
  readonly id: string;
  readonly customer: string;
  /** Ordinal of the event among its customer's events: its hour after BASE_TIME. */
  readonly slot: number;
  readonly tokens: number;
  readonly credits: bigint;
}

interface Batch {
  readonly index: number;
  readonly events: readonly SentEvent[];
  readonly contentType: string;
  readonly body: string;
}

const customerId = (c: number) => `cust-${String(c).padStart(3, '0')}`;
const grantOf = (c: number) => (c % 10 === 0 ? SMALL_GRANT : BIG_GRANT);
const windowStart = (slot: number) => new Date(BASE_TIME + slot * HOUR).toISOString();

function makeBatches(rand: () => number, seed: number): Batch[] {
  const rateUnits = units(RATE);
  const batches: Batch[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const events: SentEvent[] = [];
    for (let i = 0; i < PER_BATCH; i++) {
      const n = b * PER_BATCH + i;
      const tokens = 1 + Math.floor(rand() * 5_000);
      events.push({
        batch: b,
        id: `ev-${seed}-${b}-${i}`,
        customer: customerId(n % CUSTOMERS),
        slot: Math.floor(n / CUSTOMERS),
        tokens,
        credits: BigInt(tokens) * rateUnits,
      });
    }
    // Shuffle, so each customer's events are scattered through the batch.
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [events[i], events[j]] = [events[j]!, events[i]!];
    }
    // A random minute inside the event's own hour.
    const time = (e: SentEvent) =>
      new Date(BASE_TIME + e.slot * HOUR + Math.floor(rand() * 60) * 60_000).toISOString();
    const ce = b === CLOUDEVENTS_BATCH;
    const body = JSON.stringify(
      events.map((e) =>
        ce
          ? {
              specversion: '1.0',
              id: e.id,
              source: CE_SOURCE,
              type: EVENT_TYPE,
              subject: e.customer,
              time: time(e),
              datacontenttype: 'application/json',
              data: { tokens: e.tokens },
            }
          : {
              id: e.id,
              type: EVENT_TYPE,
              customer_id: e.customer,
              time: time(e),
              data: { tokens: e.tokens },
            },
      ),
    );
    batches.push({
      index: b,
      events,
      contentType: ce ? 'application/cloudevents-batch+json' : 'application/json',
      body,
    });
  }
  return batches;
}

/**
 * Per customer: the slots whose event is stored (from hourly meter usage). Each window must hold
 * exactly one sent event's tokens (never twice, never a window no event was sent for).
 */
async function storedSlots(
  s: ServerProcess,
  byCustomer: ReadonlyMap<string, readonly SentEvent[]>,
): Promise<Map<string, Set<number>>> {
  const stored = new Map<string, Set<number>>();
  const problems: string[] = [];
  await runPool([...byCustomer.keys()], 8, async (customer) => {
    // One page holds a customer's 125 windows (usage is paged, 100 rows by default).
    const res = await s.get(`/v1/meters/tokens/usage?customer_id=${customer}&window=hour&limit=1000`);
    expect(res.status, res.text).toBe(200);
    const bySlot = new Map(byCustomer.get(customer)!.map((e) => [windowStart(e.slot), e]));
    const slots = new Set<number>();
    for (const row of res.body.data as { window_start: string; value: string }[]) {
      const event = bySlot.get(row.window_start);
      if (!event) problems.push(`${customer}: usage in ${row.window_start}, where no event was sent`);
      else if (row.value !== String(event.tokens))
        problems.push(`${customer} ${event.id}: usage ${row.value}, sent ${event.tokens} tokens`);
      else slots.add(event.slot);
    }
    stored.set(customer, slots);
  });
  expect(problems.slice(0, 20), `${problems.length} usage problems`).toEqual([]);
  return stored;
}

/**
 * Per customer: the ledger holds exactly one burn (debit + overage entries sharing one `ref`) per
 * stored event, each for that event's exact credits, and the balance is the grant minus them.
 */
async function checkBurns(
  s: ServerProcess,
  byCustomer: ReadonlyMap<string, readonly SentEvent[]>,
  stored: ReadonlyMap<string, ReadonlySet<number>>,
): Promise<bigint> {
  let totalAvailable = 0n;
  await runPool([...byCustomer.keys()], 8, async (customer) => {
    const c = Number(customer.slice('cust-'.length));
    const present = byCustomer.get(customer)!.filter((e) => stored.get(customer)!.has(e.slot));
    const ledger = await readLedger(s, customer);
    const other = ledger.filter((e) => !['grant', 'debit', 'overage'].includes(e.type));
    expect(other, `${customer}: only grant, debit and overage entries`).toEqual([]);
    expect(ledger.filter((e) => e.type === 'grant').map((e) => e.amount)).toEqual([grantOf(c)]);
    const burns = entriesByRef(ledger, ['debit', 'overage']);
    const burnTotals = [...burns.values()].map((entries) => sum(entries.map((e) => units(e.amount))));
    const sort = (xs: bigint[]) => xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // One burn per stored event (a multiset match of the exact credits), none for absent events.
    expect(
      sort(burnTotals).map(amount),
      `${customer}: one burn per stored event (${present.length} stored)`,
    ).toEqual(sort(present.map((e) => e.credits)).map(amount));
    const balance = await s.get(`/v1/customers/${customer}/balance`);
    expect(balance.status, balance.text).toBe(200);
    const spent = sum(present.map((e) => e.credits));
    expect(balance.body.available, `${customer} available`).toBe(amount(units(grantOf(c)) - spent));
    expect(balance.body.held).toBe('0');
    const expectedOverage = spent > units(grantOf(c)) ? spent - units(grantOf(c)) : 0n;
    expect(balance.body.overage, `${customer} overage`).toBe(amount(expectedOverage));
    totalAvailable += units(balance.body.available);
  });
  return totalAvailable;
}

/**
 * Straight from the database file (read-only): every stored event has exactly one burn by the
 * rate, whose debit carries metadata.event_id = the event's id and exactly its credits; no burn or
 * usage debit exists without its event.
 */
function checkDatabase(
  s: ServerProcess,
  sent: ReadonlyMap<string, SentEvent>,
  storedIds: ReadonlySet<string>,
) {
  const db = new Database(join(s.dir, 'db.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const events = db.prepare('SELECT event_key, id, source FROM events').all() as {
      event_key: string;
      id: string;
      source: string | null;
    }[];
    expect(events.map((e) => e.id).sort()).toEqual([...storedIds].sort());
    const burns = db.prepare('SELECT event_key, rate_id, debit_id, credits FROM event_burns').all() as {
      event_key: string;
      rate_id: string;
      debit_id: string | null;
      credits: string;
    }[];
    const burnsByKey = new Map<string, typeof burns>();
    for (const b of burns) burnsByKey.set(b.event_key, [...(burnsByKey.get(b.event_key) ?? []), b]);
    const debits = new Map(
      (
        db.prepare('SELECT id, amount, metadata FROM debits').all() as {
          id: string;
          amount: string;
          metadata: string;
        }[]
      ).map((d) => [d.id, { amount: d.amount, metadata: JSON.parse(d.metadata) as Record<string, unknown> }]),
    );
    const usedDebits = new Set<string>();
    const problems: string[] = [];
    for (const e of events) {
      const expected = sent.get(e.id)!;
      const source = expected.batch === CLOUDEVENTS_BATCH ? CE_SOURCE : null;
      if (e.source !== source) problems.push(`event ${e.id}: source ${e.source}`);
      const eventBurns = burnsByKey.get(e.event_key) ?? [];
      if (eventBurns.length !== 1) {
        problems.push(`event ${e.id}: ${eventBurns.length} burns`);
        continue;
      }
      const burn = eventBurns[0]!;
      const debit = debits.get(burn.debit_id ?? '');
      if (burn.rate_id !== 'tokens-rate' || units(burn.credits) !== expected.credits) {
        problems.push(`event ${e.id}: burn by ${burn.rate_id} of ${burn.credits}`);
      } else if (!debit) {
        problems.push(`event ${e.id}: burn without its debit ${burn.debit_id}`);
      } else if (
        units(debit.amount) !== expected.credits ||
        debit.metadata['event_id'] !== e.id ||
        debit.metadata['rate_id'] !== 'tokens-rate'
      ) {
        problems.push(
          `event ${e.id}: debit ${burn.debit_id} ${debit.amount} ${JSON.stringify(debit.metadata)}`,
        );
      } else if (usedDebits.has(burn.debit_id!)) {
        problems.push(`event ${e.id}: debit ${burn.debit_id} burns two events`);
      }
      usedDebits.add(burn.debit_id!);
    }
    expect(problems.slice(0, 20), `${problems.length} burn problems`).toEqual([]);
    expect(burns.length, 'no burn without its event').toBe(events.length);
    expect(debits.size, 'no usage debit without its event (and no other debits)').toBe(usedDebits.size);
  } finally {
    db.close();
  }
}

describe('e2e: SIGKILL during concurrent event ingest', () => {
  let server: ServerProcess | null = null;

  beforeAll(() => requireBuiltCli());
  afterEach(async () => {
    await server?.cleanup();
    server = null;
  });

  it(`${BATCHES} × ${PER_BATCH} events over ${CUSTOMERS} customers: all-or-nothing per event, then exactly once`, async () => {
    const seed = seedFromEnv();
    const rand = prng(seed);
    const timings: Record<string, number> = {};
    let mark = Date.now();
    const lap = (name: string) => {
      const now = Date.now();
      timings[name] = now - mark;
      mark = now;
    };

    const s = await ServerProcess.start();
    server = s;
    // --- Seed: customers with grants, a meter and a rate -------------------------------------------
    const meter = await s.post('/v1/meters', {
      id: 'tokens',
      event_type: EVENT_TYPE,
      aggregation: 'sum',
      value_property: '$.tokens',
    });
    expect(meter.status, meter.text).toBe(201);
    const rate = await s.post('/v1/rates', { id: 'tokens-rate', meter_id: 'tokens', credits_per_unit: RATE });
    expect(rate.status, rate.text).toBe(201);
    await runPool(
      Array.from({ length: CUSTOMERS }, (_, c) => c),
      16,
      async (c) => {
        const created = await s.post('/v1/customers', { id: customerId(c) });
        expect(created.status, created.text).toBe(201);
        const grant = await s.post(`/v1/customers/${customerId(c)}/grants`, { amount: grantOf(c) });
        expect(grant.status, grant.text).toBe(201);
      },
    );
    const batches = makeBatches(rand, seed);
    const sent = new Map(batches.flatMap((b) => b.events.map((e) => [e.id, e] as const)));
    const byCustomer = new Map<string, SentEvent[]>();
    for (const e of sent.values()) byCustomer.set(e.customer, [...(byCustomer.get(e.customer) ?? []), e]);
    expect(sent.size).toBe(BATCHES * PER_BATCH);
    lap('seedMs');

    // --- Send every batch at once; SIGKILL the server while they are being ingested -------------
    const send = (b: Batch) =>
      s.post(`/v1/events`, b.body, { 'content-type': b.contentType }).then(
        (res) => ({ ok: true as const, res }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    const wal = join(s.dir, 'db.sqlite-wal');
    const walSize = () => (existsSync(wal) ? statSync(wal).size : 0);
    const walBefore = walSize();
    const started = Date.now();
    const inFlight = batches.map(send);
    let answered = 0;
    for (const p of inFlight) void p.then(() => answered++);
    while (walSize() <= walBefore && answered < BATCHES && Date.now() - started < WAL_DEADLINE_MS) {
      await sleep(1);
    }
    const walGrewAfterMs = Date.now() - started;
    await sleep(Math.floor(rand() * KILL_SPREAD_MS));
    const killAfterMs = Date.now() - started;
    const { signal } = await s.kill('SIGKILL');
    expect(signal).toBe('SIGKILL');
    const outcomes = await Promise.all(inFlight);
    lap('ingestUntilKillMs');

    const acked = new Set<number>();
    outcomes.forEach((o, b) => {
      if (!o.ok) return; // connection reset: the response is lost
      expect(o.res.status, o.res.text).toBe(202);
      expect(o.res.body).toEqual({ accepted: PER_BATCH, duplicates: 0, unmetered: 0, rejected: [] });
      acked.add(b);
    });

    // The database as the killed process left it already proves its invariants, (d) included.
    await expectReconcileOk(s);
    lap('reconcileAfterKillMs');
    await s.restart();
    lap('restartMs');

    // --- After the crash: each event fully in, or absent ------------------------------------------
    let stored = await storedSlots(s, byCustomer);
    const storedIds = new Set(
      [...sent.values()].filter((e) => stored.get(e.customer)!.has(e.slot)).map((e) => e.id),
    );
    // Answered batches are durable, whole.
    for (const b of acked) {
      const missing = batches[b]!.events.filter((e) => !storedIds.has(e.id));
      expect(missing.length, `batch ${b} was answered 202 but ${missing.length} events are missing`).toBe(0);
    }
    // Each customer's events of one request are one transaction: all in or all absent together.
    for (const b of batches) {
      const perCustomer = new Map<string, { in: number; out: number }>();
      for (const e of b.events) {
        const counts = perCustomer.get(e.customer) ?? { in: 0, out: 0 };
        if (storedIds.has(e.id)) counts.in += 1;
        else counts.out += 1;
        perCustomer.set(e.customer, counts);
      }
      for (const [customer, counts] of perCustomer) {
        expect(
          counts.in === 0 || counts.out === 0,
          `batch ${b.index}, ${customer}: ${counts.in} events in and ${counts.out} absent (torn transaction)`,
        ).toBe(true);
      }
    }
    await checkBurns(s, byCustomer, stored);
    checkDatabase(s, sent, storedIds);
    const inAfterCrash = storedIds.size;
    const perBatchIn = batches.map((b) => b.events.filter((e) => storedIds.has(e.id)).length);
    lap('verifyAfterCrashMs');

    // --- Re-send every batch: the events already in are duplicates, the rest are accepted -------
    const resent = await Promise.all(
      batches.map((b) => s.post('/v1/events', b.body, { 'content-type': b.contentType })),
    );
    resent.forEach((res, b) => {
      expect(res.status, res.text).toBe(202);
      expect(res.body, `batch ${b} re-sent`).toEqual({
        accepted: PER_BATCH - perBatchIn[b]!,
        duplicates: perBatchIn[b]!,
        unmetered: 0,
        rejected: [],
      });
    });
    lap('resendMs');

    // --- Every event exactly once; balances exact; the books reconcile ---------------------------
    stored = await storedSlots(s, byCustomer);
    for (const [customer, events] of byCustomer) {
      expect(stored.get(customer)!.size, `${customer}: every event stored`).toBe(events.length);
    }
    const totalAvailable = await checkBurns(s, byCustomer, stored);
    checkDatabase(s, sent, new Set(sent.keys()));
    const total = sum([...sent.values()].map((e) => e.credits));
    const grants = sum([...byCustomer.keys()].map((c) => units(grantOf(Number(c.slice('cust-'.length))))));
    expect(amount(totalAvailable), 'Σ balances = Σ grants − Σ expected credits').toBe(amount(grants - total));

    // A third delivery changes nothing.
    const again = await s.post('/v1/events', batches[0]!.body, { 'content-type': batches[0]!.contentType });
    expect(again.body).toEqual({ accepted: 0, duplicates: PER_BATCH, unmetered: 0, rejected: [] });
    lap('verifyAfterResendMs');

    await s.stop();
    await expectReconcileOk(s);
    lap('finalReconcileMs');

    console.info(`[e2e ingest-crash] seed=${seed}`, {
      walGrewAfterMs,
      killAfterMs,
      acked: [...acked],
      perBatchIn,
      inAfterCrash,
      absentAfterCrash: sent.size - inAfterCrash,
      ...timings,
    });
  });
});
