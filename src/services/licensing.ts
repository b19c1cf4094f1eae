import { createHash, randomBytes } from 'node:crypto';
import { Amount } from '../domain/amount/amount.js';
import type { Entitlement } from '../domain/catalog/catalog.js';
import { amountOutOfRange, BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import type { CreditLedger, DebitRecord } from '../domain/ledger/credit-ledger.js';
import {
  type CreditLease,
  effectiveEntitlements,
  type FloatingSeat,
  formatLicenseKey,
  isSilent,
  type License,
  licenseStatusAt,
  type Machine,
  normalizeLicenseKey,
  type StoredLicenseStatus,
  seatHeld,
} from '../domain/licensing/license.js';
import { formatInstant, type Instant } from '../domain/time/instant.js';
import {
  checkRecord,
  GENESIS_HASH,
  importEd25519PublicKey,
  LICENSE_FILE_TYPE,
  LICENSE_FILE_VERSION,
  type LicenseFilePayload,
  type UsageRecord,
} from '../licensing-verify/index.js';
import type { Page, PageRequest, WriteOperations } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { LedgerSession } from './ledger-session.js';
import { currentSigningKey, type LicensingOptions, signCompactJws } from './licensing-keys.js';
import { requireCreditType, requireCustomer } from './lookups.js';
import { type BurnPayer, ingestOwnEvents } from './metering.js';
import { forEachConcurrently } from './sweep-concurrency.js';
import { appendFacts, type OutboxMessage, type WriteCommand, type WriteOutcome } from './unit-of-work.js';

/**
 * Software licensing (docs/design.md "Licensing"): licenses, machine activation with a seat
 * limit, check-ins (heartbeat, floating seats, credit leases, signed license files) and the
 * upload of offline usage logs. Every write runs under the license's customer lock, so
 * activations of one license are serialised on both stores (exactly `machine_limit` win).
 */

/** The SHA-256 of a key in canonical form: what is stored and looked up. */
export function hashLicenseKey(canonicalKey: string): string {
  return createHash('sha256').update(`burndown-license-key:${canonicalKey}`).digest('hex');
}

/** A fresh license key: 125 random bits as five groups of Crockford base32. */
export function newLicenseKey(): string {
  return formatLicenseKey(randomBytes(25));
}

const named = <T>(
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): WriteOutcome<T> => ({
  ok: false,
  refusal: { refused: 'named', code, message, details },
});

/** What creating a license takes (entitlements only when there is no plan). */
export interface NewLicense {
  readonly workspaceId: string;
  readonly id: string | null;
  readonly customerId: string;
  readonly name: string | null;
  readonly planId: string | null;
  readonly entitlements: readonly Entitlement[];
  readonly machineLimit: number;
  readonly floatingLimit: number | null;
  readonly floatingTtlMs: number;
  readonly heartbeatWindowMs: number;
  readonly startsAt: Instant | null;
  readonly expiresAt: Instant | null;
  readonly metadata: Record<string, unknown>;
}

/** Creates a license; the answer carries the key, which is never shown again. */
export function createLicenseCommand(
  ctx: ServiceContext,
  input: NewLicense,
): WriteCommand<{ license: License; key: string }> {
  return {
    lockKey: customerLockKey(input.workspaceId, input.customerId),
    work: async (tx, now) => {
      await requireCustomer(tx, input.workspaceId, input.customerId);
      if (input.planId !== null) {
        if (!(await tx.plans.getPlanVersion(input.workspaceId, input.planId, null)))
          throw notFound('plan', input.planId);
        if (input.entitlements.length > 0)
          throw invalidRequest('give either plan_id or entitlements, not both', { field: 'entitlements' });
      }
      for (const e of input.entitlements) {
        if (!(await tx.plans.getFeature(input.workspaceId, e.featureId)))
          throw notFound('feature', e.featureId);
      }
      const startsAt = input.startsAt ?? now;
      if (input.expiresAt !== null && input.expiresAt <= startsAt)
        throw invalidRequest('expires_at must be after starts_at', { field: 'expires_at' });
      const key = newLicenseKey();
      const license: License = {
        workspaceId: input.workspaceId,
        id: input.id ?? ctx.ids.newId('lic'),
        customerId: input.customerId,
        name: input.name,
        planId: input.planId,
        entitlements: input.entitlements,
        keyHash: hashLicenseKey(key),
        keyPrefix: key.slice(0, 5),
        machineLimit: input.machineLimit,
        floatingLimit: input.floatingLimit,
        floatingTtlMs: input.floatingTtlMs,
        heartbeatWindowMs: input.heartbeatWindowMs,
        startsAt,
        expiresAt: input.expiresAt,
        status: 'active',
        metadata: input.metadata,
        createdAt: now,
        updatedAt: now,
      };
      if (!(await tx.licensing.insertLicense(license)))
        return named(ErrorCode.alreadyExists, `license "${license.id}" already exists`, { id: license.id });
      return { ok: true, value: { license, key } };
    },
  };
}

async function requireLicense(tx: WriteOperations, workspaceId: string, id: string): Promise<License> {
  const license = await tx.licensing.getLicense(workspaceId, id);
  if (!license) throw notFound('license', id);
  return license;
}

/** What an update may change. */
export interface LicenseChanges {
  readonly name?: string | null;
  readonly machineLimit?: number;
  readonly floatingLimit?: number | null;
  readonly heartbeatWindowMs?: number;
  readonly expiresAt?: Instant | null;
  readonly metadata?: Record<string, unknown>;
}

/** Updates a license's limits, window, end or metadata (seats already taken are kept). */
export async function updateLicenseCommand(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
  changes: LicenseChanges,
): Promise<WriteCommand<License>> {
  const existing = await ctx.storage.read.licensing.getLicense(workspaceId, id);
  if (!existing) throw notFound('license', id);
  return {
    lockKey: customerLockKey(workspaceId, existing.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, workspaceId, id);
      const next: License = { ...license, ...definedOnly(changes), updatedAt: now };
      if (next.expiresAt !== null && next.expiresAt <= next.startsAt)
        throw invalidRequest('expires_at must be after starts_at', { field: 'expires_at' });
      await tx.licensing.updateLicense(next);
      return { ok: true, value: next };
    },
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Suspends, reinstates or revokes a license. Revocation is final; it takes effect at each machine's next check-in. */
export async function setLicenseStatusCommand(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
  action: 'suspend' | 'reinstate' | 'revoke',
): Promise<WriteCommand<License>> {
  const existing = await ctx.storage.read.licensing.getLicense(workspaceId, id);
  if (!existing) throw notFound('license', id);
  return {
    lockKey: customerLockKey(workspaceId, existing.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, workspaceId, id);
      if (license.status === 'revoked' && action === 'revoke') return { ok: true, value: license };
      if (license.status === 'revoked')
        throw invalidRequest('the license is revoked; revocation is final', { id, field: 'status' });
      const status: StoredLicenseStatus =
        action === 'suspend' ? 'suspended' : action === 'revoke' ? 'revoked' : 'active';
      const next: License = { ...license, status, updatedAt: now };
      await tx.licensing.updateLicense(next);
      return { ok: true, value: next };
    },
  };
}

/** A license by id (404 when unknown). */
export async function getLicense(ctx: ServiceContext, workspaceId: string, id: string): Promise<License> {
  const license = await ctx.storage.read.licensing.getLicense(workspaceId, id);
  if (!license) throw notFound('license', id);
  return license;
}

/** One page of a workspace's licenses, optionally one customer's. */
export function listLicenses(
  ctx: ServiceContext,
  workspaceId: string,
  customerId: string | null,
  page: PageRequest,
): Promise<Page<License>> {
  return Promise.resolve(ctx.storage.read.licensing.listLicenses(workspaceId, customerId, page));
}

/** A license's machines (404 when the license is unknown). */
export async function listMachines(
  ctx: ServiceContext,
  workspaceId: string,
  licenseId: string,
): Promise<readonly Machine[]> {
  await getLicense(ctx, workspaceId, licenseId);
  return ctx.storage.read.licensing.listMachines(workspaceId, licenseId);
}

/** The license a key opens, or 401 `license_key_invalid`. */
export async function licenseOfKey(ctx: ServiceContext, typedKey: string): Promise<License> {
  const key = normalizeLicenseKey(typedKey);
  const license =
    key === null ? null : await ctx.storage.read.licensing.findLicenseByKeyHash(hashLicenseKey(key));
  if (!license) throw new BurndownError(ErrorCode.licenseKeyInvalid, 'the license key opens no license', {});
  return license;
}

/** The refusal of a license that is not active at `now` (each status its own code). */
function notActive<T>(license: License, now: Instant): WriteOutcome<T> | null {
  const status = now < license.startsAt ? 'expired' : licenseStatusAt(license, now);
  switch (status) {
    case 'active':
      return null;
    case 'suspended':
      return named(ErrorCode.licenseSuspended, 'the license is suspended', { license_id: license.id });
    case 'revoked':
      return named(ErrorCode.licenseRevoked, 'the license is revoked', { license_id: license.id });
    case 'expired':
      return named(ErrorCode.licenseExpired, 'the license is outside its validity window', {
        license_id: license.id,
      });
  }
}

/** Frees the seats of this license's machines silent past the window (the cull policy). */
async function cullSilent(tx: WriteOperations, license: License, now: Instant): Promise<Machine[]> {
  const culled: Machine[] = [];
  for (const machine of await tx.licensing.listMachines(license.workspaceId, license.id)) {
    if (!isSilent(machine, license.heartbeatWindowMs, now)) continue;
    const ended: Machine = { ...machine, status: 'culled', endedAt: now };
    await tx.licensing.updateMachine(ended);
    await releaseSeatsOf(tx, license, machine.id, now);
    culled.push(ended);
  }
  return culled;
}

async function releaseSeatsOf(
  tx: WriteOperations,
  license: License,
  machineId: string,
  now: Instant,
): Promise<void> {
  for (const seat of await tx.licensing.listOpenSeats(license.workspaceId, license.id)) {
    if (seat.machineId === machineId) await tx.licensing.updateSeat({ ...seat, releasedAt: now });
  }
}

/** A machine's activation request. */
export interface MachineIdentity {
  readonly fingerprint: string;
  /** Ed25519 public key, JWK `x` (base64url of 32 bytes). */
  readonly publicKey: string;
  readonly name: string | null;
}

/** What activation and check-in answer: the license, the machine, its seat and lease, and a signed file. */
export interface CheckInResult {
  readonly license: License;
  readonly machine: Machine;
  readonly seat: FloatingSeat | null;
  readonly creditLease: CreditLease | null;
  readonly file: string;
  readonly fileExpiresAt: Instant;
}

/**
 * Activates a machine on the license a key opens: silent machines are culled first, then the
 * machine takes a seat, or 409 `machine_limit_reached` when every seat is taken. Activating an
 * active fingerprint again (same key) is a check-in.
 */
export async function activateCommand(
  ctx: ServiceContext,
  options: LicensingOptions,
  typedKey: string,
  identity: MachineIdentity,
): Promise<WriteCommand<CheckInResult>> {
  const found = await licenseOfKey(ctx, typedKey);
  if ((await importEd25519PublicKey(identity.publicKey)) === null)
    throw invalidRequest('public_key must be an Ed25519 public key: base64url of 32 bytes (JWK x)', {
      field: 'public_key',
    });
  const signingKey = await currentSigningKey(ctx, options);
  return {
    lockKey: customerLockKey(found.workspaceId, found.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, found.workspaceId, found.id);
      const refused = notActive<CheckInResult>(license, now);
      if (refused) return refused;
      await cullSilent(tx, license, now);
      let machine = await tx.licensing.findActiveMachine(
        license.workspaceId,
        license.id,
        identity.fingerprint,
      );
      if (machine && machine.publicKey !== identity.publicKey)
        return named(ErrorCode.machineKeyMismatch, 'this fingerprint is active with another public key', {
          fingerprint: identity.fingerprint,
        });
      if (machine) {
        machine = { ...machine, lastSeenAt: now };
        await tx.licensing.updateMachine(machine);
      } else {
        const active = (await tx.licensing.listMachines(license.workspaceId, license.id)).filter(
          (m) => m.status === 'active',
        );
        if (active.length >= license.machineLimit)
          return named(
            ErrorCode.machineLimitReached,
            `every one of the ${license.machineLimit} seats is taken`,
            {
              machine_limit: license.machineLimit,
              active: active.length,
            },
          );
        machine = {
          workspaceId: license.workspaceId,
          id: ctx.ids.newId('mch'),
          licenseId: license.id,
          fingerprint: identity.fingerprint,
          publicKey: identity.publicKey,
          name: identity.name,
          status: 'active',
          activatedAt: now,
          lastSeenAt: now,
          endedAt: null,
          lastSeq: 0,
          lastHash: GENESIS_HASH,
        };
        await tx.licensing.insertMachine(machine);
      }
      const lease = await tx.licensing.findOpenCreditLease(license.workspaceId, machine.id);
      const seat = heldSeatOf(
        await tx.licensing.listOpenSeats(license.workspaceId, license.id),
        machine.id,
        now,
      );
      return {
        ok: true,
        value: await issueFile(tx, options, signingKey, { license, machine, seat, lease, now }),
      };
    },
  };
}

