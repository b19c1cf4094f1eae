import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDatabaseUrl } from '../../src/config/database-url.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { POSTGRES_URL } from '../contract/postgres.js';
import { createTestApp } from '../fixtures/harness.js';
import { CLI_PATH, requireBuiltCli } from './server-process.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `burndown` in `cwd` with only the environment given (no BURNDOWN_* leaks in). */
function burndown(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  requireBuiltCli();
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('BURNDOWN_')) base[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd,
      env: { ...base, ...env },
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
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'burndown-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('describeDatabaseUrl', () => {
  it('makes SQLite paths absolute and hides PostgreSQL passwords', () => {
    expect(describeDatabaseUrl('sqlite:./data/burndown.db', '/srv/app')).toBe(
      'sqlite:/srv/app/data/burndown.db',
    );
    expect(describeDatabaseUrl('sqlite:', '/srv/app')).toBe('sqlite:/srv/app/data/burndown.db');
    expect(describeDatabaseUrl('sqlite:/var/lib/b.db', '/srv/app')).toBe('sqlite:/var/lib/b.db');
    expect(describeDatabaseUrl('sqlite::memory:', '/srv/app')).toBe('sqlite::memory:');
    expect(describeDatabaseUrl('postgres://app:s3cret@db:5432/books')).toBe(
      'postgres://app:***@db:5432/books',
    );
    expect(describeDatabaseUrl('postgres://app@db/books?password=s3cret&sslmode=require')).toBe(
      'postgres://app@db/books?password=***&sslmode=require',
    );
    expect(describeDatabaseUrl('postgres://db/books')).toBe('postgres://db/books');
  });
});

