import type { Instant } from './instant.js';

/**
 * The only source of "now". Domain code never reads the system time: it is handed a clock, so
 * expiry, hold timeouts and resets can be tested by moving a {@link ManualClock}.
 */
export interface Clock {
  now(): Instant;
}

/** A clock that only moves when told to; the default in tests. */
export class ManualClock implements Clock {
  constructor(private current: Instant) {}

  now(): Instant {
    return this.current;
  }

  /** Moves time forward by `ms` milliseconds (never backwards). */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock never goes backwards');
    this.current += ms;
  }

  /** Jumps to an instant at or after the current one. */
  set(instant: Instant): void {
    if (instant < this.current) throw new RangeError('a clock never goes backwards');
    this.current = instant;
  }
}
