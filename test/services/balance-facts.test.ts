/**
 * Balance facts decided at a ledger's save (src/services/balance-facts.ts), at the level of one
 * save: what is read and told, and that the common save (a debit of a customer without thresholds)
 * reads nothing and decides without a promise. The end-to-end rules (crossings, order, replays)
 * are tested over HTTP in test/http/balance-alerts*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { CreditLedger, emptyLedgerSnapshot, type NewGrant } from '../../src/domain/ledger/credit-ledger.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { SequentialIds } from '../../src/infra/ids.js';
import type { WriteOperations } from '../../src/ports/storage.js';
import { appendBalanceFacts, noteLoaded } from '../../src/services/balance-facts.js';
import type { ServiceContext } from '../../src/services/context.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

const grant = (amount: string): NewGrant => ({
  amount: Amount.of(amount),
  category: 'paid',
  priority: 10,
  effectiveAt: T0,
  expiresAt: null,
  costBasis: null,
  appliesTo: null,
  description: null,
  metadata: {},
});

/** A transaction that records what the facts read and append, answering with no thresholds. */
function recordingTx() {
  const calls: string[] = [];
  const appended: { type: string; data: Record<string, unknown> }[] = [];
  const tx = {
    alerts: {
      thresholdsForLedger: async () => {
        calls.push('thresholdsForLedger');
        return [];
      },
    },
    outbox: {
      append: async (records: readonly { type: string; data: Record<string, unknown> }[]) => {
        calls.push('append');
        appended.push(...records.map((r) => ({ type: r.type, data: r.data })));
      },
    },
  } as unknown as WriteOperations;
  return { tx, calls, appended };
}

/** A ledger with one grant of `amount`, saved once (as loaded from storage by the next write). */
function loadedLedger(amount: string) {
  const ids = new SequentialIds();
  const ledger = new CreditLedger(emptyLedgerSnapshot('c1', 'credits'), ids);
  ledger.grant(grant(amount), T0);
  ledger.takeChanges();
  return ledger;
}

const ctx = { clock: new ManualClock(T0), ids: new SequentialIds() } as unknown as ServiceContext;

describe('balance facts at a save', () => {
  it('a debit that depletes nothing, for a customer without thresholds, reads nothing and returns no promise', () => {
    const ledger = loadedLedger('100');
    const loaded = noteLoaded(ledger, false);
    ledger.debit({ amount: Amount.of('1.5'), allowOverage: false }, T0);
    const { tx, calls } = recordingTx();
    const pending = appendBalanceFacts(ctx, tx, 'default', ledger, ledger.takeChanges(), T0, loaded);
    expect(pending).toBeUndefined();
    expect(calls).toEqual([]);
    // The next save of the same ledger compares with what this one left.
    expect(loaded.point.available.toString()).toBe('98.5');
  });

  it('reads the thresholds when one may apply and the balance moved, and only then', async () => {
    const ledger = loadedLedger('100');
    const loaded = noteLoaded(ledger, true);
    const { tx, calls } = recordingTx();
    // Nothing moved: nothing to read.
    expect(appendBalanceFacts(ctx, tx, 'default', ledger, ledger.takeChanges(), T0, loaded)).toBeUndefined();
    ledger.debit({ amount: Amount.of('1'), allowOverage: false }, T0);
    await appendBalanceFacts(ctx, tx, 'default', ledger, ledger.takeChanges(), T0, loaded);
    expect(calls).toEqual(['thresholdsForLedger']);
  });

  it('tells a depletion and the start of overage in one save, against the balance at load', async () => {
    const ledger = loadedLedger('10');
    const loaded = noteLoaded(ledger, false);
    ledger.debit({ amount: Amount.of('12'), allowOverage: true }, T0);
    const { tx, appended } = recordingTx();
    const pending = appendBalanceFacts(ctx, tx, 'default', ledger, ledger.takeChanges(), T0, loaded);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(appended.map((a) => a.type)).toEqual(['balance.depleted', 'overage.started']);
    expect(appended[0]?.data).toMatchObject({ balance_before: '10', balance_after: '-2' });
    expect(appended[1]?.data).toMatchObject({ overage: '2' });
    // Saved again with nothing new: already told.
    expect(appendBalanceFacts(ctx, tx, 'default', ledger, ledger.takeChanges(), T0, loaded)).toBeUndefined();
  });
});
