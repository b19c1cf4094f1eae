import type { RouteOptions } from 'fastify';
import { ErrorCode } from '../domain/errors.js';
import { statusOfErrorCode } from './error-status.js';
import { OPERATION_PERMISSIONS } from './permissions.js';
import { ErrorBody } from './schemas.js';
import { WEBHOOK_EVENTS } from './webhook-events/index.js';

/**
 * The OpenAPI 3.1 document as a contract (docs/api.md): named component schemas, per operation the
 * error statuses it can return with the closed set of `code`s of each, `Idempotency-Key` on every
 * write, examples. Everything here shapes the published document only: the schemas that validate
 * requests are the routes' own and are not changed (the transforms copy, never mutate).
 */

/** A route as the document names it: `POST /v1/customers/{id}/debits`. */
export type OperationKey = string;

/** Codes any route with a scope can answer (auth, a bad request, a server that fails or stops). */
export const COMMON_CODES: readonly ErrorCode[] = [
  'invalid_request',
  'unauthorized',
  'api_key_expired',
  'forbidden',
  'rate_limited',
  'method_not_allowed',
  'request_timeout',
  'headers_too_large',
  'internal_error',
  'service_unavailable',
];
/** Codes of every write (a body, the Idempotency-Key). */
const WRITE_CODES: readonly ErrorCode[] = [
  'payload_too_large',
  'unsupported_media_type',
  'idempotency_key_reused',
  'request_in_progress',
];

/**
 * The codes each operation can answer beyond the common ones (auth, `invalid_request`, timeouts,
 * 5xx) and, for writes, the Idempotency-Key and body codes; `invalid_amount` is added wherever an
 * amount is accepted (a schema marked `x-amount`). Every route must be listed (the test checks);
 * every code of the catalogue must appear somewhere.
 */
