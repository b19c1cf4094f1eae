import { invalidRequest, notFound } from '../domain/errors.js';
import type { NewGrant } from '../domain/ledger/credit-ledger.js';
import { extend } from '../domain/objects.js';
import type { Instant } from '../domain/time/instant.js';
import type { ApiKeyRecord, LedgerKey, WriteHints, WriteOperations } from '../ports/storage.js';
import { createApiKey, requireKeyStillActive } from './api-keys.js';
import type { AuditMessage } from './audit.js';
import {
  archiveFeature,
  createCreditPack,
  createFeature,
  createPlan,
  updateFeature,
  updatePlan,
} from './catalog.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { reverseDebit, reverseEvent } from './corrections.js';
import { createCreditType, createCustomer, updateCustomer } from './customers.js';
import { checkAndHold } from './entitlements.js';
import { captureHold, debitCredits, grantCredits, placeHold, releaseHold, voidGrant } from './ledger.js';
import { createMeter, createRate } from './metering.js';
import { permissionsOf, scopeCovering, validatePermissions } from './permissions.js';
import { purchaseCreditPacks, removeAutoTopUp, setAutoTopUp } from './purchases.js';
import { cancelSubscription, changeSubscription, startSubscription } from './subscriptions.js';
import { audited, auditedChange, command, type WriteCommand } from './unit-of-work.js';
import { createWorkspace } from './workspaces.js';

/** An audit message for a change of one target (the unit of work adds who, when and the chain). */
function change(
  workspaceId: string,
  action: string,
  targetType: string,
  targetId: string,
  before: unknown,
  after: unknown,
): AuditMessage {
  return { workspaceId, action, targetType, targetId, before, after };
}

/**
 * The write use cases as commands for the unit of work (src/services/unit-of-work.ts): each
 * names the lock it needs (a customer, a workspace's catalog, meters or keys) and runs its use case
 * under it. The transport parses a request, builds one command here, runs it and presents its
 * value; it never chooses a lock or sees a transaction.
 */

type Input<F extends (ctx: ServiceContext, tx: WriteOperations, input: never) => unknown> = Omit<
  Parameters<F>[2],
  'now'
>;

/** The workspace's catalogue lock (features, plans, packs): edits are rare and need no finer serialisation. */
export const catalogLockKey = (workspaceId: string) => `${workspaceId}/#catalog`;
const meterLockKey = (workspaceId: string) => `${workspaceId}/#meters`;
const apiKeyLockKey = (workspaceId: string) => `${workspaceId}/api-keys`;

// Customers and credit types

export const createCustomerCommand = (input: Omit<Parameters<typeof createCustomer>[1], 'now'>) =>
  command(customerLockKey(input.workspaceId, input.id), async (tx, now) =>
    createCustomer(tx, extend(input, { now })),
  );

export const updateCustomerCommand = (input: Parameters<typeof updateCustomer>[1]) =>
  auditedChange(
    command(customerLockKey(input.workspaceId, input.id), async (tx) => updateCustomer(tx, input)),
    async (tx) => tx.loadCustomerForUpdate(input.workspaceId, input.id),
    (after, before) => change(input.workspaceId, 'customer.updated', 'customer', input.id, before, after),
  );

export const createCreditTypeCommand = (input: Omit<Parameters<typeof createCreditType>[1], 'now'>) =>
  audited(
    command(`${input.workspaceId}/credit-types`, async (tx, now) =>
      createCreditType(tx, extend(input, { now })),
    ),
    (created) => change(input.workspaceId, 'credit_type.created', 'credit_type', created.id, null, created),
  );

// The ledger

/** Grants credits; a grant with no `effectiveAt` is effective at the instant the write runs. */
export const grantCommand = (
  ctx: ServiceContext,
  input: { key: LedgerKey; grant: Omit<NewGrant, 'effectiveAt'> & { effectiveAt: Instant | null } },
) =>
  audited(
    command(
      customerLockKey(input.key.workspaceId, input.key.customerId),
      async (tx, now) =>
        grantCredits(ctx, tx, {
          key: input.key,
          grant: extend(input.grant, { effectiveAt: input.grant.effectiveAt ?? now }),
          now,
        }),
      { prefetch: input.key },
    ),
    ({ grant }) => change(input.key.workspaceId, 'grant.created', 'grant', grant.id, null, grant),
  );

/**
 * A debit. A manual one (`manual: true`: an operator's adjustment, not usage) is an administrative
 * change and is recorded in the audit log as `debit.created`; usage debits are not (each is an
 * immutable ledger entry already, and the chain's per-workspace lock would serialise the usage path).
 */
