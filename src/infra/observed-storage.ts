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
  const write: Storage['write'] = async (lockKey, work, hints) => {
    let saved: Set<LedgerChanges> | null = null;
    const result = await storage.write(
      lockKey,
      (tx) => {
        const attempt = new Set<LedgerChanges>();
        saved = attempt;
        return work(recordingSaves(tx, attempt));
      },
      hints,
    );
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
      return boundMember(target, property, Reflect.get(target, property, receiver));
    },
  });
}

/**
 * `value` bound to `target` when it is a method, from a cache: the proxies below are on every
 * request's path and touch a dozen methods each, so binding anew on every access was measurable.
 */
function boundMember(target: object, property: string | symbol, value: unknown): unknown {
  if (typeof value !== 'function') return value;
  let methods = boundMethods.get(target);
  if (methods === undefined) {
    methods = new Map();
    boundMethods.set(target, methods);
  }
  let bound = methods.get(property);
  if (bound === undefined || bound.original !== value) {
    bound = { original: value, bound: value.bind(target) };
    methods.set(property, bound);
  }
  return bound.bound;
}

const boundMethods = new WeakMap<
  object,
  Map<string | symbol, { original: unknown; bound: (...args: unknown[]) => unknown }>
>();

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
      return boundMember(target, property, Reflect.get(target, property, target));
    },
  });
}