export const ROUTE_ERRORS: Readonly<Record<OperationKey, readonly ErrorCode[]>> = {
  'POST /v1/customers': ['already_exists'],
  'GET /v1/customers': [],
  'GET /v1/customers/{id}': ['not_found'],
  'PATCH /v1/customers/{id}': ['not_found'],
  'POST /v1/credit-types': ['already_exists'],
  'GET /v1/credit-types': [],
  'POST /v1/customers/{id}/grants': ['not_found', 'amount_out_of_range'],
  'GET /v1/customers/{id}/grants': ['not_found'],
  'GET /v1/grants/{grant_id}': ['not_found'],
  'POST /v1/grants/{grant_id}/void': ['not_found', 'grant_not_active', 'amount_out_of_range'],
  'POST /v1/customers/{id}/debits': ['not_found', 'insufficient_credits', 'amount_out_of_range'],
  'POST /v1/customers/{id}/adjustments': ['not_found', 'insufficient_credits', 'amount_out_of_range'],
  'POST /v1/customers/{id}/holds': ['not_found', 'insufficient_credits', 'amount_out_of_range'],
  'GET /v1/holds/{hold_id}': ['not_found'],
  'POST /v1/holds/{hold_id}/capture': [
    'not_found',
    'hold_not_active',
    'hold_managed_by_dispute',
    'insufficient_credits',
    'amount_out_of_range',
  ],
  'POST /v1/holds/{hold_id}/release': [
    'not_found',
    'hold_not_active',
    'hold_managed_by_dispute',
    'amount_out_of_range',
  ],
  'POST /v1/debits/{id}/reverse': [
    'not_found',
    'nothing_to_reverse',
    'reversal_exceeds_burn',
    'amount_out_of_range',
  ],
  'POST /v1/events/{id}/reverse': ['not_found', 'nothing_to_reverse', 'amount_out_of_range'],
  'GET /v1/customers/{id}/balance': ['not_found'],
  'GET /v1/customers/{id}/balance-series': ['not_found'],
  'GET /v1/customers/{id}/forecast': ['not_found'],
  'GET /v1/customer-summaries': ['not_found'],
  'GET /v1/customer-summaries/totals': ['not_found'],
  'POST /v1/customers/{id}/portal-sessions': ['not_found'],
  'POST /v1/portal-sessions/{session_id}/revoke': ['not_found'],
  'POST /v1/portal/session': ['unauthorized'],
  'POST /v1/portal/session/refresh': [],
  'POST /v1/portal/session/end': [],
  'GET /v1/portal/me': [],
  'GET /v1/portal/balance': ['not_found'],
  'GET /v1/portal/forecast': ['not_found'],
  'GET /v1/portal/grants': ['not_found'],
  'GET /v1/portal/ledger': ['not_found'],
  'GET /v1/portal/ledger.csv': ['not_found'],
  'GET /v1/portal/prices': [],
  'POST /v1/portal/purchases': ['not_found', 'amount_out_of_range'],
  'GET /v1/customers/{id}/ledger': ['not_found'],
  'GET /v1/reconciliation': [],
  'POST /v1/integrations/stripe/webhook': ['invalid_signature'],
  'GET /v1/integrations/stripe/events': [],
  'POST /v1/api-keys': [],
  'GET /v1/api-keys': [],
  'POST /v1/api-keys/{key_id}/revoke': ['not_found'],
  'GET /v1/events': [],
  'POST /v1/events': ['invalid_batch'],
  'POST /v1/meters': ['already_exists'],
  'GET /v1/meters': [],
  'GET /v1/meters/{id}': ['not_found'],
  'GET /v1/meters/{id}/usage': ['not_found'],
  'POST /v1/rates': ['not_found', 'already_exists'],
  'GET /v1/rates': [],
  'GET /v1/rates/{id}': ['not_found'],
  'POST /v1/quote': ['not_found', 'amount_out_of_range'],
  'POST /v1/backfills': ['not_found', 'amount_out_of_range'],
  'POST /v1/features': ['not_found', 'already_exists'],
  'GET /v1/features': [],
  'GET /v1/features/{id}': ['not_found'],
  'PUT /v1/features/{id}': ['not_found'],
  'DELETE /v1/features/{id}': ['not_found'],
  'POST /v1/plans': ['not_found', 'already_exists'],
  'GET /v1/plans': [],
  'GET /v1/plans/{id}': ['not_found'],
  'PUT /v1/plans/{id}': ['not_found'],
  'POST /v1/customers/{id}/subscriptions': ['not_found', 'already_subscribed', 'amount_out_of_range'],
  'GET /v1/customers/{id}/subscriptions': ['not_found'],
  'GET /v1/subscriptions/{subscription_id}': ['not_found'],
  'POST /v1/subscriptions/{subscription_id}/cancel': ['not_found', 'subscription_not_active'],
  'POST /v1/subscriptions/{subscription_id}/change': [
    'not_found',
    'subscription_not_active',
    'already_subscribed',
    'amount_out_of_range',
  ],
  'POST /v1/credit-packs': ['not_found', 'already_exists'],
  'GET /v1/credit-packs': [],
  'GET /v1/credit-packs/{id}': ['not_found'],
  'POST /v1/customers/{id}/purchases': ['not_found', 'amount_out_of_range'],
  'GET /v1/customers/{id}/purchases': ['not_found'],
  'PUT /v1/customers/{id}/auto-top-up': ['not_found'],
  'GET /v1/customers/{id}/auto-top-up': ['not_found'],
  'DELETE /v1/customers/{id}/auto-top-up': ['not_found'],
  'POST /v1/balance-thresholds': ['not_found'],
  'GET /v1/balance-thresholds': ['not_found'],
  'GET /v1/balance-thresholds/{threshold_id}': ['not_found'],
  'DELETE /v1/balance-thresholds/{threshold_id}': ['not_found'],
  'POST /v1/check': ['not_found', 'amount_out_of_range'],
  'POST /v1/webhook-endpoints': ['invalid_webhook_url', 'webhook_url_too_long', 'webhook_url_not_allowed'],
  'GET /v1/webhook-endpoints': [],
  'GET /v1/webhook-endpoints/{id}': ['not_found'],
  'PATCH /v1/webhook-endpoints/{id}': [
    'not_found',
    'invalid_webhook_url',
    'webhook_url_too_long',
    'webhook_url_not_allowed',
  ],
  'DELETE /v1/webhook-endpoints/{id}': ['not_found'],
  'POST /v1/webhook-endpoints/{id}/disable': ['not_found'],
  'POST /v1/webhook-endpoints/{id}/enable': ['not_found'],
  'POST /v1/webhook-endpoints/{id}/rotate-secret': ['not_found'],
  'GET /v1/webhook-endpoints/{id}/attempts': ['not_found'],
  'GET /v1/webhook-attempts': ['not_found'],
  'POST /v1/webhook-endpoints/{id}/replay': ['not_found'],
  'GET /v1/webhook-events/{event_id}': ['not_found'],
  'GET /v1/webhook-events/{event_id}/attempts': ['not_found'],
  'GET /v1/reports/revenue': [],
  'GET /v1/reports/journal': [],
  'GET /v1/settings/revenue': [],
  'PUT /v1/settings/revenue': [],
  'PUT /v1/credit-packs/{id}/revenue-policy': ['not_found'],
  'DELETE /v1/credit-packs/{id}/revenue-policy': ['not_found'],
  'GET /v1/exports/ledger-entries': [],
  'GET /v1/exports/grants': [],
  'GET /v1/exports/events': [],
  'GET /v1/exports/usage': [],
  'POST /v1/imports': ['invalid_import', 'unsupported_media_type', 'amount_out_of_range'],
  'POST /v1/workspaces': ['already_exists'],
  'GET /v1/workspaces': [],
  'GET /v1/workspaces/{workspace_id}': ['not_found'],
  'GET /v1/audit-log': [],
  'GET /v1/audit-log/export': [],
  'POST /v1/licenses': ['not_found', 'already_exists'],
  'GET /v1/licenses': [],
  'GET /v1/licenses/{id}': ['not_found'],
  'PATCH /v1/licenses/{id}': ['not_found'],
  'POST /v1/licenses/{id}/suspend': ['not_found'],
  'POST /v1/licenses/{id}/reinstate': ['not_found'],
  'POST /v1/licenses/{id}/revoke': ['not_found'],
  'GET /v1/licenses/{id}/machines': ['not_found'],
  'POST /v1/licenses/{id}/machines/{machine_id}/deactivate': ['not_found'],
  'POST /v1/licenses/activate': [
    'license_key_invalid',
    'license_suspended',
    'license_revoked',
    'license_expired',
    'machine_limit_reached',
    'machine_key_mismatch',
  ],
  'POST /v1/licenses/check-in': [
    'not_found',
    'license_key_invalid',
    'license_suspended',
    'license_revoked',
    'license_expired',
    'seat_limit_reached',
    'insufficient_credits',
    'amount_out_of_range',
  ],
  'POST /v1/licenses/deactivate': ['not_found', 'license_key_invalid'],
  'POST /v1/licenses/release-seat': ['not_found', 'license_key_invalid'],
  'POST /v1/licenses/{id}/usage-receipts': [
    'not_found',
    'license_key_invalid',
    'usage_log_gap',
    'usage_log_fork',
    'usage_log_bad_hash',
    'usage_log_bad_signature',
    'usage_log_out_of_order',
    'amount_out_of_range',
  ],
  'GET /v1/licensing/jwks': [],
  'POST /v1/licensing/keys/rotate': [],
  'GET /healthz': [],
  'GET /openapi.json': [],
  'GET /metrics': [],
};

