import { BurndownError, ErrorCode } from '../domain/errors.js';
import { extend } from '../domain/objects.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteHints, WriteOperations } from '../ports/storage.js';
import { type AuditMessage, appendAudit, type RequestContext, SYSTEM_REQUEST } from './audit.js';
import type { ServiceContext } from './context.js';
import { type JsonText, jsonOf } from './json-text.js';
import { type Refusal, refusalError } from './ledger.js';
import { appendFacts, type OutboxMessage } from './outbox.js';

export { appendFacts, type OutboxMessage };

/**
 * The one way a write runs (docs/design.md §5, "The write path and the commit rule").
 *
 * A use case is a {@link WriteCommand}: the lock key it needs (chosen by the service, never by the
 * transport) and its `work`, which runs inside that lock and one transaction and returns a typed
 * {@link WriteOutcome}. {@link runWrite} owns the lock, the transaction, the stored idempotent
 * answer, the outbox (facts for webhooks, in the write's transaction) and the audit log (a
 * success's {@link AuditMessage}s, stamped with the {@link RequestContext} the transport passed
 * in: the actor's key id and the request id; in the write's transaction too).
 *
 * **Commit rule.**
 * - `{ ok: true }`: everything the work wrote commits, with the stored answer and outbox rows.
 * - `{ ok: false, refusal }` (a business refusal: 402/409): the transaction still commits, with
 *   the stored answer. What the work applied on the way (upkeep: due resets and expiries) commits
 *   with it; the refused operation itself wrote nothing, because every use case decides a refusal
 *   before its own writes (the engine checks before it records; inserts that would conflict write
 *   nothing; subscription refusals come after the upkeep and before the change). Outbox messages
 *   of a refusal are dropped.
 * - A thrown error (validation 4xx, a bug, an {@link InvariantViolation}): everything rolls back,
 *   nothing is stored, and the error propagates.
 *
 * **Presenting.** The work returns a domain value; the transport supplies `present`, a pure
 * formatting function (no I/O, no reads). Without an idempotency key it runs after the commit,
 * outside the lock. With one, the answer must be stored in the same transaction as the write (so a
 * retry never sees an answer that was not committed, and never writes twice), so `present` runs
 * once, at the end of the transaction, as pure JSON formatting; that is the only thing that runs
 * under the lock besides the work itself.
 */

/** A business refusal as a value: the engine's refusals, or a refusal a use case names itself. */
export type BusinessRefusal = Refusal | NamedRefusal;

/** A refusal by error code, message and details (already_exists, already_subscribed, …). */
export interface NamedRefusal {
  readonly refused: 'named';
  readonly code: ErrorCode;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What a write's work returns: a value, or a refusal with its details. */
export type WriteOutcome<T> =
  | {
      readonly ok: true;
      readonly value: T;
      readonly outbox?: readonly OutboxMessage[];
      /** Administrative changes to record in the audit log (src/services/audit.ts says which). */
      readonly audit?: readonly AuditMessage[];
    }
  | { readonly ok: false; readonly refusal: BusinessRefusal };

/**
 * A command whose success is an administrative change: after `command`'s work succeeds, `describe`
 * names what changed and the unit of work records it in the audit log, in the write's transaction.
 */
export function audited<T>(command: WriteCommand<T>, describe: (value: T) => AuditMessage): WriteCommand<T> {
  return auditedChange(command, async () => null, describe);
}

/**
 * {@link audited} for an edit: `readBefore` reads the state before the change (in the same
 * transaction, under the command's lock), and `describe` gets it with the value.
 */
export function auditedChange<T, B>(
  command: WriteCommand<T>,
  readBefore: (tx: WriteOperations) => Promise<B>,
  describe: (value: T, before: B) => AuditMessage,
): WriteCommand<T> {
  return {
    lockKey: command.lockKey,
    // An audit record claims its workspace's chain head: never in a transaction shared with others.
    hints: extend(command.hints ?? {}, { ownTransaction: true }),
    work: async (tx, now) => {
      const before = await readBefore(tx);
      const outcome = await command.work(tx, now);
      if (!outcome.ok) return outcome;
      return extend(outcome, { audit: [...(outcome.audit ?? []), describe(outcome.value, before)] });
    },
  };
}

/** One use case's write: the lock it needs and the work to run under it. */
export interface WriteCommand<T> {
  readonly lockKey: string | readonly string[];
  readonly work: (tx: WriteOperations, now: Instant) => Promise<WriteOutcome<T>>;
  /** What the work reads first, so the storage can read it with the lock (fewer round trips). */
  readonly hints?: WriteHints;
}

/** The identity of an idempotent request: its key and a digest of its canonical parsed form. */
export interface IdempotencyIdentity {
  readonly workspaceId: string;
  readonly key: string;
  readonly fingerprint: string;
}

/** An answer as the transport sends it. */
export interface Presented {
  readonly status: number;
  /** The JSON body: a value to serialise, or a {@link JsonText} already serialised. */
  readonly body: unknown;
  /** What a replay answers, when it must differ from the first answer (a secret shown once). */
  readonly replayBody?: unknown;
}

/** The answer of a write: its status and JSON text, and whether it replays a stored answer. */
export interface WriteAnswer {
  readonly status: number;
  readonly text: string;
  readonly replayed: boolean;
}

/** A refusal, as the error whose envelope the transport sends (402 or 409). */
export function businessRefusalError(refusal: BusinessRefusal): BurndownError {
  if (refusal.refused === 'named') return new BurndownError(refusal.code, refusal.message, refusal.details);
  return refusalError(refusal);
}

/** Codes that are business refusals: answered, stored for replay, and committed with their upkeep. */
const REFUSAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.insufficientCredits,
  ErrorCode.alreadyExists,
  ErrorCode.alreadySubscribed,
  ErrorCode.subscriptionNotActive,
  ErrorCode.grantNotActive,
  ErrorCode.holdNotActive,
  ErrorCode.holdManagedByDispute,
  ErrorCode.nothingToReverse,
  ErrorCode.reversalExceedsBurn,
]);

