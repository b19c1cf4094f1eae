import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type JsonPath, parseJsonPath, readJsonPath } from '../../src/domain/metering/json-path.js';
import { type Aggregation, aggregateUsage, type MeterDefinition } from '../../src/domain/metering/meter.js';
import { isUsageValueOutOfRange, usageValueFrom } from '../../src/domain/metering/usage-value.js';
import type { WindowUnit } from '../../src/domain/time/zoned.js';

/*
 * aggregateUsage against a reference written here from scratch: windows from UTC arithmetic and a
 * hand-written Europe/Berlin offset table (EU rule: CEST from 01:00 UTC on the last Sunday of March
 * to 01:00 UTC on the last Sunday of October), values carried as exact bigint units by the
 * generators themselves.
 */

const HOUR = 3_600_000;
const DAY = 86_400_000;
const ONE = 10n ** 12n;

// ---------------------------------------------------------------------------------------------
// Reference windows
// ---------------------------------------------------------------------------------------------

/** 01:00 UTC on the last Sunday of `monthIndex` (0-based) of `year`. */
function lastSundayAt0100Utc(year: number, monthIndex: number): number {
  const lastDay = Date.UTC(year, monthIndex + 1, 0);
  return lastDay - new Date(lastDay).getUTCDay() * DAY + HOUR;
}

/** Europe/Berlin's offset (valid since 1996): +2 h in summer time, +1 h otherwise. */
function berlinOffset(t: number): number {
  const year = new Date(t).getUTCFullYear();
  return t >= lastSundayAt0100Utc(year, 2) && t < lastSundayAt0100Utc(year, 9) ? 2 * HOUR : HOUR;
}

type Zone = 'UTC' | 'Europe/Berlin';
const offsetIn = (zone: Zone, t: number) => (zone === 'UTC' ? 0 : berlinOffset(t));

/** The instant of local midnight starting local day number `day` (Berlin never skips midnight). */
function localMidnight(zone: Zone, day: number): number {
  if (zone === 'UTC') return day * DAY;
  for (const offset of [HOUR, 2 * HOUR]) {
    const candidate = day * DAY - offset;
    if (berlinOffset(candidate) === offset) return candidate;
  }
  throw new Error('no local midnight');
}

function refWindow(zone: Zone, unit: WindowUnit, t: number): { start: number; end: number } {
  if (unit === 'hour') {
    // Both zones have whole-hour offsets that change on whole UTC hours: local hours are UTC hours.
    const start = Math.floor(t / HOUR) * HOUR;
    return { start, end: start + HOUR };
  }
  const local = new Date(t + offsetIn(zone, t));
  const [y, m, d] = [local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()];
  if (unit === 'day') {
    const day = Date.UTC(y, m, d) / DAY;
    return { start: localMidnight(zone, day), end: localMidnight(zone, day + 1) };
  }
  return {
    start: localMidnight(zone, Date.UTC(y, m, 1) / DAY),
    end: localMidnight(zone, Date.UTC(y, m + 1, 1) / DAY),
  };
}

// ---------------------------------------------------------------------------------------------
// Events with their expected contribution
// ---------------------------------------------------------------------------------------------

/** A raw usage value together with what it must count as (null: not a number, not metered). */
interface Value {
  readonly raw: unknown;
  readonly units: bigint | null;
  /** Identity for unique_count (null when absent). */
  readonly unique: string | null;
}

const MISSING = Symbol('missing');

/** Decimal text of `units` × 10^-12 with exactly `decimals` fractional digits (may carry trailing zeros). */
function decimalText(units: bigint, decimals: number): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const integer = abs / ONE;
  const fraction = (abs % ONE).toString().padStart(12, '0').slice(0, decimals);
  return `${negative ? '-' : ''}${integer}${decimals > 0 ? `.${fraction}` : ''}`;
}

