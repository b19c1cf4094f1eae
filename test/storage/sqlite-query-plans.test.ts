/**
 * The sweeper reads what is due once a second on every server: those reads must be ranges of the
 * partial "due" indexes, costing what is due, never a scan of every open grant or active hold
 * (which grew with the ledger: 12,000 open grants cost the debit path about 3 µs per request).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Q } from '../../src/storage/sql/queries.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';

describe('SQLite query plans of the sweeper', () => {
  it('reads due grants and holds through their partial indexes', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'burndown-plans-')), 'db.sqlite');
    await (await SqliteStorage.open({ path })).close();
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      const plan = (sql: string, params: number[]) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
          .map((r) => r.detail)
          .join('\n');
      const grants = plan(Q.dueGrants, [1, 500, 1, 500]);
      expect(grants).toContain('USING INDEX grants_due_expiry');
      expect(grants).toContain('USING INDEX grants_due_activation');
      expect(grants).not.toMatch(/SCAN grants\b/);
      const holds = plan(Q.dueHolds, [1, 500]);
      expect(holds).toContain('USING INDEX holds_due');
      expect(holds).not.toMatch(/SCAN holds\b/);
    } finally {
      db.close();
    }
  });
});
