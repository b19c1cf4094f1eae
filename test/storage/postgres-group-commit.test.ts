import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import type { LedgerKey, WriteOperations } from '../../src/ports/storage.js';
import { verifyAuditChains } from '../../src/services/audit.js';
import { grantCommand } from '../../src/services/commands.js';
import type { ServiceContext } from '../../src/services/context.js';
import { createCustomer } from '../../src/services/customers.js';
import { debitCredits, grantCredits } from '../../src/services/ledger.js';
import { execute } from '../../src/services/unit-of-work.js';
import { PostgresStorage, TransactionAborted } from '../../src/storage/postgres/postgres-storage.js';
import { adminQuery, POSTGRES_URL } from '../contract/postgres.js';
import { newGrant } from '../fixtures/grants.js';
import { watchingQueries } from '../fixtures/watched-queries.js';

/**
 * Group commit on PostgreSQL: ledger writes that arrive together share one transaction (one
 * BEGIN with every lock, one read of every ledger, one COMMIT), and a write that fails takes no
 * other write down with it, nor leaves anything of itself behind.
 */

const WS = 'ws';
const T0 = Date.parse('2026-03-01T00:00:00Z');
const CUSTOMERS = 40;
const schema = `bd_group_commit_${randomBytes(5).toString('hex')}`;

/** Batched: one batch in flight, so writes that arrive while it runs form the next one. */
let batched: PostgresStorage;
/** Every write in its own transaction (`writeBatches: 0`): the control. */
let alone: PostgresStorage;
const now = T0 + 1000;
const contextOf = (storage: PostgresStorage) =>
  ({ storage, clock: { now: () => now }, ids: new TimeOrderedIds(() => now) }) as ServiceContext;
const keyOf = (customerId: string): LedgerKey => ({ workspaceId: WS, customerId, creditType: 'credits' });

beforeAll(async () => {
  await adminQuery(`CREATE SCHEMA ${schema}`);
  batched = await PostgresStorage.open({
    connectionString: POSTGRES_URL,
    schema,
    poolSize: 4,
    writeBatches: 1,
  });
  alone = await PostgresStorage.open({
    connectionString: POSTGRES_URL,
    schema,
    poolSize: 4,
    writeBatches: 0,
  });
  const seeding = contextOf(alone);
  for (let i = 0; i < CUSTOMERS; i++) {
    const customerId = `c${i}`;
    await alone.write(`${WS}/${customerId}`, async (tx) => {
      await tx.ensureWorkspace(WS, T0);
      await createCustomer(tx, { workspaceId: WS, id: customerId, name: null, metadata: {}, now: T0 });
      await grantCredits(seeding, tx, { key: keyOf(customerId), grant: newGrant('1000', T0), now: T0 });
    });
  }
}, 60_000);

