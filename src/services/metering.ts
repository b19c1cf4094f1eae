import { Amount } from '../domain/amount/amount.js';
import { amountOutOfRange, BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import { CreditLedger, type DebitRecord } from '../domain/ledger/credit-ledger.js';
import { parseJsonPath } from '../domain/metering/json-path.js';
import {
  AGGREGATIONS,
  type Aggregation,
  isQuantityOutOfRange,
  type MeterDefinition,
  meterReads,
  quantityOf,
  readQuantity,
  UsageAccumulator,
  type UsageRow,
} from '../domain/metering/meter.js';
import { extend } from '../domain/objects.js';
import {
  priceBound,
  priceQuantity,
  pricingUsesPeriodUsage,
  type RateDefinition,
  rateEvent,
  rateMatches,
  ratingPeriodStart,
} from '../domain/rating/rate.js';
import type { Instant } from '../domain/time/instant.js';
import { nextWindowStart, type WindowUnit, windowStart } from '../domain/time/zoned.js';
import type {
  EventBurn,
  LedgerKey,
  MeterRecord,
  RateRecord,
  StoredEvent,
  StoredPricing,
  WriteOperations,
} from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { recordFeatureUsage } from './entitlements.js';
import { LedgerSession } from './ledger-session.js';
import { requireCreditType, requireCustomer } from './lookups.js';
import { compilePricing } from './pricing.js';
import { forEachConcurrently } from './sweep-concurrency.js';

/** Compiles a stored meter (parses its paths); stored meters were validated, so paths parse. */
export function compileMeter(record: MeterRecord): MeterDefinition {
  const groupBy: Record<string, readonly (string | number)[]> = {};
  for (const [name, path] of Object.entries(record.groupBy)) groupBy[name] = parseJsonPath(path) ?? [];
  return {
    id: record.id,
    eventType: record.eventType,
    aggregation: record.aggregation,
    valuePath: record.valueProperty === null ? null : parseJsonPath(record.valueProperty),
    valueProperty: record.valueProperty,
    groupBy,
    groupByText: record.groupBy,
    createdAt: record.createdAt,
  };
}

export { compilePricing };

export function compileRate(record: RateRecord): RateDefinition {
  return {
    id: record.id,
    meterId: record.meterId,
    filter: record.filter,
    creditType: record.creditType,
    pricing: compilePricing(record.pricing),
    createdAt: record.createdAt,
  };
}

/** The compiled rules of a workspace: for each event type, the rates that may price it. */
export interface RatingRules {
  readonly byEventType: ReadonlyMap<
    string,
    readonly { rate: RateDefinition; meter: MeterDefinition; seq: number }[]
  >;
  /** The highest rate `seq`: an event ingested under these rules records it. */
  readonly seq: number;
  /** Every meter by the event type it reads (rated or not). */
  readonly metersByEventType: ReadonlyMap<string, readonly MeterDefinition[]>;
}

export function compileRules(rules: {
  meters: readonly MeterRecord[];
  rates: readonly RateRecord[];
}): RatingRules {
  const meters = new Map(rules.meters.map((m) => [m.id, compileMeter(m)]));
  const byEventType = new Map<string, { rate: RateDefinition; meter: MeterDefinition; seq: number }[]>();
  let seq = 0;
  for (const record of rules.rates) {
    seq = Math.max(seq, record.seq);
    const meter = meters.get(record.meterId);
    if (!meter) continue;
    const list = byEventType.get(meter.eventType) ?? [];
    list.push({ rate: compileRate(record), meter, seq: record.seq });
    byEventType.set(meter.eventType, list);
  }
  const metersByEventType = new Map<string, MeterDefinition[]>();
  for (const meter of meters.values()) {
    metersByEventType.set(meter.eventType, [...(metersByEventType.get(meter.eventType) ?? []), meter]);
  }
  return { byEventType, seq, metersByEventType };
}

const nonNegative = (text: string, field: string, positive = false): Amount => {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string' || parsed.isNegative() || (positive && parsed.isZero())) {
    throw new BurndownError(
      ErrorCode.invalidAmount,
      `${field} must be a ${positive ? 'positive' : 'non-negative'} decimal string`,
      {
        field,
      },
    );
  }
  return parsed;
};

/** Creates a meter after checking its paths; an existing id is 409. */
export async function createMeter(
  tx: WriteOperations,
  input: {
    workspaceId: string;
    id: string;
    eventType: string;
    aggregation: Aggregation;
    valueProperty: string | null;
    groupBy: Record<string, string>;
    now: Instant;
  },
): Promise<MeterRecord> {
  if (!AGGREGATIONS.includes(input.aggregation))
    throw invalidRequest('unknown aggregation', { field: 'aggregation' });
  if (input.aggregation !== 'count' && input.valueProperty === null) {
    throw invalidRequest(`a ${input.aggregation} meter needs value_property`, { field: 'value_property' });
  }
  if (input.valueProperty !== null && parseJsonPath(input.valueProperty) === null) {
    throw invalidRequest('value_property must be a JSONPath such as "$.tokens" or "$.usage.input"', {
      field: 'value_property',
    });
  }
  for (const [name, path] of Object.entries(input.groupBy)) {
    if (parseJsonPath(path) === null)
      throw invalidRequest(`group_by.${name} must be a JSONPath such as "$.model"`, {
        field: `group_by.${name}`,
      });
  }
  const record: MeterRecord = {
    workspaceId: input.workspaceId,
    id: input.id,
    eventType: input.eventType,
    aggregation: input.aggregation,
    valueProperty: input.aggregation === 'count' ? null : input.valueProperty,
    groupBy: input.groupBy,
    createdAt: input.now,
  };
  if (!(await tx.insertMeter(record))) {
    throw new BurndownError(ErrorCode.alreadyExists, `meter "${input.id}" already exists`, { id: input.id });
  }
  return record;
}