/** A value or the engine's refusal value, as a {@link WriteOutcome}. */
export function outcomeOf<T extends object>(result: T | Refusal): WriteOutcome<T> {
  return 'refused' in result ? { ok: false, refusal: result as Refusal } : { ok: true, value: result };
}

/**
 * A command from its lock key and work; the work returns its value or the engine's refusal value
 * (a refusal the use case throws before its own writes is turned into a value by {@link runWrite}).
 */
export function command<T extends object>(
  lockKey: string | readonly string[],
  work: (tx: WriteOperations, now: Instant) => Promise<T | Refusal>,
  hints?: WriteHints,
): WriteCommand<T> {
  return { lockKey, work: async (tx, now) => outcomeOf(await work(tx, now)), hints };
}

/**
 * Runs `work` as a refusal-aware step: a {@link BurndownError} with a refusal code thrown by a use
 * case (before its own writes, see the commit rule) becomes a refusal value.
 */
async function attempt<T>(
  work: WriteCommand<T>['work'],
  tx: WriteOperations,
  now: Instant,
): Promise<WriteOutcome<T>> {
  try {
    return await work(tx, now);
  } catch (error) {
    if (error instanceof BurndownError && REFUSAL_CODES.has(error.code)) {
      return {
        ok: false,
        refusal: { refused: 'named', code: error.code, message: error.message, details: error.details },
      };
    }
    throw error;
  }
}

/** The same key sent again with a different request. */
export function idempotencyKeyReused(): BurndownError {
  return new BurndownError(
    ErrorCode.idempotencyKeyReused,
    'this Idempotency-Key was used for a different request',
    {},
  );
}

/**
 * The single write entry: takes the command's lock, runs its work in one transaction, applies the
 * commit rule, stores the idempotent answer (when `idempotency` is given) and the outbox messages,
 * and presents. Same key and same request: the stored answer, replayed. Same key, different
 * request: 422 `idempotency_key_reused`.
 */
