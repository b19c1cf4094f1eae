import { civilFromDays } from './civil.js';

/**
 * Instants are integer milliseconds since the Unix epoch, the precision the API promises
 * ("UTC with Z and millisecond precision"). Parsing accepts RFC 3339 with any offset.
 */

/** Milliseconds since 1970-01-01T00:00:00Z. */
export type Instant = number;

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Years an instant may have. RFC 3339 allows 0000–9999, but `Date.UTC` maps years 0–99 to
 * 1900–1999, and a period computed from a time near 9999 would run past what RFC 3339 can write.
 */
const MIN_YEAR = 1000;
const MAX_YEAR = 8999;

/** Parses an RFC 3339 timestamp, or returns null when it is not one (or names an impossible date). */
export function parseInstant(text: string): Instant | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = '', , sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  if (year < MIN_YEAR || year > MAX_YEAR) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return null;
  const millis = Number(frac.padEnd(3, '0').slice(0, 3));
  let instant = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (sign) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000;
    if (Number(oh) > 23 || Number(om) > 59) return null;
    instant += sign === '+' ? -offset : offset;
  }
  return Number.isFinite(instant) ? instant : null;
}

/**
 * Why {@link parseInstant} refused a text, as the end of a sentence naming the field ("time
 * …"): a leap second gets its own explanation, since RFC 3339 allows `:60` but instants here
 * (like POSIX and JavaScript time) have no leap seconds.
 */
export function whyNotAnInstant(text: string): string {
  const m = RFC3339.exec(text);
  if (m && m[6] === '60') {
    return 'is a leap second (:60), which Burndown does not count (its time, like POSIX time, has no leap seconds): send :59.999 or the next second instead';
  }
  if (m && (Number(m[1]) < MIN_YEAR || Number(m[1]) > MAX_YEAR)) {
    return `must be in the years ${MIN_YEAR} to ${MAX_YEAR}`;
  }
  return `must be an RFC 3339 timestamp such as 2026-01-15T10:00:00Z, in the years ${MIN_YEAR} to ${MAX_YEAR}`;
}

/** "00" to "59" and "000" to "999": the time of day is written from tables, not padded. */
const TWO_DIGITS = Array.from({ length: 60 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'));

/**
 * `YYYY-MM-DDT` by day number (days since the epoch), for recent days. Responses format many
 * instants (every debit's answer lists the customer's grants with their times), spread over
 * tens of thousands of distinct instants but few distinct days; the date part is the costly one.
 * Bounded: emptied when full, so it never holds more than {@link DAY_PREFIXES_MAX} short strings.
 */
const dayPrefixes = new Map<number, string>();
const DAY_PREFIXES_MAX = 4096;

function dayPrefix(days: number): string {
  const known = dayPrefixes.get(days);
  if (known !== undefined) return known;
  const { year, month, day } = civilFromDays(days);
  const text = `${String(year).padStart(4, '0')}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T`;
  if (dayPrefixes.size >= DAY_PREFIXES_MAX) dayPrefixes.clear();
  dayPrefixes.set(days, text);
  return text;
}

/**
 * Recently formatted instants, direct-mapped by value: a slot holds the last instant that fell in
 * it and its text. A debit's answer formats the same grants' times again and again (a hit costs a
 * few nanoseconds); with more distinct instants in rotation than slots (a thousand customers with
 * a dozen grants each) a miss costs one comparison more than formatting. (A `Map` emptied when
 * full was tried first: in rotation it missed nearly always and each miss cost about a
 * microsecond.)
 */
const RECENT_SLOTS = 4093;
const recentInstants = new Float64Array(RECENT_SLOTS).fill(Number.NaN);
const recentTexts: string[] = new Array<string>(RECENT_SLOTS).fill('');

/**
 * Formats an instant as the API does: UTC, `Z`, millisecond precision (`toISOString`'s shape for
 * years 0–9999). Computed with integer arithmetic (days → civil date, the date part kept per day),
 * since responses format many instants and `Date#toISOString` dominated their cost.
 */
export function formatInstant(instant: Instant): string {
  if (!Number.isSafeInteger(instant) || instant < -62_167_219_200_000 || instant > 253_402_300_799_999) {
    return new Date(instant).toISOString();
  }
  const slot = ((instant % RECENT_SLOTS) + RECENT_SLOTS) % RECENT_SLOTS;
  if (recentInstants[slot] === instant) return recentTexts[slot]!;
  const ms = ((instant % 86_400_000) + 86_400_000) % 86_400_000;
  const seconds = (ms - (ms % 1000)) / 1000;
  const minutes = (seconds - (seconds % 60)) / 60;
  const text = `${dayPrefix((instant - ms) / 86_400_000)}${TWO_DIGITS[(minutes - (minutes % 60)) / 60]}:${
    TWO_DIGITS[minutes % 60]
  }:${TWO_DIGITS[seconds % 60]}.${THREE_DIGITS[ms % 1000]}Z`;
  recentInstants[slot] = instant;
  recentTexts[slot] = text;
  return text;
}
