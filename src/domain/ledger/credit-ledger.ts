import { Amount } from '../amount/amount.js';
import { amountOutOfRange } from '../errors.js';
import type { Instant } from '../time/instant.js';
import { appliesToFeature, compareBurnDownOrder, isGrantUsableAt } from './burn-down.js';
import {
  copyGrant,
  copyHold,
  copyReversed,
  type GrantChange,
  type GrantChangeKind,
  type GrantSnapshot,
  type HoldSnapshot,
  isGrantOpen,
  type LedgerChanges,
  noAccounts,
  type ReversedDebitChange,
} from './changes.js';
import type {
  AccountName,
  BalanceView,
  CostBasis,
  CustomerAccounts,
  Drawdown,
  EntryType,
  GrantCategory,
  GrantState,
  HoldState,
  LedgerEntry,
} from './types.js';

/** The prefixes of generated ids: one per kind of object, so an id says what it names. */
export type IdPrefix =
  | 'ent'
  | 'dbt'
  | 'hld'
  | 'grt'
  | 'sub'
  | 'pur'
  | 'rev'
  | 'evt'
  | 'ep'
  | 'dlv'
  | 'att'
  | 'thr'
  | 'tpu'
  | 'aud'
  | 'lic'
  | 'mch'
  | 'seat'
  | 'lse'
  | 'lkey';

/** Makes the opaque ids the ledger hands out; injected so tests are deterministic. */
export interface IdSource {
  newId(prefix: IdPrefix): string;
}

/**
 * What the engine needs loaded to act for one customer and credit type: O(open grants + active
 * holds). Read-only: caches share one snapshot between writes; the engine copies its holds, and each
 * grant only when it first changes it.
 */
export interface CreditLedgerSnapshot {
  readonly customerId: string;
  readonly creditType: string;
  readonly accounts: Readonly<CustomerAccounts>;
  /** Grants with something left (available or held), including pending and closed-but-held ones. */
  readonly grants: readonly GrantSnapshot[];
  /** Holds still active (as stored; some may be past their expiry, which {@link CreditLedger.advanceTo} applies). */
  readonly holds: readonly HoldSnapshot[];
}

/** The snapshot of a ledger with no entries yet: a new customer, or a credit type it never used. */
export function emptyLedgerSnapshot(customerId: string, creditType: string): CreditLedgerSnapshot {
  return { customerId, creditType, accounts: noAccounts(), grants: [], holds: [] };
}