/** Creates a rate on a `sum` or `count` meter, validating filter dimensions and pricing. */
export async function createRate(
  tx: WriteOperations,
  input: {
    workspaceId: string;
    id: string;
    meterId: string;
    filter: Record<string, string>;
    creditType: string;
    pricing: StoredPricing;
    now: Instant;
  },
): Promise<RateRecord> {
  const meter = await tx.getMeter(input.workspaceId, input.meterId);
  if (!meter) throw notFound('meter', input.meterId);
  if (meter.aggregation !== 'sum' && meter.aggregation !== 'count') {
    throw invalidRequest('rates price per event, so their meter must aggregate with sum or count', {
      field: 'meter_id',
    });
  }
  for (const dimension of Object.keys(input.filter)) {
    if (!(dimension in meter.groupBy)) {
      throw invalidRequest(`filter.${dimension} is not a group_by dimension of meter "${meter.id}"`, {
        field: `filter.${dimension}`,
      });
    }
  }
  await requireCreditType(tx, input.workspaceId, input.creditType);
  validatePricing(input.pricing);
  const { now, ...fields } = input;
  if (!(await tx.insertRate(extend(fields, { seq: 0, createdAt: now })))) {
    throw new BurndownError(ErrorCode.alreadyExists, `rate "${input.id}" already exists`, { id: input.id });
  }
  const stored = await tx.getRate(input.workspaceId, input.id);
  if (!stored) throw new Error(`rate ${input.id} vanished after insert`);
  return stored;
}

function validatePricing(pricing: StoredPricing): void {
  if ('credits_per_unit' in pricing) nonNegative(pricing.credits_per_unit, 'credits_per_unit');
  else if ('package' in pricing) {
    nonNegative(pricing.package.size, 'package.size', true);
    nonNegative(pricing.package.credits, 'package.credits');
  } else {
    if (pricing.tiers.length === 0) throw invalidRequest('tiers must not be empty', { field: 'tiers' });
    let previous = Amount.ZERO;
    pricing.tiers.forEach((tier, i) => {
      nonNegative(tier.credits_per_unit, `tiers[${i}].credits_per_unit`);
      const last = i === pricing.tiers.length - 1;
      if (tier.up_to === null) {
        if (!last)
          throw invalidRequest('only the last tier may have up_to null', { field: `tiers[${i}].up_to` });
        return;
      }
      const upTo = nonNegative(tier.up_to, `tiers[${i}].up_to`, true);
      if (!upTo.greaterThan(previous))
        throw invalidRequest('tiers must have increasing up_to', { field: `tiers[${i}].up_to` });
      previous = upTo;
    });
    if (pricing.tiers[pricing.tiers.length - 1]?.up_to !== null) {
      throw invalidRequest('the last tier must have up_to null', { field: 'tiers' });
    }
  }
}

/** A validated usage event, ready to store. */
export interface IncomingEvent {
  readonly id: string;
  readonly source: string | null;
  readonly type: string;
  readonly customerId: string;
  readonly time: Instant;
  readonly data: unknown;
}

/** The identity of an event in its workspace: its id, or source and id for CloudEvents. */
export function eventKeyOf(event: { readonly id: string; readonly source: string | null }): string {
  return event.source === null ? `id:${event.id}` : `ce:${event.source.length}:${event.source}:${event.id}`;
}

/**
 * What happened to each event of a batch. `unmetered`: accepted and stored, but no meter could read
 * it (no meter of its type, or a missing or non-numeric value), so nothing burned. `negative_usage`: a meter of its type reads a negative
 * value (refused, so meters and rates never disagree). `failed`: its customer's transaction
 * failed unexpectedly; nothing of it was stored and it can be sent again. `value_out_of_range`:
 * its usage value, or its price by a rate, is past the value range (at most 20 integer digits),
 * or its burn would carry a running total of its customer past the account range.
 */
export type EventOutcome =
  | 'accepted'
  | 'unmetered'
  | 'duplicate'
  | 'customer_not_found'
  | 'negative_usage'
  | 'value_out_of_range'
  | 'failed';

/**
 * Stores, dedups and rates a batch of events. Each customer's events are one transaction under
 * that customer's lock: an event is stored together with its burns, or not at all. Transactions
 * of different customers run together (on SQLite they share one commit). Matched events burn with
 * overage allowed: usage is never refused for lack of credits.
 */
