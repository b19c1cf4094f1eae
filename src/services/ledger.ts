import { Amount } from '../domain/amount/amount.js';
import { BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import { grantStatusAt } from '../domain/ledger/burn-down.js';
import {
  CreditLedger,
  type DebitRecord,
  type GrantNotActive,
  type HoldNotActive,
  type InsufficientCredits,
  type NewGrant,
  type ReversalRefused,
} from '../domain/ledger/credit-ledger.js';
import { accountsAt, balanceFromAccounts } from '../domain/ledger/point-in-time.js';
import type { BalanceView, GrantState, HoldState } from '../domain/ledger/types.js';
import { extend } from '../domain/objects.js';
import type { Instant } from '../domain/time/instant.js';
import type { LedgerKey, ReadOperations, WriteOperations } from '../ports/storage.js';
import { requireApplicableFeatures } from './catalog.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { recordFeatureUsage } from './entitlements.js';
import { LedgerSession } from './ledger-session.js';
import { requireCreditType, requireCustomer } from './lookups.js';
import { appendFacts } from './outbox.js';
import { recordGrantRevenuePolicy } from './revenue.js';
import { forEachConcurrently } from './sweep-concurrency.js';
import { grantVoidedFact } from './webhook-facts.js';

/** A refusal the client can act on, returned as a value (and stored for idempotent replay). */
export type Refusal = InsufficientCredits | HoldNotActive | GrantNotActive | ReversalRefused;

/** Turns a refusal value into the error the transport sends. */
export function refusalError(refusal: Refusal): BurndownError {
  switch (refusal.refused) {
    case 'insufficient_credits':
      return new BurndownError(ErrorCode.insufficientCredits, 'not enough credits available', {
        available: refusal.available.toString(),
        requested: refusal.requested.toString(),
      });
    case 'hold_not_active':
      return new BurndownError(ErrorCode.holdNotActive, `hold is ${refusal.status}, not active`, {
        status: refusal.status,
      });
    case 'grant_not_active':
      return new BurndownError(ErrorCode.grantNotActive, `grant is ${refusal.status}, not active`, {
        status: refusal.status,
      });
    case 'nothing_to_reverse':
      return new BurndownError(ErrorCode.nothingToReverse, 'nothing is left to reverse', {
        reversible: refusal.reversible.toString(),
      });
    case 'reversal_exceeds_burn':
      return new BurndownError(
        ErrorCode.reversalExceedsBurn,
        'the reversal asks for more than is left to reverse',
        {
          reversible: refusal.reversible.toString(),
          requested: refusal.requested?.toString() ?? null,
        },
      );
  }
}

export { customerLockKey };

/**
 * Opens the customer's ledger session for a request that names its customer and credit type (both
 * must exist: 404), and its ledger of that credit type, with everything due up to `now` applied.
 */
export async function openCustomerSession(
  ctx: ServiceContext,
  tx: WriteOperations,
  key: LedgerKey,
  now: Instant,
): Promise<{ session: LedgerSession; ledger: CreditLedger }> {
  await requireCustomer(tx, key.workspaceId, key.customerId);
  await requireCreditType(tx, key.workspaceId, key.creditType);
  return LedgerSession.openWithLedger(ctx, tx, key, now);
}

/** The session and ledger of a hold's or grant's customer and credit type (known to exist). */
async function openSessionOf(
  ctx: ServiceContext,
  tx: WriteOperations,
  key: LedgerKey,
  now: Instant,
): Promise<{ session: LedgerSession; ledger: CreditLedger }> {
  return LedgerSession.openWithLedger(ctx, tx, key, now);
}

/** Grants credits to a customer; a grant pays outstanding overage debt first. */
export async function grantCredits(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { key: LedgerKey; grant: NewGrant; now: Instant },
): Promise<{ grant: GrantState; balance: BalanceView }> {
  const { key, now } = input;
  if (input.grant.expiresAt !== null && input.grant.expiresAt <= input.grant.effectiveAt) {
    throw invalidRequest('expires_at must be after effective_at', { field: 'expires_at' });
  }
  const { session, ledger } = await openCustomerSession(ctx, tx, key, now);
  await requireApplicableFeatures(tx, key.workspaceId, input.grant.appliesTo, 'applies_to');
  const grant = ledger.grant(input.grant, now);
  await recordGrantRevenuePolicy(tx, key.workspaceId, grant, now);
  await session.save();
  return { grant, balance: ledger.balance(now) };
}

/**
 * One burn (a debit or a hold) on a customer's ledger: the feature it names must exist in the
 * ledger's credit type; unless refused, a crossing of the auto top-up threshold buys in the same
 * transaction (a hold takes credits out of `available` like a debit), then everything is persisted.
 */
async function burn<T extends object>(
  ctx: ServiceContext,
  tx: WriteOperations,
  key: LedgerKey,
  featureId: string | null,
  now: Instant,
  act: (ledger: CreditLedger) => T | InsufficientCredits,
): Promise<{ ledger: CreditLedger; outcome: T } | InsufficientCredits> {
  const { session, ledger } = await openCustomerSession(ctx, tx, key, now);
  if (featureId !== null) await requireFeature(tx, key.workspaceId, featureId, key.creditType);
  const outcome = act(ledger);
  if ('refused' in outcome) return outcome;
  session.burned(key.creditType);
  await session.save();
  return { ledger, outcome };
}

/** Debits credits in burn-down order, all or nothing (or with overage when allowed). */
export async function debitCredits(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    key: LedgerKey;
    amount: Amount;
    allowOverage: boolean;
    description: string | null;
    metadata: Record<string, unknown>;
    /** The feature the credits pay for (restricts grants by `applies_to`; counts usage limits). */
    featureId?: string | null;
    /** How much of the feature was used (counted against its usage limit); default 1. */
    quantity?: Amount | null;
    now: Instant;
  },
): Promise<{ debit: DebitRecord; balance: BalanceView } | InsufficientCredits> {
  const { key, now } = input;
  const featureId = input.featureId ?? null;
  const burned = await burn(ctx, tx, key, featureId, now, (ledger) =>
    ledger.debit(
      {
        amount: input.amount,
        allowOverage: input.allowOverage,
        description: input.description,
        metadata: input.metadata,
        featureId,
        quantity: featureId === null ? null : (input.quantity ?? Amount.of('1')),
      },
      now,
    ),
  );
  if ('refused' in burned) return burned;
  const { ledger, outcome } = burned;
  if (featureId !== null) {
    await recordFeatureUsage(ctx, tx, {
      workspaceId: key.workspaceId,
      customerId: key.customerId,
      featureId,
      uses: [{ at: now, quantity: input.quantity ?? Amount.of('1') }],
    });
  }
  return { debit: outcome, balance: ledger.balance(now) };
}

