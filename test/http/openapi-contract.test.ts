import { validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/domain/errors.js';
import { routesOf } from '../../src/http/app.js';
import { statusOfErrorCode } from '../../src/http/error-status.js';
import { openapiPath, ROUTE_ERRORS } from '../../src/http/openapi.js';
import { documentedCodes, expectObservedErrorsDocumented } from '../fixtures/documented-errors.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

type Json = Record<string, unknown>;

describe('OpenAPI 3.1 document as the contract', () => {
  let t: TestApp;
  let doc: Json;
  beforeAll(async () => {
    t = await createTestApp();
    const res = await t.get('/openapi.json', { authorization: '' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(async () => {
    if (t) await expectObservedErrorsDocumented(t.app);
    await t?.close();
  });

  const operations = () =>
    Object.entries(doc['paths'] as Record<string, Json>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op: op as Json })),
    );

  it('validates with a third-party OpenAPI 3.1 validator', async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the server registers, and nothing else', () => {
    const registered = routesOf(t.app)
      .filter((r) => r.method !== 'HEAD')
      .map((r) => `${r.method} ${openapiPath(r.url)}`)
      .sort();
    const documented = operations()
      .map((o) => `${o.method} ${o.path}`)
      .sort();
    expect(registered.length).toBeGreaterThan(50);
    expect(documented).toEqual(registered);
    // The per-operation error table names exactly the routes.
    expect(Object.keys(ROUTE_ERRORS).sort()).toEqual(registered);
  });

  it('has a description, servers, tags, a security scheme and named component schemas', () => {
    const info = doc['info'] as Json;
    expect(String(info['description']).length).toBeGreaterThan(200);
    expect((doc['servers'] as Json[]).length).toBeGreaterThan(0);
    expect(doc['security']).toEqual([{ bearer: [] }]);
    const components = doc['components'] as Json;
    expect((components['securitySchemes'] as Json)['bearer']).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    const schemas = Object.keys(components['schemas'] as Json);
    for (const name of [
      'Customer',
      'Grant',
      'Debit',
      'Hold',
      'Balance',
      'LedgerEntry',
      'Event',
      'EventInput',
      'CloudEvent',
      'Meter',
      'Rate',
      'Plan',
      'Subscription',
      'CreditPack',
      'Purchase',
      'CheckResult',
      'Error',
      'Amount',
    ]) {
      expect(schemas).toContain(name);
    }
    const tags = new Set((doc['tags'] as Json[]).map((t) => t['name']));
    for (const { method, path, op } of operations()) {
      expect(op['operationId'], `${method} ${path}`).toBeTypeOf('string');
      expect((op['tags'] as string[] | undefined)?.length, `${method} ${path} has a tag`).toBeGreaterThan(0);
      for (const tag of op['tags'] as string[]) expect(tags.has(tag), `tag ${tag} is declared`).toBe(true);
      expect(op['summary'], `${method} ${path} has a summary`).toBeTypeOf('string');
    }
    // Responses refer to the named schemas.
    const grant = (doc['paths'] as Json)['/v1/customers/{id}/grants'] as Json;
    expect(JSON.stringify((grant['post'] as Json)['responses'])).toContain('#/components/schemas/Grant');
  });

  it('every write takes Idempotency-Key, and every body has a schema and an example', () => {
    for (const { method, path, op } of operations()) {
      const params = (op['parameters'] ?? []) as Json[];
      const hasKey = params.some(
        (p) => p['in'] === 'header' && String(p['name']).toLowerCase() === 'idempotency-key',
      );
      expect(hasKey, `${method} ${path} documents Idempotency-Key`).toBe(method !== 'GET');
      const body = op['requestBody'] as Json | undefined;
      if (body) {
        for (const [media, content] of Object.entries(body['content'] as Json)) {
          expect((content as Json)['schema'], `${method} ${path} ${media} schema`).toBeDefined();
        }
      }
      // An example on every operation: its request body's, or those of its answers.
      const text = JSON.stringify(op);
      expect(
        text.includes('"example"') || text.includes('"examples"'),
        `${method} ${path} has examples`,
      ).toBe(true);
    }
    const events = ((doc['paths'] as Json)['/v1/events'] as Json)['post'] as Json;
    const media = Object.keys((events['requestBody'] as Json)['content'] as Json);
    expect(media).toEqual([
      'application/json',
      'application/cloudevents+json',
      'application/cloudevents-batch+json',
    ]);
    const headers = ((events['parameters'] ?? []) as Json[]).map((p) => p['name']);
    expect(headers).toEqual(
      expect.arrayContaining(['ce-id', 'ce-source', 'ce-type', 'ce-subject', 'ce-specversion']),
    );
  });

  it('every code of the error catalogue is documented by at least one operation, under its status', () => {
    const ops = operations();
    for (const code of Object.values(ErrorCode)) {
      const status = statusOfErrorCode(code);
      const listed = ops.filter((o) => documentedCodes(doc, o.method, o.path, status)?.includes(code));
      expect(listed.length, `${code} (${status}) is listed by some operation`).toBeGreaterThan(0);
    }
    // Each error status of each operation lists only codes of that status.
    for (const { method, path, op } of ops) {
      for (const status of Object.keys(op['responses'] as Json).map(Number)) {
        if (status < 400) continue;
        const codes = documentedCodes(doc, method, path, status) ?? [];
        expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        for (const code of codes) expect(statusOfErrorCode(code as ErrorCode)).toBe(status);
      }
    }
    // Every operation a key authenticates documents 401 (unknown or expired key), 403 and 429; every
    // write 409 request_in_progress and 422. Public operations (no API key: Stripe's webhook, the
    // license-key routes, the JWKS, the portal's code exchange) and the portal's cookie routes list
    // only the 401/403 codes they answer themselves.
    for (const { method, path, op } of ops) {
      if (path === '/healthz' || path === '/openapi.json') continue;
      const isPublic = Array.isArray(op['security']) && (op['security'] as unknown[]).length === 0;
      if (!isPublic && !path.startsWith('/v1/portal/')) {
        expect(documentedCodes(doc, method, path, 401), `${method} ${path}`).toEqual([
          'unauthorized',
          'api_key_expired',
        ]);
        expect(documentedCodes(doc, method, path, 403), `${method} ${path}`).toEqual(['forbidden']);
        expect(documentedCodes(doc, method, path, 429), `${method} ${path}`).toEqual(['rate_limited']);
      }
      if (method !== 'GET') {
        expect(documentedCodes(doc, method, path, 409)).toContain('request_in_progress');
        expect(documentedCodes(doc, method, path, 422)).toContain('idempotency_key_reused');
      }
    }
  });

  it('the codes real error paths answer are in the enum of their operation (checked after the file)', async () => {
    // A spread of refusals across the groups; afterAll checks every answer against the document.
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      t.post(url, body, headers);
    await post('/v1/customers', { id: 'acme' });
    expect((await post('/v1/customers', { id: 'acme' })).statusCode).toBe(409);
    expect((await t.get('/v1/customers/nobody')).statusCode).toBe(404);
    expect((await post('/v1/customers/acme/debits', { amount: 5 })).statusCode).toBe(400);
    expect((await post('/v1/customers/acme/debits', { amount: '5' })).statusCode).toBe(402);
    expect((await post('/v1/customers/acme/holds', { amount: '5' })).statusCode).toBe(402);
    expect((await post('/v1/customers/acme/grants', { amount: '10' })).statusCode).toBe(201);
    const hold = (await post('/v1/customers/acme/holds', { amount: '5' })).json() as { id: string };
    expect((await post(`/v1/holds/${hold.id}/release`, {})).statusCode).toBe(200);
    expect((await post(`/v1/holds/${hold.id}/release`, {})).statusCode).toBe(409);
    expect((await post(`/v1/holds/${hold.id}/capture`, {})).statusCode).toBe(409);
    const debit = (await post('/v1/customers/acme/debits', { amount: '1' })).json() as { id: string };
    expect((await post(`/v1/debits/${debit.id}/reverse`, { amount: '2', reason: 'x' })).statusCode).toBe(409);
    expect((await post(`/v1/debits/${debit.id}/reverse`, { reason: 'x' })).statusCode).toBe(201);
    expect((await post(`/v1/debits/${debit.id}/reverse`, { reason: 'x' })).statusCode).toBe(409);
    expect((await post('/v1/customers/acme/grants', { amount: '1'.repeat(20) })).statusCode).toBe(201);
    expect(
      (await post('/v1/customers/acme/grants', { amount: '9'.repeat(20) })).statusCode,
    ).toBeGreaterThanOrEqual(201);
    const key = { 'idempotency-key': 'k-1' };
    await post('/v1/customers', { id: 'beta' }, key);
    expect((await post('/v1/customers', { id: 'gamma' }, key)).statusCode).toBe(422);
    expect((await post('/v1/events', [{ id: 'e', type: 't' }])).statusCode).toBe(400);
    expect(
      (
        await t.request({
          method: 'POST',
          url: '/v1/customers',
          headers: { 'content-type': 'text/plain' },
          payload: 'x',
        })
      ).statusCode,
    ).toBe(415);
    expect((await t.get('/v1/customers', { authorization: 'Bearer nope-nope-nope-nope' })).statusCode).toBe(
      401,
    );
    expect((await t.request({ method: 'DELETE', url: '/v1/customers' })).statusCode).toBe(405);
    expect(
      (
        await post('/v1/plans', {
          id: 'p',
          name: 'P',
          entitlements: [{ feature_id: 'nope' }],
          allowances: [],
        })
      ).statusCode,
    ).toBe(404);
    expect((await post('/v1/check', { customer_id: 'acme', feature_id: 'nope' })).statusCode).toBe(404);
  });
});
