import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, ServerProcess } from './server-process.js';

/**
 * The running SQLite server commits durably: WAL on its writer connection, and every write
 * answered only after a WAL fdatasync (the pipelined sync of src/storage/sqlite/wal-sync.ts; the
 * connection itself runs `synchronous=NORMAL` so that no fsync stalls the event loop), as the
 * server reports on /metrics. A SIGKILL test cannot see a missing fsync (the page cache survives
 * a killed process), so the syncs are counted where they happen.
 */
describe('e2e: the SQLite server runs with WAL and syncs it before answering a write', () => {
  let server: ServerProcess | null = null;
  beforeAll(() => requireBuiltCli());
  afterEach(async () => {
    await server?.cleanup();
    server = null;
  });

  const gauge = (text: string, name: string) => {
    const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    if (!match) throw new Error(`${name} missing from /metrics`);
    return Number(match[1]);
  };

  it('reports WAL and the pipelined sync, and at least one sync per write answered one after another', async () => {
    server = await ServerProcess.start();
    const metrics = async () => {
      const response = await server!.get('/metrics');
      expect(response.status).toBe(200);
      return response.text;
    };
    const before = await metrics();
    expect(gauge(before, 'burndown_sqlite_wal')).toBe(1);
    expect(gauge(before, 'burndown_sqlite_pipelined_wal_sync')).toBe(1);
    expect(gauge(before, 'burndown_sqlite_synchronous')).toBe(1);
    for (let i = 0; i < 4; i++) {
      const created = await server.post('/v1/customers', { id: `durable-${i}` });
      expect(created.status).toBe(201);
    }
    const after = await metrics();
    expect(
      gauge(after, 'burndown_sqlite_wal_syncs') - gauge(before, 'burndown_sqlite_wal_syncs'),
    ).toBeGreaterThanOrEqual(4);
  });
});
