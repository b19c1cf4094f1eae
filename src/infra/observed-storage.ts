import type { LedgerChanges } from '../domain/ledger/changes.js';
import type { LedgerEntry } from '../domain/ledger/types.js';
import type { Storage, WriteOperations } from '../ports/storage.js';

/**
 * Told about ledger entries once the transaction that recorded them is durably committed; never
 * about entries of a write that rolled back. Called synchronously after the commit, so it must
 * be cheap and must not throw (a throw is swallowed: metrics never fail a write).
 */
export type CommittedEntriesObserver = (entries: readonly LedgerEntry[]) => void;

/**
 * The storage with one seam for operational metrics: every change set a write saves
 * (`saveLedger`, through which every service persists entries) is remembered, and its entries are
 * reported after `write` resolves, that is after the commit (for SQLite's group commit, after the
 * batch's fsync). A write whose work runs more than once (a retried transaction) reports only its last
 * attempt; a write that fails reports nothing. Everything else passes through untouched.
 */
export function observeCommittedEntries(storage: Storage, observer: CommittedEntriesObserver): Storage {
  const write: Storage['write'] = async (lockKey, work) => {
    let saved: Set<LedgerChanges> | null = null;
    const result = await storage.write(lockKey, (tx) => {
      const attempt = new Set<LedgerChanges>();
      saved = attempt;
      return work(recordingSaves(tx, attempt));
    });
    const changeSets = saved as Set<LedgerChanges> | null;
    if (changeSets !== null && changeSets.size > 0) {
      const entries: LedgerEntry[] = [];
      for (const changes of changeSets) entries.push(...changes.entries);
      try {
        observer(entries);
      } catch {
        // Metrics never fail a committed write.
      }
    }
    return result;
  };
  return new Proxy(storage, {
    get(target, property, receiver) {
      if (property === 'write') return write;
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * `tx` whose `saveLedger` also notes the change set (a set: the same change set saved twice is
 * reported once); every other member is the original.
 */
function recordingSaves(tx: WriteOperations, saved: Set<LedgerChanges>): WriteOperations {
  return new Proxy(tx, {
    get(target, property) {
      if (property === 'saveLedger') {
        return (workspaceId: string, changes: LedgerChanges, now: number) => {
          saved.add(changes);
          return target.saveLedger(workspaceId, changes, now);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
