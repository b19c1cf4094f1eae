import { Amount } from '../../domain/amount/amount.js';
import type { CreditPack, Feature, PlanVersion } from '../../domain/catalog/catalog.js';
import type { AutoTopUp, Purchase, Subscription } from '../../domain/plans/subscription.js';
import type { Instant } from '../../domain/time/instant.js';
import type {
  CustomerUpkeep,
  Page,
  PageRequest,
  PlanReadOperations,
  PlanWriteOperations,
} from '../../ports/storage.js';
import {
  autoTopUpFromJson,
  autoTopUpToJson,
  featureFromJson,
  featureToJson,
  packFromJson,
  packToJson,
  planFromJson,
  planToJson,
  purchaseFromJson,
  purchaseToJson,
  type SubscriptionRow,
  subscriptionFromRow,
  subscriptionToJson,
} from '../catalog-rows.js';
import type { SqlExecutor } from './executor.js';
import { afterId, idKey, instantPart, keyParts, pageOf } from './paging.js';

/**
 * The columns of a customer's upkeep facts (parameters: workspace and customer, three times), for
 * {@link PQ.customerUpkeep} and for a dialect that reads them with the ledger in one statement.
 */
export const CUSTOMER_UPKEEP_COLUMNS = `
       (SELECT MIN(next_due_at) FROM subscriptions WHERE workspace_id = ? AND customer_id = ?
          AND next_due_at IS NOT NULL) AS next_due,
       (SELECT body FROM auto_top_ups WHERE workspace_id = ? AND customer_id = ?) AS auto_top_up,
       (SELECT COUNT(*) FROM balance_thresholds WHERE workspace_id = ? AND customer_id IN (?, '')) AS thresholds`;

/** The parameters of {@link CUSTOMER_UPKEEP_COLUMNS}. */
export const customerUpkeepParams = (workspaceId: string, customerId: string) => [
  workspaceId,
  customerId,
  workspaceId,
  customerId,
  workspaceId,
  customerId,
];

/** The columns {@link CUSTOMER_UPKEEP_COLUMNS} read, as a row. */
export interface CustomerUpkeepRow {
  readonly next_due: number | string | null;
  readonly auto_top_up: string | null;
  readonly thresholds: number | string;
}

/** Upkeep facts from their row (no row: assume thresholds may apply, as reading them is safe). */
export function upkeepFactsFromRow(
  workspaceId: string,
  customerId: string,
  row: CustomerUpkeepRow | undefined,
): CustomerUpkeepFacts {
  return {
    balanceThresholds: Number(row?.thresholds ?? 1) > 0,
    nextDueAt: row?.next_due === null || row?.next_due === undefined ? null : Number(row.next_due),
    autoTopUp: row?.auto_top_up ? autoTopUpFromJson(workspaceId, customerId, row.auto_top_up) : null,
  };
}