export const debitCommand = (
  ctx: ServiceContext,
  input: Input<typeof debitCredits> & { readonly manual?: boolean },
) => {
  const manual = input.manual ?? false;
  const plain = command(
    customerLockKey(input.key.workspaceId, input.key.customerId),
    // A literal, not `{ ...rest, now }`: a property added after a spread gives each object a map
    // of its own, and every read of the debit's input missed V8's inline caches (see extend()).
    async (tx, now) =>
      debitCredits(ctx, tx, {
        key: input.key,
        amount: input.amount,
        allowOverage: input.allowOverage,
        description: input.description,
        metadata: input.metadata,
        featureId: input.featureId ?? null,
        quantity: input.quantity ?? null,
        now,
      }),
    { prefetch: input.key },
  );
  if (!manual) return plain;
  return audited(plain, (done) =>
    change(
      input.key.workspaceId,
      'debit.created',
      'debit',
      done.debit.id,
      null,
      extend(done.debit, { manual: true }),
    ),
  );
};

export const placeHoldCommand = (ctx: ServiceContext, input: Input<typeof placeHold>) =>
  command(
    customerLockKey(input.key.workspaceId, input.key.customerId),
    async (tx, now) => placeHold(ctx, tx, extend(input, { now })),
    { prefetch: input.key },
  );

/**
 * A hold's writes lock its customer; the hold is looked up first to find it (404 when unknown),
 * which also names the ledger the write loads first.
 */
async function holdLock(
  ctx: ServiceContext,
  workspaceId: string,
  holdId: string,
): Promise<{ lockKey: string; hints: WriteHints }> {
  const hold = await ctx.storage.read.getHold(workspaceId, holdId);
  if (!hold) throw notFound('hold', holdId);
  return {
    lockKey: customerLockKey(workspaceId, hold.customerId),
    hints: { prefetch: { workspaceId, customerId: hold.customerId, creditType: hold.creditType } },
  };
}

export async function captureHoldCommand(ctx: ServiceContext, input: Input<typeof captureHold>) {
  const { lockKey, hints } = await holdLock(ctx, input.workspaceId, input.holdId);
  return command(lockKey, async (tx, now) => captureHold(ctx, tx, extend(input, { now })), hints);
}

export async function releaseHoldCommand(ctx: ServiceContext, input: Input<typeof releaseHold>) {
  const { lockKey, hints } = await holdLock(ctx, input.workspaceId, input.holdId);
  return command(lockKey, async (tx, now) => releaseHold(ctx, tx, extend(input, { now })), hints);
}

export async function voidGrantCommand(ctx: ServiceContext, input: Input<typeof voidGrant>) {
  const grant = await ctx.storage.read.getGrant(input.workspaceId, input.grantId);
  if (!grant) throw notFound('grant', input.grantId);
  return auditedChange(
    command(customerLockKey(input.workspaceId, grant.customerId), async (tx, now) =>
      voidGrant(ctx, tx, extend(input, { now })),
    ),
    async (tx) => tx.getGrant(input.workspaceId, input.grantId),
    (after, before) => change(input.workspaceId, 'grant.voided', 'grant', input.grantId, before, after),
  );
}

export const checkAndHoldCommand = (ctx: ServiceContext, input: Input<typeof checkAndHold>) =>
  command(customerLockKey(input.workspaceId, input.customerId), async (tx, now) =>
    checkAndHold(ctx, tx, extend(input, { now })),
  );

// Corrections

export async function reverseDebitCommand(ctx: ServiceContext, input: Input<typeof reverseDebit>) {
  const stored = await ctx.storage.read.getDebit(input.workspaceId, input.debitId);
  if (!stored) throw notFound('debit', input.debitId);
  return audited(
    command(customerLockKey(input.workspaceId, stored.debit.customerId), async (tx, now) =>
      reverseDebit(ctx, tx, extend(input, { now })),
    ),
    ({ reversal }) =>
      change(input.workspaceId, 'debit.reversed', 'debit', input.debitId, null, {
        reversal,
        reason: input.reason,
      }),
  );
}

/** `eventId` is the id the client named (what a 404 reports). */
export async function reverseEventCommand(
  ctx: ServiceContext,
  input: Input<typeof reverseEvent>,
  eventId: string,
) {
  const stored = await ctx.storage.read.getEvent(input.workspaceId, input.eventKey);
  if (!stored) throw notFound('event', eventId);
  return audited(
    command(customerLockKey(input.workspaceId, stored.customerId), async (tx, now) =>
      reverseEvent(ctx, tx, extend(input, { now })),
    ),
    ({ reversals }) =>
      change(input.workspaceId, 'event.reversed', 'event', eventId, null, {
        reversals,
        reason: input.reason,
      }),
  );
}

// Plans, subscriptions and packs

export const createFeatureCommand = (workspaceId: string, input: Parameters<typeof createFeature>[2]) =>
  audited(
    command(catalogLockKey(workspaceId), async (tx, now) => createFeature(tx, workspaceId, input, now)),
    (feature) => change(workspaceId, 'feature.created', 'feature', feature.id, null, feature),
  );

