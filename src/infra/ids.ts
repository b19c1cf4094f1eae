import { randomFillSync } from 'node:crypto';
import type { IdSource } from '../domain/ledger/credit-ledger.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case
const ALPHABET_CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

/**
 * Server-made ids: `<prefix>_` + 10 characters of millisecond time + 16 random characters
 * (80 bits). Time-ordered so new rows land at the end of indexes (TigerBeetle's advice), and
 * unguessable. Random bytes are drawn in blocks to keep the hot path cheap.
 */
export class TimeOrderedIds implements IdSource {
  private pool = Buffer.alloc(4096);
  private offset = this.pool.length;
  /** The 10 time characters of the last millisecond seen: ids made in the same one share them. */
  private lastMs = Number.NaN;
  private lastHead = '';
  /** The 16 random characters, as Crockford codes, decoded to a string in one step. */
  private readonly tail = Buffer.alloc(16);

  constructor(private readonly nowMs: () => number = Date.now) {}

  newId(prefix: string): string {
    const ms = this.nowMs();
    if (ms !== this.lastMs) {
      let time = ms;
      let head = '';
      for (let i = 0; i < 10; i++) {
        head = ALPHABET[time % 32] + head;
        time = Math.floor(time / 32);
      }
      this.lastMs = ms;
      this.lastHead = head;
    }
    if (this.offset + 16 > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    for (let i = 0; i < 16; i++) this.tail[i] = ALPHABET_CODES[this.pool[this.offset++]! & 31]!;
    return `${prefix}_${this.lastHead}${this.tail.toString('latin1')}`;
  }
}

/** Deterministic ids for tests: `<prefix>_000001`, `<prefix>_000002`, … */
export class SequentialIds implements IdSource {
  private counter = 0;

  newId(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${String(this.counter).padStart(8, '0')}`;
  }
}
