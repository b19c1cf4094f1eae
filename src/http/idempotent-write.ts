import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BurndownError, ErrorCode, invalidRequest } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { RequestContext } from '../services/audit.js';
import type { ServiceContext } from '../services/context.js';
import { jsonOf } from '../services/json-text.js';
import {
  type BusinessRefusal,
  businessRefusalError,
  type IdempotencyIdentity,
  type Presented,
  runWrite,
  storeAnswer,
  storedAnswer,
  type WriteCommand,
  type WriteOutcome,
} from '../services/unit-of-work.js';
import { statusOfErrorCode } from './error-status.js';
import { NOT_JSON_BODY } from './event-parsing.js';
import { canonicalJson, jsonValueProblem } from './json-limits.js';

/** What a write route answers: a status and a JSON body (success or a business refusal). */
export type WriteResult = Presented;

/** Idempotency keys: 1–255 printable ASCII characters (spaces inside allowed). */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;
/** How long stored responses are kept; the contract promises at least 24 h. */
export const IDEMPOTENCY_RETENTION_MS = 72 * 3600 * 1000;

/** The request's actor (its key's id) and id, handed explicitly to the unit of work for the audit log. */
export function requestContextOf(request: { auth?: { keyId: string }; id: string }): RequestContext {
  return { actorKeyId: request.auth?.keyId ?? null, requestId: request.id };
}

/** The error envelope body of the contract. */
export function errorBody(error: BurndownError) {
  return { error: { code: error.code, message: error.message, details: error.details } };
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
      return send(reply, result.status, jsonOf(result.body), false);
    }
    const { identity, flightKey } = this.identify(request, header);
    this.inFlight.add(flightKey);
    try {
      const stored = await storedAnswer(this.ctx, identity);
      if (stored) return send(reply, stored.status, stored.text, true);
      const result = await work();
      const text = jsonOf(result.body);
      // A refused batch (400 invalid_batch) stored nothing, so a retry must run again.
      if (result.status >= 400) return send(reply, result.status, text, false);
      try {
        await storeAnswer(this.ctx, identity, { status: result.status, text });
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
  ): { identity: IdempotencyIdentity; flightKey: string } {
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
    return { identity: { workspaceId: request.auth.workspaceId, key: header, fingerprint }, flightKey };
  }

  /**
   * Runs a service's write command through the unit of work ({@link runWrite}): the route has
   * parsed the request and built the command; `present` formats the command's value (pure, no
   * I/O); a business refusal is answered with its 402/409 envelope.
   */
  async run<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    command: WriteCommand<T>,
    present: (value: T, now: Instant) => WriteResult,
  ): Promise<FastifyReply> {
    const header = request.headers['idempotency-key'];
    const presentOutcome = (outcome: WriteOutcome<T>, now: Instant): WriteResult =>
      outcome.ok ? present(outcome.value, now) : refusalResult(outcome.refusal);
    // Who asks, for the audit log: passed explicitly into the unit of work.
    const context = requestContextOf(request);
    if (header === undefined) {
      const answer = await runWrite(this.ctx, command, presentOutcome, null, context);
      return send(reply, answer.status, answer.text, false);
    }
    const { identity, flightKey } = this.identify(request, header);
    this.inFlight.add(flightKey);
    try {
      const answer = await runWrite(this.ctx, command, presentOutcome, identity, context);
      return send(reply, answer.status, answer.text, answer.replayed);
    } finally {
      this.inFlight.delete(flightKey);
    }
  }
}

/** A refusal value as the answer the contract prescribes (402 or 409 with the envelope). */
export function refusalResult(refusal: BusinessRefusal): WriteResult {
  const error = businessRefusalError(refusal);
  return { status: statusOfErrorCode(error.code), body: errorBody(error) };
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
