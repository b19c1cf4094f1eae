import { describe, expect, it } from 'vitest';
import { WriteBatcher } from '../../src/storage/postgres/write-batcher.js';

/** The scheduling half of PostgreSQL group commit, with a runner the test finishes by hand. */

interface Write {
  readonly lockId: bigint;
  readonly name: string;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function harness(options: { slots: number; maxWrites: number; maxPerLock: number }) {
  const batches: string[][] = [];
  const finishers: (() => void)[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const batcher = new WriteBatcher<Write>(async (writes) => {
    batches.push(writes.map((w) => w.name));
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    await new Promise<void>((resolve) => finishers.push(resolve));
    inFlight--;
  }, options);
  const submit = (lock: number, name: string) => batcher.submit({ lockId: BigInt(lock), name });
  /** Finishes the oldest running batch and lets the next leave. */
  const finishOne = async () => {
    finishers.shift()?.();
    await turn();
    await turn();
  };
  return { batcher, batches, submit, finishOne, mostInFlight: () => mostInFlight };
}

describe('WriteBatcher', () => {
  it('sends what arrives in one turn together, and queues while every slot is busy', async () => {
    const h = harness({ slots: 1, maxWrites: 64, maxPerLock: 8 });
    h.submit(1, 'a');
    h.submit(2, 'b');
    await turn();
    expect(h.batches).toEqual([['a', 'b']]);
    h.submit(3, 'c');
    h.submit(4, 'd');
    await turn();
    // The slot is busy: c and d wait, together.
    expect(h.batches).toHaveLength(1);
    expect(h.batcher.waiting).toBe(2);
    await h.finishOne();
    expect(h.batches).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    await h.finishOne();
    expect(h.mostInFlight()).toBe(1);
  });

  it('runs up to `slots` batches at once', async () => {
    const h = harness({ slots: 2, maxWrites: 64, maxPerLock: 8 });
    h.submit(1, 'a');
    await turn();
    h.submit(2, 'b');
    await turn();
    h.submit(3, 'c');
    await turn();
    expect(h.batches).toEqual([['a'], ['b']]);
    await h.finishOne();
    expect(h.batches).toEqual([['a'], ['b'], ['c']]);
    await h.finishOne();
    await h.finishOne();
    expect(h.mostInFlight()).toBe(2);
  });

  it('bounds a batch, and a lock’s share of it, keeping each lock’s writes in arrival order', async () => {
    const h = harness({ slots: 1, maxWrites: 4, maxPerLock: 2 });
    h.submit(9, 'busy');
    await turn();
    // Lock 1 has three writes: two fit, the third waits, and so does every later write of lock 1.
    for (const [lock, name] of [
      [1, 'x1'],
      [2, 'y1'],
      [1, 'x2'],
      [1, 'x3'],
      [3, 'z1'],
      [1, 'x4'],
      [4, 'w1'],
      [5, 'v1'],
    ] as const) {
      h.submit(lock, name);
    }
    await h.finishOne();
    expect(h.batches[1]).toEqual(['x1', 'y1', 'x2', 'z1']);
    await h.finishOne();
    expect(h.batches[2]).toEqual(['x3', 'x4', 'w1', 'v1']);
    await h.finishOne();
    expect(h.batcher.waiting).toBe(0);
  });

  it('keeps its slot free when a runner rejects', async () => {
    let calls = 0;
    const batcher = new WriteBatcher<Write>(
      async () => {
        calls++;
        throw new Error('a bug');
      },
      { slots: 1, maxWrites: 8, maxPerLock: 8 },
    );
    batcher.submit({ lockId: 1n, name: 'a' });
    await turn();
    await turn();
    batcher.submit({ lockId: 2n, name: 'b' });
    await turn();
    await turn();
    expect(calls).toBe(2);
  });
});
