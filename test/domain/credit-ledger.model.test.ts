/**
 * Model-based test of the pure ledger engine (CreditLedger).
 *
 * Random command sequences (grants, debits, holds, captures, releases, voids and clock moves) run
 * against the engine and against a deliberately naive reference model written from docs/design.md /
 * docs/api.md with plain bigint arithmetic. The model shares no code with the engine (not even the
 * burn-down comparator): it keeps two numbers per grant (available, held), a debt and a list of
 * holds, and it applies due events one at a time by rescanning its state. Where docs/design.md leaves a
 * tie open, the model follows the engine's stated convention: events due at the same instant apply
 * hold expiries first, then grant expiries, then activations, each kind in id order.
 *
 * After every step the engine must agree with the model on balances (available, held, overage, the
 * listed grants, next expiry), per-grant and per-hold state, customer accounts, drawdowns, refusals
 * and the exact entries recorded (type, amount, accounts, grant, ref, date, balance_after); and the
 * engine's own entries must rebuild every cached balance (double entry, total zero).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { compareBurnDownOrder, grantStatusAt } from '../../src/domain/ledger/burn-down.js';
import {
  CreditLedger,
  type DebitRecord,
  emptyLedgerSnapshot,
  type GrantNotActive,
  type HoldNotActive,
  type IdSource,
  type InsufficientCredits,
} from '../../src/domain/ledger/credit-ledger.js';
import type { GrantState, HoldState, LedgerEntry } from '../../src/domain/ledger/types.js';

const ONE = 10n ** 12n;
/** Clock grid: expiries and effective instants fall on whole seconds so that ties are common. */
const U = 1000;
const T0 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Deterministic ids
// ---------------------------------------------------------------------------------------------