/** The input of a new grant, already validated by the caller. */
export interface NewGrant {
  readonly amount: Amount;
  readonly category: GrantCategory;
  readonly priority: number;
  readonly effectiveAt: Instant;
  readonly expiresAt: Instant | null;
  readonly costBasis: CostBasis | null;
  readonly appliesTo: readonly string[] | null;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** A completed debit or capture. */
export interface DebitRecord {
  readonly id: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly amount: Amount;
  readonly drawdowns: readonly Drawdown[];
  readonly overage: Amount;
  readonly holdId: string | null;
  /** The feature the credits paid for, if the burn named one. */
  readonly featureId: string | null;
  /**
   * How much of that feature the debit counted against its usage limit (a debit naming a feature;
   * null for captures and event burns, whose usage a hold or the event counts). A reversal gives it
   * back in proportion.
   */
  readonly quantity: Amount | null;
  readonly createdAt: Instant;
  readonly description: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * What has been reversed of one debit or capture so far, per part: its overage, and each grant it
 * drew on (by grant id; a debit draws on a grant at most once). Kept with the debit so reversals
 * can never return more than was burned, part by part.
 */
export interface DebitReversed {
  /** All of its overage reversed: cancelled while still owed, plus refunded once paid. */
  overage: Amount;
  readonly byGrant: Map<string, Amount>;
  /**
   * The part of {@link overage} that had been paid already and went back as credits, per grant
   * that had paid overage debt (`overage_settled`).
   */
  readonly paidBack: Map<string, Amount>;
  /** How much of the debit's {@link DebitRecord.quantity} was given back to the usage counter. */
  quantity: Amount;
  /** Every reversal of it, oldest first, with its reason (the audit trail). */
  readonly history: {
    readonly id: string;
    readonly amount: Amount;
    readonly reason: string;
    readonly at: Instant;
  }[];
}

/** A debit or capture as a reversal needs it: what it burned and what has been reversed already. */
export interface ReversibleDebit {
  readonly debit: DebitRecord;
  readonly reversed: DebitReversed;
}

/**
 * One part a reversal returned: overage still owed cancelled (`owed_overage`, grantId null), overage
 * already paid refunded to a grant that paid debt (`paid_overage`), or a drawdown back to its grant.
 */
export interface ReversalPart {
  readonly kind: 'owed_overage' | 'paid_overage' | 'drawdown';
  readonly grantId: string | null;
  readonly amount: Amount;
  /** Set when the grant had already expired or been voided: the part left again at once that way. */
  readonly leftAgainAs: 'expiry' | 'void' | null;
}

/** A completed reversal of (part of) one debit or capture. */
export interface ReversalRecord {
  readonly id: string;
  readonly debitId: string;
  readonly customerId: string;
  readonly creditType: string;
  readonly amount: Amount;
  /** In the order they were reversed: overage first, then drawdowns in reverse burn order. */
  readonly parts: readonly ReversalPart[];
  /** The debit's quantity this reversal gives back to the feature's usage counter (null: none stored). */
  readonly quantityReturned: Amount | null;
  readonly reason: string;
  readonly createdAt: Instant;
}

/**
 * What the grants of one customer and credit type paid in overage debt (`overage_settled` entries,
 * oldest first) and what reversals have refunded to each of them as paid overage: what a reversal
 * of paid overage may give back, per grant. Loaded only by corrections.
 */
export interface SettlementHistory {
  readonly settlements: readonly { readonly grantId: string; readonly amount: Amount }[];
  readonly refunded: ReadonlyMap<string, Amount>;
}

interface SettlementBook {
  /** Per grant: Σ settled, Σ refunded, and the rank of its latest settlement (higher is later). */
  readonly byGrant: Map<string, { settled: Amount; refunded: Amount; latest: number }>;
  next: number;
}

/**
 * The business refusals of a reversal: nothing is left to reverse, or more was asked than is left
 * (`reversible` is what could be reversed now).
 */
export interface ReversalRefused {
  readonly refused: 'nothing_to_reverse' | 'reversal_exceeds_burn';
  readonly reversible: Amount;
  readonly requested: Amount | null;
}

/**
 * A completed clawback of one grant: how much was taken back, how much of it the grant still had
 * free, and how much became overage debt because the grant no longer had it.
 */
export interface ClawbackRecord {
  readonly grantId: string;
  readonly amount: Amount;
  readonly fromGrant: Amount;
  readonly becameOverage: Amount;
  readonly at: Instant;
}

/** The business refusal "not enough credits": a value, not an exception, so callers must handle it. */
export interface InsufficientCredits {
  readonly refused: 'insufficient_credits';
  readonly available: Amount;
  readonly requested: Amount;
}

/** The business refusal for capturing or releasing a hold that is no longer active. */
export interface HoldNotActive {
  readonly refused: 'hold_not_active';
  readonly status: HoldState['status'];
}

/** The business refusal for voiding a grant that already left (expired or voided). */
export interface GrantNotActive {
  readonly refused: 'grant_not_active';
  readonly status: 'expired' | 'voided';
}

/** Options shared by operations that consume credits. */
export interface ConsumeOptions {
  readonly description?: string | null;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * The feature the credits pay for. Grants restricted by `applies_to` serve only burns for their
   * features; a burn without a feature draws only on unrestricted grants.
   */
  readonly featureId?: string | null;
}

type DueEvent<G extends GrantSnapshot = GrantState, H extends HoldSnapshot = HoldState> =
  | { readonly at: Instant; readonly order: 0; readonly hold: H }
  | { readonly at: Instant; readonly order: 1; readonly grant: G; readonly kind: 'expiry' }
  | { readonly at: Instant; readonly order: 2; readonly grant: G; readonly kind: 'activation' };

/**
 * What falls due by `now` among a ledger's holds and grants, unsorted: hold expiries, grant
 * expiries and activations. {@link CreditLedger.advanceTo} applies them in time order; a read of
 * a stored snapshot with none due needs no engine at all ({@link availableWithNothingDue}).
 */
function dueBy<G extends GrantSnapshot, H extends HoldSnapshot>(
  holds: Iterable<H>,
  grants: Iterable<G>,
  now: Instant,
): DueEvent<G, H>[] {
  const due: DueEvent<G, H>[] = [];
  for (const hold of holds) {
    if (hold.status === 'active' && hold.expiresAt <= now) due.push({ at: hold.expiresAt, order: 0, hold });
  }
  for (const grant of grants) {
    if (grant.closedReason !== null) continue;
    if (grant.expiresAt !== null && grant.expiresAt <= now) {
      // A grant recorded after its own expiry (a backfill) leaves at the instant it was recorded.
      due.push({ at: Math.max(grant.expiresAt, grant.createdAt), order: 1, grant, kind: 'expiry' });
    }
    const activationAt = Math.max(grant.effectiveAt, grant.createdAt);
    if (!grant.activated && activationAt <= now) {
      due.push({ at: activationAt, order: 2, grant, kind: 'activation' });
    }
  }
  return due;
}

/**
 * Σ drawable remaining − overage at `at` over these grants (see {@link CreditLedger.availableAt},
 * which is this over the engine's grants).
 */
function availableOf(
  grants: Iterable<GrantSnapshot>,
  overage: Amount,
  at: Instant,
  featureId: string | null | undefined,
): Amount {
  let total = overage.units;
  for (const grant of grants) {
    if (!isGrantUsableAt(grant, at)) continue;
    if (featureId !== undefined && !appliesToFeature(grant, featureId)) continue;
    total += grant.available.units;
  }
  return Amount.fromUnits(total);
}

/**
 * The available balance (as {@link CreditLedger.availableAt}) of a stored ledger at `now`, read off
 * its snapshot when nothing of it falls due by `now`; null when something does (then build a
 * {@link CreditLedger} and advance it, which applies what is due first). What an entitlement check
 * reads on every call: a ledger it will not change need not be copied into an engine (copying 12
 * grants was the largest part of a check's own work).
 */
export function availableWithNothingDue(
  snapshot: CreditLedgerSnapshot,
  now: Instant,
  featureId?: string | null,
): Amount | null {
  if (dueBy(snapshot.holds, snapshot.grants, now).length > 0) return null;
  return availableOf(snapshot.grants, snapshot.accounts.overage, now, featureId);
}

/**
 * The credit ledger of one customer in one credit type: a pure state machine over the loaded
 * snapshot. Every operation first checks that it can succeed and only then records entries, so a
 * refusal changes nothing. What changed (new entries, changed grants and holds, debits) is tracked
 * until {@link takeChanges} hands it over as an immutable {@link LedgerChanges}, which the storage
 * adapter persists in the same transaction as the cached balances.
 */
export class CreditLedger {
  readonly customerId: string;
  readonly creditType: string;
  readonly accounts: CustomerAccounts;
  /**
   * Open grants by id: only the engine adds to it (services through {@link adoptGrant}). Copy on
   * write: a grant is the snapshot's own object (shared with whoever handed the snapshot over, so
   * never written) until the engine first changes it; {@link mutableGrant} then puts a private copy
   * in its place. A debit that draws on one of twelve grants copies one, not twelve.
   */
  private readonly grantsById = new Map<string, GrantSnapshot>();
  /** Open grants by id, read-only (add one loaded on demand with {@link adoptGrant}). */
  readonly grants: ReadonlyMap<string, GrantSnapshot> = this.grantsById;
  /** The grants of {@link grantsById} that are the engine's private copies, writable until the next take. */
  private readonly ownGrants = new Set<GrantSnapshot>();
  /**
   * Every grant in burn-down order, kept between operations: the order depends only on fields a
   * grant never changes, so it is recomputed only when a grant is added (null until needed); a
   * grant's copy takes its place in it.
   */
  private burnOrder: GrantSnapshot[] | null = null;
  /** Active holds by id. */
  readonly holds = new Map<string, HoldState>();
  /** Entries recorded since loading or the last {@link takeChanges}, in recording order. */
  private recorded: LedgerEntry[] = [];
  /**
   * Grants that changed since loading or the last take, in the order they first changed, each with
   * how ({@link grantChanged}): `created`; `reshaped` (closed, activated, or emptied/refilled); or
   * `amounts` (only credits moved, which lets storage write just two columns).
   */
  private readonly changedGrants = new Map<GrantSnapshot, GrantChangeKind>();
  private readonly heldChanges = new Set<HoldState>();
  private debits: DebitRecord[] = [];
  /** Debits and captures whose reversed parts changed (persisted with the entries). */
  private readonly reversedDebits = new Set<ReversibleDebit>();
  /** Loaded by {@link loadSettlements} (corrections only); kept current as debt is paid and refunded. */
  private settlementBook: SettlementBook | null = null;

