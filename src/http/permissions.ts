import type { Permission } from '../services/permissions.js';
/** A route as the OpenAPI document names it: `POST /v1/customers/{id}/debits`. */
export type OperationKey = string;

/**
 * The one place each operation's permission is declared: `METHOD /path` as the OpenAPI document
 * names it → the `resource:action` permission a key needs to call it. The auth hook reads only
 * this map; an authenticated route missing here is refused (403) rather than left open, and
 * test/http/permissions.test.ts fails for every operation of the document without an entry.
 *
 * The routes' own `config.scope` says only that a route needs a key (and what its scope was
 * before permissions); the same test checks that every scope preset allows exactly the
 * operations that scope allowed, so keys made with a scope keep their exact rights.
 */
export const OPERATION_PERMISSIONS: Readonly<Record<OperationKey, Permission>> = {
  'POST /v1/customers': 'customers:write',
  'GET /v1/customers': 'customers:read',
  'GET /v1/customers/{id}': 'customers:read',
  'PATCH /v1/customers/{id}': 'customers:write',
  'POST /v1/credit-types': 'catalog:write',
  'GET /v1/credit-types': 'catalog:read',
  'POST /v1/customers/{id}/grants': 'ledger:write',
  'GET /v1/customers/{id}/grants': 'ledger:read',
  'GET /v1/grants/{grant_id}': 'ledger:read',
  'POST /v1/grants/{grant_id}/void': 'ledger:write',
  'POST /v1/customers/{id}/debits': 'ledger:write',
  'POST /v1/customers/{id}/holds': 'ledger:write',
  'GET /v1/holds/{hold_id}': 'ledger:read',
  'POST /v1/holds/{hold_id}/capture': 'ledger:write',
  'POST /v1/holds/{hold_id}/release': 'ledger:write',
  'POST /v1/debits/{id}/reverse': 'ledger:write',
  'POST /v1/customers/{id}/adjustments': 'ledger:write',
  'POST /v1/events/{id}/reverse': 'ledger:write',
  'GET /v1/customers/{id}/balance': 'balances:read',
  'GET /v1/customers/{id}/balance-series': 'balances:read',
  'GET /v1/customers/{id}/ledger': 'ledger:read',
  'GET /v1/reconciliation': 'reports:read',
  'POST /v1/api-keys': 'keys:admin',
  'GET /v1/api-keys': 'keys:admin',
  'POST /v1/api-keys/{key_id}/revoke': 'keys:admin',
  'GET /v1/events': 'events:read',
  'POST /v1/events': 'events:write',
  'POST /v1/meters': 'metering:write',
  'GET /v1/meters': 'metering:read',
  'GET /v1/meters/{id}': 'metering:read',
  'GET /v1/meters/{id}/usage': 'metering:read',
  'POST /v1/rates': 'metering:write',
  'GET /v1/rates': 'metering:read',
  'GET /v1/rates/{id}': 'metering:read',
  // A quote prices a hypothetical batch against a customer's balance: any key could, as a balance read.
  'POST /v1/quote': 'balances:read',
  'POST /v1/backfills': 'metering:write',
  'POST /v1/features': 'catalog:write',
  'GET /v1/features': 'catalog:read',
  'GET /v1/features/{id}': 'catalog:read',
  'PUT /v1/features/{id}': 'catalog:write',
  'DELETE /v1/features/{id}': 'catalog:write',
  'POST /v1/plans': 'catalog:write',
  'GET /v1/plans': 'catalog:read',
  'GET /v1/plans/{id}': 'catalog:read',
  'PUT /v1/plans/{id}': 'catalog:write',
  'POST /v1/customers/{id}/subscriptions': 'subscriptions:write',
  'GET /v1/customers/{id}/subscriptions': 'subscriptions:read',
  'GET /v1/subscriptions/{subscription_id}': 'subscriptions:read',
  'POST /v1/subscriptions/{subscription_id}/cancel': 'subscriptions:write',
  'POST /v1/subscriptions/{subscription_id}/change': 'subscriptions:write',
  'POST /v1/credit-packs': 'catalog:write',
  'GET /v1/credit-packs': 'catalog:read',
  'GET /v1/credit-packs/{id}': 'catalog:read',
  'POST /v1/customers/{id}/purchases': 'subscriptions:write',
  'GET /v1/customers/{id}/purchases': 'subscriptions:read',
  'PUT /v1/customers/{id}/auto-top-up': 'subscriptions:write',
  'GET /v1/customers/{id}/auto-top-up': 'subscriptions:read',
  'DELETE /v1/customers/{id}/auto-top-up': 'subscriptions:write',
  'POST /v1/check': 'check:read',
  'GET /metrics': 'metrics:read',
  'POST /v1/workspaces': 'workspaces:admin',
  'GET /v1/workspaces': 'workspaces:admin',
  'GET /v1/workspaces/{workspace_id}': 'workspaces:admin',
  'GET /v1/audit-log': 'audit:read',
  'GET /v1/audit-log/export': 'audit:read',
  'POST /v1/balance-thresholds': 'alerts:write',
  'GET /v1/balance-thresholds': 'alerts:read',
  'GET /v1/balance-thresholds/{threshold_id}': 'alerts:read',
  'DELETE /v1/balance-thresholds/{threshold_id}': 'alerts:write',
  'GET /v1/customers/{id}/forecast': 'ledger:read',
  'GET /v1/customer-summaries': 'customers:read',
  'GET /v1/customer-summaries/totals': 'customers:read',
  'POST /v1/customers/{id}/portal-sessions': 'portal:write',
  'POST /v1/portal-sessions/{session_id}/revoke': 'portal:write',
  'POST /v1/licenses': 'licenses:write',
  'GET /v1/licenses': 'licenses:read',
  'GET /v1/licenses/{id}': 'licenses:read',
  'PATCH /v1/licenses/{id}': 'licenses:write',
  'POST /v1/licenses/{id}/suspend': 'licenses:write',
  'POST /v1/licenses/{id}/reinstate': 'licenses:write',
  'POST /v1/licenses/{id}/revoke': 'licenses:write',
  'GET /v1/licenses/{id}/machines': 'licenses:read',
  'POST /v1/licenses/{id}/machines/{machine_id}/deactivate': 'licenses:write',
  'POST /v1/licensing/keys/rotate': 'licenses:admin',
  'POST /v1/webhook-endpoints': 'webhooks:admin',
  'GET /v1/webhook-endpoints': 'webhooks:admin',
  'GET /v1/webhook-endpoints/{id}': 'webhooks:admin',
  'PATCH /v1/webhook-endpoints/{id}': 'webhooks:admin',
  'DELETE /v1/webhook-endpoints/{id}': 'webhooks:admin',
  'POST /v1/webhook-endpoints/{id}/disable': 'webhooks:admin',
  'POST /v1/webhook-endpoints/{id}/enable': 'webhooks:admin',
  'POST /v1/webhook-endpoints/{id}/rotate-secret': 'webhooks:admin',
  'GET /v1/webhook-endpoints/{id}/attempts': 'webhooks:admin',
  'GET /v1/webhook-attempts': 'webhooks:admin',
  'POST /v1/webhook-endpoints/{id}/replay': 'webhooks:admin',
  'GET /v1/webhook-events/{event_id}': 'webhooks:admin',
  'GET /v1/webhook-events/{event_id}/attempts': 'webhooks:admin',
  'GET /v1/reports/revenue': 'reports:read',
  'GET /v1/reports/journal': 'reports:read',
  'GET /v1/settings/revenue': 'reports:read',
  'GET /v1/exports/ledger-entries': 'reports:read',
  'GET /v1/exports/grants': 'reports:read',
  'GET /v1/exports/events': 'reports:read',
  'GET /v1/exports/usage': 'reports:read',
  'PUT /v1/settings/revenue': 'finance:admin',
  'PUT /v1/credit-packs/{id}/revenue-policy': 'finance:admin',
  'DELETE /v1/credit-packs/{id}/revenue-policy': 'finance:admin',
  'POST /v1/imports': 'finance:admin',
  'GET /v1/integrations/stripe/events': 'finance:admin',
};

