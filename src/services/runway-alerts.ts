import {
  applicableThresholds,
  type BalanceThreshold,
  runwayTransition,
} from '../domain/alerts/balance-thresholds.js';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import { formatInstant } from '../domain/time/instant.js';
import type { LedgerKey, PageRequest } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { type CustomerForecast, estimateAmount, forecastCustomer, runwaySeconds } from './forecast.js';
import { appendFacts } from './outbox.js';

/**
 * The runway sweep: `balance.runway_below` fires when a customer's forecast runway (the p50 of
 * `GET /v1/customers/{id}/forecast`) is under a `runway_hours` threshold. A runway moves with the
 * clock and the forecast, not with one write, so a periodic sweep (with the injected clock)
 * compares it, never a write. Once per crossing: the threshold's per-customer state row (the same
 * one `balance.low` uses) disarms it when it fires, and it re-arms silently when the runway is at
 * or above the threshold again (or nothing burns). The fact and the state change commit in one
 * transaction under the customer's lock, through the outbox, so two sweepers never both write it.
 */

/** Thresholds read per page while sweeping. */
const THRESHOLD_PAGE = 200;
/** Customers read per page when a workspace default applies to every customer. */
const CUSTOMER_PAGE = 500;
/** How often the server's sweeper runs the runway sweep (a forecast per watched customer). */
export const RUNWAY_SWEEP_INTERVAL_MS = 5 * 60_000;

/** What one sweep did: customers forecast, facts written, thresholds re-armed. */
export interface RunwaySweepResult {
  readonly forecasts: number;
  readonly fired: number;
  readonly rearmed: number;
}

/** Every runway threshold, grouped by workspace and credit type (each customer is forecast once per group). */
async function runwayThresholdGroups(ctx: ServiceContext): Promise<Map<string, BalanceThreshold[]>> {
  const groups = new Map<string, BalanceThreshold[]>();
  let request: PageRequest = { after: null, limit: THRESHOLD_PAGE };
  for (;;) {
    const page = await ctx.storage.read.alerts.runwayThresholds(request);
    for (const t of page.items) {
      const key = JSON.stringify([t.workspaceId, t.creditType]);
      const list = groups.get(key) ?? [];
      list.push(t);
      groups.set(key, list);
    }
    if (page.nextAfter === null) return groups;
    request = { after: page.nextAfter, limit: THRESHOLD_PAGE };
  }
}

/** The customers a group of thresholds watches: every customer when a workspace default is among them. */
async function* watchedCustomers(
  ctx: ServiceContext,
  workspaceId: string,
  thresholds: readonly BalanceThreshold[],
): AsyncGenerator<string> {
  if (thresholds.every((t) => t.customerId !== null)) {
    yield* [...new Set(thresholds.map((t) => t.customerId!))].sort();
    return;
  }
  let after: readonly string[] | null = null;
  do {
    const page = await ctx.storage.read.listCustomers(workspaceId, { after, limit: CUSTOMER_PAGE });
    for (const customer of page.items) yield customer.id;
    after = page.nextAfter;
  } while (after !== null);
}

/** The data of a `balance.runway_below` fact (its JSON Schema is in src/http/webhook-events/balance.ts). */
function runwayFact(threshold: BalanceThreshold, forecast: CustomerForecast, runway: number) {
  const r = forecast.result;
  return {
    customer_id: forecast.key.customerId,
    credit_type: forecast.key.creditType,
    threshold: { id: threshold.id, kind: 'runway_hours', value: threshold.value.toString() },
    runway_seconds: runway,
    available: estimateAmount(r.available).toString(),
    expected_depletion_at:
      r.status === 'forecast' && r.p50 !== null ? formatInstant(r.p50) : formatInstant(forecast.now),
    depletion_p10: r.status === 'forecast' && r.p10 !== null ? formatInstant(r.p10) : null,
    depletion_p90: r.status === 'forecast' && r.p90 !== null ? formatInstant(r.p90) : null,
    forecast_at: formatInstant(forecast.now),
  };
}

/**
 * One pass over every runway threshold: forecasts each watched customer, fires or re-arms. A
 * customer or credit type deleted meanwhile is skipped. Cost: one forecast per watched customer
 * (a workspace default watches every customer of the workspace), and a write only when a state
 * changes.
 */
export async function sweepRunwayAlerts(ctx: ServiceContext): Promise<RunwaySweepResult> {
  let forecasts = 0;
  let fired = 0;
  let rearmed = 0;
  for (const thresholds of (await runwayThresholdGroups(ctx)).values()) {
    const { workspaceId, creditType } = thresholds[0]!;
    for await (const customerId of watchedCustomers(ctx, workspaceId, thresholds)) {
      const key: LedgerKey = { workspaceId, customerId, creditType };
      // The thresholds that apply (the customer's own runway thresholds, else the defaults), with state.
      const armed = applicableThresholds(
        customerId,
        (await ctx.storage.read.alerts.thresholdsForLedger(key)).filter(
          (c) => c.threshold.kind === 'runway_hours',
        ),
      );
      if (armed.length === 0) continue;
      let forecast: CustomerForecast;
      try {
        forecast = await forecastCustomer(ctx, key);
      } catch (error) {
        if (error instanceof BurndownError && error.code === ErrorCode.notFound) continue;
        throw error;
      }
      forecasts += 1;
      const runway = runwaySeconds(forecast);
      const changes = armed.filter((a) => runwayTransition(a.threshold, a.fired, runway) !== null);
      if (changes.length === 0) continue;
      const now = ctx.clock.now();
      const done = await ctx.storage.write(customerLockKey(workspaceId, customerId), async (tx) => {
        // Decided again under the lock: another sweeper may have written it meanwhile.
        const current = applicableThresholds(
          customerId,
          (await tx.alerts.thresholdsForLedger(key)).filter((c) => c.threshold.kind === 'runway_hours'),
        );
        let f = 0;
        let r = 0;
        for (const { threshold, fired: wasFired } of current) {
          const transition = runwayTransition(threshold, wasFired, runway);
          if (transition === 'fire') {
            await tx.alerts.markThresholdFired(workspaceId, threshold.id, customerId, now);
            await appendFacts(ctx, tx, now, [
              {
                workspaceId,
                type: 'balance.runway_below',
                customerId,
                data: runwayFact(threshold, forecast, runway ?? 0),
              },
            ]);
            f += 1;
          } else if (transition === 'rearm') {
            await tx.alerts.markThresholdRecovered(workspaceId, threshold.id, customerId);
            r += 1;
          }
        }
        return { f, r };
      });
      fired += done.f;
      rearmed += done.r;
    }
  }
  return { forecasts, fired, rearmed };
}