/**
 * Named component schemas: the request body and success response of an operation get the name
 * given here; every other place in the document holding the same schema refers to the component.
 */
const NAMED: Readonly<Record<OperationKey, Readonly<Record<string, string>>>> = {
  'POST /v1/customers': { body: 'CreateCustomerRequest', 201: 'Customer' },
  'GET /v1/customers': { '200[]': 'Customer' },
  'PATCH /v1/customers/{id}': { body: 'UpdateCustomerRequest' },
  'POST /v1/credit-types': { body: 'CreateCreditTypeRequest', 201: 'CreditType' },
  'POST /v1/customers/{id}/grants': { body: 'CreateGrantRequest', 201: 'Grant' },
  'POST /v1/grants/{grant_id}/void': { body: 'VoidGrantRequest' },
  'POST /v1/customers/{id}/debits': { body: 'CreateDebitRequest', 201: 'Debit' },
  'POST /v1/customers/{id}/adjustments': { body: 'CreateAdjustmentRequest', 201: 'Adjustment' },
  'POST /v1/customers/{id}/holds': { body: 'CreateHoldRequest', 201: 'Hold' },
  'POST /v1/holds/{hold_id}/capture': { body: 'CaptureHoldRequest' },
  'POST /v1/debits/{id}/reverse': { body: 'ReverseDebitRequest', 201: 'DebitReversal' },
  'POST /v1/events/{id}/reverse': { body: 'ReverseEventRequest', 201: 'EventReversal' },
  'GET /v1/customers/{id}/balance': { 200: 'Balance' },
  'GET /v1/customers/{id}/balance-series': { 200: 'BalanceSeries' },
  'GET /v1/customers/{id}/forecast': { 200: 'Forecast' },
  'GET /v1/webhook-attempts': { '200[]': 'RecentWebhookAttempt' },
  'GET /v1/customer-summaries': { '200[]': 'CustomerSummary' },
  'GET /v1/customer-summaries/totals': { 200: 'SummaryTotals' },
  'POST /v1/customers/{id}/portal-sessions': {
    body: 'CreatePortalSessionRequest',
    201: 'PortalSessionCreated',
  },
  'POST /v1/portal/session': { body: 'PortalCodeExchange', 200: 'PortalSession' },
  'GET /v1/portal/prices': { 200: 'PortalPrices' },
  'POST /v1/portal/purchases': { body: 'CreatePurchaseRequest', 201: 'PortalPurchase' },
  'GET /v1/reconciliation': { 200: 'Reconciliation' },
  'POST /v1/integrations/stripe/webhook': { 200: 'StripeWebhookReceipt' },
  'GET /v1/integrations/stripe/events': { '200[]': 'StripeEvent' },
  'POST /v1/api-keys': { body: 'CreateApiKeyRequest', 201: 'CreatedApiKey' },
  'POST /v1/api-keys/{key_id}/revoke': { 200: 'ApiKey' },
  'POST /v1/events': { 202: 'IngestResult' },
  'POST /v1/meters': { body: 'CreateMeterRequest', 201: 'Meter' },
  'GET /v1/meters/{id}/usage': { 200: 'MeterUsage' },
  'POST /v1/rates': { body: 'CreateRateRequest', 201: 'Rate' },
  'POST /v1/quote': { body: 'QuoteRequest', 200: 'Quote' },
  'POST /v1/backfills': { body: 'BackfillRequest', 200: 'BackfillResult' },
  'POST /v1/features': { body: 'CreateFeatureRequest', 201: 'Feature' },
  'PUT /v1/features/{id}': { body: 'ReplaceFeatureRequest' },
  'POST /v1/plans': { body: 'CreatePlanRequest', 201: 'Plan' },
  'PUT /v1/plans/{id}': { body: 'ReplacePlanRequest' },
  'POST /v1/customers/{id}/subscriptions': { body: 'CreateSubscriptionRequest', 201: 'Subscription' },
  'POST /v1/subscriptions/{subscription_id}/cancel': { body: 'CancelSubscriptionRequest' },
  'POST /v1/subscriptions/{subscription_id}/change': { body: 'ChangeSubscriptionRequest' },
  'POST /v1/credit-packs': { body: 'CreateCreditPackRequest', 201: 'CreditPack' },
  'POST /v1/customers/{id}/purchases': { body: 'CreatePurchaseRequest', 201: 'PurchaseResult' },
  'GET /v1/customers/{id}/purchases': { '200[]': 'Purchase' },
  'PUT /v1/customers/{id}/auto-top-up': { body: 'AutoTopUpRequest', 200: 'AutoTopUp' },
  'POST /v1/balance-thresholds': { body: 'CreateBalanceThresholdRequest', 201: 'BalanceThreshold' },
  'POST /v1/check': { body: 'CheckRequest', 200: 'CheckResult' },
  'GET /v1/events': { '200[]': 'Event' },
  'GET /v1/customers/{id}/ledger': { '200[]': 'LedgerEntry' },
  'GET /v1/customers/{id}/subscriptions': { '200[]': 'Subscription' },
  'GET /v1/api-keys': { '200[]': 'ApiKey' },
  'POST /v1/workspaces': { body: 'CreateWorkspaceRequest', 201: 'CreatedWorkspace' },
  'GET /v1/workspaces': { '200[]': 'Workspace' },
  'GET /v1/audit-log': { '200[]': 'AuditRecord' },
  'POST /v1/licenses': { body: 'CreateLicenseRequest', 201: 'CreatedLicense' },
  'GET /v1/licenses/{id}': { 200: 'License' },
  'PATCH /v1/licenses/{id}': { body: 'UpdateLicenseRequest' },
  'GET /v1/licenses/{id}/machines': { 200: 'LicenseMachines' },
  'POST /v1/licenses/activate': { body: 'ActivateMachineRequest', 201: 'LicenseCheckIn' },
  'POST /v1/licenses/check-in': { body: 'CheckInRequest' },
  'POST /v1/licenses/{id}/usage-receipts': { body: 'UsageReceiptsRequest', 200: 'UsageReceiptsResult' },
  'GET /v1/licensing/jwks': { 200: 'Jwks' },
};

