/**
 * The unit of work (src/services/unit-of-work.ts) and its commit rule, on SQLite:
 * success commits everything with the stored answer; a refusal commits the upkeep applied on the
 * way and the stored answer, never the refused operation (which decides before it writes); a
 * thrown error rolls back everything and stores nothing; the outbox is written with successes only.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { BurndownError, ErrorCode, invalidRequest } from '../../src/domain/errors.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { WriteOperations } from '../../src/ports/storage.js';
import type { ServiceContext } from '../../src/services/context.js';
import {
  businessRefusalError,
  type Presented,
  runWrite,
  type WriteCommand,
  type WriteOutcome,
} from '../../src/services/unit-of-work.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const WS = 'default';

let storage: SqliteStorage;
let ctx: ServiceContext;

beforeEach(async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'burndown-uow-')), 'db.sqlite');
  storage = await SqliteStorage.open({ path, synchronous: 'OFF' });
  ctx = { storage, clock: new ManualClock(T0), ids: new SequentialIds() };
});
afterEach(async () => {
  await storage.close();
});

/** Stands for upkeep a write applies on the way (a due reset, an expiry): here, a customer row. */
async function upkeep(tx: WriteOperations, id: string): Promise<void> {
  await tx.insertCustomer({ workspaceId: WS, id, name: null, metadata: {}, createdAt: T0 });
}

const present = <T>(outcome: WriteOutcome<T>): Presented =>
  outcome.ok
    ? { status: 201, body: { value: outcome.value } }
    : { status: 402, body: { error: businessRefusalError(outcome.refusal).code } };

const refusal = {
  refused: 'insufficient_credits',
  available: Amount.of('1'),
  requested: Amount.of('2'),
} as const;

function cmd<T>(work: WriteCommand<T>['work']): WriteCommand<T> {
  return { lockKey: `${WS}/c`, work };
}

const identity = (fingerprint = 'f1') => ({ workspaceId: WS, key: 'k1', fingerprint });

describe('runWrite', () => {
  it('commits a success with its stored answer; a retry replays it, a different request is 422', async () => {
    const answer = await runWrite(
      ctx,
      cmd(async (tx) => {
        await upkeep(tx, 'c-ok');
        return { ok: true, value: 'done' };
      }),
      present,
      identity(),
    );
    expect(answer).toEqual({ status: 201, text: '{"value":"done"}', replayed: false });
    expect(await storage.read.getCustomer(WS, 'c-ok')).not.toBeNull();
    let ran = false;
    const again = await runWrite(
      ctx,
      cmd(async () => {
        ran = true;
        return { ok: true, value: 'twice' };
      }),
      present,
      identity(),
    );
    expect(again).toEqual({ status: 201, text: '{"value":"done"}', replayed: true });
    expect(ran).toBe(false);
    await expect(
      runWrite(
        ctx,
        cmd(async () => ({ ok: true, value: 'x' })),
        present,
        identity('other'),
      ),
    ).rejects.toMatchObject({ code: ErrorCode.idempotencyKeyReused });
  });

  it('a refusal commits the upkeep and the stored answer, and presents the refusal', async () => {
    const answer = await runWrite(
      ctx,
      cmd<string>(async (tx) => {
        await upkeep(tx, 'c-upkeep');
        return { ok: false, refusal };
      }),
      present,
      identity(),
    );
    expect(answer).toEqual({ status: 402, text: '{"error":"insufficient_credits"}', replayed: false });
    expect(await storage.read.getCustomer(WS, 'c-upkeep')).not.toBeNull();
    const replay = await runWrite(
      ctx,
      cmd(async () => ({ ok: true, value: 'x' })),
      present,
      identity(),
    );
    expect(replay).toEqual({ ...answer, replayed: true });
  });

  it('a refusal a use case throws (before its own writes) is a refusal value too', async () => {
    const answer = await runWrite(
      ctx,
      cmd<string>(async (tx) => {
        await upkeep(tx, 'c-thrown-refusal');
        throw new BurndownError(ErrorCode.alreadyExists, 'exists', { id: 'x' });
      }),
      (outcome) => ({ status: 409, body: outcome.ok ? null : businessRefusalError(outcome.refusal).details }),
    );
    expect(answer).toEqual({ status: 409, text: '{"id":"x"}', replayed: false });
    expect(await storage.read.getCustomer(WS, 'c-thrown-refusal')).not.toBeNull();
  });

  it('a thrown error (validation or bug) rolls back everything and stores no answer', async () => {
    for (const error of [invalidRequest('bad'), new Error('bug')]) {
      await expect(
        runWrite(
          ctx,
          cmd(async (tx) => {
            await upkeep(tx, 'c-rolled-back');
            throw error;
          }),
          present,
          identity(),
        ),
      ).rejects.toBe(error);
      expect(await storage.read.getCustomer(WS, 'c-rolled-back')).toBeNull();
    }
    // Nothing was stored under the key: it runs again.
    const answer = await runWrite(
      ctx,
      cmd(async () => ({ ok: true, value: 'now' })),
      present,
      identity(),
    );
    expect(answer.replayed).toBe(false);
  });

  it('presents after the commit without an idempotency key; with one, inside the transaction that stores it', async () => {
    // Watch the write: `committed` turns true once storage.write has returned (the commit is done).
    let committed = false;
    const write = storage.write.bind(storage);
    const watched = Object.create(storage) as SqliteStorage;
    watched.write = (async (lockKey, work) => {
      committed = false;
      const result = await write(lockKey, work);
      committed = true;
      return result;
    }) as SqliteStorage['write'];
    const watchedCtx = { ...ctx, storage: watched };
    const seen: boolean[] = [];
    const presentWatched = (outcome: WriteOutcome<number>) => {
      seen.push(committed);
      return present(outcome);
    };
    await runWrite(
      watchedCtx,
      cmd(async () => ({ ok: true, value: 1 })),
      presentWatched,
    );
    await runWrite(
      watchedCtx,
      cmd(async () => ({ ok: true, value: 2 })),
      presentWatched,
      identity(),
    );
    expect(seen).toEqual([true, false]);
  });

  it('writes outbox messages with a success, in its transaction, with ids and the write instant; a refusal writes none', async () => {
    const message = {
      workspaceId: WS,
      type: 'debit.created',
      customerId: 'c1',
      data: { id: 'd1', amount: '5' },
    };
    await runWrite(
      ctx,
      cmd(async () => ({ ok: true, value: 1, outbox: [message] })),
      present,
    );
    const written = await storage.read.outbox.listAfter(WS, 0, 10);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({
      workspaceId: WS,
      type: 'debit.created',
      customerId: 'c1',
      data: message.data,
    });
    expect(written[0]?.id).toMatch(/^evt_/);
    expect(written[0]?.occurredAt).toBe(ctx.clock.now());
    await runWrite(
      ctx,
      cmd<number>(async () => ({ ok: false, refusal })),
      present,
    );
    await expect(
      runWrite(
        ctx,
        cmd<number>(async () => {
          throw new Error('boom');
        }),
        present,
      ),
    ).rejects.toThrow('boom');
    expect(await storage.read.outbox.listAfter(WS, 0, 10)).toHaveLength(1);
  });
});
