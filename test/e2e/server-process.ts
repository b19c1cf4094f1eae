import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Real `burndown serve` processes for end-to-end tests: spawn on a fresh temp-dir SQLite
 * database, wait for the "listening" line, talk over real HTTP (Node's fetch, undici keep-alive),
 * kill (gracefully or with SIGKILL) and restart on the same database.
 *
 * The tests run against the compiled server in dist/ (`npm test` builds it in `pretest`).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_PATH = join(ROOT, 'dist/cli/main.js');
export const E2E_API_KEY = 'e2e-admin-key-0123456789abcdef';
// Generous: on a loaded 2-core CI machine several servers starting at once take well over 15 s.
const STARTUP_TIMEOUT_MS = 45_000;
const LISTENING = /burndown listening on (http:\/\/127\.0\.0\.1:(\d+))/;

/** Fails with a clear message when the server has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI_PATH)) {
    throw new Error(
      `e2e tests need the compiled server at ${CLI_PATH}, which is missing. ` +
        'Run `npm run build` first (`npm test` does it in its pretest step).',
    );
  }
}

/** Every child still alive, so none outlives the test worker, whatever happens. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Response bodies are inspected loosely in tests unless a type is given. */
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = any;

/** A JSON HTTP response, body parsed when it is JSON. */
export interface HttpResponse<T = Loose> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

/** A running (or killed) server process on one database directory. */
export class ServerProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  private output = '';
  /** How the last process ended when nobody asked it to (a crash), with the log tail it left. */
  private crash: { code: number | null; signal: NodeJS.Signals | null; at: string; logs: string } | null =
    null;
  /** Set by {@link kill} just before it signals, so an exit it caused is not reported as a crash. */
  private stopping = false;
  /** Base URL of the current process, e.g. http://127.0.0.1:41234. */
  url = '';
  /** How many processes have been started on this database. */
  starts = 0;

  private constructor(
    /** The temp dir holding the database (removed by {@link cleanup}). */
    readonly dir: string,
    readonly databaseUrl: string,
    private readonly extraEnv: Record<string, string>,
  ) {}

  /** Spawns a server on a fresh database in a new temp dir and waits until it listens. */
  static async start(extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
    requireBuiltCli();
    const dir = mkdtempSync(join(tmpdir(), 'burndown-e2e-'));
    const server = new ServerProcess(dir, `sqlite:${join(dir, 'db.sqlite')}`, extraEnv);
    await server.spawn();
    return server;
  }

  /** Spawns a server on an existing database (e.g. a PostgreSQL URL shared by several processes). */
  static async startOn(databaseUrl: string, extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
    requireBuiltCli();
    const dir = mkdtempSync(join(tmpdir(), 'burndown-e2e-'));
    const server = new ServerProcess(dir, databaseUrl, extraEnv);
    await server.spawn();
    return server;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** The environment of the server and of CLI commands on the same database. */
  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      BURNDOWN_API_KEY: E2E_API_KEY,
      BURNDOWN_DATABASE_URL: this.databaseUrl,
      BURNDOWN_LOG_LEVEL: 'warn',
      ...this.extraEnv,
    };
  }

  private async spawn(): Promise<void> {
    if (this.child) throw new Error('server already running');
    const child = spawn(process.execPath, [CLI_PATH, 'serve'], {
      env: this.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    this.output = '';
    this.stopping = false;
    live.add(child);
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (!this.stopping) {
          this.crash = { code, signal, at: new Date().toISOString(), logs: this.output };
          // Nobody asked it to stop: it is gone, and requests to it would be refused.
          if (this.child === child) this.child = null;
        }
        resolveExit({ code, signal });
      });
    });
    const keep = (chunk: Buffer) => {
      // Keep the tail only: enough to explain a failure, bounded in memory.
      this.output = (this.output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stderr!.on('data', keep);
    this.url = await new Promise<string>((resolveUrl, reject) => {
      let stdout = '';
      const timer = setTimeout(() => {
        reject(
          new Error(
            `server did not print its listening line within ${STARTUP_TIMEOUT_MS} ms:\n${this.output}`,
          ),
        );
      }, STARTUP_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        keep(chunk);
        stdout += chunk.toString('utf8');
        const match = LISTENING.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      };
      child.stdout!.on('data', onData);
      void this.exited!.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`server exited during startup (code ${code}, signal ${signal}):\n${this.output}`));
      });
    });
  }

  /** Recent stdout/stderr of the current process (for failure messages). */
  logs(): string {
    return this.output;
  }

  /** The unrequested exit of the last process (code, signal, time, log tail), or null if none crashed. */
  get crashed(): { code: number | null; signal: NodeJS.Signals | null; at: string; logs: string } | null {
    return this.crash;
  }

  /**
   * What a failure message needs about this server: pid, whether it runs or how it ended
   * (code/signal; "crashed" when nobody killed it), and the tail of its stdout/stderr.
   */
  report(name = 'server'): string {
    const crash = this.crash;
    const state = this.child
      ? `running (pid ${this.child.pid}, ${this.url})`
      : crash
        ? `CRASHED at ${crash.at} (code ${crash.code}, signal ${crash.signal})`
        : 'stopped by the test';
    const tail = (crash && !this.child ? crash.logs : this.output).slice(-4_000);
    return `--- ${name}: ${state}, ${this.starts} start(s)\n${tail || '(no output)'}\n`;
  }

  /** Sends `signal` (SIGKILL by default) to the process and waits until it is gone. */
  async kill(
    signal: NodeJS.Signals = 'SIGKILL',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child) throw new Error(`server is not running\n${this.report()}`);
    this.stopping = true;
    child.kill(signal);
    const result = await this.exited!;
    this.child = null;
    return result;
  }

  /** Graceful stop (SIGTERM: the server closes its connections and the database, exit 0). */
  async stop(): Promise<void> {
    if (!this.child) return;
    const { code, signal } = await this.kill('SIGTERM');
    if (code !== 0)
      throw new Error(`server did not stop cleanly (code ${code}, signal ${signal}):\n${this.output}`);
  }

  /** Starts a new process on the same database (the old one must be gone). */
  async restart(): Promise<void> {
    if (this.child) await this.stop();
    await this.spawn();
  }

  /** Runs `burndown <args>` (e.g. `reconcile`) against the same database. */
  runCli(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
    requireBuiltCli();
    return new Promise((resolveRun, reject) => {
      const child = spawn(process.execPath, [CLI_PATH, ...args], {
        env: this.env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      live.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
      });
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`burndown ${args.join(' ')} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        live.delete(child);
        resolveRun({ code, signal, stdout, stderr });
      });
    });
  }

  /** One HTTP request with the admin key; JSON in, JSON (or text) out. Network errors reject. */
  async request<T = Loose>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse<T>> {
    const init: RequestInit = {
      method,
      headers: {
        authorization: `Bearer ${E2E_API_KEY}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
    };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const response = await fetch(`${this.url}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json') && text !== '')
      parsed = JSON.parse(text);
    return { status: response.status, headers: response.headers, body: parsed as T, text };
  }

  post<T = Loose>(path: string, body: unknown = {}, headers: Record<string, string> = {}) {
    return this.request<T>('POST', path, body, headers);
  }

  get<T = Loose>(path: string, headers: Record<string, string> = {}) {
    return this.request<T>('GET', path, undefined, headers);
  }

  /** Kills the process if still running (SIGKILL) and removes the database directory. */
  async cleanup(): Promise<void> {
    if (this.child) await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
