import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_API_KEY, ServerProcess } from './server-process.js';

/*
 * API-key revocation across server processes on one PostgreSQL database (hardening issue, items
 * 7 and 12): refused at once by the process that revoked, within 1 s by the others (their cache
 * trusts a usable key for 500 ms); a revoked admin key cannot mint a key once the revocation was
 * answered; a process started with a new BURNDOWN_API_KEY revokes the key the old value created.
 */
const POSTGRES_URL = process.env['BURNDOWN_TEST_POSTGRES_URL'];

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('PostgreSQL: key revocation across processes', () => {
  let databaseName = '';
  let databaseUrl = '';
  let servers: ServerProcess[] = [];
  beforeAll(async () => {
    databaseName = `bd_keys_${randomBytes(5).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${databaseName}`));
    const url = new URL(POSTGRES_URL!);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
    servers = await Promise.all([ServerProcess.startOn(databaseUrl), ServerProcess.startOn(databaseUrl)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.cleanup()));
    if (databaseName) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
  });

  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  /** Polls until the key is refused; returns how long that took after `since`. */
  async function refusedAfter(server: ServerProcess, key: string, since: number): Promise<number> {
    for (;;) {
      const res = await server.get('/v1/customers', as(key));
      if (res.status === 401) return Date.now() - since;
      expect(res.status).toBe(200);
      if (Date.now() - since > 5000) throw new Error('still accepted after 5 s');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('a revoked key is refused at once where revoked, within 1 s elsewhere', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const { id, key } = (await a.post('/v1/api-keys', { scope: 'read' })).body;
    expect((await a.get('/v1/customers', as(key))).status).toBe(200);
    expect((await b.get('/v1/customers', as(key))).status).toBe(200);
    expect((await a.post(`/v1/api-keys/${id}/revoke`)).status).toBe(200);
    const answered = Date.now();
    expect((await a.get('/v1/customers', as(key))).status).toBe(401);
    expect(await refusedAfter(b, key, answered)).toBeLessThan(1000);
  });

  it('a revoked admin key cannot mint a key on another process right after', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const doomed = (await a.post('/v1/api-keys', { scope: 'admin' })).body;
    expect((await b.get('/v1/api-keys', as(doomed.key))).status).toBe(200); // cached on b
    expect((await a.post(`/v1/api-keys/${doomed.id}/revoke`)).status).toBe(200);
    const minted = await b.post('/v1/api-keys', { scope: 'admin' }, as(doomed.key));
    expect([minted.status, minted.body.error.code]).toEqual([401, 'unauthorized']);
  });

  it('a process started with a new BURNDOWN_API_KEY revokes the old one everywhere', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const rotated = 'rotated-e2e-admin-key-0123456789';
    const c = await ServerProcess.startOn(databaseUrl, { BURNDOWN_API_KEY: rotated });
    servers.push(c);
    const started = Date.now();
    expect((await c.get('/v1/customers', as(E2E_API_KEY))).status).toBe(401);
    expect((await c.get('/v1/customers', as(rotated))).status).toBe(200);
    expect(await refusedAfter(a, E2E_API_KEY, started)).toBeLessThan(1000);
    expect(await refusedAfter(b, E2E_API_KEY, started)).toBeLessThan(1000);
    expect((await a.get('/v1/customers', as(rotated))).status).toBe(200);
  });
});
