/**
 * Encodings the license file and the usage log share. Only what every JavaScript runtime has
 * (TextEncoder, atob/btoa, `crypto.subtle`): this folder imports no package and no `node:` module,
 * so the same code verifies files in Node, in a browser and in the server.
 */

/** WebCrypto's `Subtle`, named structurally (the project compiles without the DOM library). */
export type Subtle = typeof globalThis.crypto.subtle;
/** A WebCrypto key. */
export type WebCryptoKey = Awaited<ReturnType<Subtle['importKey']>>;
/** A WebCrypto key pair. */
export interface WebCryptoKeyPair {
  readonly publicKey: WebCryptoKey;
  readonly privateKey: WebCryptoKey;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A string from UTF-8 bytes; throws on invalid UTF-8 (a tampered file). */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** base64url without padding (RFC 7515 §2). */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Bytes of a base64url text; null when it is not base64url. */
export function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  try {
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/**
 * The bytes as a plain ArrayBuffer (a copy): what every typing of WebCrypto accepts, Node's and
 * the DOM library's alike (a view over a possibly shared buffer is not, for the DOM library).
 */
export function arrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Canonical JSON: object keys sorted, no whitespace. What is hashed and signed must be byte-equal
 * on the machine that wrote it and the server that checks it, whatever order a runtime keeps keys in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The WebCrypto of this runtime (Node ≥ 20 and every current browser have Ed25519 in it). */
export function subtle(): Subtle {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('this runtime has no WebCrypto (crypto.subtle)');
  return s;
}

/** SHA-256 of bytes, as lower-case hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await subtle().digest('SHA-256', arrayBuffer(bytes))));
}

/** An Ed25519 public key from its JWK `x` (base64url of the 32 raw bytes); null when malformed. */
export async function importEd25519PublicKey(x: string): Promise<WebCryptoKey | null> {
  const raw = fromBase64url(x);
  if (raw === null || raw.length !== 32) return null;
  try {
    return await subtle().importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x }, { name: 'Ed25519' }, true, [
      'verify',
    ]);
  } catch {
    return null;
  }
}

/** Whether `signature` is an Ed25519 signature of `data` by `key`. */
export async function verifyEd25519(
  key: WebCryptoKey,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  try {
    return await subtle().verify({ name: 'Ed25519' }, key, arrayBuffer(signature), arrayBuffer(data));
  } catch {
    return false;
  }
}
