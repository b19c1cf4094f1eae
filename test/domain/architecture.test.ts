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
 *
 * And the ledger engine stays out of storage (see "storage never sees the engine" below): src/storage
 * and src/ports import the engine's module (domain/ledger/credit-ledger.js) for types only, and
 * never name the `CreditLedger` class; the port receives `LedgerChanges` (domain/ledger/changes.js).
 *
 * And paging (see "one paging type" below): every listing of the storage port takes a
 * `PageRequest` and answers a `Page`; only http/ turns resume keys into cursor strings; only
 * storage/ reads a resume key's parts.
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

/** A method of the storage port: its name, parameter list and return type (whitespace collapsed). */
interface PortMethod {
  readonly name: string;
  readonly params: string;
  readonly returns: string;
}

/** The methods declared in a port's source (parameter lists hold no parentheses in src/ports). */
function portMethods(source: string): PortMethod[] {
  const flat = (text: string) => text.replace(/\s+/g, ' ').trim();
  return [...source.matchAll(/\n {2}(\w+)\(([^()]*)\):\s*([^;]*);/g)].map((m) => ({
    name: m[1]!,
    params: flat(m[2]!),
    returns: flat(m[3]!),
  }));
}

/**
 * Methods that take a bare `limit` and are not listings: work queues drained by changing what they
 * select (a claim, a due date moved, a notice recorded), so they never resume from a position;
 * and the outbox's tail read, whose `seq` is an offset kept by a reader that must resume after the
 * end (docs/design.md "Paging").
 */
const NOT_LISTINGS = new Set([
  'findDueSubscriptions',
  'findLicensesWithSilentMachines',
  'listAfter',
  'claimEventsToFanOut',
  'claimDueDeliveries',
  'expiringWithoutNotice',
  'listWaitingTopUps',
  'findDueLedgers',
]);

/** What breaks the paging rules among a port's methods: a listing that pages its own way. */
function pagingOffenders(methods: readonly PortMethod[]): string[] {
  const out: string[] = [];
  for (const m of methods) {
    const pageRequests = m.params.match(/:\s*PageRequest\b/g)?.length ?? 0;
    const answersPage = /^Awaitable<Page<.*>>$/.test(m.returns);
    if (answersPage !== (pageRequests === 1)) out.push(`${m.name}: a Page answers exactly one PageRequest`);
    const ownPaging = /\b(after\w*|cursor|offset|limit)\??:/.test(m.params) || /\blimit\b/.test(m.params);
    if (ownPaging && !NOT_LISTINGS.has(m.name))
      out.push(`${m.name}: pages with its own arguments (${m.params})`);
  }
  return out;
}

/** The engine's module: the `CreditLedger` class and the types around it. */
const ENGINE_MODULE = /(^|\/)domain\/ledger\/credit-ledger\.js$/;

/**
 * What breaks "storage never sees the engine" in one file of src/storage or src/ports:
 * - an import or re-export that names `CreditLedger` (from any module, aliased or not, type or value);
 * - an import or re-export of the engine's module that is not type-only (`import type { … }`, or
 *   every specifier marked `type`): no runtime dependency on the engine at all;
 * - a namespace, default, side-effect or dynamic import of the engine's module (`import * as`,
 *   `import '…'`, `import('…')`, which is also how a type query would reach the class).
 */