/** A burn may name a feature only if it exists and is priced in the burn's credit type. */
async function requireFeature(
  reads: ReadOperations,
  workspaceId: string,
  featureId: string,
  creditType?: string,
): Promise<void> {
  const feature = await reads.plans.getFeature(workspaceId, featureId);
  if (!feature) throw notFound('feature', featureId);
  if (creditType !== undefined && feature.creditType !== creditType) {
    throw invalidRequest(`feature "${featureId}" is priced in ${feature.creditType}, not ${creditType}`, {
      field: 'feature_id',
    });
  }
}

/** Places a hold that pins grant portions until captured, released or expired. */
export async function placeHold(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    key: LedgerKey;
    amount: Amount;
    ttlMs: number;
    description: string | null;
    metadata: Record<string, unknown>;
    featureId?: string | null;
    now: Instant;
  },
): Promise<{ hold: HoldState; balance: BalanceView } | InsufficientCredits> {
  const { key, now } = input;
  const burned = await burn(ctx, tx, key, input.featureId ?? null, now, (ledger) =>
    ledger.placeHold(extend(input, { expiresAt: now + input.ttlMs }), now),
  );
  if ('refused' in burned) return burned;
  const { ledger, outcome } = burned;
  return { hold: outcome, balance: ledger.balance(now) };
}

async function requireHold(reads: ReadOperations, workspaceId: string, holdId: string): Promise<HoldState> {
  const hold = await reads.getHold(workspaceId, holdId);
  if (!hold) throw notFound('hold', holdId);
  return hold;
}

/**
 * A hold placed by a payment dispute (`charge.dispute.created`) keeps the disputed credits until the
 * dispute closes; releasing or capturing it through the API would let a customer spend credits
 * whose payment is contested, so only the dispute's outcome may end it.
 */
function refuseDisputeHold(hold: HoldState): void {
  const disputeId = hold.metadata['stripe_dispute_id'];
  if (disputeId === undefined) return;
  throw new BurndownError(
    ErrorCode.holdManagedByDispute,
    `hold ${hold.id} keeps credits under payment dispute ${String(disputeId)}; it ends when the dispute closes`,
    { hold_id: hold.id, stripe_dispute_id: disputeId },
  );
}

