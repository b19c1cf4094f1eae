/**
 * The TypeScript client's generated files match the document the server serves (CI fails when they
 * are stale), the client type-checks against them, and every example runs to success against a
 * server it starts (`npx tsx examples/<name>.ts`, the command the README gives).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

describe('TypeScript client and examples', () => {
  it('clients/typescript/openapi.json and src/schema.d.ts are what the served document generates', async () => {
    // @ts-expect-error: a plain ES module script, shared with `npm run client:generate`.
    const { renderClientFiles } = (await import('../../scripts/openapi-document.mjs')) as {
      renderClientFiles(): Promise<Record<string, string>>;
    };
    const files = await renderClientFiles();
    for (const [relative, text] of Object.entries(files)) {
      const committed = readFileSync(join(root, relative), 'utf8');
      expect(committed === text, `${relative} is stale: run \`npm run client:generate\``).toBe(true);
    }
  });

  it('the client, its tests and the examples type-check against the generated types', async () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', join(root, 'clients/typescript/tsconfig.check.json')], {
      cwd: root,
    });
  });

  for (const example of ['walkthrough', 'ai-app', 'usage-pipeline', 'hybrid-plan', 'licensed-app/main']) {
    it(`examples/${example}.ts runs against a local server`, async () => {
      const tsx = join(root, 'node_modules/tsx/dist/cli.mjs');
      const env = { ...process.env };
      delete env['BURNDOWN_URL'];
      delete env['BURNDOWN_API_KEY'];
      const { stdout } = await run(process.execPath, [tsx, join(root, 'examples', `${example}.ts`)], {
        cwd: root,
        env,
        timeout: 120_000,
      });
      expect(stdout.length).toBeGreaterThan(0);
    });
  }
});
