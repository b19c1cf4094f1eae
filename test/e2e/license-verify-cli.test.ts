import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMachineKey, VERIFY_EXIT_CODES } from '../../src/licensing-verify/index.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';
import { CLI_PATH, requireBuiltCli } from './server-process.js';

/** `burndown license verify`: one exit code per way a license file fails, 0 when it is valid. */
function verify(args: readonly string[]): Promise<{ code: number | null; stdout: string }> {
  requireBuiltCli();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'license', 'verify', ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout }));
  });
}

describe('burndown license verify', () => {
  let t: TestApp;
  let dir: string;
  let file: string;
  let jwks: string;
  const now = (ms: number) => ['--now', new Date(ms).toISOString()];

  beforeAll(async () => {
    t = await createTestApp();
    dir = mkdtempSync(join(tmpdir(), 'burndown-license-'));
    await t.post('/v1/customers', { id: 'acme' });
    const { key } = (await t.post('/v1/licenses', { customer_id: 'acme' })).json() as { key: string };
    const { publicKey } = await generateMachineKey();
    const activated = await t.post(
      '/v1/licenses/activate',
      { fingerprint: 'fp-1', public_key: publicKey },
      { authorization: `License ${key}` },
    );
    file = join(dir, 'license.jws');
    jwks = join(dir, 'jwks.json');
    writeFileSync(file, activated.json().license_file as string);
    writeFileSync(jwks, (await t.get('/v1/licensing/jwks')).body);
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0 with the payload for a valid file', async () => {
    const run = await verify([file, '--jwks', jwks, '--fingerprint', 'fp-1', ...now(T0 + 1000)]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ valid: true, payload: { customer: { id: 'acme' } } });
  });

  it('exits with a distinct code for each refusal', async () => {
    const tampered = join(dir, 'tampered.jws');
    const [h, p, s] = (await import('node:fs')).readFileSync(file, 'utf8').split('.') as [
      string,
      string,
      string,
    ];
    writeFileSync(tampered, `${h}.${p.slice(0, -2)}AA.${s}`);
    const empty = join(dir, 'empty-jwks.json');
    writeFileSync(empty, '{"keys":[]}');
    const cases: [string[], keyof typeof VERIFY_EXIT_CODES][] = [
      [[tampered, '--jwks', jwks, ...now(T0)], 'tampered'],
      [[file, '--jwks', jwks, '--fingerprint', 'fp-2', ...now(T0)], 'wrong_machine'],
      [[file, '--jwks', jwks, ...now(T0 + 8 * 86_400_000)], 'expired'],
      [[file, '--jwks', jwks, ...now(T0 - 86_400_000)], 'clock_rollback'],
      [[file, '--jwks', empty, ...now(T0)], 'unknown_key'],
    ];
    for (const [args, error] of cases) {
      const run = await verify(args);
      expect(run.code, error).toBe(VERIFY_EXIT_CODES[error]);
      expect(JSON.parse(run.stdout)).toMatchObject({ valid: false, error });
    }
    expect(new Set(Object.values(VERIFY_EXIT_CODES)).size).toBe(Object.keys(VERIFY_EXIT_CODES).length);
  });
});