export const updateFeatureCommand = (workspaceId: string, input: Parameters<typeof updateFeature>[2]) =>
  auditedChange(
    command(catalogLockKey(workspaceId), async (tx, now) => updateFeature(tx, workspaceId, input, now)),
    async (tx) => tx.plans.getFeature(workspaceId, input.id),
    (feature, before) => change(workspaceId, 'feature.updated', 'feature', feature.id, before, feature),
  );

export const archiveFeatureCommand = (workspaceId: string, id: string) =>
  auditedChange(
    command(catalogLockKey(workspaceId), async (tx, now) => archiveFeature(tx, workspaceId, id, now)),
    async (tx) => tx.plans.getFeature(workspaceId, id),
    (feature, before) => change(workspaceId, 'feature.archived', 'feature', id, before, feature),
  );

export const createPlanCommand = (workspaceId: string, input: Parameters<typeof createPlan>[2]) =>
  audited(
    command(catalogLockKey(workspaceId), async (tx, now) => createPlan(tx, workspaceId, input, now)),
    (plan) => change(workspaceId, 'plan.created', 'plan', plan.id, null, plan),
  );

export const updatePlanCommand = (workspaceId: string, input: Parameters<typeof updatePlan>[2]) =>
  auditedChange(
    command(catalogLockKey(workspaceId), async (tx, now) => updatePlan(tx, workspaceId, input, now)),
    async (tx) => tx.plans.getPlanVersion(workspaceId, input.id, null),
    (plan, before) => change(workspaceId, 'plan.updated', 'plan', plan.id, before, plan),
  );

export const createCreditPackCommand = (workspaceId: string, input: Parameters<typeof createCreditPack>[2]) =>
  audited(
    command(catalogLockKey(workspaceId), async (tx, now) => createCreditPack(tx, workspaceId, input, now)),
    (pack) => change(workspaceId, 'credit_pack.created', 'credit_pack', pack.id, null, pack),
  );

export const startSubscriptionCommand = (ctx: ServiceContext, input: Input<typeof startSubscription>) =>
  audited(
    command(customerLockKey(input.workspaceId, input.customerId), async (tx, now) =>
      startSubscription(ctx, tx, extend(input, { now })),
    ),
    (started) =>
      change(
        input.workspaceId,
        'subscription.started',
        'subscription',
        started.subscription.id,
        null,
        started.subscription,
      ),
  );

/** Subscription writes lock the customer; the subscription is looked up first to find it. */
async function subscriptionLockKey(ctx: ServiceContext, workspaceId: string, id: string): Promise<string> {
  const sub = await ctx.storage.read.plans.getSubscription(workspaceId, id);
  if (!sub) throw notFound('subscription', id);
  return customerLockKey(workspaceId, sub.customerId);
}

export async function cancelSubscriptionCommand(
  ctx: ServiceContext,
  input: Input<typeof cancelSubscription>,
) {
  return auditedChange(
    command(await subscriptionLockKey(ctx, input.workspaceId, input.subscriptionId), async (tx, now) =>
      cancelSubscription(ctx, tx, extend(input, { now })),
    ),
    async (tx) => tx.plans.getSubscription(input.workspaceId, input.subscriptionId),
    ({ subscription }, before) =>
      change(
        input.workspaceId,
        'subscription.canceled',
        'subscription',
        subscription.id,
        before,
        subscription,
      ),
  );
}

export async function changeSubscriptionCommand(
  ctx: ServiceContext,
  input: Input<typeof changeSubscription>,
) {
  return auditedChange(
    command(await subscriptionLockKey(ctx, input.workspaceId, input.subscriptionId), async (tx, now) =>
      changeSubscription(ctx, tx, extend(input, { now })),
    ),
    async (tx) => tx.plans.getSubscription(input.workspaceId, input.subscriptionId),
    (changed, before) =>
      change(
        input.workspaceId,
        'subscription.changed',
        'subscription',
        input.subscriptionId,
        before,
        changed,
      ),
  );
}

export const purchaseCommand = (ctx: ServiceContext, input: Input<typeof purchaseCreditPacks>) =>
  audited(
    command(customerLockKey(input.workspaceId, input.customerId), async (tx, now) =>
      purchaseCreditPacks(ctx, tx, extend(input, { now })),
    ),
    ({ purchase, grant }) =>
      change(input.workspaceId, 'purchase.created', 'purchase', purchase.id, null, { purchase, grant }),
  );