function heldSeatOf(seats: readonly FloatingSeat[], machineId: string, now: Instant): FloatingSeat | null {
  return seats.find((s) => s.machineId === machineId && seatHeld(s, now)) ?? null;
}

/** Deactivates a machine: its seat is free at once, its floating seat released. */
export async function deactivateCommand(
  ctx: ServiceContext,
  typedKey: string,
  fingerprint: string,
): Promise<WriteCommand<Machine>> {
  const found = await licenseOfKey(ctx, typedKey);
  return deactivation(found.workspaceId, found.customerId, found.id, async (tx, license) =>
    tx.licensing.findActiveMachine(license.workspaceId, license.id, fingerprint),
  );
}

/** The operator's deactivation of a machine by id. */
export async function deactivateMachineCommand(
  ctx: ServiceContext,
  workspaceId: string,
  licenseId: string,
  machineId: string,
): Promise<WriteCommand<Machine>> {
  const found = await getLicense(ctx, workspaceId, licenseId);
  return deactivation(
    workspaceId,
    found.customerId,
    licenseId,
    async (tx, license) =>
      (await tx.licensing.listMachines(license.workspaceId, license.id)).find(
        (m) => m.id === machineId && m.status === 'active',
      ) ?? null,
  );
}

function deactivation(
  workspaceId: string,
  customerId: string,
  licenseId: string,
  pick: (tx: WriteOperations, license: License) => Promise<Machine | null>,
): WriteCommand<Machine> {
  return {
    lockKey: customerLockKey(workspaceId, customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, workspaceId, licenseId);
      const machine = await pick(tx, license);
      if (!machine) throw notFound('active machine', licenseId);
      const ended: Machine = { ...machine, status: 'deactivated', endedAt: now };
      await tx.licensing.updateMachine(ended);
      await releaseSeatsOf(tx, license, machine.id, now);
      return { ok: true, value: ended };
    },
  };
}

