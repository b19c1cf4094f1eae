import type { Amount } from '../domain/amount/amount.js';
import type { CreditLedger } from '../domain/ledger/credit-ledger.js';
import type { AutoTopUp } from '../domain/plans/subscription.js';
import type { Instant } from '../domain/time/instant.js';
import type { LedgerKey, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';
import { autoTopUpOnCrossing } from './credit-packs.js';
import { prepareCustomer, prepareCustomerWithLedger } from './customer-upkeep.js';
import { CustomerLedgers } from './ledger-set.js';

/**
 * The one ledger session of a customer inside a write transaction, used by every write that
 * changes balances (grants, debits, holds, captures, releases, voids, held checks, purchases,
 * ingested events):
 *
 * 1. {@link LedgerSession.open} applies the customer's upkeep first (subscription resets due by
 *    `now`, so a burn right after a reset draws on the new allowance) and reads the auto top-up
 *    rule: one storage round trip when nothing is due;
 * 2. {@link ledger} loads a credit type's snapshot once and advances it to `now` (expiries, hold
 *    expiries, activations); the engine's operations are then called on it;
 * 3. {@link burned} marks a burn: at save, a crossing of the auto top-up threshold since the
 *    ledger was opened buys packs in the same transaction;
 * 4. {@link save} persists every changed ledger once.
 *
 * A refusal is decided before {@link save}: a caller that refuses simply does not save, so only
 * the upkeep of step 1 (already written) commits with the refusal (docs/design.md §5).
 */
export class LedgerSession {
  private readonly opened = new Map<
    string,
    { ledger: CreditLedger; availableBefore: Amount | null; burned: boolean }
  >();

  private constructor(
    private readonly ctx: ServiceContext,
    private readonly tx: WriteOperations,
    private readonly ledgers: CustomerLedgers,
    readonly now: Instant,
    private readonly autoTopUp: AutoTopUp | null,
  ) {}

  static async open(
    ctx: ServiceContext,
    tx: WriteOperations,
    customer: { readonly workspaceId: string; readonly customerId: string },
    now: Instant,
  ): Promise<LedgerSession> {
    const prepared = await prepareCustomer(ctx, tx, customer.workspaceId, customer.customerId, now);
    const ledgers = new CustomerLedgers(ctx, tx, customer.workspaceId, customer.customerId, {
      balanceThresholds: prepared.balanceThresholds,
    });
    return new LedgerSession(ctx, tx, ledgers, now, prepared.autoTopUp);
  }

  /**
   * {@link open} for a write that names its credit type, returning that ledger too: the upkeep
   * and the ledger come from one storage read ({@link prepareCustomerWithLedger}).
   */
  static async openWithLedger(
    ctx: ServiceContext,
    tx: WriteOperations,
    key: LedgerKey,
    now: Instant,
  ): Promise<{ session: LedgerSession; ledger: CreditLedger }> {
    const { prepared, ledger } = await prepareCustomerWithLedger(ctx, tx, key, now);
    const ledgers = new CustomerLedgers(
      ctx,
      tx,
      key.workspaceId,
      key.customerId,
      { balanceThresholds: prepared.balanceThresholds },
      ledger === null ? null : { creditType: key.creditType, snapshot: ledger },
    );
    const session = new LedgerSession(ctx, tx, ledgers, now, prepared.autoTopUp);
    return { session, ledger: await session.ledger(key.creditType) };
  }

  get workspaceId(): string {
    return this.ledgers.workspaceId;
  }

  /** The customer's ledger of a credit type, loaded once and advanced to now. */
  async ledger(creditType: string): Promise<CreditLedger> {
    const open = this.opened.get(creditType);
    if (open) return open.ledger;
    const ledger = await this.ledgers.get(creditType);
    ledger.advanceTo(this.now);
    // The balance before is only compared with an enabled auto top-up rule's threshold.
    const availableBefore = this.autoTopUp?.enabled ? ledger.availableAt(this.now) : null;
    this.opened.set(creditType, { ledger, availableBefore, burned: false });
    return ledger;
  }

  /**
   * The ledger of a credit type if it is open and marked {@link burned} already, else undefined:
   * a caller that burns in it again and again (a batch's events) skips an await each time.
   */
  burningLedger(creditType: string): CreditLedger | undefined {
    const open = this.opened.get(creditType);
    return open?.burned ? open.ledger : undefined;
  }

  /** Marks a burn in this credit type (debit, hold, capture, rated event): auto top-up applies at save. */
  burned(creditType: string): void {
    const open = this.opened.get(creditType);
    if (!open) throw new Error(`ledger session: ${creditType} burned before it was opened`);
    open.burned = true;
  }

  /** Auto top-up for each credit type that burned across the threshold, then persists every change once. */
  async save(): Promise<void> {
    for (const { ledger, availableBefore, burned } of this.opened.values()) {
      if (!burned || availableBefore === null) continue;
      await autoTopUpOnCrossing(this.ctx, this.tx, {
        workspaceId: this.workspaceId,
        ledger,
        rule: this.autoTopUp,
        availableBefore,
        now: this.now,
      });
    }
    await this.ledgers.save(this.now);
  }
}
