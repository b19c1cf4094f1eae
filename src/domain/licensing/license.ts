import type { Entitlement } from '../catalog/catalog.js';
import type { Instant } from '../time/instant.js';

/**
 * Software licensing (docs/design.md "Licensing"): a license entitles one customer's machines to a
 * plan's (or its own) entitlements, offline included. Pure types and decisions; the services
 * store, sign and lock.
 */

/** What a license may be; `expired` is derived from `expiresAt` and never stored. */
export type LicenseStatus = 'active' | 'suspended' | 'revoked' | 'expired';

/** The statuses stored (an operator sets them; expiry is a matter of time). */
export type StoredLicenseStatus = 'active' | 'suspended' | 'revoked';

/** A license as stored. The key itself is never stored, only its SHA-256 and its first characters. */
export interface License {
  readonly workspaceId: string;
  readonly id: string;
  readonly customerId: string;
  readonly name: string | null;
  /** The plan whose entitlements it grants (the latest version at each read), or null for its own. */
  readonly planId: string | null;
  /** Its own entitlements (used when `planId` is null). */
  readonly entitlements: readonly Entitlement[];
  readonly keyHash: string;
  /** The key's first group, to recognise it in lists (never enough to use it). */
  readonly keyPrefix: string;
  /** How many machines may be activated at once. */
  readonly machineLimit: number;
  /** How many floating seat leases may be held at once; null: no floating seats. */
  readonly floatingLimit: number | null;
  /** How long a floating seat lasts unless a check-in renews it. */
  readonly floatingTtlMs: number;
  /** A machine silent longer than this (no activation or check-in) loses its seat. */
  readonly heartbeatWindowMs: number;
  readonly startsAt: Instant;
  readonly expiresAt: Instant | null;
  readonly status: StoredLicenseStatus;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Instant;
  readonly updatedAt: Instant;
}

/** The license's status at an instant: a stored suspension or revocation wins, then expiry. */
export function licenseStatusAt(license: License, now: Instant): LicenseStatus {
  if (license.status !== 'active') return license.status;
  if (license.expiresAt !== null && now >= license.expiresAt) return 'expired';
  return 'active';
}

/** Why a machine no longer holds a seat. */
export type MachineStatus = 'active' | 'deactivated' | 'culled';

/** A machine activated on a license: its fingerprint, its public key and its usage-log head. */
export interface Machine {
  readonly workspaceId: string;
  readonly id: string;
  readonly licenseId: string;
  readonly fingerprint: string;
  /** Ed25519 public key, JWK `x` (base64url of 32 bytes): verifies its usage log. */
  readonly publicKey: string;
  readonly name: string | null;
  readonly status: MachineStatus;
  readonly activatedAt: Instant;
  readonly lastSeenAt: Instant;
  readonly endedAt: Instant | null;
  /** The last usage record accepted (0: none) and its hash: where the chain continues. */
  readonly lastSeq: number;
  readonly lastHash: string;
}

/** Whether a machine holding a seat has been silent past the window at `now` (the cull policy). */
export function isSilent(machine: Machine, heartbeatWindowMs: number, now: Instant): boolean {
  return machine.status === 'active' && now > machine.lastSeenAt + heartbeatWindowMs;
}

/** A floating seat: held until `expiresAt` unless renewed by a check-in. */
export interface FloatingSeat {
  readonly workspaceId: string;
  readonly id: string;
  readonly licenseId: string;
  readonly machineId: string;
  readonly createdAt: Instant;
  readonly expiresAt: Instant;
  readonly releasedAt: Instant | null;
}

/** Whether a floating seat counts against the limit at `now`. */
export function seatHeld(seat: FloatingSeat, now: Instant): boolean {
  return seat.releasedAt === null && now < seat.expiresAt;
}

/** Credits leased to a machine for offline use: backed by a hold until `expiresAt`. */
export interface CreditLease {
  readonly workspaceId: string;
  readonly id: string;
  readonly licenseId: string;
  readonly machineId: string;
  readonly creditType: string;
  /** Credits leased (what the hold reserved at checkout). */
  readonly amount: string;
  /** The hold that reserves what is left of the lease (a new one after each upload's capture). */
  readonly holdId: string | null;
  readonly expiresAt: Instant;
  readonly createdAt: Instant;
  /** When it ended (renewed, or its hold released); null while open. */
  readonly endedAt: Instant | null;
}

/** Entitlements a license grants: its plan's, or its own. */
export function effectiveEntitlements(
  license: License,
  planEntitlements: readonly Entitlement[] | null,
): readonly Entitlement[] {
  return license.planId === null ? license.entitlements : (planEntitlements ?? []);
}

/** The Crockford base32 alphabet (no I, L, O, U): keys survive being read aloud and retyped. */
export const CROCKFORD_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A license key from random bytes: 25 Crockford base32 characters (125 bits) in five groups of
 * five, e.g. `7K3QX-…`. Pure: the caller supplies the randomness.
 */
export function formatLicenseKey(random: Uint8Array): string {
  if (random.length < 25) throw new Error('a license key needs 25 random bytes');
  let out = '';
  for (let i = 0; i < 25; i++) {
    if (i > 0 && i % 5 === 0) out += '-';
    out += CROCKFORD_ALPHABET[random[i]! % 32];
  }
  return out;
}

/**
 * A typed key in canonical form: upper case, without spaces or dashes, with the letters people
 * confuse read as Crockford says (I, L → 1; O → 0), regrouped. Null when it cannot be a key.
 */
export function normalizeLicenseKey(typed: string): string | null {
  const compact = typed.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (!/^[0-9A-HJKMNP-TV-Z]{25}$/.test(compact)) return null;
  return compact.match(/.{5}/g)!.join('-');
}
