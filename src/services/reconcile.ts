import { Amount } from '../domain/amount/amount.js';
import { rateEvent } from '../domain/rating/rate.js';
import type { EventBurn, ReconciliationSource, Storage } from '../ports/storage.js';
import { compileRules, type RatingRules } from './metering.js';

/** One failed check, naming the account or grant so an operator can find it. */
export interface ReconciliationFailure {
  readonly check:
    | 'account_balance'
    | 'entries_sum'
    | 'grant_bounds'
    | 'event_burn'
    | 'reversal_bounds'
    | 'clawback_bounds';
  readonly workspaceId: string;
  readonly customerId: string | null;
  readonly creditType: string | null;
  readonly account: string | null;
  readonly message: string;
}

/** The outcome of replaying the whole ledger. */
export interface ReconciliationReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly accounts: number;
  readonly grants: number;
  /** Events checked for (d): every event a rate matched has exactly one burn by it. */
  readonly events: number;
  readonly failures: readonly ReconciliationFailure[];
}

const key = (...parts: string[]) => parts.join('\u0000');

/** How far a reconciliation has got: rows read so far in each pass over the ledger. */
export interface ReconciliationProgress {
  readonly phase: 'entries' | 'accounts' | 'grants' | 'events';
  readonly entries: number;
  readonly accounts: number;
  readonly grants: number;
  readonly events: number;
}

/** Options of a reconciliation. */
export interface ReconcileOptions {
  /** Only this workspace (the HTTP report); every workspace when left out (the CLI). */
  readonly workspaceId?: string;
  /** Called every `progressEvery` rows read (default 100,000), so a long replay shows it is moving. */
  readonly onProgress?: (progress: ReconciliationProgress) => void;
  readonly progressEvery?: number;
}

/** Counts rows read and reports every `every` of them. */
class ProgressCounter {
  readonly counts = { entries: 0, accounts: 0, grants: 0, events: 0 };
  private seen = 0;
  constructor(private readonly options: ReconcileOptions) {}

  row(phase: ReconciliationProgress['phase']): void {
    this.counts[phase] += 1;
    this.seen += 1;
    const every = this.options.progressEvery ?? 100_000;
    if (this.options.onProgress !== undefined && this.seen % every === 0)
      this.options.onProgress({ phase, ...this.counts });
  }
}

/**
 * Replays every entry and proves docs/design.md's invariants: (a) every cached account balance equals
 * the sum of its entries, (b) all entries sum to zero, (c) no grant's remaining is below zero
 * or above its amount, and clawbacks never take back more of a grant than its amount; (e) no debit or capture has more reversed than it burned, in total or per
 * part, and the `reversal` entries of each reversal add up to what its debit records; overage
 * already paid that reversals refunded to a grant never exceeds what that grant paid in
 * `overage_settled` entries, and no debit gave back more usage than its quantity. Streams the
 * ledger; memory grows with the number of accounts (and reversals) only.
 */
export function reconcileLedger(
  storage: Storage,
  options: ReconcileOptions = {},
): Promise<ReconciliationReport> {
  return storage.readSnapshot((source) => reconcileSnapshot(source, options));
}