/** What a check-in may ask for besides the heartbeat. */
export interface CheckInRequest {
  readonly fingerprint: string;
  /** Take or renew a floating seat. */
  readonly floating: boolean;
  /** Lease credits for offline use (a new lease replaces the open one, which is released). */
  readonly credits: { readonly amount: Amount; readonly creditType: string; readonly ttlMs: number } | null;
}

/**
 * A machine's check-in: the heartbeat (it keeps its seat), a refusal when the license is no longer
 * active (revocation and suspension take effect here), a floating seat taken or renewed (409
 * `seat_limit_reached` when all are leased), optionally a credit lease (a hold), and a freshly
 * signed license file.
 */
export async function checkInCommand(
  ctx: ServiceContext,
  options: LicensingOptions,
  typedKey: string,
  request: CheckInRequest,
): Promise<WriteCommand<CheckInResult>> {
  const found = await licenseOfKey(ctx, typedKey);
  const signingKey = await currentSigningKey(ctx, options);
  return {
    lockKey: customerLockKey(found.workspaceId, found.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, found.workspaceId, found.id);
      const refused = notActive<CheckInResult>(license, now);
      if (refused) return refused;
      let machine = await tx.licensing.findActiveMachine(
        license.workspaceId,
        license.id,
        request.fingerprint,
      );
      if (!machine || isSilent(machine, license.heartbeatWindowMs, now))
        throw notFound('active machine', request.fingerprint);
      // Decisions first (a refusal writes nothing of its own), then the writes.
      const seats = await tx.licensing.listOpenSeats(license.workspaceId, license.id);
      let seat = heldSeatOf(seats, machine.id, now);
      const wantsSeat = request.floating || seat !== null;
      if (wantsSeat && seat === null) {
        if (license.floatingLimit === null)
          throw invalidRequest('this license has no floating seats', { field: 'floating' });
        const held = seats.filter((s) => seatHeld(s, now)).length;
        if (held >= license.floatingLimit)
          return named(ErrorCode.seatLimitReached, `all ${license.floatingLimit} floating seats are leased`, {
            floating_limit: license.floatingLimit,
          });
      }
      let lease = await tx.licensing.findOpenCreditLease(license.workspaceId, machine.id);
      let session: LedgerSession | null = null;
      let newLease: CreditLease | null = null;
      if (request.credits !== null) {
        await requireCreditType(tx, license.workspaceId, request.credits.creditType);
        session = await LedgerSession.open(
          ctx,
          tx,
          { workspaceId: license.workspaceId, customerId: license.customerId },
          now,
        );
        const expiresAt = Math.min(now + request.credits.ttlMs, license.expiresAt ?? Number.MAX_SAFE_INTEGER);
        if (lease?.holdId) {
          const old = await session.ledger(lease.creditType);
          old.release(lease.holdId, now);
        }
        const ledger = await session.ledger(request.credits.creditType);
        const leaseId = ctx.ids.newId('lse');
        const hold = ledger.placeHold(
          {
            amount: request.credits.amount,
            expiresAt,
            description: `credit lease ${leaseId} of license ${license.id}`,
            metadata: { license_id: license.id, machine_id: machine.id, lease_id: leaseId },
          },
          now,
        );
        if ('refused' in hold)
          return named(ErrorCode.insufficientCredits, 'not enough credits available to lease', {
            available: hold.available.toString(),
            requested: hold.requested.toString(),
          });
        session.burned(request.credits.creditType);
        newLease = {
          workspaceId: license.workspaceId,
          id: leaseId,
          licenseId: license.id,
          machineId: machine.id,
          creditType: request.credits.creditType,
          amount: request.credits.amount.toString(),
          holdId: hold.id,
          expiresAt,
          createdAt: now,
          endedAt: null,
        };
      }
      machine = { ...machine, lastSeenAt: now };
      await tx.licensing.updateMachine(machine);
      if (wantsSeat) {
        if (seat) {
          seat = { ...seat, expiresAt: now + license.floatingTtlMs };
          await tx.licensing.updateSeat(seat);
        } else {
          seat = {
            workspaceId: license.workspaceId,
            id: ctx.ids.newId('seat'),
            licenseId: license.id,
            machineId: machine.id,
            createdAt: now,
            expiresAt: now + license.floatingTtlMs,
            releasedAt: null,
          };
          await tx.licensing.insertSeat(seat);
        }
      }
      if (session !== null && newLease !== null) {
        await session.save();
        if (lease) await tx.licensing.updateCreditLease({ ...lease, endedAt: now });
        await tx.licensing.insertCreditLease(newLease);
        lease = newLease;
      }
      return {
        ok: true,
        value: await issueFile(tx, options, signingKey, { license, machine, seat, lease, now }),
      };
    },
  };
}

