import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

describe('OpenAPI document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('documents every public route of docs/api.md, with the schemas that validate it', async () => {
    const res = await t.get('/openapi.json', { authorization: '' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    for (const expected of [
      'POST /v1/customers',
      'GET /v1/customers/{id}',
      'GET /v1/customers',
      'POST /v1/credit-types',
      'POST /v1/customers/{id}/grants',
      'GET /v1/customers/{id}/grants',
      'GET /v1/grants/{grant_id}',
      'POST /v1/grants/{grant_id}/void',
      'POST /v1/customers/{id}/debits',
      'POST /v1/customers/{id}/holds',
      'POST /v1/holds/{hold_id}/capture',
      'POST /v1/holds/{hold_id}/release',
      'GET /v1/customers/{id}/balance',
      'GET /v1/customers/{id}/balance-series',
      'GET /v1/customers/{id}/ledger',
      'POST /v1/events',
      'GET /v1/events',
      'POST /v1/events/{id}/reverse',
      'POST /v1/debits/{id}/reverse',
      'POST /v1/meters',
      'GET /v1/meters/{id}/usage',
      'POST /v1/rates',
      'POST /v1/quote',
    ]) {
      expect(operations).toContain(expected);
    }
    // Amounts are documented as decimal strings, the same schema that refuses JSON numbers.
    const debit = doc.paths['/v1/customers/{id}/debits'].post;
    // Bodies are named component schemas; amounts the shared `Amount` schema.
    const ref = (s: { $ref?: string }) => (s.$ref ? doc.components.schemas[s.$ref.split('/').pop()!] : s);
    const body = ref(debit.requestBody.content['application/json'].schema);
    const amount = ref(body.properties.amount);
    expect(amount.type).toBe('string');
    expect(debit.responses['402']).toBeDefined();
  });
});