/** The operator endpoints (their routes hide from the document by default; here they are described). */
const OPERATION_ROUTES: Readonly<Record<OperationKey, Record<string, unknown>>> = {
  'GET /healthz': {
    tags: ['operations'],
    summary: 'Liveness: answers while the process serves (no key)',
    response: {
      200: {
        type: 'object',
        required: ['status'],
        properties: { status: { type: 'string', const: 'ok' } },
        examples: [{ status: 'ok' }],
      },
    },
  },
  'GET /openapi.json': {
    tags: ['operations'],
    summary: 'This OpenAPI 3.1 document (no key)',
    response: { 200: { type: 'object', additionalProperties: {} } },
  },
  'GET /metrics': {
    tags: ['operations'],
    summary: 'Prometheus metrics (text exposition format); needs a key unless BURNDOWN_METRICS_PUBLIC=1',
    response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' } },
  },
};

/** Request examples per operation (the body a client would send). */
const REQUEST_EXAMPLES: Readonly<Record<OperationKey, unknown>> = {
  'PUT /v1/settings/revenue': { breakage_policy: 'proportional', expected_breakage_rate: '0.1' },
  'PUT /v1/credit-packs/{id}/revenue-policy': { breakage_policy: 'at_expiry' },
  'POST /v1/customers': { id: 'acme', name: 'Acme Inc.', metadata: { plan: 'pro' } },
  'PATCH /v1/customers/{id}': { name: 'Acme Corporation' },
  'POST /v1/credit-types': { id: 'gpu-seconds', name: 'GPU seconds' },
  'POST /v1/customers/{id}/grants': {
    amount: '10000',
    category: 'paid',
    expires_at: '2030-01-31T00:00:00Z',
    cost_basis: { amount: '100.00', currency: 'USD' },
  },
  'POST /v1/grants/{grant_id}/void': { reason: 'refunded' },
  'POST /v1/customers/{id}/debits': { amount: '650.5', description: 'job 42' },
  'POST /v1/customers/{id}/adjustments': { amount: '-25', reason: 'double-billed job 42' },
  'POST /v1/customers/{id}/holds': { amount: '40', ttl_seconds: 300 },
  'POST /v1/holds/{hold_id}/capture': { amount: '31.5' },
  'POST /v1/holds/{hold_id}/release': {},
  'POST /v1/debits/{id}/reverse': { amount: '10', reason: 'failed job' },
  'POST /v1/events/{id}/reverse': { reason: 'sent twice under two ids' },
  'POST /v1/api-keys': {
    permissions: ['events:write', 'check:read'],
    name: 'ingest worker',
    expires_at: '2031-01-01T00:00:00Z',
    rate_limit: '1000/1s',
  },
  'POST /v1/workspaces': { id: 'test', name: 'Test environment' },
  'POST /v1/api-keys/{key_id}/revoke': {},
  'POST /v1/events': {
    id: 'evt-123',
    type: 'llm.tokens',
    customer_id: 'acme',
    time: '2030-01-15T10:00:00Z',
    data: { model: 'gpt-x', kind: 'output', tokens: 1200 },
  },
  'POST /v1/meters': {
    id: 'tokens',
    event_type: 'llm.tokens',
    aggregation: 'sum',
    value_property: '$.tokens',
    group_by: { model: '$.model', kind: '$.kind' },
  },
  'POST /v1/rates': {
    id: 'gpt-x-output',
    meter_id: 'tokens',
    filter: { model: 'gpt-x', kind: 'output' },
    credits_per_unit: '0.002',
  },
  'POST /v1/quote': {
    customer_id: 'acme',
    events: [{ type: 'llm.tokens', data: { model: 'gpt-x', kind: 'output', tokens: 5000 } }],
  },
  'POST /v1/backfills': { rate_id: 'gpt-x-output', from: '2030-01-01T00:00:00Z' },
  'POST /v1/features': { id: 'chat', type: 'metered', rate_ids: ['gpt-x-output'] },
  'PUT /v1/features/{id}': { type: 'metered', rate_ids: ['gpt-x-output'] },
  'POST /v1/plans': {
    id: 'pro',
    name: 'Pro',
    entitlements: [{ feature_id: 'chat' }],
    allowances: [{ credit_type: 'credits', amount: '5000', period: 'P1M' }],
    price: { amount: '49.00', currency: 'USD' },
    billing_period: 'P1M',
  },
  'PUT /v1/plans/{id}': {
    name: 'Pro',
    entitlements: [{ feature_id: 'chat' }],
    allowances: [{ credit_type: 'credits', amount: '6000', period: 'P1M' }],
  },
  'POST /v1/customers/{id}/subscriptions': { plan_id: 'pro' },
  'POST /v1/subscriptions/{subscription_id}/cancel': { at_period_end: true },
  'POST /v1/subscriptions/{subscription_id}/change': { plan_id: 'team', at: 'period_end' },
  'POST /v1/credit-packs': { id: 'pack-10k', credits: '10000', price: { amount: '100.00', currency: 'USD' } },
  'POST /v1/customers/{id}/purchases': { pack_id: 'pack-10k', quantity: 1 },
  'PUT /v1/customers/{id}/auto-top-up': {
    threshold: '500',
    pack_id: 'pack-10k',
    quantity: 1,
    max_per_period: 3,
    period: 'P1M',
  },
  'POST /v1/check': { customer_id: 'acme', feature_id: 'chat', quantity: '1', hold: { ttl_seconds: 120 } },
  'POST /v1/webhook-endpoints': {
    url: 'https://example.com/burndown/webhooks',
    event_types: ['grant.created', 'purchase.created'],
    description: 'Billing service',
  },
  'PATCH /v1/webhook-endpoints/{id}': { event_types: null },
  'POST /v1/webhook-endpoints/{id}/disable': {},
  'POST /v1/webhook-endpoints/{id}/enable': {},
  'POST /v1/webhook-endpoints/{id}/rotate-secret': {},
  'POST /v1/webhook-endpoints/{id}/replay': { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' },
  'POST /v1/balance-thresholds': {
    customer_id: 'acme',
    credit_type: 'credits',
    kind: 'percent',
    value: '20',
  },
};

/** Tags in the order the document lists them, with what each covers. */
export const TAGS: readonly { name: string; description: string }[] = [
  { name: 'customers', description: 'The accounts credits belong to.' },
  { name: 'credit types', description: 'Separate balances per unit (`credits` always exists).' },
  {
    name: 'grants',
    description: 'Credits in: priority, effective and expiry instants, category, cost basis.',
  },
  { name: 'debits', description: 'Credits out in burn-down order, all or nothing (or with overage).' },
  { name: 'holds', description: 'Reserve credits, then capture what was used or release.' },
  { name: 'balances', description: 'Balances now and at any past instant; the ledger behind them.' },
  { name: 'corrections', description: 'Reversals of debits, captures and events.' },
  {
    name: 'metering',
    description: 'Usage events (native and CloudEvents), meters, rates, quotes, backfills.',
  },
  { name: 'plans', description: 'Features and plans with entitlements and allowances.' },
  { name: 'subscriptions', description: 'Customers on plans: periods, allowances, changes, cancellation.' },
  { name: 'credit packs', description: 'Credit packs, purchases of them and auto top-up.' },
  {
    name: 'alerts',
    description:
      'Balance thresholds: balance.low / balance.recovered facts for webhooks, decided in the write.',
  },
  {
    name: 'check',
    description: 'May this customer use this feature now (optionally reserving its credits)?',
  },
  {
    name: 'licensing',
    description:
      'License keys, machine activation, floating seats, signed license files, offline credit leases and usage logs.',
  },
  { name: 'api keys', description: 'Keys and their scopes (admin).' },
  {
    name: 'webhooks',
    description:
      'Signed outbound webhooks (Standard Webhooks 1.0): endpoints, delivery log, replay (admin). The events are in `webhooks`.',
  },
  {
    name: 'finance',
    description: 'Revenue recognition of paid credits, the journal, streaming exports and CSV imports.',
  },
  {
    name: 'integrations',
    description: 'Payments in: Stripe Checkout buys credit packs; refunds and disputes take credits back.',
  },
  { name: 'api keys', description: 'Keys, their permissions, expiry and rate limits (keys:admin).' },
  {
    name: 'workspaces',
    description: 'Workspaces of the installation (workspaces:admin, the bootstrap key).',
  },
  { name: 'audit log', description: 'Administrative changes, hash-chained per workspace (audit:read).' },
  {
    name: 'portal',
    description:
      'The customer portal: sessions created with a key, then one customer’s balance, forecast, ledger, prices and top-ups by a session cookie.',
  },
  { name: 'operations', description: 'Health, this document, metrics and reconciliation.' },
];

export const API_DESCRIPTION = [
  'Burndown is an engine for credit-based and usage-based pricing: an exact, double-entry credit ledger',
  '(grants burned down in a defined order, holds, overage, balances at any instant), metering and rating',
  'of usage events, plans with allowances, credit packs and entitlement checks.',
  '',
  '**Amounts** are decimal strings (`"1500"`, `"0.000125"`), exact to 12 decimals; a JSON number where an',
  'amount is expected is `400 invalid_amount`. **Times** are RFC 3339. **Lists** answer',
  '`{"data": [...], "next_cursor": string | null}` and take `limit` (1–1000) and `cursor`.',
  '',
  '**Errors** share one envelope `{"error": {"code", "message", "details"}}`; each operation lists, per',
  'status, the closed set of codes it can answer. A failed request changes nothing.',
  '',
  '**Idempotency**: every write accepts `Idempotency-Key`; the same key with the same request answers',
  'the stored answer again (`Idempotent-Replayed: true`), with another request `422',
  'idempotency_key_reused`, while the first still runs `409 request_in_progress`.',
  '',
  'Authenticate with `Authorization: Bearer <key>`. A key belongs to one workspace and holds `resource:action`',
  'permissions (`ledger:write`, `check:read`, …; the scopes `admin`, `write`, `read`, `check` are presets);',
  'each operation needs one. An expired key answers `401 api_key_expired`. Rate limits answer `429',
  'rate_limited` with `Retry-After` and `RateLimit-Limit`/`RateLimit-Remaining`/`RateLimit-Reset`.',
  'The full reference is docs/api.md in the repository.',
].join('\n');

/** Operations whose body may be left out (filled in by the transform). */
const optionalBodies = new Set<OperationKey>();

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** `/v1/customers/:id` → `/v1/customers/{id}`. */
export function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Does a JSON schema accept an amount anywhere (a field marked `x-amount`)? */
function acceptsAmount(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  if ((schema as Record<string, unknown>)['x-amount'] === true) return true;
  return Object.values(schema).some(acceptsAmount);
}

/** The error codes of an operation per status, common ones included. */
export function errorCodesOf(
  method: string,
  path: string,
  schema: { body?: unknown; querystring?: unknown } = {},
): Map<number, ErrorCode[]> {
  const codes = new Set<ErrorCode>(COMMON_CODES);
  if (WRITE_METHODS.has(method)) for (const c of WRITE_CODES) codes.add(c);
  if (acceptsAmount(schema.body) || acceptsAmount(schema.querystring)) codes.add('invalid_amount');
  for (const c of ROUTE_ERRORS[`${method} ${path}`] ?? []) codes.add(c);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of Object.values(ErrorCode)) {
    if (!codes.has(code)) continue;
    const status = statusOfErrorCode(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus.entries()].sort(([a], [b]) => a - b));
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Missing or unknown API key',
  402: 'Not enough credits',
  403: 'The key lacks the permission this call needs',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request not received in time',
  409: 'Conflict with the current state',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Unprocessable request',
  429: 'Rate limit exceeded (see Retry-After)',
  431: 'Request headers too large',
  500: 'Internal error',
  503: 'Service unavailable',
};

