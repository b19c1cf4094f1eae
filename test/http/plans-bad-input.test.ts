import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/services/api-keys.js';
import { BAD_AMOUNTS, dumpDatabase, expectErrorEnvelope } from '../fixtures/bad-input.js';
import { createTestApp, TEST_API_KEY, type TestApp } from '../fixtures/harness.js';

/**
 * Bad input on the endpoints of docs/api.md "Features, plans, subscriptions, packs" and "Check", and on
 * the feature fields of debits, holds and balances: each refusal must carry the documented status
 * and code in the contract's error envelope, and must change nothing ("A failed request changes
 * nothing"). Same pattern as bad-input.test.ts: one app serves every case; each case snapshots the
 * observable state (and the raw database) right before and right after its request.
 */

const READ_KEY = 'test-read-key-0123456789';
const CHECK_KEY = 'test-check-key-0123456789';
const REVOKED_KEY = 'test-revoked-key-0123456789';
const OTHER_WORKSPACE_KEY = 'test-other-workspace-admin-key-0123456789';
const OTHER = { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` };
const MIB = 1024 * 1024;
/** The largest integer part an amount may have (20 digits). */
const N20 = '9'.repeat(20);

/** Ids made during setup, for URLs of the cases. */
interface Fixture {
  /** acme's active subscription to pro v1 (started at T0). */
  sub: string;
  /** beta's subscription to basic, canceled at once. */
  endedSub: string;
  /** beta's subscription to basic, canceled at the end of its period (still active). */
  cancelingSub: string;
  /** beta's subscription to basic starting 2026-06-01 (not started yet). */
  pendingSub: string;
}

type Url = string | ((f: Fixture) => string);
type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One bad request and the refusal the contract prescribes for it. */
interface BadCase {
  readonly name: string;
  readonly method: Method;
  readonly url: Url;
  /** Raw body text; objects are JSON-encoded. Omitted: no body. */
  readonly payload?: unknown;
  /** Content-Type; default `application/json` when there is a payload, `null` to send none. */
  readonly contentType?: string | null;
  /** Authorization header; default the admin key, `null` to send none. */
  readonly authorization?: string | null;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /** The code, or the codes the contract leaves open. */
  readonly code: string | readonly string[];
}

/** A write endpoint with a body it would accept, to hang generic bad-input variants on. */
interface WriteEndpoint {
  readonly name: string;
  readonly method: 'POST' | 'PUT';
  readonly url: Url;
  readonly validBody: Record<string, unknown>;
  /** Acts on a resource of the default workspace (another workspace must see 404). */
  readonly acmeScoped: boolean;
  /** The scope the route needs: `check` keys may call /v1/check, not the other writes. */
  readonly scope: 'write' | 'check';
}

interface GetEndpoint {
  readonly name: string;
  readonly url: Url;
  readonly acmeScoped: boolean;
}

const PLAN_BODY = {
  entitlements: [{ feature_id: 'gpt-x' }],
  allowances: [{ amount: '100', period: 'P1M' }],
  price: { amount: '19.00', currency: 'USD' },
};

const WRITE_ENDPOINTS = {
  createFeature: {
    name: 'POST /v1/features',
    method: 'POST',
    url: '/v1/features',
    validBody: { id: 'new-feature', type: 'metered', credits_per_use: '1' },
    acmeScoped: false,
    scope: 'write',
  },
  replaceFeature: {
    name: 'PUT /v1/features/{id}',
    method: 'PUT',
    url: '/v1/features/gpt-x',
    validBody: { type: 'metered', credits_per_use: '6' },
    acmeScoped: true,
    scope: 'write',
  },
  createPlan: {
    name: 'POST /v1/plans',
    method: 'POST',
    url: '/v1/plans',
    validBody: { id: 'new-plan', ...PLAN_BODY },
    acmeScoped: false,
    scope: 'write',
  },
  replacePlan: {
    name: 'PUT /v1/plans/{id}',
    method: 'PUT',
    url: '/v1/plans/pro',
    validBody: PLAN_BODY,
    acmeScoped: true,
    scope: 'write',
  },
  subscribe: {
    name: 'POST subscriptions',
    method: 'POST',
    url: '/v1/customers/acme/subscriptions',
    validBody: { plan_id: 'basic' },
    acmeScoped: true,
    scope: 'write',
  },
  change: {
    name: 'POST change',
    method: 'POST',
    url: (f) => `/v1/subscriptions/${f.sub}/change`,
    // The subscribe case before it puts acme on basic too, so the change says a second one is meant.
    validBody: { plan_id: 'basic', allow_multiple: true },
    acmeScoped: true,
    scope: 'write',
  },
  cancel: {
    name: 'POST cancel',
    method: 'POST',
    url: (f) => `/v1/subscriptions/${f.sub}/cancel`,
    validBody: { at_period_end: true },
    acmeScoped: true,
    scope: 'write',
  },
  createPack: {
    name: 'POST /v1/credit-packs',
    method: 'POST',
    url: '/v1/credit-packs',
    validBody: { id: 'new-pack', credits: '100', price: { amount: '1.00', currency: 'USD' } },
    acmeScoped: false,
    scope: 'write',
  },
  purchase: {
    name: 'POST purchases',
    method: 'POST',
    url: '/v1/customers/acme/purchases',
    validBody: { pack_id: '10k', quantity: 1 },
    acmeScoped: true,
    scope: 'write',
  },
  autoTopUp: {
    name: 'PUT auto-top-up',
    method: 'PUT',
    url: '/v1/customers/acme/auto-top-up',
    validBody: { threshold: '50', pack_id: '10k', quantity: 2 },
    acmeScoped: true,
    scope: 'write',
  },
  check: {
    name: 'POST /v1/check',
    method: 'POST',
    url: '/v1/check',
    validBody: { customer_id: 'acme', feature_id: 'gpt-x', quantity: '2', hold: { ttl_seconds: 60 } },
    acmeScoped: true,
    scope: 'check',
  },
} as const satisfies Record<string, WriteEndpoint>;

const GET_ENDPOINTS: readonly GetEndpoint[] = [
  { name: 'GET feature', url: '/v1/features/gpt-x', acmeScoped: true },
  { name: 'GET features', url: '/v1/features', acmeScoped: false },
  { name: 'GET plan', url: '/v1/plans/pro', acmeScoped: true },
  { name: 'GET plan version', url: '/v1/plans/pro?version=1', acmeScoped: true },
  { name: 'GET plans', url: '/v1/plans', acmeScoped: false },
  { name: 'GET subscription', url: (f) => `/v1/subscriptions/${f.sub}`, acmeScoped: true },
  { name: 'GET subscriptions of a customer', url: '/v1/customers/acme/subscriptions', acmeScoped: true },
  { name: 'GET credit pack', url: '/v1/credit-packs/10k', acmeScoped: true },
  { name: 'GET credit packs', url: '/v1/credit-packs', acmeScoped: false },
  { name: 'GET purchases', url: '/v1/customers/acme/purchases', acmeScoped: true },
  { name: 'GET auto-top-up', url: '/v1/customers/acme/auto-top-up', acmeScoped: true },
];

const LIST_ENDPOINTS: readonly GetEndpoint[] = [
  { name: 'GET features', url: '/v1/features', acmeScoped: false },
  { name: 'GET plans', url: '/v1/plans', acmeScoped: false },
  { name: 'GET credit packs', url: '/v1/credit-packs', acmeScoped: false },
  { name: 'GET purchases', url: '/v1/customers/acme/purchases', acmeScoped: true },
];

const request =
  (method: Method) =>
  (url: Url, payload: unknown, extra: Partial<BadCase> = {}) => ({ method, url, payload, ...extra });
const post = request('POST');
const put = request('PUT');
const get = (url: Url, extra: Partial<BadCase> = {}) => ({ method: 'GET' as const, url, ...extra });
const del = (url: Url, extra: Partial<BadCase> = {}) => ({ method: 'DELETE' as const, url, ...extra });

/** Variants that are fine where null means "none" (nullable amount fields). */
const NOT_FOR_NULLABLE = ['null'];
/** Variants that are fine where zero is allowed (thresholds, limits). */
const NOT_FOR_NON_NEGATIVE = ['zero', 'zero with decimals', 'negative zero'];

/**
 * The amount variants on one field: `body(value)` is the request body with the bad value in place
 * (the field may be nested); `except` names variants the field accepts.
 */
function amountCases(
  endpoint: string,
  field: string,
  method: 'POST' | 'PUT',
  url: Url,
  body: (value: unknown) => Record<string, unknown>,
  except: readonly string[] = [],
): BadCase[] {
  return BAD_AMOUNTS.filter(([what]) => !except.includes(what)).map(([what, value]) => ({
    name: `${endpoint}: ${field} ${what} → 400 invalid_amount`,
    ...request(method)(url, body(value)),
    status: 400,
    code: 'invalid_amount',
  }));
}

/** Variants that apply to every write endpoint (as genericPostCases of bad-input.test.ts). */
function genericWriteCases(e: WriteEndpoint): BadCase[] {
  const send = request(e.method);
  const valid = JSON.stringify(e.validBody);
  const cases: BadCase[] = [
    {
      name: 'malformed JSON (truncated)',
      ...send(e.url, valid.slice(0, -1)),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'malformed JSON (trailing garbage)',
      ...send(e.url, `${valid}x`),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'malformed JSON (single quotes)',
      ...send(e.url, "{'plan_id': 'pro'}"),
      status: 400,
      code: 'invalid_request',
    },
    { name: 'not JSON at all', ...send(e.url, 'plan_id=pro'), status: 400, code: 'invalid_request' },
    { name: 'body is an array', ...send(e.url, '[]'), status: 400, code: 'invalid_request' },
    { name: 'body is a string', ...send(e.url, '"hello"'), status: 400, code: 'invalid_request' },
    { name: 'body is a number', ...send(e.url, '42'), status: 400, code: 'invalid_request' },
    { name: 'body is null', ...send(e.url, 'null'), status: 400, code: 'invalid_request' },
    {
      name: 'unknown field',
      ...send(e.url, { ...e.validBody, bogus_field: 1 }),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'camelCase field',
      ...send(e.url, { ...e.validBody, creditType: 'credits' }),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: '__proto__ key',
      ...send(e.url, `{"__proto__": {"polluted": true}, ${valid.slice(1)}`),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'Content-Type text/plain',
      ...send(e.url, valid, { contentType: 'text/plain' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Type form-urlencoded',
      ...send(e.url, 'plan_id=pro', { contentType: 'application/x-www-form-urlencoded' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Type application/jsonx',
      ...send(e.url, valid, { contentType: 'application/jsonx' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'no Content-Type with a body',
      ...send(e.url, valid, { contentType: null }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'body over 1 MiB',
      ...send(e.url, `{"name": "${'x'.repeat(MIB)}"}`),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'no Authorization',
      ...send(e.url, e.validBody, { authorization: null }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'unknown bearer key',
      ...send(e.url, e.validBody, { authorization: 'Bearer not-a-key' }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'raw key without scheme',
      ...send(e.url, e.validBody, { authorization: TEST_API_KEY }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'revoked key',
      ...send(e.url, e.validBody, { authorization: `Bearer ${REVOKED_KEY}` }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'read-scoped key',
      ...send(e.url, e.validBody, { authorization: `Bearer ${READ_KEY}` }),
      status: 403,
      code: 'forbidden',
    },
  ];
  if (e.scope === 'write') {
    cases.push({
      name: 'check-scoped key',
      ...send(e.url, e.validBody, { authorization: `Bearer ${CHECK_KEY}` }),
      status: 403,
      code: 'forbidden',
    });
  }
  if (e.method === 'POST') {
    cases.push({
      name: 'Idempotency-Key longer than 255',
      ...send(e.url, e.validBody, { headers: { 'idempotency-key': 'k'.repeat(256) } }),
      status: 400,
      code: 'invalid_request',
    });
  }
  if (e.acmeScoped) {
    cases.push({
      name: "another workspace's key on the default workspace's resource",
      ...send(e.url, e.validBody, OTHER),
      status: 404,
      code: 'not_found',
    });
  }
  return cases.map((c) => ({ ...c, name: `${e.name}: ${c.name}` }));
}

function genericGetCases(e: GetEndpoint): BadCase[] {
  const cases: BadCase[] = [
    { name: 'no Authorization', ...get(e.url, { authorization: null }), status: 401, code: 'unauthorized' },
    {
      name: 'unknown bearer key',
      ...get(e.url, { authorization: 'Bearer not-a-key' }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'revoked key',
      ...get(e.url, { authorization: `Bearer ${REVOKED_KEY}` }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'check-scoped key',
      ...get(e.url, { authorization: `Bearer ${CHECK_KEY}` }),
      status: 403,
      code: 'forbidden',
    },
  ];
  if (e.acmeScoped) {
    cases.push({
      name: "another workspace's key on the default workspace's resource",
      ...get(e.url, OTHER),
      status: 404,
      code: 'not_found',
    });
  }
  return cases.map((c) => ({ ...c, name: `${e.name}: ${c.name}` }));
}

function withQuery(url: Url, query: string): Url {
  return typeof url === 'string' ? `${url}?${query}` : (f: Fixture) => `${url(f)}?${query}`;
}

function listQueryCases(e: GetEndpoint): BadCase[] {
  const bad: [string, string][] = [
    ['limit=0', 'limit=0'],
    ['limit=1001', 'limit=1001'],
    ['limit=-1', 'limit=-1'],
    ['limit=1.5', 'limit=1.5'],
    ['limit=abc', 'limit=abc'],
    ['limit given twice', 'limit=1&limit=2'],
    ['unknown query parameter', 'bogus=1'],
    ['cursor longer than 512', `cursor=${'A'.repeat(600)}`],
    ['cursor of invalid characters', 'cursor=!!!!'],
    ['cursor the server never issued', 'cursor=not-a-real-cursor'],
    ['cursor of base64 junk', `cursor=${Buffer.from('\u0000\u0001garbage').toString('base64url')}`],
  ];
  return bad.map(([what, q]) => ({
    name: `${e.name}: ${what}`,
    ...get(withQuery(e.url, q)),
    status: 400,
    code: 'invalid_request',
  }));
}

const W = WRITE_ENDPOINTS;
const sub = (f: Fixture) => f.sub;
const cancelUrl = (pick: (f: Fixture) => string) => (f: Fixture) => `/v1/subscriptions/${pick(f)}/cancel`;
const changeUrl = (pick: (f: Fixture) => string) => (f: Fixture) => `/v1/subscriptions/${pick(f)}/change`;
const plan = (extra: Record<string, unknown>) => post('/v1/plans', { id: 'new-plan', ...extra });
const allowance = (extra: Record<string, unknown>) =>
  plan({ allowances: [{ amount: '10', period: 'P1M', ...extra }] });
const entitlement = (extra: Record<string, unknown>) => plan({ entitlements: [extra] });
const pack = (extra: Record<string, unknown>) =>
  post('/v1/credit-packs', {
    id: 'new-pack',
    credits: '100',
    price: { amount: '1.00', currency: 'USD' },
    ...extra,
  });
const topUp = (extra: Record<string, unknown>, customer = 'acme') =>
  put(`/v1/customers/${customer}/auto-top-up`, { threshold: '50', pack_id: '10k', ...extra });
const check = (extra: Record<string, unknown>) =>
  post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x', ...extra });

const CASES: readonly BadCase[] = [
  // ---- POST /v1/features ----
  ...genericWriteCases(W.createFeature),
  {
    name: 'POST /v1/features: missing id',
    ...post('/v1/features', { type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: id with a space',
    ...post('/v1/features', { id: 'gpt x', type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: id of 129 chars',
    ...post('/v1/features', { id: 'f'.repeat(129), type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: id is a number',
    ...post('/v1/features', { id: 7, type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: missing type',
    ...post('/v1/features', { id: 'new-feature' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: unknown type',
    ...post('/v1/features', { id: 'new-feature', type: 'usage' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: type in the wrong case',
    ...post('/v1/features', { id: 'new-feature', type: 'Metered' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: name is a number',
    ...post('/v1/features', { id: 'new-feature', type: 'boolean', name: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: name of 257 chars',
    ...post('/v1/features', { id: 'new-feature', type: 'boolean', name: 'n'.repeat(257) }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: unknown credit type',
    ...post('/v1/features', {
      id: 'new-feature',
      type: 'metered',
      credit_type: 'nope',
      credits_per_use: '1',
    }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/features: malformed credit type',
    ...post('/v1/features', { id: 'new-feature', type: 'metered', credit_type: 'a b' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: rate_ids is a string',
    ...post('/v1/features', { id: 'new-feature', type: 'metered', rate_ids: 'per-call' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: malformed rate id',
    ...post('/v1/features', { id: 'new-feature', type: 'metered', rate_ids: ['per call'] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: unknown rate',
    ...post('/v1/features', { id: 'new-feature', type: 'metered', rate_ids: ['per-call', 'nope'] }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/features: 51 rate ids',
    ...post('/v1/features', {
      id: 'new-feature',
      type: 'metered',
      rate_ids: Array.from({ length: 51 }, (_, i) => `r${i}`),
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: a rate priced in another credit type',
    ...post('/v1/features', { id: 'new-feature', type: 'metered', rate_ids: ['gpu-call'] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: both rate_ids and credits_per_use',
    ...post('/v1/features', {
      id: 'new-feature',
      type: 'metered',
      rate_ids: ['per-call'],
      credits_per_use: '1',
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: credits_per_use on a boolean feature',
    ...post('/v1/features', { id: 'new-feature', type: 'boolean', credits_per_use: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: credits_per_use on a config feature',
    ...post('/v1/features', { id: 'new-feature', type: 'config', credits_per_use: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: rate_ids on a boolean feature',
    ...post('/v1/features', { id: 'new-feature', type: 'boolean', rate_ids: ['per-call'] }),
    status: 400,
    code: 'invalid_request',
  },
  ...amountCases(
    'POST /v1/features',
    'credits_per_use',
    'POST',
    '/v1/features',
    (v) => ({ id: 'new-feature', type: 'metered', credits_per_use: v }),
    NOT_FOR_NULLABLE,
  ),
  {
    name: 'POST /v1/features: metadata is an array',
    ...post('/v1/features', { id: 'new-feature', type: 'boolean', metadata: [] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/features: existing id',
    ...post('/v1/features', { id: 'gpt-x', type: 'metered' }),
    status: 409,
    code: 'already_exists',
  },
  {
    name: 'POST /v1/features: existing id of an archived feature',
    ...post('/v1/features', { id: 'old', type: 'boolean' }),
    status: 409,
    code: 'already_exists',
  },
  {
    name: "POST /v1/features: another workspace's rate",
    ...post('/v1/features', { id: 'new-feature', type: 'metered', rate_ids: ['per-call'] }, OTHER),
    status: 404,
    code: 'not_found',
  },
  {
    name: "POST /v1/features: another workspace's credit type",
    ...post('/v1/features', { id: 'new-feature', type: 'metered', credit_type: 'gpu' }, OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- PUT /v1/features/{id} ----
  ...genericWriteCases(W.replaceFeature),
  {
    name: 'PUT /v1/features/{id}: unknown feature',
    ...put('/v1/features/nope', { type: 'boolean' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PUT /v1/features/{id}: malformed id in path',
    ...put('/v1/features/a%20b', { type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: id in the body',
    ...put('/v1/features/gpt-x', { id: 'gpt-x', type: 'metered' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: missing type',
    ...put('/v1/features/gpt-x', { credits_per_use: '5' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: no body',
    ...put('/v1/features/gpt-x', undefined),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: type change metered → boolean',
    ...put('/v1/features/gpt-x', { type: 'boolean' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: type change boolean → config',
    ...put('/v1/features/sso', { type: 'config' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: type change config → metered',
    ...put('/v1/features/seats', { type: 'metered', credits_per_use: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: credits_per_use on a boolean feature',
    ...put('/v1/features/sso', { type: 'boolean', credits_per_use: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: both rate_ids and credits_per_use',
    ...put('/v1/features/gpt-x', { type: 'metered', rate_ids: ['per-call'], credits_per_use: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/features/{id}: unknown rate',
    ...put('/v1/features/search', { type: 'metered', rate_ids: ['nope'] }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PUT /v1/features/{id}: unknown credit type',
    ...put('/v1/features/gpt-x', { type: 'metered', credit_type: 'nope', credits_per_use: '5' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PUT /v1/features/{id}: credit type that its rate does not price in',
    ...put('/v1/features/search', { type: 'metered', credit_type: 'gpu', rate_ids: ['per-call'] }),
    status: 400,
    code: 'invalid_request',
  },
  ...amountCases(
    'PUT /v1/features/{id}',
    'credits_per_use',
    'PUT',
    '/v1/features/gpt-x',
    (v) => ({ type: 'metered', credits_per_use: v }),
    NOT_FOR_NULLABLE,
  ),

  // ---- DELETE /v1/features/{id} ----
  { name: 'DELETE feature: unknown feature', ...del('/v1/features/nope'), status: 404, code: 'not_found' },
  {
    name: 'DELETE feature: malformed id',
    ...del('/v1/features/a%20b'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'DELETE feature: id of 129 chars',
    ...del(`/v1/features/${'f'.repeat(129)}`),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'DELETE feature: no Authorization',
    ...del('/v1/features/sso', { authorization: null }),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'DELETE feature: revoked key',
    ...del('/v1/features/sso', { authorization: `Bearer ${REVOKED_KEY}` }),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'DELETE feature: read-scoped key',
    ...del('/v1/features/sso', { authorization: `Bearer ${READ_KEY}` }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'DELETE feature: check-scoped key',
    ...del('/v1/features/sso', { authorization: `Bearer ${CHECK_KEY}` }),
    status: 403,
    code: 'forbidden',
  },
  {
    name: "DELETE feature: another workspace's key on the default workspace's feature",
    ...del('/v1/features/sso', OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- GET /v1/features/{id} ----
  { name: 'GET feature: unknown id', ...get('/v1/features/nope'), status: 404, code: 'not_found' },
  { name: 'GET feature: malformed id', ...get('/v1/features/a%20b'), status: 400, code: 'invalid_request' },

  // ---- POST /v1/plans ----
  ...genericWriteCases(W.createPlan),
  {
    name: 'POST /v1/plans: missing id',
    ...post('/v1/plans', PLAN_BODY),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: id with a slash',
    ...post('/v1/plans', { ...PLAN_BODY, id: 'pro/2' }),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'POST /v1/plans: name is a number', ...plan({ name: 3 }), status: 400, code: 'invalid_request' },
  {
    name: 'POST /v1/plans: existing id',
    ...post('/v1/plans', { id: 'pro' }),
    status: 409,
    code: 'already_exists',
  },
  {
    name: 'POST /v1/plans: unknown time zone',
    ...plan({ time_zone: 'Mars/Olympus_Mons' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: UTC offset as time zone',
    ...plan({ time_zone: '+05:00' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: empty time zone',
    ...plan({ time_zone: '' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: time zone is a number',
    ...plan({ time_zone: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: time zone of 65 chars',
    ...plan({ time_zone: `Europe/${'x'.repeat(58)}` }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: billing_period P2M',
    ...plan({ billing_period: 'P2M' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: billing_period in words',
    ...plan({ billing_period: 'monthly' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: entitlements is an object',
    ...plan({ entitlements: { feature_id: 'gpt-x' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: entitlement without feature_id',
    ...entitlement({ usage_limit: null }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: entitlement with a malformed feature id',
    ...entitlement({ feature_id: 'gpt x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: entitlement to an unknown feature',
    ...entitlement({ feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/plans: entitlement to an archived feature',
    ...entitlement({ feature_id: 'old' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: the same feature twice',
    ...plan({ entitlements: [{ feature_id: 'gpt-x' }, { feature_id: 'sso' }, { feature_id: 'gpt-x' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: unknown field in an entitlement',
    ...entitlement({ feature_id: 'gpt-x', limit: '5' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: usage_limit on a boolean feature',
    ...entitlement({ feature_id: 'sso', usage_limit: { amount: '5', period: 'P1M' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: usage_limit on a config feature',
    ...entitlement({ feature_id: 'seats', usage_limit: { amount: '5', period: 'P1M' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: overage on a boolean feature',
    ...entitlement({ feature_id: 'sso', overage: { max: '5' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: config on a metered feature',
    ...entitlement({ feature_id: 'gpt-x', config: { seats: 5 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: config on a boolean feature',
    ...entitlement({ feature_id: 'sso', config: {} }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: config is an array',
    ...entitlement({ feature_id: 'seats', config: [10] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: usage_limit amount as a JSON number',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: 5, period: 'P1M' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: negative usage_limit amount',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: '-5', period: 'P1M' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: usage_limit amount with 13 decimals',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: '1.0000000000001', period: 'P1M' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: usage_limit amount of 21 integer digits',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: `1${'0'.repeat(20)}`, period: 'P1M' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: usage_limit with an invalid period',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: '5', period: 'P1H' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: usage_limit without a period',
    ...entitlement({ feature_id: 'exports', usage_limit: { amount: '5' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: negative overage max',
    ...entitlement({ feature_id: 'gpt-x', overage: { max: '-1' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: overage max as a JSON number',
    ...entitlement({ feature_id: 'gpt-x', overage: { max: 50 } }),
    status: 400,
    code: 'invalid_amount',
  },
  ...amountCases('POST /v1/plans', 'allowances[0].amount', 'POST', '/v1/plans', (v) => ({
    id: 'new-plan',
    allowances: [{ amount: v, period: 'P1M' }],
  })),
  {
    name: 'POST /v1/plans: allowance without an amount',
    ...plan({ allowances: [{ period: 'P1M' }] }),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'POST /v1/plans: allowance without a period',
    ...plan({ allowances: [{ amount: '10' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance period P1H',
    ...allowance({ period: 'P1H' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance period in lower case',
    ...allowance({ period: 'p1m' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance of an unknown credit type',
    ...allowance({ credit_type: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/plans: negative allowance priority',
    ...allowance({ priority: -1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: fractional allowance priority',
    ...allowance({ priority: 1.5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance priority as a string',
    ...allowance({ priority: '5' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover with both max and max_percent',
    ...allowance({ rollover: { max: '5', max_percent: '50' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover with neither max nor max_percent',
    ...allowance({ rollover: {} }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover with only expires_after_periods',
    ...allowance({ rollover: { expires_after_periods: 2 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover max_percent over 100',
    ...allowance({ rollover: { max_percent: '100.5' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover max_percent 101',
    ...allowance({ rollover: { max_percent: '101' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: negative rollover max_percent',
    ...allowance({ rollover: { max_percent: '-10' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover max_percent as a JSON number',
    ...allowance({ rollover: { max_percent: 50 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: rollover max_percent with 13 decimals',
    ...allowance({ rollover: { max_percent: '50.0000000000001' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: negative rollover max',
    ...allowance({ rollover: { max: '-5' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: rollover max as a JSON number',
    ...allowance({ rollover: { max: 5 } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: rollover expires_after_periods 0',
    ...allowance({ rollover: { max: '5', expires_after_periods: 0 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: unknown field in a rollover',
    ...allowance({ rollover: { max: '5', min: '1' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance applies_to a malformed feature id',
    ...allowance({ applies_to: ['gpt x'] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: allowance applies_to is a string',
    ...allowance({ applies_to: 'gpt-x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: 21 allowances',
    ...plan({ allowances: Array.from({ length: 21 }, () => ({ amount: '1', period: 'P1M' })) }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: price amount as a JSON number',
    ...plan({ price: { amount: 29, currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: negative price',
    ...plan({ price: { amount: '-29.00', currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: price with 13 decimals',
    ...plan({ price: { amount: '29.0000000000001', currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/plans: lowercase price currency',
    ...plan({ price: { amount: '29.00', currency: 'usd' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: price without a currency',
    ...plan({ price: { amount: '29.00' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/plans: metadata with 51 keys',
    ...plan({ metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: "POST /v1/plans: another workspace's feature",
    ...post('/v1/plans', { id: 'new-plan', entitlements: [{ feature_id: 'gpt-x' }] }, OTHER),
    status: 404,
    code: 'not_found',
  },
  {
    name: "POST /v1/plans: an allowance in another workspace's credit type",
    ...post(
      '/v1/plans',
      { id: 'new-plan', allowances: [{ amount: '1', period: 'P1M', credit_type: 'gpu' }] },
      OTHER,
    ),
    status: 404,
    code: 'not_found',
  },

  // ---- PUT /v1/plans/{id} ----
  ...genericWriteCases(W.replacePlan),
  {
    name: 'PUT /v1/plans/{id}: unknown plan',
    ...put('/v1/plans/nope', PLAN_BODY),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PUT /v1/plans/{id}: malformed id in path',
    ...put('/v1/plans/a%20b', PLAN_BODY),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: id in the body',
    ...put('/v1/plans/pro', { ...PLAN_BODY, id: 'pro' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: version in the body',
    ...put('/v1/plans/pro', { ...PLAN_BODY, version: 3 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: entitlement to an unknown feature',
    ...put('/v1/plans/pro', { entitlements: [{ feature_id: 'nope' }] }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PUT /v1/plans/{id}: the same feature twice',
    ...put('/v1/plans/pro', { entitlements: [{ feature_id: 'sso' }, { feature_id: 'sso' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: unknown time zone',
    ...put('/v1/plans/pro', { ...PLAN_BODY, time_zone: 'Europe/Atlantis' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: rollover with both max and max_percent',
    ...put('/v1/plans/pro', {
      allowances: [{ amount: '1', period: 'P1M', rollover: { max: '1', max_percent: '1' } }],
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT /v1/plans/{id}: allowance amount as a JSON number',
    ...put('/v1/plans/pro', { allowances: [{ amount: 500, period: 'P1M' }] }),
    status: 400,
    code: 'invalid_amount',
  },

  // ---- GET /v1/plans/{id} ----
  { name: 'GET plan: unknown plan', ...get('/v1/plans/nope'), status: 404, code: 'not_found' },
  { name: 'GET plan: malformed id', ...get('/v1/plans/a%20b'), status: 400, code: 'invalid_request' },
  {
    name: 'GET plan: version that does not exist',
    ...get('/v1/plans/pro?version=3'),
    status: 404,
    code: 'not_found',
  },
  { name: 'GET plan: version 0', ...get('/v1/plans/pro?version=0'), status: 404, code: 'not_found' },
  {
    name: 'GET plan: version of an unknown plan',
    ...get('/v1/plans/nope?version=1'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET plan: version=abc',
    ...get('/v1/plans/pro?version=abc'),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'GET plan: version=-1', ...get('/v1/plans/pro?version=-1'), status: 400, code: 'invalid_request' },
  {
    name: 'GET plan: version=1.5',
    ...get('/v1/plans/pro?version=1.5'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET plan: version= (empty)',
    ...get('/v1/plans/pro?version='),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET plan: version of 10 digits',
    ...get('/v1/plans/pro?version=1234567890'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET plan: version given twice',
    ...get('/v1/plans/pro?version=1&version=2'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET plan: unknown query parameter',
    ...get('/v1/plans/pro?v=1'),
    status: 400,
    code: 'invalid_request',
  },

  // ---- POST /v1/customers/{id}/subscriptions ----
  ...genericWriteCases(W.subscribe),
  {
    name: 'POST subscriptions: unknown customer',
    ...post('/v1/customers/nobody/subscriptions', { plan_id: 'basic' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST subscriptions: malformed customer id in path',
    ...post('/v1/customers/a%20b/subscriptions', { plan_id: 'basic' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: missing plan_id',
    ...post('/v1/customers/acme/subscriptions', {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: malformed plan_id',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro plan' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: unknown plan',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST subscriptions: unknown plan version',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro', plan_version: 9 }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST subscriptions: plan_version 0',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro', plan_version: 0 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: plan_version as a string',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro', plan_version: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: fractional plan_version',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro', plan_version: 1.5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: start_at not a time',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'basic', start_at: 'next monday' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: start_at as epoch millis',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'basic', start_at: 1767225600000 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: start_at impossible date',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'basic', start_at: '2026-02-30T00:00:00Z' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: start_at without a zone',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'basic', start_at: '2026-02-01T00:00:00' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST subscriptions: a second live subscription to the same plan',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }),
    status: 409,
    code: 'already_subscribed',
  },
  {
    name: 'POST subscriptions: a second one to a plan the customer is pending or canceling on',
    ...post('/v1/customers/beta/subscriptions', { plan_id: 'basic', start_at: '2026-09-01T00:00:00Z' }),
    status: 409,
    code: 'already_subscribed',
  },
  {
    name: 'POST subscriptions: allow_multiple as a string',
    ...post('/v1/customers/acme/subscriptions', { plan_id: 'pro', allow_multiple: 'yes' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: "POST subscriptions: another workspace's plan for its own customer",
    ...post('/v1/customers/other-co/subscriptions', { plan_id: 'basic' }, OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- POST /v1/subscriptions/{id}/cancel ----
  ...genericWriteCases(W.cancel),
  {
    name: 'POST cancel: unknown subscription',
    ...post('/v1/subscriptions/sub_doesnotexist/cancel', {}),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST cancel: malformed subscription id',
    ...post('/v1/subscriptions/sub-bad!/cancel', {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST cancel: subscription id of 65 chars',
    ...post(`/v1/subscriptions/sub_${'x'.repeat(61)}/cancel`, {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST cancel: a customer id instead of a subscription id',
    ...post('/v1/subscriptions/acme/cancel', {}),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST cancel: at_period_end as a string',
    ...post(cancelUrl(sub), { at_period_end: 'true' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST cancel: at_period_end as a number',
    ...post(cancelUrl(sub), { at_period_end: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST cancel: an ended subscription',
    ...post(
      cancelUrl((f) => f.endedSub),
      {},
    ),
    status: 409,
    code: 'subscription_not_active',
  },
  {
    name: 'POST cancel: an ended subscription, at period end',
    ...post(
      cancelUrl((f) => f.endedSub),
      { at_period_end: true },
    ),
    status: 409,
    code: 'subscription_not_active',
  },

  // ---- POST /v1/subscriptions/{id}/change ----
  ...genericWriteCases(W.change),
  {
    name: 'POST change: unknown subscription',
    ...post('/v1/subscriptions/sub_doesnotexist/change', { plan_id: 'basic' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST change: malformed subscription id',
    ...post('/v1/subscriptions/sub.bad/change', { plan_id: 'basic' }),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'POST change: missing plan_id', ...post(changeUrl(sub), {}), status: 400, code: 'invalid_request' },
  {
    name: 'POST change: malformed plan_id',
    ...post(changeUrl(sub), { plan_id: 'a b' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: unknown plan',
    ...post(changeUrl(sub), { plan_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST change: unknown plan version',
    ...post(changeUrl(sub), { plan_id: 'basic', plan_version: 2 }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST change: plan_version 0',
    ...post(changeUrl(sub), { plan_id: 'basic', plan_version: 0 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: plan_version as a string',
    ...post(changeUrl(sub), { plan_id: 'basic', plan_version: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: unknown at',
    ...post(changeUrl(sub), { plan_id: 'basic', at: 'tomorrow' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: at as a time',
    ...post(changeUrl(sub), { plan_id: 'basic', at: '2026-02-01T00:00:00Z' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: to the plan version it is on',
    ...post(changeUrl(sub), { plan_id: 'pro', plan_version: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: to the plan version it is on, at period end',
    ...post(changeUrl(sub), { plan_id: 'pro', plan_version: 1, at: 'period_end' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST change: an ended subscription',
    ...post(
      changeUrl((f) => f.endedSub),
      { plan_id: 'pro' },
    ),
    status: 409,
    code: 'subscription_not_active',
  },
  {
    name: 'POST change: a subscription canceled at period end',
    ...post(
      changeUrl((f) => f.cancelingSub),
      { plan_id: 'pro' },
    ),
    status: 409,
    code: 'subscription_not_active',
  },
  {
    name: 'POST change: a subscription that has not started',
    ...post(
      changeUrl((f) => f.pendingSub),
      { plan_id: 'pro' },
    ),
    status: 409,
    code: 'subscription_not_active',
  },
  {
    name: "POST change: to another workspace's plan",
    ...post(changeUrl(sub), { plan_id: 'other-plan' }),
    status: 404,
    code: 'not_found',
  },

  // ---- GET /v1/subscriptions/{id}, GET /v1/customers/{id}/subscriptions ----
  {
    name: 'GET subscription: unknown id',
    ...get('/v1/subscriptions/sub_doesnotexist'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET subscription: malformed id',
    ...get('/v1/subscriptions/sub-x!'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET subscriptions of a customer: unknown customer',
    ...get('/v1/customers/nobody/subscriptions'),
    status: 404,
    code: 'not_found',
  },

  // ---- POST /v1/credit-packs ----
  ...genericWriteCases(W.createPack),
  ...amountCases('POST /v1/credit-packs', 'credits', 'POST', '/v1/credit-packs', (v) => ({
    id: 'new-pack',
    credits: v,
    price: { amount: '1.00', currency: 'USD' },
  })),
  {
    name: 'POST /v1/credit-packs: missing credits',
    ...post('/v1/credit-packs', { id: 'new-pack', price: { amount: '1.00', currency: 'USD' } }),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'POST /v1/credit-packs: missing id',
    ...post('/v1/credit-packs', { credits: '100', price: { amount: '1.00', currency: 'USD' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: missing price',
    ...post('/v1/credit-packs', { id: 'new-pack', credits: '100' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: null price',
    ...pack({ price: null }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: price amount as a JSON number',
    ...pack({ price: { amount: 1, currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/credit-packs: negative price',
    ...pack({ price: { amount: '-1.00', currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/credit-packs: price with 13 decimals',
    ...pack({ price: { amount: '1.0000000000001', currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/credit-packs: currency of 4 letters',
    ...pack({ price: { amount: '1.00', currency: 'USDT' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: unknown credit type',
    ...pack({ credit_type: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/credit-packs: two volume discounts with the same min_quantity',
    ...pack({
      volume_discounts: [
        { min_quantity: 5, percent_off: '10' },
        { min_quantity: 10, percent_off: '15' },
        { min_quantity: 5, percent_off: '20' },
      ],
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: volume discount min_quantity 0',
    ...pack({ volume_discounts: [{ min_quantity: 0, percent_off: '10' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: volume discount min_quantity as a string',
    ...pack({ volume_discounts: [{ min_quantity: '5', percent_off: '10' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: percent_off over 100',
    ...pack({ volume_discounts: [{ min_quantity: 5, percent_off: '100.000000000001' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: percent_off as a JSON number',
    ...pack({ volume_discounts: [{ min_quantity: 5, percent_off: 10 }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: negative percent_off',
    ...pack({ volume_discounts: [{ min_quantity: 5, percent_off: '-10' }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: volume discount without percent_off',
    ...pack({ volume_discounts: [{ min_quantity: 5 }] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: 21 volume discounts',
    ...pack({
      volume_discounts: Array.from({ length: 21 }, (_, i) => ({ min_quantity: i + 1, percent_off: '1' })),
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: expires_after_days 0',
    ...pack({ expires_after_days: 0 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: negative priority',
    ...pack({ priority: -1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-packs: existing id',
    ...pack({ id: '10k' }),
    status: 409,
    code: 'already_exists',
  },
  {
    name: "POST /v1/credit-packs: another workspace's credit type",
    ...post(
      '/v1/credit-packs',
      { id: 'p', credits: '1', credit_type: 'gpu', price: { amount: '1', currency: 'USD' } },
      OTHER,
    ),
    status: 404,
    code: 'not_found',
  },

  // ---- POST /v1/customers/{id}/purchases ----
  ...genericWriteCases(W.purchase),
  ...(
    [
      ['quantity 0', 0],
      ['negative quantity', -1],
      ['fractional quantity', 1.5],
      ['quantity as a string', '2'],
      ['quantity null', null],
      ['quantity over 100,000', 100_001],
    ] as const
  ).map(
    ([what, quantity]): BadCase => ({
      name: `POST purchases: ${what}`,
      ...post('/v1/customers/acme/purchases', { pack_id: '10k', quantity }),
      status: 400,
      code: 'invalid_request',
    }),
  ),
  {
    name: 'POST purchases: missing pack_id',
    ...post('/v1/customers/acme/purchases', { quantity: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST purchases: malformed pack_id',
    ...post('/v1/customers/acme/purchases', { pack_id: '10 k' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST purchases: unknown pack',
    ...post('/v1/customers/acme/purchases', { pack_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST purchases: unknown customer',
    ...post('/v1/customers/nobody/purchases', { pack_id: '10k' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: "POST purchases: another workspace's pack for its own customer",
    ...post('/v1/customers/other-co/purchases', { pack_id: '10k' }, OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- PUT /v1/customers/{id}/auto-top-up ----
  ...genericWriteCases(W.autoTopUp),
  ...amountCases(
    'PUT auto-top-up',
    'threshold',
    'PUT',
    '/v1/customers/acme/auto-top-up',
    (v) => ({ threshold: v, pack_id: '10k' }),
    NOT_FOR_NON_NEGATIVE,
  ),
  {
    name: 'PUT auto-top-up: missing threshold',
    ...put('/v1/customers/acme/auto-top-up', { pack_id: '10k' }),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'PUT auto-top-up: missing pack_id',
    ...put('/v1/customers/acme/auto-top-up', { threshold: '50' }),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'PUT auto-top-up: unknown pack', ...topUp({ pack_id: 'nope' }), status: 404, code: 'not_found' },
  { name: 'PUT auto-top-up: unknown customer', ...topUp({}, 'nobody'), status: 404, code: 'not_found' },
  {
    name: 'PUT auto-top-up: malformed customer id in path',
    ...topUp({}, 'a%20b'),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'PUT auto-top-up: quantity 0', ...topUp({ quantity: 0 }), status: 400, code: 'invalid_request' },
  {
    name: 'PUT auto-top-up: fractional quantity',
    ...topUp({ quantity: 1.5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT auto-top-up: max_per_period 0',
    ...topUp({ max_per_period: 0 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'PUT auto-top-up: max_per_period over 10,000',
    ...topUp({ max_per_period: 10_001 }),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'PUT auto-top-up: period P2M', ...topUp({ period: 'P2M' }), status: 400, code: 'invalid_request' },
  {
    name: 'PUT auto-top-up: enabled as a string',
    ...topUp({ enabled: 'true' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: "PUT auto-top-up: another workspace's pack for its own customer",
    ...topUp({}, 'other-co'),
    authorization: `Bearer ${OTHER_WORKSPACE_KEY}`,
    status: 404,
    code: 'not_found',
  },

  // ---- POST /v1/check ----
  ...genericWriteCases(W.check),
  ...amountCases('POST /v1/check', 'quantity', 'POST', '/v1/check', (v) => ({
    customer_id: 'acme',
    feature_id: 'gpt-x',
    quantity: v,
  })),
  {
    name: 'POST /v1/check: quantity as a JSON number, with a hold',
    ...check({ quantity: 2, hold: { ttl_seconds: 60 } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST /v1/check: missing customer_id',
    ...post('/v1/check', { feature_id: 'gpt-x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: missing feature_id',
    ...post('/v1/check', { customer_id: 'acme' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: malformed customer_id',
    ...check({ customer_id: 'a b' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: feature_id is a number',
    ...check({ feature_id: 5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: unknown customer',
    ...check({ customer_id: 'nobody' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/check: unknown feature',
    ...check({ feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/check: unknown customer, with a hold',
    ...check({ customer_id: 'nobody', hold: { ttl_seconds: 60 } }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/check: unknown feature, with a hold',
    ...check({ feature_id: 'nope', hold: { ttl_seconds: 60 } }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST /v1/check: hold ttl 0',
    ...check({ hold: { ttl_seconds: 0 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: negative hold ttl',
    ...check({ hold: { ttl_seconds: -60 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: fractional hold ttl',
    ...check({ hold: { ttl_seconds: 1.5 } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: hold ttl as a string',
    ...check({ hold: { ttl_seconds: '60' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: hold ttl over 30 days',
    ...check({ hold: { ttl_seconds: 30 * 24 * 3600 + 1 } }),
    status: 400,
    code: 'invalid_request',
  },
  { name: 'POST /v1/check: hold is true', ...check({ hold: true }), status: 400, code: 'invalid_request' },
  { name: 'POST /v1/check: hold is an array', ...check({ hold: [] }), status: 400, code: 'invalid_request' },
  {
    name: 'POST /v1/check: unknown field in hold',
    ...check({ hold: { ttl_seconds: 60, amount: '5' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/check: credit_type (check takes none)',
    ...check({ credit_type: 'credits' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: "POST /v1/check: another workspace's feature for its own customer",
    ...post('/v1/check', { customer_id: 'other-co', feature_id: 'gpt-x' }, OTHER),
    status: 404,
    code: 'not_found',
  },
  {
    name: "POST /v1/check: another workspace's feature for its own customer, with a hold",
    ...post('/v1/check', { customer_id: 'other-co', feature_id: 'gpt-x', hold: {} }, OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- feature fields of debits, holds and balances ----
  ...amountCases('POST debits', 'quantity', 'POST', '/v1/customers/acme/debits', (v) => ({
    amount: '1',
    feature_id: 'exports',
    quantity: v,
  })),
  {
    name: 'POST debits: quantity without feature_id',
    ...post('/v1/customers/acme/debits', { amount: '1', quantity: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: quantity with feature_id null',
    ...post('/v1/customers/acme/debits', { amount: '1', quantity: '1', feature_id: null }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: unknown feature_id, with a quantity',
    ...post('/v1/customers/acme/debits', { amount: '1', quantity: '1', feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST debits: malformed feature_id',
    ...post('/v1/customers/acme/debits', { amount: '1', feature_id: 'old!' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: feature_id is an array',
    ...post('/v1/customers/acme/debits', { amount: '1', feature_id: ['gpt-x'] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: feature_id with more than available for that feature',
    ...post('/v1/customers/acme/debits', { amount: '1000000', feature_id: 'gpt-x' }),
    status: 402,
    code: 'insufficient_credits',
  },
  {
    name: "POST debits: another workspace's feature for its own customer",
    ...post(
      '/v1/customers/other-co/debits',
      { amount: '1', feature_id: 'gpt-x', allow_overage: true },
      OTHER,
    ),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST holds: quantity (holds take none)',
    ...post('/v1/customers/acme/holds', { amount: '1', feature_id: 'gpt-x', quantity: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: unknown feature_id',
    ...post('/v1/customers/acme/holds', { amount: '1', feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST holds: feature_id with more than available for that feature',
    ...post('/v1/customers/acme/holds', { amount: '1000000', feature_id: 'gpt-x' }),
    status: 402,
    code: 'insufficient_credits',
  },
  {
    name: 'GET balance: feature_id and at together',
    ...get('/v1/customers/acme/balance?feature_id=gpt-x&at=2026-01-01T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: feature_id and at in the future',
    ...get('/v1/customers/acme/balance?feature_id=gpt-x&at=2030-01-01T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: feature_id given twice',
    ...get('/v1/customers/acme/balance?feature_id=gpt-x&feature_id=sso'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: empty feature_id',
    ...get('/v1/customers/acme/balance?feature_id='),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: "GET balance: another workspace's feature for its own customer",
    ...get('/v1/customers/other-co/balance?feature_id=gpt-x', OTHER),
    status: 404,
    code: 'not_found',
  },

  // ---- GETs: auth and workspaces; lists ----
  ...GET_ENDPOINTS.flatMap(genericGetCases),
  ...LIST_ENDPOINTS.flatMap(listQueryCases),
  {
    name: 'GET credit pack: unknown id',
    ...get('/v1/credit-packs/nope'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET purchases: unknown customer',
    ...get('/v1/customers/nobody/purchases'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET auto-top-up: customer without a rule',
    ...get('/v1/customers/beta/auto-top-up'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET auto-top-up: unknown customer',
    ...get('/v1/customers/nobody/auto-top-up'),
    status: 404,
    code: 'not_found',
  },
];

const ok = async (res: Promise<LightMyRequestResponse>, status = 201) => {
  const r = await res;
  expect(r.statusCode, r.payload).toBe(status);
  return r.json() as { id: string };
};

const putJson = (t: TestApp, url: string, body: unknown, headers: Record<string, string> = {}) =>
  t.request({
    method: 'PUT',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(body),
  });

/**
 * The catalogue, subscriptions in every state, a pack bought and an auto top-up rule, API keys
 * of every scope and a second workspace with a customer (and a plan) of its own. The clock ends
 * one hour after T0, so `cancelingSub` could be canceled at its period end.
 */
async function setUp(t: TestApp): Promise<Fixture> {
  await ok(t.post('/v1/customers', { id: 'acme', name: 'Acme' }));
  await ok(t.post('/v1/customers', { id: 'beta' }));
  await ok(t.post('/v1/credit-types', { id: 'gpu', name: 'GPU minutes' }));
  await ok(t.post('/v1/meters', { id: 'calls', event_type: 'api.call', aggregation: 'count' }));
  await ok(t.post('/v1/rates', { id: 'per-call', meter_id: 'calls', credits_per_unit: '0.001' }));
  await ok(
    t.post('/v1/rates', { id: 'gpu-call', meter_id: 'calls', credit_type: 'gpu', credits_per_unit: '0.5' }),
  );
  await ok(t.post('/v1/features', { id: 'gpt-x', type: 'metered', credits_per_use: '5' }));
  await ok(t.post('/v1/features', { id: 'search', type: 'metered', rate_ids: ['per-call'] }));
  await ok(t.post('/v1/features', { id: 'exports', type: 'metered' }));
  await ok(t.post('/v1/features', { id: 'sso', type: 'boolean' }));
  await ok(t.post('/v1/features', { id: 'seats', type: 'config' }));
  await ok(t.post('/v1/features', { id: 'old', type: 'boolean' }));
  await ok(t.request({ method: 'DELETE', url: '/v1/features/old' }), 200);
  await ok(
    t.post('/v1/plans', {
      id: 'pro',
      name: 'Pro',
      time_zone: 'Europe/Berlin',
      entitlements: [
        { feature_id: 'gpt-x' },
        { feature_id: 'search' },
        { feature_id: 'sso' },
        { feature_id: 'seats', config: { seats: 10 } },
        { feature_id: 'exports', usage_limit: { amount: '3', period: 'P1D' } },
      ],
      allowances: [{ amount: '500', period: 'P1M', rollover: { max_percent: '50' }, applies_to: null }],
      price: { amount: '29.00', currency: 'USD' },
    }),
  );
  await ok(putJson(t, '/v1/plans/pro', { ...PLAN_BODY, price: { amount: '39.00', currency: 'USD' } }));
  await ok(
    t.post('/v1/plans', {
      id: 'basic',
      entitlements: [{ feature_id: 'gpt-x' }],
      allowances: [{ amount: '100', period: 'P1M' }],
      price: { amount: '9.00', currency: 'USD' },
    }),
  );
  await ok(
    t.post('/v1/credit-packs', {
      id: '10k',
      credits: '10000',
      price: { amount: '100.00', currency: 'USD' },
      volume_discounts: [{ min_quantity: 5, percent_off: '10' }],
    }),
  );
  const sub = (await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro', plan_version: 1 }))).id;
  await ok(t.post('/v1/customers/acme/purchases', { pack_id: '10k' }));
  await ok(putJson(t, '/v1/customers/acme/auto-top-up', { threshold: '100', pack_id: '10k' }), 200);
  await ok(t.post('/v1/customers/acme/debits', { amount: '1', feature_id: 'exports', quantity: '1' }));
  const endedSub = (await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'basic' }))).id;
  await ok(t.post(`/v1/subscriptions/${endedSub}/cancel`, {}), 200);
  const pendingSub = (
    await ok(
      t.post('/v1/customers/beta/subscriptions', { plan_id: 'basic', start_at: '2026-06-01T00:00:00Z' }),
    )
  ).id;
  const cancelingSub = (
    await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'basic', allow_multiple: true }))
  ).id;
  t.clock.advance(3_600_000);
  await ok(t.post(`/v1/subscriptions/${cancelingSub}/cancel`, { at_period_end: true }), 200);

  const now = t.clock.now();
  await t.storage.write('api-keys', async (tx) => {
    const key = (
      id: string,
      workspaceId: string,
      raw: string,
      scope: 'admin' | 'read' | 'check',
      revokedAt: number | null = null,
    ) =>
      tx.insertApiKey({
        id,
        workspaceId,
        keyHash: hashApiKey(raw),
        scope,
        name: id,
        createdAt: now,
        revokedAt,
      });
    await key('key_read', 'default', READ_KEY, 'read');
    await key('key_check', 'default', CHECK_KEY, 'check');
    await key('key_revoked', 'default', REVOKED_KEY, 'admin', now);
    await tx.ensureWorkspace('other', now);
    await key('key_other', 'other', OTHER_WORKSPACE_KEY, 'admin');
  });
  await ok(t.post('/v1/customers', { id: 'other-co' }, OTHER));
  await ok(t.post('/v1/plans', { id: 'other-plan' }, OTHER));
  return { sub, endedSub, cancelingSub, pendingSub };
}

/** Everything a client can observe of both workspaces, plus the raw database rows. */
async function snapshot(t: TestApp, f: Fixture) {
  const urls = [
    '/v1/customers',
    '/v1/credit-types',
    '/v1/features',
    '/v1/features/old',
    '/v1/plans',
    '/v1/plans/pro?version=1',
    '/v1/plans/pro?version=2',
    '/v1/credit-packs',
    '/v1/customers/acme/subscriptions',
    '/v1/customers/beta/subscriptions',
    ...[f.sub, f.endedSub, f.cancelingSub, f.pendingSub].map((id) => `/v1/subscriptions/${id}`),
    '/v1/customers/acme/balance',
    '/v1/customers/acme/balance?feature_id=gpt-x',
    '/v1/customers/beta/balance',
    '/v1/customers/acme/grants?limit=1000',
    '/v1/customers/beta/grants?limit=1000',
    '/v1/customers/acme/ledger?limit=1000',
    '/v1/customers/acme/purchases',
    '/v1/customers/acme/auto-top-up',
  ];
  const api: Record<string, unknown> = {};
  for (const url of urls) {
    const res = await t.get(url);
    expect(res.statusCode, `${url}: ${res.payload}`).toBe(200);
    api[url] = res.json();
  }
  for (const url of ['/v1/customers', '/v1/features', '/v1/plans', '/v1/credit-packs']) {
    const res = await t.get(url, OTHER);
    expect(res.statusCode, `other ${url}: ${res.payload}`).toBe(200);
    api[`other workspace ${url}`] = res.json();
  }
  return { api, db: dumpDatabase(t) };
}

async function send(t: TestApp, c: BadCase, f: Fixture): Promise<LightMyRequestResponse> {
  const url = typeof c.url === 'string' ? c.url : c.url(f);
  const headers: Record<string, string> = { ...(c.headers ?? {}) };
  if (c.authorization !== null) headers['authorization'] = c.authorization ?? `Bearer ${TEST_API_KEY}`;
  let payload: string | undefined;
  if (c.payload !== undefined) {
    payload = typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload);
    const contentType = c.contentType === undefined ? 'application/json' : c.contentType;
    if (contentType !== null) headers['content-type'] = contentType;
  }
  return t.app.inject({
    method: c.method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload }),
  });
}

describe('bad input on features, plans, subscriptions, packs and check: documented error envelope, nothing written', () => {
  let t: TestApp;
  let f: Fixture = { sub: '', endedSub: '', cancelingSub: '', pendingSub: '' };

  beforeAll(async () => {
    t = await createTestApp();
    f = await setUp(t);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('the setup is what the cases assume', async () => {
    const subscription = async (id: string) => (await t.get(`/v1/subscriptions/${id}`)).json();
    expect(await subscription(f.sub)).toMatchObject({ plan_id: 'pro', plan_version: 1, status: 'active' });
    expect(await subscription(f.endedSub)).toMatchObject({ status: 'canceled' });
    expect(await subscription(f.cancelingSub)).toMatchObject({
      status: 'active',
      cancel_at: '2026-02-01T00:00:00.000Z',
    });
    expect(await subscription(f.pendingSub)).toMatchObject({
      status: 'active',
      start_at: '2026-06-01T00:00:00.000Z',
    });
    expect((await t.get('/v1/plans/pro')).json().version).toBe(2);
    expect((await t.get('/v1/features/old')).json().archived).toBe(true);
    expect((await t.get('/v1/customers/acme/balance')).json()).toMatchObject({
      available: '10499',
      held: '0',
    });
    // The other workspace's key works on its own customer; the check key may check.
    expect((await t.get('/v1/customers/other-co', OTHER)).statusCode).toBe(200);
    const checked = await t.post(
      '/v1/check',
      { customer_id: 'acme', feature_id: 'gpt-x' },
      { authorization: `Bearer ${CHECK_KEY}` },
    );
    expect(checked.statusCode, checked.payload).toBe(200);
    expect(checked.json()).toMatchObject({ allowed: true, reason: 'ok', credits: '5' });
    expect(dumpDatabase(t)).not.toBeNull();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await snapshot(t, f);
    const res = await send(t, c, f);
    expectErrorEnvelope(res, c.status, c.code);
    const after = await snapshot(t, f);
    expect(after.api).toEqual(before.api);
    expect(after.db).toEqual(before.db);
  });

  it('the valid bodies of the generic cases are accepted (so each refusal is for the one defect)', async () => {
    // Run last: these succeed and write.
    for (const e of Object.values(WRITE_ENDPOINTS) as WriteEndpoint[]) {
      const res = await send(
        t,
        { name: e.name, method: e.method, url: e.url, payload: e.validBody, status: 0, code: '' },
        f,
      );
      expect(res.statusCode, `${e.name}: ${res.payload}`).toBeLessThan(300);
    }
  });
});

/**
 * Regressions: bugs found while writing the cases above, each test stating the behaviour the
 * contract calls for (sums past the client's amount limit stay readable, cursors and times are
 * validated, cancel defaults, applies_to references).
 */
describe('regressions found by the bad-input cases', () => {
  let t: TestApp;
  let f: Fixture;

  beforeEach(async () => {
    t = await createTestApp();
    f = await setUp(t);
  });

  afterEach(async () => {
    await t?.close();
  });

  const expectUnchanged = async (c: BadCase) => {
    const before = await snapshot(t, f);
    expectErrorEnvelope(await send(t, c, f), c.status, c.code);
    const after = await snapshot(t, f);
    expect(after.api).toEqual(before.api);
    expect(after.db).toEqual(before.db);
  };

  /** Every read of the customer still answers 200 (an unreadable ledger is a 500 on every read). */
  const expectReadable = async (customer: string) => {
    for (const url of [
      `/v1/customers/${customer}/balance`,
      `/v1/customers/${customer}/grants`,
      `/v1/customers/${customer}/ledger`,
      `/v1/customers/${customer}/purchases`,
    ]) {
      const res = await t.get(url);
      expect(res.statusCode, `${url}: ${res.payload}`).toBe(200);
    }
  };

  it('a purchases cursor whose key is not JSON is a 400, not a 500', async () => {
    const cursor = Buffer.from('["x"]').toString('base64url');
    await expectUnchanged({
      name: 'purchases cursor',
      ...get(`/v1/customers/acme/purchases?cursor=${cursor}`),
      status: 400,
      code: 'invalid_request',
    });
  });

  it('the subscriptions list validates limit and unknown query parameters', async () => {
    await expectUnchanged({
      name: 'subscriptions limit=0',
      ...get('/v1/customers/acme/subscriptions?limit=0'),
      status: 400,
      code: 'invalid_request',
    });
  });

  it('an allowance applying to an unknown feature is a 404 not_found, as an entitlement to one', async () => {
    await expectUnchanged({
      name: 'applies_to unknown',
      ...allowance({ applies_to: ['nope'] }),
      status: 404,
      code: 'not_found',
    });
  });

  it('cancel without a body cancels now (at_period_end defaults to false), as release does', async () => {
    const res = await t.request({ method: 'POST', url: `/v1/subscriptions/${f.sub}/cancel` });
    expect(res.statusCode, res.payload).toBe(200);
    expect(res.json().status).toBe('canceled');
  });

  it('cancel at period end in the very millisecond a subscription starts keeps it to the period end', async () => {
    const started = await ok(t.post('/v1/customers/beta/subscriptions', { plan_id: 'pro', plan_version: 1 }));
    const res = await t.post(`/v1/subscriptions/${started.id}/cancel`, { at_period_end: true });
    expect(res.statusCode, res.payload).toBe(200);
    expect(res.json()).toMatchObject({ status: 'active', cancel_at: '2026-02-01T01:00:00.000Z' });
  });

  it('packs bought past the largest amount are refused or stay readable (credits × quantity)', async () => {
    await ok(
      t.post('/v1/credit-packs', { id: 'huge', credits: N20, price: { amount: '1', currency: 'USD' } }),
    );
    const res = await t.post('/v1/customers/beta/purchases', { pack_id: 'huge', quantity: 2 });
    expect([201, 400], res.payload).toContain(res.statusCode);
    await expectReadable('beta');
  });

  it('packs bought past the largest amount are refused or stay readable (price × quantity)', async () => {
    await ok(
      t.post('/v1/credit-packs', { id: 'pricey', credits: '1', price: { amount: N20, currency: 'USD' } }),
    );
    const res = await t.post('/v1/customers/beta/purchases', { pack_id: 'pricey', quantity: 2 });
    expect([201, 400], res.payload).toContain(res.statusCode);
    await expectReadable('beta');
  });

  it('allowances adding up past the largest amount are refused or stay readable', async () => {
    const allowances = [
      { amount: N20, period: 'P1M' },
      { amount: N20, period: 'P1W' },
    ];
    await ok(t.post('/v1/plans', { id: 'whale', allowances }));
    const res = await t.post('/v1/customers/beta/subscriptions', { plan_id: 'whale' });
    expect([201, 400], res.payload).toContain(res.statusCode);
    await expectReadable('beta');
  });

  it('grants adding up past the largest amount are refused or stay readable', async () => {
    await ok(t.post('/v1/customers/beta/grants', { amount: N20 }));
    const res = await t.post('/v1/customers/beta/grants', { amount: N20 });
    expect([201, 400], res.payload).toContain(res.statusCode);
    await expectReadable('beta');
  });

  it('a usage count past the largest amount is refused or stays readable', async () => {
    const debit = { amount: '1', feature_id: 'exports', quantity: N20 };
    await ok(t.post('/v1/customers/acme/debits', debit));
    const res = await t.post('/v1/customers/acme/debits', debit);
    expect([201, 400], res.payload).toContain(res.statusCode);
    const checked = await t.post('/v1/check', { customer_id: 'acme', feature_id: 'exports' });
    expect(checked.statusCode, checked.payload).toBe(200);
  });

  it('a time before year 100 is refused or kept, never read as 19xx', async () => {
    const res = await t.post('/v1/customers/beta/grants', {
      amount: '1',
      effective_at: '0099-01-01T00:00:00Z',
    });
    if (res.statusCode !== 400) expect(res.json().effective_at).toBe('0099-01-01T00:00:00.000Z');
  });

  it('a subscription starting after year 9999 is refused or its times stay RFC 3339', async () => {
    const res = await t.post('/v1/customers/beta/subscriptions', {
      plan_id: 'basic',
      start_at: '9999-12-31T23:00:00Z',
      allow_multiple: true,
    });
    if (res.statusCode !== 400) expect(res.json().current_period.end).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });
});
