import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../contract/postgres.js';
import { verifyStandardWebhook, WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { ServerProcess } from './server-process.js';

/**
 * Webhooks through real server processes and real time: a receiver that is down across a SIGKILL
 * and restart still gets every event (the state is in the database), and two processes on one
 * PostgreSQL database deliver each attempt exactly once.
 */
const WEBHOOK_ENV = { BURNDOWN_WEBHOOKS_ALLOW_PRIVATE: '1', BURNDOWN_WEBHOOK_INTERVAL_MS: '50' };

async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 40_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('webhooks across processes', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('a receiver down across a SIGKILL and restart gets every event, signed, on the retry schedule', async () => {
    // Reserve a port, then close it: the receiver is down at first.
    const probe = await WebhookReceiver.start();
    const port = probe.port;
    await probe.close();
    const server = await ServerProcess.start(WEBHOOK_ENV);
    cleanups.push(() => server.cleanup());
    await server.post('/v1/customers', { id: 'acme' });
    const endpoint = (await server.post('/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/hooks` }))
      .body;
    expect(endpoint.secret).toMatch(/^whsec_/);
    const grants: string[] = [];
    for (let i = 1; i <= 5; i++)
      grants.push((await server.post('/v1/customers/acme/grants', { amount: String(i) })).body.id);
    // The first event's first attempt fails (connection refused); the customer's later events wait behind it.
    await waitFor('a failed first attempt', async () => {
      const attempts = (await server.get(`/v1/webhook-endpoints/${endpoint.id}/attempts`)).body.data;
      return attempts.length >= 1;
    });
    await server.kill('SIGKILL');
    const receiver = await WebhookReceiver.start(port);
    cleanups.push(() => receiver.close());
    await server.restart();
    await waitFor(
      'every event',
      () => new Set(receiver.received.map((r) => r.headers['webhook-id'])).size >= 5,
    );
    const payloads = receiver.received.map((r) => verifyStandardWebhook(endpoint.secret, r));
    expect(payloads.map((p) => (p.data as { grant_id: string }).grant_id)).toEqual(grants);
    const attempts = (await server.get(`/v1/webhook-endpoints/${endpoint.id}/attempts`)).body.data as {
      event_id: string;
      attempt: number;
      attempted_at: string;
      status_code: number | null;
      outcome: string;
    }[];
    const first = attempts.filter((a) => a.event_id === receiver.received[0]!.headers['webhook-id']);
    expect(first.map((a) => [a.attempt, a.status_code, a.outcome])).toEqual([
      [1, null, 'retry'],
      [2, 204, 'delivered'],
    ]);
    // The retry came no earlier than the schedule's 5 s (less 10 % jitter).
    expect(Date.parse(first[1]!.attempted_at) - Date.parse(first[0]!.attempted_at)).toBeGreaterThanOrEqual(
      4_500,
    );
    expect(attempts.filter((a) => a.outcome === 'delivered')).toHaveLength(5);
  }, 90_000);

  it('two processes on one PostgreSQL database: each attempt of each event is sent exactly once', async () => {
    const name = `bd_wh_${randomBytes(5).toString('hex')}`;
    const admin = async (sql: string) => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await admin(`CREATE DATABASE ${name}`);
    cleanups.push(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    // One after the other (the first migrates): startup on a loaded machine stays within its bound.
    const servers: ServerProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const server = await ServerProcess.startOn(url.toString(), WEBHOOK_ENV);
      cleanups.push(() => server.cleanup());
      servers.push(server);
    }
    const receiver = await WebhookReceiver.start();
    cleanups.push(() => receiver.close());
    // Every event's first attempt fails, the second succeeds: two attempts each, never more.
    const seen = new Map<string, number>();
    receiver.answer = (request) => {
      const id = String(request.headers['webhook-id']);
      seen.set(id, (seen.get(id) ?? 0) + 1);
      return { status: seen.get(id) === 1 ? 503 : 200 };
    };
    const endpoint = (await servers[0]!.post('/v1/webhook-endpoints', { url: receiver.url })).body;
    const customers = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await Promise.all(customers.map((id, i) => servers[i % 2]!.post('/v1/customers', { id })));
    await Promise.all(
      customers.flatMap((id, i) =>
        [1, 2].map((n) => servers[(i + n) % 2]!.post(`/v1/customers/${id}/grants`, { amount: String(n) })),
      ),
    );
    const events = customers.length * 2;
    await waitFor(
      'every event delivered',
      () => [...seen.values()].filter((n) => n >= 2).length >= events,
      60_000,
    );
    // Let any duplicate show itself.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(seen.size).toBe(events);
    expect([...seen.values()].every((n) => n === 2)).toBe(true);
    for (const request of receiver.received) verifyStandardWebhook(endpoint.secret, request);
    const attempts = (await servers[1]!.get(`/v1/webhook-endpoints/${endpoint.id}/attempts?limit=1000`)).body
      .data as {
      event_id: string;
      attempt: number;
    }[];
    expect(attempts).toHaveLength(events * 2);
    const keys = new Set(attempts.map((a) => `${a.event_id}#${a.attempt}`));
    expect(keys.size).toBe(events * 2);
  }, 120_000);
});
