import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/services/api-keys.js';
import { BAD_AMOUNTS, dumpDatabase, expectErrorEnvelope } from '../fixtures/bad-input.js';
import { createTestApp, TEST_API_KEY, type TestApp } from '../fixtures/harness.js';

/**
 * Bad input on every endpoint of docs/api.md (Customers … Balance and ledger): each refusal must carry
 * the documented status and code in the contract's error envelope, and must change nothing
 * ("A failed request changes nothing"). One app serves every case; each case snapshots the
 * observable state (and the raw database) right before and right after its request. Features,
 * plans, subscriptions, packs and check (and feature fields that need an existing feature) are in
 * plans-bad-input.test.ts.
 */

const READ_KEY = 'test-read-key-0123456789';
const CHECK_KEY = 'test-check-key-0123456789';
const REVOKED_KEY = 'test-revoked-key-0123456789';
const OTHER_WORKSPACE_KEY = 'test-other-workspace-admin-key-0123456789';
const MIB = 1024 * 1024;

/** Ids made during setup, for URLs of the cases. */
interface Fixture {
  /** Active paid grant (1000). */
  grant: string;
  /** Active promotional grant (100, expiring). */
  promoGrant: string;
  /** A voided grant. */
  voidedGrant: string;
  /** An active hold of 40. */
  hold: string;
  /** A released hold. */
  releasedHold: string;
}

type Url = string | ((f: Fixture) => string);