export async function ingestEvents(
  ctx: ServiceContext,
  workspaceId: string,
  events: readonly IncomingEvent[],
  onGroupFailure?: (error: unknown) => void,
): Promise<EventOutcome[]> {
  const outcomes: EventOutcome[] = new Array(events.length);
  const byCustomer = new Map<string, number[]>();
  events.forEach((event, index) => {
    const list = byCustomer.get(event.customerId);
    if (list) list.push(index);
    else byCustomer.set(event.customerId, [index]);
  });
  const groups = [...byCustomer];
  const chunks: (typeof groups)[] = [];
  for (let i = 0; i < groups.length; i += CUSTOMERS_PER_TRANSACTION)
    chunks.push(groups.slice(i, i + CUSTOMERS_PER_TRANSACTION));
  const settled = await Promise.allSettled(
    chunks.map((chunk) =>
      ctx.storage.write(
        chunk.map(([customerId]) => customerLockKey(workspaceId, customerId)),
        async (tx) => ingestChunk(ctx, tx, workspaceId, events, chunk, outcomes),
      ),
    ),
  );
  settled.forEach((result, c) => {
    if (result.status === 'fulfilled') return;
    // Rolled back: none of these customers' events is stored; the others' are, and say so. A
    // running total past the account range is no server error: those events can never be kept.
    const outcome =
      result.reason instanceof BurndownError && result.reason.code === ErrorCode.amountOutOfRange
        ? 'value_out_of_range'
        : 'failed';
    for (const [, indexes] of chunks[c]!) for (const i of indexes) outcomes[i] = outcome;
    onGroupFailure?.(result.reason);
  });
  return outcomes;
}

/**
 * Customers whose events share one transaction: fewer round trips per event on PostgreSQL (one
 * lock statement, one multi-row insert of events, one of burns), fewer savepoints on SQLite.
 */
const CUSTOMERS_PER_TRANSACTION = 100;

/** An event of a batch that passed its checks, ready to store (and, if rated, to reserve and burn). */
interface Candidate {
  readonly index: number;
  readonly stored: StoredEvent;
  readonly priced: readonly PricedBy[];
  /** Rates exist for its type: it reserves (and burns) on its customer's ledger. */
  readonly rated: boolean;
}

/** Stores and burns the events of some customers in one transaction (their locks are held). */
async function ingestChunk(
  ctx: ServiceContext,
  tx: WriteOperations,
  workspaceId: string,
  events: readonly IncomingEvent[],
  chunk: readonly (readonly [string, readonly number[]])[],
  outcomes: EventOutcome[],
): Promise<void> {
  const now = ctx.clock.now();
  const rules = compileRules(await tx.listRatingRules(workspaceId));
  const featureOfRate = rules.seq > 0 ? await featuresByRate(tx, workspaceId) : new Map<string, string>();
  const burners = new Map<string, Burner>();
  const burnerOf = (customerId: string): Burner => {
    let burner = burners.get(customerId);
    if (!burner) {
      burner = new Burner(ctx, tx, workspaceId, customerId, now, featureOfRate);
      burners.set(customerId, burner);
    }
    return burner;
  };
  let pending: Candidate[] = [];
  for (const [customerId, indexes] of chunk) {
    if (!(await tx.getCustomer(workspaceId, customerId))) {
      for (const i of indexes) outcomes[i] = 'customer_not_found';
      continue;
    }
    for (const i of indexes) {
      const event = events[i]!;
      const reading = readEvent(rules, event);
      if (reading.refusal !== null) {
        outcomes[i] = reading.refusal;
        continue;
      }
      const stored = storedEventOf(event, workspaceId, rules, reading, now);
      pending.push({ index: i, stored, priced: reading.priced, rated: rules.byEventType.has(event.type) });
    }
  }
  // Stored first, so that only new events reserve their burns (a duplicate burns nothing, and
  // reserving for it opened its customer's ledger for nothing). An event whose burns could carry a
  // running total past the account range is refused alone and removed again, in this transaction;
  // a later occurrence of its key in the batch then gets its own chance, in the next round.
  const kept: Candidate[] = [];
  const duplicates: string[] = [];
  while (pending.length > 0) {
    const inserted = await tx.insertEvents(pending.map((c) => c.stored));
    await tx.prefetchCustomerWrites(ledgersToBurn(pending, inserted, burners));
    const refused = new Set<string>();
    const retry: Candidate[] = [];
    for (const candidate of pending) {
      const { index, stored, priced } = candidate;
      // The first occurrence of a key in the batch is the one stored; later ones are duplicates.
      if (!inserted.delete(stored.eventKey)) {
        if (refused.has(stored.eventKey)) retry.push(candidate);
        else {
          outcomes[index] = 'duplicate';
          duplicates.push(stored.eventKey);
        }
        continue;
      }
      if (candidate.rated && !(await burnerOf(stored.customerId).reserve(stored, priced))) {
        outcomes[index] = 'value_out_of_range';
        refused.add(stored.eventKey);
        continue;
      }
      kept.push(candidate);
    }
    if (refused.size > 0) await tx.deleteUncommittedEvents(workspaceId, [...refused]);
    pending = retry;
  }
  for (const { index, stored, priced } of kept) {
    outcomes[index] = stored.unmetered ? 'unmetered' : 'accepted';
    if (stored.unmetered) continue;
    const burner = burnerOf(stored.customerId);
    for (const { rate, quantity } of priced) await burner.burn(stored, rate, quantity);
  }
  // Where the storage pipelines (PostgreSQL), saved together rather than one after another: the
  // customers' statements then leave in one flight instead of one round trip each. Every save
  // ends before an error is thrown, so nothing runs in a transaction already being rolled back.
  const savers = [...burners.values()];
  const saved: EventBurn[][] = new Array(savers.length);
  await forEachConcurrently(
    savers.map((burner, i) => ({ burner, i })),
    async ({ burner, i }) => {
      saved[i] = await burner.save();
    },
    tx.pipelined ? savers.length : 1,
  );
  const burns = saved.flat();
  await tx.insertBurns(burns);
  // One counter per stored event (not a row per delivery): GET /v1/events?status=duplicate.
  if (duplicates.length > 0) await tx.countDuplicates(workspaceId, duplicates);
}