  /**
   * Takes a snapshot without mutating it: its holds are copied here and its grants on their first
   * change ({@link mutableGrant}), so whoever handed it over (a cache) may keep and share it.
   */
  constructor(
    snapshot: CreditLedgerSnapshot,
    private readonly ids: IdSource,
  ) {
    this.customerId = snapshot.customerId;
    this.creditType = snapshot.creditType;
    this.accounts = { ...snapshot.accounts };
    for (const grant of snapshot.grants) this.grantsById.set(grant.id, grant);
    for (const hold of snapshot.holds) this.holds.set(hold.id, copyHold(hold));
  }

  /**
   * Adds a grant the snapshot did not load (a depleted or closed one, read by id) so an operation
   * on it can run: voiding it, clawing it back, reversing a debit that drew on it. A grant already
   * loaded is kept as it is (ours may have changed since storage last saw it).
   */
  adoptGrant(grant: GrantSnapshot): void {
    if (this.grants.has(grant.id)) return;
    this.grantsById.set(grant.id, grant);
    this.burnOrder = null;
  }

  /**
   * The writable form of a loaded grant: the engine's own copy, made on the grant's first change
   * since loading or the last take and put in the snapshot object's place (in the map and the burn
   * order). Every write to a grant goes through here; references taken before it may be stale, so
   * code that reads a grant after changing it reads it again by id.
   */
  private mutableGrant(grantId: string): GrantState {
    const grant = this.requireGrant(grantId);
    if (this.ownGrants.has(grant)) return grant as GrantState;
    const copy = copyGrant(grant);
    this.grantsById.set(grantId, copy);
    this.ownGrants.add(copy);
    if (this.burnOrder !== null) {
      const at = this.burnOrder.indexOf(grant);
      if (at >= 0) this.burnOrder[at] = copy;
    }
    return copy;
  }

  /** Records that a grant changed, keeping the strongest kind so far: created, then reshaped, then amounts. */
  private grantChanged(grant: GrantSnapshot, kind: GrantChangeKind): void {
    const was = this.changedGrants.get(grant);
    if (was === 'created' || was === kind || (was === 'reshaped' && kind === 'amounts')) return;
    this.changedGrants.set(grant, kind);
  }

  /** Every grant in burn-down order (see {@link burnOrder}). */
  private grantsInBurnOrder(): readonly GrantSnapshot[] {
    this.burnOrder ??= [...this.grants.values()].sort(compareBurnDownOrder);
    return this.burnOrder;
  }

  /** Entries recorded since loading or the last {@link takeChanges}, in recording order (not yet taken). */
  get newEntries(): readonly LedgerEntry[] {
    return this.recorded;
  }

  /** Debits and captures recorded since loading or the last {@link takeChanges}. */
  get newDebits(): readonly DebitRecord[] {
    return this.debits;
  }

  /**
   * Holds placed or changed since loading or the last {@link takeChanges}: what a read inside the
   * write sees that storage does not have yet (e.g. a hold that expired on access).
   */
  get changedHolds(): ReadonlySet<HoldState> {
    return this.heldChanges;
  }

  /** Whether anything changed since loading or the last take (so the caller knows whether to persist). */
  get isDirty(): boolean {
    return (
      this.recorded.length > 0 ||
      this.changedGrants.size > 0 ||
      this.heldChanges.size > 0 ||
      this.reversedDebits.size > 0
    );
  }

  /**
   * Hands over what changed since loading (or since the previous call) as an immutable change
   * set, and starts tracking afresh: a second call answers only what changed after the first,
   * and an empty change set when nothing did ({@link isDirty} is false right after). The change
   * set shares nothing the engine mutates later: the engine's own copies of changed grants are
   * handed over as they are and stop being its own (a later change copies again, see
   * {@link mutableGrant}; an open one is the same object in both lists); holds and reversed parts
   * are copied; entries and debit records are immutable values handed over with their arrays.
   */
  takeChanges(): LedgerChanges {
    const grants: GrantChange[] = [];
    const grantsCreated: GrantSnapshot[] = [];
    for (const [grant, change] of this.changedGrants) {
      grants.push({ grant, change });
      if (change === 'created') grantsCreated.push(grant);
    }
    // From here on every grant of the map is a snapshot the engine no longer writes.
    this.ownGrants.clear();
    const openGrants: GrantSnapshot[] = [];
    for (const grant of this.grants.values()) if (isGrantOpen(grant)) openGrants.push(grant);
    const holdCopies = this.heldChanges.size > 0 ? new Map<HoldState, HoldSnapshot>() : null;
    const holds: HoldSnapshot[] = [];
    for (const live of this.heldChanges) {
      const hold = copyHold(live);
      holdCopies!.set(live, hold);
      holds.push(hold);
    }
    const activeHolds: HoldSnapshot[] = [];
    for (const live of this.holds.values()) {
      if (live.status === 'active') activeHolds.push(holdCopies?.get(live) ?? copyHold(live));
    }
    const debitsReversed: ReversedDebitChange[] = [];
    for (const target of this.reversedDebits) {
      debitsReversed.push(
        Object.freeze({ debitId: target.debit.id, reversed: copyReversed(target.reversed) }),
      );
    }
    // Frozen at the top only: the lists are readonly by type and owned by the change set alone
    // (freezing each of them costs about 1 µs per debit on the hot path, measured).
    const changes: LedgerChanges = Object.freeze({
      customerId: this.customerId,
      creditType: this.creditType,
      accounts: { ...this.accounts },
      entries: this.recorded,
      grants,
      grantsCreated,
      holds,
      debitsCreated: this.debits,
      debitsReversed,
      openGrants,
      activeHolds,
    });
    this.recorded = [];
    this.debits = [];
    this.changedGrants.clear();
    this.heldChanges.clear();
    this.reversedDebits.clear();
    return changes;
  }