/** Releases a machine's floating seat (check-out). */
export async function releaseSeatCommand(
  ctx: ServiceContext,
  typedKey: string,
  fingerprint: string,
): Promise<WriteCommand<{ released: boolean }>> {
  const found = await licenseOfKey(ctx, typedKey);
  return {
    lockKey: customerLockKey(found.workspaceId, found.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, found.workspaceId, found.id);
      const machine = await tx.licensing.findActiveMachine(license.workspaceId, license.id, fingerprint);
      if (!machine) throw notFound('active machine', fingerprint);
      const seat = heldSeatOf(
        await tx.licensing.listOpenSeats(license.workspaceId, license.id),
        machine.id,
        now,
      );
      if (seat) await tx.licensing.updateSeat({ ...seat, releasedAt: now });
      return { ok: true, value: { released: seat !== null } };
    },
  };
}

const text = (a: Amount | null): string | null => (a === null ? null : a.toString());

async function issueFile(
  tx: WriteOperations,
  options: LicensingOptions,
  signingKey: Awaited<ReturnType<typeof currentSigningKey>>,
  input: {
    license: License;
    machine: Machine;
    seat: FloatingSeat | null;
    lease: CreditLease | null;
    now: Instant;
  },
): Promise<CheckInResult> {
  const { license, machine, lease, now } = input;
  const plan =
    license.planId === null ? null : await tx.plans.getPlanVersion(license.workspaceId, license.planId, null);
  const entitlements = effectiveEntitlements(license, plan?.entitlements ?? null);
  let fileExpiresAt = now + options.maxFileTtlMs;
  if (license.expiresAt !== null) fileExpiresAt = Math.min(fileExpiresAt, license.expiresAt);
  if (input.seat !== null) fileExpiresAt = Math.min(fileExpiresAt, input.seat.expiresAt);
  const config: Record<string, Record<string, unknown>> = {};
  for (const e of entitlements) if (e.config !== null) config[e.featureId] = e.config;
  const payload: LicenseFilePayload = {
    version: LICENSE_FILE_VERSION,
    license: {
      id: license.id,
      status: licenseStatusAt(license, now),
      plan_id: license.planId,
      machine_limit: license.machineLimit,
      starts_at: formatInstant(license.startsAt),
      expires_at: license.expiresAt === null ? null : formatInstant(license.expiresAt),
      metadata: license.metadata,
    },
    customer: { id: license.customerId },
    machine: { id: machine.id, fingerprint: machine.fingerprint },
    entitlements: entitlements.map((e) => ({
      feature_id: e.featureId,
      usage_limit: e.usageLimit
        ? { amount: e.usageLimit.amount.toString(), period: e.usageLimit.period }
        : null,
      config: e.config,
      overage: e.overage ? { max: text(e.overage.max) } : null,
    })),
    config,
    credit_lease:
      lease === null || lease.expiresAt <= now
        ? null
        : {
            id: lease.id,
            credit_type: lease.creditType,
            amount: lease.amount,
            expires_at: formatInstant(lease.expiresAt),
          },
    issued_at: formatInstant(now),
    expires_at: formatInstant(fileExpiresAt),
    last_seen_at: formatInstant(now),
  };
  const file = signCompactJws(signingKey, options, LICENSE_FILE_TYPE, payload);
  return { license, machine, seat: input.seat, creditLease: lease, file, fileExpiresAt };
}

