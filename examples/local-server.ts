/**
 * Where the examples (and the client's tests) find a server: BURNDOWN_URL and BURNDOWN_API_KEY when
 * set, otherwise a server of this repository started here (`node dist/cli/main.js serve`, after
 * `npm run build`) on a free port over a fresh SQLite database in a temporary directory, stopped
 * when the example ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LocalServer {
  readonly url: string;
  readonly apiKey: string;
  stop(): Promise<void>;
}

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Starts a Burndown server on a random port over a temporary SQLite database. */
export async function startLocalServer(env: Record<string, string> = {}): Promise<LocalServer> {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-example-'));
  const port = await freePort();
  const apiKey = `example-${randomBytes(16).toString('hex')}`;
  const child: ChildProcess = spawn(process.execPath, [join(repositoryRoot, 'dist/cli/main.js'), 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      BURNDOWN_DATABASE_URL: `sqlite:${join(dir, 'burndown.db')}`,
      BURNDOWN_API_KEY: apiKey,
      BURNDOWN_LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (i > 300) {
      await stop();
      throw new Error('the server did not start within 30 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, apiKey, stop };
}

/** BURNDOWN_URL and BURNDOWN_API_KEY when set; otherwise a server started for this run. */
export async function connect(): Promise<LocalServer> {
  const url = process.env['BURNDOWN_URL'];
  const apiKey = process.env['BURNDOWN_API_KEY'];
  if (url && apiKey) return { url, apiKey, stop: async () => {} };
  return startLocalServer();
}

/** Runs an example against a server, stopping the server it started, and exits non-zero on failure. */
export async function runExample(main: (server: LocalServer) => Promise<void>): Promise<void> {
  const server = await connect();
  try {
    await main(server);
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  } finally {
    await server.stop();
  }
}
