import { Amount } from '../amount/amount.js';
import type { Instant } from '../time/instant.js';
import { nextWindowStart, type WindowUnit, windowStart } from '../time/zoned.js';
import { type JsonPath, readJsonPath } from './json-path.js';
import { usageValueFrom } from './usage-value.js';

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
  const { meter } = input;
  type Cell = {
    start: Instant;
    group: Record<string, string | null>;
    sum: bigint;
    max: bigint | null;
    count: number;
    unique: Set<string>;
  };
  const cells = new Map<string, Cell>();
  for (const event of input.events) {
    let value: Amount | null = null;
    let uniqueKey: string | null = null;
    if (meter.aggregation === 'unique_count') {
      if (meter.valuePath === null) continue;
      const raw = readJsonPath(event.data, meter.valuePath);
      if (raw === undefined || raw === null) continue;
      uniqueKey = typeof raw === 'string' ? `s:${raw}` : `j:${JSON.stringify(raw)}`;
    } else {
      value = quantityOf(meter, event.data);
      if (value === null) continue;
    }
    const start = windowStart(event.time, input.window, input.timeZone);
    const group: Record<string, string | null> = {};
    for (const name of input.groupBy) {
      const path = meter.groupBy[name];
      group[name] = path ? dimensionValue(event.data, path) : null;
    }
    const key = JSON.stringify([start, input.groupBy.map((n) => group[n])]);
    let cell = cells.get(key);
    if (!cell) {
      cell = { start, group, sum: 0n, max: null, count: 0, unique: new Set() };
      cells.set(key, cell);
    }
    cell.count += 1;
    if (value !== null) {
      cell.sum += value.units;
      if (cell.max === null || value.units > cell.max) cell.max = value.units;
    }
    if (uniqueKey !== null) cell.unique.add(uniqueKey);
  }
  const rows: UsageRow[] = [];
  for (const cell of cells.values()) {
    const units =
      meter.aggregation === 'sum' || meter.aggregation === 'count'
        ? cell.sum
        : meter.aggregation === 'max'
          ? (cell.max ?? 0n)
          : BigInt(cell.unique.size) * 10n ** 12n;
    rows.push({
      windowStart: cell.start,
      windowEnd: nextWindowStart(cell.start, input.window, input.timeZone),
      value: Amount.fromUnits(units),
      group: cell.group,
    });
  }
  return rows.sort(
    (a, b) => a.windowStart - b.windowStart || (JSON.stringify(a.group) < JSON.stringify(b.group) ? -1 : 1),
  );
}