describe('burndown CLI: which database, and refusing one that does not exist', () => {
  it('--version prints the package version; --help names the environment variables', async () => {
    const dir = tempDir();
    const version = (
      JSON.parse(readFileSync(join(CLI_PATH, '../../../package.json'), 'utf8')) as { version: string }
    ).version;
    const v = await burndown(['--version'], dir);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(version);
    const help = await burndown(['--help'], dir);
    expect(help.code).toBe(0);
    for (const name of [
      'BURNDOWN_DATABASE_URL',
      'BURNDOWN_API_KEY',
      'BURNDOWN_PG_POOL_SIZE',
      'PORT',
      'HOST',
    ]) {
      expect(help.stdout).toContain(name);
    }
    const reconcileHelp = await burndown(['reconcile', '--help'], dir);
    expect(reconcileHelp.stdout).toContain('--database <url>');
    expect(reconcileHelp.stdout).toContain('--progress');
  });

  it('from a directory without a database, reading commands exit 2 naming the path, and create nothing', async () => {
    const dir = tempDir();
    for (const args of [
      ['reconcile'],
      ['reconcile', '--json'],
      ['balance', 'acme'],
      ['backfill', '--rate', 'r'],
    ]) {
      const run = await burndown(args, dir);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`database sqlite:${join(dir, 'data/burndown.db')}`);
      expect(run.stderr).toContain('no database at');
    }
    // The same through BURNDOWN_DATABASE_URL and through --database (which wins over it).
    const viaEnv = await burndown(['reconcile'], dir, { BURNDOWN_DATABASE_URL: 'sqlite:elsewhere/b.db' });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toContain(`sqlite:${join(dir, 'elsewhere/b.db')}`);
    const viaOption = await burndown(['reconcile', '--database', 'sqlite:other.db'], dir, {
      BURNDOWN_DATABASE_URL: 'sqlite:elsewhere/b.db',
    });
    expect(viaOption.code).toBe(2);
    expect(viaOption.stderr).toContain(`sqlite:${join(dir, 'other.db')}`);
    expect(readdirSync(dir)).toEqual([]);
    const bad = await burndown(['reconcile', '--database', 'mysql://x/y'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/must start with sqlite: or postgres:\/\//);
  });

  it('a SQLite file that is not a Burndown database is refused and left as it was', async () => {
    const dir = tempDir();
    const path = join(dir, 'other.db');
    const db = new BetterSqlite3(path);
    db.exec('CREATE TABLE notes (body TEXT)');
    db.close();
    const run = await burndown(['reconcile', '--database', `sqlite:${path}`], dir);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is not a Burndown database');
    const after = new BetterSqlite3(path, { readonly: true });
    const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    after.close();
    expect(tables).toEqual(['notes']);
  });

  it('migrate creates the database; reconcile --json keeps stdout parseable; --progress reports on stderr', async () => {
    const dir = tempDir();
    const migrated = await burndown(['migrate', '--database', 'sqlite:books/b.db'], dir);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).toContain(`database sqlite:${join(dir, 'books/b.db')}`);
    expect(existsSync(join(dir, 'books/b.db'))).toBe(true);
    // Some ledger rows to reconcile: 3 customers with a grant and a debit each.
    const t = await createTestApp({ storage: await SqliteStorage.open({ path: join(dir, 'books/b.db') }) });
    for (const id of ['a', 'b', 'c']) {
      expect((await t.post('/v1/customers', { id })).statusCode).toBe(201);
      expect((await t.post(`/v1/customers/${id}/grants`, { amount: '10' })).statusCode).toBe(201);
      expect((await t.post(`/v1/customers/${id}/debits`, { amount: '1' })).statusCode).toBe(201);
    }
    await t.close();
    const json = await burndown(['reconcile', '--json'], dir, { BURNDOWN_DATABASE_URL: 'sqlite:books/b.db' });
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { ok: boolean; entries: number };
    expect(report).toMatchObject({ ok: true, entries: 6 });
    // Not a terminal and no --progress: no progress lines.
    expect(json.stderr.trim().split('\n')).toEqual([`burndown: database sqlite:${join(dir, 'books/b.db')}`]);
    const progress = await burndown(['reconcile', '--progress', '--progress-every', '2'], dir, {
      BURNDOWN_DATABASE_URL: 'sqlite:books/b.db',
    });
    expect(progress.code, progress.stderr).toBe(0);
    expect(progress.stdout).toMatch(/^reconcile: 6 entries, .*: OK\n$/);
    const lines = progress.stderr.trim().split('\n').slice(1);
    expect(lines.slice(0, 3)).toEqual([
      'reconcile: reading entries: 2 entries, 0 accounts, 0 grants, 0 events',
      'reconcile: reading entries: 4 entries, 0 accounts, 0 grants, 0 events',
      'reconcile: reading entries: 6 entries, 0 accounts, 0 grants, 0 events',
    ]);
    expect(lines.some((l) => l.startsWith('reconcile: reading grants: 6 entries,'))).toBe(true);
    const zero = await burndown(['reconcile', '--progress-every', '0'], dir);
    expect(zero.code).toBe(2);
    const balance = await burndown(['balance', 'a', '--database', 'sqlite:books/b.db'], dir);
    expect(balance.code, balance.stderr).toBe(0);
    expect((JSON.parse(balance.stdout) as { available: string }).available).toBe('9');
  });
  it('report revenue and report journal print the same books as the API, in JSON and CSV; bad options exit 2', async () => {
    const dir = tempDir();
    const t = await createTestApp({ storage: await SqliteStorage.open({ path: join(dir, 'r.db') }) });
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    const grant = { amount: '3', cost_basis: { amount: '10.00', currency: 'USD' } };
    expect((await t.post('/v1/customers/acme/grants', grant)).statusCode).toBe(201);
    expect((await t.post('/v1/customers/acme/debits', { amount: '1' })).statusCode).toBe(201);
    const api = (await t.get('/v1/reports/revenue?from=2025-12-01T00:00:00Z&to=2026-02-01T00:00:00Z')).json();
    await t.close();
    const db = [
      '--database',
      'sqlite:r.db',
      '--from',
      '2025-12-01T00:00:00Z',
      '--to',
      '2026-02-01T00:00:00Z',
    ];
    const json = await burndown(['report', 'revenue', ...db], dir);
    expect(json.code, json.stderr).toBe(0);
    const printed = JSON.parse(json.stdout) as { rows: Record<string, string>[] };
    expect(printed.rows).toEqual([...api.rows, ...api.totals]);
    expect(printed.rows[0]).toMatchObject({
      group: 'acme',
      additions: '10.00',
      recognised: '3.33',
      closing_deferred: '6.67',
    });
    const csv = await burndown(['report', 'revenue', ...db, '--group-by', 'month', '--format', 'csv'], dir);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\r\n').slice(0, 2)).toEqual([
      'currency,group,period_start,period_end,opening_deferred,additions,recognised,breakage,refunds,closing_deferred',
      'USD,2026-01,2026-01-01T00:00:00.000Z,2026-02-01T00:00:00.000Z,0.00,10.00,3.33,0.00,0.00,6.67',
    ]);
    const journal = await burndown(['report', 'journal', ...db, '--format', 'csv'], dir);
    expect(journal.code, journal.stderr).toBe(0);
    expect(journal.stdout).toContain(
      'USD-2026-01-recognised,2026-01-01,2026-02-01T00:00:00.000Z,USD,revenue,0.00,3.33,',
    );
    for (const bad of [
      ['--group-by', 'week'],
      ['--format', 'xml'],
      ['--currency', 'usd'],
    ]) {
      const run = await burndown(['report', 'revenue', ...db, ...bad], dir);
      expect(run.code, run.stderr).toBe(2);
    }
    const backwards = await burndown(
      [
        'report',
        'revenue',
        '--database',
        'sqlite:r.db',
        '--from',
        '2026-02-01T00:00:00Z',
        '--to',
        '2026-01-01T00:00:00Z',
      ],
      dir,
    );
    expect(backwards.code).toBe(2);
  });
});

