import type { ErrorCode } from '../domain/errors.js';

/** The HTTP status of every error code; exhaustive, so a new code cannot ship without one. */
export function statusOfErrorCode(code: ErrorCode): number {
  switch (code) {
    case 'invalid_request':
    case 'invalid_amount':
    case 'invalid_batch':
    case 'invalid_webhook_url':
    case 'webhook_url_too_long':
    case 'webhook_url_not_allowed':
    case 'invalid_import':
    case 'invalid_signature':
      return 400;
    case 'unauthorized':
    case 'api_key_expired':
    case 'license_key_invalid':
      return 401;
    case 'insufficient_credits':
      return 402;
    case 'forbidden':
    case 'license_suspended':
    case 'license_revoked':
    case 'license_expired':
      return 403;
    case 'not_found':
      return 404;
    case 'method_not_allowed':
      return 405;
    case 'already_exists':
    case 'grant_not_active':
    case 'hold_not_active':
    case 'hold_managed_by_dispute':
    case 'subscription_not_active':
    case 'already_subscribed':
    case 'request_in_progress':
    case 'nothing_to_reverse':
    case 'reversal_exceeds_burn':
    case 'machine_limit_reached':
    case 'seat_limit_reached':
    case 'machine_key_mismatch':
    case 'usage_log_gap':
    case 'usage_log_fork':
    case 'usage_log_out_of_order':
      return 409;
    case 'request_timeout':
      return 408;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'headers_too_large':
      return 431;
    case 'rate_limited':
      return 429;
    case 'idempotency_key_reused':
    case 'amount_out_of_range':
    case 'usage_log_bad_hash':
    case 'usage_log_bad_signature':
      return 422;
    case 'internal_error':
      return 500;
    case 'service_unavailable':
      return 503;
  }
}
