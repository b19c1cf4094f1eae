import type { Amount } from '../amount/amount.js';
import type { Instant } from '../time/instant.js';

/** Why credits were granted; drives revenue recognition (only `paid` carries deferred revenue). */
export type GrantCategory = 'paid' | 'promotional' | 'allowance';
export const GRANT_CATEGORIES: readonly GrantCategory[] = ['paid', 'promotional', 'allowance'];

/** Lifecycle of a grant as shown to clients; derived from stored facts and the read instant. */
export type GrantStatus = 'pending' | 'active' | 'depleted' | 'expired' | 'voided';
export const GRANT_STATUSES: readonly GrantStatus[] = ['pending', 'active', 'depleted', 'expired', 'voided'];

/** What the price paid for a grant was; deferred revenue until the credits are used or expire. */
export interface CostBasis {
  readonly amount: Amount;
  readonly currency: string;
}

/**
 * A grant as the ledger engine sees it. `available` and `held` are the cached balances of the
 * grant's two accounts; `remaining` (what clients see) is their sum.
 */
export interface GrantState {
  readonly id: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly category: GrantCategory;
  readonly amount: Amount;
  readonly priority: number;
  readonly effectiveAt: Instant;
  readonly expiresAt: Instant | null;
  readonly createdAt: Instant;
  readonly costBasis: CostBasis | null;
  readonly appliesTo: readonly string[] | null;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Remaining credits not pinned by a hold. */
  available: Amount;
  /** Remaining credits pinned by active holds. */
  held: Amount;
  /** Set once the grant left for good by expiry or void; its held part may still be captured. */
  closedReason: 'expired' | 'voided' | null;
  closedAt: Instant | null;
  /** Whether the grant has become effective and paid outstanding overage (done once). */
  activated: boolean;
}

/** A hold's claim on one grant, in the burn-down order that applied when the hold was placed. */
export interface HoldPortion {
  readonly grantId: string;
  amount: Amount;
}

/** Lifecycle of a hold. Only `active` holds can be captured or released. */
export type HoldStatus = 'active' | 'captured' | 'released' | 'expired';

export interface HoldState {
  readonly id: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly amount: Amount;
  readonly createdAt: Instant;
  readonly expiresAt: Instant;
  /** The feature the reserved credits are for (restricts which grants it pins and captures beyond). */
  readonly featureId: string | null;
  /**
   * Usage of the feature counted against its limit when the hold was placed (a held check). It
   * stays counted if the hold is captured and is given back if the hold is released or expires.
   */
  readonly usage: { readonly quantity: Amount; readonly periodStart: Instant } | null;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  status: HoldStatus;
  /** Portions still pinned (emptied when the hold ends). */
  portions: HoldPortion[];
  /** The original drawdowns, kept for display after the hold ends. */
  readonly drawdowns: readonly Drawdown[];
  capturedAmount: Amount | null;
  closedAt: Instant | null;
}

/** How much of one grant an operation consumed or pinned. */
export interface Drawdown {
  readonly grantId: string;
  readonly amount: Amount;
}

/** The ledger entry types of the public contract. */
export type EntryType =
  | 'grant'
  | 'debit'
  | 'hold'
  | 'capture'
  | 'release'
  | 'expiry'
  | 'void'
  | 'overage'
  | 'overage_settled'
  | 'adjustment'
  | 'reversal'
  | 'clawback';

/**
 * Accounts of one customer and credit type. Per-customer counterparts (rather than one global
 * "consumed" account) keep every transaction inside one customer, so there is no global hot row.
 * `grant:<id>` and `held:<id>` are per grant.
 */
export type AccountName =
  | 'issued'
  | 'consumed'
  | 'expired'
  | 'voided'
  | 'overage'
  | 'clawed_back'
  | `grant:${string}`
  | `held:${string}`;

/**
 * One immutable double-entry movement: `amount` (> 0) leaves `fromAccount` and arrives in
 * `toAccount`, so every entry sums to zero by construction and an account's balance is
 * Σ arrivals − Σ departures (TigerBeetle's transfer shape).
 */
export interface LedgerEntry {
  readonly id: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly type: EntryType;
  readonly amount: Amount;
  readonly fromAccount: AccountName;
  readonly toAccount: AccountName;
  readonly grantId: string | null;
  /** The operation that caused it: a debit, hold or grant id. */
  readonly ref: string | null;
  /** The instant the entry takes effect (may be earlier than when it was recorded, e.g. an expiry). */
  readonly at: Instant;
  /** The customer's available balance right after the entry was recorded. */
  readonly balanceAfter: Amount;
}

/** Cached balances of the customer-level accounts (signed: the grant source `issued` is negative). */
export interface CustomerAccounts {
  issued: Amount;
  consumed: Amount;
  expired: Amount;
  voided: Amount;
  /** Negative while the customer owes overage. */
  overage: Amount;
  /**
   * Credits taken back because the money paid for them was refunded or lost in a dispute
   * (`clawback` entries): from the grant's free remainder, or as new overage debt for what the
   * grant no longer had. Named like the account so reconciliation can match the two.
   */
  clawed_back: Amount;
}

/** A balance as the API shows it. */
export interface BalanceView {
  readonly customerId: string;
  readonly creditType: string;
  readonly at: Instant;
  readonly available: Amount;
  readonly held: Amount;
  readonly overage: Amount;
  readonly grants: readonly {
    readonly grantId: string;
    readonly remaining: Amount;
    readonly expiresAt: Instant | null;
    readonly priority: number;
    readonly category: GrantCategory;
  }[];
  readonly nextExpiry: { readonly at: Instant; readonly amount: Amount } | null;
}
