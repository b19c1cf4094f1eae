/**
 * Backtest of the depletion forecast (src/domain/forecast) on synthetic customers whose burn
 * pattern is known: steady, bursty, growing and weekly. Each customer has 28 days of history and a
 * balance that the customer's actual future consumption exhausts on a known day (7–60 days
 * ahead); the forecast sees only the history and the balance. Prints a Markdown table of the
 * errors (docs/forecast.md publishes it), against a naive baseline (balance ÷ the window's mean).
 *
 * Run: `npm run bench:forecast` (deterministic: fixed seeds).
 */
import { DAY_MS, forecastDepletion, seededRandom } from '../src/domain/forecast/forecast.js';

type Pattern = 'steady' | 'bursty' | 'growing' | 'weekly';
const PATTERNS: Pattern[] = ['steady', 'bursty', 'growing', 'weekly'];
const CUSTOMERS = 40;
const WINDOW = 28;
const FUTURE = 120;
// A Monday at midnight UTC, so weekday effects line up with the calendar.
const START = Date.UTC(2030, 0, 7);

function normal(random: () => number): number {
  const u = Math.max(1e-12, random());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Consumption per day for WINDOW + FUTURE days of one synthetic customer. */
function consumption(pattern: Pattern, random: () => number): number[] {
  const scale = 50 + random() * 450;
  const days: number[] = [];
  for (let d = 0; d < WINDOW + FUTURE; d++) {
    const weekday = (1 + d) % 7; // day 0 is a Monday
    let v: number;
    switch (pattern) {
      case 'steady':
        v = scale * (1 + 0.1 * normal(random));
        break;
      case 'bursty':
        v = scale * 0.3 * (1 + 0.2 * normal(random)) + (random() < 0.15 ? scale * 4 * (0.5 + random()) : 0);
        break;
      case 'growing':
        v = scale * 0.5 * 1.025 ** d * (1 + 0.15 * normal(random));
        break;
      case 'weekly':
        v = scale * (weekday === 0 || weekday === 6 ? 0.15 : 1.3) * (1 + 0.1 * normal(random));
        break;
    }
    days.push(Math.max(0, v));
  }
  return days;
}

interface Row {
  pattern: Pattern;
  absErrDays: number[];
  absPctErr: number[];
  naiveAbsErrDays: number[];
  naiveAbsPctErr: number[];
  covered: number;
  bias: number[];
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;

const rows: Row[] = [];
for (const [pi, pattern] of PATTERNS.entries()) {
  const row: Row = {
    pattern,
    absErrDays: [],
    absPctErr: [],
    naiveAbsErrDays: [],
    naiveAbsPctErr: [],
    covered: 0,
    bias: [],
  };
  for (let c = 0; c < CUSTOMERS; c++) {
    const random = seededRandom(1000 * (pi + 1) + c);
    const days = consumption(pattern, random);
    const now = START + WINDOW * DAY_MS; // midnight: nothing consumed today yet
    const targetDays = 7 + random() * 53;
    // The balance the actual future consumption exhausts after exactly targetDays.
    let balance = 0;
    const whole = Math.floor(targetDays);
    for (let d = 0; d < whole; d++) balance += days[WINDOW + d]!;
    balance += days[WINDOW + whole]! * (targetDays - whole);
    const actual = now + targetDays * DAY_MS;
    const result = forecastDepletion({
      now,
      daily: days.slice(0, WINDOW),
      consumedToday: 0,
      grants: [{ id: 'g', remaining: balance, priority: 10, effectiveAt: 0, expiresAt: null }],
      overage: 0,
      scheduled: [],
      autoTopUp: null,
    });
    if (result.status !== 'forecast' || result.p50 === null) throw new Error(`${pattern}#${c}: no forecast`);
    const err = (result.p50 - actual) / DAY_MS;
    row.absErrDays.push(Math.abs(err));
    row.bias.push(err);
    row.absPctErr.push((100 * Math.abs(err)) / targetDays);
    const p10 = result.p10 ?? Number.POSITIVE_INFINITY;
    const p90 = result.p90 ?? Number.POSITIVE_INFINITY;
    if (p10 <= actual && actual <= p90) row.covered += 1;
    const naiveDays = balance / mean(days.slice(0, WINDOW));
    row.naiveAbsErrDays.push(Math.abs(naiveDays - targetDays));
    row.naiveAbsPctErr.push((100 * Math.abs(naiveDays - targetDays)) / targetDays);
  }
  rows.push(row);
}

const f = (v: number) => v.toFixed(1);
console.log(
  `Backtest: ${CUSTOMERS} synthetic customers per pattern, ${WINDOW}-day window, true depletion 7–60 days ahead.\n`,
);
console.log(
  '| pattern | model MAE (days) | model median abs % error | model mean bias (days) | p10–p90 coverage | naive MAE (days) | naive median abs % error |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.pattern} | ${f(mean(r.absErrDays))} | ${f(median(r.absPctErr))} % | ${f(mean(r.bias))} | ${f((100 * r.covered) / CUSTOMERS)} % | ${f(mean(r.naiveAbsErrDays))} | ${f(median(r.naiveAbsPctErr))} % |`,
  );
}