/**
 * The ledgers the burns of a chunk's newly stored events will open first (one per customer and
 * credit type its rates price in, for customers whose burner has no session yet), so the storage
 * can read them together.
 */
function ledgersToBurn(
  candidates: readonly Candidate[],
  inserted: ReadonlySet<string>,
  burners: ReadonlyMap<string, Burner>,
): LedgerKey[] {
  const keys = new Map<string, LedgerKey>();
  for (const { stored, priced, rated } of candidates) {
    if (!rated || !inserted.has(stored.eventKey) || burners.get(stored.customerId)?.opened) continue;
    for (const { rate } of priced) {
      const k = `${stored.customerId}\u0000${rate.creditType}`;
      if (!keys.has(k)) {
        keys.set(k, {
          workspaceId: stored.workspaceId,
          customerId: stored.customerId,
          creditType: rate.creditType,
        });
      }
    }
  }
  return [...keys.values()];
}

/**
 * The feature each rate prices (a rate listed by several features counts for the first by id):
 * burns for it draw only on grants that apply to that feature, and count against its usage limit.
 */
export async function featuresByRate(tx: WriteOperations, workspaceId: string): Promise<Map<string, string>> {
  const byRate = new Map<string, string>();
  for (const feature of await tx.plans.allFeatures(workspaceId)) {
    for (const rateId of feature.rateIds) if (!byRate.has(rateId)) byRate.set(rateId, feature.id);
  }
  return byRate;
}

/** A rate that prices an event: its quantity by the rate's meter and the most it can cost. */
interface PricedBy {
  readonly rate: RateDefinition;
  readonly quantity: Amount;
  /** {@link priceBound}: what the range reservation counts, whatever the usage before the event. */
  readonly bound: Amount;
}

/** What the rules make of one event, read once (its checks, the reservation and the burn share it). */
interface EventReading {
  /**
   * Why it is refused alone, or null: `negative_usage` when a `sum` or `max` meter of its type reads
   * a negative value; `value_out_of_range` when a meter of its type reads a number past the value
   * range, or a rate that matches it could price it past that range (whatever the usage before it).
   */
  readonly refusal: 'negative_usage' | 'value_out_of_range' | null;
  /** No meter of its type reads it (stored, burns nothing). */
  readonly unmetered: boolean;
  /** The rates that price it, in the rules' order. */
  readonly priced: readonly PricedBy[];
}

const NOTHING_PRICED: readonly PricedBy[] = [];

/** An accepted event as it is stored: the rules it was read under and whether any meter reads it. */
function storedEventOf(
  event: IncomingEvent,
  workspaceId: string,
  rules: RatingRules,
  reading: EventReading,
  now: Instant,
): StoredEvent {
  return extend(event, {
    workspaceId,
    eventKey: eventKeyOf(event),
    rulesSeq: rules.seq,
    receivedAt: now,
    unmetered: reading.unmetered,
  });
}

/**
 * Reads an event once against the rules: each meter of its type reads the value once, and each
 * rate of its type is matched and bounded once (before, the refusal checks, the range reservation
 * and the burn each matched the rates and parsed the value again).
 */
function readEvent(
  rules: RatingRules,
  event: { readonly type: string; readonly data: unknown },
): EventReading {
  const meters = rules.metersByEventType.get(event.type);
  if (meters === undefined) return { refusal: null, unmetered: true, priced: NOTHING_PRICED };
  const quantities = new Map<MeterDefinition, Amount | null | 'out_of_range'>();
  let negative = false;
  let outOfRange = false;
  let read = false;
  for (const meter of meters) {
    const quantity = readQuantity(meter, event.data);
    quantities.set(meter, quantity);
    if (quantity === 'out_of_range') outOfRange = true;
    else if (quantity?.isNegative() && (meter.aggregation === 'sum' || meter.aggregation === 'max'))
      negative = true;
    if (!read)
      read =
        meter.aggregation === 'unique_count'
          ? meterReads(meter, event.data)
          : quantity !== null && quantity !== 'out_of_range';
  }
  if (negative) return { refusal: 'negative_usage', unmetered: !read, priced: NOTHING_PRICED };
  if (outOfRange) return { refusal: 'value_out_of_range', unmetered: !read, priced: NOTHING_PRICED };
  const priced: PricedBy[] = [];
  for (const { rate, meter } of rules.byEventType.get(event.type) ?? []) {
    if (!rateMatches(rate, meter, event.data)) continue;
    const quantity = quantities.has(meter) ? quantities.get(meter) : quantityOf(meter, event.data);
    if (quantity === undefined || quantity === null || quantity === 'out_of_range' || quantity.isNegative())
      continue;
    const bound = priceBound(rate.pricing, quantity);
    if (!bound.isWithinValueRange()) {
      return { refusal: 'value_out_of_range', unmetered: !read, priced: NOTHING_PRICED };
    }
    priced.push({ rate, quantity, bound });
  }
  return { refusal: null, unmetered: !read, priced };
}

