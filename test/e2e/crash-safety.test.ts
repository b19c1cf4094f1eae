import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type HttpResponse, requireBuiltCli, ServerProcess } from './server-process.js';
import {
  amount,
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
 * Durability across SIGKILL: debits stream in from several client loops while the server is
 * killed mid-flight; after a restart on the same database every acknowledged debit is in the
 * ledger exactly once, unacknowledged ones are there at most once (and a retry with the same
 * Idempotency-Key replays them instead of debiting again), and the books still balance.
 */

const CYCLES = 3;
const LOOPS = 8;
/** Safety bound per loop; the kill ends every loop long before. */
const MAX_PER_LOOP = 20_000;
const GRANT = '1000000000';

interface SentDebit {
  readonly key: string;
  readonly amount: string;
  /** The exact body bytes, re-sent unchanged on retry (the idempotency fingerprint covers them). */
  readonly body: string;
}

interface KnownDebit {
  readonly key: string;
  readonly id: string;
  readonly amount: string;
  readonly responseText: string;
  readonly body: string;
}

describe('e2e: crash safety (SIGKILL while debits are in flight)', () => {
  let server: ServerProcess | null = null;

  beforeAll(() => requireBuiltCli());
  afterEach(async () => {
    await server?.cleanup();
    server = null;
  });

  it(`acknowledged debits survive ${CYCLES} kill/restart cycles exactly once; lost responses replay`, async () => {
    const seed = seedFromEnv();
    const rand = prng(seed);
    const s = await ServerProcess.start();
    server = s;
    const customer = `crash-${seed}`;
    const path = `/v1/customers/${customer}/debits`;
    expect((await s.post('/v1/customers', { id: customer })).status).toBe(201);
    const grant = await s.post(`/v1/customers/${customer}/grants`, { amount: GRANT, category: 'paid' });
    expect(grant.status, grant.text).toBe(201);

    /** Every debit known to exist, by Idempotency-Key, over all cycles. */
    const known = new Map<string, KnownDebit>();
    const stats: Record<string, number>[] = [];

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const acked = new Map<string, KnownDebit>();
      const lost = new Map<string, SentDebit>();
      const unexpected: string[] = [];
      let sent = 0;

      const loop = async (worker: number) => {
        for (let i = 0; i < MAX_PER_LOOP; i++) {
          const key = `crash-${seed}-c${cycle}-w${worker}-${i}`;
          const debitAmount = randomAmount(rand, 1, 100, 6);
          const body = JSON.stringify({ amount: debitAmount, description: key });
          sent += 1;
          let res: HttpResponse;
          try {
            res = await s.post(path, body, { 'idempotency-key': key });
          } catch {
            // Connection reset or refused: the response (if any) is lost. Stop this loop.
            lost.set(key, { key, amount: debitAmount, body });
            return;
          }
          if (res.status !== 201) {
            unexpected.push(`${key}: ${res.status} ${res.text}`);
            return;
          }
          acked.set(key, { key, id: res.body.id, amount: res.body.amount, responseText: res.text, body });
        }
      };

      const loops = Array.from({ length: LOOPS }, (_, w) => loop(w));
      const killAfter = 300 + Math.floor(rand() * 500);
      await sleep(killAfter);
      const killedAt = Date.now();
      const { signal } = await s.kill('SIGKILL');
      expect(signal).toBe('SIGKILL');
      await Promise.all(loops);
      const loopsEndedMs = Date.now() - killedAt;

      expect(unexpected, `seed ${seed}`).toEqual([]);
      expect(acked.size, 'some debits were acknowledged before the kill').toBeGreaterThan(0);
      // Every loop was mid-stream when the server died: each ends on exactly one lost response.
      expect(lost.size).toBe(LOOPS);
      expect(acked.size + lost.size).toBe(sent);
      for (const a of acked.values()) expect(a.amount).toBe(amount(units(a.amount)));

      // The database as the killed process left it already proves its invariants.
      await expectReconcileOk(s);

      const reconcileMs = Date.now() - killedAt - loopsEndedMs;
      const restartAt = Date.now();
      await s.restart();
      const restartedAt = Date.now();

      // --- The ledger after the crash, before any retry ------------------------------------------
      let ledger = await readLedger(s, customer);
      let debits = entriesByRef(ledger, ['debit']);
      const byId = new Map([...known.values(), ...acked.values()].map((d) => [d.id, d]));
      for (const d of [...known.values(), ...acked.values()]) {
        const entries = debits.get(d.id);
        expect(
          entries?.length ?? 0,
          `acknowledged debit ${d.id} (${d.key}) must be in the ledger exactly once`,
        ).toBe(1);
        expect(entries![0]!.amount).toBe(d.amount);
      }
      const unacknowledged = [...debits.keys()].filter((id) => !byId.has(id));
      // Debits whose response was lost may be present, each at most once.
      expect(unacknowledged.length).toBeLessThanOrEqual(lost.size);
      for (const id of unacknowledged) expect(debits.get(id)!.length, `debit ${id}`).toBe(1);
      expect(
        ledger.every((e) => e.type === 'grant' || e.type === 'debit'),
        'only grant and debit entries',
      ).toBe(true);
      let balance = (await s.get(`/v1/customers/${customer}/balance`)).body;
      const inLedger = sum(ledger.filter((e) => e.type === 'debit').map((e) => units(e.amount)));
      expect(balance.available).toBe(amount(units(GRANT) - inLedger));

      // --- Retry the lost requests with the SAME Idempotency-Key -------------------------------
      const replayedIds: string[] = [];
      let replayed = 0;
      await runPool([...lost.values()], LOOPS, async (req) => {
        const res = await s.post(path, req.body, { 'idempotency-key': req.key });
        expect(res.status, res.text).toBe(201);
        expect(res.body.amount).toBe(req.amount);
        const wasReplayed = res.headers.get('idempotent-replayed') === 'true';
        if (wasReplayed) {
          // The write committed before the crash: it must be one of the unacknowledged debits.
          replayed += 1;
          replayedIds.push(res.body.id);
          expect(unacknowledged, `replayed ${req.key} → ${res.body.id}`).toContain(res.body.id);
        } else {
          // It never committed: the retry is the first and only debit for this key.
          expect(debits.has(res.body.id), `new debit ${res.body.id} for ${req.key}`).toBe(false);
        }
        known.set(req.key, {
          key: req.key,
          id: res.body.id,
          amount: res.body.amount,
          responseText: res.text,
          body: req.body,
        });
      });
      // Every unacknowledged debit in the ledger belongs to exactly one lost request.
      expect(replayedIds.sort()).toEqual([...unacknowledged].sort());
      for (const a of acked.values()) known.set(a.key, a);

      // Acknowledged requests (from this and earlier lives of the server) replay, byte for byte.
      const sample = [...known.values()].filter((_, i) => i % 97 === 0).slice(0, 12);
      for (const d of sample) {
        const res = await s.post(path, d.body, { 'idempotency-key': d.key });
        expect(res.status).toBe(201);
        expect(res.headers.get('idempotent-replayed')).toBe('true');
        expect(res.text).toBe(d.responseText);
      }

      // --- The ledger after the retries: exactly one debit per key, nothing else ---------------
      ledger = await readLedger(s, customer);
      debits = entriesByRef(ledger, ['debit']);
      expect([...debits.keys()].sort()).toEqual([...known.values()].map((d) => d.id).sort());
      for (const d of known.values()) {
        expect(debits.get(d.id)!.length, `debit ${d.id}`).toBe(1);
        expect(debits.get(d.id)![0]!.amount).toBe(d.amount);
      }
      const totalDebited = sum([...known.values()].map((d) => units(d.amount)));
      expect(sum(ledger.filter((e) => e.type === 'debit').map((e) => units(e.amount)))).toBe(totalDebited);
      expect(ledger.filter((e) => e.type === 'grant').map((e) => e.amount)).toEqual([GRANT]);
      balance = (await s.get(`/v1/customers/${customer}/balance`)).body;
      expect(balance.available).toBe(amount(units(GRANT) - totalDebited));
      expect([balance.held, balance.overage]).toEqual(['0', '0']);
      await expectReconcileOk(s);

      stats.push({
        cycle,
        killAfterMs: killAfter,
        sent,
        acked: acked.size,
        lost: lost.size,
        lostButCommitted: replayed,
        ledgerDebits: debits.size,
        loopsEndedMs,
        reconcileMs,
        restartMs: restartedAt - restartAt,
        verifyMs: Date.now() - restartedAt,
      });
    }

    console.info(`[e2e crash-safety] seed=${seed}`, stats);
    await s.stop();
    await expectReconcileOk(s);
  });
});
