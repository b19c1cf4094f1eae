import { fromBase64url, fromUtf8, importEd25519PublicKey, utf8, verifyEd25519 } from './encoding.js';

/**
 * A license file (docs/design.md "Licensing"): a JWS in compact serialisation (RFC 7515),
 * `base64url(header).base64url(payload).base64url(signature)`, signed with Ed25519 (`alg: EdDSA`),
 * whose header names the signing key (`kid`) and whose payload is a {@link LicenseFilePayload}.
 * Any JOSE library verifies it; this module does so with WebCrypto alone.
 */
export const LICENSE_FILE_TYPE = 'burndown-license+jws';

/** The version of {@link LicenseFilePayload} this module reads. */
export const LICENSE_FILE_VERSION = 1;

/** One entitlement as a license file carries it (amounts as decimal strings). */
export interface FileEntitlement {
  readonly feature_id: string;
  readonly usage_limit: { readonly amount: string; readonly period: string } | null;
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly overage: { readonly max: string | null } | null;
}

/** Credits leased to the machine for offline use: a hold on the server until `expires_at`. */
export interface FileCreditLease {
  readonly id: string;
  readonly credit_type: string;
  readonly amount: string;
  readonly expires_at: string;
}

/** What a license file says, signed. Instants are RFC 3339 UTC texts. */
export interface LicenseFilePayload {
  readonly version: number;
  readonly license: {
    readonly id: string;
    readonly status: string;
    readonly plan_id: string | null;
    readonly machine_limit: number;
    readonly starts_at: string;
    readonly expires_at: string | null;
    readonly metadata: Readonly<Record<string, unknown>>;
  };
  readonly customer: { readonly id: string };
  readonly machine: { readonly id: string; readonly fingerprint: string };
  readonly entitlements: readonly FileEntitlement[];
  /** Config values of the entitlements by feature id (the `config` of config features). */
  readonly config: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly credit_lease: FileCreditLease | null;
  readonly issued_at: string;
  /** The file is not valid after this instant (bounded by the server's file TTL and the license's end). */
  readonly expires_at: string;
  /**
   * The server's clock when it signed the file: a machine whose clock reads earlier than this
   * (by more than the allowed skew) has had its clock set back.
   */
  readonly last_seen_at: string;
}

/** One public key of a JWKS document. */
export interface PublicJwk {
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly kid?: string;
  readonly alg?: string;
  readonly use?: string;
}

/** `GET /v1/licensing/jwks`: the keys files may be signed with (retired keys stay until their files expire). */
export interface Jwks {
  readonly keys: readonly PublicJwk[];
}

/**
 * Why a file is refused, each its own code (and `burndown license verify` exit code):
 * - `malformed`: not a compact JWS with a JSON payload of this version;
 * - `unknown_key`: signed with a `kid` the key set does not have;
 * - `tampered`: the signature does not match the header and payload;
 * - `wrong_machine`: issued for another machine fingerprint;
 * - `expired`: past its `expires_at`;
 * - `clock_rollback`: the verifier's clock reads earlier than the server's signed `last_seen_at`
 *   (or than the last time the caller saw), beyond the allowed skew.
 */
export type LicenseFileError =
  | 'malformed'
  | 'unknown_key'
  | 'tampered'
  | 'wrong_machine'
  | 'expired'
  | 'clock_rollback';

/** Exit codes of `burndown license verify`, one per error (0: valid). */
export const VERIFY_EXIT_CODES: Readonly<Record<LicenseFileError, number>> = {
  malformed: 10,
  unknown_key: 11,
  tampered: 12,
  wrong_machine: 13,
  expired: 14,
  clock_rollback: 15,
};

/** The result of {@link verifyLicenseFile}. */
export type LicenseFileVerdict =
  | { readonly ok: true; readonly payload: LicenseFilePayload; readonly kid: string }
  | { readonly ok: false; readonly error: LicenseFileError; readonly message: string };

