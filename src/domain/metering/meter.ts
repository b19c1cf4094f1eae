import { Amount } from '../amount/amount.js';
import type { Instant } from '../time/instant.js';
import { nextWindowStart, type WindowUnit, windowStart } from '../time/zoned.js';
import { type JsonPath, readJsonPath } from './json-path.js';
import { isUsageValueOutOfRange, parseUsageValue, usageValueFrom } from './usage-value.js';

/** How a meter folds events into one number per window. */
export type Aggregation = 'sum' | 'count' | 'max' | 'unique_count';
export const AGGREGATIONS: readonly Aggregation[] = ['sum', 'count', 'max', 'unique_count'];

/** A meter: which events it reads and how, compiled (paths parsed). */
export interface MeterDefinition {
  readonly id: string;
  readonly eventType: string;
  readonly aggregation: Aggregation;
  /** Where the value is (`sum`, `max`, `unique_count`); `count` needs none. */
  readonly valuePath: JsonPath | null;
  readonly valueProperty: string | null;
  /** Dimension name → where its value is. */
  readonly groupBy: Readonly<Record<string, JsonPath>>;
  readonly groupByText: Readonly<Record<string, string>>;
  readonly createdAt: Instant;
}

/** The part of an event a meter reads. */
export interface MeteredEvent {
  readonly time: Instant;
  readonly data: unknown;
}