function engineOffenders(file: string, source: string): string[] {
  const out: string[] = [];
  const statements = /\b(?:import|export)\s+(type\s+)?([^'"`;]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const [, typeOnly, clause, specifier] of source.matchAll(statements)) {
    const names = clause!
      .replace(/[{}]/g, ',')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== '');
    if (names.some((name) => /\bCreditLedger\b/.test(name)))
      out.push(`${file}: names CreditLedger (${specifier})`);
    if (!ENGINE_MODULE.test(specifier!)) continue;
    if (!clause!.trim().startsWith('{') || /\*/.test(clause!))
      out.push(`${file}: imports the engine module whole (${clause!.trim()})`);
    else if (typeOnly === undefined && names.some((name) => !name.startsWith('type ')))
      out.push(`${file}: imports values of the engine module (${names.join(', ')})`);
  }
  for (const [, specifier] of source.matchAll(/\bimport\s*\(?\s*['"]([^'"]+)['"]/g)) {
    if (ENGINE_MODULE.test(specifier!)) out.push(`${file}: imports the engine module at run time`);
  }
  return out;
}

/** Source files of some folders of src/ whose text matches a pattern. */
function filesMatching(dirs: readonly string[], pattern: RegExp): string[] {
  return dirs
    .flatMap((dir) => filesUnder(join(SRC, dir)))
    .filter((file) => pattern.test(readFileSync(file, 'utf8')));
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

  describe('storage never sees the engine', () => {
    it('reports each way storage could reach the CreditLedger class (each rule can fail)', () => {
      const engine = "'../../domain/ledger/credit-ledger.js'";
      const cases = [
        `import type { CreditLedger } from ${engine};`,
        `import type { CreditLedgerSnapshot, CreditLedger as L } from ${engine};`,
        `import { type CreditLedgerSnapshot, CreditLedger } from ${engine};`,
        `import { type CreditLedgerSnapshot, noAccounts } from ${engine};`,
        `import * as engine from ${engine};`,
        `import type * as engine from ${engine};`,
        `export { CreditLedger } from '../x.js';`,
        `type L = import(${engine}).CreditLedger;`,
        `import ${engine};`,
      ];
      for (const source of cases) expect(engineOffenders('x.ts', source), source).not.toEqual([]);
      for (const source of [
        `import type { CreditLedgerSnapshot, DebitRecord } from ${engine};`,
        `import { type CreditLedgerSnapshot, type ReversibleDebit } from ${engine};`,
        "import { copyGrant, type LedgerChanges } from '../../domain/ledger/changes.js';",
      ])
        expect(engineOffenders('x.ts', source), source).toEqual([]);
    });

    it('src/storage and src/ports import the engine module for types only, never CreditLedger', () => {
      const files = [...filesUnder(join(SRC, 'storage')), ...filesUnder(join(SRC, 'ports'))];
      // The scanner sees the type imports there are (it is not blind).
      expect(
        files.filter((file) => /credit-ledger\.js/.test(readFileSync(file, 'utf8'))).length,
      ).toBeGreaterThan(3);
      expect(files.flatMap((file) => engineOffenders(file, readFileSync(file, 'utf8')))).toEqual([]);
    });
  });

  it('http/ reaches storage only through services: it never references ctx.storage', () => {
    const offending = filesUnder(join(SRC, 'http')).filter((file) =>
      /\.storage\b/.test(readFileSync(file, 'utf8')),
    );
    expect(offending).toEqual([]);
  });

  describe('one paging type', () => {
    const port = portMethods(readFileSync(join(SRC, 'ports', 'storage.ts'), 'utf8'));

    it('reads the port (the parser is not blind) and catches a listing that pages its own way', () => {
      expect(port.length).toBeGreaterThan(150);
      expect(port.filter((m) => m.returns.startsWith('Awaitable<Page<')).length).toBeGreaterThan(20);
      const parsed = portMethods(
        [
          '',
          '  listA(workspaceId: string, afterId: string, limit: number): Awaitable<Page<A>>;',
          '  listB(',
          '    workspaceId: string,',
          '    afterSeq: number,',
          '    limit: number,',
          '  ): Awaitable<readonly B[]>;',
          '  listC(workspaceId: string, page: PageRequest): Awaitable<readonly C[]>;',
          '  listD(workspaceId: string, cursor: string | null): Awaitable<Page<D>>;',
          '  listE(workspaceId: string, page: PageRequest): Awaitable<Page<E>>;',
        ].join('\n'),
      );
      expect(parsed.map((m) => m.name)).toEqual(['listA', 'listB', 'listC', 'listD', 'listE']);
      expect(pagingOffenders(parsed).map((o) => o.split(':')[0])).toEqual([
        'listA',
        'listA',
        'listB',
        'listC',
        'listD',
        'listD',
      ]);
    });

    it('every listing of the storage port takes one PageRequest and answers one Page', () => {
      expect(pagingOffenders(port)).toEqual([]);
      // The exceptions are real methods (a renamed one must leave the list, not linger in it).
      const names = new Set(port.map((m) => m.name));
      expect([...NOT_LISTINGS].filter((name) => !names.has(name))).toEqual([]);
    });

    it('only http/ has the cursor codec: nothing else imports it, makes or reads cursor strings', () => {
      const outside = ['services', 'storage', 'cli', 'domain', 'infra', 'ports'];
      expect(filesMatching(outside, /pagination\.js|\b(en|de)codeCursor\b/)).toEqual([]);
      expect(
        all.filter((i) => i.fromLayer !== 'http' && /\/http\/pagination\.js$/.test(i.specifier)),
      ).toEqual([]);
      expect(filesMatching(['http'], /\bfunction (en|de)code\w*Cursor\b|toString\('base64url'\)/)).toEqual([
        join(SRC, 'http', 'pagination.ts'),
      ]);
    });

    it('only storage/ reads the parts of a resume key: services and http/ pass keys through whole', () => {
      const indexing = /\b(nextAfter|after)\s*(\?\.)?\[|resumeKeyParts|keyParts\(/;
      expect(filesMatching(['services', 'http', 'cli'], indexing)).toEqual([]);
      // The pattern sees the ways a part is read.
      for (const text of ['page.after[0]', 'got.nextAfter?.[1]', 'resumeKeyParts(k, 2)']) {
        expect(indexing.test(text), text).toBe(true);
      }
    });
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