/** The quantity a rate prices in an event, or null when the rate does not apply to it (as {@link rateEvent}). */
function rateQuantity(rate: RateDefinition, meter: MeterDefinition, event: StoredEvent): Amount | null {
  if (event.type !== meter.eventType || !rateMatches(rate, meter, event.data)) return null;
  const quantity = quantityOf(meter, event.data);
  return quantity === null || quantity.isNegative() ? null : quantity;
}

/**
 * Whether a meter of the event's type reads a number past the value range from it, or a rate that
 * matches it could price it past that range (whatever the usage before it): a quote refuses it.
 */
function isOutOfRange(rules: RatingRules, event: { readonly type: string; readonly data: unknown }): boolean {
  for (const meter of rules.metersByEventType.get(event.type) ?? []) {
    if (isQuantityOutOfRange(meter, event.data)) return true;
  }
  for (const { rate, meter } of rules.byEventType.get(event.type) ?? []) {
    if (!rateMatches(rate, meter, event.data)) continue;
    const quantity = quantityOf(meter, event.data);
    if (quantity === null || quantity.isNegative()) continue;
    if (!priceBound(rate.pricing, quantity).isWithinValueRange()) return true;
  }
  return false;
}

/** Sets `key` in `map`, made on first use (null until then). */
function setIn<K, V>(map: Map<K, V> | null, key: K, value: V): Map<K, V> {
  const made = map ?? new Map<K, V>();
  made.set(key, value);
  return made;
}

/**
 * Burns rated events of one customer inside one transaction: keeps the customer's ledgers (one
 * per credit type) and rating-period usage in memory and writes them once at the end.
 */
class Burner {
  /** The customer's ledger session, opened at the first burn (resets applied, auto top-up rule read). */
  private session: LedgerSession | null;
  private readonly burns: EventBurn[] = [];
  // The maps below are made on first use: most customers' events need none of them.
  private usage: Map<string, { rateId: string; period: Instant; quantity: Amount }> | null = null;
  /** Uses of features (by rates that price them), each at its event's time. */
  private featureUsage: Map<string, { at: Instant; quantity: Amount }[]> | null = null;
  /** Credits (by credit type) and rate usage (by rate and period) reserved by the events accepted so far. */
  private reservedCredits: Map<string, Amount> | null = null;
  private reservedUsage: Map<string, Amount> | null = null;
  /** A rate's stored usage in a period, read once per batch (the reservation and the burn share it). */
  private storedUsage: Map<string, Amount> | null = null;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly tx: WriteOperations,
    private readonly workspaceId: string,
    private readonly customerId: string,
    private readonly now: Instant,
    private readonly featureOfRate: ReadonlyMap<string, string>,
    /** How a rated burn is paid (default: a debit with overage allowed). */
    private readonly payer: BurnPayer = payByDebit,
    /** A session the caller opened and saves itself (licensed usage shares it with its lease). */
    private readonly sharedSession: LedgerSession | null = null,
  ) {
    this.session = sharedSession;
  }

  /**
   * Whether the burns of an event, at most what {@link priceBound} allows per rate, fit the account
   * range on top of what the events before it reserved (its customer's `consumed` and `overage`
   * accounts, and its rates' usage counters); if they do, reserves them. Conservative: a bound
   * may exceed the price. Only events the batch stored reserve (never a duplicate).
   */
  async reserve(event: IncomingEvent, priced: readonly PricedBy[]): Promise<boolean> {
    // An event has a handful of rates at most: small lists, not maps (a map or three per event
    // were a measurable share of what a batch allocates).
    const credits: { creditType: string; amount: Amount }[] = [];
    const usage: { key: string; rateId: string; period: Instant; quantity: Amount; after: Amount }[] = [];
    for (const { rate, quantity, bound } of priced) {
      const credit = credits.find((c) => c.creditType === rate.creditType);
      if (credit) credit.amount = credit.amount.plus(bound);
      else credits.push({ creditType: rate.creditType, amount: bound });
      if (!pricingUsesPeriodUsage(rate.pricing)) continue;
      const period = ratingPeriodStart(event.time);
      const key = `${rate.id}/${period}`;
      const entry = usage.find((u) => u.key === key);
      if (entry) entry.quantity = entry.quantity.plus(quantity);
      else usage.push({ key, rateId: rate.id, period, quantity, after: Amount.ZERO });
    }
    for (const { creditType, amount } of credits) {
      if (!amount.isPositive()) continue;
      const ledger = this.session?.burningLedger(creditType) ?? (await this.ledger(creditType));
      if (!ledger.canBurn((this.reservedCredits?.get(creditType) ?? Amount.ZERO).plus(amount))) return false;
    }
    for (const entry of usage) {
      const reserved =
        this.reservedUsage?.get(entry.key) ??
        (await this.rateUsageStored(entry.rateId, entry.period, entry.key));
      entry.after = reserved.plus(entry.quantity);
      if (!entry.after.isWithinAccountRange()) return false;
    }
    for (const { creditType, amount } of credits) {
      const reserved = this.reservedCredits?.get(creditType) ?? Amount.ZERO;
      this.reservedCredits = setIn(this.reservedCredits, creditType, reserved.plus(amount));
    }
    for (const { key, after } of usage) this.reservedUsage = setIn(this.reservedUsage, key, after);
    return true;
  }

  /** The usage of a rate in a period as stored before this batch; one read per batch and key. */
  private async rateUsageStored(rateId: string, period: Instant, key: string): Promise<Amount> {
    let stored = this.storedUsage?.get(key);
    if (stored === undefined) {
      stored = await this.tx.getRateUsage(this.workspaceId, this.customerId, rateId, period);
      this.storedUsage = setIn(this.storedUsage, key, stored);
    }
    return stored;
  }

  /** Rates one stored event with one rate; burns its credits (with overage) and records the burn once. */
  async burn(event: StoredEvent, rate: RateDefinition, quantity: Amount): Promise<void> {
    let credits: Amount;
    if (pricingUsesPeriodUsage(rate.pricing)) {
      const period = ratingPeriodStart(event.time);
      const usageKey = `${rate.id}/${period}`;
      let usage = this.usage?.get(usageKey);
      if (!usage) {
        const quantity = await this.rateUsageStored(rate.id, period, usageKey);
        usage = { rateId: rate.id, period, quantity };
        this.usage = setIn(this.usage, usageKey, usage);
      }
      credits = priceQuantity(rate.pricing, quantity, usage.quantity);
      usage.quantity = usage.quantity.plus(quantity);
      if (!usage.quantity.isWithinAccountRange()) {
        throw amountOutOfRange(`the usage of rate "${rate.id}" in this period`, { rate_id: rate.id });
      }
    } else {
      credits = priceQuantity(rate.pricing, quantity, Amount.ZERO);
    }
    const featureId = this.featureOfRate.get(rate.id) ?? null;
    if (featureId !== null) {
      const uses = this.featureUsage?.get(featureId) ?? [];
      uses.push({ at: event.time, quantity: quantity });
      this.featureUsage = setIn(this.featureUsage, featureId, uses);
    }
    let debitId: string | null = null;
    if (credits.isPositive()) {
      const ledger = this.session?.burningLedger(rate.creditType) ?? (await this.ledger(rate.creditType));
      const debit = this.payer(
        ledger,
        {
          amount: credits,
          featureId,
          description: `usage event ${event.id} rated by ${rate.id}`,
          metadata:
            event.source === null
              ? { event_id: event.id, rate_id: rate.id }
              : { event_id: event.id, event_source: event.source, rate_id: rate.id },
        },
        this.now,
      );
      debitId = debit.id;
    }
    this.burns.push({
      workspaceId: this.workspaceId,
      eventKey: event.eventKey,
      rateId: rate.id,
      customerId: this.customerId,
      debitId,
      quantity: quantity,
      credits: credits,
      createdAt: this.now,
    });
  }

  /** Opens the customer's session and a credit type's ledger, marking the burn (callers first try {@link LedgerSession.burningLedger}). */
  private async ledger(creditType: string): Promise<CreditLedger> {
    let ledger: CreditLedger;
    if (this.session === null) {
      // Resets due before these burns come first, so usage after a reset draws on the new
      // allowance; the upkeep and this first ledger come from one read (prefetched by the chunk).
      const key = { workspaceId: this.workspaceId, customerId: this.customerId, creditType };
      const opened = await LedgerSession.openWithLedger(this.ctx, this.tx, key, this.now);
      this.session = opened.session;
      ledger = opened.ledger;
    } else {
      ledger = await this.session.ledger(creditType);
    }
    this.session.burned(creditType);
    return ledger;
  }

  /** Whether its ledger session is open (its first ledger loaded). */
  get opened(): boolean {
    return this.session !== null;
  }

  /** Writes the ledgers and period usage; returns the burns for the caller to store (in bulk). */
  async save(): Promise<EventBurn[]> {
    if (this.sharedSession === null) await this.session?.save();
    for (const [featureId, uses] of this.featureUsage ?? []) {
      await recordFeatureUsage(this.ctx, this.tx, {
        workspaceId: this.workspaceId,
        customerId: this.customerId,
        featureId,
        uses,
      });
    }
    for (const u of this.usage?.values() ?? []) {
      await this.tx.setRateUsage(this.workspaceId, this.customerId, u.rateId, u.period, u.quantity);
    }
    return this.burns;
  }
}

