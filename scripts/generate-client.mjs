#!/usr/bin/env node
// Regenerates the TypeScript client's contract from the document the server serves:
// clients/typescript/openapi.json and clients/typescript/src/schema.d.ts (openapi-typescript).
// `--check` writes nothing and fails when either file is stale. Needs `npm run build` first.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderClientFiles } from './openapi-document.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = await renderClientFiles();
const check = process.argv.includes('--check');
let stale = 0;
for (const [relative, text] of Object.entries(files)) {
  const path = join(root, relative);
  let current = null;
  try {
    current = readFileSync(path, 'utf8');
  } catch {}
  if (current === text) continue;
  if (check) {
    console.error(`${relative} is stale: run \`npm run client:generate\` and commit the result`);
    stale += 1;
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${relative}`);
  }
}
if (stale > 0) process.exit(1);