/** The error envelope with the codes of one status as a closed enumeration. */
function errorSchemaFor(codes: readonly ErrorCode[], status: number): Record<string, unknown> {
  return {
    description: STATUS_TEXT[status] ?? 'Error',
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'details'],
        properties: {
          code: { type: 'string', enum: [...codes] },
          message: { type: 'string' },
          details: { type: 'object', additionalProperties: {} },
        },
      },
    },
    examples: [{ error: { code: codes[0], message: '…', details: {} } }],
  };
}

const IdempotencyKeyHeader = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x20-\\x7E]+$',
      description:
        'Makes the write safe to retry: the same key with the same request answers the first answer again ' +
        '(`Idempotent-Replayed: true`); with another request 422 `idempotency_key_reused`; while the first ' +
        'still runs 409 `request_in_progress`. 1–255 printable ASCII characters, scoped to the workspace.',
    },
  },
};

/** The route schema as the document shows it (a copy: validation keeps the route's own schema). */
export function documentedSchema(route: {
  schema?: Record<string, unknown>;
  url: string;
  route: RouteOptions;
}): Record<string, unknown> {
  const methods = typeof route.route.method === 'string' ? [route.route.method] : route.route.method;
  const method = methods[0]!.toUpperCase();
  const path = openapiPath(route.url);
  const key = `${method} ${path}`;
  const schema = { ...(route.schema ?? {}), ...(OPERATION_ROUTES[key] ?? {}) };
  const out: Record<string, unknown> = { ...schema };
  delete out['hide'];
  out['operationId'] = operationIdOf(method, path);
  const config = route.route.config as { scope?: string; portal?: boolean } | undefined;
  // Portal routes are authenticated too, by the portal session cookie (their schema says so).
  const scoped = config?.scope !== undefined || config?.portal === true;
  if (!scoped && key !== 'GET /metrics') out['security'] = [];
  const permission = OPERATION_PERMISSIONS[key];
  if (permission !== undefined) {
    out['x-permission'] = permission;
    out['description'] = [schema['description'], `Needs the permission \`${permission}\`.`]
      .filter(Boolean)
      .join('\n\n');
  }
  const response: Record<string, unknown> = {};
  const original = (schema['response'] ?? {}) as Record<string, unknown>;
  for (const [status, s] of Object.entries(original)) {
    if (Number(status) < 400) response[status] = s;
  }
  const codes = errorCodesOf(method, path, schema as { body?: unknown; querystring?: unknown });
  if (!scoped && key !== 'GET /metrics') {
    // Public routes: no API key is read, so no key's rate limit and no 401/403 but their own
    // (licensing's machine routes authenticate with a license key, the portal's with its code or
    // cookie; they name their 401/403 codes in ROUTE_ERRORS).
    codes.delete(429);
    const own = new Set(ROUTE_ERRORS[key] ?? []);
    for (const status of [401, 403]) {
      const kept = (codes.get(status) ?? []).filter((c) => own.has(c));
      if (kept.length === 0) codes.delete(status);
      else codes.set(status, kept);
    }
  }
  for (const [status, list] of codes) {
    const envelope = errorSchemaFor(list, status);
    const own = original[String(status)];
    // A route's own non-envelope error body (the counts of a refused event batch) stays, joined.
    response[status] =
      own !== undefined && own !== ErrorBody
        ? { description: envelope['description'], allOf: [{ ...envelope, description: undefined }, own] }
        : envelope;
  }
  out['response'] = response;
  if (WRITE_METHODS.has(method)) {
    const headers = (schema['headers'] ?? { type: 'object', properties: {} }) as Record<string, unknown>;
    out['headers'] = {
      ...headers,
      properties: {
        ...(headers['properties'] as object),
        ...IdempotencyKeyHeader.properties,
      },
    };
  }
  // A route that reads a missing body as `{}` (its preValidation) takes the body as optional.
  if (schema['body'] !== undefined && route.route.preValidation !== undefined) optionalBodies.add(key);
  if (REQUEST_EXAMPLES[key] !== undefined && schema['body'] !== undefined) {
    out['body'] = { ...(schema['body'] as object), examples: [REQUEST_EXAMPLES[key]] };
  }
  return out;
}