async function reconcileSnapshot(
  storage: ReconciliationSource,
  options: ReconcileOptions,
): Promise<ReconciliationReport> {
  const progress = new ProgressCounter(options);
  const inScope = (workspaceId: string) =>
    options.workspaceId === undefined || options.workspaceId === workspaceId;
  const sums = new Map<string, bigint>();
  /** Σ of `reversal` entries per (workspace, reversal id). */
  const reversalSums = new Map<string, bigint>();
  /** Σ of `overage_settled` entries per (workspace, customer, credit type, grant). */
  const settledSums = new Map<string, bigint>();
  /** Σ of `clawback` entries per (workspace, grant): never more than the grant's amount. */
  const clawbackSums = new Map<string, bigint>();
  let entryCount = 0;
  let malformed = 0;
  for await (const e of storage.allEntries()) {
    progress.row('entries');
    if (!inScope(e.workspaceId)) continue;
    entryCount += 1;
    const from = key(e.workspaceId, e.customerId, e.creditType, e.fromAccount);
    const to = key(e.workspaceId, e.customerId, e.creditType, e.toAccount);
    sums.set(from, (sums.get(from) ?? 0n) - e.amount.units);
    sums.set(to, (sums.get(to) ?? 0n) + e.amount.units);
    if (!e.amount.isPositive()) malformed += 1; // a movement must be positive to have a direction
    if (e.type === 'reversal') {
      const k = key(e.workspaceId, e.ref ?? '');
      reversalSums.set(k, (reversalSums.get(k) ?? 0n) + e.amount.units);
    }
    if (e.type === 'clawback') {
      const k = key(e.workspaceId, e.grantId ?? '');
      clawbackSums.set(k, (clawbackSums.get(k) ?? 0n) + e.amount.units);
    }
    if (e.type === 'overage_settled') {
      const k = key(e.workspaceId, e.customerId, e.creditType, e.grantId ?? '');
      settledSums.set(k, (settledSums.get(k) ?? 0n) + e.amount.units);
    }
  }
  const failures: ReconciliationFailure[] = [];
  const checked = new Set<string>();
  /** Σ of the cached balances per ledger: zero when the caches are themselves double-entry. */
  const cachedTotals = new Map<string, bigint>();
  const compare = (
    workspaceId: string,
    customerId: string,
    creditType: string,
    account: string,
    cachedUnits: bigint,
  ) => {
    const k = key(workspaceId, customerId, creditType, account);
    checked.add(k);
    const ledgerKey = key(workspaceId, customerId, creditType);
    cachedTotals.set(ledgerKey, (cachedTotals.get(ledgerKey) ?? 0n) + cachedUnits);
    const fromEntries = sums.get(k) ?? 0n;
    if (fromEntries !== cachedUnits) {
      failures.push({
        check: 'account_balance',
        workspaceId,
        customerId,
        creditType,
        account,
        message: `cached balance ${cachedUnits} units differs from the entries' sum ${fromEntries} units`,
      });
    }
  };
  let accountCount = 0;
  for await (const row of storage.allCustomerAccounts()) {
    progress.row('accounts');
    if (!inScope(row.workspaceId)) continue;
    for (const [name, amount] of Object.entries(row.accounts)) {
      accountCount += 1;
      compare(row.workspaceId, row.customerId, row.creditType, name, amount.units);
    }
  }
  let grantCount = 0;
  for await (const g of storage.allGrants()) {
    progress.row('grants');
    if (!inScope(g.workspaceId)) continue;
    grantCount += 1;
    accountCount += 2;
    compare(g.workspaceId, g.customerId, g.creditType, `grant:${g.id}`, g.available.units);
    compare(g.workspaceId, g.customerId, g.creditType, `held:${g.id}`, g.held.units);
    const clawedBack = clawbackSums.get(key(g.workspaceId, g.id)) ?? 0n;
    if (clawedBack > g.amount.units) {
      failures.push({
        check: 'clawback_bounds',
        workspaceId: g.workspaceId,
        customerId: g.customerId,
        creditType: g.creditType,
        account: `grant:${g.id}`,
        message: `clawbacks of grant ${g.id} take back ${clawedBack} units of its ${g.amount.units}`,
      });
    }
    const remaining = g.available.plus(g.held);
    if (
      g.available.isNegative() ||
      g.held.isNegative() ||
      remaining.isNegative() ||
      remaining.greaterThan(g.amount)
    ) {
      failures.push({
        check: 'grant_bounds',
        workspaceId: g.workspaceId,
        customerId: g.customerId,
        creditType: g.creditType,
        account: `grant:${g.id}`,
        message: `grant ${g.id} has available ${g.available}, held ${g.held}, amount ${g.amount}`,
      });
    }
  }
  for (const [k, units] of sums) {
    if (checked.has(k) || units === 0n) continue;
    const [workspaceId = '', customerId = '', creditType = '', account = ''] = k.split('\u0000');
    failures.push({
      check: 'account_balance',
      workspaceId,
      customerId,
      creditType,
      account,
      message: `entries move ${units} units into an account with no cached balance`,
    });
  }
  for (const [k, units] of cachedTotals) {
    if (units === 0n) continue;
    const [workspaceId = '', customerId = '', creditType = ''] = k.split('\u0000');
    failures.push({
      check: 'entries_sum',
      workspaceId,
      customerId,
      creditType,
      account: null,
      message: `cached balances of this ledger sum to ${units} units instead of zero`,
    });
  }
  let grandTotal = 0n;
  for (const units of sums.values()) grandTotal += units;
  if (grandTotal !== 0n || malformed > 0) {
    failures.push({
      check: 'entries_sum',
      workspaceId: '*',
      customerId: null,
      creditType: null,
      account: null,
      message: `entries do not sum to zero (off by ${grandTotal} units; ${malformed} entries with a non-positive amount)`,
    });
  }
  await checkReversals(storage, inScope, reversalSums, settledSums, failures);
  const events = await checkEventBurns(storage, inScope, failures, () => progress.row('events'));
  return {
    ok: failures.length === 0,
    entries: entryCount,
    accounts: accountCount,
    grants: grantCount,
    events,
    failures,
  };
}