  /**
   * Applies, in time order, everything that became due up to `now`: hold expiries, grant expiries
   * and grant activations (which pay overage debt). Each entry is dated at the instant it became
   * due, not when it was noticed, so reads never depend on a background job having run.
   */
  advanceTo(now: Instant): void {
    const due = dueBy(this.holds.values(), this.grants.values(), now);
    if (due.length === 0) return;
    due.sort(
      (a, b) => a.at - b.at || a.order - b.order || (dueId(a) < dueId(b) ? -1 : dueId(a) > dueId(b) ? 1 : 0),
    );
    for (const event of due) {
      if (event.order === 0) this.endHold(event.hold, 'expired', event.at);
      else if (event.kind === 'expiry') this.closeGrant(event.grant.id, 'expired', event.at);
      // Read again by id: an expiry earlier in this loop may have replaced it with a closed copy.
      else if (this.requireGrant(event.grant.id).closedReason === null) {
        const grant = this.mutableGrant(event.grant.id);
        grant.activated = true;
        this.grantChanged(grant, 'reshaped');
        this.settleOverage(event.at);
      }
    }
  }

  /**
   * Adds a grant. Its entry is dated `effective_at`; if it is already effective it pays overage debt
   * first. The object answered is the grant as of the next {@link takeChanges}; a change after that
   * is made on a copy (see {@link mutableGrant}), which {@link grants} then holds.
   */
  grant(input: NewGrant, now: Instant): GrantSnapshot {
    const grant: GrantState = {
      id: this.ids.newId('grt'),
      customerId: this.customerId,
      creditType: this.creditType,
      category: input.category,
      amount: input.amount,
      priority: input.priority,
      effectiveAt: input.effectiveAt,
      expiresAt: input.expiresAt,
      createdAt: now,
      costBasis: input.costBasis,
      appliesTo: input.appliesTo,
      description: input.description,
      metadata: input.metadata,
      available: Amount.ZERO,
      held: Amount.ZERO,
      closedReason: null,
      closedAt: null,
      activated: false,
    };
    this.grantsById.set(grant.id, grant);
    this.ownGrants.add(grant);
    this.burnOrder = null;
    this.grantChanged(grant, 'created');
    // Issued when recorded, usable from effective_at. No entry of a grant predates this one, so a
    // balance read for any past instant never sees a grant's later movements without its issue.
    this.record('grant', input.amount, 'issued', `grant:${grant.id}`, grant.id, grant.id, now, now);
    this.advanceTo(now);
    return grant;
  }

  /** Draws `amount` in burn-down order; all of it or nothing, unless overage is allowed for the shortfall. */
  debit(
    input: {
      readonly amount: Amount;
      readonly allowOverage: boolean;
      /** Stored with a debit naming a feature: the quantity it counted against the usage limit. */
      readonly quantity?: Amount | null;
    } & ConsumeOptions,
    now: Instant,
  ): DebitRecord | InsufficientCredits {
    const featureId = input.featureId ?? null;
    const usable = this.drawableGrants(now, featureId);
    // What the burn may use is what it could draw less any overage owed: restricted grants never
    // pay the debt, but they do not serve a customer in debt either (the same rule as the check).
    const available = this.availableAt(now, featureId);
    if (available.lessThan(input.amount) && !input.allowOverage) {
      return { refused: 'insufficient_credits', available, requested: input.amount };
    }
    const debitId = this.ids.newId('dbt');
    const { drawdowns, shortfall } = this.draw(usable, input.amount, 'debit', debitId, now);
    if (shortfall.isPositive())
      this.record('overage', shortfall, 'overage', 'consumed', null, debitId, now, now);
    const debit: DebitRecord = {
      id: debitId,
      customerId: this.customerId,
      creditType: this.creditType,
      amount: input.amount,
      drawdowns,
      overage: shortfall,
      holdId: null,
      featureId,
      quantity: featureId === null ? null : (input.quantity ?? null),
      createdAt: now,
      description: input.description ?? null,
      metadata: input.metadata ?? {},
    };
    this.debits.push(debit);
    return debit;
  }

  /** Pins `amount` of grant portions (burn-down order) until captured, released or `expiresAt`. */
  placeHold(
    input: {
      readonly amount: Amount;
      readonly expiresAt: Instant;
      readonly usage?: HoldState['usage'];
    } & ConsumeOptions,
    now: Instant,
  ): HoldState | InsufficientCredits {
    const featureId = input.featureId ?? null;
    const usable = this.drawableGrants(now, featureId);
    const available = this.availableAt(now, featureId);
    if (available.lessThan(input.amount)) {
      return { refused: 'insufficient_credits', available, requested: input.amount };
    }
    const holdId = this.ids.newId('hld');
    const { drawdowns } = this.draw(usable, input.amount, 'hold', holdId, now);
    const hold: HoldState = {
      id: holdId,
      customerId: this.customerId,
      creditType: this.creditType,
      amount: input.amount,
      createdAt: now,
      expiresAt: input.expiresAt,
      featureId,
      usage: input.usage ?? null,
      description: input.description ?? null,
      metadata: input.metadata ?? {},
      status: 'active',
      portions: drawdowns.map((d) => ({ grantId: d.grantId, amount: d.amount })),
      drawdowns,
      capturedAmount: null,
      closedAt: null,
    };
    this.holds.set(hold.id, hold);
    this.heldChanges.add(hold);
    return hold;
  }

  /**
   * Captures `amount` (default: all) of an active hold from its pinned portions, releases the rest,
   * and draws any excess like a debit. Up to the held amount it always succeeds, even from grants
   * that expired or were voided meanwhile.
   */
  capture(
    input: {
      readonly holdId: string;
      readonly amount: Amount | null;
      readonly allowOverage: boolean;
    } & ConsumeOptions,
    now: Instant,
  ): DebitRecord | InsufficientCredits | HoldNotActive {
    const hold = this.holds.get(input.holdId);
    if (hold?.status !== 'active') return { refused: 'hold_not_active', status: hold?.status ?? 'expired' };
    const amount = input.amount ?? hold.amount;
    const fromHold = Amount.min(amount, hold.amount);
    const excess = amount.minus(fromHold);
    if (excess.isPositive() && !input.allowOverage) {
      const available = this.availableAt(now, hold.featureId);
      if (available.lessThan(excess))
        return { refused: 'insufficient_credits', available, requested: excess };
    }
    const debitId = this.ids.newId('dbt');
    const byGrant = new Map<string, Amount>();
    let left = fromHold;
    for (const portion of hold.portions) {
      const take = Amount.min(portion.amount, left);
      if (!take.isPositive()) continue;
      const grant = this.requireGrant(portion.grantId);
      portion.amount = portion.amount.minus(take);
      this.record('capture', take, `held:${grant.id}`, 'consumed', grant.id, debitId, now, now);
      byGrant.set(grant.id, (byGrant.get(grant.id) ?? Amount.ZERO).plus(take));
      left = left.minus(take);
    }
    hold.status = 'captured';
    hold.capturedAmount = amount;
    hold.closedAt = now;
    this.releasePortions(hold, now);
    let shortfall = Amount.ZERO;
    if (excess.isPositive()) {
      const drawn = this.draw(this.drawableGrants(now, hold.featureId), excess, 'capture', debitId, now);
      for (const d of drawn.drawdowns)
        byGrant.set(d.grantId, (byGrant.get(d.grantId) ?? Amount.ZERO).plus(d.amount));
      shortfall = drawn.shortfall;
      if (shortfall.isPositive())
        this.record('overage', shortfall, 'overage', 'consumed', null, debitId, now, now);
    }
    const debit: DebitRecord = {
      id: debitId,
      customerId: this.customerId,
      creditType: this.creditType,
      amount,
      drawdowns: [...byGrant].map(([grantId, drawn]) => ({ grantId, amount: drawn })),
      overage: shortfall,
      holdId: hold.id,
      featureId: hold.featureId,
      // What the held check counted against the feature's usage limit: a reversal gives it back.
      quantity: hold.featureId === null ? null : (hold.usage?.quantity ?? null),
      createdAt: now,
      description: input.description ?? hold.description,
      metadata: input.metadata ?? hold.metadata,
    };
    this.debits.push(debit);
    return debit;
  }