const numericValue: fc.Arbitrary<Value> = fc.oneof(
  // JSON integers
  fc
    .integer({ min: -1_000, max: 1_000_000_000 })
    .map((n) => ({ raw: n, units: BigInt(n) * ONE, unique: `j:${n}` })),
  // decimal strings, up to 12 decimals (trailing zeros allowed)
  fc
    .tuple(fc.integer({ min: 0, max: 12 }), fc.bigInt({ min: -(10n ** 15n), max: 10n ** 21n }))
    .map(([decimals, n]) => {
      const units = n - (n % 10n ** BigInt(12 - decimals)); // keep `decimals` digits
      const text = decimalText(units, decimals);
      return { raw: text, units, unique: `s:${text}` };
    }),
  // JSON fractional numbers with ≤ 15 significant digits: their shortest text is the decimal itself
  fc
    .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: -999_999_999, max: 999_999_999 }))
    .map(([decimals, n]) => {
      const units = BigInt(n) * 10n ** BigInt(12 - decimals);
      return { raw: Number(decimalText(units, decimals)), units, unique: null };
    })
    .map((v) => ({ ...v, unique: `j:${JSON.stringify(v.raw)}` })),
  // exponent forms: 1e-7, 25e-12, 3e+15
  fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: -12, max: 15 })).map(([k, e]) => {
    const units =
      e >= -12 ? (BigInt(k) * ONE * 10n ** BigInt(Math.max(e, 0))) / 10n ** BigInt(Math.max(-e, 0)) : 0n;
    const raw = Number(`${k}e${e}`);
    return { raw, units, unique: `j:${JSON.stringify(raw)}` };
  }),
);

const unmeteredValue: fc.Arbitrary<Value> = fc.constantFrom<Value>(
  { raw: true, units: null, unique: 'j:true' },
  { raw: { n: 1 }, units: null, unique: 'j:{"n":1}' },
  { raw: [3], units: null, unique: 'j:[3]' },
  { raw: 'lots', units: null, unique: 's:lots' },
  { raw: 'NaN', units: null, unique: 's:NaN' },
  { raw: '1.0000000000001', units: null, unique: 's:1.0000000000001' }, // 13 decimals
  { raw: 0.1 + 0.2, units: null, unique: `j:${0.1 + 0.2}` }, // 0.30000000000000004
  { raw: null, units: null, unique: null },
  { raw: MISSING, units: null, unique: null },
);

/** unique_count values: a small pool so that repeats happen, strings and numbers kept apart. */
const uniqueValue: fc.Arbitrary<Value> = fc.constantFrom<Value>(
  { raw: 'u1', units: null, unique: 's:u1' },
  { raw: 'u2', units: null, unique: 's:u2' },
  { raw: '7', units: null, unique: 's:7' },
  { raw: 7, units: null, unique: 'j:7' },
  { raw: 8, units: null, unique: 'j:8' },
  { raw: true, units: null, unique: 'j:true' },
  { raw: null, units: null, unique: null },
  { raw: MISSING, units: null, unique: null },
);

interface GenEvent {
  readonly id: string;
  readonly time: number;
  readonly model: unknown; // MISSING, null, a string or a number
  readonly region: unknown;
  readonly value: Value;
}

const berlinChanges = [2024, 2025, 2026].flatMap((y) => [
  lastSundayAt0100Utc(y, 2),
  lastSundayAt0100Utc(y, 9),
]);

/** A few instants many events crowd around, so that windows hold several events. */
const anchors = [
  '2026-03-15T12:00:00Z',
  '2026-03-29T01:00:00Z', // Berlin spring forward
  '2026-10-25T01:00:00Z', // Berlin fall back
  '2026-01-31T23:00:00Z', // Berlin: already February 1st
  '2019-07-01T00:00:00Z', // late
].map(Date.parse);