describe('burndown CLI on PostgreSQL', () => {
  it('refuses a database that does not exist or was never migrated, and never prints the password', async () => {
    const dir = tempDir();
    const name = `bd_cli_${randomBytes(5).toString('hex')}`;
    const url = new URL(POSTGRES_URL ?? '');
    // Trust auth (the CI's server) takes any password; the embedded server needs its own.
    const password = url.password || 'pw-do-not-print';
    url.password = password;
    url.pathname = `/${name}`;
    const target = url.toString();
    const missing = await burndown(['reconcile', '--database', target], dir);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain('no database at');
    const admin = new pg.Client({ connectionString: POSTGRES_URL ?? '' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const empty = await burndown(['balance', 'acme', '--database', target], dir);
      expect(empty.code, empty.stderr).toBe(2);
      expect(empty.stderr).toContain('is not a Burndown database');
      const migrated = await burndown(['migrate', '--database', target], dir);
      expect(migrated.code, migrated.stderr).toBe(0);
      const ok = await burndown(['reconcile', '--json'], dir, { BURNDOWN_DATABASE_URL: target });
      expect(ok.code, ok.stderr).toBe(0);
      expect((JSON.parse(ok.stdout) as { ok: boolean }).ok).toBe(true);
      for (const run of [missing, empty, migrated, ok]) {
        expect(run.stderr).toContain(':***@');
        expect(run.stderr + run.stdout).not.toContain(password);
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('audit verify exits 0 on an unbroken chain and 1 naming the first bad record after tampering', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.db');
    const t = await createTestApp({ storage: await SqliteStorage.open({ path }) });
    expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    for (let i = 0; i < 3; i++) {
      expect((await t.post('/v1/customers/acme/grants', { amount: '10' })).statusCode).toBe(201);
    }
    await t.close();
    const ok = await burndown(['audit', 'verify', '--database', 'sqlite:audit.db'], dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^audit verify: 3 records in 1 workspace chains: OK\n/);
    expect(ok.stdout).toMatch(/head workspace=default seq=3 hash=[0-9a-f]{64}/);
    const db = new BetterSqlite3(path);
    db.prepare("UPDATE audit_log SET action = 'grant.voided' WHERE seq = 2").run();
    db.close();
    const broken = await burndown(['audit', 'verify', '--database', 'sqlite:audit.db'], dir);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('BROKEN');
    expect(broken.stdout).toMatch(
      /first bad record: workspace=default seq=2 id=aud_\S+: hash does not match/,
    );
  });
});

describe('the Node flags serve runs with', () => {
  // npm start and the benchmarks must start the server the same way, or a measured figure would
  // not be the one of the service as documented.
  it('npm start and the benchmarks agree, and node takes the flags', async () => {
    const root = join(import.meta.dirname, '..', '..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const start = pkg.scripts.start!;
    const startFlags = start.slice('node '.length, start.indexOf('dist/cli/main.js')).trim();
    expect(startFlags).toBe('--max-semi-space-size=64');
    const bench = (await import(join(root, 'bench', 'lib.mjs'))) as { SERVE_NODE_FLAGS: string[] };
    expect(bench.SERVE_NODE_FLAGS.join(' ')).toBe(startFlags);
    const probe = await new Promise<string>((resolve, reject) => {
      const args = [...startFlags.split(' '), '-e', 'process.stdout.write(process.execArgv.join(" "))'];
      const child = spawn(process.execPath, args);
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      child.once('error', reject);
      child.once('exit', () => resolve(out));
    });
    expect(probe).toContain('--max-semi-space-size=64');
  });
});