/** SQL of features, plans, packs, subscriptions, auto top-ups and feature usage (both dialects). */
export const PQ = {
  getFeature: 'SELECT id, body FROM features WHERE workspace_id = ? AND id = ?',
  listFeatures: 'SELECT id, body FROM features WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  allFeatures: 'SELECT id, body FROM features WHERE workspace_id = ? ORDER BY id',
  insertFeature: 'INSERT INTO features (workspace_id, id, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  updateFeature: 'UPDATE features SET body = ? WHERE workspace_id = ? AND id = ?',
  getPlanVersion:
    'SELECT id, version, body FROM plan_versions WHERE workspace_id = ? AND id = ? AND version = ?',
  getLatestPlan:
    'SELECT id, version, body FROM plan_versions WHERE workspace_id = ? AND id = ? ORDER BY version DESC LIMIT 1',
  listLatestPlans: `SELECT p.id, p.version, p.body FROM plan_versions p
     WHERE p.workspace_id = ? AND p.id > ?
       AND p.version = (SELECT MAX(v.version) FROM plan_versions v WHERE v.workspace_id = p.workspace_id AND v.id = p.id)
     ORDER BY p.id LIMIT ?`,
  insertPlanVersion:
    'INSERT INTO plan_versions (workspace_id, id, version, body) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  getPack: 'SELECT id, body FROM credit_packs WHERE workspace_id = ? AND id = ?',
  listPacks: 'SELECT id, body FROM credit_packs WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?',
  insertPack: 'INSERT INTO credit_packs (workspace_id, id, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  getSubscription: 'SELECT * FROM subscriptions WHERE workspace_id = ? AND id = ?',
  subscriptionsOf: 'SELECT * FROM subscriptions WHERE workspace_id = ? AND customer_id = ? ORDER BY id',
  listSubscriptions:
    'SELECT * FROM subscriptions WHERE workspace_id = ? AND customer_id = ? AND id > ? ORDER BY id LIMIT ?',
  dueSubscriptionsOf: `SELECT * FROM subscriptions WHERE workspace_id = ? AND customer_id = ?
     AND next_due_at IS NOT NULL AND next_due_at <= ? ORDER BY id`,
  upsertSubscription: `INSERT INTO subscriptions (workspace_id, id, customer_id, status, next_due_at, body) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, id) DO UPDATE SET status = excluded.status, next_due_at = excluded.next_due_at, body = excluded.body`,
  dueSubscriptions: `SELECT workspace_id, customer_id FROM subscriptions
     WHERE next_due_at IS NOT NULL AND next_due_at <= ?
     GROUP BY workspace_id, customer_id ORDER BY MIN(next_due_at), workspace_id, customer_id LIMIT ?`,
  getAutoTopUp: 'SELECT body FROM auto_top_ups WHERE workspace_id = ? AND customer_id = ?',
  customerUpkeep: `SELECT ${CUSTOMER_UPKEEP_COLUMNS}`,
  deleteAutoTopUp: 'DELETE FROM auto_top_ups WHERE workspace_id = ? AND customer_id = ?',
  putAutoTopUp: `INSERT INTO auto_top_ups (workspace_id, customer_id, body) VALUES (?, ?, ?)
     ON CONFLICT (workspace_id, customer_id) DO UPDATE SET body = excluded.body`,
  getFeatureUsage: `SELECT quantity FROM feature_usage
     WHERE workspace_id = ? AND customer_id = ? AND feature_id = ? AND period_start = ?`,
  setFeatureUsage: `INSERT INTO feature_usage (workspace_id, customer_id, feature_id, period_start, quantity) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (workspace_id, customer_id, feature_id, period_start) DO UPDATE SET quantity = excluded.quantity`,
  insertPurchase:
    'INSERT INTO purchases (workspace_id, id, customer_id, created_at, body) VALUES (?, ?, ?, ?, ?)',
  purchasesOf: `SELECT id, customer_id, body FROM purchases WHERE workspace_id = ? AND customer_id = ?
     AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?`,
} as const;

type IdBody = { id: string; body: string };

/** What {@link PlanReads.customerUpkeep} reads, before it is compared with an instant. */
export interface CustomerUpkeepFacts {
  /** The earliest reset, change or end due among the customer's subscriptions (null: none). */
  readonly nextDueAt: Instant | null;
  readonly autoTopUp: AutoTopUp | null;
  readonly balanceThresholds: boolean;
}

/** The upkeep a write at `now` must do, from the stored facts. */
export function upkeepAt(facts: CustomerUpkeepFacts, now: Instant): CustomerUpkeep {
  return {
    subscriptionsDue: facts.nextDueAt !== null && facts.nextDueAt <= now,
    autoTopUp: facts.autoTopUp,
    balanceThresholds: facts.balanceThresholds,
  };
}

/** Reads of plans and entitlements over one executor. */
export class PlanReads implements PlanReadOperations {
  constructor(protected readonly db: SqlExecutor) {}

  async getFeature(workspaceId: string, id: string): Promise<Feature | null> {
    const row = await this.db.get<IdBody>(PQ.getFeature, [workspaceId, id]);
    return row ? featureFromJson(workspaceId, row.id, row.body) : null;
  }

