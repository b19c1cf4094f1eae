import { isAbsolute, resolve } from 'node:path';
import { BurndownError, ErrorCode } from '../domain/errors.js';

/** The database used when neither `--database` nor `BURNDOWN_DATABASE_URL` names one. */
export const DEFAULT_DATABASE_URL = 'sqlite:./data/burndown.db';

/** Refuses a URL that is neither `sqlite:<path>` nor `postgres://…` (or `postgresql://…`). */
export function checkDatabaseUrl(url: string, source = 'BURNDOWN_DATABASE_URL'): string {
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(url)) {
    throw new BurndownError(ErrorCode.invalidRequest, `${source} must start with sqlite: or postgres://`, {});
  }
  return url;
}

/** The file path of a `sqlite:` URL (relative paths are relative to the working directory). */
export function sqlitePathOf(url: string): string {
  return url.slice('sqlite:'.length) || './data/burndown.db';
}

/**
 * The URL as it may be printed: a SQLite path made absolute (so "which file?" has one answer,
 * whatever the working directory) and a PostgreSQL password replaced by `***`.
 */
export function describeDatabaseUrl(url: string, cwd: string = process.cwd()): string {
  if (url.startsWith('sqlite:')) {
    const path = sqlitePathOf(url);
    return path === ':memory:' || isAbsolute(path) ? `sqlite:${path}` : `sqlite:${resolve(cwd, path)}`;
  }
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    for (const name of [...parsed.searchParams.keys()]) {
      if (/pass/i.test(name)) parsed.searchParams.set(name, '***');
    }
    return parsed.toString();
  } catch {
    // Not parseable as a URL: hide everything between the scheme and the host.
    return url.replace(/^(postgres(?:ql)?:\/\/)[^@/]*@/, '$1***@');
  }
}
