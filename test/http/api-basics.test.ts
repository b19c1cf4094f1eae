import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { POSTGRES_URL } from '../contract/postgres.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely; assertions check them
type Body = Record<string, any>;

for (const dialect of DIALECTS) {
  describe(`customer updates, auto top-up removal, ledger order, 405s and enum messages (${dialect.name})`, () => {
    let t: TestApp;
    afterEach(async () => t?.close());

    const open = async () => {
      t = await createTestApp({ storage: await dialect.open() });
      return t;
    };
    const ok = async (res: Promise<{ statusCode: number; json(): unknown; body: string }>, status = 201) => {
      const r = await res;
      expect(r.statusCode, r.body).toBe(status);
      return r.json() as Body;
    };
    const patch = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      t.request({
        method: 'PATCH',
        url,
        headers: { 'content-type': 'application/json', ...headers },
        payload: JSON.stringify(body),
      });

    it('PATCH /v1/customers/{id}: fields left out are kept, name null clears, metadata is replaced whole', async () => {
      await open();
      await ok(
        t.post('/v1/customers', { id: 'acme', name: 'Acme', metadata: { tier: 'gold', region: 'eu' } }),
      );
      const renamed = await ok(patch('/v1/customers/acme', { name: 'Acme Inc.' }), 200);
      expect(renamed).toMatchObject({
        id: 'acme',
        name: 'Acme Inc.',
        metadata: { tier: 'gold', region: 'eu' },
      });
      const replaced = await ok(patch('/v1/customers/acme', { metadata: { tier: 'silver' } }), 200);
      expect(replaced).toMatchObject({ name: 'Acme Inc.', metadata: { tier: 'silver' } });
      expect(replaced.metadata).not.toHaveProperty('region');
      const cleared = await ok(patch('/v1/customers/acme', { name: null, metadata: {} }), 200);
      expect(cleared).toMatchObject({ name: null, metadata: {} });
      expect(cleared.created_at).toBe(renamed.created_at);
      // The change is what reads see (including cached reads), and the listing too.
      expect(await ok(t.get('/v1/customers/acme'), 200)).toEqual(cleared);
      expect((await ok(t.get('/v1/customers'), 200)).data).toEqual([cleared]);
      // An empty body, or none, changes nothing.
      expect(await ok(patch('/v1/customers/acme', {}), 200)).toEqual(cleared);
      expect(await ok(t.request({ method: 'PATCH', url: '/v1/customers/acme' }), 200)).toEqual(cleared);
    });

    it('PATCH /v1/customers/{id}: bad input is a 4xx with a stable code and changes nothing', async () => {
      await open();
      const created = await ok(t.post('/v1/customers', { id: 'acme', name: 'Acme', metadata: { a: 1 } }));
      const cases: [unknown, number, string][] = [
        [{ id: 'other' }, 400, 'invalid_request'],
        [{ name: 42 }, 400, 'invalid_request'],
        [{ name: 'x'.repeat(257) }, 400, 'invalid_request'],
        [{ metadata: 'tier=gold' }, 400, 'invalid_request'],
        [
          { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) },
          400,
          'invalid_request',
        ],
        [{ metadata: { big: 'x'.repeat(17_000) } }, 400, 'invalid_request'],
        [[], 400, 'invalid_request'],
      ];
      for (const [body, status, code] of cases) {
        const res = await patch('/v1/customers/acme', body);
        expect(res.statusCode, JSON.stringify(body).slice(0, 80)).toBe(status);
        expect(res.json().error.code).toBe(code);
      }
      const missing = await patch('/v1/customers/nobody', { name: 'x' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error).toMatchObject({
        code: 'not_found',
        details: { kind: 'customer', id: 'nobody' },
      });
      const badKey = await patch('/v1/customers/acme', { name: 'x' }, { 'idempotency-key': '\u0001' });
      expect(badKey.statusCode).toBe(400);
      const readOnly = await ok(t.post('/v1/api-keys', { scope: 'read' }));
      const forbidden = await patch(
        '/v1/customers/acme',
        { name: 'x' },
        { authorization: `Bearer ${readOnly.key}` },
      );
      expect(forbidden.statusCode).toBe(403);
      expect(await ok(t.get('/v1/customers/acme'), 200)).toEqual(created);
    });

    it('PATCH with an Idempotency-Key replays its first answer; another body under it is a 422', async () => {
      await open();
      await ok(t.post('/v1/customers', { id: 'acme', name: 'Acme' }));
      const first = await patch('/v1/customers/acme', { name: 'One' }, { 'idempotency-key': 'p-1' });
      expect(first.statusCode).toBe(200);
      await ok(patch('/v1/customers/acme', { name: 'Two' }), 200);
      const replay = await patch('/v1/customers/acme', { name: 'One' }, { 'idempotency-key': 'p-1' });
      expect(replay.statusCode).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json()).toEqual(first.json());
      expect((await ok(t.get('/v1/customers/acme'), 200)).name).toBe('Two');
      const reused = await patch('/v1/customers/acme', { name: 'Three' }, { 'idempotency-key': 'p-1' });
      expect(reused.statusCode).toBe(422);
    });

    it('DELETE /v1/customers/{id}/auto-top-up removes the rule: no later crossing buys', async () => {
      await open();
      await ok(t.post('/v1/customers', { id: 'acme' }));
      await ok(
        t.post('/v1/credit-packs', {
          id: 'small',
          credits: '100',
          price: { amount: '1.00', currency: 'USD' },
        }),
      );
      await ok(t.post('/v1/customers/acme/grants', { amount: '60' }));
      const put = await t.request({
        method: 'PUT',
        url: '/v1/customers/acme/auto-top-up',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ threshold: '50', pack_id: 'small' }),
      });
      expect(put.statusCode, put.body).toBe(200);
      const removed = await t.request({ method: 'DELETE', url: '/v1/customers/acme/auto-top-up' });
      expect(removed.statusCode, removed.body).toBe(204);
      expect(removed.body).toBe('');
      expect((await t.get('/v1/customers/acme/auto-top-up')).statusCode).toBe(404);
      // 60 → 40 crosses below 50: without the rule nothing is bought.
      await ok(t.post('/v1/customers/acme/debits', { amount: '20' }));
      expect((await ok(t.get('/v1/customers/acme/balance'), 200)).available).toBe('40');
      expect((await ok(t.get('/v1/customers/acme/purchases'), 200)).data).toEqual([]);
      // Removing again, or for an unknown customer, is a 404.
      const again = await t.request({ method: 'DELETE', url: '/v1/customers/acme/auto-top-up' });
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe('not_found');
      const nobody = await t.request({ method: 'DELETE', url: '/v1/customers/nobody/auto-top-up' });
      expect(nobody.statusCode).toBe(404);
      expect(nobody.json().error.details).toMatchObject({ kind: 'customer' });
    });

    it('GET …/ledger?order=desc lists newest first and pages through the same entries backwards', async () => {
      await open();
      await ok(t.post('/v1/customers', { id: 'acme' }));
      for (let i = 1; i <= 4; i++) {
        await ok(t.post('/v1/customers/acme/grants', { amount: String(i * 10) }));
        t.clock.advance(i % 2 === 0 ? 1000 : 0); // some entries share an instant
        await ok(t.post('/v1/customers/acme/debits', { amount: '1' }));
      }
      const asc = (await ok(t.get('/v1/customers/acme/ledger?limit=1000'), 200)).data as Body[];
      expect(asc).toHaveLength(8);
      const desc = (await ok(t.get('/v1/customers/acme/ledger?order=desc&limit=1000'), 200)).data as Body[];
      expect(desc.map((e) => e.id)).toEqual(asc.map((e) => e.id).reverse());
      expect((await ok(t.get('/v1/customers/acme/ledger?order=asc'), 200)).data).toEqual(asc);
      // Paging three at a time newest first visits every entry once, in order.
      const paged: Body[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor === null ? '' : `&cursor=${cursor}`;
        const page = await ok(t.get(`/v1/customers/acme/ledger?order=desc&limit=3${q}`), 200);
        paged.push(...page.data);
        cursor = page.next_cursor;
      } while (cursor !== null);
      expect(paged.map((e) => e.id)).toEqual(desc.map((e) => e.id));
      // A cursor resumes only in the order it came from.
      const descPage = await ok(t.get('/v1/customers/acme/ledger?order=desc&limit=3'), 200);
      const ascPage = await ok(t.get('/v1/customers/acme/ledger?limit=3'), 200);
      const mixed1 = await t.get(`/v1/customers/acme/ledger?cursor=${descPage.next_cursor}`);
      const mixed2 = await t.get(`/v1/customers/acme/ledger?order=desc&cursor=${ascPage.next_cursor}`);
      for (const res of [mixed1, mixed2]) {
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'invalid_request', details: { field: 'cursor' } });
      }
      const bad = await t.get('/v1/customers/acme/ledger?order=newest');
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error).toMatchObject({
        code: 'invalid_request',
        message: 'query parameter order must be one of: asc, desc',
        details: { field: 'order', location: 'querystring', allowed: ['asc', 'desc'] },
      });
    });

    it('a known path with a wrong method is a 405 with Allow; an unknown path stays a 404', async () => {
      await open();
      const wrong = await t.request({ method: 'DELETE', url: '/v1/customers' });
      expect(wrong.statusCode).toBe(405);
      expect(wrong.headers.allow).toBe('GET, HEAD, POST');
      expect(wrong.json().error).toMatchObject({
        code: 'method_not_allowed',
        details: { method: 'DELETE', allow: ['GET', 'HEAD', 'POST'] },
      });
      const param = await t.request({ method: 'PUT', url: '/v1/customers/acme?x=1' });
      expect(param.statusCode).toBe(405);
      expect(param.headers.allow).toBe('GET, HEAD, PATCH');
      const holdCapture = await t.request({ method: 'GET', url: '/v1/holds/h_1/capture' });
      expect(holdCapture.statusCode).toBe(405);
      expect(holdCapture.headers.allow).toBe('POST');
      for (const url of ['/v1/nothing', '/v1/customers/acme/nothing', '/v1/holds/h_1/capture/more']) {
        const res = await t.request({ method: 'GET', url });
        expect(res.statusCode, url).toBe(404);
        expect(res.json().error.code).toBe('not_found');
      }
    });

    it('a value outside an enumeration names the allowed values', async () => {
      await open();
      await ok(t.post('/v1/customers', { id: 'acme' }));
      const feature = await t.post('/v1/features', { id: 'f', type: 'gadget' });
      expect(feature.statusCode).toBe(400);
      expect(feature.json().error).toMatchObject({
        code: 'invalid_request',
        message: 'field type must be one of: boolean, metered, config',
        details: { field: 'type', location: 'body', allowed: ['boolean', 'metered', 'config'] },
      });
      const grants = await t.get('/v1/customers/acme/grants?status=gone');
      expect(grants.statusCode).toBe(400);
      expect(grants.json().error.message).toMatch(/^query parameter status must be one of: /);
      expect(grants.json().error.details.allowed.length).toBeGreaterThan(1);
      // A value of the wrong type in an enumerated field names the values too.
      const numeric = await t.get('/v1/customers/acme/ledger?order=1');
      expect(numeric.json().error.details.allowed).toEqual(['asc', 'desc']);
    });
  });
}

