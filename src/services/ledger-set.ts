import { CreditLedger, type CreditLedgerSnapshot } from '../domain/ledger/credit-ledger.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import { type LoadedBalance, noteLoaded } from './balance-facts.js';
import type { ServiceContext } from './context.js';
import { persistLedger } from './ledger-persistence.js';

/**
 * The ledgers of one customer inside one transaction, one per credit type: each loaded (for
 * update) at most once, and every changed one persisted once by {@link save}. The bottom of
 * {@link LedgerSession} (src/services/ledger-session.ts); subscription upkeep uses it directly,
 * because it advances its ledgers instant by instant rather than to the present at once.
 */
export class CustomerLedgers {
  /** Each loaded ledger, with the balance it had when loaded (moved on by each save). */
  private readonly ledgers = new Map<
    string,
    { readonly ledger: CreditLedger; readonly loaded: LoadedBalance }
  >();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly tx: WriteOperations,
    readonly workspaceId: string,
    readonly customerId: string,
    /** What this write already knows of the customer (a session read it with the upkeep). */
    private readonly known: { readonly balanceThresholds: boolean } = { balanceThresholds: true },
    /** A ledger already read in this transaction (with the upkeep), used instead of loading it. */
    private prefetched: {
      readonly creditType: string;
      readonly snapshot: CreditLedgerSnapshot;
    } | null = null,
  ) {}

  /** Whether the ledger of this credit type is loaded already. */
  has(creditType: string): boolean {
    return this.ledgers.has(creditType);
  }

  /** The ledger of a credit type, as stored (not advanced): loaded on first use. */
  async get(creditType: string): Promise<CreditLedger> {
    const open = this.ledgers.get(creditType);
    if (open) return open.ledger;
    const key = { workspaceId: this.workspaceId, customerId: this.customerId, creditType };
    const prefetched = this.prefetched?.creditType === creditType ? this.prefetched.snapshot : null;
    this.prefetched = null;
    const snapshot = prefetched ?? (await this.tx.loadLedgerForUpdate(key));
    const ledger = new CreditLedger(snapshot, this.ctx.ids);
    this.ledgers.set(creditType, { ledger, loaded: noteLoaded(ledger, this.known.balanceThresholds) });
    return ledger;
  }

  /** Persists every ledger that changed, once. */
  async save(now: Instant): Promise<void> {
    for (const { ledger, loaded } of this.ledgers.values()) {
      if (ledger.isDirty) await persistLedger(this.ctx, this.tx, this.workspaceId, ledger, now, loaded);
    }
  }
}