/** Options of {@link verifyLicenseFile}. */
export interface VerifyOptions {
  /** This machine's fingerprint: a file for another machine is refused. Omit to skip the check. */
  readonly fingerprint?: string;
  /** The verifier's now (epoch ms); default the runtime's clock. */
  readonly now?: number;
  /**
   * The latest instant this machine has seen (its own high-water mark, kept across runs): a now
   * before it is a clock set back even when the file's `last_seen_at` is older.
   */
  readonly lastKnownTime?: number;
  /** Allowed clock skew in ms (default 5 minutes). */
  readonly skewMs?: number;
}

const DEFAULT_SKEW_MS = 5 * 60 * 1000;

const refuse = (error: LicenseFileError, message: string): LicenseFileVerdict => ({
  ok: false,
  error,
  message,
});

function parseJson(bytes: Uint8Array | null): unknown {
  if (bytes === null) return undefined;
  try {
    return JSON.parse(fromUtf8(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

function instant(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Verifies a license file offline: its signature against the key set, then the machine, the
 * clock and the expiry, in that order (a forged file is `tampered` whatever it claims).
 */
export async function verifyLicenseFile(
  file: string,
  jwks: Jwks,
  options: VerifyOptions = {},
): Promise<LicenseFileVerdict> {
  const parts = file.trim().split('.');
  if (parts.length !== 3) return refuse('malformed', 'a license file is a compact JWS of three parts');
  const [headerText, payloadText, signatureText] = parts as [string, string, string];
  const header = parseJson(fromBase64url(headerText)) as Record<string, unknown> | undefined;
  if (typeof header !== 'object' || header === null)
    return refuse('malformed', 'the JWS header is not base64url JSON');
  if (header['alg'] !== 'EdDSA') return refuse('malformed', 'the JWS is not signed with EdDSA');
  const kid = header['kid'];
  if (typeof kid !== 'string') return refuse('malformed', 'the JWS header names no kid');
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk) return refuse('unknown_key', `no key "${kid}" in the key set`);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
    return refuse('unknown_key', `key "${kid}" is not an Ed25519 key`);
  const key = await importEd25519PublicKey(jwk.x);
  if (key === null) return refuse('unknown_key', `key "${kid}" is not a valid Ed25519 key`);
  const signature = fromBase64url(signatureText);
  if (signature === null || signature.length !== 64)
    return refuse('tampered', 'the signature is not an Ed25519 signature');
  if (!(await verifyEd25519(key, signature, utf8(`${headerText}.${payloadText}`))))
    return refuse('tampered', 'the signature does not match the file');
  const payload = parseJson(fromBase64url(payloadText)) as LicenseFilePayload | undefined;
  if (typeof payload !== 'object' || payload === null || payload.version !== LICENSE_FILE_VERSION)
    return refuse('malformed', `the payload is not a version ${LICENSE_FILE_VERSION} license file`);
  const expiresAt = instant(payload.expires_at);
  const lastSeenAt = instant(payload.last_seen_at);
  if (expiresAt === null || lastSeenAt === null)
    return refuse('malformed', 'the payload has no valid expires_at or last_seen_at');
  if (options.fingerprint !== undefined && payload.machine?.fingerprint !== options.fingerprint)
    return refuse('wrong_machine', 'the file was issued for another machine');
  const now = options.now ?? Date.now();
  const skew = options.skewMs ?? DEFAULT_SKEW_MS;
  const highWater = Math.max(lastSeenAt, options.lastKnownTime ?? Number.NEGATIVE_INFINITY);
  if (now < highWater - skew)
    return refuse(
      'clock_rollback',
      `this clock reads before ${new Date(highWater).toISOString()}: it was set back`,
    );
  if (now >= expiresAt) return refuse('expired', `the file expired at ${payload.expires_at}`);
  return { ok: true, payload, kid };
}
