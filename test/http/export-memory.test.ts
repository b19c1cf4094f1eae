/**
 * The ledger-entries export streams in bounded memory: 1,000,000 entries (BURNDOWN_EXPORT_ROWS
 * sets another size) are seeded into a SQLite file by one SQL statement, then exported over a real
 * port as NDJSON and read by a client that discards what it gets. Memory is sampled while it
 * streams, each sample after a full garbage collection: what the JavaScript heap and the buffers
 * outside it hold (what a buffered answer would fill) must stay within a generous bound above the
 * start, far below the size of the export itself. RSS is sampled and printed too, but not
 * asserted: it also counts SQLite's page cache (up to 256 MB on the writer connection), which
 * fills with the pages the export reads whether or not the answer is streamed. The figures are
 * recorded in bench/README.md "Streaming exports".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/time/clock.js';
import { buildApp } from '../../src/http/app.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import { ensureAdminKey } from '../../src/services/api-keys.js';
import type { ServiceContext } from '../../src/services/context.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { T0, TEST_API_KEY } from '../fixtures/harness.js';

const ENTRIES = Number(process.env['BURNDOWN_EXPORT_ROWS'] ?? 1_000_000);
/**
 * Growth of heap + buffers allowed while streaming: generous (V8 lets its heap grow under allocation
 * pressure), yet far below the export itself (~330 bytes × ENTRIES: 315 MB at 1,000,000), which a
 * buffered answer would have to hold.
 */
const RSS_BOUND_BYTES = 80 * 1024 * 1024;
/** Sampling period: each sample forces a full collection (tens of ms), so not too often. */
const SAMPLE_EVERY_MS = 500;

// A full collection before each sample, so the samples count what is held, not garbage that V8
// has not collected yet (it lets garbage pile up while there is room).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('streaming export memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-export-'));
  const path = join(dir, 'books.db');

  beforeAll(() => {
    const db = new BetterSqlite3(path);
    db.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    `streams ${ENTRIES.toLocaleString('en')} ledger entries in bounded memory`,
    async () => {
      const storage = await SqliteStorage.open({ path });
      const clock = new ManualClock(T0);
      const ctx: ServiceContext = { storage, clock, ids: new TimeOrderedIds(() => clock.now()) };
      await ensureAdminKey(ctx, TEST_API_KEY);
      // Seed on a second connection with one statement (SQLite generates the rows: no JavaScript
      // per row; each customer's entries are consecutive, so the per-ledger index grows at its
      // ends), then checkpoint so the export reads the database file, not a 300 MB WAL.
      const seedStart = performance.now();
      const db = new BetterSqlite3(path);
      db.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
         INSERT INTO entries (id, workspace_id, customer_id, credit_type, type, amount, from_account, to_account,
           grant_id, ref, at, balance_after, recorded_at)
         SELECT 'ent_' || i, 'default', 'cus_' || (i / 1000), 'credits', 'debit', '1.5', 'grant:grt_seed',
           'consumed', 'grt_seed', 'dbt_' || i, ? + i, '100', ? + i FROM n`,
      ).run(ENTRIES, T0, T0);
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      const seedSeconds = (performance.now() - seedStart) / 1000;

      const app = await buildApp(ctx, { bodyLimit: 1024 * 1024, logLevel: 'silent' });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      const heldByJs = () => {
        collectGarbage();
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const rssStart = process.memoryUsage().rss;
      let rssPeak = rssStart;
      const heapStart = heldByJs();
      let heapPeak = heapStart;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        heapPeak = Math.max(heapPeak, heldByJs());
      }, SAMPLE_EVERY_MS);
      const streamStart = performance.now();
      const cpuStart = process.cpuUsage();
      const { lines, bytes, last } = await new Promise<{ lines: number; bytes: number; last: string }>(
        (resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              path: '/v1/exports/ledger-entries',
              headers: { authorization: `Bearer ${TEST_API_KEY}` },
            },
            (res) => {
              // Bytes, not text: decoding 315 MB to strings would cost the client more than the server.
              let lines = 0;
              let bytes = 0;
              let tail = Buffer.alloc(0);
              res.on('data', (chunk: Buffer) => {
                bytes += chunk.length;
                for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines += 1;
                tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - 1000))]).subarray(
                  -1000,
                );
              });
              res.on('end', () =>
                resolve({ lines, bytes, last: tail.toString('utf8').trim().split('\n').pop() ?? '' }),
              );
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
      const streamSeconds = (performance.now() - streamStart) / 1000;
      const cpu = process.cpuUsage(cpuStart);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      clearInterval(sampler);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      heapPeak = Math.max(heapPeak, heldByJs());
      await app.close();
      await storage.close();

      const growth = heapPeak - heapStart;
      const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
      console.log(
        `export of ${ENTRIES} entries: seeded in ${seedSeconds.toFixed(1)} s, streamed ${mb(bytes)} MB in ${streamSeconds.toFixed(1)} s (${cpuSeconds.toFixed(1)} s of CPU, client and sampling included); ` +
          `heap + buffers ${mb(heapStart)} MB at start, ${mb(heapPeak)} MB peak (+${mb(growth)} MB); ` +
          `RSS ${mb(rssStart)} MB at start, ${mb(rssPeak)} MB peak (+${mb(rssPeak - rssStart)} MB, SQLite's page cache included)`,
      );
      expect(lines).toBe(ENTRIES);
      expect(JSON.parse(last)).toMatchObject({ id: `ent_${ENTRIES - 1}` });
      expect(bytes).toBeGreaterThan(RSS_BOUND_BYTES); // the bound is smaller than the export itself
      expect(growth).toBeLessThan(RSS_BOUND_BYTES);
    },
    // Under 40 s on a shared 2-core machine (bench/README.md); the timeout leaves room for load.
    60_000 + ENTRIES / 10,
  );
});