/** `POST /v1/customers/{id}/debits` → `postCustomersIdDebits`. */
export function operationIdOf(method: string, path: string): string {
  const words = path
    .replace(/^\/v1\//, '/')
    .split(/[/{}_-]+/)
    .filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

// ---- the whole document ----

type Json = Record<string, unknown>;

/** JSON with keys sorted and annotations that do not change the shape left out, to compare schemas. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Json = {};
    for (const k of Object.keys(v).sort()) {
      if (k === '$id' || k === 'examples' || k === 'example' || k === 'title') continue;
      sorted[k] = (v as Json)[k];
    }
    return sorted;
  });
}

/** TypeBox writes a record as `patternProperties: {"^(.*)$": …}`; the document says `additionalProperties`. */
function recordsAsAdditionalProperties(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(recordsAsAdditionalProperties);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'patternProperties' && Object.keys(v as Json).length === 1 && '^(.*)$' in (v as Json)) {
      out['additionalProperties'] = recordsAsAdditionalProperties((v as Json)['^(.*)$']);
    } else out[k] = recordsAsAdditionalProperties(v);
  }
  return out;
}

/** Named schemas collected from the routes (by the transform) before the document is finished. */
export class NamedSchemas {
  private readonly byCanonical = new Map<string, string>();
  private readonly schemas = new Map<string, unknown>();

