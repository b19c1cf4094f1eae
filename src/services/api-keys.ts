import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyRecord, ApiKeyScope, Storage, WriteOperations } from '../ports/storage.js';
import { DEFAULT_WORKSPACE, type ServiceContext } from './context.js';

/** Keys are stored as SHA-256 digests: a leaked database does not leak usable keys. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new random key (256 bits), prefixed so it is recognisable in logs and secret scanners. */
export function generateApiKey(): string {
  return `bd_${randomBytes(32).toString('base64url')}`;
}

/**
 * Makes sure the default workspace has an admin key. With `configuredKey` (from
 * BURNDOWN_API_KEY) that key is registered; without one, a key is generated the first time
 * only and returned so the caller can print it once. Returns null when nothing new was created.
 */
export async function ensureAdminKey(
  ctx: ServiceContext,
  configuredKey: string | null,
): Promise<string | null> {
  return ctx.storage.write('api-keys', async (tx) => {
    const now = ctx.clock.now();
    await tx.ensureWorkspace(DEFAULT_WORKSPACE, now);
    if (configuredKey !== null) {
      const keyHash = hashApiKey(configuredKey);
      if (await tx.findApiKeyByHash(keyHash)) return null;
      await tx.insertApiKey({
        id: ctx.ids.newId('ent').replace(/^ent_/, 'key_'),
        workspaceId: DEFAULT_WORKSPACE,
        keyHash,
        scope: 'admin',
        name: 'BURNDOWN_API_KEY',
        createdAt: now,
        revokedAt: null,
      });
      return null;
    }
    if ((await tx.countApiKeys(DEFAULT_WORKSPACE)) > 0) return null;
    const key = generateApiKey();
    await tx.insertApiKey({
      id: ctx.ids.newId('ent').replace(/^ent_/, 'key_'),
      workspaceId: DEFAULT_WORKSPACE,
      keyHash: hashApiKey(key),
      scope: 'admin',
      name: 'generated at first start',
      createdAt: now,
      revokedAt: null,
    });
    return key;
  });
}

/**
 * What a route needs: a key scope, or `balance` (any key: a `check` key, meant for the product's
 * enforcement path, may read balances but nothing else).
 */
export type RouteScope = ApiKeyScope | 'balance';

/** Whether a key's scope may call a route: admin ⊇ write ⊇ read; check may check and read balances. */
export function scopeAllows(scope: ApiKeyScope, required: RouteScope): boolean {
  switch (required) {
    case 'admin':
      return scope === 'admin';
    case 'write':
      return scope === 'admin' || scope === 'write';
    case 'check':
      return scope !== 'read';
    case 'read':
      return scope !== 'check';
    case 'balance':
      return true;
  }
}

/**
 * Resolves bearer keys to their record, caching lookups briefly so the hot path does not hash
 * and query on every request; a revoked key stops working within `ttlMs`.
 */
export class ApiKeyResolver {
  private readonly cache = new Map<string, { record: ApiKeyRecord | null; until: number }>();

  constructor(
    private readonly storage: Storage,
    private readonly nowMs: () => number,
    private readonly ttlMs = 5_000,
  ) {}

  async resolve(key: string): Promise<ApiKeyRecord | null> {
    const now = this.nowMs();
    const cached = this.cache.get(key);
    if (cached && cached.until > now) return cached.record;
    const record = await this.storage.read.findApiKeyByHash(hashApiKey(key));
    const usable = record && record.revokedAt === null ? record : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { record: usable, until: now + this.ttlMs });
    return usable;
  }
}

/** Creates a key for the caller's workspace; the plain key is returned this once and never stored. */
export async function createApiKey(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { workspaceId: string; scope: ApiKeyScope; name: string | null; now: number },
): Promise<{ record: ApiKeyRecord; key: string }> {
  const key = generateApiKey();
  const record: ApiKeyRecord = {
    id: ctx.ids.newId('ent').replace(/^ent_/, 'key_'),
    workspaceId: input.workspaceId,
    scope: input.scope,
    name: input.name,
    createdAt: input.now,
    revokedAt: null,
  };
  await tx.insertApiKey({ ...record, keyHash: hashApiKey(key) });
  return { record, key };
}