/** Captures (part of) a hold; see {@link CreditLedger.capture}. */
export async function captureHold(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    holdId: string;
    amount: Amount | null;
    allowOverage: boolean;
    description: string | null;
    metadata: Record<string, unknown> | null;
    now: Instant;
  },
): Promise<{ debit: DebitRecord; balance: BalanceView } | InsufficientCredits | HoldNotActive> {
  const stored = await requireHold(tx, input.workspaceId, input.holdId);
  refuseDisputeHold(stored);
  const key = {
    workspaceId: input.workspaceId,
    customerId: stored.customerId,
    creditType: stored.creditType,
  };
  const { session, ledger } = await openSessionOf(ctx, tx, key, input.now);
  const outcome = ledger.capture(
    {
      holdId: input.holdId,
      amount: input.amount,
      allowOverage: input.allowOverage,
      description: input.description,
      ...(input.metadata ? { metadata: input.metadata } : {}),
    },
    input.now,
  );
  if ('refused' in outcome) {
    // An expired hold is reported as such; persisting its release is left to the next write.
    return outcome.refused === 'hold_not_active'
      ? { refused: outcome.refused, status: statusOf(ledger, stored) }
      : outcome;
  }
  session.burned(key.creditType);
  await session.save();
  return { debit: outcome, balance: ledger.balance(input.now) };
}

/** Releases an active hold. */
export async function releaseHold(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; holdId: string; now: Instant },
): Promise<HoldState | HoldNotActive> {
  const stored = await requireHold(tx, input.workspaceId, input.holdId);
  refuseDisputeHold(stored);
  const key = {
    workspaceId: input.workspaceId,
    customerId: stored.customerId,
    creditType: stored.creditType,
  };
  const { session, ledger } = await openSessionOf(ctx, tx, key, input.now);
  const outcome = ledger.release(input.holdId, input.now);
  if ('refused' in outcome) return { refused: outcome.refused, status: statusOf(ledger, stored) };
  await session.save();
  return outcome;
}

function statusOf(ledger: CreditLedger, stored: HoldState): HoldState['status'] {
  return ledger.holds.get(stored.id)?.status ?? stored.status;
}

/** Voids a grant: its free remainder leaves now; pinned portions stay capturable. */
export async function voidGrant(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; grantId: string; reason: string | null; now: Instant },
): Promise<GrantState | GrantNotActive> {
  const stored = await tx.getGrant(input.workspaceId, input.grantId);
  if (!stored) throw notFound('grant', input.grantId);
  const status = grantStatusAt(stored, input.now);
  if (status === 'expired' || status === 'voided') return { refused: 'grant_not_active', status };
  const key = {
    workspaceId: input.workspaceId,
    customerId: stored.customerId,
    creditType: stored.creditType,
  };
  const { session, ledger } = await openSessionOf(ctx, tx, key, input.now);
  // A depleted grant is not loaded with the ledger (nothing left); it can still be voided.
  ledger.adoptGrant(stored);
  const freeBefore = ledger.grants.get(stored.id)?.available ?? stored.available;
  const amountVoided = freeBefore.toString();
  const outcome = ledger.voidGrant(input.grantId, input.now);
  if ('refused' in outcome) return outcome;
  await session.save();
  await appendFacts(ctx, tx, input.now, [
    grantVoidedFact(input.workspaceId, outcome, amountVoided, input.reason, input.now),
  ]);
  return outcome;
}

/** Writes everything due up to now for one ledger (expiries, hold releases, activations). */
export async function settleDue(ctx: ServiceContext, key: LedgerKey): Promise<void> {
  await ctx.storage.write(customerLockKey(key.workspaceId, key.customerId), async (tx) => {
    const { session } = await openSessionOf(ctx, tx, key, ctx.clock.now());
    await session.save();
  });
}

/**
 * The balance now, or as it was at a past instant. "Now" is computed from the cached state with
 * due expiries applied in memory (no write needed); a past instant first records what is due,
 * then sums that customer's entries up to the instant.
 */
export async function readBalance(
  ctx: ServiceContext,
  input: { key: LedgerKey; at: Instant | null; featureId?: string | null },
): Promise<BalanceView> {
  const { key } = input;
  const reads = ctx.storage.read;
  await requireCustomer(reads, key.workspaceId, key.customerId);
  await requireCreditType(reads, key.workspaceId, key.creditType);
  const featureId = input.featureId ?? null;
  if (featureId !== null) await requireFeature(reads, key.workspaceId, featureId);
  const now = ctx.clock.now();
  if (input.at === null || input.at >= now) {
    if (input.at !== null && input.at > now)
      throw invalidRequest('at must not be in the future', { field: 'at' });
    if ((await reads.plans.dueSubscriptionsOf(key.workspaceId, key.customerId, now)).length > 0) {
      await settleDue(ctx, key);
    }
    const ledger = new CreditLedger(await reads.loadLedger(key), ctx.ids);
    ledger.advanceTo(now);
    return ledger.balance(now, featureId ?? undefined);
  }
  if (featureId !== null) {
    throw invalidRequest('feature_id cannot be combined with at (past balances are per credit type)', {
      field: 'feature_id',
    });
  }
  await settleDue(ctx, key);
  return balanceAtFromCheckpoint(ctx, key, input.at);
}