/** (e): reversals stay within what each debit burned, and match their entries one to one. */
async function checkReversals(
  storage: ReconciliationSource,
  inScope: (workspaceId: string) => boolean,
  reversalSums: Map<string, bigint>,
  settledSums: Map<string, bigint>,
  failures: ReconciliationFailure[],
): Promise<void> {
  /** Σ of paid overage refunded per (workspace, customer, credit type, grant). */
  const refundedSums = new Map<string, bigint>();
  const fail = (workspaceId: string, customerId: string | null, creditType: string | null, message: string) =>
    failures.push({ check: 'reversal_bounds', workspaceId, customerId, creditType, account: null, message });
  for await (const { workspaceId, debit, reversed } of storage.allReversedDebits()) {
    if (!inScope(workspaceId)) continue;
    const problems: string[] = [];
    if (reversed.overage.greaterThan(debit.overage)) problems.push(`overage reversed ${reversed.overage}`);
    for (const [grantId, amount] of reversed.byGrant) {
      const drawn = debit.drawdowns.find((d) => d.grantId === grantId)?.amount ?? Amount.ZERO;
      if (amount.greaterThan(drawn)) problems.push(`${amount} back to ${grantId}, which gave ${drawn}`);
    }
    const paidBack = Amount.sum(reversed.paidBack.values());
    if (paidBack.greaterThan(reversed.overage))
      problems.push(`paid overage refunded ${paidBack} exceeds the overage reversed ${reversed.overage}`);
    for (const [grantId, amount] of reversed.paidBack) {
      const k = key(workspaceId, debit.customerId, debit.creditType, grantId);
      refundedSums.set(k, (refundedSums.get(k) ?? 0n) + amount.units);
    }
    if (reversed.quantity.greaterThan(debit.quantity ?? Amount.ZERO))
      problems.push(`usage given back ${reversed.quantity} exceeds its quantity ${debit.quantity ?? 'none'}`);
    const parts = Amount.sum([reversed.overage, ...reversed.byGrant.values()]);
    const history = Amount.sum(reversed.history.map((r) => r.amount));
    if (!parts.equals(history)) problems.push(`parts ${parts} differ from its reversals ${history}`);
    for (const r of reversed.history) {
      const k = key(workspaceId, r.id);
      const fromEntries = reversalSums.get(k) ?? 0n;
      reversalSums.delete(k);
      if (fromEntries !== r.amount.units)
        problems.push(`reversal ${r.id} has entries of ${fromEntries} units`);
    }
    for (const problem of problems) {
      fail(workspaceId, debit.customerId, debit.creditType, `debit ${debit.id}: ${problem}`);
    }
  }
  for (const [k, units] of refundedSums) {
    const settled = settledSums.get(k) ?? 0n;
    const [workspaceId = '', customerId = '', creditType = '', grantId = ''] = k.split('\u0000');
    if (units > settled)
      fail(
        workspaceId,
        customerId,
        creditType,
        `grant ${grantId} was refunded ${Amount.fromUnits(units)} of paid overage but paid ${Amount.fromUnits(settled)}`,
      );
  }
  for (const [k, units] of reversalSums) {
    const [workspaceId = '', id = ''] = k.split('\u0000');
    if (inScope(workspaceId))
      fail(workspaceId, null, null, `reversal entries ${id} (${units} units) match no debit`);
  }
}