  /** What an active hold reserves, or null when it is not active (captured, released, expired, unknown). */
  holdAmount(holdId: string): Amount | null {
    const hold = this.holds.get(holdId);
    return hold?.status === 'active' ? hold.amount : null;
  }

  /** Releases an active hold: its portions return to their grants (or leave, if those grants already did). */
  release(holdId: string, now: Instant): HoldState | HoldNotActive {
    const hold = this.holds.get(holdId);
    if (hold?.status !== 'active') return { refused: 'hold_not_active', status: hold?.status ?? 'expired' };
    this.endHold(hold, 'released', now);
    return hold;
  }

  /** Voids a grant: what is left unpinned leaves now; pinned portions stay capturable. */
  voidGrant(grantId: string, now: Instant): GrantSnapshot | GrantNotActive {
    const grant = this.requireGrant(grantId);
    if (grant.closedReason !== null) return { refused: 'grant_not_active', status: grant.closedReason };
    this.closeGrant(grantId, 'voided', now);
    return this.requireGrant(grantId);
  }

  /**
   * Takes `amount` credits of one grant back, because the money paid for them was refunded or lost
   * in a dispute (`clawback` entries, to the `clawed_back` account):
   * 1. what the grant still has free leaves it (`grant:<id> → clawed_back`);
   * 2. the rest (credits already consumed, or pinned by a hold, or gone with the grant's expiry or
   *    void) becomes overage debt (`overage → clawed_back`): the customer owes it, as usage beyond
   *    the balance, and the next credits pay it first.
   * Because debt and free unrestricted credits never coexist, other drawable grants then pay that
   * debt at once (`overage_settled`). The caller bounds the total clawed back of a grant by its
   * amount (a refund share never exceeds the whole). The grant must be loaded (depleted ones too).
   */
  clawBack(grantId: string, amount: Amount, now: Instant): ClawbackRecord {
    const grant = this.requireGrant(grantId);
    if (!amount.isPositive()) invariantViolated(`a clawback of ${amount.toString()} credits (must be > 0)`);
    const fromGrant = Amount.min(amount, grant.available);
    const becameOverage = amount.minus(fromGrant);
    this.record('clawback', fromGrant, `grant:${grant.id}`, 'clawed_back', grant.id, grant.id, now, now);
    this.record('clawback', becameOverage, 'overage', 'clawed_back', grant.id, grant.id, now, now);
    if (becameOverage.isPositive()) this.settleOverage(now);
    // Emptied by the clawback while open: its status reads "depleted", like a grant used up.
    const after = this.requireGrant(grantId);
    if (fromGrant.isPositive() && after.available.isZero() && after.held.isZero())
      this.grantChanged(after, 'reshaped');
    return { grantId: grant.id, amount, fromGrant, becameOverage, at: now };
  }

  /**
   * Pins up to `amount` of one grant's free remainder (not the burn-down order: a dispute freezes
   * the credits of the purchase disputed). What the grant no longer has free (consumed already) is
   * not pinned; the hold's amount says what was. Null when nothing is free. The hold is an ordinary
   * hold (released or captured like any), dated to expire at `expiresAt`.
   */
  holdGrant(
    input: {
      readonly grantId: string;
      readonly amount: Amount;
      readonly expiresAt: Instant;
      readonly description: string | null;
      readonly metadata: Readonly<Record<string, unknown>>;
    },
    now: Instant,
  ): HoldState | null {
    const grant = this.requireGrant(input.grantId);
    const take = Amount.min(input.amount, grant.closedReason === null ? grant.available : Amount.ZERO);
    if (!take.isPositive()) return null;
    const holdId = this.ids.newId('hld');
    this.record('hold', take, `grant:${grant.id}`, `held:${grant.id}`, grant.id, holdId, now, now);
    const hold: HoldState = {
      id: holdId,
      customerId: this.customerId,
      creditType: this.creditType,
      amount: take,
      createdAt: now,
      expiresAt: input.expiresAt,
      featureId: null,
      usage: null,
      description: input.description,
      metadata: input.metadata,
      status: 'active',
      portions: [{ grantId: grant.id, amount: take }],
      drawdowns: [{ grantId: grant.id, amount: take }],
      capturedAmount: null,
      closedAt: null,
    };
    this.holds.set(hold.id, hold);
    this.heldChanges.add(hold);
    return hold;
  }

  /**
   * Loads what each grant paid in overage debt and what reversals refunded to it already, so a
   * reversal can refund overage that was paid (see {@link reverse}). Corrections call this before
   * reversing, after the grants are loaded and what is due applied; debits, checks and ingest never
   * load it, so they never pay for it.
   */
  loadSettlements(history: SettlementHistory): void {
    const book: SettlementBook = { byGrant: new Map(), next: 0 };
    // The stored settlements, then those recorded and not taken yet (so not stored yet).
    const recorded = this.recorded.flatMap((e) =>
      e.type === 'overage_settled' && e.grantId !== null ? [{ grantId: e.grantId, amount: e.amount }] : [],
    );
    for (const { grantId, amount } of [...history.settlements, ...recorded]) {
      const slot = book.byGrant.get(grantId) ?? { settled: Amount.ZERO, refunded: Amount.ZERO, latest: 0 };
      slot.settled = slot.settled.plus(amount);
      slot.latest = book.next++;
      book.byGrant.set(grantId, slot);
    }
    for (const [grantId, amount] of history.refunded) {
      const slot = book.byGrant.get(grantId);
      if (!slot || amount.greaterThan(slot.settled))
        throw new Error(`ledger invariant: grant ${grantId} was refunded more paid overage than it paid`);
      slot.refunded = amount;
    }
    this.settlementBook = book;
  }

