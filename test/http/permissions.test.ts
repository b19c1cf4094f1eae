import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routesOf } from '../../src/http/app.js';
import { openapiPath } from '../../src/http/openapi.js';
import { OPERATION_PERMISSIONS, PUBLIC_OPERATIONS } from '../../src/http/permissions.js';
import type { ApiKeyScope } from '../../src/ports/storage.js';
import {
  INSTALLATION_PERMISSIONS,
  PERMISSIONS,
  type Permission,
  SCOPE_PRESETS,
} from '../../src/services/permissions.js';
import { expectObservedErrorsDocumented } from '../fixtures/documented-errors.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/**
 * Isolation and permissions, table-driven over the OpenAPI document: every operation it lists
 * must declare a permission; a key of another workspace gets 404 on this workspace's objects; a
 * key lacking the permission gets 403; and each scope preset allows exactly what the scope did.
 */

type Json = Record<string, unknown>;
const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The first `examples[0]` or `example` found in a JSON value (refs into components resolved). */
function exampleIn(node: unknown, doc: Json, depth = 0): unknown {
  if (depth > 8 || node === null || typeof node !== 'object') return undefined;
  const n = node as Json;
  if (Array.isArray(n['examples']) && n['examples'].length > 0) return n['examples'][0];
  if (n['example'] !== undefined) return n['example'];
  if (typeof n['$ref'] === 'string') {
    const name = (n['$ref'] as string).split('/').pop()!;
    return exampleIn(((doc['components'] as Json)['schemas'] as Json)[name], doc, depth + 1);
  }
  for (const v of Object.values(n)) {
    const found = exampleIn(v, doc, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

describe('permissions and workspace isolation over the OpenAPI document', () => {
  let t: TestApp;
  let doc: Json;
  let otherAdminKey: string;
  const ids: Record<string, string> = {};
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    t = await createTestApp();
    doc = (await t.get('/openapi.json', { authorization: '' })).json();
    const ok = async (res: Promise<LightMyRequestResponse>) => {
      const r = await res;
      expect(r.statusCode, r.body).toBeLessThan(300);
      return r.json();
    };
    // This workspace ("default") holds one object of every kind, named as the document's examples name them.
    await ok(t.post('/v1/customers', { id: 'acme' }));
    await ok(t.post('/v1/credit-types', { id: 'gpu-seconds' }));
    ids['grants'] = (await ok(t.post('/v1/customers/acme/grants', { amount: '1000' }))).id;
    ids['debits'] = (await ok(t.post('/v1/customers/acme/debits', { amount: '1' }))).id;
    ids['holds'] = (await ok(t.post('/v1/customers/acme/holds', { amount: '1' }))).id;
    await ok(t.post('/v1/meters', exampleOf('POST', '/v1/meters')));
    await ok(t.post('/v1/rates', exampleOf('POST', '/v1/rates')));
    await ok(t.post('/v1/events', exampleOf('POST', '/v1/events')));
    await ok(t.post('/v1/features', exampleOf('POST', '/v1/features')));
    await ok(t.post('/v1/plans', exampleOf('POST', '/v1/plans')));
    await ok(t.post('/v1/credit-packs', exampleOf('POST', '/v1/credit-packs')));
    ids['subscriptions'] = (await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }))).id;
    ids['api-keys'] = (await ok(t.post('/v1/api-keys', { scope: 'read' }))).id;
    // Another workspace, with an admin key holding every workspace permission.
    const created = await ok(t.post('/v1/workspaces', { id: 'other', name: 'Other' }));
    otherAdminKey = created.admin_key.key;
  });
  afterAll(async () => {
    if (t) await expectObservedErrorsDocumented(t.app);
    await t?.close();
  });

  function operations(): { method: string; path: string; op: Json }[] {
    const out: { method: string; path: string; op: Json }[] = [];
    for (const [path, item] of Object.entries(doc['paths'] as Json)) {
      for (const [method, op] of Object.entries(item as Json)) {
        out.push({ method: method.toUpperCase(), path, op: op as Json });
      }
    }
    return out;
  }

  /** The request example the document gives an operation's JSON body (`example` or the first of `examples`). */
  function exampleOf(method: string, path: string): unknown {
    const op = ((doc['paths'] as Json)[path] as Json)[method.toLowerCase()] as Json;
    const media = (((op['requestBody'] as Json | undefined)?.['content'] as Json | undefined)?.[
      'application/json'
    ] ?? {}) as Json;
    if (media['example'] !== undefined) return media['example'];
    const named = media['examples'] as Record<string, { value: unknown }> | undefined;
    if (named !== undefined) return Object.values(named)[0]?.value;
    return exampleIn(media['schema'], doc);
  }

  /** A concrete URL for an operation: path parameters name this workspace's objects. */
  function urlOf(path: string, op: Json): string {
    const byCollection: Record<string, string> = {
      customers: 'acme',
      grants: ids['grants']!,
      debits: ids['debits']!,
      holds: ids['holds']!,
      events: 'evt-123',
      meters: 'tokens',
      rates: 'gpt-x-output',
      features: 'chat',
      plans: 'pro',
      'credit-packs': 'pack-10k',
      subscriptions: ids['subscriptions']!,
      'api-keys': ids['api-keys']!,
      workspaces: 'default',
    };
    const collection = path.split('/')[2] ?? '';
    const url = path.replace(/\{[^}]+\}/g, () => encodeURIComponent(byCollection[collection] ?? 'x'));
    // Required query parameters get plausible values.
    const query = ((op['parameters'] ?? []) as Json[])
      .filter((p) => p['in'] === 'query' && p['required'] === true)
      .map((p) => {
        const name = String(p['name']);
        const schema = (p['schema'] ?? {}) as Json;
        const allowed =
          (schema['enum'] as unknown[] | undefined)?.[0] ??
          schema['const'] ??
          ((schema['anyOf'] as Json[] | undefined)?.[0]?.['const'] as unknown) ??
          ((schema['anyOf'] as Json[] | undefined)?.[0]?.['enum'] as unknown[] | undefined)?.[0];
        const value =
          allowed !== undefined
            ? String(allowed)
            : schema['format'] === 'date-time'
              ? '2025-01-01T00:00:00Z'
              : 'x';
        return `${name}=${encodeURIComponent(value)}`;
      });
    return query.length > 0 ? `${url}?${query.join('&')}` : url;
  }

  async function call(method: string, path: string, op: Json, key: string) {
    const body = WRITE.has(method) ? (exampleOf(method, path) ?? {}) : undefined;
    return t.request({
      method: method as 'GET',
      url: urlOf(path, op),
      headers: { ...as(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  }

  it('every operation of the document declares its permission in one place', () => {
    const missing = operations()
      .map(({ method, path }) => `${method} ${path}`)
      .filter((key) => !PUBLIC_OPERATIONS.has(key) && OPERATION_PERMISSIONS[key] === undefined);
    expect(
      missing,
      missing
        .map(
          (key) =>
            `add '${key}': '<resource>:<action>' (one of ${PERMISSIONS.join(', ')}) to OPERATION_PERMISSIONS in src/http/permissions.ts`,
        )
        .join('\n'),
    ).toEqual([]);
    // And nothing declared is stale.
    const documented = new Set(operations().map(({ method, path }) => `${method} ${path}`));
    expect(Object.keys(OPERATION_PERMISSIONS).filter((k) => !documented.has(k))).toEqual([]);
  });

  it('each scope preset allows exactly the operations its scope allowed before permissions', () => {
    const scopeAllowed = (scope: ApiKeyScope, required: ApiKeyScope | 'balance'): boolean => {
      switch (required) {
        case 'admin':
          return scope === 'admin';
        case 'write':
          return scope === 'admin' || scope === 'write';
        case 'check':
          return scope !== 'read';
        case 'read':
          return scope !== 'check';
        case 'balance':
          return true;
      }
    };
    for (const route of routesOf(t.app)) {
      if (route.method === 'HEAD' || route.scope === null) continue;
      const key = `${route.method} ${openapiPath(route.url)}`;
      const permission = OPERATION_PERMISSIONS[key];
      expect(permission, key).toBeDefined();
      if (INSTALLATION_PERMISSIONS.has(permission!)) continue;
      for (const scope of ['admin', 'write', 'read', 'check'] as const) {
        expect(SCOPE_PRESETS[scope].includes(permission!), `${scope} key on ${key} (${permission})`).toBe(
          scopeAllowed(scope, route.scope),
        );
      }
    }
  });

  it('a key lacking the permission gets 403 on every operation', async () => {
    const lacking = new Map<Permission, string>();
    const keyLacking = async (p: Permission): Promise<string> => {
      let key = lacking.get(p);
      if (key === undefined) {
        const permissions = SCOPE_PRESETS.admin.filter((x) => x !== p);
        const res = await t.post('/v1/api-keys', { permissions, name: `lacks ${p}` });
        expect(res.statusCode, res.body).toBe(201);
        key = res.json().key as string;
        lacking.set(p, key);
      }
      return key;
    };
    for (const { method, path, op } of operations()) {
      const permission = OPERATION_PERMISSIONS[`${method} ${path}`];
      if (permission === undefined) continue;
      const res = await call(method, path, op, await keyLacking(permission));
      expect([res.statusCode, res.json().error?.code], `${method} ${path}`).toEqual([403, 'forbidden']);
      expect(res.json().error.details.required, `${method} ${path}`).toBe(permission);
    }
  });

  it("a key of another workspace gets 404 on this workspace's objects, and nothing crosses", async () => {
    const before = (await t.get('/v1/audit-log?limit=1000')).json().data.length;
    const balanceBefore = (await t.get('/v1/customers/acme/balance')).body;
    const ops = operations().filter(
      ({ method, path }) =>
        OPERATION_PERMISSIONS[`${method} ${path}`] !== undefined &&
        !INSTALLATION_PERMISSIONS.has(OPERATION_PERMISSIONS[`${method} ${path}`]!),
    );
    // Operations naming an object in their path first (404), while the other workspace is empty.
    for (const { method, path, op } of ops.filter((o) => o.path.includes('{'))) {
      const res = await call(method, path, op, otherAdminKey);
      expect([res.statusCode, res.json().error?.code], `${method} ${urlOf(path, op)}: ${res.body}`).toEqual([
        404,
        'not_found',
      ]);
    }
    // Lists and reads without a path parameter see none of this workspace's objects.
    const markers = ['acme', 'tokens', 'gpt-x-output', 'chat', 'pack-10k', ids['grants']!, ids['api-keys']!];
    for (const { method, path, op } of ops.filter((o) => !o.path.includes('{') && o.method === 'GET')) {
      const res = await call(method, path, op, otherAdminKey);
      expect(res.statusCode, `${method} ${path}: ${res.body}`).toBeLessThan(500);
      if (path === '/metrics') continue; // process-wide counters, no objects
      for (const marker of markers) expect(res.body, `${method} ${path}`).not.toContain(marker);
    }
    // Writes without a path parameter that name this workspace's objects in their body find none.
    for (const path of ['/v1/check', '/v1/quote', '/v1/backfills']) {
      const res = await call('POST', path, {}, otherAdminKey);
      expect(res.statusCode, `POST ${path}: ${res.body}`).toBe(404);
    }
    // This workspace did not change: same balance, no audit record from the other workspace's writes.
    expect((await t.get('/v1/customers/acme/balance')).body).toBe(balanceBefore);
    expect((await t.get('/v1/audit-log?limit=1000')).json().data.length).toBe(before);
  });
});
