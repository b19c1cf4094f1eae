/**
 * The shared SQL store runs a write's statements without an await per statement when the driver
 * answers at once (SQLite), and in order, awaiting each, when it answers with promises: a driver
 * whose answers arrive late must still see every statement, in order, before the write resolves.
 */
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import type { EventBurn } from '../../src/ports/storage.js';
import type { SqlExecutor } from '../../src/storage/sql/executor.js';
import { SqlWrites } from '../../src/storage/sql/sql-store.js';

/** A driver that answers each statement on a later turn of the event loop, logging start and end. */
function lateDriver(log: string[]): SqlExecutor {
  return {
    all: async () => [],
    get: async () => undefined,
    run: (_sql, params) => {
      log.push(`start ${String(params[1])}`);
      return new Promise((resolve) =>
        setImmediate(() => {
          log.push(`end ${String(params[1])}`);
          resolve(1);
        }),
      );
    },
  };
}

function burn(eventKey: string): EventBurn {
  return {
    workspaceId: 'ws',
    eventKey,
    rateId: 'rate',
    customerId: 'c',
    debitId: null,
    quantity: Amount.parse('1'),
    credits: Amount.parse('2'),
    createdAt: 0,
  };
}

describe('statements of one write', () => {
  it('run one after another, each finished before the next starts, with a driver answering late', async () => {
    const log: string[] = [];
    const store = new SqlWrites(lateDriver(log));
    await store.insertBurns([burn('a'), burn('b'), burn('c')]);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('run at once, in order, with a driver that answers at once', async () => {
    const log: string[] = [];
    const driver: SqlExecutor = {
      all: () => [],
      get: () => undefined,
      run: (_sql, params) => {
        log.push(String(params[1]));
        return 1;
      },
    };
    const pending = new SqlWrites(driver).insertBurns([burn('a'), burn('b')]);
    // Nothing was deferred: every statement ran before the call returned its promise.
    expect(log).toEqual(['a', 'b']);
    await pending;
  });
});
