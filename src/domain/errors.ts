/**
 * The closed set of error codes Burndown answers with. The codes are part of the public contract
 * (docs/api.md): clients branch on them, so they are never renamed. The HTTP status of each code lives
 * in the transport (`http/error-status.ts`), which must map every one of them.
 */
export const ErrorCode = {
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  /** The API key was valid but its expiry has passed (401, distinct from an unknown key). */
  apiKeyExpired: 'api_key_expired',
  /** Too many requests for a key's or a customer's rate limit (429 with Retry-After). */
  rateLimited: 'rate_limited',
  notFound: 'not_found',
  alreadyExists: 'already_exists',
  invalidRequest: 'invalid_request',
  invalidAmount: 'invalid_amount',
  /** A write that would carry a running total (an account, a usage counter) past the amount range. */
  amountOutOfRange: 'amount_out_of_range',
  /** Every event of a batch was rejected: nothing was stored. */
  invalidBatch: 'invalid_batch',
  /** A CSV import had rows that failed validation: nothing was written (details list each row's errors). */
  invalidImport: 'invalid_import',
  /** A payment provider's webhook that is unsigned, wrongly signed or too old: nothing was applied. */
  invalidSignature: 'invalid_signature',
  /** A reversal of a debit, capture or event that has nothing left to reverse. */
  nothingToReverse: 'nothing_to_reverse',
  /** A reversal asked for more than is left to reverse of that burn. */
  reversalExceedsBurn: 'reversal_exceeds_burn',
  insufficientCredits: 'insufficient_credits',
  grantNotActive: 'grant_not_active',
  holdNotActive: 'hold_not_active',
  /** A hold that keeps credits under a payment dispute: only the dispute's outcome ends it. */
  holdManagedByDispute: 'hold_managed_by_dispute',
  subscriptionNotActive: 'subscription_not_active',
  alreadySubscribed: 'already_subscribed',
  idempotencyKeyReused: 'idempotency_key_reused',
  requestInProgress: 'request_in_progress',
  payloadTooLarge: 'payload_too_large',
  requestTimeout: 'request_timeout',
  headersTooLarge: 'headers_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  methodNotAllowed: 'method_not_allowed',
  /** A webhook endpoint URL that is not an absolute http(s) URL. */
  invalidWebhookUrl: 'invalid_webhook_url',
  /** A webhook endpoint URL longer than 2048 characters. */
  webhookUrlTooLong: 'webhook_url_too_long',
  /** A webhook endpoint URL whose host is or resolves to a private, loopback or link-local address. */
  webhookUrlNotAllowed: 'webhook_url_not_allowed',
  /** Licensing: every seat of the license is taken by an active machine. */
  machineLimitReached: 'machine_limit_reached',
  /** Licensing: every floating seat is leased. */
  seatLimitReached: 'seat_limit_reached',
  /** Licensing: the key opens no license. */
  licenseKeyInvalid: 'license_key_invalid',
  licenseSuspended: 'license_suspended',
  licenseRevoked: 'license_revoked',
  /** Licensing: past the license's validity window (or before it starts). */
  licenseExpired: 'license_expired',
  /** Licensing: this fingerprint is active with another public key. */
  machineKeyMismatch: 'machine_key_mismatch',
  /** Usage log: a record's seq skips one the server has not received. */
  usageLogGap: 'usage_log_gap',
  /** Usage log: a record does not continue the chain the server holds (another history). */
  usageLogFork: 'usage_log_fork',
  /** Usage log: a record's hash is not the hash of its content. */
  usageLogBadHash: 'usage_log_bad_hash',
  /** Usage log: a record is not signed by the machine's key. */
  usageLogBadSignature: 'usage_log_bad_signature',
  /** Usage log: an upload's records are not in increasing seq order. */
  usageLogOutOfOrder: 'usage_log_out_of_order',
  internalError: 'internal_error',
  serviceUnavailable: 'service_unavailable',
} as const;

/** One of the contract's error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Structured details that travel with an error to the client (`error.details`). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

/**
 * A refusal the client can act on (bad input, unknown id, not enough credits). Thrown across
 * layers and turned into the error envelope by the transport; anything else thrown is a bug (500).
 */
export class BurndownError extends Error {
  override readonly name = 'BurndownError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand for the most common refusal: a named resource that does not exist (in this workspace). */
export function notFound(kind: string, id: string): BurndownError {
  return new BurndownError(ErrorCode.notFound, `${kind} "${id}" not found`, { kind, id });
}

/** Shorthand for a field that failed validation. */
export function invalidRequest(message: string, details: ErrorDetails = {}): BurndownError {
  return new BurndownError(ErrorCode.invalidRequest, message, details);
}

/**
 * Refuses a write that would carry a running total past the amount range (README "Amount range"):
 * a 4xx the client can act on, never a value the stores cannot hold or read back.
 */
export function amountOutOfRange(what: string, details: ErrorDetails = {}): BurndownError {
  return new BurndownError(
    ErrorCode.amountOutOfRange,
    `${what} would leave the amount range (a running total stays below 10^30 in magnitude)`,
    details,
  );
}
