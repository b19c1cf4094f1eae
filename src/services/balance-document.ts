import type { BalanceView } from '../domain/ledger/types.js';
import { formatInstant } from '../domain/time/instant.js';

/**
 * A balance as the documented JSON document (snake_case, decimal strings, RFC 3339 instants).
 * It lives here, not in `http/`, because two adapters print it: the HTTP API answers with it and
 * `burndown balance` on the command line writes it, and the CLI must not depend on the transport.
 */
export function presentBalance(b: BalanceView) {
  return {
    customer_id: b.customerId,
    credit_type: b.creditType,
    at: formatInstant(b.at),
    available: b.available.toString(),
    held: b.held.toString(),
    overage: b.overage.toString(),
    grants: b.grants.map((g) => ({
      grant_id: g.grantId,
      remaining: g.remaining.toString(),
      expires_at: g.expiresAt === null ? null : formatInstant(g.expiresAt),
      priority: g.priority,
      category: g.category,
    })),
    next_expiry: b.nextExpiry
      ? { at: formatInstant(b.nextExpiry.at), amount: b.nextExpiry.amount.toString() }
      : null,
  };
}
