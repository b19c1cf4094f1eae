import type { Amount } from '../domain/amount/amount.js';
import { BurndownError, ErrorCode, notFound } from '../domain/errors.js';
import {
  type BreakagePolicy,
  type BreakagePolicyName,
  DEFAULT_BREAKAGE_POLICY,
  isValidBreakageRate,
} from '../domain/revenue/recognition.js';
import type { RevenuePolicies } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { auditedChange, command } from './unit-of-work.js';

/** The lock of a workspace's revenue settings (rare edits; one at a time). */
const revenueSettingsLockKey = (workspaceId: string) => `${workspaceId}/#revenue-settings`;

/**
 * A breakage policy from its parts, refusing a rate outside [0, 1) (`proportional` needs one;
 * `at_expiry` keeps 0).
 */
export function readBreakagePolicy(policy: BreakagePolicyName, rate: Amount | null): BreakagePolicy {
  if (policy === 'at_expiry') {
    if (rate !== null && !rate.isZero()) {
      throw new BurndownError(
        ErrorCode.invalidRequest,
        'expected_breakage_rate applies to the proportional policy only',
        { field: 'expected_breakage_rate' },
      );
    }
    return DEFAULT_BREAKAGE_POLICY;
  }
  if (rate === null || !isValidBreakageRate(rate)) {
    throw new BurndownError(
      ErrorCode.invalidRequest,
      'expected_breakage_rate must be a decimal from 0 up to (not including) 1',
      { field: 'expected_breakage_rate' },
    );
  }
  return { policy, expectedBreakageRate: rate };
}

/** The workspace's breakage policies: its default (`at_expiry` unless set) and per-pack overrides. */
export async function getRevenuePolicies(
  ctx: ServiceContext,
  workspaceId: string,
): Promise<{ readonly workspaceDefault: BreakagePolicy; readonly byPack: RevenuePolicies['byPack'] }> {
  const stored = await ctx.storage.read.finance.revenuePolicies(workspaceId);
  return { workspaceDefault: stored.workspaceDefault ?? DEFAULT_BREAKAGE_POLICY, byPack: stored.byPack };
}

/** Sets the workspace's default breakage policy. */
export const setWorkspaceRevenuePolicyCommand = (input: { workspaceId: string; policy: BreakagePolicy }) =>
  auditedChange(
    command(revenueSettingsLockKey(input.workspaceId), async (tx, now) => {
      await tx.finance.putRevenuePolicy(input.workspaceId, null, input.policy, now);
      return { policy: input.policy };
    }),
    async (tx) => (await tx.finance.revenuePolicies(input.workspaceId)).workspaceDefault,
    (value, before) => ({
      workspaceId: input.workspaceId,
      action: 'revenue_policy.updated',
      targetType: 'workspace',
      targetId: input.workspaceId,
      before,
      after: value.policy,
    }),
  );

/** Overrides (or, with a null policy, stops overriding) the breakage policy of one credit pack (404 if unknown). */
export const setPackRevenuePolicyCommand = (input: {
  workspaceId: string;
  packId: string;
  policy: BreakagePolicy | null;
}) =>
  auditedChange(
    command(revenueSettingsLockKey(input.workspaceId), async (tx, now) => {
      if (!(await tx.plans.getCreditPack(input.workspaceId, input.packId))) {
        throw notFound('credit pack', input.packId);
      }
      await tx.finance.putRevenuePolicy(input.workspaceId, input.packId, input.policy, now);
      return { policy: input.policy };
    }),
    async (tx) => (await tx.finance.revenuePolicies(input.workspaceId)).byPack.get(input.packId) ?? null,
    (value, before) => ({
      workspaceId: input.workspaceId,
      action:
        value.policy === null ? 'credit_pack_revenue_policy.deleted' : 'credit_pack_revenue_policy.updated',
      targetType: 'credit_pack',
      targetId: input.packId,
      before,
      after: value.policy,
    }),
  );
