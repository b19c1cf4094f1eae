import { formatInstant } from '../time/instant.js';
import type { BalanceView } from './types.js';

/**
 * A balance in the JSON shape of API.md. Lives with the domain, not the HTTP layer, because the
 * CLI prints the very same shape (`burndown balance`) and must not depend on the transport.
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
