import type { Clock } from '../domain/time/clock.js';

/** The real clock, used only by the composition root; everything else receives a {@link Clock}. */
export const systemClock: Clock = { now: () => Date.now() };