export const setAutoTopUpCommand = (input: Omit<Parameters<typeof setAutoTopUp>[1], 'now'>) =>
  auditedChange(
    command(customerLockKey(input.workspaceId, input.customerId), async (tx, now) =>
      setAutoTopUp(tx, extend(input, { now })),
    ),
    async (tx) => tx.plans.getAutoTopUp(input.workspaceId, input.customerId),
    (rule, before) =>
      change(input.workspaceId, 'auto_top_up.set', 'customer', input.customerId, before, rule),
  );

export const removeAutoTopUpCommand = (input: Parameters<typeof removeAutoTopUp>[1]) =>
  auditedChange(
    command(customerLockKey(input.workspaceId, input.customerId), async (tx) => {
      await removeAutoTopUp(tx, input);
      return { removed: true };
    }),
    async (tx) => tx.plans.getAutoTopUp(input.workspaceId, input.customerId),
    (_removed, before) =>
      change(input.workspaceId, 'auto_top_up.removed', 'customer', input.customerId, before, null),
  );

// Metering

export const createMeterCommand = (input: Omit<Parameters<typeof createMeter>[1], 'now'>) =>
  audited(
    command(meterLockKey(input.workspaceId), async (tx, now) => createMeter(tx, extend(input, { now }))),
    (meter) => change(input.workspaceId, 'meter.created', 'meter', input.id, null, meter),
  );

export const createRateCommand = (input: Omit<Parameters<typeof createRate>[1], 'now'>) =>
  audited(
    command(meterLockKey(input.workspaceId), async (tx, now) => createRate(tx, extend(input, { now }))),
    (rate) => change(input.workspaceId, 'rate.created', 'rate', input.id, null, rate),
  );

// API keys

/** An API key as the audit log shows it: never the key, never its hash. */
function keyForAudit(record: ApiKeyRecord) {
  const { lastUsedAt: _lastUsed, ...rest } = record;
  return rest;
}

/**
 * Creates an API key. The caller's key may have been revoked since it was authenticated (from the
 * cache): it is read again under the workspace's api-keys lock, serialised with revocations.
 * Explicit permissions must be held by the caller's key (a key cannot mint a stronger one).
 */
export const createApiKeyCommand = (
  ctx: ServiceContext,
  callerKeyHash: string,
  input: Omit<Parameters<typeof createApiKey>[2], 'now' | 'permissions'> & {
    readonly permissions: readonly string[] | null;
  },
) =>
  audited(
    command(apiKeyLockKey(input.workspaceId), async (tx, now) => {
      const caller = await requireKeyStillActive(tx, callerKeyHash, now);
      const permissions =
        input.permissions === null ? null : validatePermissions(input.permissions, permissionsOf(caller));
      if (input.expiresAt != null && input.expiresAt <= now) {
        throw invalidRequest('expires_at must be in the future', { field: 'expires_at' });
      }
      return createApiKey(
        ctx,
        tx,
        extend(input, {
          scope: permissions === null ? input.scope : scopeCovering(permissions),
          permissions,
          now,
        }),
      );
    }),
    ({ record }) =>
      change(input.workspaceId, 'api_key.created', 'api_key', record.id, null, keyForAudit(record)),
  );

/** Revokes an active key of the workspace (404 when it has no such active key). */
export const revokeApiKeyCommand = (
  workspaceId: string,
  callerKeyHash: string,
  keyId: string,
): WriteCommand<ApiKeyRecord> =>
  auditedChange(
    command(apiKeyLockKey(workspaceId), async (tx, now) => {
      await requireKeyStillActive(tx, callerKeyHash, now);
      if (!(await tx.revokeApiKey(workspaceId, keyId, now))) throw notFound('active API key', keyId);
      const revoked = (await tx.listApiKeysOf(workspaceId)).find((k) => k.id === keyId);
      if (!revoked) throw notFound('API key', keyId);
      return revoked;
    }),
    async (tx) => (await tx.listApiKeysOf(workspaceId)).find((k) => k.id === keyId) ?? null,
    (revoked, before) =>
      change(
        workspaceId,
        'api_key.revoked',
        'api_key',
        keyId,
        before && keyForAudit(before),
        keyForAudit(revoked),
      ),
  );

// Workspaces

/**
 * Creates a workspace with its first admin key (returned once). Serialised with other workspace
 * creations; recorded in the new workspace's audit log, with the installation key as the actor.
 */
export const createWorkspaceCommand = (
  ctx: ServiceContext,
  callerKeyHash: string,
  input: Omit<Parameters<typeof createWorkspace>[2], 'now'>,
) =>
  audited(
    command('#workspaces', async (tx, now) => {
      await requireKeyStillActive(tx, callerKeyHash, now);
      return createWorkspace(ctx, tx, extend(input, { now }));
    }),
    ({ workspace, admin }) =>
      change(workspace.id, 'workspace.created', 'workspace', workspace.id, null, {
        workspace,
        first_admin_key: keyForAudit(admin),
      }),
  );
