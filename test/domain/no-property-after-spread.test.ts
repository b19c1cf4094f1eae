import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * On the paths every request takes (the domain, storage, and the services of writes, checks and
 * ingest), no object literal lists a property after a spread (`{ ...input, now }`). On Node 20 such
 * a literal takes V8's slow path, about 1 µs per object, and gives each object a map of its own,
 * so every later read of its properties misses the inline caches: debits, checks and ingest each
 * lost 10-25 % to it (bench/README.md, "A property added after a spread"). `extend(base, extra)`
 * (src/domain/objects.ts) is the replacement; a spread alone, or properties before a spread, are fine.
 */

const HOT_SERVICES = [
  'balance-facts.ts',
  'commands.ts',
  'customer-upkeep.ts',
  'entitlements.ts',
  'ledger-persistence.ts',
  'ledger-session.ts',
  'ledger-set.ts',
  'ledger.ts',
  'metering.ts',
  'unit-of-work.ts',
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** `file:line: text` of every object literal in `source` with a property after a spread. */
function propertiesAfterSpread(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isObjectLiteralExpression(node)) {
      const props = node.properties;
      const spread = props.findIndex((p) => ts.isSpreadAssignment(p));
      if (spread >= 0 && props.slice(spread + 1).some((p) => !ts.isSpreadAssignment(p))) {
        const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        found.push(`${file}:${line}: ${node.getText().replace(/\s+/g, ' ').slice(0, 80)}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('no property after a spread on the hot paths', () => {
  it('finds the pattern it forbids, and not the shapes it allows', () => {
    const found = propertiesAfterSpread(
      'example.ts',
      [
        'const a = { ...input, now };',
        'const b = { ...input };',
        'const c = { now, ...input };',
        'const d = { ...x, ...y };',
        'const e = {\n  ...input,\n  at: 1,\n};',
      ].join('\n'),
    );
    expect(found.map((f) => f.split(':')[1])).toEqual(['1', '5']);
  });

  it('holds in src/domain, src/storage and the hot services', () => {
    const files = [
      ...filesUnder(join('src', 'domain')),
      ...filesUnder(join('src', 'storage')),
      ...HOT_SERVICES.map((name) => join('src', 'services', name)),
    ];
    const found = files.flatMap((file) => propertiesAfterSpread(file, readFileSync(file, 'utf8')));
    expect(found).toEqual([]);
  });
});