export async function runWrite<T>(
  ctx: ServiceContext,
  command: WriteCommand<T>,
  present: (outcome: WriteOutcome<T>, now: Instant) => Presented,
  idempotency: IdempotencyIdentity | null = null,
  request: RequestContext = SYSTEM_REQUEST,
): Promise<WriteAnswer> {
  if (idempotency === null) {
    const { outcome, now } = await ctx.storage.write(
      command.lockKey,
      async (tx) => {
        const now = ctx.clock.now();
        const outcome = await attempt(command.work, tx, now);
        if (hasRecords(outcome)) await persistOutbox(ctx, tx, outcome, now, request);
        return { outcome, now };
      },
      command.hints,
    );
    // Presented after the commit, outside the lock.
    const presented = present(outcome, now);
    return { status: presented.status, text: jsonOf(presented.body), replayed: false };
  }
  const { workspaceId, key, fingerprint } = idempotency;
  return ctx.storage.write(
    command.lockKey,
    async (tx) => {
      const stored = await tx.getIdempotency(workspaceId, key);
      if (stored) {
        if (stored.fingerprint !== fingerprint) throw idempotencyKeyReused();
        return { status: stored.statusCode, text: stored.responseBody, replayed: true };
      }
      const now = ctx.clock.now();
      const outcome = await attempt(command.work, tx, now);
      if (hasRecords(outcome)) await persistOutbox(ctx, tx, outcome, now, request);
      // The answer is stored with the write: pure formatting, the only step under the lock after the work.
      const presented = present(outcome, now);
      const text = jsonOf(presented.body);
      await tx.putIdempotency(workspaceId, key, {
        fingerprint,
        statusCode: presented.status,
        responseBody: presented.replayBody === undefined ? text : jsonOf(presented.replayBody),
        createdAt: now,
      });
      return { status: presented.status, text, replayed: false };
    },
    command.hints,
  );
}

/**
 * Whether a success carries outbox facts or audit records to write: most writes (a debit, a hold)
 * carry neither, and skip the call and its await.
 */
function hasRecords<T>(outcome: WriteOutcome<T>): boolean {
  return (
    outcome.ok && (outcome.outbox !== undefined || (outcome.audit !== undefined && outcome.audit.length > 0))
  );
}

/** A success's outbox facts and audit records, in its transaction; a refusal's are dropped. */
async function persistOutbox<T>(
  ctx: ServiceContext,
  tx: WriteOperations,
  outcome: WriteOutcome<T>,
  now: Instant,
  request: RequestContext,
): Promise<void> {
  if (!outcome.ok) return;
  if (outcome.outbox !== undefined) await appendFacts(ctx, tx, now, outcome.outbox);
  if (outcome.audit !== undefined && outcome.audit.length > 0) {
    await appendAudit(ctx, tx, now, request, outcome.audit);
  }
}

/**
 * Runs a command without an idempotency key and returns its value; a refusal is thrown as its
 * 402/409 error after the commit (for writes the contract does not make idempotent).
 */
export async function execute<T>(
  ctx: ServiceContext,
  command: WriteCommand<T>,
  request: RequestContext = SYSTEM_REQUEST,
): Promise<T> {
  const outcome = await ctx.storage.write(
    command.lockKey,
    async (tx) => {
      const now = ctx.clock.now();
      const outcome = await attempt(command.work, tx, now);
      if (hasRecords(outcome)) await persistOutbox(ctx, tx, outcome, now, request);
      return outcome;
    },
    command.hints,
  );
  if (!outcome.ok) throw businessRefusalError(outcome.refusal);
  return outcome.value;
}

/**
 * Idempotency for work that spans several transactions (an event batch spans many customers):
 * the stored answer, if any, read before the work...
 */
export async function storedAnswer(
  ctx: ServiceContext,
  idempotency: IdempotencyIdentity,
): Promise<WriteAnswer | null> {
  const { workspaceId, key, fingerprint } = idempotency;
  const stored = await ctx.storage.write(`${workspaceId}/#idempotency`, async (tx) =>
    tx.getIdempotency(workspaceId, key),
  );
  if (!stored) return null;
  if (stored.fingerprint !== fingerprint) throw idempotencyKeyReused();
  return { status: stored.statusCode, text: stored.responseBody, replayed: true };
}

/** ...and the answer stored after the work is durable (a crash in between stores nothing). */
export async function storeAnswer(
  ctx: ServiceContext,
  idempotency: IdempotencyIdentity,
  answer: { readonly status: number; readonly text: string },
): Promise<void> {
  const { workspaceId, key, fingerprint } = idempotency;
  await ctx.storage.write(`${workspaceId}/#idempotency`, async (tx) =>
    tx.putIdempotency(workspaceId, key, {
      fingerprint,
      statusCode: answer.status,
      responseBody: answer.text,
      createdAt: ctx.clock.now(),
    }),
  );
}