/** One rated burn to pay: credits, the feature its rate prices, and how the debit describes it. */
export interface BurnToPay {
  readonly amount: Amount;
  readonly featureId: string | null;
  readonly description: string;
  readonly metadata: Record<string, unknown>;
}

/**
 * Pays a rated burn on the customer's ledger of its credit type and returns the debit (or
 * capture). Usage already happened, so a payer never refuses.
 */
export type BurnPayer = (ledger: CreditLedger, burn: BurnToPay, now: Instant) => DebitRecord;

/** Ingest's payer: a debit with overage allowed. */
const payByDebit: BurnPayer = (ledger, burn, now) => {
  const debit = ledger.debit(extend(burn, { allowOverage: true }), now);
  if ('refused' in debit) throw new Error('a debit with overage allowed cannot be refused');
  return debit;
};

/**
 * Stores and rates events of one customer inside the caller's transaction (its lock held), paying
 * each burn with `payer` on the caller's ledger session, which the caller saves. For usage that
 * arrives as signed records (licensing): the events are deduplicated by key like ingest's.
 */
export async function ingestOwnEvents(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    readonly workspaceId: string;
    readonly customerId: string;
    readonly session: LedgerSession;
    readonly events: readonly IncomingEvent[];
    readonly payer: BurnPayer;
    readonly now: Instant;
  },
): Promise<EventOutcome[]> {
  const { workspaceId, customerId, now } = input;
  const rules = compileRules(await tx.listRatingRules(workspaceId));
  const featureOfRate = rules.seq > 0 ? await featuresByRate(tx, workspaceId) : new Map<string, string>();
  const burner = new Burner(ctx, tx, workspaceId, customerId, now, featureOfRate, input.payer, input.session);
  const outcomes: EventOutcome[] = [];
  for (const event of input.events) {
    const reading = readEvent(rules, event);
    if (reading.refusal !== null) {
      outcomes.push(reading.refusal);
      continue;
    }
    if (rules.byEventType.has(event.type) && !(await burner.reserve(event, reading.priced))) {
      outcomes.push('value_out_of_range');
      continue;
    }
    const stored = storedEventOf(event, workspaceId, rules, reading, now);
    if (!(await tx.insertEvent(stored))) {
      outcomes.push('duplicate');
      continue;
    }
    outcomes.push(stored.unmetered ? 'unmetered' : 'accepted');
    if (stored.unmetered) continue;
    for (const { rate, quantity } of reading.priced) await burner.burn(stored, rate, quantity);
  }
  await tx.insertBurns(await burner.save());
  return outcomes;
}