  /** Grants that paid overage debt, by id: what {@link loadSettlements} needs loaded. */
  settlingGrantIds(): string[] {
    return this.settlementBook === null ? [] : [...this.settlementBook.byGrant.keys()];
  }

  /**
   * What a reversal of `target` could return now: the overage it recorded not reversed yet (still
   * owed, or already paid by later grants), plus what it drew from grants, less what was reversed
   * of each part already.
   */
  reversibleOf(target: ReversibleDebit): Amount {
    return Amount.sum(this.reversibleParts(target).map((p) => p.amount));
  }

  /**
   * Reverses `amount` (default: all that is left) of a debit or capture, in a defined order:
   * 1. its overage still owed is cancelled (`consumed → overage`; owed: at most what the customer
   *    owes now);
   * 2. its overage already paid is refunded as credits to the grants that paid overage debt
   *    (`consumed → grant:<id>`), the grant whose latest settlement is latest first, each at most
   *    what it paid in `overage_settled` less what reversals refunded to it before;
   * 3. its drawdowns go back to their grants in reverse burn order (`consumed → grant:<id>`).
   * A part whose grant has since expired or been voided leaves again at once (`expiry`/`void`,
   * same instant). Credits back in an open grant pay overage debt first, as a released hold's do.
   * Never more than was burned: a refusal is a value and changes nothing. The caller loads the
   * settlements ({@link loadSettlements}) and every grant the debit drew on or that paid debt
   * (depleted ones too) before calling. A debit that stored a `quantity` gives back
   * `quantity × reversed / amount` (cumulative, rounded down at 12 decimals; the rest once it is
   * fully reversed) in {@link ReversalRecord.quantityReturned}.
   */
  reverse(
    input: { readonly target: ReversibleDebit; readonly amount: Amount | null; readonly reason: string },
    now: Instant,
  ): ReversalRecord | ReversalRefused {
    const { target } = input;
    const parts = this.reversibleParts(target);
    const reversible = Amount.sum(parts.map((p) => p.amount));
    if (!reversible.isPositive()) {
      return { refused: 'nothing_to_reverse', reversible, requested: input.amount };
    }
    const amount = input.amount ?? reversible;
    if (amount.greaterThan(reversible)) {
      return { refused: 'reversal_exceeds_burn', reversible, requested: amount };
    }
    const id = this.ids.newId('rev');
    const done: ReversalPart[] = [];
    let left = amount;
    let returned = false;
    for (const part of parts) {
      if (!left.isPositive()) break;
      const take = Amount.min(part.amount, left);
      if (!take.isPositive()) continue;
      left = left.minus(take);
      if (part.kind === 'owed_overage') {
        this.record('reversal', take, 'consumed', 'overage', null, id, now, now);
        target.reversed.overage = target.reversed.overage.plus(take);
        done.push({ kind: part.kind, grantId: null, amount: take, leftAgainAs: null });
        continue;
      }
      const grant = this.requireGrant(part.grantId!);
      this.record('reversal', take, 'consumed', `grant:${grant.id}`, grant.id, id, now, now);
      if (part.kind === 'paid_overage') {
        target.reversed.overage = target.reversed.overage.plus(take);
        addTo(target.reversed.paidBack, grant.id, take);
        const slot = this.settlementBook!.byGrant.get(grant.id)!;
        slot.refunded = slot.refunded.plus(take);
      } else {
        addTo(target.reversed.byGrant, grant.id, take);
      }
      let leftAgainAs: ReversalPart['leftAgainAs'] = null;
      if (grant.closedReason !== null) {
        leftAgainAs = grant.closedReason === 'expired' ? 'expiry' : 'void';
        this.record(leftAgainAs, take, `grant:${grant.id}`, grant.closedReason, grant.id, id, now, now);
      } else {
        returned = true;
      }
      done.push({ kind: part.kind, grantId: grant.id, amount: take, leftAgainAs });
    }
    target.reversed.history.push({ id, amount, reason: input.reason, at: now });
    const quantityReturned = this.quantityBack(target);
    this.reversedDebits.add(target);
    if (returned) this.settleOverage(now);
    return {
      id,
      debitId: target.debit.id,
      customerId: this.customerId,
      creditType: this.creditType,
      amount,
      parts: done,
      quantityReturned,
      reason: input.reason,
      createdAt: now,
    };
  }

  /**
   * The quantity a reversal just recorded in `target.reversed.history` gives back: what is due for
   * all reversed so far (`quantity × Σ reversed / amount`, rounded down at 12 decimals; all of it
   * once the debit is fully reversed) less what earlier reversals gave back.
   */
  private quantityBack(target: ReversibleDebit): Amount | null {
    const { debit, reversed } = target;
    if (debit.quantity === null) return null;
    const total = Amount.sum(reversed.history.map((r) => r.amount));
    const due = total.equals(debit.amount)
      ? debit.quantity
      : debit.quantity.mulRatio(total.units, debit.amount.units, 'down');
    const back = Amount.max(Amount.ZERO, due.minus(reversed.quantity));
    reversed.quantity = reversed.quantity.plus(back);
    return back;
  }