/** One bad request and the refusal the contract prescribes for it. */
interface BadCase {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
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

/** A POST endpoint with a body it would accept, to hang generic bad-input variants on. */
interface PostEndpoint {
  readonly name: string;
  readonly url: Url;
  readonly validBody: Record<string, unknown>;
  /** Acts on the default workspace's customer `acme` (another workspace must see 404). */
  readonly acmeScoped: boolean;
}

interface GetEndpoint {
  readonly name: string;
  readonly url: Url;
  readonly acmeScoped: boolean;
}

const POST_ENDPOINTS: readonly PostEndpoint[] = [
  {
    name: 'POST /v1/customers',
    url: '/v1/customers',
    validBody: { id: 'newco', name: 'New Co' },
    acmeScoped: false,
  },
  {
    name: 'POST /v1/credit-types',
    url: '/v1/credit-types',
    validBody: { id: 'tokens', name: 'Tokens' },
    acmeScoped: false,
  },
  { name: 'POST grants', url: '/v1/customers/acme/grants', validBody: { amount: '10' }, acmeScoped: true },
  {
    name: 'POST void',
    url: (f) => `/v1/grants/${f.promoGrant}/void`,
    validBody: { reason: 'test' },
    acmeScoped: true,
  },
  { name: 'POST debits', url: '/v1/customers/acme/debits', validBody: { amount: '5' }, acmeScoped: true },
  {
    name: 'POST holds',
    url: '/v1/customers/acme/holds',
    validBody: { amount: '5', ttl_seconds: 60 },
    acmeScoped: true,
  },
  {
    name: 'POST capture',
    url: (f) => `/v1/holds/${f.hold}/capture`,
    validBody: { amount: '5' },
    acmeScoped: true,
  },
  { name: 'POST release', url: (f) => `/v1/holds/${f.hold}/release`, validBody: {}, acmeScoped: true },
];

const GET_ENDPOINTS: readonly GetEndpoint[] = [
  { name: 'GET customer', url: '/v1/customers/acme', acmeScoped: true },
  { name: 'GET customers', url: '/v1/customers', acmeScoped: false },
  { name: 'GET grants list', url: '/v1/customers/acme/grants', acmeScoped: true },
  { name: 'GET grant', url: (f) => `/v1/grants/${f.grant}`, acmeScoped: true },
  { name: 'GET hold', url: (f) => `/v1/holds/${f.hold}`, acmeScoped: true },
  { name: 'GET balance', url: '/v1/customers/acme/balance', acmeScoped: true },
  { name: 'GET ledger', url: '/v1/customers/acme/ledger', acmeScoped: true },
];

const LIST_ENDPOINTS: readonly GetEndpoint[] = [
  { name: 'GET customers', url: '/v1/customers', acmeScoped: false },
  { name: 'GET credit-types', url: '/v1/credit-types', acmeScoped: false },
  { name: 'GET grants list', url: '/v1/customers/acme/grants', acmeScoped: true },
  { name: 'GET ledger', url: '/v1/customers/acme/ledger', acmeScoped: true },
];

const post = (url: Url, payload: unknown, extra: Partial<BadCase> = {}) => ({
  method: 'POST' as const,
  url,
  payload,
  ...extra,
});
const get = (url: Url, extra: Partial<BadCase> = {}) => ({ method: 'GET' as const, url, ...extra });

function amountCases(endpoint: string, url: Url, base: Record<string, unknown>, field = 'amount'): BadCase[] {
  return BAD_AMOUNTS.map(([what, value]) => ({
    name: `${endpoint}: ${field} ${what} → 400 invalid_amount`,
    ...post(url, { ...base, [field]: value }),
    status: 400,
    code: 'invalid_amount',
  }));
}

/** Variants that apply to every POST endpoint. */
function genericPostCases(e: PostEndpoint): BadCase[] {
  const valid = JSON.stringify(e.validBody);
  const cases: BadCase[] = [
    {
      name: 'malformed JSON (truncated)',
      ...post(e.url, valid.slice(0, -1)),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'malformed JSON (trailing garbage)',
      ...post(e.url, `${valid}x`),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'malformed JSON (single quotes)',
      ...post(e.url, "{'amount': '5'}"),
      status: 400,
      code: 'invalid_request',
    },
    { name: 'not JSON at all', ...post(e.url, 'amount=5'), status: 400, code: 'invalid_request' },
    { name: 'body is an array', ...post(e.url, '[]'), status: 400, code: 'invalid_request' },
    { name: 'body is a string', ...post(e.url, '"hello"'), status: 400, code: 'invalid_request' },
    { name: 'body is a number', ...post(e.url, '42'), status: 400, code: 'invalid_request' },
    {
      name: 'unknown field',
      ...post(e.url, { ...e.validBody, bogus_field: 1 }),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'camelCase field',
      ...post(e.url, { ...e.validBody, creditType: 'credits' }),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: '__proto__ key',
      ...post(e.url, `{"__proto__": {"polluted": true}, ${valid.slice(1)}`),
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'Content-Type text/plain',
      ...post(e.url, valid, { contentType: 'text/plain' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Type form-urlencoded',
      ...post(e.url, 'amount=5', { contentType: 'application/x-www-form-urlencoded' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Type multipart',
      ...post(e.url, valid, { contentType: 'multipart/form-data; boundary=xyz' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Content-Type application/jsonx',
      ...post(e.url, valid, { contentType: 'application/jsonx' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'no Content-Type with a body',
      ...post(e.url, valid, { contentType: null }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'body over 1 MiB',
      ...post(e.url, `{"description": "${'x'.repeat(MIB)}"}`),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'body over 1 MiB that is not even JSON',
      ...post(e.url, 'x'.repeat(MIB + 1)),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'no Authorization',
      ...post(e.url, e.validBody, { authorization: null }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'unknown bearer key',
      ...post(e.url, e.validBody, { authorization: 'Bearer not-a-key' }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'empty bearer',
      ...post(e.url, e.validBody, { authorization: 'Bearer ' }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'Basic scheme with the admin key',
      ...post(e.url, e.validBody, {
        authorization: `Basic ${Buffer.from(`${TEST_API_KEY}:`).toString('base64')}`,
      }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'raw key without scheme',
      ...post(e.url, e.validBody, { authorization: TEST_API_KEY }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'bearer key with trailing junk',
      ...post(e.url, e.validBody, { authorization: `Bearer ${TEST_API_KEY} extra` }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'revoked key',
      ...post(e.url, e.validBody, { authorization: `Bearer ${REVOKED_KEY}` }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'read-scoped key',
      ...post(e.url, e.validBody, { authorization: `Bearer ${READ_KEY}` }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'check-scoped key',
      ...post(e.url, e.validBody, { authorization: `Bearer ${CHECK_KEY}` }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'Idempotency-Key longer than 255',
      ...post(e.url, e.validBody, { headers: { 'idempotency-key': 'k'.repeat(256) } }),
      status: 400,
      code: 'invalid_request',
    },
  ];
  if (e.acmeScoped) {
    cases.push({
      name: "another workspace's key on the default workspace's resource",
      ...post(e.url, e.validBody, { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` }),
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
      name: 'raw key without scheme',
      ...get(e.url, { authorization: TEST_API_KEY }),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'revoked key',
      ...get(e.url, { authorization: `Bearer ${REVOKED_KEY}` }),
      status: 401,
      code: 'unauthorized',
    },
  ];
  if (e.acmeScoped) {
    cases.push({
      name: "another workspace's key on the default workspace's resource",
      ...get(e.url, { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` }),
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
    ['limit= (empty)', 'limit='],
    ['limit=99999', 'limit=99999'],
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

const CASES: readonly BadCase[] = [
  // ---- POST /v1/customers ----
  ...genericPostCases(POST_ENDPOINTS[0]!),
  {
    name: 'POST /v1/customers: missing id',
    ...post('/v1/customers', { name: 'x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: id is a number',
    ...post('/v1/customers', { id: 42 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: id is null',
    ...post('/v1/customers', { id: null }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: id with a space',
    ...post('/v1/customers', { id: 'a b' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: id with a slash',
    ...post('/v1/customers', { id: 'a/b' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: empty id',
    ...post('/v1/customers', { id: '' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: id of 129 chars',
    ...post('/v1/customers', { id: 'a'.repeat(129) }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: name is a number',
    ...post('/v1/customers', { id: 'newco', name: 7 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: metadata is an array',
    ...post('/v1/customers', { id: 'newco', metadata: [1] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: metadata is a string',
    ...post('/v1/customers', { id: 'newco', metadata: 'x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: metadata over 16 KiB',
    ...post('/v1/customers', { id: 'newco', metadata: { blob: 'x'.repeat(17 * 1024) } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: metadata with 51 keys',
    ...post('/v1/customers', {
      id: 'newco',
      metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])),
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/customers: existing id',
    ...post('/v1/customers', { id: 'acme' }),
    status: 409,
    code: 'already_exists',
  },

  // ---- POST /v1/credit-types ----
  ...genericPostCases(POST_ENDPOINTS[1]!),
  {
    name: 'POST /v1/credit-types: missing id',
    ...post('/v1/credit-types', { name: 'x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-types: id is a number',
    ...post('/v1/credit-types', { id: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-types: id with a space',
    ...post('/v1/credit-types', { id: 'gpu minutes' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-types: name is an object',
    ...post('/v1/credit-types', { id: 'tokens', name: {} }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST /v1/credit-types: existing id',
    ...post('/v1/credit-types', { id: 'gpu' }),
    status: 409,
    code: 'already_exists',
  },
  {
    name: 'POST /v1/credit-types: the built-in credits',
    ...post('/v1/credit-types', { id: 'credits' }),
    status: 409,
    code: 'already_exists',
  },

  // ---- POST /v1/customers/{id}/grants ----
  ...genericPostCases(POST_ENDPOINTS[2]!),
  ...amountCases('POST grants', '/v1/customers/acme/grants', {}),
  {
    name: 'POST grants: missing amount',
    ...post('/v1/customers/acme/grants', {}),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'POST grants: unknown customer',
    ...post('/v1/customers/nobody/grants', { amount: '10' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST grants: malformed customer id in path',
    ...post('/v1/customers/a%20b/grants', { amount: '10' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: unknown credit type',
    ...post('/v1/customers/acme/grants', { amount: '10', credit_type: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST grants: credit_type is a number',
    ...post('/v1/customers/acme/grants', { amount: '10', credit_type: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: unknown category',
    ...post('/v1/customers/acme/grants', { amount: '10', category: 'free' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: priority as a string',
    ...post('/v1/customers/acme/grants', { amount: '10', priority: '10' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: fractional priority',
    ...post('/v1/customers/acme/grants', { amount: '10', priority: 1.5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: negative priority',
    ...post('/v1/customers/acme/grants', { amount: '10', priority: -1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: effective_at not a time',
    ...post('/v1/customers/acme/grants', { amount: '10', effective_at: 'tomorrow' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: effective_at as epoch number',
    ...post('/v1/customers/acme/grants', { amount: '10', effective_at: 1767225600000 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: expires_at impossible date',
    ...post('/v1/customers/acme/grants', { amount: '10', expires_at: '2026-02-30T00:00:00Z' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: expires_at before effective_at',
    ...post('/v1/customers/acme/grants', {
      amount: '10',
      effective_at: '2026-03-01T00:00:00Z',
      expires_at: '2026-02-01T00:00:00Z',
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: expires_at equal to effective_at',
    ...post('/v1/customers/acme/grants', {
      amount: '10',
      effective_at: '2026-03-01T00:00:00Z',
      expires_at: '2026-03-01T00:00:00Z',
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: expires_at in the past (before the default effective now)',
    ...post('/v1/customers/acme/grants', { amount: '10', expires_at: '2025-01-01T00:00:00Z' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: cost_basis.amount as a JSON number',
    ...post('/v1/customers/acme/grants', { amount: '10', cost_basis: { amount: 49, currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST grants: negative cost_basis.amount',
    ...post('/v1/customers/acme/grants', { amount: '10', cost_basis: { amount: '-1', currency: 'USD' } }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST grants: lowercase currency',
    ...post('/v1/customers/acme/grants', { amount: '10', cost_basis: { amount: '49.00', currency: 'usd' } }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: unknown field inside cost_basis',
    ...post('/v1/customers/acme/grants', {
      amount: '10',
      cost_basis: { amount: '49.00', currency: 'USD', tax: '1' },
    }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: applies_to is a string',
    ...post('/v1/customers/acme/grants', { amount: '10', applies_to: 'gpt-x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST grants: description is a number',
    ...post('/v1/customers/acme/grants', { amount: '10', description: 5 }),
    status: 400,
    code: 'invalid_request',
  },

  // ---- POST /v1/grants/{id}/void ----
  ...genericPostCases(POST_ENDPOINTS[3]!),
  {
    name: 'POST void: unknown grant',
    ...post('/v1/grants/grt_doesnotexist/void', {}),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST void: malformed grant id',
    ...post('/v1/grants/grt-bad!id/void', {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST void: reason is a number',
    ...post((f) => `/v1/grants/${f.promoGrant}/void`, { reason: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST void: already voided',
    ...post((f) => `/v1/grants/${f.voidedGrant}/void`, {}),
    status: 409,
    code: 'grant_not_active',
  },

  // ---- POST /v1/customers/{id}/debits ----
  ...genericPostCases(POST_ENDPOINTS[4]!),
  ...amountCases('POST debits', '/v1/customers/acme/debits', {}),
  {
    name: 'POST debits: missing amount',
    ...post('/v1/customers/acme/debits', {}),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'POST debits: unknown customer',
    ...post('/v1/customers/nobody/debits', { amount: '5' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST debits: unknown credit type',
    ...post('/v1/customers/acme/debits', { amount: '5', credit_type: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST debits: allow_overage as a string',
    ...post('/v1/customers/acme/debits', { amount: '5', allow_overage: 'true' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: metadata is an array',
    ...post('/v1/customers/acme/debits', { amount: '5', metadata: [] }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: more than available',
    ...post('/v1/customers/acme/debits', { amount: '1000000' }),
    status: 402,
    code: 'insufficient_credits',
  },
  {
    name: 'POST debits: quantity without feature_id',
    ...post('/v1/customers/acme/debits', { amount: '5', quantity: '1' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: quantity with feature_id null',
    ...post('/v1/customers/acme/debits', { amount: '5', quantity: '1', feature_id: null }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: quantity as a JSON number',
    ...post('/v1/customers/acme/debits', { amount: '5', quantity: 1, feature_id: 'gpt-x' }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST debits: quantity zero',
    ...post('/v1/customers/acme/debits', { amount: '5', quantity: '0', feature_id: 'gpt-x' }),
    status: 400,
    code: 'invalid_amount',
  },
  {
    name: 'POST debits: unknown feature_id',
    ...post('/v1/customers/acme/debits', { amount: '5', feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST debits: malformed feature_id',
    ...post('/v1/customers/acme/debits', { amount: '5', feature_id: 'gpt x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: feature_id is a number',
    ...post('/v1/customers/acme/debits', { amount: '5', feature_id: 7 }),
    status: 400,
    code: 'invalid_request',
  },

  // ---- POST /v1/customers/{id}/holds ----
  ...genericPostCases(POST_ENDPOINTS[5]!),
  ...amountCases('POST holds', '/v1/customers/acme/holds', { ttl_seconds: 60 }),
  {
    name: 'POST holds: missing amount',
    ...post('/v1/customers/acme/holds', { ttl_seconds: 60 }),
    status: 400,
    code: ['invalid_request', 'invalid_amount'],
  },
  {
    name: 'POST holds: unknown customer',
    ...post('/v1/customers/nobody/holds', { amount: '5' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST holds: unknown credit type',
    ...post('/v1/customers/acme/holds', { amount: '5', credit_type: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST holds: ttl_seconds as a string',
    ...post('/v1/customers/acme/holds', { amount: '5', ttl_seconds: '300' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: ttl_seconds zero',
    ...post('/v1/customers/acme/holds', { amount: '5', ttl_seconds: 0 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: ttl_seconds negative',
    ...post('/v1/customers/acme/holds', { amount: '5', ttl_seconds: -60 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: ttl_seconds fractional',
    ...post('/v1/customers/acme/holds', { amount: '5', ttl_seconds: 1.5 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: more than available',
    ...post('/v1/customers/acme/holds', { amount: '1000000' }),
    status: 402,
    code: 'insufficient_credits',
  },
  {
    name: 'POST holds: unknown feature_id',
    ...post('/v1/customers/acme/holds', { amount: '5', feature_id: 'nope' }),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST holds: malformed feature_id',
    ...post('/v1/customers/acme/holds', { amount: '5', feature_id: 'gpt/x' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST holds: quantity (holds take none)',
    ...post('/v1/customers/acme/holds', { amount: '5', quantity: '1' }),
    status: 400,
    code: 'invalid_request',
  },

  // ---- POST /v1/holds/{id}/capture ----
  ...genericPostCases(POST_ENDPOINTS[6]!),
  ...amountCases('POST capture', (f) => `/v1/holds/${f.hold}/capture`, {}),
  {
    name: 'POST capture: unknown hold',
    ...post('/v1/holds/hld_doesnotexist/capture', {}),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST capture: malformed hold id',
    ...post('/v1/holds/hld-bad!/capture', {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST capture: allow_overage as a number',
    ...post((f) => `/v1/holds/${f.hold}/capture`, { allow_overage: 1 }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST capture: released hold',
    ...post((f) => `/v1/holds/${f.releasedHold}/capture`, {}),
    status: 409,
    code: 'hold_not_active',
  },
  {
    name: 'POST capture: excess beyond the balance',
    ...post((f) => `/v1/holds/${f.hold}/capture`, { amount: '1000000' }),
    status: 402,
    code: 'insufficient_credits',
  },

  // ---- POST /v1/holds/{id}/release ----
  ...genericPostCases(POST_ENDPOINTS[7]!),
  {
    name: 'POST release: unknown hold',
    ...post('/v1/holds/hld_doesnotexist/release', {}),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'POST release: malformed hold id',
    ...post('/v1/holds/hld-bad!/release', {}),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST release: an amount (release takes no fields)',
    ...post((f) => `/v1/holds/${f.hold}/release`, { amount: '5' }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST release: released hold',
    ...post((f) => `/v1/holds/${f.releasedHold}/release`, {}),
    status: 409,
    code: 'hold_not_active',
  },

  // ---- GETs: auth and workspaces ----
  ...GET_ENDPOINTS.flatMap(genericGetCases),

  // ---- GET /v1/customers/{id} ----
  { name: 'GET customer: unknown id', ...get('/v1/customers/nobody'), status: 404, code: 'not_found' },
  { name: 'GET customer: malformed id', ...get('/v1/customers/a%20b'), status: 400, code: 'invalid_request' },
  {
    name: 'GET customer: id of 129 chars',
    ...get(`/v1/customers/${'a'.repeat(129)}`),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET customer: malformed percent-encoding in the path',
    ...get('/v1/customers/%E0%A4%A'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'POST debits: malformed percent-encoding in the path',
    ...post('/v1/customers/%E0%A4%A/debits', { amount: '5' }),
    status: 400,
    code: 'invalid_request',
  },

  // ---- lists: limit and cursor ----
  ...LIST_ENDPOINTS.flatMap(listQueryCases),
  {
    name: 'GET grants list: unknown customer',
    ...get('/v1/customers/nobody/grants'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET grants list: unknown status',
    ...get('/v1/customers/acme/grants?status=bogus'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET grants list: malformed credit_type',
    ...get('/v1/customers/acme/grants?credit_type=a%20b'),
    status: 400,
    code: 'invalid_request',
  },

  // ---- GET /v1/grants/{id}, GET /v1/holds/{id} ----
  { name: 'GET grant: unknown id', ...get('/v1/grants/grt_doesnotexist'), status: 404, code: 'not_found' },
  { name: 'GET grant: malformed id', ...get('/v1/grants/grt-bad!'), status: 400, code: 'invalid_request' },
  { name: 'GET grant: a hold id', ...get((f) => `/v1/grants/${f.hold}`), status: 404, code: 'not_found' },
  { name: 'GET hold: unknown id', ...get('/v1/holds/hld_doesnotexist'), status: 404, code: 'not_found' },
  { name: 'GET hold: malformed id', ...get('/v1/holds/hld-bad!'), status: 400, code: 'invalid_request' },
  { name: 'GET hold: a grant id', ...get((f) => `/v1/holds/${f.grant}`), status: 404, code: 'not_found' },

  // ---- GET balance ----
  {
    name: 'GET balance: unknown customer',
    ...get('/v1/customers/nobody/balance'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET balance: unknown credit type',
    ...get('/v1/customers/acme/balance?credit_type=nope'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET balance: at not a time',
    ...get('/v1/customers/acme/balance?at=yesterday'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at as epoch millis',
    ...get('/v1/customers/acme/balance?at=1767225600000'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at impossible date',
    ...get('/v1/customers/acme/balance?at=2025-02-30T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at without a zone',
    ...get('/v1/customers/acme/balance?at=2025-12-01T00:00:00'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at in the future',
    ...get('/v1/customers/acme/balance?at=2030-01-01T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at empty',
    ...get('/v1/customers/acme/balance?at='),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: at given twice',
    ...get('/v1/customers/acme/balance?at=2025-12-01T00:00:00Z&at=2025-12-02T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: unknown query parameter',
    ...get('/v1/customers/acme/balance?bogus=1'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET balance: unknown feature_id',
    ...get('/v1/customers/acme/balance?feature_id=nope'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET balance: malformed feature_id',
    ...get('/v1/customers/acme/balance?feature_id=a%20b'),
    status: 400,
    code: 'invalid_request',
  },

  // ---- GET ledger ----
  {
    name: 'GET ledger: unknown customer',
    ...get('/v1/customers/nobody/ledger'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET ledger: unknown credit type',
    ...get('/v1/customers/acme/ledger?credit_type=nope'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'GET ledger: from not a time',
    ...get('/v1/customers/acme/ledger?from=yesterday'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET ledger: to not a time',
    ...get('/v1/customers/acme/ledger?to=2026-13-01T00:00:00Z'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET ledger: order neither asc nor desc',
    ...get('/v1/customers/acme/ledger?order=newest'),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'GET ledger: an ascending cursor with order=desc',
    // base64url of ["0","1"], the shape of an ascending cursor
    ...get(`/v1/customers/acme/ledger?order=desc&cursor=${Buffer.from('["0","1"]').toString('base64url')}`),
    status: 400,
    code: 'invalid_request',
  },

  // ---- PATCH /v1/customers/{id} ----
  ...(
    [
      ['unknown customer', '/v1/customers/nobody', { name: 'x' }, 404, 'not_found'],
      ['malformed id in path', '/v1/customers/a%20b', { name: 'x' }, 400, 'invalid_request'],
      ['id in the body', '/v1/customers/acme', { id: 'acme2' }, 400, 'invalid_request'],
      ['unknown field', '/v1/customers/acme', { nickname: 'x' }, 400, 'invalid_request'],
      ['name not a string', '/v1/customers/acme', { name: 7 }, 400, 'invalid_request'],
      ['name too long', '/v1/customers/acme', { name: 'n'.repeat(257) }, 400, 'invalid_request'],
      ['metadata an array', '/v1/customers/acme', { metadata: ['a'] }, 400, 'invalid_request'],
      ['metadata null', '/v1/customers/acme', { metadata: null }, 400, 'invalid_request'],
      [
        'metadata over 16 KiB',
        '/v1/customers/acme',
        { metadata: { k: 'x'.repeat(16_500) } },
        400,
        'invalid_request',
      ],
      ['body not JSON', '/v1/customers/acme', '{name:', 400, 'invalid_request'],
      ['body a JSON array', '/v1/customers/acme', '[]', 400, 'invalid_request'],
    ] as const
  ).map(([what, url, payload, status, code]) => ({
    name: `PATCH customer: ${what}`,
    method: 'PATCH' as const,
    url,
    payload,
    status,
    code,
  })),
  {
    name: 'PATCH customer: read key',
    method: 'PATCH',
    url: '/v1/customers/acme',
    payload: { name: 'x' },
    authorization: `Bearer ${READ_KEY}`,
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'PATCH customer: no key',
    method: 'PATCH',
    url: '/v1/customers/acme',
    payload: { name: 'x' },
    authorization: null,
    status: 401,
    code: 'unauthorized',
  },
  {
    name: "PATCH customer: another workspace's customer",
    method: 'PATCH',
    url: '/v1/customers/acme',
    payload: { name: 'x' },
    authorization: `Bearer ${OTHER_WORKSPACE_KEY}`,
    status: 404,
    code: 'not_found',
  },
  {
    name: 'PATCH customer: text/plain body',
    method: 'PATCH',
    url: '/v1/customers/acme',
    payload: '{"name":"x"}',
    contentType: 'text/plain',
    status: 415,
    code: 'unsupported_media_type',
  },

  // ---- DELETE /v1/customers/{id}/auto-top-up ----
  {
    name: 'DELETE auto-top-up: a customer without a rule',
    method: 'DELETE',
    url: '/v1/customers/acme/auto-top-up',
    status: 404,
    code: 'not_found',
  },
  {
    name: 'DELETE auto-top-up: unknown customer',
    method: 'DELETE',
    url: '/v1/customers/nobody/auto-top-up',
    status: 404,
    code: 'not_found',
  },
  {
    name: 'DELETE auto-top-up: read key',
    method: 'DELETE',
    url: '/v1/customers/acme/auto-top-up',
    authorization: `Bearer ${READ_KEY}`,
    status: 403,
    code: 'forbidden',
  },

  // ---- a known path with a method it does not take ----
  {
    name: 'DELETE /v1/customers',
    method: 'DELETE',
    url: '/v1/customers',
    status: 405,
    code: 'method_not_allowed',
  },
  {
    name: 'PUT a customer',
    method: 'PUT',
    url: '/v1/customers/acme',
    status: 405,
    code: 'method_not_allowed',
  },
  {
    name: 'GET a capture',
    ...get((x) => `/v1/holds/${x.hold}/capture`),
    status: 405,
    code: 'method_not_allowed',
  },
  {
    name: 'POST a balance (no key: the method is checked first)',
    ...post('/v1/customers/acme/balance', {}, { authorization: null }),
    status: 405,
    code: 'method_not_allowed',
  },
];

describe('bad input on every endpoint: documented error envelope, nothing written', () => {
  let t: TestApp;
  const f: Fixture = { grant: '', promoGrant: '', voidedGrant: '', hold: '', releasedHold: '' };

  const ok = async (res: Promise<LightMyRequestResponse>, status = 201) => {
    const r = await res;
    expect(r.statusCode, r.payload).toBe(status);
    return r.json() as { id: string };
  };

  beforeAll(async () => {
    t = await createTestApp();
    await ok(t.post('/v1/customers', { id: 'acme', name: 'Acme' }));
    await ok(t.post('/v1/credit-types', { id: 'gpu', name: 'GPU minutes' }));
    f.grant = (await ok(t.post('/v1/customers/acme/grants', { amount: '1000' }))).id;
    f.promoGrant = (
      await ok(
        t.post('/v1/customers/acme/grants', {
          amount: '100',
          category: 'promotional',
          expires_at: '2026-06-01T00:00:00Z',
        }),
      )
    ).id;
    f.voidedGrant = (await ok(t.post('/v1/customers/acme/grants', { amount: '50', priority: 99 }))).id;
    await ok(t.post(`/v1/grants/${f.voidedGrant}/void`, { reason: 'setup' }), 200);
    await ok(t.post('/v1/customers/acme/grants', { amount: '7', credit_type: 'gpu' }));
    await ok(t.post('/v1/customers/acme/debits', { amount: '25.5' }));
    f.hold = (await ok(t.post('/v1/customers/acme/holds', { amount: '40', ttl_seconds: 3600 }))).id;
    f.releasedHold = (await ok(t.post('/v1/customers/acme/holds', { amount: '10', ttl_seconds: 3600 }))).id;
    await ok(t.post(`/v1/holds/${f.releasedHold}/release`), 200);

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
  });

  afterAll(async () => {
    await t?.close();
  });

  /** Everything a client can observe of the default workspace, plus the raw database rows. */
  async function snapshot() {
    const urls = [
      '/v1/customers',
      '/v1/credit-types',
      '/v1/customers/acme',
      '/v1/customers/acme/balance',
      '/v1/customers/acme/balance?credit_type=gpu',
      '/v1/customers/acme/grants',
      '/v1/customers/acme/ledger',
      '/v1/customers/acme/ledger?credit_type=gpu',
      `/v1/holds/${f.hold}`,
      `/v1/holds/${f.releasedHold}`,
      `/v1/grants/${f.promoGrant}`,
    ];
    const api: Record<string, unknown> = {};
    for (const url of urls) {
      const res = await t.get(url);
      expect(res.statusCode, `${url}: ${res.payload}`).toBe(200);
      api[url] = res.json();
    }
    const other = await t.get('/v1/customers', { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` });
    api['other workspace customers'] = other.json();
    return { api, db: dumpDatabase(t) };
  }

  it('the setup is what the cases assume', async () => {
    const balance = (await t.get('/v1/customers/acme/balance')).json();
    expect(balance).toMatchObject({ available: '1034.5', held: '40', overage: '0' });
    expect((await t.get(`/v1/holds/${f.hold}`)).json().status).toBe('active');
    expect((await t.get(`/v1/grants/${f.voidedGrant}`)).json().status).toBe('voided');
    // The other workspace's key and the read key do work where they should.
    expect(
      (await t.get('/v1/customers', { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` })).statusCode,
    ).toBe(200);
    expect((await t.get('/v1/customers/acme', { authorization: `Bearer ${READ_KEY}` })).statusCode).toBe(200);
    expect(dumpDatabase(t)).not.toBeNull();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await snapshot();
    const url = typeof c.url === 'string' ? c.url : c.url(f);
    const headers: Record<string, string> = { ...(c.headers ?? {}) };
    if (c.authorization !== null) headers['authorization'] = c.authorization ?? `Bearer ${TEST_API_KEY}`;
    let payload: string | undefined;
    if (c.payload !== undefined) {
      payload = typeof c.payload === 'string' ? c.payload : JSON.stringify(c.payload);
      const contentType = c.contentType === undefined ? 'application/json' : c.contentType;
      if (contentType !== null) headers['content-type'] = contentType;
    }
    const res = await t.app.inject({
      method: c.method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
    });
    expectErrorEnvelope(res, c.status, c.code);
    const after = await snapshot();
    expect(after.api).toEqual(before.api);
    expect(after.db).toEqual(before.db);
  });

  it('details of an amount refusal name the field', async () => {
    const res = await t.post('/v1/customers/acme/debits', { amount: 25 });
    expectErrorEnvelope(res, 400, 'invalid_amount');
    expect(res.json().error.details).toMatchObject({ field: 'amount' });
  });

  it('402 insufficient_credits carries details.available and details.requested', async () => {
    const res = await t.post('/v1/customers/acme/debits', { amount: '1000000' });
    expectErrorEnvelope(res, 402, 'insufficient_credits');
    expect(res.json().error.details).toEqual({ available: '1034.5', requested: '1000000' });
  });

  it('an unknown route is a 404 in the envelope', async () => {
    expectErrorEnvelope(await t.get('/v1/nothing-here'), 404, 'not_found');
  });

  it('a customer id with every punctuation character docs/api.md allows works in paths', async () => {
    const id = 'org:acme.eu-1_x';
    expect((await t.post('/v1/customers', { id })).statusCode).toBe(201);
    const got = await t.get(`/v1/customers/${id}`);
    expect(got.statusCode, got.payload).toBe(200);
    expect(got.json().id).toBe(id);
    expect((await t.post(`/v1/customers/${id}/grants`, { amount: '3' })).statusCode).toBe(201);
    expect((await t.get(`/v1/customers/${id}/balance`)).json().available).toBe('3');
  });

  it('a customer id of 128 characters (the maximum docs/api.md allows) works in every path', async () => {
    const id = `c${'x'.repeat(127)}`;
    expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    const created = await t.post('/v1/customers', { id });
    expect(created.statusCode, created.payload).toBe(201);
    const calls: [string, () => Promise<LightMyRequestResponse>, number][] = [
      ['GET customer', () => t.get(`/v1/customers/${id}`), 200],
      ['POST grant', () => t.post(`/v1/customers/${id}/grants`, { amount: '10' }), 201],
      ['POST debit', () => t.post(`/v1/customers/${id}/debits`, { amount: '1' }), 201],
      ['POST hold', () => t.post(`/v1/customers/${id}/holds`, { amount: '1' }), 201],
      ['GET grants', () => t.get(`/v1/customers/${id}/grants`), 200],
      ['GET balance', () => t.get(`/v1/customers/${id}/balance`), 200],
      ['GET ledger', () => t.get(`/v1/customers/${id}/ledger`), 200],
    ];
    const failures: string[] = [];
    for (const [what, call, status] of calls) {
      const res = await call();
      if (res.statusCode !== status) failures.push(`${what}: ${res.statusCode} ${res.payload.slice(0, 120)}`);
    }
    expect(failures).toEqual([]);
  });

  describe('scopes and workspaces', () => {
    it('a read-scoped key may read but not write', async () => {
      const auth = { authorization: `Bearer ${READ_KEY}` };
      expect((await t.get('/v1/customers/acme', auth)).statusCode).toBe(200);
      expect((await t.get('/v1/customers/acme/grants', auth)).statusCode).toBe(200);
      expect((await t.get('/v1/customers/acme/ledger', auth)).statusCode).toBe(200);
      const before = await snapshot();
      const res = await t.post('/v1/customers/acme/debits', { amount: '1' }, auth);
      expectErrorEnvelope(res, 403, 'forbidden');
      expect(await snapshot()).toEqual(before);
    });

    it("another workspace sees 404 for the default workspace's customer, its grants, holds and ledger", async () => {
      const auth = { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` };
      for (const url of [
        '/v1/customers/acme',
        '/v1/customers/acme/grants',
        '/v1/customers/acme/balance',
        '/v1/customers/acme/ledger',
        `/v1/grants/${f.grant}`,
        `/v1/holds/${f.hold}`,
      ]) {
        expectErrorEnvelope(await t.get(url, auth), 404, 'not_found');
      }
      const list = (await t.get('/v1/customers', auth)).json();
      expect(list).toEqual({ data: [], next_cursor: null });
    });
  });
});