/** A dimension value as reported: strings as they are, anything else as its JSON text; missing is null. */
export function dimensionValue(data: unknown, path: JsonPath): string | null {
  const value = readJsonPath(data, path);
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The dimensions of one event under a meter's `group_by`. */
export function dimensionsOf(meter: MeterDefinition, data: unknown): Record<string, string | null> {
  const group: Record<string, string | null> = {};
  for (const [name, path] of Object.entries(meter.groupBy)) group[name] = dimensionValue(data, path);
  return group;
}

/**
 * The quantity one event contributes: `count` → 1; `sum`/`max` → the numeric value at the
 * value path (null when it is missing or not a number, and the event is then not metered).
 */
export function quantityOf(meter: MeterDefinition, data: unknown): Amount | null {
  if (meter.aggregation === 'count') return Amount.of(1n);
  if (meter.valuePath === null) return null;
  return usageValueFrom(readJsonPath(data, meter.valuePath));
}

/** The quantity of one event on a `count` meter (immutable, so shared). */
const ONE = Amount.of(1n);

/**
 * {@link quantityOf} and {@link isQuantityOutOfRange} from one read of the event's value: the
 * quantity, null when the meter reads none, or `out_of_range` for a number past the value range.
 */
export function readQuantity(meter: MeterDefinition, data: unknown): Amount | null | 'out_of_range' {
  if (meter.aggregation === 'count') return ONE;
  if (meter.valuePath === null) return null;
  return parseUsageValue(readJsonPath(data, meter.valuePath));
}

/** Whether the event's value for this meter is a number past the value range (ingest refuses such an event). */
export function isQuantityOutOfRange(meter: MeterDefinition, data: unknown): boolean {
  if (meter.aggregation === 'count' || meter.valuePath === null) return false;
  return isUsageValueOutOfRange(readJsonPath(data, meter.valuePath));
}

/**
 * Whether a meter can read the event's data: `count` always; `unique_count` when the value is
 * present; `sum`/`max` when it is a number. An event no meter of its type reads is unmetered.
 */
export function meterReads(meter: MeterDefinition, data: unknown): boolean {
  if (meter.aggregation === 'count') return true;
  if (meter.valuePath === null) return false;
  if (meter.aggregation === 'unique_count') {
    const raw = readJsonPath(data, meter.valuePath);
    return raw !== undefined && raw !== null;
  }
  return quantityOf(meter, data) !== null;
}

/** One reported window of a meter's usage. */
export interface UsageRow {
  readonly windowStart: Instant;
  readonly windowEnd: Instant;
  readonly value: Amount;
  readonly group: Readonly<Record<string, string | null>>;
}

/**
 * Aggregates events into windows aligned in `timeZone`, grouped by the chosen dimensions. Each
 * event counts in the window of its own time (late events included). Windows without events
 * are left out. Pure: callers pass the events (any order).
 */
export function aggregateUsage(input: {
  readonly meter: MeterDefinition;
  readonly events: Iterable<MeteredEvent>;
  readonly window: WindowUnit;
  readonly timeZone: string;
  readonly groupBy: readonly string[];
}): UsageRow[] {
  const usage = new UsageAccumulator(input.meter, input.window, input.timeZone, input.groupBy);
  for (const event of input.events) usage.add(event);
  return usage.rows();
}

/**
 * Folds events one at a time into (window, group) cells, so a caller streaming events in time
 * order can emit and drop each window as soon as the next one starts (see the paged meter usage).
 * `cells` is how many (window, group) cells it holds, for callers that bound memory.
 */
export class UsageAccumulator {
  private readonly cells = new Map<
    string,
    {
      start: Instant;
      group: Record<string, string | null>;
      sum: bigint;
      max: bigint | null;
      count: number;
      unique: Set<string>;
    }
  >();

  constructor(
    private readonly meter: MeterDefinition,
    private readonly window: WindowUnit,
    private readonly timeZone: string,
    private readonly groupBy: readonly string[],
  ) {}

  get size(): number {
    return this.cells.size;
  }

  /** Adds one event; `start` is its window's start when the caller already knows it. */
  add(event: MeteredEvent, start: Instant = windowStart(event.time, this.window, this.timeZone)): void {
    const meter = this.meter;
    let value: Amount | null = null;
    let uniqueKey: string | null = null;
    if (meter.aggregation === 'unique_count') {
      if (meter.valuePath === null) return;
      const raw = readJsonPath(event.data, meter.valuePath);
      if (raw === undefined || raw === null) return;
      uniqueKey = typeof raw === 'string' ? `s:${raw}` : `j:${JSON.stringify(raw)}`;
    } else {
      value = quantityOf(meter, event.data);
      if (value === null) return;
    }
    const group: Record<string, string | null> = {};
    for (const name of this.groupBy) {
      const path = meter.groupBy[name];
      group[name] = path ? dimensionValue(event.data, path) : null;
    }
    const key = JSON.stringify([start, this.groupBy.map((n) => group[n])]);
    let cell = this.cells.get(key);
    if (!cell) {
      cell = { start, group, sum: 0n, max: null, count: 0, unique: new Set() };
      this.cells.set(key, cell);
    }
    cell.count += 1;
    if (value !== null) {
      cell.sum += value.units;
      if (cell.max === null || value.units > cell.max) cell.max = value.units;
    }
    if (uniqueKey !== null) cell.unique.add(uniqueKey);
  }

  /** The rows so far, by window start then group. */
  rows(): UsageRow[] {
    const rows: UsageRow[] = [];
    for (const cell of this.cells.values()) {
      const units =
        this.meter.aggregation === 'sum' || this.meter.aggregation === 'count'
          ? cell.sum
          : this.meter.aggregation === 'max'
            ? (cell.max ?? 0n)
            : BigInt(cell.unique.size) * 10n ** 12n;
      rows.push({
        windowStart: cell.start,
        windowEnd: nextWindowStart(cell.start, this.window, this.timeZone),
        value: Amount.fromUnits(units),
        group: cell.group,
      });
    }
    const keyed = rows.map((row) => ({ row, group: JSON.stringify(row.group) }));
    keyed.sort((a, b) => a.row.windowStart - b.row.windowStart || (a.group < b.group ? -1 : 1));
    return keyed.map((k) => k.row);
  }

  /** Forgets every cell (the caller emitted them). */
  clear(): void {
    this.cells.clear();
  }
}
