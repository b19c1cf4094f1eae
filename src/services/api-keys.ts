import { hash, randomBytes } from 'node:crypto';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { ApiKeyRecord, ApiKeyScope, Storage, WriteOperations } from '../ports/storage.js';
import { DEFAULT_WORKSPACE, type ServiceContext } from './context.js';
import { INSTALLATION_PERMISSIONS, type Permission, SCOPE_PRESETS } from './permissions.js';

/**
 * The bootstrap key's permissions: everything in its workspace plus the installation's own
 * (`workspaces:admin`: create and list workspaces).
 */
export const BOOTSTRAP_PERMISSIONS: readonly Permission[] = [
  ...SCOPE_PRESETS.admin,
  ...INSTALLATION_PERMISSIONS,
].sort();

/**
 * Keys are stored as SHA-256 digests: a leaked database does not leak usable keys. Every request
 * hashes its key, so this uses the one-shot `crypto.hash` (a quarter of `createHash`'s cost).
 */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex');
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
          permissions: BOOTSTRAP_PERMISSIONS,
        });
      } else if (JSON.stringify(existing?.permissions) !== JSON.stringify(BOOTSTRAP_PERMISSIONS)) {
        // A key registered before permissions existed (or before a new one was added) gets them now.
        await tx.setApiKeyPermissions(current, BOOTSTRAP_PERMISSIONS);
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
      permissions: BOOTSTRAP_PERMISSIONS,
    });
    return key;
  });
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

/** The last-used recorder of a server, writing through its storage. */
export function keyUsageRecorderOf(ctx: ServiceContext, onError: (error: unknown) => void): KeyUsageRecorder {
  return new KeyUsageRecorder(ctx.storage, onError);
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
export async function requireKeyStillActive(
  tx: WriteOperations,
  keyHash: string,
  now: Instant | null = null,
): Promise<ApiKeyRecord> {
  const record = await tx.findApiKeyByHash(keyHash);
  if (!record || record.revokedAt !== null) {
    throw new BurndownError(ErrorCode.unauthorized, 'this API key has been revoked', {});
  }
  if (now !== null && isExpired(record, now)) throw apiKeyExpired(record);
  return record;
}

/** Whether a key's expiry has passed at `now`. */
export function isExpired(record: Pick<ApiKeyRecord, 'expiresAt'>, now: Instant): boolean {
  return record.expiresAt !== null && record.expiresAt <= now;
}

/** The 401 of a key past its expiry: a distinct code, so a client knows to rotate rather than fix a typo. */
export function apiKeyExpired(record: Pick<ApiKeyRecord, 'id' | 'expiresAt'>): BurndownError {
  return new BurndownError(ErrorCode.apiKeyExpired, 'this API key has expired', {
    key_id: record.id,
    expired_at: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
  });
}

/** How often a key's last-used time is written at most: once a minute, not once a request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Records keys' last-used times cheaply: a key's time is written when it was last written (by
 * this process) a minute or more ago, in its own small write after the request, never in the
 * request's path. So `last_used_at` is exact to a minute per process, and a busy key costs one
 * write a minute, not one per request. Failures are reported to `onError` and otherwise ignored.
 */
export class KeyUsageRecorder {
  private readonly written = new Map<string, Instant>();

  constructor(
    private readonly storage: Storage,
    private readonly onError: (error: unknown) => void = () => undefined,
    private readonly maxEntries = 10_000,
  ) {}

  /** Notes a use of `record` at `now`; returns the write it started, if any (tests await it). */
  noteUsed(record: ApiKeyRecord, now: Instant): Promise<void> | null {
    const last = this.written.get(record.id) ?? record.lastUsedAt;
    if (last !== null && now - last < LAST_USED_RESOLUTION_MS) return null;
    remember(this.written, record.id, now, this.maxEntries);
    return this.storage
      .write(`${record.workspaceId}/api-keys`, async (tx) => tx.markApiKeyUsed(record.id, now))
      .catch(this.onError);
  }
}

/** Creates a key for the caller's workspace; the plain key is returned this once and never stored. */
export async function createApiKey(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: {
    workspaceId: string;
    scope: ApiKeyScope;
    name: string | null;
    now: number;
    /** Explicit permissions (already validated), or null for the scope's preset. */
    permissions?: readonly Permission[] | null;
    expiresAt?: Instant | null;
    rateLimit?: string | null;
  },
): Promise<{ record: ApiKeyRecord; key: string }> {
  const key = generateApiKey();
  const record: ApiKeyRecord = {
    id: ctx.ids.newId('ent').replace(/^ent_/, 'key_'),
    workspaceId: input.workspaceId,
    scope: input.scope,
    name: input.name,
    createdAt: input.now,
    revokedAt: null,
    permissions: input.permissions ?? null,
    expiresAt: input.expiresAt ?? null,
    lastUsedAt: null,
    rateLimit: input.rateLimit ?? null,
  };
  await tx.insertApiKey({ ...record, keyHash: hashApiKey(key) });
  return { record, key };
}
