import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('architecture', () => {
  it('keeps the domain core free of I/O, frameworks and outer layers', () => {
    const offenders: string[] = [];
    for (const file of filesUnder('src/domain')) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/from\s+'([^']+)'/g)) {
        const target = match[1]!;
        const allowed = target.startsWith('./') || target.startsWith('../');
        const escapes = /\.\.\/(\.\.\/)*(ports|services|storage|http|cli|config|infra)\//.test(target);
        if (!allowed || escapes) offenders.push(`${file} imports ${target}`);
      }
      if (/Date\.now\(|new Date\(\)|process\.|Math\.random\(/.test(source))
        offenders.push(`${file} reads time, randomness or the process`);
    }
    expect(offenders).toEqual([]);
  });

  it('keeps the CLI off the HTTP transport (it shares services and domain shapes, not presenters)', () => {
    const offenders: string[] = [];
    for (const file of filesUnder('src/cli')) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/from\s+'([^']+)'/g)) {
        if (/\/http\//.test(match[1]!) || match[1] === 'fastify')
          offenders.push(`${file} imports ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('keeps services free of transports and concrete storage adapters', () => {
    const offenders: string[] = [];
    for (const file of filesUnder('src/services')) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/from\s+'([^']+)'/g)) {
        if (/\/(http|cli|storage)\//.test(match[1]!) || match[1] === 'fastify')
          offenders.push(`${file} imports ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