/** A read that summed more entries than this fills the checkpoint gap it fell into (lazy backfill). */
export const BACKFILL_THRESHOLD = 2_000;
/** Entries one backfill step walks, under the customer's lock (so a step stays short). */
export const BACKFILL_BUDGET = 20_000;

/**
 * The balance at a past instant from the latest checkpoint at or before it plus the entries after
 * it (bounded work at any ledger size; see src/storage/sql/checkpoints.ts). Callers have recorded
 * what was due first ({@link settleDue}).
 */
async function balanceAtFromCheckpoint(
  ctx: ServiceContext,
  key: LedgerKey,
  at: Instant,
  knownGrants: Map<string, GrantState> = new Map(),
): Promise<BalanceView> {
  const reads = ctx.storage.read;
  const { start, movements } = await reads.checkpointedEntriesUpTo(key, at);
  if (movements.length > BACKFILL_THRESHOLD) {
    // History older than checkpoints: leave checkpoints behind for the next reads of this range.
    await ctx.storage.write(customerLockKey(key.workspaceId, key.customerId), async (tx) =>
      tx.fillCheckpointGap(key, at, BACKFILL_BUDGET),
    );
  }
  const balances = accountsAt(start, movements, at);
  const grantIds = new Set<string>();
  for (const [account, units] of balances) {
    if (units === 0n) continue;
    const id = account.startsWith('grant:')
      ? account.slice(6)
      : account.startsWith('held:')
        ? account.slice(5)
        : null;
    if (id !== null && !knownGrants.has(id)) grantIds.add(id);
  }
  if (grantIds.size > 0) {
    for (const g of await reads.getGrantsByIds(key.workspaceId, [...grantIds])) knownGrants.set(g.id, g);
  }
  return balanceFromAccounts({
    customerId: key.customerId,
    creditType: key.creditType,
    at,
    balances,
    grants: knownGrants,
  });
}

/** Steps of a balance series, and how many points one series may have. */
export const SERIES_STEPS = { hour: 3_600_000, day: 86_400_000 } as const;
export const MAX_SERIES_POINTS = 1_000;

/**
 * Balances at many instants for a chart (e.g. the dashboard's burn-down: a daily series over a
 * year): `from`, `from + step`, … up to and including `to` (at most {@link MAX_SERIES_POINTS}
 * points, none in the future). What is due is recorded once, then every point is one bounded
 * point-in-time read (a checkpoint plus at most about one checkpoint interval of entries), so a
 * series costs points × one interval, whatever the size of the ledger.
 */
export async function readBalanceSeries(
  ctx: ServiceContext,
  input: { key: LedgerKey; from: Instant; to: Instant; step: keyof typeof SERIES_STEPS },
): Promise<BalanceView[]> {
  const { key, from, to } = input;
  const reads = ctx.storage.read;
  await requireCustomer(reads, key.workspaceId, key.customerId);
  await requireCreditType(reads, key.workspaceId, key.creditType);
  const now = ctx.clock.now();
  if (to < from) throw invalidRequest('to must not be before from', { field: 'to' });
  if (to > now) throw invalidRequest('to must not be in the future', { field: 'to' });
  const step = SERIES_STEPS[input.step];
  const points = Math.floor((to - from) / step) + 1;
  if (points > MAX_SERIES_POINTS) {
    throw invalidRequest(
      `a series has at most ${MAX_SERIES_POINTS} points; narrow from/to or take a longer step`,
      {
        field: 'step',
      },
    );
  }
  await settleDue(ctx, key);
  const series: BalanceView[] = [];
  // Grants are read once for the whole series (their terms do not change; only accounts move).
  const grants = new Map<string, GrantState>();
  for (let i = 0; i < points; i++)
    series.push(await balanceAtFromCheckpoint(ctx, key, from + i * step, grants));
  return series;
}

/** Sweeps ledgers with something due, so expiries appear in the ledger even without traffic. */
export async function sweepDueLedgers(ctx: ServiceContext, limit = 500): Promise<number> {
  const due = await ctx.storage.findDueLedgers(ctx.clock.now(), limit);
  await forEachConcurrently(due, (key) => settleDue(ctx, key));
  return due.length;
}

/** Checks an amount from a client: positive, at most 12 decimals. */
export function requirePositiveAmount(text: string, field: string): Amount {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string') {
    const why =
      parsed === 'too_many_decimals'
        ? 'has more than 12 decimal places'
        : parsed === 'too_large'
          ? 'is too large'
          : 'is not a decimal string';
    throw new BurndownError(ErrorCode.invalidAmount, `${field} ${why}`, { field });
  }
  if (!parsed.isPositive())
    throw new BurndownError(ErrorCode.invalidAmount, `${field} must be greater than 0`, { field });
  return parsed;
}