/** Counter-based ids, zero-padded so that string order is creation order. */
class CounterIds implements IdSource {
  private readonly counters = new Map<string, number>();
  newId(prefix: 'ent' | 'dbt' | 'hld' | 'grt'): string {
    const next = (this.counters.get(prefix) ?? 0) + 1;
    this.counters.set(prefix, next);
    return `${prefix}_${String(next).padStart(6, '0')}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

interface MGrant {
  readonly id: string;
  readonly amount: bigint;
  readonly priority: number;
  readonly effectiveAt: number;
  readonly expiresAt: number | null;
  readonly createdAt: number;
  available: bigint;
  held: bigint;
  closed: null | 'expired' | 'voided';
  closedAt: number | null;
  activated: boolean;
}

interface MHold {
  readonly id: string;
  readonly amount: bigint;
  readonly expiresAt: number;
  status: 'active' | 'captured' | 'released' | 'expired';
  closedAt: number | null;
  /** Pinned portions in the order they were taken. */
  portions: { grantId: string; amount: bigint }[];
}

type MRefusal =
  | { refused: 'insufficient_credits'; available: bigint; requested: bigint }
  | { refused: 'hold_not_active'; status: MHold['status'] }
  | { refused: 'grant_not_active'; status: 'expired' | 'voided' };

/** An entry as the model expects it; `ref` of debit/capture/overage entries is the debit's id, unknown in advance. */
type MEntry = [
  type: string,
  amount: bigint,
  from: string,
  to: string,
  grantId: string | null,
  ref: string,
  at: number,
  balanceAfter: bigint,
];
const DEBIT_REF = '<debit>';

interface MDebit {
  amount: bigint;
  drawdowns: [string, bigint][];
  overage: bigint;
}

/** docs/design.md order, written independently: key tuple (priority, expiry or +∞, effective_at, id). */
function modelOrder(a: MGrant, b: MGrant): number {
  const ka: [number, number, number] = [a.priority, a.expiresAt ?? Number.POSITIVE_INFINITY, a.effectiveAt];
  const kb: [number, number, number] = [b.priority, b.expiresAt ?? Number.POSITIVE_INFINITY, b.effectiveAt];
  for (let i = 0; i < 3; i++) {
    if (ka[i]! < kb[i]!) return -1;
    if (ka[i]! > kb[i]!) return 1;
  }
  if (a.id === b.id) return 0;
  return a.id < b.id ? -1 : 1;
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

class Model {
  now = T0;
  readonly grants: MGrant[] = [];
  readonly holds: MHold[] = [];
  /** Overage owed (≥ 0). */
  debt = 0n;
  issued = 0n;
  consumed = 0n;
  expired = 0n;
  voided = 0n;
  /** Statistics. */
  steps = 0;
  /** The entries the engine must record, in order; checked and cleared after every step. */
  entries: MEntry[] = [];

  /**
   * Logs an entry, after the state change it describes. balance_after is the available balance
   * right after it, read at the instant the entry takes effect (an expiry or a hold release noticed
   * late is dated, and valued, at the instant it became due).
   */
  private log(
    type: string,
    amount: bigint,
    from: string,
    to: string,
    grantId: string | null,
    ref: string,
    at: number,
  ): void {
    if (amount === 0n) return;
    this.entries.push([type, amount, from, to, grantId, ref, at, this.availableAt(at)]);
  }

  grant(id: string): MGrant {
    const g = this.grants.find((x) => x.id === id);
    if (!g) throw new Error(`model: no grant ${id}`);
    return g;
  }

  usableAt(g: MGrant, t: number): boolean {
    return g.closed === null && g.effectiveAt <= t && (g.expiresAt === null || t < g.expiresAt);
  }

  /** Grants that can be drawn on now, in burn-down order. */
  drawable(t: number): MGrant[] {
    return this.grants.filter((g) => this.usableAt(g, t) && g.available > 0n).sort(modelOrder);
  }

  available(): bigint {
    return this.availableAt(this.now);
  }

  availableAt(t: number): bigint {
    let sum = 0n;
    for (const g of this.grants) if (this.usableAt(g, t)) sum += g.available;
    return sum - this.debt;
  }

  held(): bigint {
    let sum = 0n;
    for (const h of this.holds) if (h.status === 'active') sum += h.amount;
    return sum;
  }

  /**
   * Pays debt when credits appear at `at` (an activation, or a hold returning credits): from every
   * grant usable at `at`, in burn-down order. Events are applied one at a time, so when two grants
   * activate at the same instant the debt is paid in burn-down order across both, while two holds
   * expiring at the same instant pay one after the other (hold-id order).
   */
  private settle(at: number, reason: string): void {
    const payers = this.grants.filter((g) => this.usableAt(g, at) && g.available > 0n).sort(modelOrder);
    for (const g of payers) {
      if (this.debt === 0n) return;
      const take = minBig(g.available, this.debt);
      count(`model:settle@${reason}`);
      g.available -= take;
      this.debt -= take;
      this.log('overage_settled', take, `grant:${g.id}`, 'overage', g.id, g.id, at);
    }
  }

  /** Returns what a hold still pins; portions of grants that left go with them. */
  private releasePortions(h: MHold, at: number): void {
    let returned = false;
    for (const p of h.portions) {
      if (p.amount === 0n) continue;
      const g = this.grant(p.grantId);
      g.held -= p.amount;
      if (g.closed) {
        // Back to the grant's account, and straight out again: the grant already left.
        count(`model:release-to-${g.closed}-grant`);
        this.log('release', p.amount, `held:${g.id}`, `grant:${g.id}`, g.id, h.id, at);
        if (g.closed === 'expired') this.expired += p.amount;
        else this.voided += p.amount;
        const type = g.closed === 'expired' ? 'expiry' : 'void';
        this.log(type, p.amount, `grant:${g.id}`, g.closed, g.id, h.id, at);
      } else {
        g.available += p.amount;
        returned = true;
        this.log('release', p.amount, `held:${g.id}`, `grant:${g.id}`, g.id, h.id, at);
      }
      p.amount = 0n;
    }
    if (returned) this.settle(at, 'release');
  }

  /** Applies every due event (hold expiry, grant expiry, activation), one at a time, earliest first. */
  advanceTo(now: number): void {
    for (;;) {
      type Ev = { at: number; rank: number; id: string; apply: () => void };
      const events: Ev[] = [];
      for (const h of this.holds) {
        if (h.status === 'active' && h.expiresAt <= now) {
          events.push({
            at: h.expiresAt,
            rank: 0,
            id: h.id,
            apply: () => {
              h.status = 'expired';
              h.closedAt = h.expiresAt;
              this.releasePortions(h, h.expiresAt);
            },
          });
        }
      }
      for (const g of this.grants) {
        if (g.closed !== null) continue;
        // A grant leaves at expires_at, or when recorded if it was recorded after its own expiry
        // (a backfill): no entry of a grant predates its issue.
        const expiryAt = g.expiresAt === null ? null : Math.max(g.expiresAt, g.createdAt);
        if (expiryAt !== null && expiryAt <= now) {
          const at = expiryAt;
          events.push({
            at,
            rank: 1,
            id: g.id,
            apply: () => {
              const left = g.available;
              this.expired += left;
              g.available = 0n;
              g.closed = 'expired';
              g.closedAt = at;
              this.log('expiry', left, `grant:${g.id}`, 'expired', g.id, g.id, at);
            },
          });
        }
        const activation = Math.max(g.effectiveAt, g.createdAt);
        if (!g.activated && activation <= now) {
          events.push({
            at: activation,
            rank: 2,
            id: g.id,
            apply: () => {
              g.activated = true;
              this.settle(activation, activation > g.createdAt ? 'deferred-activation' : 'activation');
            },
          });
        }
      }
      if (events.length === 0) return;
      let first = events[0]!;
      for (const e of events) {
        if (
          e.at < first.at ||
          (e.at === first.at && (e.rank < first.rank || (e.rank === first.rank && e.id < first.id)))
        )
          first = e;
      }
      first.apply();
    }
  }

  addGrant(
    id: string,
    amount: bigint,
    priority: number,
    effectiveAt: number,
    expiresAt: number | null,
  ): void {
    this.grants.push({
      id,
      amount,
      priority,
      effectiveAt,
      expiresAt,
      createdAt: this.now,
      available: amount,
      held: 0n,
      closed: null,
      closedAt: null,
      activated: false,
    });
    this.issued += amount;
    // Issued when recorded (dated now), usable from effective_at.
    this.log('grant', amount, 'issued', `grant:${id}`, id, id, this.now);
    this.advanceTo(this.now);
  }

  /** Draws from drawable grants in order; returns drawdowns and what could not be drawn. */
  private draw(
    amount: bigint,
    type: 'debit' | 'hold' | 'capture',
    ref: string,
  ): { drawdowns: [string, bigint][]; left: bigint } {
    const drawdowns: [string, bigint][] = [];
    let left = amount;
    for (const g of this.drawable(this.now)) {
      if (left === 0n) break;
      const take = minBig(g.available, left);
      g.available -= take;
      if (type === 'hold') g.held += take;
      this.log(
        type,
        take,
        `grant:${g.id}`,
        type === 'hold' ? `held:${g.id}` : 'consumed',
        g.id,
        ref,
        this.now,
      );
      drawdowns.push([g.id, take]);
      left -= take;
    }
    return { drawdowns, left };
  }

  drawableTotal(): bigint {
    return this.drawable(this.now).reduce((s, g) => s + g.available, 0n);
  }

  debit(amount: bigint, allowOverage: boolean): MDebit | MRefusal {
    if (this.drawableTotal() < amount && !allowOverage) {
      return { refused: 'insufficient_credits', available: this.available(), requested: amount };
    }
    const { drawdowns, left } = this.draw(amount, 'debit', DEBIT_REF);
    this.debt += left;
    this.log('overage', left, 'overage', 'consumed', null, DEBIT_REF, this.now);
    this.consumed += amount;
    return { amount, drawdowns, overage: left };
  }

  placeHold(id: () => string, amount: bigint, ttl: number): MHold | MRefusal {
    if (this.drawableTotal() < amount) {
      return { refused: 'insufficient_credits', available: this.available(), requested: amount };
    }
    const holdId = id();
    const { drawdowns } = this.draw(amount, 'hold', holdId);
    const hold: MHold = {
      id: holdId,
      amount,
      expiresAt: this.now + ttl,
      status: 'active',
      closedAt: null,
      portions: drawdowns.map(([grantId, a]) => ({ grantId, amount: a })),
    };
    this.holds.push(hold);
    return hold;
  }

  capture(h: MHold, requested: bigint | null, allowOverage: boolean): MDebit | MRefusal {
    if (h.status !== 'active') return { refused: 'hold_not_active', status: h.status };
    const amount = requested ?? h.amount;
    const fromHold = minBig(amount, h.amount);
    const excess = amount - fromHold;
    if (excess > 0n && !allowOverage && this.drawableTotal() < excess) {
      return { refused: 'insufficient_credits', available: this.available(), requested: excess };
    }
    const drawdowns: [string, bigint][] = [];
    const add = (grantId: string, a: bigint) => {
      const existing = drawdowns.find(([id]) => id === grantId);
      if (existing) existing[1] += a;
      else drawdowns.push([grantId, a]);
    };
    let left = fromHold;
    for (const p of h.portions) {
      const take = minBig(p.amount, left);
      if (take === 0n) continue;
      p.amount -= take;
      if (this.grant(p.grantId).closed) count(`model:capture-from-${this.grant(p.grantId).closed}-grant`);
      this.grant(p.grantId).held -= take;
      this.log('capture', take, `held:${p.grantId}`, 'consumed', p.grantId, DEBIT_REF, this.now);
      add(p.grantId, take);
      left -= take;
    }
    h.status = 'captured';
    h.closedAt = this.now;
    this.releasePortions(h, this.now);
    let overage = 0n;
    if (excess > 0n) {
      const drawn = this.draw(excess, 'capture', DEBIT_REF);
      for (const [grantId, a] of drawn.drawdowns) add(grantId, a);
      overage = drawn.left;
      this.debt += overage;
      this.log('overage', overage, 'overage', 'consumed', null, DEBIT_REF, this.now);
    }
    this.consumed += amount;
    return { amount, drawdowns, overage };
  }

  release(h: MHold): MHold | MRefusal {
    if (h.status !== 'active') return { refused: 'hold_not_active', status: h.status };
    h.status = 'released';
    h.closedAt = this.now;
    this.releasePortions(h, this.now);
    return h;
  }

  voidGrant(g: MGrant): MGrant | MRefusal {
    if (g.closed !== null) return { refused: 'grant_not_active', status: g.closed };
    const left = g.available;
    this.voided += left;
    g.available = 0n;
    g.closed = 'voided';
    g.closedAt = this.now;
    this.log('void', left, `grant:${g.id}`, 'voided', g.id, g.id, this.now);
    return g;
  }

  /** Instants at which something becomes due, for commands that jump right onto a boundary. */
  upcomingInstants(): number[] {
    const out = new Set<number>();
    for (const g of this.grants) {
      if (g.closed !== null) continue;
      if (g.expiresAt !== null && g.expiresAt > this.now) out.add(g.expiresAt);
      if (g.effectiveAt > this.now) out.add(g.effectiveAt);
    }
    for (const h of this.holds) if (h.status === 'active' && h.expiresAt > this.now) out.add(h.expiresAt);
    return [...out].sort((a, b) => a - b);
  }
}

// ---------------------------------------------------------------------------------------------
// The system under test, plus the replay of its entries
// ---------------------------------------------------------------------------------------------

class Real {
  ledger: CreditLedger;
  readonly ids = new CounterIds();
  /** Σ over entries of (+amount to toAccount, −amount from fromAccount), per account. */
  readonly sums = new Map<string, bigint>();
  private replayed = 0;
  /**
   * The last known state of every grant and hold, as storage keeps it. After a reload the engine
   * only has the open grants (something left) and the active holds, like the service layer.
   */
  readonly storedGrants = new Map<string, GrantState>();
  readonly storedHolds = new Map<string, HoldState>();

  constructor() {
    this.ledger = new CreditLedger(emptyLedgerSnapshot('cus', 'credits'), this.ids);
  }

  /** Folds the entries recorded since the last call into {@link sums}; returns them. */
  replayNewEntries(): LedgerEntry[] {
    const fresh = this.ledger.newEntries.slice(this.replayed);
    this.replayed = this.ledger.newEntries.length;
    for (const e of fresh) {
      this.sums.set(e.fromAccount, (this.sums.get(e.fromAccount) ?? 0n) - e.amount.units);
      this.sums.set(e.toAccount, (this.sums.get(e.toAccount) ?? 0n) + e.amount.units);
    }
    return fresh;
  }

  sum(account: string): bigint {
    return this.sums.get(account) ?? 0n;
  }

  /** Records the engine's current grants and holds as the stored state. */
  persist(): void {
    for (const g of this.ledger.grants.values()) this.storedGrants.set(g.id, g);
    for (const h of this.ledger.holds.values()) this.storedHolds.set(h.id, h);
  }

  grantState(id: string): GrantState | undefined {
    return this.ledger.grants.get(id) ?? this.storedGrants.get(id);
  }

  holdState(id: string): HoldState | undefined {
    return this.ledger.holds.get(id) ?? this.storedHolds.get(id);
  }

  /** Starts a fresh engine from a snapshot of the stored state, as every service request does. */
  reload(): void {
    ensure(this.replayed === this.ledger.newEntries.length, 'reload after every entry was checked');
    this.persist();
    const grants = [...this.storedGrants.values()]
      .filter((g) => g.available.isPositive() || g.held.isPositive())
      .map((g) => ({ ...g }));
    const holds = [...this.storedHolds.values()]
      .filter((h) => h.status === 'active')
      .map((h) => ({ ...h, portions: h.portions.map((p) => ({ ...p })) }));
    this.ledger = new CreditLedger(
      {
        customerId: this.ledger.customerId,
        creditType: this.ledger.creditType,
        accounts: { ...this.ledger.accounts },
        grants,
        holds,
      },
      this.ids,
    );
    this.replayed = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

/** What the runs exercised (printed once, to show the generators reach the interesting paths). */
const coverage = new Map<string, number>();
function count(what: string): void {
  coverage.set(what, (coverage.get(what) ?? 0) + 1);
}

function isRefusal(x: object): x is { refused: string } {
  return 'refused' in x;
}

function drawdownsOf(d: DebitRecord): [string, bigint][] {
  return d.drawdowns.map((x) => [x.grantId, x.amount.units]);
}

/** Canonical text of a plain value (bigints tagged), for a cheap deep comparison. */
function canon(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * Deep equality. Thousands of steps × dozens of comparisons make vitest's `expect` the bottleneck,
 * so values are compared cheaply first and handed to `expect` (for its diff) only when they differ.
 */
function same(actual: unknown, expected: unknown, label: string): void {
  if (canon(actual) !== canon(expected)) expect(actual, label).toEqual(expected);
}

/** An invariant that must hold. */
function ensure(condition: boolean, label: string): void {
  if (!condition) expect.fail(label);
}

function expectSameRefusal(
  label: string,
  actual: InsufficientCredits | HoldNotActive | GrantNotActive,
  expected: MRefusal,
): void {
  count(`refused:${label.split('(')[0]}:${expected.refused}`);
  const normalised =
    actual.refused === 'insufficient_credits'
      ? { refused: actual.refused, available: actual.available.units, requested: actual.requested.units }
      : { ...actual };
  same(normalised, expected, label);
}

function expectSameDebit(
  label: string,
  actual: DebitRecord,
  expected: MDebit,
  holdId: string | null,
  newEntries: readonly LedgerEntry[],
): void {
  for (const e of newEntries) {
    if (e.type === 'debit' || e.type === 'capture' || e.type === 'overage')
      same(e.ref, actual.id, `${label}: ${e.type} entry refers to the debit`);
  }
  count(
    `${holdId ? 'capture' : 'debit'}:ok${expected.overage > 0n ? '+overage' : ''}${expected.drawdowns.length > 1 ? '+multi' : ''}`,
  );
  same(
    {
      amount: actual.amount.units,
      drawdowns: drawdownsOf(actual),
      overage: actual.overage.units,
      holdId: actual.holdId,
    },
    { ...expected, holdId },
    label,
  );
  for (const d of actual.drawdowns) ensure(d.amount.isPositive(), `${label}: drawdown > 0`);
}

/** Everything checked after every step. */
function checkAll(m: Model, r: Real, label: string): void {
  const ledger = r.ledger;
  const now = m.now;

  // --- balance -------------------------------------------------------------------------------
  const balance = ledger.balance(now);
  same(
    { available: balance.available.units, held: balance.held.units, overage: balance.overage.units },
    { available: m.available(), held: m.held(), overage: m.debt },
    `${label}: balance`,
  );

  const listed = m.grants.filter((g) => m.usableAt(g, now) && g.available + g.held > 0n).sort(modelOrder);
  same(
    balance.grants.map((g) => [g.grantId, g.remaining.units, g.expiresAt, g.priority]),
    listed.map((g) => [g.id, g.available + g.held, g.expiresAt, g.priority]),
    `${label}: balance.grants`,
  );
  let nextExpiry: { at: number; amount: bigint } | null = null;
  for (const g of listed) {
    if (g.expiresAt === null || g.available === 0n) continue;
    if (nextExpiry === null || g.expiresAt < nextExpiry.at)
      nextExpiry = { at: g.expiresAt, amount: g.available };
    else if (g.expiresAt === nextExpiry.at) nextExpiry.amount += g.available;
  }
  same(
    balance.nextExpiry && { at: balance.nextExpiry.at, amount: balance.nextExpiry.amount.units },
    nextExpiry,
    `${label}: nextExpiry`,
  );
  same(ledger.availableAt(now).units, m.available(), `${label}: availableAt`);

  // --- per-grant state -----------------------------------------------------------------------
  r.persist();
  for (const id of ledger.grants.keys())
    ensure(
      m.grants.some((g) => g.id === id),
      `${label}: unknown grant ${id}`,
    );
  for (const mg of m.grants) {
    const g = r.grantState(mg.id) as GrantState;
    ensure(g !== undefined, `${label}: grant ${mg.id} exists`);
    if (ledger.grants.has(mg.id)) {
      same(
        { available: g.available.units, held: g.held.units, closed: g.closedReason, closedAt: g.closedAt },
        { available: mg.available, held: mg.held, closed: mg.closed, closedAt: mg.closedAt },
        `${label}: grant ${mg.id}`,
      );
    } else {
      // Not loaded since the last reload: only a grant with nothing left may be left out (its
      // expiry, of nothing, is then never written; its status still shows it).
      same(
        { available: g.available.units, held: g.held.units },
        { available: 0n, held: 0n },
        `${label}: unloaded grant ${mg.id}`,
      );
      same([mg.available, mg.held], [0n, 0n], `${label}: model agrees ${mg.id} has nothing left`);
    }
    const status =
      mg.closed ??
      (mg.expiresAt !== null && now >= mg.expiresAt
        ? 'expired'
        : now < mg.effectiveAt
          ? 'pending'
          : mg.available + mg.held === 0n
            ? 'depleted'
            : 'active');
    same(grantStatusAt(g, now), status, `${label}: status of ${mg.id}`);
    // invariants, independent of the model
    ensure(!g.available.isNegative(), `${label}: ${g.id} available ≥ 0`);
    ensure(!g.held.isNegative(), `${label}: ${g.id} held ≥ 0`);
    ensure(!g.available.plus(g.held).greaterThan(g.amount), `${label}: ${g.id} remaining ≤ amount`);
    if (g.closedReason !== null)
      ensure(g.available.isZero(), `${label}: closed ${g.id} has nothing available`);
  }

  // --- holds ---------------------------------------------------------------------------------
  for (const mh of m.holds) {
    const h = r.holdState(mh.id) as HoldState;
    ensure(h !== undefined, `${label}: hold ${mh.id} exists`);
    if (mh.status === 'active') ensure(ledger.holds.has(mh.id), `${label}: active hold ${mh.id} is loaded`);
    same(
      {
        status: h.status,
        closedAt: h.closedAt,
        portions: h.portions.map((p) => [p.grantId, p.amount.units]),
      },
      { status: mh.status, closedAt: mh.closedAt, portions: mh.portions.map((p) => [p.grantId, p.amount]) },
      `${label}: hold ${mh.id}`,
    );
    if (h.status === 'active') {
      same(
        Amount.sum(h.portions.map((p) => p.amount)).units,
        h.amount.units,
        `${label}: active hold fully pinned`,
      );
    } else {
      ensure(
        h.portions.every((p) => p.amount.isZero()),
        `${label}: ended hold pins nothing`,
      );
    }
  }
  const pinned = new Map<string, bigint>();
  for (const h of ledger.holds.values())
    for (const p of h.portions) pinned.set(p.grantId, (pinned.get(p.grantId) ?? 0n) + p.amount.units);
  for (const g of r.storedGrants.values())
    same(g.held.units, pinned.get(g.id) ?? 0n, `${label}: ${g.id}.held = Σ pinned portions`);

  // --- customer accounts vs model --------------------------------------------------------------
  const a = ledger.accounts;
  same(
    {
      issued: a.issued.units,
      consumed: a.consumed.units,
      expired: a.expired.units,
      voided: a.voided.units,
      overage: a.overage.units,
    },
    { issued: -m.issued, consumed: m.consumed, expired: m.expired, voided: m.voided, overage: -m.debt },
    `${label}: accounts`,
  );

  // --- the entries rebuild every cached balance (reconciliation) ----------------------------------
  const fresh = r.replayNewEntries();
  same(
    fresh.map(
      (e): MEntry => [
        e.type,
        e.amount.units,
        e.fromAccount,
        e.toAccount,
        e.grantId,
        e.type === 'debit' || e.type === 'capture' || e.type === 'overage' ? DEBIT_REF : (e.ref ?? '<null>'),
        e.at,
        e.balanceAfter.units,
      ],
    ),
    m.entries,
    `${label}: entries recorded by this step`,
  );
  m.entries = [];
  for (const e of fresh) {
    count(
      `entry:${e.type}${e.type === 'expiry' || e.type === 'void' ? (e.ref === e.grantId ? '(grant)' : '(released portion)') : ''}`,
    );
    ensure(e.amount.isPositive(), `${label}: entry ${e.id} amount > 0`);
    ensure(e.fromAccount !== e.toAccount, `${label}: entry ${e.id} moves between two accounts`);
    // Nothing is dated in the future, and nothing of a grant predates its issue.
    ensure(e.at <= now, `${label}: entry ${e.id} (${e.type}) not in the future`);
    const grant = e.grantId === null ? undefined : r.grantState(e.grantId);
    if (grant) ensure(e.at >= grant.createdAt, `${label}: entry ${e.id} (${e.type}) predates its grant`);
    if (e.type === 'grant') same(e.at, grant!.createdAt, `${label}: grant entry dated when recorded`);
    if (e.type === 'expiry' && e.ref === e.grantId) {
      // The expiry of the grant itself (not of a released hold portion) is dated exactly expires_at
      // (or when the grant was recorded, for a grant recorded after its own expiry).
      same(e.at, Math.max(grant!.expiresAt!, grant!.createdAt), `${label}: expiry entry dated expires_at`);
    }
  }
  let total = 0n;
  for (const v of r.sums.values()) total += v;
  same(total, 0n, `${label}: entries sum to zero`);
  let cachedTotal = a.issued.units + a.consumed.units + a.expired.units + a.voided.units + a.overage.units;
  for (const g of r.storedGrants.values()) {
    same(r.sum(`grant:${g.id}`), g.available.units, `${label}: Σ entries of grant:${g.id}`);
    same(r.sum(`held:${g.id}`), g.held.units, `${label}: Σ entries of held:${g.id}`);
    cachedTotal += g.available.units + g.held.units;
  }
  for (const name of ['issued', 'consumed', 'expired', 'voided', 'overage'] as const) {
    same(r.sum(name), a[name].units, `${label}: Σ entries of ${name}`);
  }
  for (const account of r.sums.keys()) {
    const known =
      ['issued', 'consumed', 'expired', 'voided', 'overage'].includes(account) ||
      ((account.startsWith('grant:') || account.startsWith('held:')) &&
        r.storedGrants.has(account.slice(account.indexOf(':') + 1)));
    ensure(known, `${label}: entry account ${account} is a known account`);
  }
  same(cachedTotal, 0n, `${label}: cached balances sum to zero`);

  // --- overage debt means nothing usable is left --------------------------------------------------
  ensure(!a.overage.isPositive(), `${label}: overage account never positive`);
  if (a.overage.isNegative()) {
    for (const g of ledger.grants.values()) {
      if (m.usableAt(m.grant(g.id), now)) {
        ensure(g.available.isZero(), `${label}: debt owed while ${g.id} has credits`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

type Cmd = fc.Command<Model, Real>;

function fmt(units: bigint): string {
  return Amount.fromUnits(units).toString();
}

/** The service layer applies due events before every operation; so do we, on both sides. */
function beforeOp(m: Model, r: Real): void {
  m.steps++;
  m.advanceTo(m.now);
  r.ledger.advanceTo(m.now);
}

function alignUp(t: number): number {
  return Math.ceil(t / U) * U;
}
function alignDown(t: number): number {
  return Math.floor(t / U) * U;
}

type EffectiveSpec = { kind: 'now' } | { kind: 'past'; k: number } | { kind: 'future'; k: number };

class GrantCmd implements Cmd {
  constructor(
    readonly units: bigint,
    readonly priority: number,
    readonly effective: EffectiveSpec,
    readonly expiresK: number | null,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const now = m.now;
    const effectiveAt =
      this.effective.kind === 'now'
        ? now
        : this.effective.kind === 'past'
          ? alignDown(now) - this.effective.k * U
          : alignUp(now + 1) + this.effective.k * U;
    // Always after effective_at (API), possibly already in the past.
    const expiresAt = this.expiresK === null ? null : alignUp(effectiveAt + 1) + this.expiresK * U;
    const entriesBefore = r.ledger.newEntries.length;
    const g = r.ledger.grant(
      {
        amount: Amount.fromUnits(this.units),
        category: 'paid',
        priority: this.priority,
        effectiveAt,
        expiresAt,
        costBasis: null,
        appliesTo: null,
        description: null,
        metadata: {},
      },
      now,
    );
    expect(
      m.grants.some((x) => x.id === g.id),
      'grant ids are fresh',
    ).toBe(false);
    expect([g.amount.units, g.priority, g.effectiveAt, g.expiresAt, g.createdAt]).toEqual([
      this.units,
      this.priority,
      effectiveAt,
      expiresAt,
      now,
    ]);
    expect(r.ledger.newEntries[entriesBefore]?.type, 'first entry of a grant is its grant entry').toBe(
      'grant',
    );
    m.addGrant(g.id, this.units, this.priority, effectiveAt, expiresAt);
    checkAll(m, r, this.toString());
  }
  toString(): string {
    const e = this.effective;
    return `grant(${fmt(this.units)}, p${this.priority}, eff=${e.kind === 'now' ? 'now' : `${e.kind}${e.k}`}, exp=${this.expiresK ?? '∞'})`;
  }
}

/** A fixed amount, or one relative to what is drawable right now (to hit the exact boundary). */
type AmountSpec = bigint | { readonly relative: -1n | 0n | 1n };

function resolveAmount(m: Model, spec: AmountSpec): bigint {
  if (typeof spec === 'bigint') return spec;
  const units = m.drawableTotal() + spec.relative;
  return units > 0n ? units : 1n;
}

function fmtSpec(spec: AmountSpec): string {
  return typeof spec === 'bigint'
    ? fmt(spec)
    : `drawable${spec.relative === 0n ? '' : spec.relative > 0n ? '+1u' : '-1u'}`;
}

class DebitCmd implements Cmd {
  constructor(
    readonly spec: AmountSpec,
    readonly allowOverage: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const units = resolveAmount(m, this.spec);
    const label = `${this.toString()} = ${fmt(units)}`;
    const entriesBefore = r.ledger.newEntries.length;
    const debitsBefore = r.ledger.newDebits.length;
    const actual = r.ledger.debit(
      { amount: Amount.fromUnits(units), allowOverage: this.allowOverage },
      m.now,
    );
    const expected = m.debit(units, this.allowOverage);
    if (isRefusal(expected)) {
      expect(isRefusal(actual), `${label}: engine must refuse`).toBe(true);
      expectSameRefusal(label, actual as InsufficientCredits, expected);
      expect(r.ledger.newEntries.length, `${label}: a refusal records nothing`).toBe(entriesBefore);
      expect(r.ledger.newDebits.length).toBe(debitsBefore);
    } else {
      expect(isRefusal(actual), `${label}: engine must not refuse (${JSON.stringify(actual)})`).toBe(false);
      expectSameDebit(label, actual as DebitRecord, expected, null, r.ledger.newEntries.slice(entriesBefore));
      expect(r.ledger.newDebits.length).toBe(debitsBefore + 1);
    }
    checkAll(m, r, label);
  }
  toString(): string {
    return `debit(${fmtSpec(this.spec)}${this.allowOverage ? ', overage' : ''})`;
  }
}

class HoldCmd implements Cmd {
  constructor(
    readonly spec: AmountSpec,
    readonly ttl: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const units = resolveAmount(m, this.spec);
    const label = `${this.toString()} = ${fmt(units)}`;
    const entriesBefore = r.ledger.newEntries.length;
    const actual = r.ledger.placeHold(
      { amount: Amount.fromUnits(units), expiresAt: m.now + this.ttl },
      m.now,
    );
    let engineId: string | null = null;
    const expected = m.placeHold(
      () => {
        if (isRefusal(actual)) throw new Error(`${label}: engine refused a hold the model places`);
        engineId = actual.id;
        return actual.id;
      },
      units,
      this.ttl,
    );
    if (isRefusal(expected)) {
      expect(isRefusal(actual), `${label}: engine must refuse`).toBe(true);
      expectSameRefusal(label, actual as InsufficientCredits, expected);
      expect(r.ledger.newEntries.length, `${label}: a refusal records nothing`).toBe(entriesBefore);
    } else {
      const h = actual as HoldState;
      expect(engineId).toBe(h.id);
      expect(
        {
          amount: h.amount.units,
          status: h.status,
          expiresAt: h.expiresAt,
          drawdowns: h.drawdowns.map((d) => [d.grantId, d.amount.units]),
        },
        label,
      ).toEqual({
        amount: units,
        status: 'active',
        expiresAt: m.now + this.ttl,
        drawdowns: expected.portions.map((p) => [p.grantId, p.amount]),
      });
    }
    checkAll(m, r, label);
  }
  toString(): string {
    return `hold(${fmtSpec(this.spec)}, ttl=${this.ttl})`;
  }
}

type CaptureSpec =
  | { kind: 'default' }
  | { kind: 'full' }
  | { kind: 'partial'; percent: number }
  | { kind: 'excess'; extra: AmountSpec };

/**
 * A hold that ended before the last reload is not loaded with the ledger; the service answers
 * from the stored hold, as here. Active holds are always loaded and go to the engine.
 */
function unloadedHoldRefusal(r: Real, holdId: string): HoldNotActive | null {
  if (r.ledger.holds.has(holdId)) return null;
  const stored = r.storedHolds.get(holdId);
  if (!stored) throw new Error(`hold ${holdId} was never stored`);
  ensure(stored.status !== 'active', `active hold ${holdId} must be loaded`);
  return { refused: 'hold_not_active', status: stored.status };
}

/** Picks a hold: usually an active one, sometimes any (to exercise hold_not_active). */
function pickHold(m: Readonly<Model>, pick: number, preferActive: boolean): MHold | undefined {
  const active = m.holds.filter((h) => h.status === 'active');
  const pool = preferActive && active.length > 0 ? active : m.holds;
  return pool[pick % Math.max(1, pool.length)];
}

class CaptureCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly preferActive: boolean,
    readonly spec: CaptureSpec,
    readonly allowOverage: boolean,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const hold = pickHold(m, this.pick, this.preferActive)!;
    const requested =
      this.spec.kind === 'default'
        ? null
        : this.spec.kind === 'full'
          ? hold.amount
          : this.spec.kind === 'partial'
            ? (() => {
                const part = (hold.amount * BigInt(this.spec.percent)) / 100n;
                return part > 0n ? part : 1n;
              })()
            : hold.amount + resolveAmount(m, this.spec.extra);
    const label = `${this.toString()} on ${hold.id} (${fmt(hold.amount)}, ${hold.status}) → ${requested === null ? 'default' : fmt(requested)}`;
    const entriesBefore = r.ledger.newEntries.length;
    const debitsBefore = r.ledger.newDebits.length;
    const actual =
      unloadedHoldRefusal(r, hold.id) ??
      r.ledger.capture(
        {
          holdId: hold.id,
          amount: requested === null ? null : Amount.fromUnits(requested),
          allowOverage: this.allowOverage,
        },
        m.now,
      );
    const expected = m.capture(hold, requested, this.allowOverage);
    if (isRefusal(expected)) {
      expect(isRefusal(actual), `${label}: engine must refuse`).toBe(true);
      expectSameRefusal(label, actual as InsufficientCredits | HoldNotActive, expected);
      expect(r.ledger.newEntries.length, `${label}: a refusal records nothing`).toBe(entriesBefore);
      expect(r.ledger.newDebits.length).toBe(debitsBefore);
    } else {
      expect(isRefusal(actual), `${label}: engine must not refuse (${JSON.stringify(actual)})`).toBe(false);
      expectSameDebit(
        label,
        actual as DebitRecord,
        expected,
        hold.id,
        r.ledger.newEntries.slice(entriesBefore),
      );
      expect(r.ledger.newDebits.length).toBe(debitsBefore + 1);
    }
    checkAll(m, r, label);
  }
  toString(): string {
    const s = this.spec;
    const what =
      s.kind === 'partial'
        ? `partial ${s.percent}%`
        : s.kind === 'excess'
          ? `excess +${fmtSpec(s.extra)}`
          : s.kind;
    return `capture(#${this.pick}${this.preferActive ? '' : ' any'}, ${what}${this.allowOverage ? ', overage' : ''})`;
  }
}

class ReleaseCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly preferActive: boolean,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.holds.length > 0;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const hold = pickHold(m, this.pick, this.preferActive)!;
    const label = `${this.toString()} on ${hold.id} (${hold.status})`;
    const entriesBefore = r.ledger.newEntries.length;
    const actual = unloadedHoldRefusal(r, hold.id) ?? r.ledger.release(hold.id, m.now);
    const expected = m.release(hold);
    if (isRefusal(expected)) {
      expect(isRefusal(actual), `${label}: engine must refuse`).toBe(true);
      expectSameRefusal(label, actual as HoldNotActive, expected);
      expect(r.ledger.newEntries.length, `${label}: a refusal records nothing`).toBe(entriesBefore);
    } else {
      expect(isRefusal(actual), `${label}: engine must not refuse`).toBe(false);
      expect((actual as HoldState).status).toBe('released');
    }
    checkAll(m, r, label);
  }
  toString(): string {
    return `release(#${this.pick}${this.preferActive ? '' : ' any'})`;
  }
}

class VoidCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly preferOpen: boolean,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.grants.length > 0;
  }
  run(m: Model, r: Real): void {
    beforeOp(m, r);
    const open = m.grants.filter((g) => g.closed === null);
    const pool = this.preferOpen && open.length > 0 ? open : m.grants;
    const grant = pool[this.pick % pool.length]!;
    const label = `${this.toString()} on ${grant.id} (${grant.closed ?? 'open'})`;
    const entriesBefore = r.ledger.newEntries.length;
    let actual: GrantState | GrantNotActive;
    const stored = r.grantState(grant.id)!;
    const storedStatus = grantStatusAt(stored, m.now);
    if (r.ledger.grants.has(grant.id)) actual = r.ledger.voidGrant(grant.id, m.now);
    else if (storedStatus === 'expired' || storedStatus === 'voided')
      actual = { refused: 'grant_not_active', status: storedStatus };
    else {
      // As the service does: a depleted grant is not loaded with the ledger but can be voided.
      r.ledger.adoptGrant(stored);
      actual = r.ledger.voidGrant(grant.id, m.now);
    }
    const expected = m.voidGrant(grant);
    if (isRefusal(expected)) {
      expect(isRefusal(actual), `${label}: engine must refuse`).toBe(true);
      expectSameRefusal(label, actual as GrantNotActive, expected);
      expect(r.ledger.newEntries.length, `${label}: a refusal records nothing`).toBe(entriesBefore);
    } else {
      expect(isRefusal(actual), `${label}: engine must not refuse`).toBe(false);
      expect((actual as GrantState).closedReason).toBe('voided');
    }
    checkAll(m, r, label);
  }
  toString(): string {
    return `void(#${this.pick}${this.preferOpen ? '' : ' any'})`;
  }
}

