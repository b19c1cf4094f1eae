import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from '../services/context.js';
import { statusOfErrorCode } from './error-status.js';
import { NOT_JSON_BODY } from './event-parsing.js';
import { canonicalJson, jsonValueProblem } from './json-limits.js';

/** What a write route answers: a status and a JSON body (success or a business refusal). */
export interface WriteResult {
  readonly status: number;
  readonly body: unknown;
  /** What a replay answers, when it must differ from the first answer (a secret shown once). */
  readonly replayBody?: unknown;
}

/** Idempotency keys: 1–255 printable ASCII characters (spaces inside allowed). */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;
/** How long stored responses are kept; the contract promises at least 24 h. */
export const IDEMPOTENCY_RETENTION_MS = 72 * 3600 * 1000;

/** The error envelope body of the contract. */
export function errorBody(error: BurndownError) {
  return { error: { code: error.code, message: error.message, details: error.details } };
}

/** Business refusals are answered again on replay; validation errors and 5xx are not stored. */
function reused(): BurndownError {
  return new BurndownError(
    ErrorCode.idempotencyKeyReused,
    'this Idempotency-Key was used for a different request',
    {},
  );
}

function isStoredRefusal(error: BurndownError): boolean {
  const status = statusOfErrorCode(error.code);
  return status === 402 || (status === 409 && error.code !== ErrorCode.requestInProgress);
}

/**
 * Runs a write route with the contract's Idempotency-Key semantics: the first answer (success
 * or business refusal) is stored in the same transaction as the write, so a retry can never
 * write twice or see an answer that was not committed. Same key and same request: the stored
 * answer with `Idempotent-Replayed: true`. Same key, different request: 422. Same key while
 * the first is still running (in this process): 409.
 */
export class IdempotentWriter {
  private readonly inFlight = new Set<string>();

  constructor(private readonly ctx: ServiceContext) {}

  /**
   * Idempotency for requests that write in several transactions (an event batch spans many
   * customers): the stored answer is checked first and saved after the work is durable. A crash
   * in between leaves no stored answer, so a retry runs the work again; such work must itself be
   * idempotent (events are deduplicated by id, backfills burn each event once).
   */
  async runSeparately(
    request: FastifyRequest,
    reply: FastifyReply,
    work: () => Promise<WriteResult>,
  ): Promise<FastifyReply> {
    const header = request.headers['idempotency-key'];
    if (header === undefined) {
      const result = await work();
      return send(reply, result.status, JSON.stringify(result.body), false);
    }
    const { key, fingerprint, flightKey } = this.identify(request, header);
    const workspaceId = request.auth.workspaceId;
    this.inFlight.add(flightKey);
    try {
      const stored = await this.ctx.storage.write(`${workspaceId}/#idempotency`, async (tx) =>
        tx.getIdempotency(workspaceId, key),
      );
      if (stored) {
        if (stored.fingerprint !== fingerprint) throw reused();
        return send(reply, stored.statusCode, stored.responseBody, true);
      }
      const result = await work();
      const text = JSON.stringify(result.body);
      // A refused batch (400 invalid_batch) stored nothing, so a retry must run again.
      if (result.status >= 400) return send(reply, result.status, text, false);
      try {
        await this.ctx.storage.write(`${workspaceId}/#idempotency`, async (tx) =>
          tx.putIdempotency(workspaceId, key, {
            fingerprint,
            statusCode: result.status,
            responseBody: text,
            createdAt: this.ctx.clock.now(),
          }),
        );
      } catch (error) {
        // Another process stored an answer for this key meanwhile; the work itself is idempotent.
        request.log.warn({ err: error }, 'idempotency record not stored');
      }
      return send(reply, result.status, text, false);
    } finally {
      this.inFlight.delete(flightKey);
    }
  }

  /** Validates the header and computes the request's fingerprint; refuses a key already in flight. */
  private identify(
    request: FastifyRequest,
    header: string | string[],
  ): { key: string; fingerprint: string; flightKey: string } {
    if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header)) {
      throw invalidRequest('Idempotency-Key must be 1 to 255 printable ASCII characters', {
        field: 'Idempotency-Key',
      });
    }
    const fingerprint = createHash('sha256')
      .update(`${request.method} ${request.url}\n`)
      .update(fingerprintBody(request))
      .digest('hex');
    const flightKey = `${request.auth.workspaceId}\u0000${header}`;
    if (this.inFlight.has(flightKey)) {
      throw new BurndownError(
        ErrorCode.requestInProgress,
        'a request with this Idempotency-Key is still in progress',
        {},
      );
    }
    return { key: header, fingerprint, flightKey };
  }

  async run(
    request: FastifyRequest,
    reply: FastifyReply,
    lockKey: string,
    work: (tx: WriteOperations, now: Instant) => Promise<WriteResult>,
  ): Promise<FastifyReply> {
    const header = request.headers['idempotency-key'];
    const workspaceId = request.auth.workspaceId;
    if (header === undefined) {
      const result = await this.ctx.storage.write(lockKey, (tx) => work(tx, this.ctx.clock.now()));
      return send(reply, result.status, JSON.stringify(result.body), false);
    }
    const { key, fingerprint, flightKey } = this.identify(request, header);
    this.inFlight.add(flightKey);
    try {
      const outcome = await this.ctx.storage.write(lockKey, async (tx) => {
        const stored = await tx.getIdempotency(workspaceId, key);
        if (stored) {
          if (stored.fingerprint !== fingerprint) throw reused();
          return { status: stored.statusCode, text: stored.responseBody, replayed: true };
        }
        const now = this.ctx.clock.now();
        let result: WriteResult;
        try {
          result = await work(tx, now);
        } catch (error) {
          if (!(error instanceof BurndownError) || !isStoredRefusal(error)) throw error;
          result = { status: statusOfErrorCode(error.code), body: errorBody(error) };
        }
        const text = JSON.stringify(result.body);
        await tx.putIdempotency(workspaceId, key, {
          fingerprint,
          statusCode: result.status,
          responseBody: result.replayBody === undefined ? text : JSON.stringify(result.replayBody),
          createdAt: now,
        });
        return { status: result.status, text, replayed: false };
      });
      return send(reply, outcome.status, outcome.text, outcome.replayed);
    } finally {
      this.inFlight.delete(flightKey);
    }
  }
}

function send(reply: FastifyReply, status: number, text: string, replayed: boolean): FastifyReply {
  if (replayed) reply.header('idempotent-replayed', 'true');
  return reply.code(status).type('application/json; charset=utf-8').send(text);
}

/**
 * What an Idempotency-Key fingerprint covers of the body: the parsed request in canonical form
 * (key order and whitespace do not make a different request), or the raw text when the body is
 * not parsed JSON (a binary-mode CloudEvent) or fails the JSON limits (an event batch, checked
 * per event).
 */
function fingerprintBody(request: FastifyRequest): string {
  const body = request.body;
  if (body === undefined) return '';
  const parsedJson = !(typeof body === 'object' && body !== null && NOT_JSON_BODY in body);
  if (parsedJson && jsonValueProblem(body) === null) return `json:${canonicalJson(body)}`;
  return `raw:${request.rawBody ?? ''}`;
}