/** Operations any caller may use without a key (the routes have no `config.scope`). */
export const PUBLIC_OPERATIONS: ReadonlySet<OperationKey> = new Set([
  'GET /healthz',
  'GET /openapi.json',
  // Stripe's webhook authenticates by Stripe's signature.
  'POST /v1/integrations/stripe/webhook',
  // The licensed application's routes authenticate by its license key (and signed usage logs); the JWKS is public.
  'POST /v1/licenses/activate',
  'POST /v1/licenses/check-in',
  'POST /v1/licenses/deactivate',
  'POST /v1/licenses/release-seat',
  'POST /v1/licenses/{id}/usage-receipts',
  'GET /v1/licensing/jwks',
  // The customer portal authenticates by its session cookie (or, to open a session, its one-time code).
  'POST /v1/portal/session',
  'POST /v1/portal/session/refresh',
  'POST /v1/portal/session/end',
  'GET /v1/portal/me',
  'GET /v1/portal/balance',
  'GET /v1/portal/forecast',
  'GET /v1/portal/grants',
  'GET /v1/portal/ledger',
  'GET /v1/portal/ledger.csv',
  'GET /v1/portal/prices',
  'POST /v1/portal/purchases',
]);

/** The operation key of a request's route: HEAD is answered by the GET route and needs its permission. */
export function operationKeyOf(method: string, routeUrl: string): OperationKey {
  // Asked on every request for one of a fixed set of routes: remembered per method and route.
  const cacheKey = `${method} ${routeUrl}`;
  let operation = operationKeys.get(cacheKey);
  if (operation === undefined) {
    const m = method.toUpperCase();
    operation =
      `${m === 'HEAD' ? 'GET' : m} ${routeUrl.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}` as OperationKey;
    if (operationKeys.size < 10_000) operationKeys.set(cacheKey, operation);
  }
  return operation;
}

/** Operation keys by `method routeUrl` (route templates, a bounded set; the bound is a safeguard). */
const operationKeys = new Map<string, OperationKey>();

/** The permission an operation needs, or undefined when none is declared (the hook then refuses). */
export function permissionOf(operation: OperationKey): Permission | undefined {
  return OPERATION_PERMISSIONS[operation];
}