const eventTime = fc.oneof(
  // crowded around an anchor (same hour, day or month windows)
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(...anchors), fc.integer({ min: -90, max: 90 }), fc.boolean())
      .map(([at, minutes, sameDay]) => at + (sameDay ? minutes * 60_000 : minutes * 8 * HOUR)),
  },
  // "now"-ish
  fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 11, 31) }),
  // late: far in the past
  fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2025, 11, 31) }),
  // around Berlin DST changes (within a day and a half), often on whole hours
  fc
    .tuple(fc.constantFrom(...berlinChanges), fc.integer({ min: -36 * 60, max: 36 * 60 }), fc.boolean())
    .map(([at, minutes, whole]) => at + (whole ? Math.round(minutes / 60) * HOUR : minutes * 60_000)),
  // around month ends in Berlin (local midnight of the 1st is 22:00 or 23:00 UTC the day before)
  fc
    .tuple(
      fc.integer({ min: 2024, max: 2026 }),
      fc.integer({ min: 0, max: 11 }),
      fc.integer({ min: -3 * 60, max: 3 * 60 }),
    )
    .map(([y, m, minutes]) => Date.UTC(y, m, 1) + minutes * 60_000),
);

const dimension = fc.constantFrom<unknown>('a', 'b', 7, null, MISSING);
const region = fc.constantFrom<unknown>('eu', 'us', 'eu', MISSING);

function eventsArb(value: fc.Arbitrary<Value>): fc.Arbitrary<GenEvent[]> {
  return fc
    .array(
      fc.record({
        id: fc.integer({ min: 0, max: 60 }).map((n) => `evt-${n}`),
        time: eventTime,
        model: dimension,
        region,
        value,
      }),
      { maxLength: 60, size: 'max' },
    )
    .map((events) => {
      // Dedup happens at ingest: the first event with an id is stored, later ones are duplicates.
      const seen = new Set<string>();
      return events.filter((e) => !seen.has(e.id) && seen.add(e.id) !== undefined);
    });
}

function dataOf(e: GenEvent): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (e.model !== MISSING) data['model'] = e.model;
  if (e.region !== MISSING) data['meta'] = { region: e.region };
  if (e.value.raw !== MISSING) data['usage'] = { value: e.value.raw };
  return data;
}

/** The dimension value as reported: strings as they are, numbers as their JSON text, missing/null as null. */
const dimensionText = (v: unknown): string | null =>
  v === MISSING || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);

function meter(aggregation: Aggregation): MeterDefinition {
  const valuePath: JsonPath | null = aggregation === 'count' ? null : ['usage', 'value'];
  return {
    id: 'm',
    eventType: 'llm.tokens',
    aggregation,
    valuePath,
    valueProperty: valuePath === null ? null : '$.usage.value',
    groupBy: { model: ['model'], region: ['meta', 'region'] },
    groupByText: { model: '$.model', region: '$.meta.region' },
    createdAt: 0,
  };
}

interface RefRow {
  start: number;
  end: number;
  group: Record<string, string | null>;
  value: bigint;
}

function reference(
  aggregation: Aggregation,
  events: readonly GenEvent[],
  unit: WindowUnit,
  zone: Zone,
  groupBy: readonly string[],
): Map<string, RefRow> {
  const cells = new Map<string, RefRow & { values: bigint[]; uniques: Set<string> }>();
  for (const e of events) {
    if (aggregation === 'unique_count' && e.value.unique === null) continue;
    if ((aggregation === 'sum' || aggregation === 'max') && e.value.units === null) continue;
    const { start, end } = refWindow(zone, unit, e.time);
    const dims: Record<string, string | null> = {
      model: dimensionText(e.model),
      region: dimensionText(e.region),
    };
    const group: Record<string, string | null> = {};
    for (const name of groupBy) group[name] = dims[name] ?? null;
    const key = JSON.stringify([start, groupBy.map((n) => group[n])]);
    let cell = cells.get(key);
    if (!cell) {
      cell = { start, end, group, value: 0n, values: [], uniques: new Set() };
      cells.set(key, cell);
    }
    if (e.value.units !== null) cell.values.push(e.value.units);
    if (e.value.unique !== null) cell.uniques.add(e.value.unique);
    if (aggregation === 'count') cell.value += ONE;
  }
  const rows = new Map<string, RefRow>();
  for (const [key, cell] of cells) {
    let value = cell.value;
    if (aggregation === 'sum') value = cell.values.reduce((a, b) => a + b, 0n);
    if (aggregation === 'max') value = cell.values.reduce(bigMax);
    if (aggregation === 'unique_count') value = BigInt(cell.uniques.size) * ONE;
    rows.set(key, { start: cell.start, end: cell.end, group: cell.group, value });
  }
  return rows;
}

