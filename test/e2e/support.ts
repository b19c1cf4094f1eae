import { expect } from 'vitest';
import type { HttpResponse, ServerProcess } from './server-process.js';

/**
 * Small helpers shared by the e2e tests: exact decimal arithmetic on the API's amount strings
 * (BigInt of 10^-12 units, never floats), a seeded PRNG, a bounded worker pool and a paginated
 * ledger reader.
 */

const SCALE = 12;
const FACTOR = 10n ** BigInt(SCALE);
const DECIMAL = /^(-)?(\d+)(?:\.(\d{1,12}))?$/;

/** `"12.5"` → 12_500_000_000_000n (10^-12 units). Throws on anything that is not a decimal string. */
export function units(text: string): bigint {
  const m = DECIMAL.exec(text);
  if (!m) throw new Error(`not an amount string: ${JSON.stringify(text)}`);
  const value = BigInt(m[2]!) * FACTOR + BigInt((m[3] ?? '').padEnd(SCALE, '0'));
  return m[1] ? -value : value;
}

/** The canonical amount string of the contract (no trailing zeros, no `-0`). */
export function amount(value: bigint): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const fraction = (abs % FACTOR).toString().padStart(SCALE, '0').replace(/0+$/, '');
  const text = `${abs / FACTOR}${fraction ? `.${fraction}` : ''}`;
  return negative ? `-${text}` : text;
}

export const sum = (values: Iterable<bigint>): bigint => {
  let total = 0n;
  for (const v of values) total += v;
  return total;
};

/** mulberry32: a tiny deterministic PRNG, so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: `E2E_SEED` when set (to replay a failure), otherwise random. */
export function seedFromEnv(): number {
  const raw = process.env['E2E_SEED'];
  return raw ? Number(raw) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

/** A random amount string with an integer part in [minInt, maxInt] and up to `decimals` fractional digits. */
export function randomAmount(rand: () => number, minInt: number, maxInt: number, decimals: number): string {
  const int = minInt + Math.floor(rand() * (maxInt - minInt + 1));
  const digits = Math.floor(rand() * (decimals + 1));
  let fraction = '';
  for (let i = 0; i < digits; i++) fraction += String(Math.floor(rand() * 10));
  const text = fraction ? `${int}.${fraction}` : String(int);
  const canonical = amount(units(text));
  // Never zero: the API refuses non-positive amounts.
  return units(canonical) > 0n ? canonical : '1';
}

/** Runs `task` over `items` with at most `concurrency` in flight (each worker reuses its keep-alive connection). */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** A ledger entry as the API lists it. */
export interface Entry {
  id: string;
  type: string;
  amount: string;
  grant_id: string | null;
  ref: string | null;
  at: string;
  balance_after: string;
}

/** Every ledger entry of a customer, oldest first, following `next_cursor` with limit=1000. */
export async function readLedger(server: ServerProcess, customerId: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const query: string = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res: HttpResponse = await server.get(`/v1/customers/${customerId}/ledger?${query}`);
    expect(res.status, res.text).toBe(200);
    entries.push(...(res.body.data as Entry[]));
    cursor = res.body.next_cursor;
    if (cursor === null) return entries;
  }
  throw new Error('ledger pagination did not end');
}

/** Groups entries by `ref`, keeping only the given types. */
export function entriesByRef(entries: readonly Entry[], types: readonly string[]): Map<string, Entry[]> {
  const byRef = new Map<string, Entry[]>();
  for (const e of entries) {
    if (!types.includes(e.type)) continue;
    const key = e.ref ?? '(null)';
    const list = byRef.get(key);
    if (list) list.push(e);
    else byRef.set(key, [e]);
  }
  return byRef;
}

/** Runs `burndown reconcile` on the server's database and asserts it exits 0. */
export async function expectReconcileOk(server: ServerProcess): Promise<string> {
  const result = await server.runCli(['reconcile']);
  expect(result.code, `reconcile failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
  expect(result.stdout).toMatch(/: OK/);
  return result.stdout;
}
