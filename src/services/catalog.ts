import type { Allowance, CreditPack, Entitlement, Feature, PlanVersion } from '../domain/catalog/catalog.js';
import { BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { ReadOperations, WriteOperations } from '../ports/storage.js';
import { requireCreditType } from './lookups.js';
import { allowanceKey } from './subscriptions.js';

function alreadyExists(kind: string, id: string): BurndownError {
  return new BurndownError(ErrorCode.alreadyExists, `${kind} "${id}" already exists`, { kind, id });
}

/** A feature's references must exist: its credit type and every rate (priced in that credit type). */
async function checkFeatureReferences(tx: WriteOperations, feature: Feature): Promise<void> {
  await requireCreditType(tx, feature.workspaceId, feature.creditType);
  for (const rateId of feature.rateIds) {
    const rate = await tx.getRate(feature.workspaceId, rateId);
    if (!rate) throw notFound('rate', rateId);
    if (rate.creditType !== feature.creditType) {
      throw invalidRequest(
        `rate "${rateId}" prices in ${rate.creditType}, the feature in ${feature.creditType}`,
        {
          field: 'rate_ids',
        },
      );
    }
  }
  // A burn by a rate is attributed to one feature (its applies_to grants, its usage limit).
  const others = feature.rateIds.length === 0 ? [] : await tx.plans.allFeatures(feature.workspaceId);
  for (const rateId of feature.rateIds) {
    const owner = others.find((f) => f.id !== feature.id && f.rateIds.includes(rateId));
    if (owner) {
      throw invalidRequest(`rate "${rateId}" already prices feature "${owner.id}"`, {
        field: 'rate_ids',
        feature_id: owner.id,
      });
    }
  }
}

/** The fields a client sets on a feature (create and replace). */
export type FeatureInput = Pick<
  Feature,
  'id' | 'type' | 'name' | 'creditType' | 'rateIds' | 'creditsPerUse' | 'metadata'
>;

function checkFeatureShape(input: FeatureInput): void {
  if (input.type !== 'metered' && (input.rateIds.length > 0 || input.creditsPerUse !== null)) {
    throw invalidRequest('only a metered feature is priced (rate_ids, credits_per_use)', { field: 'type' });
  }
  if (input.rateIds.length > 0 && input.creditsPerUse !== null) {
    throw invalidRequest('a feature is priced by rate_ids or by credits_per_use, not both', {
      field: 'credits_per_use',
    });
  }
}

/** Creates a feature; an existing id is a 409. */
export async function createFeature(
  tx: WriteOperations,
  workspaceId: string,
  input: FeatureInput,
  now: Instant,
): Promise<Feature> {
  checkFeatureShape(input);
  const feature: Feature = { ...input, workspaceId, createdAt: now, updatedAt: now, archivedAt: null };
  await checkFeatureReferences(tx, feature);
  if (!(await tx.plans.insertFeature(feature))) throw alreadyExists('feature', input.id);
  return feature;
}

/** Replaces a feature's definition (its type cannot change: plans and grants rely on it). */
export async function updateFeature(
  tx: WriteOperations,
  workspaceId: string,
  input: FeatureInput,
  now: Instant,
): Promise<Feature> {
  const existing = await tx.plans.getFeature(workspaceId, input.id);
  if (!existing) throw notFound('feature', input.id);
  if (existing.type !== input.type) {
    throw invalidRequest(`a feature's type cannot change (it is ${existing.type})`, { field: 'type' });
  }
  checkFeatureShape(input);
  const feature: Feature = { ...existing, ...input, workspaceId, updatedAt: now };
  await checkFeatureReferences(tx, feature);
  await tx.plans.updateFeature(feature);
  return feature;
}

/** Archives a feature: kept for history, it entitles nobody from now on (checks say `no_entitlement`). */
export async function archiveFeature(
  tx: WriteOperations,
  workspaceId: string,
  id: string,
  now: Instant,
): Promise<Feature> {
  const existing = await tx.plans.getFeature(workspaceId, id);
  if (!existing) throw notFound('feature', id);
  if (existing.archivedAt !== null) return existing;
  const feature: Feature = { ...existing, archivedAt: now, updatedAt: now };
  await tx.plans.updateFeature(feature);
  return feature;
}

/** The fields a client sets on a plan; each create or edit stores them as a new immutable version. */
export type PlanInput = Omit<PlanVersion, 'workspaceId' | 'version' | 'createdAt'>;

async function checkPlanReferences(tx: WriteOperations, workspaceId: string, plan: PlanInput): Promise<void> {
  const seen = new Set<string>();
  for (const [i, e] of plan.entitlements.entries()) {
    if (seen.has(e.featureId)) {
      throw invalidRequest(`feature "${e.featureId}" is listed twice`, {
        field: `entitlements[${i}].feature_id`,
      });
    }
    seen.add(e.featureId);
    const feature = await tx.plans.getFeature(workspaceId, e.featureId);
    if (!feature) throw notFound('feature', e.featureId);
    checkEntitlementFits(e, feature, i);
  }
  const keys = new Set<string>();
  for (const [i, a] of plan.allowances.entries()) {
    const key = allowanceKey(a);
    if (keys.has(key)) {
      throw invalidRequest('two allowances have the same credit type, period and applies_to: combine them', {
        field: `allowances[${i}]`,
      });
    }
    keys.add(key);
    await requireCreditType(tx, workspaceId, a.creditType);
    await checkAllowanceFeatures(tx, workspaceId, a, i);
  }
}

function checkEntitlementFits(e: Entitlement, feature: Feature, i: number): void {
  if (feature.archivedAt !== null) {
    throw invalidRequest(`feature "${feature.id}" is archived`, { field: `entitlements[${i}].feature_id` });
  }
  if (feature.type !== 'metered' && (e.usageLimit !== null || e.overage !== null)) {
    throw invalidRequest(
      `usage_limit and overage apply to metered features; "${feature.id}" is ${feature.type}`,
      {
        field: `entitlements[${i}]`,
      },
    );
  }
  if (feature.type !== 'config' && e.config !== null) {
    throw invalidRequest(`config applies to config features; "${feature.id}" is ${feature.type}`, {
      field: `entitlements[${i}].config`,
    });
  }
}

async function checkAllowanceFeatures(tx: WriteOperations, workspaceId: string, a: Allowance, i: number) {
  await requireApplicableFeatures(tx, workspaceId, a.appliesTo, `allowances[${i}].applies_to`);
}

/**
 * An `applies_to` list must name features that exist (404 otherwise, like any unknown reference)
 * and are not archived: credits restricted to a feature nobody can use would be dead on arrival.
 */
export async function requireApplicableFeatures(
  reads: ReadOperations,
  workspaceId: string,
  featureIds: readonly string[] | null,
  field: string,
): Promise<void> {
  for (const featureId of featureIds ?? []) {
    const feature = await reads.plans.getFeature(workspaceId, featureId);
    if (!feature) throw notFound('feature', featureId);
    if (feature.archivedAt !== null) throw invalidRequest(`feature "${featureId}" is archived`, { field });
  }
}

/** Creates a plan at version 1; an existing id is a 409 (edit it with PUT to make a new version). */
export async function createPlan(
  tx: WriteOperations,
  workspaceId: string,
  input: PlanInput,
  now: Instant,
): Promise<PlanVersion> {
  await checkPlanReferences(tx, workspaceId, input);
  const plan: PlanVersion = { ...input, workspaceId, version: 1, createdAt: now };
  if (!(await tx.plans.insertPlanVersion(plan))) throw alreadyExists('plan', input.id);
  return plan;
}

/**
 * Edits a plan by storing the next version; subscriptions stay on the version they have until they
 * are changed to the new one explicitly. Concurrent edits cannot both take the same number: the
 * second insert conflicts and is a 409, to be retried.
 */
export async function updatePlan(
  tx: WriteOperations,
  workspaceId: string,
  input: PlanInput,
  now: Instant,
): Promise<PlanVersion> {
  const latest = await tx.plans.getPlanVersion(workspaceId, input.id, null);
  if (!latest) throw notFound('plan', input.id);
  await checkPlanReferences(tx, workspaceId, input);
  const plan: PlanVersion = { ...input, workspaceId, version: latest.version + 1, createdAt: now };
  if (!(await tx.plans.insertPlanVersion(plan))) {
    throw alreadyExists(`plan version ${plan.version} of`, input.id);
  }
  return plan;
}

/** The fields a client sets on a credit pack. */
export type CreditPackInput = Omit<CreditPack, 'workspaceId' | 'createdAt'>;

/** Creates a credit pack; an existing id is a 409. */
export async function createCreditPack(
  tx: WriteOperations,
  workspaceId: string,
  input: CreditPackInput,
  now: Instant,
): Promise<CreditPack> {
  await requireCreditType(tx, workspaceId, input.creditType);
  const minimums = new Set<number>();
  for (const [i, d] of input.volumeDiscounts.entries()) {
    if (minimums.has(d.minQuantity)) {
      throw invalidRequest('two volume discounts have the same min_quantity', {
        field: `volume_discounts[${i}].min_quantity`,
      });
    }
    minimums.add(d.minQuantity);
  }
  const pack: CreditPack = { ...input, workspaceId, createdAt: now };
  if (!(await tx.plans.insertCreditPack(pack))) throw alreadyExists('credit pack', input.id);
  return pack;
}