  /**
   * The parts of a debit still reversible, in reversal order: its overage still owed, its overage
   * already paid (per grant that paid debt, latest settlement first), then its drawdowns last
   * drawn first.
   */
  private reversibleParts(
    target: ReversibleDebit,
  ): { kind: ReversalPart['kind']; grantId: string | null; amount: Amount }[] {
    const { debit, reversed } = target;
    const overageLeft = Amount.max(Amount.ZERO, debit.overage.minus(reversed.overage));
    const owed = Amount.min(overageLeft, Amount.max(Amount.ZERO, this.accounts.overage.negated()));
    const parts: { kind: ReversalPart['kind']; grantId: string | null; amount: Amount }[] = [
      { kind: 'owed_overage', grantId: null, amount: owed },
    ];
    let paid = overageLeft.minus(owed);
    if (paid.isPositive()) {
      // Σ overage not yet reversed = debt owed + Σ settled − Σ refunded, so the settlements
      // always cover what is paid of one debit; anything else is a broken ledger.
      if (this.settlementBook === null) throw new Error('ledger invariant: settlements are not loaded');
      const payers = [...this.settlementBook.byGrant].sort((a, b) => b[1].latest - a[1].latest);
      for (const [grantId, slot] of payers) {
        if (!paid.isPositive()) break;
        const take = Amount.min(paid, slot.settled.minus(slot.refunded));
        if (!take.isPositive()) continue;
        parts.push({ kind: 'paid_overage', grantId, amount: take });
        paid = paid.minus(take);
      }
      if (paid.isPositive())
        throw new Error(
          `ledger invariant: ${paid} of the overage of ${debit.id} is neither owed nor settled`,
        );
    }
    for (let i = debit.drawdowns.length - 1; i >= 0; i--) {
      const d = debit.drawdowns[i]!;
      const left = d.amount.minus(reversed.byGrant.get(d.grantId) ?? Amount.ZERO);
      if (left.isPositive()) parts.push({ kind: 'drawdown', grantId: d.grantId, amount: left });
    }
    return parts.filter((p) => p.amount.isPositive());
  }

  /**
   * Σ drawable remaining − overage at `at`, as the contract defines `available`. Without a
   * feature (`undefined`) every grant counts; with one (or `null`, an unattributed burn) only the
   * grants that burn may draw on.
   */
  availableAt(at: Instant, featureId?: string | null): Amount {
    return availableOf(this.grants.values(), this.accounts.overage, at, featureId);
  }

  /**
   * Removes part of a grant's free remainder as breakage (an `expiry` entry dated `at`): what a
   * rollover cap trims. The grant stays open with the rest.
   */
  expirePart(grantId: string, amount: Amount, at: Instant): void {
    const grant = this.requireGrant(grantId);
    if (amount.greaterThan(grant.available)) throw new Error('ledger invariant: trim beyond what is free');
    this.record('expiry', amount, `grant:${grant.id}`, 'expired', grant.id, grant.id, at, at);
    // Trimmed to nothing: it has expired (its status no longer depends on when this ran).
    const after = this.requireGrant(grantId);
    if (after.available.isZero() && after.held.isZero()) this.closeGrant(grantId, 'expired', at);
  }

  /** The balance at `now` (optionally as seen by burns for one feature); call {@link advanceTo} first. */
  balance(now: Instant, featureId?: string): BalanceView {
    const listed = this.grantsInBurnOrder().filter(
      (g) =>
        isGrantUsableAt(g, now) &&
        (g.available.isPositive() || g.held.isPositive()) &&
        (featureId === undefined || appliesToFeature(g, featureId)),
    );
    let held = Amount.ZERO;
    for (const grant of this.grants.values()) held = held.plus(grant.held);
    let nextExpiry: BalanceView['nextExpiry'] = null;
    for (const grant of listed) {
      if (grant.expiresAt === null || !grant.available.isPositive()) continue;
      if (nextExpiry === null || grant.expiresAt < nextExpiry.at) {
        nextExpiry = { at: grant.expiresAt, amount: grant.available };
      } else if (grant.expiresAt === nextExpiry.at) {
        nextExpiry = { at: nextExpiry.at, amount: nextExpiry.amount.plus(grant.available) };
      }
    }
    return {
      customerId: this.customerId,
      creditType: this.creditType,
      at: now,
      available: this.availableAt(now, featureId),
      held,
      overage: this.accounts.overage.negated(),
      grants: listed.map((g) => ({
        grantId: g.id,
        remaining: g.available.plus(g.held),
        expiresAt: g.expiresAt,
        priority: g.priority,
        category: g.category,
      })),
      nextExpiry,
    };
  }

  /** Grants a burn for `featureId` (null: no feature) may draw on now, in burn-down order. */
  drawableGrants(now: Instant, featureId: string | null): GrantSnapshot[] {
    const usable: GrantSnapshot[] = [];
    for (const grant of this.grantsInBurnOrder()) {
      if (isGrantUsableAt(grant, now) && grant.available.isPositive() && appliesToFeature(grant, featureId))
        usable.push(grant);
    }
    return usable;
  }

  /** Takes up to `amount` from `usable` (already in burn-down order); what cannot be taken is the shortfall. */
  private draw(
    usable: readonly GrantSnapshot[],
    amount: Amount,
    type: 'debit' | 'hold' | 'capture',
    ref: string,
    now: Instant,
  ): { drawdowns: Drawdown[]; shortfall: Amount } {
    const drawdowns: Drawdown[] = [];
    let left = amount;
    for (const grant of usable) {
      if (!left.isPositive()) break;
      const take = Amount.min(grant.available, left);
      const to: AccountName = type === 'hold' ? `held:${grant.id}` : 'consumed';
      this.record(type, take, `grant:${grant.id}`, to, grant.id, ref, now, now);
      drawdowns.push({ grantId: grant.id, amount: take });
      left = left.minus(take);
    }
    return { drawdowns, shortfall: left };
  }

  private endHold(hold: HoldState, status: 'released' | 'expired', at: Instant): void {
    hold.status = status;
    hold.closedAt = at;
    this.releasePortions(hold, at);
  }

  /** Returns a hold's still-pinned portions to their grants; a grant that already left takes them with it. */
  private releasePortions(hold: HoldState, at: Instant): void {
    this.heldChanges.add(hold);
    let returned = false;
    for (const portion of hold.portions) {
      if (!portion.amount.isPositive()) continue;
      const grant = this.requireGrant(portion.grantId);
      const amount = portion.amount;
      portion.amount = Amount.ZERO;
      this.record('release', amount, `held:${grant.id}`, `grant:${grant.id}`, grant.id, hold.id, at, at);
      if (grant.closedReason !== null) {
        const type = grant.closedReason === 'expired' ? 'expiry' : 'void';
        this.record(type, amount, `grant:${grant.id}`, grant.closedReason, grant.id, hold.id, at, at);
      } else {
        returned = true;
      }
    }
    if (returned) this.settleOverage(at);
  }

  private closeGrant(grantId: string, reason: 'expired' | 'voided', at: Instant): void {
    const open = this.requireGrant(grantId);
    this.record(
      reason === 'expired' ? 'expiry' : 'void',
      open.available,
      `grant:${grantId}`,
      reason,
      grantId,
      grantId,
      at,
      at,
    );
    const grant = this.mutableGrant(grantId);
    grant.closedReason = reason;
    grant.closedAt = at;
    this.grantChanged(grant, 'reshaped');
  }