describe('PATCH /v1/customers/{id} across PostgreSQL processes', () => {
  it("starts from the stored customer, not from another process's cached copy", async () => {
    const url = POSTGRES_URL ?? '';
    const schema = `bd_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const a = await createTestApp({
      storage: await PostgresStorage.open({ connectionString: url, schema, poolSize: 2 }),
    });
    const b = await createTestApp({
      storage: await PostgresStorage.open({ connectionString: url, schema, poolSize: 2 }),
    });
    try {
      const patch = (app: TestApp, body: unknown) =>
        app.request({
          method: 'PATCH',
          url: '/v1/customers/acme',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
      expect((await a.post('/v1/customers', { id: 'acme', name: 'Acme' })).statusCode).toBe(201);
      // Process A has the customer in its write cache (a write for it looked it up).
      expect((await a.post('/v1/customers/acme/grants', { amount: '1' })).statusCode).toBe(201);
      expect((await patch(b, { name: 'Renamed in B' })).statusCode).toBe(200);
      const res = await patch(a, { metadata: { from: 'A' } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ name: 'Renamed in B', metadata: { from: 'A' } });
      expect((await b.get('/v1/customers/acme')).json()).toMatchObject({
        name: 'Renamed in B',
        metadata: { from: 'A' },
      });
    } finally {
      await a.close();
      await b.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});