/** The answer of an upload: how many records became events, how many were already known, and the lease. */
export interface UsageUploadResult {
  readonly accepted: number;
  readonly duplicates: number;
  readonly lastSeq: number;
  readonly creditLease: CreditLease | null;
}

/** A usage log upload: the machine (by fingerprint) and its records, oldest first. */
export interface UsageUpload {
  readonly fingerprint: string;
  readonly records: readonly UsageRecord[];
}

/**
 * Accepts a machine's usage log: each new record, checked against the chain the server holds
 * (sequence, previous hash, content hash, the machine's signature), becomes a usage event exactly
 * once (`lic:<machine>:<seq>`), rated by the workspace's rates and paid from the machine's credit
 * lease (a capture of its hold; what is left is held again until the lease ends). Usage beyond the
 * lease is debited with overage when the entitlement of its feature allows overage (or it names
 * none), and otherwise from available credits, into overage only if it must (the usage happened;
 * a `license.anomaly` of kind `lease_exceeded` reports it). Replayed records change nothing. At the
 * first gap, fork, bad hash, bad signature or out-of-order record the upload stops: the records
 * before it are kept (committed), the request answers that record's error code, and a
 * `license.anomaly` fact goes to the outbox.
 */
export async function uploadUsageCommand(
  ctx: ServiceContext,
  workspaceId: string | null,
  typedKey: string,
  licenseId: string,
  upload: UsageUpload,
): Promise<WriteCommand<UsageUploadResult>> {
  const found = await licenseOfKey(ctx, typedKey);
  if (found.id !== licenseId || (workspaceId !== null && found.workspaceId !== workspaceId))
    throw new BurndownError(ErrorCode.licenseKeyInvalid, 'the license key does not open this license', {});
  return {
    lockKey: customerLockKey(found.workspaceId, found.customerId),
    work: async (tx, now) => {
      const license = await requireLicense(tx, found.workspaceId, found.id);
      const machine =
        (await tx.licensing.listMachines(license.workspaceId, license.id)).find(
          (m) => m.fingerprint === upload.fingerprint && m.status === 'active',
        ) ??
        (await tx.licensing.listMachines(license.workspaceId, license.id)).find(
          (m) => m.fingerprint === upload.fingerprint,
        );
      if (!machine) throw notFound('machine', upload.fingerprint);
      const machineKey = await importEd25519PublicKey(machine.publicKey);
      if (machineKey === null) throw new Error(`machine ${machine.id} has an invalid stored key`);
      let head = { seq: machine.lastSeq, hash: machine.lastHash };
      const fresh: UsageRecord[] = [];
      let duplicates = 0;
      let problem: { code: ErrorCode; seq: number; message: string } | null = null;
      const disorder = upload.records.findIndex((r, i) => i > 0 && r.seq <= upload.records[i - 1]!.seq);
      if (disorder > 0) {
        problem = {
          code: ErrorCode.usageLogOutOfOrder,
          seq: upload.records[disorder]!.seq,
          message: 'records must be in increasing seq order',
        };
      }
      for (const record of problem === null ? upload.records : []) {
        if (record.seq <= machine.lastSeq) {
          const stored = await tx.licensing.getUsageRecord(license.workspaceId, machine.id, record.seq);
          if (stored?.hash === record.hash) {
            duplicates += 1;
            continue;
          }
          problem = {
            code: ErrorCode.usageLogFork,
            seq: record.seq,
            message: `record ${record.seq} differs from the one received before`,
          };
          break;
        }
        if (record.seq !== head.seq + 1) {
          problem = {
            code: ErrorCode.usageLogGap,
            seq: record.seq,
            message: `record ${head.seq + 1} is missing before record ${record.seq}`,
          };
          break;
        }
        const bad = await checkRecord(
          record,
          { licenseId: license.id, machineId: machine.id, prevHash: head.hash },
          machineKey,
        );
        if (bad !== null) {
          problem = {
            code: bad as ErrorCode,
            seq: record.seq,
            message: `record ${record.seq}: ${bad.replace(/_/g, ' ')}`,
          };
          break;
        }
        const quantity = Amount.tryParse(record.quantity);
        if (typeof quantity === 'string' || quantity.isNegative())
          throw invalidRequest(`records[seq ${record.seq}].quantity must be a non-negative decimal string`, {
            field: 'records',
          });
        if (Number.isNaN(Date.parse(record.time)))
          throw invalidRequest(`records[seq ${record.seq}].time must be an RFC 3339 instant`, {
            field: 'records',
          });
        fresh.push(record);
        head = { seq: record.seq, hash: record.hash };
      }
      const anomalies: OutboxMessage[] = [];
      const anomaly = (kind: string, details: Record<string, unknown>): OutboxMessage => ({
        workspaceId: license.workspaceId,
        type: 'license.anomaly',
        customerId: license.customerId,
        data: { license_id: license.id, machine_id: machine.id, kind, ...details },
      });
      let lease = await tx.licensing.findOpenCreditLease(license.workspaceId, machine.id);
      if (fresh.length > 0) {
        const session = await LedgerSession.open(
          ctx,
          tx,
          { workspaceId: license.workspaceId, customerId: license.customerId },
          now,
        );
        const plan =
          license.planId === null
            ? null
            : await tx.plans.getPlanVersion(license.workspaceId, license.planId, null);
        const entitlements = effectiveEntitlements(license, plan?.entitlements ?? null);
        const leaseState = { holdId: lease?.holdId ?? null };
        const overageAllowed = (featureId: string | null) => {
          if (featureId === null) return true;
          const e = entitlements.find((x) => x.featureId === featureId);
          return e === undefined || e.overage !== null;
        };
        const payer: BurnPayer = (ledger, burn, at) => {
          const allowOverage = overageAllowed(burn.featureId);
          if (lease !== null && leaseState.holdId !== null && ledger.creditType === lease.creditType) {
            const captured = captureFromLease(ledger, leaseState.holdId, lease, burn, allowOverage, at);
            if (captured !== null) {
              leaseState.holdId = captured.nextHoldId;
              if (captured.exceeded)
                anomalies.push(anomaly('lease_exceeded', { event_description: burn.description }));
              return captured.debit;
            }
            leaseState.holdId = null;
          }
          const debit = ledger.debit({ ...burn, allowOverage }, at);
          if (!('refused' in debit)) return debit;
          anomalies.push(anomaly('lease_exceeded', { event_description: burn.description }));
          const forced = ledger.debit({ ...burn, allowOverage: true }, at);
          if ('refused' in forced) throw new Error('a debit with overage allowed cannot be refused');
          return forced;
        };
        const outcomes = await ingestOwnEvents(ctx, tx, {
          workspaceId: license.workspaceId,
          customerId: license.customerId,
          session,
          payer,
          now,
          events: fresh.map((r) => ({
            id: `lic:${machine.id}:${r.seq}`,
            source: null,
            type: r.event_type,
            customerId: license.customerId,
            time: Date.parse(r.time),
            data: { quantity: r.quantity, license_id: license.id, machine_id: machine.id, seq: r.seq },
          })),
        });
        // A record the rates cannot price within the amount range is never half-kept: the whole
        // upload rolls back (422), like an event refused alone by POST /v1/events.
        const unpriceable = outcomes.findIndex((o) => o === 'value_out_of_range' || o === 'negative_usage');
        if (unpriceable >= 0)
          throw amountOutOfRange(`usage record ${fresh[unpriceable]?.seq}`, { seq: fresh[unpriceable]?.seq });
        await session.save();
        for (const r of fresh) {
          await tx.licensing.insertUsageRecord({
            workspaceId: license.workspaceId,
            licenseId: license.id,
            machineId: machine.id,
            seq: r.seq,
            hash: r.hash,
            eventKey: `id:lic:${machine.id}:${r.seq}`,
            record: r,
            receivedAt: now,
          });
        }
        await tx.licensing.updateMachine({
          ...machine,
          lastSeq: head.seq,
          lastHash: head.hash,
          lastSeenAt: now,
        });
        if (lease !== null && leaseState.holdId !== lease.holdId) {
          lease = { ...lease, holdId: leaseState.holdId, endedAt: leaseState.holdId === null ? now : null };
          await tx.licensing.updateCreditLease(lease);
        }
      }
      if (problem !== null) {
        anomalies.push(anomaly(problem.code, { seq: problem.seq, accepted_through_seq: head.seq }));
        await appendFacts(ctx, tx, now, anomalies);
        return named(problem.code, problem.message, {
          seq: problem.seq,
          accepted: fresh.length,
          accepted_through_seq: head.seq,
        });
      }
      return {
        ok: true,
        value: {
          accepted: fresh.length,
          duplicates,
          lastSeq: head.seq,
          creditLease: lease?.endedAt === null ? lease : null,
        },
        outbox: anomalies,
      };
    },
  };
}