  add(name: string, schema: unknown): void {
    if (this.schemas.has(name)) return;
    const plain = recordsAsAdditionalProperties(JSON.parse(JSON.stringify(schema))) as Json;
    delete plain['$id'];
    delete plain['examples'];
    this.schemas.set(name, plain);
    const c = canonical(plain);
    if (!this.byCanonical.has(c)) this.byCanonical.set(c, name);
  }

  /** Takes the names the operations give their request bodies and success responses (as converted). */
  private collect(paths: Json): void {
    for (const [key, names] of Object.entries(NAMED)) {
      const [method, path] = key.split(' ') as [string, string];
      const op = ((paths[path] as Json | undefined)?.[method.toLowerCase()] ?? undefined) as Json | undefined;
      if (!op) continue;
      for (const [part, name] of Object.entries(names)) {
        const list = part.endsWith('[]');
        const status = list ? part.slice(0, -2) : part;
        const holder =
          status === 'body'
            ? (op['requestBody'] as Json | undefined)
            : ((op['responses'] as Json | undefined)?.[status] as Json | undefined);
        let node = ((holder?.['content'] as Json | undefined)?.['application/json'] as Json | undefined)?.[
          'schema'
        ] as Json | undefined;
        if (list)
          node = ((node?.['properties'] as Json | undefined)?.['data'] as Json | undefined)?.[
            'items'
          ] as Json;
        if (node !== undefined) this.add(name, node);
      }
    }
  }

  /** Replaces every schema equal to a named one by a `$ref` and adds the components. */
  apply(doc: Json): Json {
    this.collect(doc['paths'] as Json);
    const components = (doc['components'] ?? {}) as Json;
    const target = { ...((components['schemas'] ?? {}) as Json) };
    // The hoisted error body (`def-0`) is the named `Error`.
    for (const [name, s] of Object.entries(target)) if ((s as Json)['title'] === 'Error') delete target[name];
    const replace = (node: unknown, root: boolean): unknown => {
      if (Array.isArray(node)) return node.map((n) => replace(n, false));
      if (node === null || typeof node !== 'object') return node;
      if (!root) {
        const name = this.byCanonical.get(canonical(node));
        if (name !== undefined) return { $ref: `#/components/schemas/${name}` };
      }
      const out: Json = {};
      for (const [k, v] of Object.entries(node)) {
        // Examples are data, not schemas.
        out[k] = k === 'examples' || k === 'example' ? v : replace(v, false);
      }
      return out;
    };
    for (const [name, schema] of this.schemas) target[name] = replace(schema, true);
    const paths = replace(doc['paths'], true) as Json;
    const sorted: Json = {};
    for (const name of Object.keys(target).sort()) sorted[name] = target[name];
    const result: Json = { ...doc, paths, components: { ...components, schemas: sorted } };
    return JSON.parse(
      JSON.stringify(result).replace(/#\/components\/schemas\/def-[0-9]+/g, '#/components/schemas/Error'),
    ) as Json;
  }
}

/** Schemas that have a name but no operation of their own: shared pieces. */
export function sharedNamedSchemas(named: NamedSchemas, schemas: Record<string, unknown>): void {
  for (const [name, schema] of Object.entries(schemas)) named.add(name, schema);
}

const NativeEvent = {
  type: 'object',
  required: ['id', 'type', 'customer_id'],
  properties: {
    id: { type: 'string', description: 'Unique within the workspace; re-sending it is a duplicate' },
    type: { type: 'string', minLength: 1, maxLength: 256 },
    customer_id: { type: 'string' },
    time: { type: 'string', format: 'date-time', description: 'Default: when the server received the batch' },
    data: { type: 'object', additionalProperties: {} },
  },
};
const CloudEvent = {
  type: 'object',
  description: 'A CloudEvents 1.0 event; `subject` is the customer id; identified by `source` and `id`.',
  required: ['specversion', 'id', 'source', 'type', 'subject'],
  properties: {
    specversion: { type: 'string', const: '1.0' },
    id: { type: 'string' },
    source: { type: 'string' },
    type: { type: 'string' },
    subject: { type: 'string', description: 'The customer id' },
    time: { type: 'string', format: 'date-time' },
    datacontenttype: { type: 'string' },
    data: { type: 'object', additionalProperties: {} },
  },
};

/** The usage-event body in its four forms (the route parses them itself, so its schema has none). */
function describeEventIngest(doc: Json): void {
  const op = ((doc['paths'] as Json)['/v1/events'] as Json | undefined)?.['post'] as Json | undefined;
  if (!op) return;
  const schemas = ((doc['components'] as Json)['schemas'] ?? {}) as Json;
  schemas['EventInput'] = NativeEvent;
  schemas['CloudEvent'] = CloudEvent;
  op['requestBody'] = {
    required: true,
    description:
      'Native events: one event or an array of up to 10,000 (`application/json`). CloudEvents 1.0: structured ' +
      '(`application/cloudevents+json`), batched (`application/cloudevents-batch+json`), or binary mode: the ' +
      '`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, `ce-subject` (customer id) and `ce-time` headers carry the ' +
      'attributes and the body, in any JSON media type, is `data`.',
    content: {
      'application/json': {
        schema: {
          oneOf: [
            { $ref: '#/components/schemas/EventInput' },
            { type: 'array', maxItems: 10000, items: { $ref: '#/components/schemas/EventInput' } },
          ],
        },
        examples: {
          one: { value: REQUEST_EXAMPLES['POST /v1/events'] },
          batch: { value: [REQUEST_EXAMPLES['POST /v1/events']] },
        },
      },
      'application/cloudevents+json': {
        schema: { $ref: '#/components/schemas/CloudEvent' },
        example: {
          specversion: '1.0',
          id: 'evt-124',
          source: 'app://chat',
          type: 'llm.tokens',
          subject: 'acme',
          data: { model: 'gpt-x', kind: 'output', tokens: 800 },
        },
      },
      'application/cloudevents-batch+json': {
        schema: { type: 'array', maxItems: 10000, items: { $ref: '#/components/schemas/CloudEvent' } },
      },
    },
  };
  const params = (op['parameters'] ?? []) as Json[];
  for (const [name, description] of [
    ['ce-specversion', 'Binary mode: `1.0`'],
    ['ce-id', 'Binary mode: the event id'],
    ['ce-source', 'Binary mode: the event source'],
    ['ce-type', 'Binary mode: the event type'],
    ['ce-subject', 'Binary mode: the customer id'],
    ['ce-time', 'Binary mode: RFC 3339 time (optional)'],
  ] as const) {
    params.push({ in: 'header', name, required: false, description, schema: { type: 'string' } });
  }
  op['parameters'] = params;
}

/** Every operation gets at least one example: its request body's, and one per error status. */
function ensureResponseExamples(doc: Json): void {
  for (const methods of Object.values(doc['paths'] as Json)) {
    for (const op of Object.values(methods as Json)) {
      const responses = ((op as Json)['responses'] ?? {}) as Json;
      for (const response of Object.values(responses)) {
        const content = ((response as Json)['content'] ?? {}) as Json;
        for (const media of Object.values(content)) {
          const m = media as Json;
          const schema = m['schema'] as Json | undefined;
          if (schema && Array.isArray(schema['examples']) && m['example'] === undefined) {
            m['example'] = schema['examples'][0];
            delete schema['examples'];
          }
        }
      }
      const body = (op as Json)['requestBody'] as Json | undefined;
      for (const media of Object.values((body?.['content'] ?? {}) as Json)) {
        const m = media as Json;
        const schema = m['schema'] as Json | undefined;
        if (schema && Array.isArray(schema['examples']) && m['example'] === undefined) {
          m['example'] = schema['examples'][0];
        }
      }
    }
  }
}

const SUCCESS_TEXT: Readonly<Record<string, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: every event was accepted, a duplicate, or rejected alone (see `rejected`)',
  204: 'No content',
};

