import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of src/ as a test. Every import and re-export specifier of every file under src/
 * is resolved to the top-level folder it lands in, and each never-rule below is checked:
 *
 * - `domain/` imports nothing outside itself (no packages, no Node built-ins, no outer layer);
 * - `services/` never imports `http/`, `cli/` or `storage/` (nor the web framework);
 * - `http/` never imports `storage/`;
 * - `cli/` never imports `http/`;
 * - `storage/` never imports `http/`;
 * - `licensing-verify/` imports nothing outside itself (no package, no `node:` module): it is the
 *   standalone verifier licensed applications embed, in Node or a browser.
 */

const SRC = 'src';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier of a source: static imports, `export … from`, side-effect and dynamic imports. */
function specifiersOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

interface Import {
  readonly file: string;
  /** The top-level folder under src/ (or the file name, e.g. `main.ts`) of the importing file. */
  readonly fromLayer: string;
  readonly specifier: string;
  /** Where the specifier lands: a top-level folder of src/, `package:<name>`, or `outside`. */
  readonly toLayer: string;
}

function layerOf(pathUnderSrc: string): string {
  return pathUnderSrc.split(sep)[0]!;
}

function importsOf(file: string, source = readFileSync(file, 'utf8')): Import[] {
  const fromLayer = layerOf(relative(SRC, file));
  return specifiersOf(source).map((specifier) => {
    if (!specifier.startsWith('.')) {
      return { file, fromLayer, specifier, toLayer: `package:${specifier}` };
    }
    const target = relative(SRC, normalize(join(dirname(file), specifier)));
    const toLayer = target.startsWith('..') ? 'outside' : layerOf(target);
    return { file, fromLayer, specifier, toLayer };
  });
}

/** The never-rules: importing layer → what it must never import. */
const NEVER: Record<string, (to: string) => boolean> = {
  domain: (to) => to !== 'domain',
  services: (to) => to === 'http' || to === 'cli' || to === 'storage' || to === 'package:fastify',
  http: (to) => to === 'storage',
  cli: (to) => to === 'http',
  storage: (to) => to === 'http',
  'licensing-verify': (to) => to !== 'licensing-verify',
};

function offenders(imports: readonly Import[]): string[] {
  return imports
    .filter((i) => NEVER[i.fromLayer]?.(i.toLayer) ?? false)
    .map((i) => `${i.file} (${i.fromLayer}) imports ${i.specifier} (${i.toLayer})`);
}

/** The import graph among the files of one folder (type-only imports included: they couple too). */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of filesUnder(dir)) {
    const targets = specifiersOf(readFileSync(file, 'utf8'))
      .filter((s) => s.startsWith('.'))
      .map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'))
      .filter((target) => dirname(target) === normalize(dir));
    graph.set(normalize(file), targets);
  }
  return graph;
}

/** The first import cycle found by depth-first search (as a path that returns to its start), or null. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') return [...path.slice(path.indexOf(next)), next];
      if (state.get(next) === undefined && graph.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    path.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    if (state.get(node) !== undefined) continue;
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

describe('architecture', () => {
  const all = filesUnder(SRC).flatMap((file) => importsOf(file));

  it('finds the imports it checks (the scanner is not blind)', () => {
    const layers = new Set(all.map((i) => i.fromLayer));
    for (const layer of Object.keys(NEVER)) expect(layers).toContain(layer);
    // Every kind of specifier the rules depend on is recognised.
    expect(
      specifiersOf(
        [
          "import { a } from '../http/a.js';",
          "import type { B } from '../storage/b.js';",
          "export { c } from '../http/c.js';",
          "export * from '../storage/d.js';",
          "import '../http/e.js';",
          "const f = await import('../storage/f.js');",
          'import {\n  g,\n  h,\n} from "../http/g.js";',
        ].join('\n'),
      ),
    ).toEqual([
      '../http/a.js',
      '../storage/b.js',
      '../http/c.js',
      '../storage/d.js',
      '../http/g.js',
      '../http/e.js',
      '../storage/f.js',
    ]);
  });

  it('reports a forbidden import (each rule can fail)', () => {
    const cases: [string, string][] = [
      ['src/domain/x.ts', "import pg from 'pg';"],
      ['src/domain/x.ts', "import { y } from '../ports/storage.js';"],
      ['src/services/x.ts', "import { y } from '../storage/sql/sql-store.js';"],
      ['src/services/x.ts', "export { y } from '../http/presenters.js';"],
      ['src/http/routes/x.ts', "import { y } from '../../storage/sql/sql-store.js';"],
      ['src/cli/x.ts', "import { y } from '../http/presenters.js';"],
      ['src/storage/sql/x.ts', "import type { Y } from '../../http/app.js';"],
      ['src/licensing-verify/x.ts', "import { createHash } from 'node:crypto';"],
      ['src/licensing-verify/x.ts', "import { Amount } from '../domain/amount/amount.js';"],
    ];
    for (const [file, source] of cases) expect(offenders(importsOf(file, source)), source).toHaveLength(1);
    expect(
      offenders(importsOf('src/http/routes/x.ts', "import { y } from '../../services/ledger.js';")),
    ).toEqual([]);
  });

  it('keeps every never-rule in src/', () => {
    expect(offenders(all)).toEqual([]);
  });

  it('http/ reaches storage only through services: it never references ctx.storage', () => {
    const offending = filesUnder(join(SRC, 'http')).filter((file) =>
      /\.storage\b/.test(readFileSync(file, 'utf8')),
    );
    expect(offending).toEqual([]);
  });

  it('finds an import cycle when there is one (the search is not blind)', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(findCycle(graph)).toEqual(['a.ts', 'b.ts', 'c.ts', 'a.ts']);
    expect(
      findCycle(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).toBeNull();
    expect(importGraph(join(SRC, 'services')).size).toBeGreaterThan(10);
  });

  it('has no import cycle among the services', () => {
    expect(findCycle(importGraph(join(SRC, 'services')))).toBeNull();
  });

  it('keeps the domain core free of time, randomness and the process', () => {
    const impure = filesUnder(join(SRC, 'domain')).filter((file) =>
      /Date\.now\(|new Date\(\)|process\.|Math\.random\(/.test(readFileSync(file, 'utf8')),
    );
    expect(impure).toEqual([]);
  });
});