/**
 * docs/design.md Finance (d): every stored event that a rate matched when it arrived (or that a
 * backfill applied the rate to) has exactly one burn by that rate, and no burn lacks its event.
 * Events and burns are both read in (workspace, event key) order and merged, so memory stays flat.
 */
async function checkEventBurns(
  storage: ReconciliationSource,
  inScope: (workspaceId: string) => boolean,
  failures: ReconciliationFailure[],
  onEvent: () => void,
): Promise<number> {
  const rules = new Map<string, RatingRules>();
  for await (const r of storage.allRatingRules()) {
    const workspaceId = r.rates[0]?.workspaceId;
    if (workspaceId !== undefined) rules.set(workspaceId, compileRules(r));
  }
  const burns = storage.allBurns()[Symbol.asyncIterator]();
  let pending = await burns.next();
  // The stores order keys bytewise (UTF-8), so the merge compares the same way, not as JS strings.
  const order = (ws: string, key: string) => Buffer.from(`${ws}\u0000${key}`, 'utf8');
  const orphan = (burn: EventBurn) => {
    if (!inScope(burn.workspaceId)) return;
    failures.push(
      eventFailure(
        burn.workspaceId,
        burn.customerId,
        `burn of unknown event ${burn.eventKey} by rate ${burn.rateId}`,
      ),
    );
  };
  let count = 0;
  for await (const event of storage.allEvents()) {
    onEvent();
    const here = order(event.workspaceId, event.eventKey);
    const burnedBy = new Map<string, number>();
    while (!pending.done) {
      const burn = pending.value;
      const position = Buffer.compare(order(burn.workspaceId, burn.eventKey), here);
      if (position > 0) break;
      if (position === 0) burnedBy.set(burn.rateId, (burnedBy.get(burn.rateId) ?? 0) + 1);
      else orphan(burn);
      pending = await burns.next();
    }
    if (!inScope(event.workspaceId)) continue;
    count += 1;
    const applicable = rules.get(event.workspaceId)?.byEventType.get(event.type) ?? [];
    for (const [rateId, burned] of burnedBy) {
      if (!applicable.some((a) => a.rate.id === rateId)) {
        failures.push(
          eventFailure(
            event.workspaceId,
            event.customerId,
            `event ${event.eventKey} has ${burned} burns by rate ${rateId}, which does not price its type`,
          ),
        );
      }
    }
    for (const { rate, meter, seq } of applicable) {
      const matched = rateEvent(rate, meter, event, Amount.ZERO) !== null;
      const burned = burnedBy.get(rate.id) ?? 0;
      // Rates in force at ingest had to burn it; later ones may have (by a backfill) at most once.
      const ratedAtArrival = seq <= event.rulesSeq;
      if ((matched && ratedAtArrival && burned !== 1) || burned > 1 || (!matched && burned > 0)) {
        failures.push(
          eventFailure(
            event.workspaceId,
            event.customerId,
            `event ${event.eventKey} has ${burned} burns by rate ${rate.id}`,
          ),
        );
      }
    }
  }
  // Burns sorting after the last event have no event either.
  for (; !pending.done; pending = await burns.next()) orphan(pending.value);
  return count;
}

function eventFailure(workspaceId: string, customerId: string, message: string): ReconciliationFailure {
  return { check: 'event_burn', workspaceId, customerId, creditType: null, account: null, message };
}