  /**
   * Pays overage debt from drawable grants in burn-down order (a new grant, or credits a hold
   * returned). Only unrestricted grants pay: the debt may come from any feature.
   */
  private settleOverage(at: Instant): void {
    let debt = this.accounts.overage.negated();
    if (!debt.isPositive()) return;
    for (const grant of this.drawableGrants(at, null)) {
      const take = Amount.min(grant.available, debt);
      this.record('overage_settled', take, `grant:${grant.id}`, 'overage', grant.id, grant.id, at, at);
      if (this.settlementBook !== null && take.isPositive()) {
        const book = this.settlementBook;
        const slot = book.byGrant.get(grant.id) ?? { settled: Amount.ZERO, refunded: Amount.ZERO, latest: 0 };
        slot.settled = slot.settled.plus(take);
        slot.latest = book.next++;
        book.byGrant.set(grant.id, slot);
      }
      debt = debt.minus(take);
      if (!debt.isPositive()) break;
    }
  }

  /**
   * Appends one entry and applies it to the cached balances of both accounts. This is the only
   * place balances change, so every cache equals the sum of its entries by construction, and the
   * one place the account range is enforced: an entry that would carry an account (or itself)
   * past it throws `amount_out_of_range` before anything of it is applied; callers run in one
   * transaction, so the write is refused whole.
   */
  private record(
    type: EntryType,
    amount: Amount,
    fromAccount: AccountName,
    toAccount: AccountName,
    grantId: string | null,
    ref: string | null,
    at: Instant,
    recordedAt: Instant,
  ): void {
    if (amount.isZero()) return;
    if (amount.isNegative())
      invariantViolated(`a ${type} entry of ${amount.toString()} credits (must be > 0)`);
    if (fromAccount === toAccount) invariantViolated(`a ${type} entry from ${fromAccount} to itself`);
    this.requireInRange(amount, fromAccount, toAccount);
    this.applyToAccount(fromAccount, amount.negated());
    this.applyToAccount(toAccount, amount);
    this.assertGrantBalances(fromAccount, type);
    this.assertGrantBalances(toAccount, type);
    this.recorded.push({
      id: this.ids.newId('ent'),
      customerId: this.customerId,
      creditType: this.creditType,
      type,
      amount,
      fromAccount,
      toAccount,
      grantId,
      ref,
      at,
      balanceAfter: this.availableAt(recordedAt),
    });
  }

  /** Whether `amount` more can be consumed (and owed as overage) without leaving the account range. */
  canBurn(amount: Amount): boolean {
    return (
      this.accounts.consumed.plus(amount).isWithinAccountRange() &&
      this.accounts.overage.minus(amount).isWithinAccountRange()
    );
  }

  private requireInRange(amount: Amount, fromAccount: AccountName, toAccount: AccountName): void {
    const after = (account: AccountName, delta: Amount): Amount => {
      if (account.startsWith('grant:') || account.startsWith('held:')) {
        const isHeld = account.startsWith('held:');
        const grant = this.requireGrant(account.slice(isHeld ? 5 : 6));
        return (isHeld ? grant.held : grant.available).plus(delta);
      }
      return this.accounts[account as keyof CustomerAccounts].plus(delta);
    };
    const fromAfter = after(fromAccount, amount.negated());
    const toAfter = after(toAccount, amount);
    if (
      !amount.isWithinAccountRange() ||
      !fromAfter.isWithinAccountRange() ||
      !toAfter.isWithinAccountRange()
    ) {
      const account = !fromAfter.isWithinAccountRange() ? fromAccount : toAccount;
      throw amountOutOfRange(`this write of ${amount.toString()} credits`, {
        customer_id: this.customerId,
        credit_type: this.creditType,
        account,
      });
    }
  }

  private applyToAccount(account: AccountName, delta: Amount): void {
    if (account.startsWith('grant:') || account.startsWith('held:')) {
      const isHeld = account.startsWith('held:');
      const grant = this.mutableGrant(account.slice(isHeld ? 5 : 6));
      const hadCredits = grant.available.isPositive() || grant.held.isPositive();
      if (isHeld) grant.held = grant.held.plus(delta);
      else grant.available = grant.available.plus(delta);
      this.grantChanged(
        grant,
        hadCredits !== (grant.available.isPositive() || grant.held.isPositive()) ? 'reshaped' : 'amounts',
      );
      return;
    }
    const name = account as keyof CustomerAccounts;
    this.accounts[name] = this.accounts[name].plus(delta);
  }

  /**
   * The engine's cheap invariants, checked on the grant an entry just moved (both sides of every
   * entry pass here, so every balance change is covered): neither of its parts below zero, and
   * together never more than it was granted. A violation is a bug, never a refusal: it throws
   * {@link InvariantViolation} (a 500) and the caller's transaction rolls back whole.
   */
  private assertGrantBalances(account: AccountName, type: EntryType): void {
    const isHeld = account.startsWith('held:');
    if (!isHeld && !account.startsWith('grant:')) return;
    const grant = this.requireGrant(account.slice(isHeld ? 5 : 6));
    if (grant.available.isNegative() || grant.held.isNegative()) {
      invariantViolated(
        `grant ${grant.id} would have available ${grant.available.toString()} and held ${grant.held.toString()} after a ${type} entry`,
      );
    }
    if (grant.available.plus(grant.held).greaterThan(grant.amount)) {
      invariantViolated(
        `grant ${grant.id} would hold ${grant.available.plus(grant.held).toString()} of its ${grant.amount.toString()} after a ${type} entry`,
      );
    }
  }

  private requireGrant(grantId: string): GrantSnapshot {
    const grant = this.grants.get(grantId);
    if (!grant) throw new Error(`ledger invariant: grant ${grantId} is not loaded`);
    return grant;
  }
}

function addTo(map: Map<string, Amount>, key: string, amount: Amount): void {
  map.set(key, (map.get(key) ?? Amount.ZERO).plus(amount));
}

/**
 * A broken engine invariant (a bug, not a refusal): answered as a 500, and because it is thrown
 * before the write is persisted, the transaction that carried it rolls back whole.
 */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

function invariantViolated(what: string): never {
  throw new InvariantViolation(`ledger invariant violated: ${what}`);
}

function dueId(event: DueEvent<GrantSnapshot, HoldSnapshot>): string {
  return event.order === 0 ? event.hold.id : event.grant.id;
}