/** The cost of hypothetical events for a customer now: nothing is written. */
export async function quoteEvents(
  ctx: ServiceContext,
  input: {
    workspaceId: string;
    customerId: string;
    events: readonly { type: string; time: Instant | null; data: unknown }[];
  },
): Promise<{
  credits: Amount;
  creditType: string;
  lines: { rateId: string; creditType: string; quantity: Amount; credits: Amount }[];
  available: Amount;
  allowed: boolean;
}> {
  const reads = ctx.storage.read;
  await requireCustomer(reads, input.workspaceId, input.customerId);
  const now = ctx.clock.now();
  const rules = compileRules(await reads.listRatingRules(input.workspaceId));
  const usage = new Map<string, Amount>();
  const lines = new Map<string, { rateId: string; creditType: string; quantity: Amount; credits: Amount }>();
  for (const [index, event] of input.events.entries()) {
    const time = event.time ?? now;
    if (isOutOfRange(rules, event)) {
      throw new BurndownError(
        ErrorCode.amountOutOfRange,
        `events[${index}] has a usage value or a price past the value range (at most 20 integer digits)`,
        { index },
      );
    }
    for (const { rate, meter } of rules.byEventType.get(event.type) ?? []) {
      const period = ratingPeriodStart(time);
      const key = `${rate.id}/${period}`;
      const before = !pricingUsesPeriodUsage(rate.pricing)
        ? Amount.ZERO
        : (usage.get(key) ??
          (await reads.getRateUsage(input.workspaceId, input.customerId, rate.id, period)));
      const rated = rateEvent(rate, meter, { type: event.type, data: event.data }, before);
      if (rated === null) continue;
      usage.set(key, before.plus(rated.quantity));
      const line = lines.get(rate.id) ?? {
        rateId: rate.id,
        creditType: rate.creditType,
        quantity: Amount.ZERO,
        credits: Amount.ZERO,
      };
      line.quantity = line.quantity.plus(rated.quantity);
      line.credits = line.credits.plus(rated.credits);
      lines.set(rate.id, line);
    }
  }
  const creditTypes = new Set([...lines.values()].map((l) => l.creditType));
  if (creditTypes.size > 1) {
    throw invalidRequest('these events are priced in more than one credit type; quote them separately', {
      credit_types: [...creditTypes],
    });
  }
  const creditType = [...creditTypes][0] ?? 'credits';
  const ledger = new CreditLedger(
    await reads.loadLedger({ workspaceId: input.workspaceId, customerId: input.customerId, creditType }),
    ctx.ids,
  );
  ledger.advanceTo(now);
  const available = ledger.availableAt(now);
  const credits = Amount.sum([...lines.values()].map((l) => l.credits));
  return {
    credits,
    creditType,
    lines: [...lines.values()],
    available,
    allowed: !credits.greaterThan(available),
  };
}

/** Bounds of one page of meter usage (documented in the README, "Metering and rating"). */
export const USAGE_PAGE = {
  /** Rows per page: default and most. */
  defaultLimit: 100,
  maxLimit: 1000,
  /** A page stops at the first window boundary after reading this many events. */
  maxScannedEvents: 50_000,
  /** Most (window, group) cells one window may have; a window with more is refused. */
  maxGroupsPerWindow: 100_000,
  /** Events read per query, and other requests get the event loop after each such batch. */
  yieldEvery: 500,
} as const;

