import { createHash, randomBytes } from 'node:crypto';
import { BurndownError, ErrorCode } from '../domain/errors.js';
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

/** The name that marks the key BURNDOWN_API_KEY created (reserved: keys made over the API may not use it). */
export const ENV_KEY_NAME = 'BURNDOWN_API_KEY';

/**
 * Makes sure the default workspace has an admin key. With `configuredKey` (from
 * BURNDOWN_API_KEY) that key is registered, named {@link ENV_KEY_NAME}, and every other active key
 * of that name (what a previous value created) is revoked, so rotating the variable retires the
 * old key; a configured key that was revoked is refused (the server would otherwise start with no
 * usable key, or an old deployment could bring a retired key back). Without one, a key is
 * generated the first time only and returned so the caller can print it once. Returns null when
 * nothing new was generated.
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
      const existing = await tx.findApiKeyByHash(keyHash);
      if (existing && existing.revokedAt !== null) {
        throw new BurndownError(
          ErrorCode.invalidRequest,
          'BURNDOWN_API_KEY is a revoked key; set a new value',
          { name: 'BURNDOWN_API_KEY' },
        );
      }
      let current = existing?.id ?? null;
      if (current === null) {
        current = ctx.ids.newId('ent').replace(/^ent_/, 'key_');
        await tx.insertApiKey({
          id: current,
          workspaceId: DEFAULT_WORKSPACE,
          keyHash,
          scope: 'admin',
          name: ENV_KEY_NAME,
          createdAt: now,
          revokedAt: null,
        });
      }
      for (const key of await tx.listApiKeysOf(DEFAULT_WORKSPACE)) {
        if (key.name === ENV_KEY_NAME && key.revokedAt === null && key.id !== current) {
          await tx.revokeApiKey(DEFAULT_WORKSPACE, key.id, now);
        }
      }
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

/** Longest bearer key looked up; longer ones are refused unread (ours are 46 characters). */
export const MAX_API_KEY_LENGTH = 512;

/** How long a usable key is trusted from the cache: another process's revocation shows within this. */
export const API_KEY_CACHE_TTL_MS = 500;

/**
 * Resolves bearer keys to their record, caching by the key's SHA-256 (never the key itself), so
 * the hot path does not query on every request while memory stays bounded whatever callers send:
 * at most `maxEntries` usable keys for `ttlMs` (then re-read, so a revocation by another process
 * shows within `ttlMs` plus one query) and at most `maxEntries` unknown ones, for `ttlMs` too.
 * A revocation in this process calls {@link invalidate} before it is answered; a lookup that was
 * in flight meanwhile is not cached (a generation counter tells), so it cannot bring the key back.
 */
export class ApiKeyResolver {
  private readonly usable = new Map<string, { record: ApiKeyRecord; until: number }>();
  private readonly unknown = new Map<string, number>();
  private generation = 0;

  constructor(
    private readonly storage: Storage,
    private readonly nowMs: () => number,
    private readonly ttlMs = API_KEY_CACHE_TTL_MS,
    private readonly maxEntries = 10_000,
  ) {}

  /** Number of cached entries (usable and unknown), for tests of the bound. */
  get size(): number {
    return this.usable.size + this.unknown.size;
  }

  async resolve(key: string): Promise<{ record: ApiKeyRecord; keyHash: string } | null> {
    if (key.length > MAX_API_KEY_LENGTH) return null;
    const keyHash = hashApiKey(key);
    const now = this.nowMs();
    const cached = this.usable.get(keyHash);
    if (cached && cached.until > now) return { record: cached.record, keyHash };
    const unknownUntil = this.unknown.get(keyHash);
    if (unknownUntil !== undefined && unknownUntil > now) return null;
    const generation = this.generation;
    const found = await this.storage.read.findApiKeyByHash(keyHash);
    const record = found && found.revokedAt === null ? found : null;
    if (generation === this.generation) {
      if (record) {
        this.unknown.delete(keyHash);
        remember(this.usable, keyHash, { record, until: now + this.ttlMs }, this.maxEntries);
      } else {
        this.usable.delete(keyHash);
        remember(this.unknown, keyHash, now + this.ttlMs, this.maxEntries);
      }
    }
    return record ? { record, keyHash } : null;
  }

  /** Forgets every cached key (called when a key is revoked here, before the answer is sent). */
  invalidate(): void {
    this.generation += 1;
    this.usable.clear();
    this.unknown.clear();
  }
}

/** Sets a cache entry, evicting the oldest inserted entries beyond `max` (insertion order). */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}

/**
 * Refuses a write made with a key that is no longer usable, read inside the write's transaction:
 * a key revoked before this transaction (its revocation answered) cannot act, cache or not.
 */
export async function requireKeyStillActive(tx: WriteOperations, keyHash: string): Promise<void> {
  const record = await tx.findApiKeyByHash(keyHash);
  if (!record || record.revokedAt !== null) {
    throw new BurndownError(ErrorCode.unauthorized, 'this API key has been revoked', {});
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
