import type { Feature, PlanVersion } from '../domain/catalog/catalog.js';
import { notFound } from '../domain/errors.js';
import type { ReversibleDebit } from '../domain/ledger/credit-ledger.js';
import type { GrantState, HoldState } from '../domain/ledger/types.js';
import type { Subscription } from '../domain/plans/subscription.js';
import type {
  EventBurn,
  EventListQuery,
  LedgerKey,
  ListedEvent,
  Page,
  PageRequest,
  ReadOperations,
} from '../ports/storage.js';
import { ApiKeyResolver } from './api-keys.js';
import type { ServiceContext } from './context.js';
import { settleDue } from './ledger.js';
import { requireCreditType, requireCustomer } from './lookups.js';
import { reconcileLedger } from './reconcile.js';
import { readSubscriptions } from './subscriptions.js';

/**
 * The read use cases the transport serves: lookups that 404 on an unknown id and listings of one
 * workspace. They read committed data only (the read connection or pool) and take no lock, except
 * where a read first records what is due (entries, subscriptions).
 */

const reads = (ctx: ServiceContext): ReadOperations => ctx.storage.read;

async function found<T>(value: T | null | Promise<T | null>, kind: string, id: string): Promise<T> {
  const resolved = await value;
  if (resolved === null) throw notFound(kind, id);
  return resolved;
}

// Customers and credit types

export const getCustomer = (ctx: ServiceContext, workspaceId: string, id: string) =>
  requireCustomer(reads(ctx), workspaceId, id);

export const listCustomers = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).listCustomers(workspaceId, page);

export const listCreditTypes = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).listCreditTypes(workspaceId, page);

// Grants, holds and entries

export const getGrant = (ctx: ServiceContext, workspaceId: string, id: string): Promise<GrantState> =>
  found(reads(ctx).getGrant(workspaceId, id), 'grant', id);

export async function listGrants(
  ctx: ServiceContext,
  workspaceId: string,
  customerId: string,
  filter: Omit<Parameters<ReadOperations['listGrants']>[2], 'now'>,
  page: PageRequest,
): Promise<{ page: Page<GrantState>; now: number }> {
  await requireCustomer(reads(ctx), workspaceId, customerId);
  const now = ctx.clock.now();
  return { page: await reads(ctx).listGrants(workspaceId, customerId, { ...filter, now }, page), now };
}

export const getHold = (ctx: ServiceContext, workspaceId: string, id: string): Promise<HoldState> =>
  found(reads(ctx).getHold(workspaceId, id), 'hold', id);

/** A customer's entries; a first page records what is due first, so expiries without traffic show. */
export async function listEntries(
  ctx: ServiceContext,
  key: LedgerKey,
  range: Parameters<ReadOperations['listEntries']>[1],
  page: PageRequest,
) {
  await requireCustomer(reads(ctx), key.workspaceId, key.customerId);
  await requireCreditType(reads(ctx), key.workspaceId, key.creditType);
  if (page.after === null) await settleDue(ctx, key);
  return reads(ctx).listEntries(key, range, page);
}

// Catalogue

export const getFeature = (ctx: ServiceContext, workspaceId: string, id: string): Promise<Feature> =>
  found(reads(ctx).plans.getFeature(workspaceId, id), 'feature', id);

export const listFeatures = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).plans.listFeatures(workspaceId, page);

export const getPlanVersion = (
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
  version: number | null,
): Promise<PlanVersion | null> => Promise.resolve(reads(ctx).plans.getPlanVersion(workspaceId, id, version));

export const listPlans = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).plans.listPlans(workspaceId, page);

export const getCreditPack = (ctx: ServiceContext, workspaceId: string, id: string) =>
  found(reads(ctx).plans.getCreditPack(workspaceId, id), 'credit pack', id);

export const listCreditPacks = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).plans.listCreditPacks(workspaceId, page);

export async function listPurchases(
  ctx: ServiceContext,
  workspaceId: string,
  customerId: string,
  page: PageRequest,
) {
  await requireCustomer(reads(ctx), workspaceId, customerId);
  return reads(ctx).plans.listPurchases(workspaceId, customerId, page);
}