  async listFeatures(workspaceId: string, page: PageRequest): Promise<Page<Feature>> {
    const rows = await this.db.all<IdBody>(PQ.listFeatures, [workspaceId, afterId(page), page.limit + 1]);
    return pageOf(
      rows.map((r) => featureFromJson(workspaceId, r.id, r.body)),
      page.limit,
      idKey,
    );
  }

  async allFeatures(workspaceId: string): Promise<Feature[]> {
    const rows = await this.db.all<IdBody>(PQ.allFeatures, [workspaceId]);
    return rows.map((r) => featureFromJson(workspaceId, r.id, r.body));
  }

  async getPlanVersion(workspaceId: string, id: string, version: number | null): Promise<PlanVersion | null> {
    const row =
      version === null
        ? await this.db.get<IdBody & { version: number | string }>(PQ.getLatestPlan, [workspaceId, id])
        : await this.db.get<IdBody & { version: number | string }>(PQ.getPlanVersion, [
            workspaceId,
            id,
            version,
          ]);
    return row ? planFromJson(workspaceId, row.id, Number(row.version), row.body) : null;
  }

  async listPlans(workspaceId: string, page: PageRequest): Promise<Page<PlanVersion>> {
    const rows = await this.db.all<IdBody & { version: number | string }>(PQ.listLatestPlans, [
      workspaceId,
      afterId(page),
      page.limit + 1,
    ]);
    return pageOf(
      rows.map((r) => planFromJson(workspaceId, r.id, Number(r.version), r.body)),
      page.limit,
      idKey,
    );
  }

  async getCreditPack(workspaceId: string, id: string): Promise<CreditPack | null> {
    const row = await this.db.get<IdBody>(PQ.getPack, [workspaceId, id]);
    return row ? packFromJson(workspaceId, row.id, row.body) : null;
  }

  async listCreditPacks(workspaceId: string, page: PageRequest): Promise<Page<CreditPack>> {
    const rows = await this.db.all<IdBody>(PQ.listPacks, [workspaceId, afterId(page), page.limit + 1]);
    return pageOf(
      rows.map((r) => packFromJson(workspaceId, r.id, r.body)),
      page.limit,
      idKey,
    );
  }

  async getSubscription(workspaceId: string, id: string): Promise<Subscription | null> {
    const row = await this.db.get<SubscriptionRow>(PQ.getSubscription, [workspaceId, id]);
    return row ? subscriptionFromRow(row) : null;
  }

  async subscriptionsOf(workspaceId: string, customerId: string): Promise<Subscription[]> {
    const rows = await this.db.all<SubscriptionRow>(PQ.subscriptionsOf, [workspaceId, customerId]);
    return rows.map(subscriptionFromRow);
  }

  async listSubscriptions(
    workspaceId: string,
    customerId: string,
    page: PageRequest,
  ): Promise<Page<Subscription>> {
    const rows = await this.db.all<SubscriptionRow>(PQ.listSubscriptions, [
      workspaceId,
      customerId,
      afterId(page),
      page.limit + 1,
    ]);
    return pageOf(rows.map(subscriptionFromRow), page.limit, idKey);
  }

  async dueSubscriptionsOf(workspaceId: string, customerId: string, now: Instant): Promise<Subscription[]> {
    const rows = await this.db.all<SubscriptionRow>(PQ.dueSubscriptionsOf, [workspaceId, customerId, now]);
    return rows.map(subscriptionFromRow);
  }

  async customerUpkeep(workspaceId: string, customerId: string, now: Instant): Promise<CustomerUpkeep> {
    return upkeepAt(await this.customerUpkeepFacts(workspaceId, customerId), now);
  }

  /**
   * The customer's upkeep facts as stored, independent of the instant asked about: a writer that
   * owns its database may keep them until one of the rows they come from changes.
   */
  async customerUpkeepFacts(workspaceId: string, customerId: string): Promise<CustomerUpkeepFacts> {
    const row = await this.db.get<CustomerUpkeepRow>(
      PQ.customerUpkeep,
      customerUpkeepParams(workspaceId, customerId),
    );
    return upkeepFactsFromRow(workspaceId, customerId, row);
  }