/**
 * Pays a burn from the lease's hold: captures it (the excess beyond the hold drawn like a debit),
 * then holds what is left again until the lease ends. Null when the hold is no longer active (the
 * lease ended): the caller debits instead.
 */
function captureFromLease(
  ledger: CreditLedger,
  holdId: string,
  lease: CreditLease,
  burn: { amount: Amount; description: string; metadata: Record<string, unknown> },
  allowOverage: boolean,
  now: Instant,
): { debit: DebitRecord; nextHoldId: string | null; exceeded: boolean } | null {
  const held = ledger.holdAmount(holdId);
  if (held === null) return null;
  let exceeded = false;
  let debit = ledger.capture(
    { holdId, amount: burn.amount, allowOverage, description: burn.description, metadata: burn.metadata },
    now,
  );
  if ('refused' in debit) {
    exceeded = true;
    debit = ledger.capture(
      {
        holdId,
        amount: burn.amount,
        allowOverage: true,
        description: burn.description,
        metadata: burn.metadata,
      },
      now,
    );
    if ('refused' in debit) return null;
  } else if (burn.amount.greaterThan(held)) exceeded = !allowOverage && debit.overage.isPositive();
  const rest = held.minus(Amount.min(held, burn.amount));
  if (!rest.isPositive()) return { debit, nextHoldId: null, exceeded };
  const again = ledger.placeHold(
    {
      amount: rest,
      expiresAt: lease.expiresAt,
      description: `credit lease ${lease.id} (rest)`,
      metadata: { lease_id: lease.id, license_id: lease.licenseId },
    },
    now,
  );
  return { debit, nextHoldId: 'refused' in again ? null : again.id, exceeded };
}

/** Culls machines silent past their license's window (the sweeper; each license in its own write). */
export async function sweepSilentMachines(ctx: ServiceContext, limit = 100): Promise<number> {
  const due = await ctx.storage.read.licensing.findLicensesWithSilentMachines(ctx.clock.now(), limit);
  let culled = 0;
  await forEachConcurrently(due, async ({ workspaceId, customerId, licenseId }) => {
    culled += await ctx.storage.write(customerLockKey(workspaceId, customerId), async (tx) => {
      const license = await tx.licensing.getLicense(workspaceId, licenseId);
      return license ? (await cullSilent(tx, license, ctx.clock.now())).length : 0;
    });
  });
  return culled;
}