/** Success answers get a description instead of swagger's "Default Response". */
function describeSuccess(doc: Json): void {
  for (const methods of Object.values(doc['paths'] as Json)) {
    for (const op of Object.values(methods as Json)) {
      for (const [status, response] of Object.entries(((op as Json)['responses'] ?? {}) as Json)) {
        const r = response as Json;
        if (r['description'] === 'Default Response') r['description'] = SUCCESS_TEXT[status] ?? 'Success';
      }
    }
  }
}

/** The finishing pass over the document @fastify/swagger built. */
export function finishDocument(doc: Json, named: NamedSchemas): Json {
  const finished = named.apply(doc);
  const schemas = (finished['components'] as Json)['schemas'] as Json;
  schemas['Error'] = JSON.parse(JSON.stringify(ErrorBody));
  delete (schemas['Error'] as Json)['$id'];
  describeEventIngest(finished);
  describeSuccess(finished);
  for (const key of optionalBodies) {
    const [method, path] = key.split(' ') as [string, string];
    const op = ((finished['paths'] as Json)[path] as Json | undefined)?.[method.toLowerCase()] as
      | Json
      | undefined;
    const body = op?.['requestBody'] as Json | undefined;
    if (body) body['required'] = false;
  }
  const metrics = ((finished['paths'] as Json)['/metrics'] as Json | undefined)?.['get'] as Json | undefined;
  const ok = (metrics?.['responses'] as Json | undefined)?.['200'] as Json | undefined;
  if (ok?.['content']) {
    ok['content'] = { 'text/plain': (ok['content'] as Json)['application/json'] };
  }
  ensureResponseExamples(finished);
  finished['webhooks'] = webhooksSection();
  return finished;
}

/**
 * The OpenAPI 3.1 `webhooks` section: one entry per event type Burndown sends, each a POST of the
 * envelope `{type, timestamp, data}` with the event's data schema and the Standard Webhooks headers.
 */
function webhooksSection(): Json {
  const header = (description: string) => ({ required: true, schema: { type: 'string' }, description });
  const section: Json = {};
  for (const event of WEBHOOK_EVENTS) {
    const data = JSON.parse(JSON.stringify(event.data)) as Json;
    section[event.type] = {
      post: {
        summary: event.summary,
        operationId: `webhook_${event.type.replace(/[^A-Za-z0-9]/g, '_')}`,
        tags: ['webhooks'],
        parameters: [
          {
            in: 'header',
            name: 'webhook-id',
            ...header('The event id (evt_…): the same on every attempt and replay'),
          },
          {
            in: 'header',
            name: 'webhook-timestamp',
            ...header('Seconds since the epoch when this attempt was sent'),
          },
          {
            in: 'header',
            name: 'webhook-signature',
            ...header(
              'Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per signing secret',
            ),
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['type', 'timestamp', 'data'],
                properties: {
                  type: { type: 'string', const: event.type },
                  timestamp: { type: 'string', format: 'date-time' },
                  data,
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description:
              'Any 2xx acknowledges the event; 410 disables the endpoint; anything else is retried',
          },
        },
      },
    };
  }
  return section;
}
