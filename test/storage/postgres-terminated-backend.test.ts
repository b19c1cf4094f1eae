import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../contract/postgres.js';

/**
 * A server must never die because PostgreSQL terminated one of its backends. The scenario (see
 * postgres-terminated-backend.child.ts) runs in a process of its own so a crash shows as its exit
 * code and stderr: before the fix, pg emitted 'error' on a pooled client handed to a waiting
 * write without a listener, and the process exited 1 ("Unhandled 'error' event"). This killed
 * server processes in the multi-process PostgreSQL e2e test under CPU load.
 */

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'postgres-terminated-backend.child.ts');

function runChild(): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: { ...process.env, BURNDOWN_TEST_POSTGRES_URL: POSTGRES_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('PostgreSQL: a terminated backend', () => {
  it('does not kill the process when the FATAL arrives as its connection is handed to a waiting write', async () => {
    const { code, signal, stdout, stderr } = await runChild();
    expect({ code, signal }, `the process died:\n${stderr}`).toEqual({ code: 0, signal: null });
    const outcome = JSON.parse(stdout.trim()) as Record<string, unknown>;
    // The read finished before the termination; the write lost its connection and was retried on a new one.
    expect(outcome).toEqual({ terminated: expect.any(Number), read: 'ok', write: 'ok', after: 'ok' });
  }, 60_000);
});
