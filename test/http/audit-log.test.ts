import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/ports/storage.js';
import { verifyAuditChains } from '../../src/services/audit.js';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { POSTGRES_URL } from '../contract/postgres.js';
import { expectObservedErrorsDocumented } from '../fixtures/documented-errors.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/** A storage with a side door: SQL run directly on its database, as an attacker with access would. */
interface Tamperable {
  readonly storage: Storage;
  exec(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

const DIALECTS: readonly { name: string; open(): Promise<Tamperable> }[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'bd-audit-'));
      const path = join(dir, 'audit.db');
      const storage = await SqliteStorage.open({ path });
      return {
        storage,
        async exec(sql) {
          const db = new Database(path);
          db.exec(sql);
          db.close();
        },
        async cleanup() {
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const schema = `bd_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.end();
      const storage = await PostgresStorage.open({ connectionString: POSTGRES_URL, schema, poolSize: 8 });
      const run = async (sql: string) => {
        const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      };
      return { storage, exec: run, cleanup: async () => run(`DROP SCHEMA ${schema} CASCADE`) };
    },
  },
];

for (const dialect of DIALECTS) {
  describe(`audit log (${dialect.name})`, () => {
    let t: TestApp | undefined;
    let db: Tamperable | undefined;
    afterEach(async () => {
      if (t) await expectObservedErrorsDocumented(t.app);
      await t?.close();
      await db?.cleanup();
      t = undefined;
      db = undefined;
    });

    async function start(): Promise<TestApp> {
      db = await dialect.open();
      t = await createTestApp({ storage: db.storage });
      return t;
    }

    it('records administrative changes with actor, request id and before/after in their transaction; usage is not audited', async () => {
      const t = await start();
      await t.post('/v1/customers', { id: 'acme' });
      const grant = (await t.post('/v1/customers/acme/grants', { amount: '100' })).json();
      for (let i = 0; i < 5; i++) await t.post('/v1/customers/acme/debits', { amount: '1' });
      await t.post('/v1/customers/acme/holds', { amount: '1' });
      const voided = await t.post(`/v1/grants/${grant.id}/void`, { reason: 'refunded' });
      expect(voided.statusCode).toBe(200);
      const refused = await t.post(`/v1/grants/${grant.id}/void`, { reason: 'again' });
      expect(refused.statusCode).toBe(409); // a refusal records nothing
      const created = (await t.post('/v1/api-keys', { scope: 'read', name: 'reader' })).json();
      await t.post(`/v1/api-keys/${created.id}/revoke`);
      const me = (await t.get('/v1/api-keys'))
        .json()
        .data.find((k: { name: string }) => k.name === 'BURNDOWN_API_KEY');

      const log = (await t.get('/v1/audit-log')).json();
      expect(log.data.map((r: { action: string }) => r.action)).toEqual([
        'grant.created',
        'grant.voided',
        'api_key.created',
        'api_key.revoked',
      ]);
      expect(log.data.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3, 4]);
      const [first, second] = log.data;
      expect(first).toMatchObject({
        actor_key_id: me.id,
        target_type: 'grant',
        target_id: grant.id,
        before: null,
      });
      expect(first.request_id).toEqual(expect.any(String));
      expect(first.after).toMatchObject({ id: grant.id, amount: '100' });
      expect(second.before).toMatchObject({ id: grant.id });
      expect(second.after).toMatchObject({ id: grant.id, closedReason: 'voided' });
      expect(second.prev_hash).toBe(first.hash);
      expect(JSON.stringify(log)).not.toContain(created.key);

      // Filters and paging.
      const byAction = (await t.get('/v1/audit-log?action=api_key.created')).json().data;
      expect(byAction.map((r: { target_id: string }) => r.target_id)).toEqual([created.id]);
      expect((await t.get(`/v1/audit-log?target_type=grant&target_id=${grant.id}`)).json().data).toHaveLength(
        2,
      );
      expect((await t.get(`/v1/audit-log?actor=${me.id}`)).json().data).toHaveLength(4);
      expect((await t.get('/v1/audit-log?actor=key_nobody')).json().data).toHaveLength(0);
      expect((await t.get('/v1/audit-log?from=2030-01-01T00:00:00Z')).json().data).toHaveLength(0);
      expect((await t.get('/v1/audit-log?to=2030-01-01T00:00:00Z')).json().data).toHaveLength(4);
      const page1 = (await t.get('/v1/audit-log?limit=3')).json();
      const page2 = (await t.get(`/v1/audit-log?limit=3&cursor=${page1.next_cursor}`)).json();
      expect([page1.data.length, page2.data.length, page2.next_cursor]).toEqual([3, 1, null]);
      expect(page2.data[0].seq).toBe(4);

      // Exports: NDJSON and CSV, the same records.
      const ndjson = await t.get('/v1/audit-log/export');
      expect(ndjson.headers['content-type']).toContain('application/x-ndjson');
      const lines = ndjson.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((r: { hash: string }) => r.hash)).toEqual(
        log.data.map((r: { hash: string }) => r.hash),
      );
      const csv = await t.get('/v1/audit-log/export?format=csv&action=grant.voided');
      expect(csv.headers['content-type']).toContain('text/csv');
      const rows = csv.body.trim().split('\r\n');
      expect(rows[0]).toBe(
        'seq,id,at,actor_key_id,request_id,action,target_type,target_id,before,after,prev_hash,hash',
      );
      expect(rows).toHaveLength(2);
      expect(rows[1]).toContain(second.hash);

      expect(await verifyAuditChains(t.storage.read)).toMatchObject({
        ok: true,
        records: 4,
        firstBreak: null,
      });
    });

    it('records a manual debit (an operator adjustment), not a usage debit nor a refused one', async () => {
      const t = await start();
      await t.post('/v1/customers', { id: 'acme' });
      await t.post('/v1/customers/acme/grants', { amount: '10' });
      expect((await t.post('/v1/customers/acme/debits', { amount: '1' })).statusCode).toBe(201);
      const manual = await t.post('/v1/customers/acme/debits', {
        amount: '2',
        manual: true,
        description: 'goodwill correction',
      });
      expect(manual.statusCode).toBe(201);
      const refused = await t.post('/v1/customers/acme/debits', { amount: '100', manual: true });
      expect(refused.statusCode).toBe(402);
      const bad = await t.post('/v1/customers/acme/debits', { amount: '1', manual: 'yes' });
      expect(bad.statusCode).toBe(400);
      const log = (await t.get('/v1/audit-log')).json().data;
      expect(log.map((r: { action: string }) => r.action)).toEqual(['grant.created', 'debit.created']);
      expect(log[1]).toMatchObject({
        target_type: 'debit',
        target_id: manual.json().id,
        before: null,
        after: { id: manual.json().id, amount: '2', manual: true, description: 'goodwill correction' },
      });
      expect(await verifyAuditChains(t.storage.read)).toMatchObject({ ok: true, records: 2 });
    });

    it('keeps one linear chain per workspace under concurrent writes of different customers', async () => {
      const t = await start();
      const customers = Array.from({ length: 12 }, (_, i) => `c${i}`);
      for (const id of customers) await t.post('/v1/customers', { id });
      const answers = await Promise.all(
        customers.flatMap((id) => [1, 2].map(() => t.post(`/v1/customers/${id}/grants`, { amount: '5' }))),
      );
      expect(answers.every((a) => a.statusCode === 201)).toBe(true);
      const verified = await verifyAuditChains(t.storage.read);
      expect(verified).toMatchObject({ ok: true, records: 24 });
      const seqs = (await t.get('/v1/audit-log?limit=100')).json().data.map((r: { seq: number }) => r.seq);
      expect(seqs).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    });

    it('detects a tampered record (direct SQL update) and a deleted record', async () => {
      const t = await start();
      await t.post('/v1/customers', { id: 'acme' });
      for (let i = 0; i < 4; i++) await t.post('/v1/customers/acme/grants', { amount: String(10 + i) });
      expect((await verifyAuditChains(t.storage.read)).ok).toBe(true);
      const exec = db!.exec;

      await exec(`UPDATE audit_log SET after_json = replace(after_json, '"11"', '"11000"') WHERE seq = 2`);
      const tampered = await verifyAuditChains(t.storage.read);
      expect(tampered.ok).toBe(false);
      expect(tampered.firstBreak).toMatchObject({ workspaceId: 'default', seq: 2 });
      expect(tampered.firstBreak?.reason).toContain('altered');
      // Undoing the change mends the chain: the hash covers exactly the record's content.
      await exec(`UPDATE audit_log SET after_json = replace(after_json, '"11000"', '"11"') WHERE seq = 2`);
      expect((await verifyAuditChains(t.storage.read)).ok).toBe(true);

      await exec('DELETE FROM audit_log WHERE seq = 3');
      const deleted = await verifyAuditChains(t.storage.read);
      expect(deleted.firstBreak).toMatchObject({ seq: 3 });
      expect(deleted.firstBreak?.reason).toContain('missing');
    });

    it('detects the deletion of the last record (the chain head remembers it)', async () => {
      const t = await start();
      await t.post('/v1/customers', { id: 'acme' });
      for (let i = 0; i < 3; i++) await t.post('/v1/customers/acme/grants', { amount: '1' });
      await db!.exec('DELETE FROM audit_log WHERE seq = 3');
      const result = await verifyAuditChains(t.storage.read);
      expect(result.ok).toBe(false);
      expect(result.firstBreak?.reason).toContain('chain head is at 3');
    });
  });
}
