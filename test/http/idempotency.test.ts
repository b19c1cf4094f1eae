import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/services/api-keys.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/**
 * Idempotency-Key semantics of docs/api.md (Conventions): the first response to a key (success or a
 * business refusal, not a 400 or 5xx) is stored; the same request again gets that status and
 * body back with `Idempotent-Replayed: true` and writes nothing; another request with the key is
 * a 422 `idempotency_key_reused`; a duplicate still running is a 409 `request_in_progress`.
 */

const OTHER_WORKSPACE_KEY = 'test-idempotency-other-workspace-key-0123';
const HOUR = 3600 * 1000;

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode, res.payload).toBe(status);
  expect(res.json()).toEqual({ error: { code, message: expect.any(String), details: expect.any(Object) } });
}

function expectReplayOf(replay: LightMyRequestResponse, first: LightMyRequestResponse): void {
  expect(replay.statusCode, replay.payload).toBe(first.statusCode);
  expect(replay.payload).toBe(first.payload);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect(replay.headers['content-type']).toMatch(/^application\/json/);
}

function expectFresh(res: LightMyRequestResponse): void {
  expect(res.headers['idempotent-replayed']).toBeUndefined();
}

describe('Idempotency-Key', () => {
  let t: TestApp;
  let grantId: string;

  const key = (k: string) => ({ 'idempotency-key': k });

  /** What a client sees of acme's credits, and every row of the database. */
  async function state(customer = 'acme') {
    const read = async (url: string) => {
      const res = await t.get(url);
      expect(res.statusCode, `${url}: ${res.payload}`).toBe(200);
      return res.json() as unknown;
    };
    return {
      balance: await read(`/v1/customers/${customer}/balance`),
      grants: await read(`/v1/customers/${customer}/grants`),
      ledger: await read(`/v1/customers/${customer}/ledger`),
      db: dumpDatabase(t),
    };
  }

  /** As {@link state}, but the idempotency records may have grown (a first request stores one). */
  async function ledgerState(customer = 'acme') {
    const { db: _db, ...rest } = await state(customer);
    return rest;
  }

  async function ledgerEntries(customer = 'acme', authorization?: string) {
    const res = await t.get(`/v1/customers/${customer}/ledger`, authorization ? { authorization } : {});
    expect(res.statusCode, res.payload).toBe(200);
    return (res.json() as { data: { type: string; amount: string }[] }).data;
  }

  beforeEach(async () => {
    t = await createTestApp();
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    expect((await t.post('/v1/customers', { id: 'beta' })).statusCode).toBe(201);
    const grant = await t.post('/v1/customers/acme/grants', { amount: '100' });
    expect(grant.statusCode).toBe(201);
    grantId = grant.json().id;
    // The raw-row comparisons below rely on reading the SQLite adapter's rows.
    expect(dumpDatabase(t)).not.toBeNull();
  });

  afterEach(async () => {
    await t.close();
  });

  it('replays a debit: same status, byte-identical body, Idempotent-Replayed: true, nothing written', async () => {
    const first = await t.post(
      '/v1/customers/acme/debits',
      { amount: '10', description: 'run 1' },
      key('debit-1'),
    );
    expect(first.statusCode, first.payload).toBe(201);
    expectFresh(first);
    const before = await state();
    expect((before.balance as { available: string }).available).toBe('90');

    for (let i = 0; i < 3; i++) {
      const replay = await t.post(
        '/v1/customers/acme/debits',
        { amount: '10', description: 'run 1' },
        key('debit-1'),
      );
      expectReplayOf(replay, first);
      expect(await state()).toEqual(before);
    }
    const debits = (await ledgerEntries()).filter((e) => e.type === 'debit');
    expect(debits).toHaveLength(1);
  });

  describe('every POST endpoint replays its first answer and writes nothing', () => {
    interface ReplayCase {
      readonly name: string;
      readonly url: (ids: { hold: string; grant: string }) => string;
      readonly body: unknown;
      readonly status: number;
    }
    const cases: ReplayCase[] = [
      {
        name: 'POST /v1/customers',
        url: () => '/v1/customers',
        body: { id: 'newco', name: 'New' },
        status: 201,
      },
      {
        name: 'POST /v1/credit-types',
        url: () => '/v1/credit-types',
        body: { id: 'gpu', name: 'GPU' },
        status: 201,
      },
      { name: 'POST grants', url: () => '/v1/customers/acme/grants', body: { amount: '5' }, status: 201 },
      { name: 'POST void', url: (ids) => `/v1/grants/${ids.grant}/void`, body: { reason: 'r' }, status: 200 },
      { name: 'POST debits', url: () => '/v1/customers/acme/debits', body: { amount: '5' }, status: 201 },
      { name: 'POST holds', url: () => '/v1/customers/acme/holds', body: { amount: '5' }, status: 201 },
      {
        name: 'POST capture',
        url: (ids) => `/v1/holds/${ids.hold}/capture`,
        body: { amount: '3' },
        status: 201,
      },
      { name: 'POST release', url: (ids) => `/v1/holds/${ids.hold}/release`, body: {}, status: 200 },
      {
        name: 'POST release without a body',
        url: (ids) => `/v1/holds/${ids.hold}/release`,
        body: undefined,
        status: 200,
      },
      {
        name: 'POST customers refused 409 already_exists',
        url: () => '/v1/customers',
        body: { id: 'acme' },
        status: 409,
      },
    ];

    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const hold = await t.post('/v1/customers/acme/holds', { amount: '20' });
      expect(hold.statusCode).toBe(201);
      const ids = { hold: hold.json().id as string, grant: grantId };
      const first = await t.post(c.url(ids), c.body, key(`replay-${cases.indexOf(c)}`));
      expect(first.statusCode, first.payload).toBe(c.status);
      expectFresh(first);
      const before = await state();
      const replay = await t.post(c.url(ids), c.body, key(`replay-${cases.indexOf(c)}`));
      expectReplayOf(replay, first);
      expect(await state()).toEqual(before);
    });
  });

  it('a 402 insufficient_credits is replayed as 402 even after credits are granted', async () => {
    const first = await t.post('/v1/customers/acme/debits', { amount: '150' }, key('short'));
    expectError(first, 402, 'insufficient_credits');
    expect(first.json().error.details).toEqual({ available: '100', requested: '150' });
    expect((await ledgerEntries()).filter((e) => e.type === 'debit')).toHaveLength(0);

    expect((await t.post('/v1/customers/acme/grants', { amount: '1000' })).statusCode).toBe(201);
    const before = await state();
    const replay = await t.post('/v1/customers/acme/debits', { amount: '150' }, key('short'));
    expectReplayOf(replay, first);
    expect(replay.statusCode).toBe(402);
    expect(await state()).toEqual(before);
    expect((await ledgerEntries()).filter((e) => e.type === 'debit')).toHaveLength(0);

    // A fresh key with the same body does go through now.
    expect((await t.post('/v1/customers/acme/debits', { amount: '150' }, key('short-2'))).statusCode).toBe(
      201,
    );
  });

  it('a 402 on a hold is replayed as 402 too', async () => {
    const first = await t.post('/v1/customers/acme/holds', { amount: '500' }, key('hold-short'));
    expectError(first, 402, 'insufficient_credits');
    expect((await t.post('/v1/customers/acme/grants', { amount: '1000' })).statusCode).toBe(201);
    const before = await state();
    expectReplayOf(await t.post('/v1/customers/acme/holds', { amount: '500' }, key('hold-short')), first);
    expect(await state()).toEqual(before);
  });

  it('a 201 is replayed as 201 even when the credits are gone', async () => {
    const first = await t.post('/v1/customers/acme/debits', { amount: '60' }, key('big'));
    expect(first.statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/debits', { amount: '40' })).statusCode).toBe(201);
    const before = await state();
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '60' }, key('big')), first);
    expect(await state()).toEqual(before);
  });

  it('the same key with a different body is a 422 idempotency_key_reused and writes nothing', async () => {
    const first = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k1'));
    expect(first.statusCode).toBe(201);
    const before = await state();
    for (const body of [
      { amount: '11' },
      { amount: '10', description: 'x' },
      { amount: '10', allow_overage: true },
    ]) {
      expectError(await t.post('/v1/customers/acme/debits', body, key('k1')), 422, 'idempotency_key_reused');
      expect(await state()).toEqual(before);
    }
    // The original request still replays afterwards.
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k1')), first);
  });

  it('the same key on a different path is a 422 and writes nothing', async () => {
    const first = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k-path'));
    expect(first.statusCode).toBe(201);
    const acme = await state();
    const beta = await ledgerState('beta');
    expect((await t.post('/v1/customers/beta/grants', { amount: '50' })).statusCode).toBe(201);
    const betaFunded = await ledgerState('beta');
    expect(betaFunded).not.toEqual(beta);
    // Same body, same method, another customer's debits.
    expectError(
      await t.post('/v1/customers/beta/debits', { amount: '10' }, key('k-path')),
      422,
      'idempotency_key_reused',
    );
    // Same body on another endpoint of the same customer.
    expectError(
      await t.post('/v1/customers/acme/holds', { amount: '10' }, key('k-path')),
      422,
      'idempotency_key_reused',
    );
    expectError(
      await t.post('/v1/customers/acme/grants', { amount: '10' }, key('k-path')),
      422,
      'idempotency_key_reused',
    );
    expect(await ledgerState('beta')).toEqual(betaFunded);
    const { db: _db, ...acmeNow } = await state();
    const { db: _db0, ...acmeBefore } = acme;
    expect(acmeNow).toEqual(acmeBefore);
  });

  it('the same key with a different query string is a different request (422)', async () => {
    expect((await t.post('/v1/customers/acme/debits', { amount: '1' }, key('k-q'))).statusCode).toBe(201);
    const before = await state();
    const res = await t.request({
      method: 'POST',
      url: '/v1/customers/acme/debits?x=1',
      headers: { 'content-type': 'application/json', ...key('k-q') },
      payload: JSON.stringify({ amount: '1' }),
    });
    expect(res.statusCode).not.toBe(201);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(await state()).toEqual(before);
  });

  it('a 400 validation error is not stored: the key can then be used with a valid body', async () => {
    const before = await state();
    const bad = await t.post('/v1/customers/acme/debits', { amount: 10 }, key('k-400'));
    expectError(bad, 400, 'invalid_amount');
    const unknownField = await t.post('/v1/customers/acme/debits', { amount: '10', bogus: 1 }, key('k-400'));
    expectError(unknownField, 400, 'invalid_request');
    const zero = await t.post('/v1/customers/acme/debits', { amount: '0' }, key('k-400'));
    expectError(zero, 400, 'invalid_amount');
    const malformed = await t.post('/v1/customers/acme/debits', '{"amount": "10"', key('k-400'));
    expectError(malformed, 400, 'invalid_request');
    expect(await state()).toEqual(before);

    const good = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k-400'));
    expect(good.statusCode, good.payload).toBe(201);
    expectFresh(good);
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k-400')), good);
  });

  it('a 400 found inside the write (expires_at before effective_at) is not stored either', async () => {
    const before = await state();
    const bad = await t.post(
      '/v1/customers/acme/grants',
      { amount: '10', effective_at: '2026-03-01T00:00:00Z', expires_at: '2026-02-01T00:00:00Z' },
      key('k-grant'),
    );
    expectError(bad, 400, 'invalid_request');
    expect(await state()).toEqual(before);
    const good = await t.post('/v1/customers/acme/grants', { amount: '10' }, key('k-grant'));
    expect(good.statusCode, good.payload).toBe(201);
    expectFresh(good);
  });

  it('a 415 or 413 is not stored either', async () => {
    const before = await state();
    const wrongType = await t.post('/v1/customers/acme/debits', JSON.stringify({ amount: '10' }), {
      ...key('k-media'),
      'content-type': 'text/plain',
    });
    expectError(wrongType, 415, 'unsupported_media_type');
    const tooBig = await t.post(
      '/v1/customers/acme/debits',
      `{"amount":"10","description":"${'x'.repeat(1024 * 1024)}"}`,
      key('k-media'),
    );
    expectError(tooBig, 413, 'payload_too_large');
    expect(await state()).toEqual(before);
    const good = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('k-media'));
    expect(good.statusCode, good.payload).toBe(201);
  });

  it('20 concurrent duplicates with one key make exactly one debit', async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.post('/v1/customers/acme/debits', { amount: '7' }, key('concurrent')),
      ),
    );
    const created = responses.filter((r) => r.statusCode === 201);
    const inProgress = responses.filter((r) => r.statusCode === 409);
    expect(
      created.length + inProgress.length,
      responses.map((r) => `${r.statusCode} ${r.payload}`).join('\n'),
    ).toBe(20);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of created) expect(r.payload).toBe(created[0]!.payload);
    expect(created.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    for (const r of inProgress) expectError(r, 409, 'request_in_progress');

    const debits = (await ledgerEntries()).filter((e) => e.type === 'debit');
    expect(debits).toHaveLength(1);
    expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('93');

    // Once settled, the key replays the one debit.
    expectReplayOf(
      await t.post('/v1/customers/acme/debits', { amount: '7' }, key('concurrent')),
      created[0]!,
    );
  });

  it('20 concurrent duplicates of a hold and of a grant each write once', async () => {
    const holds = await Promise.all(
      Array.from({ length: 20 }, () => t.post('/v1/customers/acme/holds', { amount: '3' }, key('c-hold'))),
    );
    const grants = await Promise.all(
      Array.from({ length: 20 }, () => t.post('/v1/customers/acme/grants', { amount: '3' }, key('c-grant'))),
    );
    for (const batch of [holds, grants]) {
      const ok = batch.filter((r) => r.statusCode === 201);
      expect(ok.length + batch.filter((r) => r.statusCode === 409).length).toBe(20);
      expect(new Set(ok.map((r) => r.payload)).size).toBe(1);
    }
    const entries = await ledgerEntries();
    expect(entries.filter((e) => e.type === 'hold')).toHaveLength(1);
    expect(entries.filter((e) => e.type === 'grant')).toHaveLength(2);
  });

  it('concurrent requests with one key and different bodies write at most once', async () => {
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        t.post('/v1/customers/acme/debits', { amount: String(i + 1) }, key('mixed')),
      ),
    );
    const created = responses.filter((r) => r.statusCode === 201);
    expect(created).toHaveLength(1);
    for (const r of responses) {
      if (r.statusCode === 201) continue;
      expect([409, 422], r.payload).toContain(r.statusCode);
      expectError(r, r.statusCode, r.statusCode === 409 ? 'request_in_progress' : 'idempotency_key_reused');
    }
    const debits = (await ledgerEntries()).filter((e) => e.type === 'debit');
    expect(debits).toHaveLength(1);
  });

  it('keys are scoped per workspace', async () => {
    const now = t.clock.now();
    await t.storage.write('api-keys', async (tx) => {
      await tx.ensureWorkspace('other', now);
      await tx.insertApiKey({
        id: 'key_other',
        workspaceId: 'other',
        keyHash: hashApiKey(OTHER_WORKSPACE_KEY),
        scope: 'admin',
        name: 'other',
        createdAt: now,
        revokedAt: null,
      });
    });
    const other = { authorization: `Bearer ${OTHER_WORKSPACE_KEY}` };
    expect((await t.post('/v1/customers', { id: 'acme' }, other)).statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/grants', { amount: '100' }, other)).statusCode).toBe(201);

    const mine = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('shared'));
    expect(mine.statusCode).toBe(201);
    // Same key, same method, path and body in another workspace: its own first request.
    const theirs = await t.post(
      '/v1/customers/acme/debits',
      { amount: '10' },
      { ...other, ...key('shared') },
    );
    expect(theirs.statusCode, theirs.payload).toBe(201);
    expectFresh(theirs);
    expect(theirs.json().id).not.toBe(mine.json().id);
    // Same key, different body in another workspace: not a 422 either.
    const theirs2 = await t.post(
      '/v1/customers/acme/debits',
      { amount: '20' },
      { ...other, ...key('mine-only') },
    );
    expect(theirs2.statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/debits', { amount: '5' }, key('mine-only'))).statusCode).toBe(
      201,
    );

    expect((await ledgerEntries()).filter((e) => e.type === 'debit').map((e) => e.amount)).toEqual([
      '10',
      '5',
    ]);
    const theirLedger = await ledgerEntries('acme', other.authorization);
    expect(theirLedger.filter((e) => e.type === 'debit').map((e) => e.amount)).toEqual(['10', '20']);
    // Each workspace replays its own answer.
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '10' }, key('shared')), mine);
    expectReplayOf(
      await t.post('/v1/customers/acme/debits', { amount: '10' }, { ...other, ...key('shared') }),
      theirs,
    );
  });

  it('a key of 1 to 255 characters is accepted; longer or empty is a 400 that writes nothing', async () => {
    const before = await state();
    for (const bad of ['k'.repeat(256), 'k'.repeat(1000), '']) {
      expectError(
        await t.post('/v1/customers/acme/debits', { amount: '1' }, key(bad)),
        400,
        'invalid_request',
      );
      expect(await state()).toEqual(before);
    }
    const max = await t.post('/v1/customers/acme/debits', { amount: '1' }, key('k'.repeat(255)));
    expect(max.statusCode, max.payload).toBe(201);
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '1' }, key('k'.repeat(255))), max);
    const min = await t.post('/v1/customers/acme/debits', { amount: '1' }, key('k'));
    expect(min.statusCode, min.payload).toBe(201);
  });

  it('a key is any 1 to 255 characters: interior spaces and other visible characters are accepted', async () => {
    // docs/api.md only bounds the length; a space is a valid character of an HTTP field value.
    for (const k of ['order 42 attempt 1', 'a:b/c?d=e&f#g', '"quoted"', '{"json":true}']) {
      const res = await t.post('/v1/customers/acme/debits', { amount: '1' }, key(k));
      expect(res.statusCode, `${k}: ${res.payload}`).toBe(201);
      expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '1' }, key(k)), res);
    }
  });

  it('a stored answer is still replayed 24 hours later', async () => {
    const first = await t.post('/v1/customers/acme/debits', { amount: '10' }, key('day'));
    expect(first.statusCode).toBe(201);
    t.clock.advance(24 * HOUR);
    const before = await ledgerState();
    expectReplayOf(await t.post('/v1/customers/acme/debits', { amount: '10' }, key('day')), first);
    expect(await ledgerState()).toEqual(before);
  });

  it('requests without a key are not deduplicated', async () => {
    expect((await t.post('/v1/customers/acme/debits', { amount: '10' })).statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/debits', { amount: '10' })).statusCode).toBe(201);
    expect((await ledgerEntries()).filter((e) => e.type === 'debit')).toHaveLength(2);
  });
});

/** Every row of every table of the in-memory SQLite adapter (read-only; null for other storage). */
function dumpDatabase(t: TestApp): Record<string, string[]> | null {
  const db = (t.storage as unknown as { writer?: { prepare(sql: string): { all(): unknown[] } } }).writer;
  if (!db || typeof db.prepare !== 'function') return null;
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string }[];
  const rows = (name: string) =>
    db
      .prepare(`SELECT * FROM "${name}"`)
      .all()
      .map((row) => JSON.stringify(row))
      .sort();
  return Object.fromEntries(tables.map(({ name }) => [name, rows(name)]));
}
