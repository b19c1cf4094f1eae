import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpWebhookTransport } from '../../src/infra/webhook-transport.js';
import { DEFAULT_SECRET_OVERLAP_MS } from '../../src/services/webhook-endpoints.js';
import { expectObservedErrorsDocumented } from '../fixtures/documented-errors.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/**
 * The wire format of list cursors is a compatibility promise: clients store `next_cursor` strings
 * and send them back later, possibly to a newer server. A cursor is the base64url of the JSON
 * array of the sort key of the last item sent (docs/api.md "Lists"). These tests pin that format
 * for the listings whose paging moved to the storage port's one page type, both ways: what the
 * server hands out, and that a cursor built the documented way (as an older server made it) resumes.
 */

const cursorOf = (key: readonly string[]) => Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');

type ListBody = { data: Record<string, unknown>[]; next_cursor: string | null };

describe('list cursors keep their wire format', () => {
  let t: TestApp;

  beforeEach(async () => {
    // Endpoints on a private address are accepted (nothing is sent: no dispatcher runs here).
    const transport = new HttpWebhookTransport({ allowPrivate: true });
    t = await createTestApp({ webhooks: { transport, secretOverlapMs: DEFAULT_SECRET_OVERLAP_MS } });
  });
  afterEach(async () => {
    await t.close();
  });

  const ok = async (res: ReturnType<TestApp['post']>, status = 201) => {
    const r = await res;
    expect(r.statusCode, r.body).toBe(status);
    return r.json() as Record<string, unknown>;
  };

  const list = async (url: string): Promise<ListBody> => {
    const res = await t.get(url);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as ListBody;
  };

  /**
   * Walks a listing one item at a time. Each `next_cursor` must be exactly the documented encoding
   * of `keyOf(last item)`; and a cursor built from that key by hand must give the same next page.
   */
  async function walk(url: string, keyOf: (item: Record<string, unknown>) => string[]): Promise<unknown[]> {
    const sep = url.includes('?') ? '&' : '?';
    const seen: Record<string, unknown>[] = [];
    let page = await list(`${url}${sep}limit=1`);
    for (let i = 0; i < 50; i++) {
      seen.push(...page.data);
      if (page.next_cursor === null) break;
      expect(page.data).toHaveLength(1);
      const expected = cursorOf(keyOf(page.data[0]!));
      expect(page.next_cursor).toBe(expected);
      const next = await list(`${url}${sep}limit=1&cursor=${page.next_cursor}`);
      expect(await list(`${url}${sep}limit=1&cursor=${expected}`)).toEqual(next);
      page = next;
    }
    expect(page.next_cursor).toBeNull();
    return seen;
  }

  const id = (item: Record<string, unknown>) => [String(item['id'])];

  it('features, plans and credit packs page by id', async () => {
    for (const f of ['f_b', 'f_a', 'f_c']) await ok(t.post('/v1/features', { id: f, type: 'config' }));
    expect((await walk('/v1/features', id)).map((f) => (f as { id: string }).id)).toEqual([
      'f_a',
      'f_b',
      'f_c',
    ]);
    for (const p of ['pro', 'basic']) await ok(t.post('/v1/plans', { id: p, entitlements: [] }));
    expect((await walk('/v1/plans', id)).map((p) => (p as { id: string }).id)).toEqual(['basic', 'pro']);
    for (const p of ['small', 'large']) {
      await ok(
        t.post('/v1/credit-packs', { id: p, credits: '100', price: { amount: '1.00', currency: 'USD' } }),
      );
    }
    expect((await walk('/v1/credit-packs', id)).map((p) => (p as { id: string }).id)).toEqual([
      'large',
      'small',
    ]);
  });

  it("a customer's subscriptions page by id, its purchases by (creation instant, id)", async () => {
    await ok(t.post('/v1/customers', { id: 'acme' }));
    for (const p of ['pro', 'basic']) await ok(t.post('/v1/plans', { id: p, entitlements: [] }));
    const subs = [];
    for (const p of ['pro', 'basic'])
      subs.push(await ok(t.post('/v1/customers/acme/subscriptions', { plan_id: p })));
    const walked = await walk('/v1/customers/acme/subscriptions', id);
    expect(walked.map((s) => (s as { id: string }).id)).toEqual(subs.map((s) => String(s['id'])).sort());

    await ok(
      t.post('/v1/credit-packs', { id: 'small', credits: '100', price: { amount: '1.00', currency: 'USD' } }),
    );
    const bought = [];
    for (let i = 0; i < 3; i++) {
      bought.push(await ok(t.post('/v1/customers/acme/purchases', { pack_id: 'small', quantity: 1 })));
      if (i === 0) t.clock.advance(1000);
    }
    const purchases = await walk('/v1/customers/acme/purchases', (p) => [
      String(Date.parse(String(p['created_at']))),
      String(p['id']),
    ]);
    // The two bought in the same millisecond come in id order (the key's tie-breaker).
    const ids = bought.map((p) => String(p['id']));
    expect(purchases.map((p) => (p as { id: string }).id)).toEqual([ids[0], ...ids.slice(1).sort()]);
  });

  it('webhook endpoints page by id', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) {
      made.push(await ok(t.post('/v1/webhook-endpoints', { url: `http://127.0.0.1:9/hook/${i}` })));
    }
    const walked = await walk('/v1/webhook-endpoints', id);
    expect(walked.map((e) => (e as { id: string }).id)).toEqual(made.map((e) => String(e['id'])).sort());
  });

  it('the audit log pages by seq, and a cursor of another listing is a 400', async () => {
    await ok(t.post('/v1/customers', { id: 'acme' }));
    for (let i = 0; i < 3; i++) await ok(t.post('/v1/customers/acme/grants', { amount: '10' }));
    const records = await walk('/v1/audit-log', (r) => [String(r['seq'])]);
    expect(records.map((r) => (r as { seq: number }).seq)).toEqual([1, 2, 3]);
    for (const foreign of [cursorOf(['1', 'x']), cursorOf(['x']), cursorOf(['-1'])]) {
      const res = await t.get(`/v1/audit-log?cursor=${foreign}`);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'invalid_request', details: { field: 'cursor' } });
    }
    const purchases = await t.get(`/v1/customers/acme/purchases?cursor=${cursorOf(['abc', 'pur_1'])}`);
    expect(purchases.statusCode, purchases.body).toBe(400);
    // Stripe events page by (receipt instant, id): a key that is not one is refused, not sent to SQL.
    for (const foreign of [cursorOf(['abc', 'evt_1']), cursorOf(['1'])]) {
      const res = await t.get(`/v1/integrations/stripe/events?cursor=${foreign}`);
      expect(res.statusCode, res.body).toBe(400);
    }
    await expectObservedErrorsDocumented(t.app);
  });
});
