import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { E2E_API_KEY, requireBuiltCli, ServerProcess } from './server-process.js';

/**
 * The running SQLite server commits durably: WAL and `synchronous=FULL` on its writer connection,
 * as SQLite itself reports them on /metrics. A SIGKILL test cannot see a missing fsync (the page
 * cache survives a killed process), so the setting is checked where it is in force.
 */
describe('e2e: the SQLite server runs with WAL and synchronous=FULL', () => {
  let server: ServerProcess | null = null;
  beforeAll(() => requireBuiltCli());
  afterEach(async () => {
    await server?.cleanup();
    server = null;
  });

  it('reports journal_mode=wal and synchronous=2 (FULL) from the live writer connection', async () => {
    server = await ServerProcess.start();
    const response = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${E2E_API_KEY}` },
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(/^burndown_sqlite_wal 1$/m);
    expect(text).toMatch(/^burndown_sqlite_synchronous 2$/m);
  });
});