/** Where the next page of meter usage starts: a window, and how many of its rows were sent. */
export interface UsagePosition {
  readonly windowStart: Instant;
  readonly offset: number;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One page of a meter's usage by window (aligned in `timeZone`) and group, in window then group
 * order. Events are streamed in time order and folded one window at a time, so memory holds one
 * window's cells; a page ends after `limit` rows, or at the first window boundary after
 * {@link USAGE_PAGE}.maxScannedEvents events, and the event loop is yielded every
 * {@link USAGE_PAGE}.yieldEvery events so other requests are not held up.
 */
export async function meterUsage(
  ctx: ServiceContext,
  input: {
    workspaceId: string;
    meterId: string;
    customerId: string | null;
    from: Instant | null;
    to: Instant | null;
    window: WindowUnit;
    groupBy: readonly string[];
    timeZone: string;
    limit?: number;
    after?: UsagePosition | null;
  },
): Promise<{ rows: UsageRow[]; next: UsagePosition | null }> {
  const record = await ctx.storage.read.getMeter(input.workspaceId, input.meterId);
  if (!record) throw notFound('meter', input.meterId);
  for (const name of input.groupBy) {
    if (!(name in record.groupBy))
      throw invalidRequest(`group_by ${name} is not a dimension of this meter`, { field: 'group_by' });
  }
  const limit = input.limit ?? USAGE_PAGE.defaultLimit;
  const after = input.after ?? null;
  const meter = compileMeter(record);
  const from = after === null ? input.from : Math.max(input.from ?? after.windowStart, after.windowStart);
  const events = ctx.storage.read.scanEvents({
    workspaceId: input.workspaceId,
    type: meter.eventType,
    customerId: input.customerId,
    from,
    to: input.to,
    batchSize: USAGE_PAGE.yieldEvery,
  });
  const usage = new UsageAccumulator(meter, input.window, input.timeZone, input.groupBy);
  const rows: UsageRow[] = [];
  let current: { start: Instant; end: Instant } | null = null;
  let scanned = 0;
  let next: UsagePosition | null = null;
  // Emits the finished window; returns where the next page starts when this page is full.
  const flush = (): UsagePosition | null => {
    if (current === null) return null;
    const windowRows = usage.rows();
    usage.clear();
    const skip = after !== null && after.windowStart === current.start ? after.offset : 0;
    const room = limit - rows.length;
    const taken = windowRows.slice(skip, skip + room);
    rows.push(...taken);
    return skip + taken.length < windowRows.length
      ? { windowStart: current.start, offset: skip + taken.length }
      : null;
  };
  for await (const event of events) {
    scanned += 1;
    if (scanned % USAGE_PAGE.yieldEvery === 0) await yieldToEventLoop();
    if (current === null || event.time < current.start || event.time >= current.end) {
      const start = windowStart(event.time, input.window, input.timeZone);
      next = flush();
      if (next !== null) break;
      if (current !== null && (rows.length >= limit || scanned > USAGE_PAGE.maxScannedEvents)) {
        next = { windowStart: start, offset: 0 };
        break;
      }
      current = { start, end: nextWindowStart(start, input.window, input.timeZone) };
    }
    usage.add(event, current.start);
    if (usage.size > USAGE_PAGE.maxGroupsPerWindow) {
      throw invalidRequest(
        `a window has more than ${USAGE_PAGE.maxGroupsPerWindow} groups; use a shorter window, fewer group_by dimensions or customer_id`,
        { field: 'group_by', maximum: USAGE_PAGE.maxGroupsPerWindow },
      );
    }
  }
  if (next === null) next = flush();
  return { rows, next };
}

/** Progress of a backfill, reported after each chunk. */
export interface BackfillProgress {
  readonly scanned: number;
  readonly burned: number;
  readonly alreadyBurned: number;
}

/**
 * Applies a rate created later to stored events (of its meter's type, in the range), burning each
 * matching event that this rate has not burned yet. Idempotent: running it again burns nothing.
 * Events are processed in time order, so graduated tiers accumulate as they would have live.
 */
export async function backfillRate(
  ctx: ServiceContext,
  input: { workspaceId: string; rateId: string; from: Instant | null; to: Instant | null },
  onProgress: (progress: BackfillProgress) => void = () => undefined,
): Promise<BackfillProgress> {
  const reads = ctx.storage.read;
  const record = await reads.getRate(input.workspaceId, input.rateId);
  if (!record) throw notFound('rate', input.rateId);
  const meterRecord = await reads.getMeter(input.workspaceId, record.meterId);
  if (!meterRecord) throw notFound('meter', record.meterId);
  const rate = compileRate(record);
  const meter = compileMeter(meterRecord);
  const progress = { scanned: 0, burned: 0, alreadyBurned: 0 };
  let chunk: StoredEvent[] = [];
  const flush = async () => {
    const byCustomer = new Map<string, StoredEvent[]>();
    for (const e of chunk) byCustomer.set(e.customerId, [...(byCustomer.get(e.customerId) ?? []), e]);
    chunk = [];
    await Promise.all(
      [...byCustomer].map(([customerId, list]) =>
        ctx.storage
          .write(customerLockKey(input.workspaceId, customerId), async (tx) => {
            // Counted per attempt and added only once the transaction committed, so a retried or
            // rolled-back transaction does not inflate the report.
            const counts = { burned: 0, alreadyBurned: 0 };
            const features = await featuresByRate(tx, input.workspaceId);
            const burner = new Burner(ctx, tx, input.workspaceId, customerId, ctx.clock.now(), features);
            for (const event of list) {
              if (await tx.getBurn(input.workspaceId, event.eventKey, rate.id)) counts.alreadyBurned += 1;
              else {
                const quantity = rateQuantity(rate, meter, event);
                if (quantity === null) continue;
                await burner.burn(event, rate, quantity);
                counts.burned += 1;
              }
            }
            await tx.insertBurns(await burner.save());
            return counts;
          })
          .then((counts) => {
            progress.burned += counts.burned;
            progress.alreadyBurned += counts.alreadyBurned;
          }),
      ),
    );
    onProgress({ ...progress });
  };
  for await (const event of reads.scanEvents({
    workspaceId: input.workspaceId,
    type: meter.eventType,
    customerId: null,
    from: input.from,
    to: input.to,
  })) {
    progress.scanned += 1;
    chunk.push(event);
    if (chunk.length >= 1000) await flush();
  }
  await flush();
  return progress;
}