class AdvanceCmd implements Cmd {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    m.now += this.ms;
    beforeOp(m, r);
    checkAll(m, r, this.toString());
  }
  toString(): string {
    return `advance(${this.ms}ms)`;
  }
}

/** Rebuilds the engine from the stored state (open grants, active holds), as each service request does. */
class ReloadCmd implements Cmd {
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    r.reload();
    beforeOp(m, r);
    count('reload');
    checkAll(m, r, this.toString());
  }
  toString(): string {
    return 'reload';
  }
}

/** Jumps to just before, exactly onto, or just after the next (or a later) due instant. */
class AdvanceToBoundaryCmd implements Cmd {
  constructor(
    readonly which: number,
    readonly offset: -1 | 0 | 1,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const upcoming = m.upcomingInstants();
    const target = upcoming.length === 0 ? m.now : upcoming[this.which % upcoming.length]! + this.offset;
    m.now = Math.max(m.now, target);
    beforeOp(m, r);
    checkAll(m, r, `${this.toString()} → ${m.now - T0}`);
  }
  toString(): string {
    return `advanceToBoundary(#${this.which}${this.offset === 0 ? '' : this.offset > 0 ? '+1ms' : '-1ms'})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Grant sizes: mostly whole credits, sometimes cents, sometimes any unit count (down to 10^-12). */
const grantUnits = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 60 }).map((n) => BigInt(n) * ONE) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 6000 }).map((n) => (BigInt(n) * ONE) / 100n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 60n * ONE }) },
);
/** Debit, hold and excess sizes: smaller than grants, so that most operations can succeed. */
const consumeUnits = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 15 }).map((n) => BigInt(n) * ONE) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 1500 }).map((n) => (BigInt(n) * ONE) / 100n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 15n * ONE }) },
  { weight: 1, arbitrary: fc.integer({ min: 16, max: 80 }).map((n) => BigInt(n) * ONE) },
);

const consumeSpec: fc.Arbitrary<AmountSpec> = fc.oneof(
  { weight: 6, arbitrary: consumeUnits },
  { weight: 1, arbitrary: fc.constantFrom<-1n | 0n | 1n>(-1n, 0n, 1n).map((relative) => ({ relative })) },
);

const effectiveSpec: fc.Arbitrary<EffectiveSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'now' as const }) },
  { weight: 2, arbitrary: fc.nat({ max: 5 }).map((k) => ({ kind: 'past' as const, k })) },
  { weight: 2, arbitrary: fc.nat({ max: 5 }).map((k) => ({ kind: 'future' as const, k })) },
);

/** Usually aim at an active hold / open grant; sometimes at any (to exercise the refusals). */
const preferLive = fc.oneof(
  { weight: 5, arbitrary: fc.constant(true) },
  { weight: 1, arbitrary: fc.constant(false) },
);

const anyCommand: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        grantUnits,
        fc.integer({ min: 0, max: 3 }),
        effectiveSpec,
        fc.option(fc.nat({ max: 6 }), { freq: 3 }),
      )
      .map(([units, p, eff, exp]): Cmd => new GrantCmd(units, p, eff, exp)),
  },
  {
    weight: 6,
    arbitrary: fc.tuple(consumeSpec, fc.boolean()).map(([spec, allow]): Cmd => new DebitCmd(spec, allow)),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(consumeSpec, fc.constantFrom(1, 999, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000))
      .map(([spec, ttl]): Cmd => new HoldCmd(spec, ttl)),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.nat({ max: 20 }),
        preferLive,
        fc.oneof(
          fc.constant<CaptureSpec>({ kind: 'default' }),
          fc.constant<CaptureSpec>({ kind: 'full' }),
          fc.integer({ min: 1, max: 99 }).map<CaptureSpec>((percent) => ({ kind: 'partial', percent })),
          consumeSpec.map<CaptureSpec>((extra) => ({ kind: 'excess', extra })),
        ),
        fc.boolean(),
      )
      .map(([pick, preferActive, spec, allow]): Cmd => new CaptureCmd(pick, preferActive, spec, allow)),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.nat({ max: 20 }), preferLive).map(([pick, pa]): Cmd => new ReleaseCmd(pick, pa)),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat({ max: 20 }), preferLive).map(([pick, po]): Cmd => new VoidCmd(pick, po)),
  },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(0, 1, 499, 999, 1000, 1001, 2000, 3000, 7000)
      .map((ms): Cmd => new AdvanceCmd(ms)),
  },
  { weight: 2, arbitrary: fc.constant<Cmd>(new ReloadCmd()) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.nat({ max: 3 }), fc.constantFrom<-1 | 0 | 1>(-1, 0, 1))
      .map(([which, offset]): Cmd => new AdvanceToBoundaryCmd(which, offset)),
  },
);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/** LEDGER_MODEL_RUNS=20000 for a longer soak (≈ 2 minutes). */
const NUM_RUNS = Number(process.env.LEDGER_MODEL_RUNS ?? 500);
const MAX_COMMANDS = 100;

describe('CreditLedger against a reference model', () => {
  let totalSteps = 0;
  let totalRuns = 0;
  afterAll(() => {
    console.info(
      `credit-ledger model: ${totalRuns} runs (incl. shrinking), ${totalSteps} checked steps, ` +
        `${(totalSteps / Math.max(1, totalRuns)).toFixed(1)} per run`,
    );
    // LEDGER_MODEL_STATS=1 prints how often each path was exercised.
    if (process.env.LEDGER_MODEL_STATS)
      console.info(
        [...coverage]
          .sort()
          .map(([k, v]) => `  ${k}: ${v}`)
          .join('\n'),
      );
  });

  it(
    'agrees with the model after every step of random command sequences',
    () => {
      fc.assert(
        fc.property(fc.commands([anyCommand], { maxCommands: MAX_COMMANDS, size: 'max' }), (cmds) => {
          const model = new Model();
          const real = new Real();
          fc.modelRun(() => ({ model, real }), cmds);
          totalSteps += model.steps;
          totalRuns++;
        }),
        { numRuns: NUM_RUNS },
      );
    },
    Math.max(60_000, NUM_RUNS * 50),
  );

  it('the model order matches compareBurnDownOrder on random grant sets (cross-check)', () => {
    const grantArb = fc.record({
      priority: fc.integer({ min: 0, max: 3 }),
      expiresAt: fc.option(fc.integer({ min: 0, max: 4 }).map((k) => T0 + k * U)),
      effectiveAt: fc.integer({ min: 0, max: 4 }).map((k) => T0 - k * U),
      n: fc.nat({ max: 999 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(grantArb, { selector: (g) => g.n, maxLength: 12 }), (specs) => {
        const grants = specs.map(
          (s) =>
            ({
              id: `grt_${String(s.n).padStart(6, '0')}`,
              amount: 1n,
              priority: s.priority,
              effectiveAt: s.effectiveAt,
              expiresAt: s.expiresAt,
              createdAt: T0,
              available: 1n,
              held: 0n,
              closed: null,
              closedAt: null,
              activated: true,
            }) satisfies MGrant,
        );
        const viaModel = [...grants].sort(modelOrder).map((g) => g.id);
        const viaEngine = [...grants].sort(compareBurnDownOrder).map((g) => g.id);
        expect(viaEngine).toEqual(viaModel);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// A few fixed scenarios from docs/design.md / docs/api.md, as readable regressions
// ---------------------------------------------------------------------------------------------

describe('CreditLedger scenarios', () => {
  function setup() {
    const r = new Real();
    const grant = (
      amount: string,
      now: number,
      extra: Partial<{ priority: number; effectiveAt: number; expiresAt: number | null }> = {},
    ) =>
      r.ledger.grant(
        {
          amount: Amount.parse(amount),
          category: 'paid',
          priority: extra.priority ?? 10,
          effectiveAt: extra.effectiveAt ?? now,
          expiresAt: extra.expiresAt ?? null,
          costBasis: null,
          appliesTo: null,
          description: null,
          metadata: {},
        },
        now,
      );
    return { r, ledger: r.ledger, grant };
  }

  it('burns lower priority, then soonest expiry, then older effective_at, then id', () => {
    const { ledger, grant } = setup();
    const t = T0;
    const g1 = grant('10', t, { priority: 2 });
    const g2 = grant('10', t, { priority: 1, expiresAt: t + 5 * U });
    const g3 = grant('10', t, { priority: 1, expiresAt: t + 3 * U });
    const g4 = grant('10', t, { priority: 1 });
    const g5 = grant('10', t, { priority: 1, effectiveAt: t - U });
    const d = ledger.debit({ amount: Amount.parse('45'), allowOverage: false }, t) as DebitRecord;
    expect(d.drawdowns.map((x) => [x.grantId, x.amount.toString()])).toEqual([
      [g3.id, '10'],
      [g2.id, '10'],
      [g5.id, '10'],
      [g4.id, '10'],
      [g1.id, '5'],
    ]);
  });

  it('expiry leaves through an entry dated exactly expires_at, even when noticed later', () => {
    const { r, ledger, grant } = setup();
    const g = grant('10', T0, { expiresAt: T0 + 5 * U });
    ledger.debit({ amount: Amount.parse('3'), allowOverage: false }, T0);
    ledger.advanceTo(T0 + 60 * U);
    const expiry = ledger.newEntries.find((e) => e.type === 'expiry')!;
    expect([expiry.at, expiry.amount.toString(), expiry.grantId]).toEqual([T0 + 5 * U, '7', g.id]);
    expect(ledger.balance(T0 + 60 * U).available.toString()).toBe('0');
    r.replayNewEntries();
    expect(r.sum('expired')).toBe(7n * ONE);
  });

  it('a capture up to the hold succeeds after the grant expired; the released rest leaves as expiry', () => {
    const { ledger, grant } = setup();
    const g = grant('10', T0, { expiresAt: T0 + 2 * U });
    const hold = ledger.placeHold({ amount: Amount.parse('6'), expiresAt: T0 + 10 * U }, T0) as HoldState;
    ledger.advanceTo(T0 + 3 * U);
    expect(g.closedReason).toBe('expired');
    expect(ledger.balance(T0 + 3 * U).held.toString()).toBe('6');
    const d = ledger.capture({ holdId: hold.id, amount: Amount.parse('4'), allowOverage: false }, T0 + 3 * U);
    expect(isRefusal(d)).toBe(false);
    const last = ledger.newEntries.slice(-2).map((e) => [e.type, e.amount.toString(), e.at]);
    expect(last).toEqual([
      ['release', '2', T0 + 3 * U],
      ['expiry', '2', T0 + 3 * U],
    ]);
    expect([g.available.toString(), g.held.toString()]).toEqual(['0', '0']);
  });

  it('overage is debt: a new grant pays it first at activation; a future grant pays it when effective', () => {
    const { ledger, grant } = setup();
    grant('5', T0);
    const d = ledger.debit({ amount: Amount.parse('8'), allowOverage: true }, T0) as DebitRecord;
    expect(d.overage.toString()).toBe('3');
    expect(ledger.balance(T0).available.toString()).toBe('-3');
    const pending = grant('2', T0, { effectiveAt: T0 + 5 * U });
    expect(ledger.balance(T0).overage.toString()).toBe('3');
    const g = grant('2', T0 + U);
    ledger.advanceTo(T0 + U);
    expect([g.available.toString(), ledger.balance(T0 + U).overage.toString()]).toEqual(['0', '1']);
    ledger.advanceTo(T0 + 5 * U);
    expect([pending.available.toString(), ledger.balance(T0 + 5 * U).available.toString()]).toEqual([
      '1',
      '1',
    ]);
    const settled = ledger.newEntries.filter((e) => e.type === 'overage_settled');
    expect(settled.map((e) => [e.grantId, e.at])).toEqual([
      [g.id, T0 + U],
      [pending.id, T0 + 5 * U],
    ]);
  });

  it('a hold expiring at the very instant its grant expires returns nothing usable: no debt is paid', () => {
    const { ledger, grant } = setup();
    const g = grant('10', T0, { expiresAt: T0 + 5 * U });
    const hold = ledger.placeHold({ amount: Amount.parse('10'), expiresAt: T0 + 5 * U }, T0) as HoldState;
    ledger.debit({ amount: Amount.parse('3'), allowOverage: true }, T0);
    ledger.advanceTo(T0 + 6 * U);
    expect(hold.status).toBe('expired');
    expect(ledger.balance(T0 + 6 * U).overage.toString()).toBe('3');
    const tail = ledger.newEntries.slice(-2).map((e) => [e.type, e.amount.toString(), e.ref, e.at]);
    expect(tail).toEqual([
      ['release', '10', hold.id, T0 + 5 * U],
      ['expiry', '10', g.id, T0 + 5 * U],
    ]);
  });

  it('grants activating at the same instant pay the debt in burn-down order, not creation order', () => {
    const { ledger, grant } = setup();
    ledger.debit({ amount: Amount.parse('1'), allowOverage: true }, T0);
    const noExpiry = grant('1', T0, { effectiveAt: T0 + 3 * U, priority: 0 });
    const expiring = grant('1', T0, { effectiveAt: T0 + 3 * U, expiresAt: T0 + 4 * U, priority: 0 });
    ledger.advanceTo(T0 + 3 * U);
    expect([noExpiry.available.toString(), expiring.available.toString()]).toEqual(['1', '0']);
  });

  it('refusals: insufficient_credits (nothing debited), hold_not_active, grant_not_active', () => {
    const { ledger, grant } = setup();
    const g = grant('5', T0, { expiresAt: T0 + U });
    const before = ledger.newEntries.length;
    expect(ledger.debit({ amount: Amount.parse('5.000000000001'), allowOverage: false }, T0)).toMatchObject({
      refused: 'insufficient_credits',
    });
    expect(ledger.newEntries.length).toBe(before);
    const hold = ledger.placeHold({ amount: Amount.parse('1'), expiresAt: T0 + 500 }, T0) as HoldState;
    ledger.advanceTo(T0 + 500);
    expect(ledger.capture({ holdId: hold.id, amount: null, allowOverage: true }, T0 + 500)).toEqual({
      refused: 'hold_not_active',
      status: 'expired',
    });
    ledger.advanceTo(T0 + U);
    expect(ledger.voidGrant(g.id, T0 + U)).toEqual({ refused: 'grant_not_active', status: 'expired' });
  });
});
