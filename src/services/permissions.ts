import { invalidRequest } from '../domain/errors.js';
import type { ApiKeyRecord, ApiKeyScope } from '../ports/storage.js';

/**
 * What an API key may do, as `resource:action` permissions. Each operation of the API needs exactly
 * one (declared in one place: OPERATION_PERMISSIONS in src/http/permissions.ts); a key holds a set.
 * The four scopes of the first API (`admin`, `write`, `read`, `check`) are presets of this set, so
 * every key made with a scope keeps exactly the rights it had.
 */
export const PERMISSIONS = [
  'customers:read',
  'customers:write',
  'ledger:read',
  'ledger:write',
  'balances:read',
  'events:read',
  'events:write',
  'metering:read',
  'metering:write',
  'catalog:read',
  'catalog:write',
  'subscriptions:read',
  'subscriptions:write',
  'check:read',
  'reports:read',
  'audit:read',
  'metrics:read',
  'keys:admin',
  'webhooks:admin',
  'finance:admin',
  'alerts:read',
  'alerts:write',
  'licenses:read',
  'licenses:write',
  'licenses:admin',
  'portal:write',
  'workspaces:admin',
] as const;

/** One permission (see {@link PERMISSIONS}). */
export type Permission = (typeof PERMISSIONS)[number];

/**
 * The one permission that is not about a workspace: creating and listing workspaces is the
 * installation's business. Only the bootstrap key (BURNDOWN_API_KEY, or the key generated at first
 * start) holds it; no preset includes it and a workspace admin cannot grant it.
 */
export const INSTALLATION_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>(['workspaces:admin']);

const WORKSPACE_PERMISSIONS: readonly Permission[] = PERMISSIONS.filter(
  (p) => !INSTALLATION_PERMISSIONS.has(p),
);

/** Held by every preset: any valid key could read balances, quote and scrape metrics before permissions. */
const ANY_KEY: readonly Permission[] = ['balances:read', 'metrics:read'];

/** Administrative reads and writes that only the `admin` preset holds. */
const ADMIN_ONLY: ReadonlySet<Permission> = new Set<Permission>([
  'keys:admin',
  'webhooks:admin',
  'finance:admin',
  'licenses:admin',
  'reports:read',
  'audit:read',
]);

/**
 * The scopes as presets: `admin` holds every workspace permission; `write` every one but the
 * administrative ones (keys, webhooks, reports, audit); `read` the reads but `check:read` (a read
 * key could never check); `check` only `check:read` and what any key may read.
 */
export const SCOPE_PRESETS: Readonly<Record<ApiKeyScope, readonly Permission[]>> = {
  admin: WORKSPACE_PERMISSIONS,
  write: WORKSPACE_PERMISSIONS.filter((p) => !ADMIN_ONLY.has(p)),
  read: WORKSPACE_PERMISSIONS.filter((p) => p.endsWith(':read') && !ADMIN_ONLY.has(p) && p !== 'check:read'),
  check: ['check:read', ...ANY_KEY],
};

/** Whether a string names a permission. */
export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * The permissions a key holds: its own list when it was made with one, else its scope's preset
 * (keys made before permissions existed, and keys made with `scope` only).
 */
export function permissionsOf(key: Pick<ApiKeyRecord, 'scope' | 'permissions'>): ReadonlySet<Permission> {
  // Every request asks this of its key's record, which the key cache hands out for a while: the
  // set is built once per record object (records are never changed in place).
  const known = permissionSets.get(key);
  if (known !== undefined) return known;
  const set: ReadonlySet<Permission> =
    key.permissions !== null
      ? new Set(key.permissions.filter(isPermission))
      : new Set(SCOPE_PRESETS[key.scope]);
  permissionSets.set(key, set);
  return set;
}

const permissionSets = new WeakMap<object, ReadonlySet<Permission>>();

/**
 * Checks a requested list of permissions: known names, no duplicates, and nothing the creating
 * key does not hold itself (a key cannot mint a key more powerful than itself; installation
 * permissions are never granted over the API). Returns them sorted.
 */
export function validatePermissions(
  requested: readonly string[],
  creator: ReadonlySet<Permission>,
): Permission[] {
  const out = new Set<Permission>();
  for (const p of requested) {
    if (!isPermission(p)) {
      throw invalidRequest(`unknown permission ${p}`, { field: 'permissions', allowed: [...PERMISSIONS] });
    }
    if (INSTALLATION_PERMISSIONS.has(p)) {
      throw invalidRequest(`${p} belongs to the installation's bootstrap key and cannot be granted`, {
        field: 'permissions',
      });
    }
    if (!creator.has(p)) {
      throw invalidRequest(`the creating key does not hold ${p}`, { field: 'permissions' });
    }
    out.add(p);
  }
  return [...out].sort();
}

/**
 * The scope recorded for a key made with explicit permissions: the smallest preset that holds them
 * all (so old clients reading `scope` see something meaningful), `admin` when none does.
 */
export function scopeCovering(permissions: readonly Permission[]): ApiKeyScope {
  for (const scope of ['check', 'read', 'write', 'admin'] as const) {
    const preset = new Set(SCOPE_PRESETS[scope]);
    if (permissions.every((p) => preset.has(p))) return scope;
  }
  return 'admin';
}
