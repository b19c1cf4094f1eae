import type { IdSource } from '../domain/ledger/credit-ledger.js';
import type { Clock } from '../domain/time/clock.js';
import type { Storage } from '../ports/storage.js';

/** What every use case needs: storage, the clock and the id source. Built once in the composition root. */
export interface ServiceContext {
  readonly storage: Storage;
  readonly clock: Clock;
  readonly ids: IdSource;
}

/** The default credit type, which always exists in every workspace. */
export const DEFAULT_CREDIT_TYPE = 'credits';

/** The workspace the bootstrap API key belongs to. */
export const DEFAULT_WORKSPACE = 'default';

/**
 * The serialisation key of a customer: writes to one customer are ordered, others run in
 * parallel (and every transaction stays inside one customer, so it partitions cleanly).
 */
export function customerLockKey(workspaceId: string, customerId: string): string {
  return `${workspaceId}/${customerId}`;
}
