import {
  type BalanceThreshold,
  DEFAULT_EXPIRY_NOTICE_LEADS_MS,
  type ThresholdKind,
} from '../domain/alerts/balance-thresholds.js';
import { Amount } from '../domain/amount/amount.js';
import { BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { customerLockKey } from './context.js';
import { requireCreditType, requireCustomer } from './lookups.js';
import { forEachConcurrently } from './sweep-concurrency.js';
import { appendFacts, command } from './unit-of-work.js';

/**
 * Balance thresholds (create, list, read, delete) and the `grant.expiring_soon` sweep. The facts of
 * balance-changing writes are decided in src/services/balance-facts.ts, at persistence.
 */

/** Most thresholds one scope (a customer, or the workspace defaults) may have per credit type. */
export const MAX_THRESHOLDS_PER_SCOPE = 20;

/** What creating a threshold needs (customerId null: a workspace default). */
export interface NewThreshold {
  readonly workspaceId: string;
  readonly customerId: string | null;
  readonly creditType: string;
  readonly kind: ThresholdKind;
  readonly value: Amount;
}

/**
 * Creates a threshold (its value checked by {@link readThresholdValue}). The customer (when named)
 * and the credit type must exist. Seen by every process's next write: thresholds are read in
 * each balance-changing transaction, never cached.
 */
export async function createThreshold(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: NewThreshold,
  now: Instant,
): Promise<BalanceThreshold> {
  if (input.customerId !== null) await requireCustomer(tx, input.workspaceId, input.customerId);
  await requireCreditType(tx, input.workspaceId, input.creditType);
  const existing = await tx.alerts.listThresholds({
    workspaceId: input.workspaceId,
    customerId: input.customerId,
    creditType: input.creditType,
  });
  if (existing.length >= MAX_THRESHOLDS_PER_SCOPE) {
    throw invalidRequest(`at most ${MAX_THRESHOLDS_PER_SCOPE} thresholds per customer and credit type`, {
      field: 'customer_id',
    });
  }
  const threshold: BalanceThreshold = { ...input, id: ctx.ids.newId('thr'), createdAt: now };
  await tx.alerts.insertThreshold(threshold);
  return threshold;
}

/** Deletes a threshold (404 when unknown); its state goes with it. */
export async function deleteThreshold(tx: WriteOperations, workspaceId: string, id: string): Promise<void> {
  if (!(await tx.alerts.deleteThreshold(workspaceId, id))) throw notFound('balance threshold', id);
}

/**
 * Writes `grant.expiring_soon` for open grants whose expiry is within a lead time, once per grant
 * and lead time (a notice row, inserted with the fact in one transaction under the customer's
 * lock, so two sweepers never both write it). Returns how many notices it wrote.
 */
export async function sweepExpiryNotices(
  ctx: ServiceContext,
  leadsMs: readonly number[] = DEFAULT_EXPIRY_NOTICE_LEADS_MS,
  limit = 500,
): Promise<number> {
  const now = ctx.clock.now();
  let written = 0;
  for (const leadMs of leadsMs) {
    const due = await ctx.storage.write('#expiry-notices', async (tx) =>
      tx.alerts.expiringWithoutNotice(now, leadMs, limit),
    );
    await forEachConcurrently(due, async (grant) => {
      const wrote = await ctx.storage.write(
        customerLockKey(grant.workspaceId, grant.customerId),
        async (tx) => {
          if (!(await tx.alerts.recordExpiryNotice(grant.workspaceId, grant.grantId, leadMs, now)))
            return false;
          await appendFacts(ctx, tx, now, [
            {
              workspaceId: grant.workspaceId,
              type: 'grant.expiring_soon',
              customerId: grant.customerId,
              data: {
                customer_id: grant.customerId,
                credit_type: grant.creditType,
                grant_id: grant.grantId,
                expires_at: formatInstant(grant.expiresAt),
                lead_seconds: Math.floor(leadMs / 1000),
                remaining: grant.remaining.toString(),
              },
            },
          ]);
          return true;
        },
      );
      if (wrote) written += 1;
    });
  }
  return written;
}

/**
 * A threshold's value from the API: a decimal string ≥ 0 (an amount of credits, or a percent at
 * most 100), or hours of runway (> 0, at most a leap year). Anything else is `invalid_amount`.
 */
export function readThresholdValue(text: string, kind: ThresholdKind): Amount {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string') {
    throw new BurndownError(
      ErrorCode.invalidAmount,
      'value is not a decimal string with at most 12 decimals',
      {
        field: 'value',
      },
    );
  }
  if (parsed.isNegative()) {
    throw new BurndownError(ErrorCode.invalidAmount, 'value must not be negative', { field: 'value' });
  }
  if (kind === 'runway_hours' && (!parsed.isPositive() || parsed.greaterThan(Amount.of('8784')))) {
    throw new BurndownError(
      ErrorCode.invalidAmount,
      'a runway threshold is more than 0 and at most 8784 hours',
      {
        field: 'value',
      },
    );
  }
  if (kind === 'percent' && parsed.greaterThan(Amount.of('100'))) {
    throw new BurndownError(ErrorCode.invalidAmount, 'a percent threshold is at most 100', {
      field: 'value',
    });
  }
  return parsed;
}

/** Creating a threshold, as a write command (under the lock of its customer, or of the workspace defaults). */
export const createThresholdCommand = (ctx: ServiceContext, input: NewThreshold) =>
  command(thresholdLockKey(input.workspaceId, input.customerId), async (tx, now) =>
    createThreshold(ctx, tx, input, now),
  );

/** Deleting a threshold, as a write command. */
export const deleteThresholdCommand = (input: { workspaceId: string; id: string }) =>
  command(`${input.workspaceId}/#balance-thresholds`, async (tx) => {
    await deleteThreshold(tx, input.workspaceId, input.id);
    return { deleted: true };
  });

function thresholdLockKey(workspaceId: string, customerId: string | null): string {
  return customerId === null
    ? `${workspaceId}/#balance-thresholds`
    : customerLockKey(workspaceId, customerId);
}

/** One threshold (404 when unknown). */
export async function getThreshold(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
): Promise<BalanceThreshold> {
  const threshold = await ctx.storage.read.alerts.getThreshold(workspaceId, id);
  if (!threshold) throw notFound('balance threshold', id);
  return threshold;
}

/** The thresholds of a customer (404 when unknown) or the workspace defaults (customerId null). */
export async function listThresholds(
  ctx: ServiceContext,
  query: { workspaceId: string; customerId: string | null; creditType: string | null },
): Promise<readonly BalanceThreshold[]> {
  const reads = ctx.storage.read;
  if (query.customerId !== null) await requireCustomer(reads, query.workspaceId, query.customerId);
  return reads.alerts.listThresholds(query);
}
