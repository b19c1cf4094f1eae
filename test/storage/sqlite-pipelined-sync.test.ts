import { mkdtempSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../src/storage/sqlite/group-commit.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { CoalescedSync } from '../../src/storage/sqlite/wal-sync.js';

/** A sync whose completions the test releases by hand, recording when each one started. */
function manualSync() {
  const started: { release(): void; fail(error: Error): void }[] = [];
  const sync = () =>
    new Promise<void>((resolve, reject) => {
      started.push({ release: resolve, fail: reject });
    });
  return { started, sync };
}

const flushMacrotasks = () => new Promise((resolve) => setImmediate(resolve));

function committerWith(durableAfter: () => Promise<void>) {
  const db = new BetterSqlite3(':memory:');
  db.exec('CREATE TABLE t (n INTEGER)');
  const committer = new GroupCommitter(db, { durableAfter });
  const insert = (n: number) =>
    committer.submit(async () => {
      db.prepare('INSERT INTO t (n) VALUES (?)').run(n);
      return n;
    });
  const committed = () => (db.prepare('SELECT COUNT(*) AS c FROM t').get() as { c: number }).c;
  return { db, committer, insert, committed };
}

describe('pipelined group commit: a write is answered only after a WAL sync that began after its COMMIT', () => {
  it('holds the answer until the sync completes, while the next batch already commits', async () => {
    const { started, sync } = manualSync();
    const coalesced = new CoalescedSync(sync);
    const { insert, committed } = committerWith(() => coalesced.request());
    let firstAnswered = false;
    const first = insert(1).then((n) => {
      firstAnswered = true;
      return n;
    });
    await flushMacrotasks();
    expect(committed()).toBe(1); // COMMIT done
    expect(started).toHaveLength(1); // its sync started
    expect(firstAnswered).toBe(false); // but nobody is answered yet

    // A second batch commits while the first sync runs: it must wait for a sync of its own.
    let secondAnswered = false;
    const second = insert(2).then(() => {
      secondAnswered = true;
    });
    // One turn to see whether more writes join it (none do), then it runs.
    await flushMacrotasks();
    await flushMacrotasks();
    expect(committed()).toBe(2);
    expect(started).toHaveLength(1);

    started[0]!.release();
    expect(await first).toBe(1);
    await flushMacrotasks();
    expect(secondAnswered).toBe(false); // the running sync may have begun before its COMMIT
    expect(started).toHaveLength(2); // so the next one started after it

    // A third and fourth batch committing during the second sync share the third sync.
    const later = [insert(3), insert(4)];
    await flushMacrotasks();
    await flushMacrotasks();
    started[1]!.release();
    await second;
    await flushMacrotasks();
    expect(started).toHaveLength(3);
    started[2]!.release();
    expect(await Promise.all(later)).toEqual([3, 4]);
    expect(coalesced.completed).toBe(3);
  });

  it('a failed sync fails its batch and every later write (durability unknown: restart)', async () => {
    const { started, sync } = manualSync();
    const coalesced = new CoalescedSync(sync);
    const { insert, committer } = committerWith(() => coalesced.request());
    const first = insert(1);
    await flushMacrotasks();
    started[0]!.fail(new Error('EIO: fdatasync failed'));
    await expect(first).rejects.toThrow('EIO');
    await expect(insert(2)).rejects.toThrow('EIO');
    await committer.drain();
  });

  it('after a failed sync, a batch committed meanwhile is refused even if its own later sync succeeds', async () => {
    const { started, sync } = manualSync();
    const coalesced = new CoalescedSync(sync);
    const { insert, committer } = committerWith(() => coalesced.request());
    const first = insert(1);
    await flushMacrotasks();
    const second = insert(2); // commits while the first sync runs: waits for the next one
    await flushMacrotasks();
    await flushMacrotasks();
    started[0]!.fail(new Error('EIO: fdatasync failed'));
    await expect(first).rejects.toThrow('EIO');
    await flushMacrotasks();
    started[1]!.release(); // "succeeds": proves nothing after a failure
    await expect(second).rejects.toThrow('EIO');
    await committer.drain();
  });

  it('while a sync is in flight, writes arriving turn after turn join one batch; a lone write runs at once', async () => {
    const { started, sync } = manualSync();
    const coalesced = new CoalescedSync(sync);
    const db = new BetterSqlite3(':memory:');
    db.exec('CREATE TABLE t (n INTEGER)');
    const batches: number[] = [];
    const committer = new GroupCommitter(db, {
      durableAfter: () => coalesced.request(),
      onBatch: (size) => batches.push(size),
    });
    const insert = (n: number) =>
      committer.submit(async () => {
        db.prepare('INSERT INTO t (n) VALUES (?)').run(n);
        return n;
      });
    // No sync in flight: a lone write commits in the first turn.
    const first = insert(1);
    await flushMacrotasks();
    expect(batches).toEqual([1]);
    // Its sync is in flight: writes arriving in three successive turns (as requests parsed by
    // successive turns of the event loop would) all wait for the one that brings none, and commit together.
    const later = [insert(2)];
    await flushMacrotasks();
    later.push(insert(3));
    await flushMacrotasks();
    later.push(insert(4));
    await flushMacrotasks();
    expect(batches).toEqual([1]);
    await flushMacrotasks();
    await flushMacrotasks();
    expect(batches).toEqual([1, 3]);
    started[0]!.release();
    expect(await first).toBe(1);
    await flushMacrotasks();
    started[1]!.release();
    expect(await Promise.all(later)).toEqual([2, 3, 4]);
    // Without a sync in flight, nothing waits: the next lone write is again a batch of its own at once.
    const last = insert(5);
    await flushMacrotasks();
    expect(batches).toEqual([1, 3, 1]);
    await flushMacrotasks();
    started[2]!.release();
    expect(await last).toBe(5);
    await committer.drain();
  });

  it('with no sync in flight, a batch waits a turn for more writes only after a long batch (against which a sync is short)', async () => {
    /** A committer whose every job takes `batchMs` on a fake clock (syncs are released by hand). */
    const timed = (batchMs: number) => {
      const { started, sync } = manualSync();
      const coalesced = new CoalescedSync(sync);
      const db = new BetterSqlite3(':memory:');
      db.exec('CREATE TABLE t (n INTEGER)');
      let clock = 0;
      const batches: number[] = [];
      const committer = new GroupCommitter(db, {
        durableAfter: () => coalesced.request(),
        onBatch: (size) => batches.push(size),
        monotonicMs: () => clock,
      });
      const insert = (n: number) =>
        committer.submit(async () => {
          clock += batchMs;
          db.prepare('INSERT INTO t (n) VALUES (?)').run(n);
          return n;
        });
      const release = (i: number) => started[i]!.release();
      return { committer, insert, release, batches };
    };
    // Writes arriving in two successive turns, after a batch and its sync have completed.
    const twoTurns = async (t: ReturnType<typeof timed>) => {
      const first = t.insert(1);
      await flushMacrotasks();
      t.release(0);
      await first;
      const later = [t.insert(2)];
      await flushMacrotasks();
      later.push(t.insert(3));
      for (let i = 0; i < 4; i++) await flushMacrotasks();
      // Each later batch waits for a sync of its own: release them in turn.
      for (let i = 1; i < t.batches.length; i++) {
        t.release(i);
        await flushMacrotasks();
      }
      await Promise.all(later);
      await t.committer.drain();
      return t.batches;
    };
    // After a batch of 100 ms (event ingest): the two turns' writes share a batch.
    expect(await twoTurns(timed(100))).toEqual([1, 2]);
    // After a batch of 2 ms (single debits): no waiting; the first turn's write commits alone.
    expect(await twoTurns(timed(2))).toEqual([1, 1, 1]);
  });

  it('a durable SQLite file runs NORMAL plus one WAL sync per answered write batch', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-wal-sync-')), 'db.sqlite');
    const storage = await SqliteStorage.open({ path });
    const before = storage.durability();
    expect(before).toMatchObject({ journalMode: 'wal', synchronous: 1, pipelinedWalSync: true });
    for (let i = 0; i < 5; i++) {
      await storage.write('k', async (tx) => tx.getIdempotency('ws', `k${i}`));
    }
    // Five writes, each awaited before the next: five batches, each answered after its own sync.
    expect(storage.durability().walSyncs - before.walSyncs).toBeGreaterThanOrEqual(5);
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    await storage.close();

    // Throwaway databases keep SQLite's own setting and sync nothing.
    const off = await SqliteStorage.open({ path: `${path}.off`, synchronous: 'OFF' });
    expect(off.durability()).toMatchObject({ synchronous: 0, pipelinedWalSync: false, walSyncs: 0 });
    await off.close();
  });

  // A savepoint keeps the original of every page it changes; past 64 KiB SQLite spills them to a
  // temporary file (named etilqs_*, unlinked at once) unless temp_store is MEMORY. Each spilled
  // page was a write(2): it doubled the cost of every statement of an ingest chunk.
  it.runIf(process.platform === 'linux')(
    "a large write's savepoint keeps its page copies in memory, not in a temporary file",
    async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'burndown-temp-store-')), 'db.sqlite');
      const storage = await SqliteStorage.open({ path });
      const temporaryFiles = () =>
        readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return /etilqs_/.test(readlinkSync(`/proc/self/fd/${fd}`));
          } catch {
            return false; // closed while listing
          }
        });
      const events = (suffix: string) =>
        Array.from({ length: 3000 }, (_, i) => ({
          workspaceId: 'ws',
          eventKey: `key-${i}${suffix}`,
          id: `event-${i}${suffix}`,
          source: null,
          type: 'usage',
          customerId: `customer-${i % 300}`,
          time: 1_700_000_000_000 + i,
          data: { note: 'x'.repeat(200), i },
          rulesSeq: 0,
          receivedAt: 1_700_000_000_000,
          unmetered: true,
        }));
      await storage.write('k', async (tx) => tx.insertEvents(events('')));
      // Keys that sort between the stored ones: the second write changes pages that existed
      // before its savepoint (new pages need no copy), far more than 64 KiB of them.
      const during = await storage.write('k', async (tx) => {
        expect((await tx.insertEvents(events('-b'))).size).toBe(3000);
        return temporaryFiles();
      });
      expect(during).toEqual([]);
      await storage.close();
    },
  );
});