/** A customer's auto top-up rule (null when it has none); 404 for an unknown customer. */
export async function getAutoTopUp(ctx: ServiceContext, workspaceId: string, customerId: string) {
  await requireCustomer(reads(ctx), workspaceId, customerId);
  return reads(ctx).plans.getAutoTopUp(workspaceId, customerId);
}

// Subscriptions

/** A customer's subscriptions as they are now (due changes applied), each with its plan version. */
export async function listSubscriptions(
  ctx: ServiceContext,
  workspaceId: string,
  customerId: string,
  page: PageRequest,
): Promise<{ page: Page<{ subscription: Subscription; plan: PlanVersion }>; now: number }> {
  await requireCustomer(reads(ctx), workspaceId, customerId);
  const now = ctx.clock.now();
  // Ends, changes and resets due are applied first (a customer has a handful of subscriptions).
  await readSubscriptions(ctx, workspaceId, customerId);
  const found = await reads(ctx).plans.listSubscriptions(workspaceId, customerId, page);
  const items = [];
  for (const subscription of found.items) {
    const plan = await reads(ctx).plans.getPlanVersion(
      workspaceId,
      subscription.planId,
      subscription.planVersion,
    );
    if (plan) items.push({ subscription, plan });
  }
  return { page: { items, nextAfter: found.nextAfter }, now };
}

/** One subscription as it is now, with its plan version. */
export async function getSubscription(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
): Promise<{ subscription: Subscription; plan: PlanVersion; now: number }> {
  const stored = await found(reads(ctx).plans.getSubscription(workspaceId, id), 'subscription', id);
  const subscription = (await readSubscriptions(ctx, workspaceId, stored.customerId)).find(
    (s) => s.id === id,
  );
  const plan =
    subscription &&
    (await reads(ctx).plans.getPlanVersion(workspaceId, subscription.planId, subscription.planVersion));
  if (!subscription || !plan) throw notFound('subscription', id);
  return { subscription, plan, now: ctx.clock.now() };
}

// Metering and events

export const listMeters = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).listMeters(workspaceId, page);

export const getMeter = (ctx: ServiceContext, workspaceId: string, id: string) =>
  found(reads(ctx).getMeter(workspaceId, id), 'meter', id);

export const listRates = (ctx: ServiceContext, workspaceId: string, page: PageRequest) =>
  reads(ctx).listRates(workspaceId, page);

export const getRate = (ctx: ServiceContext, workspaceId: string, id: string) =>
  found(reads(ctx).getRate(workspaceId, id), 'rate', id);

/** A page of events with their burns and the debits of those burns (one query each). */
export async function listEvents(
  ctx: ServiceContext,
  query: EventListQuery,
  page: PageRequest,
): Promise<{
  page: Page<ListedEvent>;
  burnsByEvent: Map<string, EventBurn[]>;
  debits: Map<string, ReversibleDebit>;
}> {
  const events = await reads(ctx).listEvents(query, page);
  const burns = await reads(ctx).burnsOfEvents(
    query.workspaceId,
    events.items.map((e) => e.eventKey),
  );
  const burnsByEvent = new Map<string, EventBurn[]>();
  for (const burn of burns)
    burnsByEvent.set(burn.eventKey, [...(burnsByEvent.get(burn.eventKey) ?? []), burn]);
  const debitIds = burns.flatMap((b) => (b.debitId === null ? [] : [b.debitId]));
  const debits = new Map<string, ReversibleDebit>();
  for (const d of await reads(ctx).getDebits(query.workspaceId, debitIds)) debits.set(d.debit.id, d);
  return { page: events, burnsByEvent, debits };
}

// API keys

/** The resolver of API keys for a server (cached by hash, bounded; see {@link ApiKeyResolver}). */
export const apiKeyResolverOf = (ctx: ServiceContext) =>
  new ApiKeyResolver(ctx.storage, () => ctx.clock.now());

// Operations

/** Replays one workspace's ledger and proves its caches (see src/services/reconcile.ts). */
export const reconcileWorkspace = (ctx: ServiceContext, workspaceId: string) =>
  reconcileLedger(ctx.storage, { workspaceId });

export const listApiKeys = (ctx: ServiceContext, workspaceId: string) =>
  reads(ctx).listApiKeysOf(workspaceId);