/** The larger of two bigints (Math.max does not take them). */
function bigMax(x: bigint, y: bigint): bigint {
  return x < y ? y : x;
}

const groupByArb = fc.constantFrom<readonly string[]>(
  [],
  ['model'],
  ['region'],
  ['model', 'region'],
  ['region', 'model'],
);

function checkAgainstReference(
  aggregation: Aggregation,
  events: readonly GenEvent[],
  unit: WindowUnit,
  zone: Zone,
  groupBy: readonly string[],
) {
  const rows = aggregateUsage({
    meter: meter(aggregation),
    events: events.map((e) => ({ time: e.time, data: dataOf(e) })),
    window: unit,
    timeZone: zone,
    groupBy,
  });
  const expected = reference(aggregation, events, unit, zone, groupBy);
  const actual = new Map(
    rows.map((r) => [
      JSON.stringify([r.windowStart, groupBy.map((n) => r.group[n])]),
      { start: r.windowStart, end: r.windowEnd, group: { ...r.group }, value: r.value.units },
    ]),
  );
  expect(actual.size, 'one row per (window, group), no duplicates').toBe(rows.length);
  expect(actual).toEqual(expected);
  for (let k = 1; k < rows.length; k++) {
    expect(rows[k]!.windowStart).toBeGreaterThanOrEqual(rows[k - 1]!.windowStart);
  }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('reference sanity', () => {
  it('the hand-written Europe/Berlin table agrees with Intl', () => {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', timeZoneName: 'longOffset' });
    fc.assert(
      fc.property(
        fc.oneof(eventTime, fc.integer({ min: Date.UTC(1997, 0, 1), max: Date.UTC(2037, 0, 1) })),
        (t) => {
          const name = f.formatToParts(new Date(t)).find((p) => p.type === 'timeZoneName')?.value;
          expect(name).toBe(berlinOffset(t) === 2 * HOUR ? 'GMT+02:00' : 'GMT+01:00');
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('aggregateUsage against an independent reference', () => {
  const settings = fc.record({
    unit: fc.constantFrom<WindowUnit>('hour', 'day', 'month'),
    zone: fc.constantFrom<Zone>('UTC', 'Europe/Berlin'),
    groupBy: groupByArb,
  });
  const numeric = fc.oneof({ weight: 4, arbitrary: numericValue }, { weight: 1, arbitrary: unmeteredValue });

  for (const aggregation of ['sum', 'count', 'max'] as const) {
    it(`${aggregation}: per (window, group), hour/day/month windows in UTC and Europe/Berlin`, () => {
      fc.assert(
        fc.property(eventsArb(numeric), settings, (events, { unit, zone, groupBy }) =>
          checkAgainstReference(aggregation, events, unit, zone, groupBy),
        ),
        { numRuns: 250 },
      );
    });
  }

  it('unique_count: distinct values (strings and numbers apart, null/missing not counted)', () => {
    fc.assert(
      fc.property(eventsArb(uniqueValue), settings, (events, { unit, zone, groupBy }) =>
        checkAgainstReference('unique_count', events, unit, zone, groupBy),
      ),
      { numRuns: 250 },
    );
  });

  it('Europe/Berlin DST days: the 25 h day holds both 02:30s, each in its own hour window', () => {
    const events = [
      { time: Date.parse('2026-10-24T22:00:00Z'), data: { usage: { value: 1 } } }, // 00:00 local, first ms of the day
      { time: Date.parse('2026-10-25T00:30:00Z'), data: { usage: { value: 2 } } }, // 02:30 CEST
      { time: Date.parse('2026-10-25T01:30:00Z'), data: { usage: { value: 4 } } }, // 02:30 CET
      { time: Date.parse('2026-10-25T22:59:59.999Z'), data: { usage: { value: 8 } } }, // 23:59:59.999 local
      { time: Date.parse('2026-10-25T23:00:00Z'), data: { usage: { value: 16 } } }, // next day
      { time: Date.parse('2026-10-24T21:59:59.999Z'), data: { usage: { value: 32 } } }, // previous day
    ];
    const byDay = aggregateUsage({
      meter: meter('sum'),
      events,
      window: 'day',
      timeZone: 'Europe/Berlin',
      groupBy: [],
    });
    expect(
      byDay.map((r) => [
        new Date(r.windowStart).toISOString(),
        new Date(r.windowEnd).toISOString(),
        r.value.toString(),
      ]),
    ).toEqual([
      ['2026-10-23T22:00:00.000Z', '2026-10-24T22:00:00.000Z', '32'],
      ['2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', '15'],
      ['2026-10-25T23:00:00.000Z', '2026-10-26T23:00:00.000Z', '16'],
    ]);
    const byHour = aggregateUsage({
      meter: meter('sum'),
      events,
      window: 'hour',
      timeZone: 'Europe/Berlin',
      groupBy: [],
    });
    expect(
      byHour
        .filter(
          (r) =>
            r.windowStart >= Date.parse('2026-10-25T00:00:00Z') &&
            r.windowStart < Date.parse('2026-10-25T02:00:00Z'),
        )
        .map((r) => [new Date(r.windowStart).toISOString(), r.windowEnd - r.windowStart, r.value.toString()]),
    ).toEqual([
      ['2026-10-25T00:00:00.000Z', HOUR, '2'],
      ['2026-10-25T01:00:00.000Z', HOUR, '4'],
    ]);
    // The 23 h day of 2026-03-29 and a late event from 2001 in its own month window.
    const spring = aggregateUsage({
      meter: meter('count'),
      events: [
        { time: Date.parse('2026-03-28T23:00:00Z'), data: {} },
        { time: Date.parse('2026-03-29T21:59:59.999Z'), data: {} },
        { time: Date.parse('2001-02-14T12:00:00Z'), data: {} },
      ],
      window: 'day',
      timeZone: 'Europe/Berlin',
      groupBy: [],
    });
    expect(
      spring.map((r) => [
        new Date(r.windowStart).toISOString(),
        (r.windowEnd - r.windowStart) / HOUR,
        r.value.toString(),
      ]),
    ).toEqual([
      ['2001-02-13T23:00:00.000Z', 24, '1'],
      ['2026-03-28T23:00:00.000Z', 23, '2'],
    ]);
  });

  it('leaves out windows with no metered events and groups missing dimensions as null', () => {
    const rows = aggregateUsage({
      meter: meter('sum'),
      events: [
        { time: Date.parse('2026-01-01T10:00:00Z'), data: { model: 'a', usage: { value: '1.5' } } },
        { time: Date.parse('2026-01-01T11:00:00Z'), data: { model: 'a', usage: { value: true } } }, // not metered
        { time: Date.parse('2026-01-01T12:00:00Z'), data: { usage: { value: 2 } } },
      ],
      window: 'hour',
      timeZone: 'UTC',
      groupBy: ['model'],
    });
    expect(rows.map((r) => [new Date(r.windowStart).toISOString(), r.group, r.value.toString()])).toEqual([
      ['2026-01-01T10:00:00.000Z', { model: 'a' }, '1.5'],
      ['2026-01-01T12:00:00.000Z', { model: null }, '2'],
    ]);
  });
});

describe('usageValueFrom', () => {
  const text = (v: unknown) => {
    const a = usageValueFrom(v);
    return a === null ? null : a.toString();
  };

  it('reads JSON numbers by their shortest decimal text, exponents included', () => {
    expect(text(1200)).toBe('1200');
    expect(text(0.5)).toBe('0.5');
    expect(text(-3)).toBe('-3');
    expect(text(1e-7)).toBe('0.0000001');
    expect(text(1.5e-10)).toBe('0.00000000015');
    expect(text(1e-12)).toBe('0.000000000001');
    expect(text(-2.5e-8)).toBe('-0.000000025');
    expect(text(1e19)).toBe('10000000000000000000');
    expect(text(123456789.123456)).toBe('123456789.123456');
    expect(text(0)).toBe('0');
    expect(text(-0)).toBe('0');
  });

  it('reads exponent numbers up to 20 integer digits exactly; past them a value is out of range, not silently unmetered', () => {
    // A usage value has the range of a client's value (README "Amount range"): ingest refuses an
    // event with a larger one (value_out_of_range) instead of storing a value nothing can meter.
    expect(text(9.9e19)).toBe('99000000000000000000');
    expect(text('99999999999999999999.999999999999')).toBe('99999999999999999999.999999999999');
    for (const big of [1e20, 2e21, 1e35, 1e300, '1e35', '1E+400', `1${'0'.repeat(36)}`, '-1e20']) {
      expect(usageValueFrom(big)).toBeNull();
      expect(isUsageValueOutOfRange(big)).toBe(true);
    }
    for (const fine of [1e19, '0e500', 'abc', true, null, 1e-13])
      expect(isUsageValueOutOfRange(fine)).toBe(false);
  });

  it('reads decimal strings, with exponents and surrounding spaces', () => {
    expect(text('0.000125')).toBe('0.000125');
    expect(text('1500')).toBe('1500');
    expect(text('-7.25')).toBe('-7.25');
    expect(text('1e3')).toBe('1000');
    expect(text('1E-2')).toBe('0.01');
    expect(text(' 42 ')).toBe('42');
    expect(text('2.500000000000000')).toBe('2.5'); // zeros beyond 12 decimals carry no value
  });

  it('rejects booleans, objects, arrays, null, NaN/Infinity, non-numeric text and > 12 decimals', () => {
    for (const bad of [
      true,
      false,
      null,
      undefined,
      {},
      { value: 1 },
      [],
      [1],
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      'NaN',
      'Infinity',
      'abc',
      '',
      '  ',
      '1.2.3',
      '0x10',
      '1_000',
      '1.0000000000001',
      1e-13,
      0.1 + 0.2,
      '1e400',
      1e300,
      10n,
    ]) {
      expect(usageValueFrom(bad), String(bad)).toBeNull();
    }
  });

  it('round-trips any decimal string of ≤ 12 decimals exactly', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 32n) + 1n, max: 10n ** 32n - 1n }),
        fc.integer({ min: 0, max: 12 }),
        (n, decimals) => {
          const units = n - (n % 10n ** BigInt(12 - decimals));
          expect(usageValueFrom(decimalText(units, decimals))?.units).toBe(units);
        },
      ),
    );
  });

  it('a finite double below 1e20 is accepted iff some ≤ 12-decimal text denotes it, and then denotes exactly it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ min: -1e20, max: 1e20, noNaN: true, noDefaultInfinity: true }),
          fc
            .integer({ min: -1e9, max: 1e9 })
            .chain((n) => fc.integer({ min: 0, max: 14 }).map((e) => n / 10 ** e)),
        ),
        (d) => {
          fc.pre(Math.abs(d) < 1e20);
          const a = usageValueFrom(d);
          const representable = Number(d.toFixed(12)) === d;
          expect(a !== null, `${d}`).toBe(representable);
          if (a !== null) expect(Number(a.toString())).toBe(d === 0 ? 0 : d);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('parseJsonPath / readJsonPath', () => {
  it('parses the supported forms', () => {
    expect(parseJsonPath('$.tokens')).toEqual(['tokens']);
    expect(parseJsonPath('$.usage.input_tokens')).toEqual(['usage', 'input_tokens']);
    expect(parseJsonPath("$['model name']")).toEqual(['model name']);
    expect(parseJsonPath('$["model name"]')).toEqual(['model name']);
    expect(parseJsonPath('$.items[0].qty')).toEqual(['items', 0, 'qty']);
    expect(parseJsonPath('$[12]')).toEqual([12]);
    expect(parseJsonPath('$.a-b.$c._d')).toEqual(['a-b', '$c', '_d']);
    expect(parseJsonPath("$['it\\'s']")).toEqual(["it's"]);
    expect(parseJsonPath('$["a\\\\b"]')).toEqual(['a\\b']);
    expect(parseJsonPath("$['']")).toEqual(['']);
  });

  it('refuses everything else', () => {
    for (const bad of [
      '',
      '$',
      'tokens',
      '.tokens',
      '$tokens',
      '$.',
      '$..tokens',
      '$.0abc',
      '$[*]',
      '$.*',
      '$[-1]',
      '$[1.5]',
      "$['unterminated",
      '$["a"',
      '$.a b',
      '$.a[0',
      `$.${'a'.repeat(300)}`,
    ]) {
      expect(parseJsonPath(bad), bad).toBeNull();
    }
  });

  it('reads values, and undefined for missing steps, wrong container kinds or inherited properties', () => {
    const data = { a: { b: [10, { c: 'x' }] }, 'model name': 'm', n: null, arr: [1, 2] };
    expect(readJsonPath(data, ['a', 'b', 0])).toBe(10);
    expect(readJsonPath(data, ['a', 'b', 1, 'c'])).toBe('x');
    expect(readJsonPath(data, ['model name'])).toBe('m');
    expect(readJsonPath(data, ['n'])).toBeNull();
    expect(readJsonPath(data, ['a', 'b', 2])).toBeUndefined();
    expect(readJsonPath(data, ['a', 'x'])).toBeUndefined();
    expect(readJsonPath(data, ['n', 'x'])).toBeUndefined();
    expect(readJsonPath(data, ['a', 0])).toBeUndefined(); // index into an object
    expect(readJsonPath(data, ['arr', 'length'])).toBeUndefined(); // property of an array
    expect(readJsonPath(data, ['toString'])).toBeUndefined(); // inherited
    expect(readJsonPath(data, ['constructor'])).toBeUndefined();
    expect(readJsonPath(data, ['__proto__'])).toBeUndefined();
    expect(readJsonPath('text', ['length'])).toBeUndefined();
    expect(readJsonPath(JSON.parse('{"__proto__": {"x": 1}}'), ['__proto__', 'x'])).toBe(1); // own key from JSON
  });

  it('bracket paths built from any keys and indexes read back the value they point at', () => {
    const segment = fc.oneof(fc.string({ maxLength: 12, unit: 'grapheme' }), fc.nat({ max: 5 }));
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 6 }),
        fc.constantFrom("'", '"'),
        (segments, quote) => {
          let text = '$';
          for (const s of segments) {
            text +=
              typeof s === 'number'
                ? `[${s}]`
                : `[${quote}${s.replace(/\\/g, '\\\\').replace(new RegExp(quote, 'g'), `\\${quote}`)}${quote}]`;
          }
          fc.pre(text.length <= 256);
          const path = parseJsonPath(text);
          expect(path, text).toEqual(segments);
          const marker = { marker: true };
          expect(readJsonPath(buildAt(segments, marker), path as JsonPath)).toBe(marker);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** Data holding `leaf` at `segments` (own properties, even for "__proto__"). */
function buildAt(segments: readonly (string | number)[], leaf: unknown): unknown {
  let value: unknown = leaf;
  for (let k = segments.length - 1; k >= 0; k--) {
    const s = segments[k]!;
    if (typeof s === 'number') {
      const array: unknown[] = new Array(s + 1).fill(0);
      array[s] = value;
      value = array;
    } else {
      const object: Record<string, unknown> = {};
      Object.defineProperty(object, s, { value, enumerable: true, writable: true, configurable: true });
      value = object;
    }
  }
  return value;
}
