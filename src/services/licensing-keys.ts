import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
} from 'node:crypto';
import type { Instant } from '../domain/time/instant.js';
import type { SigningKeyRecord, WriteOperations } from '../ports/storage.js';
import type { ServiceContext } from './context.js';

/**
 * License-file signing keys (docs/design.md "Licensing"): Ed25519 key pairs stored in the
 * database, the private key as PKCS#8 encrypted with AES-256-GCM under a key derived from
 * `BURNDOWN_LICENSING_SECRET` when it is set (stored in clear otherwise, and said so at start).
 * The newest key not retired signs; every key stays in the JWKS (retired ones until the files
 * they signed have expired: the longest file TTL after retirement).
 */
export interface LicensingOptions {
  /** Encrypts signing keys at rest; null: stored unencrypted. */
  readonly secret: string | null;
  /** Longest life of a license file, in ms (`BURNDOWN_LICENSE_FILE_TTL_SECONDS`). */
  readonly maxFileTtlMs: number;
}

/** Defaults: no secret, files valid 7 days. */
export const DEFAULT_LICENSING_OPTIONS: LicensingOptions = {
  secret: null,
  maxFileTtlMs: 7 * 24 * 3600 * 1000,
};

/** The lock that serialises key creation and rotation (not a customer's). */
const KEYS_LOCK = '#licensing-keys';

function aesKey(secret: string): Buffer {
  return createHash('sha256').update(`burndown licensing keys\0${secret}`).digest();
}

function sealPrivateKey(der: Buffer, secret: string | null): { text: string; encrypted: boolean } {
  if (secret === null) return { text: der.toString('base64'), encrypted: false };
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', aesKey(secret), iv);
  const body = Buffer.concat([cipher.update(der), cipher.final()]);
  return {
    text: [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64')).join('.'),
    encrypted: true,
  };
}

function openPrivateKey(record: SigningKeyRecord, secret: string | null): Buffer {
  if (!record.encrypted) return Buffer.from(record.privateKey, 'base64');
  if (secret === null)
    throw new Error(
      `licensing key ${record.kid} is encrypted: set BURNDOWN_LICENSING_SECRET to the secret it was stored with`,
    );
  const [iv, tag, body] = record.privateKey.split('.').map((p) => Buffer.from(p, 'base64'));
  const decipher = createDecipheriv('aes-256-gcm', aesKey(secret), iv!);
  decipher.setAuthTag(tag!);
  return Buffer.concat([decipher.update(body!), decipher.final()]);
}

function newKey(ctx: ServiceContext, options: LicensingOptions, now: Instant): SigningKeyRecord {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  const sealed = sealPrivateKey(privateKey.export({ format: 'der', type: 'pkcs8' }), options.secret);
  return {
    kid: ctx.ids.newId('lkey'),
    publicX: String(jwk.x),
    privateKey: sealed.text,
    encrypted: sealed.encrypted,
    createdAt: now,
    retiredAt: null,
  };
}

/** The key that signs now: the newest not retired, created when there is none. */
export async function currentSigningKey(
  ctx: ServiceContext,
  options: LicensingOptions,
): Promise<SigningKeyRecord> {
  const existing = (await ctx.storage.read.licensing.listSigningKeys()).filter((k) => k.retiredAt === null);
  const newest = existing[existing.length - 1];
  if (newest) return newest;
  return ctx.storage.write(KEYS_LOCK, async (tx) => {
    const again = (await tx.licensing.listSigningKeys()).filter((k) => k.retiredAt === null);
    const last = again[again.length - 1];
    if (last) return last;
    const key = newKey(ctx, options, ctx.clock.now());
    await tx.licensing.insertSigningKey(key);
    return key;
  });
}

/** Rotation: a new key signs from now on; the old ones stay published until their files expire. */
export async function rotateSigningKey(
  ctx: ServiceContext,
  options: LicensingOptions,
): Promise<SigningKeyRecord> {
  return ctx.storage.write(KEYS_LOCK, async (tx: WriteOperations) => {
    const now = ctx.clock.now();
    const key = newKey(ctx, options, now);
    await tx.licensing.insertSigningKey(key);
    await tx.licensing.retireSigningKeysExcept(key.kid, now);
    return key;
  });
}

/** One JWK of the public key set. */
export interface PublishedJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly use: 'sig';
}

/**
 * The public keys a verifier may meet: every key not retired, and retired keys until the files
 * they signed have expired (a file lives at most `maxFileTtlMs`).
 */
export async function publicKeySet(
  ctx: ServiceContext,
  options: LicensingOptions,
): Promise<{ keys: PublishedJwk[] }> {
  await currentSigningKey(ctx, options);
  const now = ctx.clock.now();
  const keys = (await ctx.storage.read.licensing.listSigningKeys()).filter(
    (k) => k.retiredAt === null || k.retiredAt + options.maxFileTtlMs > now,
  );
  return {
    keys: keys.map((k) => ({
      kty: 'OKP',
      crv: 'Ed25519',
      x: k.publicX,
      kid: k.kid,
      alg: 'EdDSA',
      use: 'sig',
    })),
  };
}

const b64url = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

/** Signs a payload as a compact JWS (`alg: EdDSA`, `kid`, `typ`) with a stored key. */
export function signCompactJws(
  key: SigningKeyRecord,
  options: LicensingOptions,
  typ: string,
  payload: unknown,
): string {
  const privateKey = createPrivateKey({
    key: openPrivateKey(key, options.secret),
    format: 'der',
    type: 'pkcs8',
  });
  const header = b64url(JSON.stringify({ alg: 'EdDSA', kid: key.kid, typ }));
  const body = b64url(JSON.stringify(payload));
  const signature = sign(null, Buffer.from(`${header}.${body}`), privateKey);
  return `${header}.${body}.${b64url(signature)}`;
}