afterAll(async () => {
  await batched?.close();
  await alone?.close();
  await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

/** Transaction-control statements the pooled clients send while `work` runs. */
async function countTransactions(
  work: () => Promise<unknown>,
): Promise<{ commits: number; rollbacks: number }> {
  let commits = 0;
  let rollbacks = 0;
  await watchingQueries((first) => {
    if (first === 'COMMIT') commits++;
    if (first === 'ROLLBACK') rollbacks++;
  }, work);
  return { commits, rollbacks };
}

/** A debit of `amount` on a customer through `storage`, as the debit command writes it. */
function debit(
  storage: PostgresStorage,
  customerId: string,
  amount: string,
  then?: (tx: WriteOperations) => Promise<void>,
) {
  const key = keyOf(customerId);
  return storage.write(
    `${WS}/${customerId}`,
    async (tx) => {
      const done = await debitCredits(contextOf(storage), tx, {
        key,
        amount: Amount.parse(amount),
        allowOverage: false,
        description: null,
        metadata: {},
        now,
      });
      if ('refused' in done) throw new Error(`refused: ${done.refused}`);
      await then?.(tx);
      return done.debit.id;
    },
    { prefetch: key },
  );
}

const available = async (customerId: string) =>
  Amount.sum(
    (await alone.read.loadLedger(keyOf(customerId))).grants.map((grant) => grant.available),
  ).toString();

/** Each customer of `group` has `amount` less available than in `before` (same order). */
async function expectDebited(group: readonly string[], before: readonly string[], amount: string) {
  for (const [i, customerId] of group.entries()) {
    expect(await available(customerId)).toBe(
      Amount.parse(before[i] ?? '0')
        .minus(Amount.parse(amount))
        .toString(),
    );
  }
}

const customers = (from: number, count: number) => Array.from({ length: count }, (_, i) => `c${from + i}`);

describe('PostgreSQL group commit', () => {
  it('commits writes that arrive together in one transaction', async () => {
    const group = customers(0, 20);
    const before = await Promise.all(group.map(available));
    const { commits } = await countTransactions(() => Promise.all(group.map((c) => debit(batched, c, '3'))));
    // All 20 arrive in one turn of the event loop: one batch, one COMMIT (each alone: 20).
    expect(commits).toBe(1);
    await expectDebited(group, before, '3');
  });

  it('runs one customer’s writes one after another inside a batch, each seeing the one before', async () => {
    const before = Amount.parse(await available('c20'));
    const { commits } = await countTransactions(() =>
      Promise.all(Array.from({ length: 16 }, () => debit(batched, 'c20', '1'))),
    );
    // At most 8 writes of one customer per batch: 16 of them take two batches.
    expect(commits).toBe(2);
    expect(await available('c20')).toBe(before.minus(Amount.of('16')).toString());
  });

  it('keeps the control honest: without group commit every write commits alone', async () => {
    const { commits } = await countTransactions(() =>
      Promise.all(customers(21, 5).map((c) => debit(alone, c, '1'))),
    );
    expect(commits).toBe(5);
  });

  it('fails a write that wrote nothing alone, and commits the rest of its batch', async () => {
    const group = customers(26, 5);
    const before = await Promise.all(group.map(available));
    let settled: PromiseSettledResult<unknown>[] = [];
    const { commits, rollbacks } = await countTransactions(async () => {
      settled = await Promise.allSettled([
        ...group.map((c) => debit(batched, c, '2')),
        batched.write(
          `${WS}/c31`,
          async () => {
            throw new Error('not found before writing');
          },
          { prefetch: keyOf('c31') },
        ),
      ]);
    });
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    expect(commits).toBe(1);
    expect(rollbacks).toBe(0);
    await expectDebited(group, before, '2');
  });

  it('rolls a batch back when a write fails after writing, and runs the others again alone', async () => {
    const group = customers(32, 4);
    const before = await Promise.all([...group, 'c36'].map(available));
    let settled: PromiseSettledResult<unknown>[] = [];
    const { rollbacks } = await countTransactions(async () => {
      settled = await Promise.allSettled([
        ...group.map((c) => debit(batched, c, '5')),
        debit(batched, 'c36', '7', async () => {
          throw new Error('a bug after the debit was written');
        }),
      ]);
    });
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    expect(String((settled[4] as PromiseRejectedResult).reason)).toContain(
      'a bug after the debit was written',
    );
    // The batch, then the faulty write run alone again.
    expect(rollbacks).toBe(2);
    await expectDebited(group, before, '5');
    // Nothing of the faulty write remains.
    expect(await available('c36')).toBe(before[4]);
  });

  it('rolls a batch back when a statement fails, and never acknowledges a write whose statement error was swallowed', async () => {
    const group = customers(37, 2);
    const before = await Promise.all([...group, 'c39'].map(available));
    // A NUL character is refused by PostgreSQL (22021): the statement fails and aborts the transaction.
    const failingStatement = (tx: WriteOperations) =>
      tx.insertCustomer({ workspaceId: WS, id: 'bad\u0000id', name: null, metadata: {}, createdAt: now });
    const settled = await Promise.allSettled([
      ...group.map((c) => debit(batched, c, '1')),
      debit(batched, 'c39', '1', async (tx) => {
        await failingStatement(tx);
      }),
      debit(batched, 'c39', '1', async (tx) => {
        try {
          await failingStatement(tx);
        } catch {
          // swallowed: the transaction is aborted all the same
        }
      }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(pg.DatabaseError);
    expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(TransactionAborted);
    await expectDebited(group, before, '1');
    expect(await available('c39')).toBe(before[2]);
  });
  it('runs audited writes in transactions of their own, beside a batch of the others', async () => {
    // An audited write claims its workspace's chain head: two batches holding two workspaces'
    // heads could wait for each other, so it never shares a transaction.
    const audited = customers(0, 6);
    const plain = customers(6, 6);
    const before = await Promise.all(plain.map(available));
    const ctx = contextOf(batched);
    let settled: PromiseSettledResult<unknown>[] = [];
    const { commits, rollbacks } = await countTransactions(async () => {
      settled = await Promise.allSettled([
        ...audited.map((customerId) =>
          execute(
            ctx,
            grantCommand(ctx, {
              key: keyOf(customerId),
              grant: { ...newGrant('10', T0), effectiveAt: null },
            }),
          ),
        ),
        ...plain.map((c) => debit(batched, c, '1')),
      ]);
    });
    expect(settled.every((s) => s.status === 'fulfilled')).toBe(true);
    // Six grants alone, six debits in one batch.
    expect({ commits, rollbacks }).toEqual({ commits: 7, rollbacks: 0 });
    await expectDebited(plain, before, '1');
    const verified = await verifyAuditChains(alone.read);
    expect(verified.ok).toBe(true);
    expect(verified.records).toBeGreaterThanOrEqual(audited.length);
  });
});
