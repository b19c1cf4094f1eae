import { Amount } from '../amount/amount.js';
import { extend } from '../objects.js';
import type { DebitRecord, DebitReversed } from './credit-ledger.js';
import type { CustomerAccounts, GrantState, HoldState, LedgerEntry } from './types.js';

/**
 * A grant as snapshots and change sets hold it: never written again. The engine changes a grant
 * only on its own copy (copy on write, `CreditLedger.mutableGrant`) and stops owning that copy
 * when a change set hands it over, so a snapshot's or change set's grant object stays as it is.
 */
export type GrantSnapshot = Readonly<GrantState>;

/** A hold as a change set holds it: a private copy, portions included (see {@link GrantSnapshot}). */
export type HoldSnapshot = Readonly<HoldState>;

/**
 * How a grant changed since the last change set, which decides what storage writes for it:
 * - `created`: new, the whole row;
 * - `reshaped`: its lifecycle changed beyond its balances (closed, activated, emptied or
 *   refilled), the balances and state columns;
 * - `amounts`: only credits moved, the two balance columns (what most debits do).
 */
export type GrantChangeKind = 'created' | 'reshaped' | 'amounts';

/** One grant a change set carries: its state after, and how it changed. */
export interface GrantChange {
  readonly grant: GrantSnapshot;
  readonly change: GrantChangeKind;
}

/** A debit or capture whose reversed parts changed: what has been reversed of it now (a copy). */
export interface ReversedDebitChange {
  readonly debitId: string;
  readonly reversed: Readonly<DebitReversed>;
}

/**
 * What one ledger (a customer in a credit type) recorded since it was loaded, or since its
 * previous change set was taken: everything persisting it needs, and nothing that can change
 * afterwards. The storage port receives this, never the engine object, so a save writes exactly
 * what was taken: saving twice in one transaction cannot write an entry twice, and what was
 * saved does not move when the engine goes on. The object is frozen and every list is readonly
 * and new (owned by the change set alone, never by the engine); holds and reversed parts are
 * copies; grants are objects the engine no longer writes (see {@link GrantSnapshot}: a changed
 * grant is the engine's copy, handed over; an unchanged one the object it was loaded as); entries
 * and debit records are immutable values the engine never touches again.
 */
export interface LedgerChanges {
  readonly customerId: string;
  readonly creditType: string;
  /** The customer-level accounts' cached balances after the changes (a copy). */
  readonly accounts: Readonly<CustomerAccounts>;
  /** Entries appended, in recording order. */
  readonly entries: readonly LedgerEntry[];
  /** Grants that changed (created ones included), each once, in the order they first changed. */
  readonly grants: readonly GrantChange[];
  /** The grants of {@link grants} whose change is `created`, in creation order (the same objects). */
  readonly grantsCreated: readonly GrantSnapshot[];
  /** Holds placed or changed (captured, released, expired), each once, as they are now. */
  readonly holds: readonly HoldSnapshot[];
  /** Debits and captures recorded, in recording order. */
  readonly debitsCreated: readonly DebitRecord[];
  /** Debits and captures whose reversed parts changed, each once. */
  readonly debitsReversed: readonly ReversedDebitChange[];
  /**
   * The ledger's open grants after the changes (something left, available or held): what loading
   * it again would answer, so a cache can keep the ledger's state without copying it again.
   * A changed grant that is open is the same object here as in {@link grants}.
   */
  readonly openGrants: readonly GrantSnapshot[];
  /** The ledger's active holds after the changes (the same objects as in {@link holds} when changed). */
  readonly activeHolds: readonly HoldSnapshot[];
}

/** Whether a change set records nothing: no entry, and no grant, hold or debit changed. */
export function isEmptyChangeSet(changes: LedgerChanges): boolean {
  return (
    changes.entries.length === 0 &&
    changes.grants.length === 0 &&
    changes.holds.length === 0 &&
    changes.debitsCreated.length === 0 &&
    changes.debitsReversed.length === 0
  );
}

/** Whether a grant still has credits (available or held): the grants a ledger loads. */
export function isGrantOpen(g: GrantSnapshot): boolean {
  return g.available.isPositive() || g.held.isPositive();
}

/** A private copy of a grant, field by field: one object shape for every copy, cheaper than a spread. */
export function copyGrant(g: GrantSnapshot): GrantState {
  return {
    id: g.id,
    customerId: g.customerId,
    creditType: g.creditType,
    category: g.category,
    amount: g.amount,
    priority: g.priority,
    effectiveAt: g.effectiveAt,
    expiresAt: g.expiresAt,
    createdAt: g.createdAt,
    costBasis: g.costBasis,
    appliesTo: g.appliesTo,
    description: g.description,
    metadata: g.metadata,
    available: g.available,
    held: g.held,
    closedReason: g.closedReason,
    closedAt: g.closedAt,
    activated: g.activated,
  };
}

/** A private copy of a hold: its portions are the only part the engine mutates below the top level. */
export function copyHold(h: HoldState): HoldState {
  return extend(h, { portions: h.portions.map((p) => ({ grantId: p.grantId, amount: p.amount })) });
}

/** A private copy of what has been reversed of a debit (its maps and history are the engine's). */
export function copyReversed(r: DebitReversed): DebitReversed {
  return {
    overage: r.overage,
    byGrant: new Map(r.byGrant),
    paidBack: new Map(r.paidBack),
    quantity: r.quantity,
    history: r.history.slice(),
  };
}

/** The accounts of a ledger with no entries yet: every balance zero (a fresh object each time). */
export function noAccounts(): CustomerAccounts {
  return {
    issued: Amount.ZERO,
    consumed: Amount.ZERO,
    expired: Amount.ZERO,
    voided: Amount.ZERO,
    overage: Amount.ZERO,
    clawed_back: Amount.ZERO,
  };
}