  async getAutoTopUp(workspaceId: string, customerId: string): Promise<AutoTopUp | null> {
    const row = await this.db.get<{ body: string }>(PQ.getAutoTopUp, [workspaceId, customerId]);
    return row ? autoTopUpFromJson(workspaceId, customerId, row.body) : null;
  }

  async getFeatureUsage(
    workspaceId: string,
    customerId: string,
    featureId: string,
    periodStart: Instant,
  ): Promise<Amount> {
    const row = await this.db.get<{ quantity: string }>(PQ.getFeatureUsage, [
      workspaceId,
      customerId,
      featureId,
      periodStart,
    ]);
    return row ? Amount.parse(String(row.quantity)) : Amount.ZERO;
  }

  async listPurchases(workspaceId: string, customerId: string, page: PageRequest): Promise<Page<Purchase>> {
    const [createdAt, id = ''] = keyParts(page, 2) ?? [];
    const at = createdAt === undefined ? Number.MIN_SAFE_INTEGER : instantPart(createdAt);
    const rows = await this.db.all<IdBody & { customer_id: string }>(PQ.purchasesOf, [
      workspaceId,
      customerId,
      at,
      at,
      id,
      page.limit + 1,
    ]);
    return pageOf(
      rows.map((r) => purchaseFromJson(workspaceId, r.id, r.customer_id, r.body)),
      page.limit,
      (p) => [String(p.createdAt), p.id],
    );
  }

  async findDueSubscriptions(
    now: Instant,
    limit: number,
  ): Promise<{ workspaceId: string; customerId: string }[]> {
    const rows = await this.db.all<{ workspace_id: string; customer_id: string }>(PQ.dueSubscriptions, [
      now,
      limit,
    ]);
    return rows.map((r) => ({ workspaceId: r.workspace_id, customerId: r.customer_id }));
  }
}

/** Writes of plans and entitlements over one executor (inside the adapter's transaction). */
export class PlanWrites extends PlanReads implements PlanWriteOperations {
  async insertFeature(f: Feature): Promise<boolean> {
    return (await this.db.run(PQ.insertFeature, [f.workspaceId, f.id, featureToJson(f)])) === 1;
  }

  async updateFeature(f: Feature): Promise<void> {
    await this.db.run(PQ.updateFeature, [featureToJson(f), f.workspaceId, f.id]);
  }

  async insertPlanVersion(p: PlanVersion): Promise<boolean> {
    return (await this.db.run(PQ.insertPlanVersion, [p.workspaceId, p.id, p.version, planToJson(p)])) === 1;
  }

  async insertCreditPack(p: CreditPack): Promise<boolean> {
    return (await this.db.run(PQ.insertPack, [p.workspaceId, p.id, packToJson(p)])) === 1;
  }

  async saveSubscription(s: Subscription): Promise<void> {
    await this.db.run(PQ.upsertSubscription, [
      s.workspaceId,
      s.id,
      s.customerId,
      s.status,
      s.nextDueAt,
      subscriptionToJson(s),
    ]);
  }

  async putAutoTopUp(a: AutoTopUp): Promise<void> {
    await this.db.run(PQ.putAutoTopUp, [a.workspaceId, a.customerId, autoTopUpToJson(a)]);
  }

  async deleteAutoTopUp(workspaceId: string, customerId: string): Promise<boolean> {
    return (await this.db.run(PQ.deleteAutoTopUp, [workspaceId, customerId])) === 1;
  }

  async setFeatureUsage(
    workspaceId: string,
    customerId: string,
    featureId: string,
    periodStart: Instant,
    quantity: Amount,
  ): Promise<void> {
    await this.db.run(PQ.setFeatureUsage, [
      workspaceId,
      customerId,
      featureId,
      periodStart,
      quantity.toString(),
    ]);
  }

  async insertPurchase(p: Purchase): Promise<void> {
    await this.db.run(PQ.insertPurchase, [p.workspaceId, p.id, p.customerId, p.createdAt, purchaseToJson(p)]);
  }
}
