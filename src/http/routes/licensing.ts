import type { Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import type { Entitlement } from '../../domain/catalog/catalog.js';
import { BurndownError, ErrorCode, invalidRequest } from '../../domain/errors.js';
import type { CreditLease, License, Machine } from '../../domain/licensing/license.js';
import { formatInstant, type Instant } from '../../domain/time/instant.js';
import type { Period } from '../../domain/time/periods.js';
import { DEFAULT_CREDIT_TYPE } from '../../services/context.js';
import {
  activateCommand,
  type CheckInResult,
  checkInCommand,
  createLicenseCommand,
  deactivateCommand,
  deactivateMachineCommand,
  getLicense,
  listLicenses,
  listMachines,
  releaseSeatCommand,
  setLicenseStatusCommand,
  updateLicenseCommand,
  uploadUsageCommand,
} from '../../services/licensing.js';
import { type LicensingOptions, publicKeySet, rotateSigningKey } from '../../services/licensing-keys.js';
import { runWrite, type WriteCommand, type WriteOutcome } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { refusalResult } from '../idempotent-write.js';
import {
  ActivateBody,
  CheckInAnswer,
  CheckInBody,
  CreatedLicenseBody,
  CreateLicenseBody,
  FingerprintBody,
  JwksBody,
  LicenseBody,
  LicenseIdParams,
  LicenseListQuery,
  MachineBody,
  MachineListBody,
  MachineParams,
  ReleasedSeatBody,
  RotatedKeyBody,
  UpdateLicenseBody,
  UsageReceiptsAnswer,
  UsageReceiptsBody,
} from '../licensing-schemas.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readMetadata, readTime } from '../route-helpers.js';
import { EmptyBody, ErrorBody, errorResponses, ListOf } from '../schemas.js';

/** A license as the API shows it (never its key). */
export function presentLicense(l: License, now: Instant) {
  const status = l.status === 'active' && l.expiresAt !== null && now >= l.expiresAt ? 'expired' : l.status;
  return {
    id: l.id,
    customer_id: l.customerId,
    name: l.name,
    plan_id: l.planId,
    entitlements: l.entitlements.map((e) => ({
      feature_id: e.featureId,
      usage_limit: e.usageLimit
        ? { amount: e.usageLimit.amount.toString(), period: e.usageLimit.period }
        : null,
      config: e.config,
      overage: e.overage ? { max: e.overage.max?.toString() ?? null } : null,
    })),
    key_prefix: l.keyPrefix,
    machine_limit: l.machineLimit,
    floating_limit: l.floatingLimit,
    floating_ttl_seconds: Math.trunc(l.floatingTtlMs / 1000),
    heartbeat_window_seconds: Math.trunc(l.heartbeatWindowMs / 1000),
    starts_at: formatInstant(l.startsAt),
    expires_at: l.expiresAt === null ? null : formatInstant(l.expiresAt),
    status,
    metadata: l.metadata,
    created_at: formatInstant(l.createdAt),
    updated_at: formatInstant(l.updatedAt),
  };
}

function presentMachine(m: Machine) {
  return {
    id: m.id,
    license_id: m.licenseId,
    fingerprint: m.fingerprint,
    public_key: m.publicKey,
    name: m.name,
    status: m.status,
    activated_at: formatInstant(m.activatedAt),
    last_seen_at: formatInstant(m.lastSeenAt),
    ended_at: m.endedAt === null ? null : formatInstant(m.endedAt),
    last_seq: m.lastSeq,
  };
}

function presentLease(l: CreditLease | null) {
  if (l === null || l.endedAt !== null) return null;
  return {
    id: l.id,
    credit_type: l.creditType,
    amount: l.amount,
    hold_id: l.holdId,
    expires_at: formatInstant(l.expiresAt),
  };
}

function presentCheckIn(r: CheckInResult, now: Instant) {
  return {
    license: presentLicense(r.license, now),
    machine: presentMachine(r.machine),
    seat: r.seat === null ? null : { id: r.seat.id, expires_at: formatInstant(r.seat.expiresAt) },
    credit_lease: presentLease(r.creditLease),
    license_file: r.file,
    license_file_expires_at: formatInstant(r.fileExpiresAt),
  };
}

/** The license key a machine sends: `Authorization: License <key>`. */
function licenseKeyOf(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = header ? /^License\s+(\S+)\s*$/i.exec(header) : null;
  if (!match)
    throw new BurndownError(
      ErrorCode.licenseKeyInvalid,
      'send the license key as Authorization: License <key>',
      {},
    );
  return match[1]!;
}

const SECOND = 1000;

function readEntitlements(list: Static<typeof CreateLicenseBody>['entitlements']): Entitlement[] {
  return (list ?? []).map((e, i) => ({
    featureId: e.feature_id,
    usageLimit: e.usage_limit
      ? {
          amount: readNonNegative(e.usage_limit.amount, `entitlements[${i}].usage_limit.amount`),
          period: e.usage_limit.period as Period,
        }
      : null,
    config: e.config ? readMetadata(e.config, `entitlements[${i}].config`) : null,
    overage: e.overage
      ? {
          max:
            e.overage.max === undefined || e.overage.max === null
              ? null
              : readNonNegative(e.overage.max, `entitlements[${i}].overage.max`),
        }
      : null,
  }));
}

function readNonNegative(text: string, field: string): Amount {
  const parsed = Amount.tryParse(text);
  if (typeof parsed === 'string' || parsed.isNegative())
    throw new BurndownError(ErrorCode.invalidAmount, `${field} must be a non-negative decimal string`, {
      field,
    });
  return parsed;
}

/** Runs a machine's write (authenticated by its license key, so without Idempotency-Key). */
async function runMachineWrite<T>(
  deps: RouteDeps,
  reply: FastifyReply,
  command: WriteCommand<T>,
  present: (value: T, now: Instant) => { status: number; body: unknown },
): Promise<FastifyReply> {
  const answer = await runWrite(deps.ctx, command, (outcome: WriteOutcome<T>, now) =>
    outcome.ok ? present(outcome.value, now) : refusalResult(outcome.refusal),
  );
  return reply.code(answer.status).type('application/json; charset=utf-8').send(answer.text);
}

/** Licensing: licenses (operator), activation and check-in (machines), the public key set. */
export function registerLicensingRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
  options: LicensingOptions,
): void {
  const { ctx, writer } = deps;
  const machineErrors = errorResponses;

  app.post<{ Body: Static<typeof CreateLicenseBody> }>(
    '/v1/licenses',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['licensing'],
        summary: 'Create a license (its key is shown once, in this answer)',
        body: CreateLicenseBody,
        response: { 201: CreatedLicenseBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const command = createLicenseCommand(ctx, {
        workspaceId: request.auth.workspaceId,
        id: b.id ?? null,
        customerId: b.customer_id,
        name: b.name ?? null,
        planId: b.plan_id ?? null,
        entitlements: readEntitlements(b.entitlements),
        machineLimit: b.machine_limit ?? 1,
        floatingLimit: b.floating_limit ?? null,
        floatingTtlMs: (b.floating_ttl_seconds ?? 900) * SECOND,
        heartbeatWindowMs: (b.heartbeat_window_seconds ?? 7 * 86_400) * SECOND,
        startsAt: b.starts_at ? readTime(b.starts_at, 'starts_at') : null,
        expiresAt: b.expires_at ? readTime(b.expires_at, 'expires_at') : null,
        metadata: readMetadata(b.metadata),
      });
      return writer.run(request, reply, command, ({ license, key }, now) => ({
        status: 201,
        body: { ...presentLicense(license, now), key },
        replayBody: { ...presentLicense(license, now), key: null },
      }));
    },
  );

  app.get<{ Querystring: Static<typeof LicenseListQuery> }>(
    '/v1/licenses',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['licensing'],
        summary: 'List licenses (optionally of one customer)',
        querystring: LicenseListQuery,
        response: { 200: ListOf(LicenseBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listLicenses(
        ctx,
        request.auth.workspaceId,
        request.query.customer_id ?? null,
        readPageRequest(request.query),
      );
      const now = ctx.clock.now();
      return presentPage(page, (l) => presentLicense(l, now));
    },
  );

  app.get<{ Params: Static<typeof LicenseIdParams> }>(
    '/v1/licenses/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['licensing'],
        summary: 'Get a license',
        params: LicenseIdParams,
        response: { 200: LicenseBody, ...errorResponses },
      },
    },
    async (request) =>
      presentLicense(await getLicense(ctx, request.auth.workspaceId, request.params.id), ctx.clock.now()),
  );

  app.patch<{ Params: Static<typeof LicenseIdParams>; Body: Static<typeof UpdateLicenseBody> }>(
    '/v1/licenses/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['licensing'],
        summary: "Change a license's limits, heartbeat window, end or metadata",
        params: LicenseIdParams,
        body: UpdateLicenseBody,
        response: { 200: LicenseBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const command = await updateLicenseCommand(ctx, request.auth.workspaceId, request.params.id, {
        ...(b.name !== undefined ? { name: b.name } : {}),
        ...(b.machine_limit !== undefined ? { machineLimit: b.machine_limit } : {}),
        ...(b.floating_limit !== undefined ? { floatingLimit: b.floating_limit } : {}),
        ...(b.heartbeat_window_seconds !== undefined
          ? { heartbeatWindowMs: b.heartbeat_window_seconds * SECOND }
          : {}),
        ...(b.expires_at !== undefined
          ? { expiresAt: b.expires_at === null ? null : readTime(b.expires_at, 'expires_at') }
          : {}),
        ...(b.metadata !== undefined ? { metadata: readMetadata(b.metadata) } : {}),
      });
      return writer.run(request, reply, command, (license, now) => ({
        status: 200,
        body: presentLicense(license, now),
      }));
    },
  );

  for (const action of ['suspend', 'reinstate', 'revoke'] as const) {
    app.post<{ Params: Static<typeof LicenseIdParams>; Body: Static<typeof EmptyBody> | undefined }>(
      `/v1/licenses/:id/${action}`,
      {
        config: { scope: 'write' },
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          tags: ['licensing'],
          summary:
            action === 'revoke'
              ? 'Revoke a license (final; machines are refused at their next check-in)'
              : action === 'suspend'
                ? 'Suspend a license (machines are refused at their next check-in)'
                : 'Reinstate a suspended license',
          params: LicenseIdParams,
          body: EmptyBody,
          response: { 200: LicenseBody, ...errorResponses },
        },
      },
      async (request, reply) => {
        const command = await setLicenseStatusCommand(
          ctx,
          request.auth.workspaceId,
          request.params.id,
          action,
        );
        return writer.run(request, reply, command, (license, now) => ({
          status: 200,
          body: presentLicense(license, now),
        }));
      },
    );
  }

  app.get<{ Params: Static<typeof LicenseIdParams> }>(
    '/v1/licenses/:id/machines',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['licensing'],
        summary: "A license's machines (active first)",
        params: LicenseIdParams,
        response: { 200: MachineListBody, ...errorResponses },
      },
    },
    async (request) => ({
      data: (await listMachines(ctx, request.auth.workspaceId, request.params.id)).map(presentMachine),
    }),
  );

  app.post<{ Params: Static<typeof MachineParams>; Body: Static<typeof EmptyBody> | undefined }>(
    '/v1/licenses/:id/machines/:machine_id/deactivate',
    {
      config: { scope: 'write' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['licensing'],
        summary: 'Deactivate a machine (its seat is free at once)',
        params: MachineParams,
        body: EmptyBody,
        response: { 200: MachineBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const command = await deactivateMachineCommand(
        ctx,
        request.auth.workspaceId,
        request.params.id,
        request.params.machine_id,
      );
      return writer.run(request, reply, command, (machine) => ({
        status: 200,
        body: presentMachine(machine),
      }));
    },
  );

  app.post<{ Body: Static<typeof ActivateBody> }>(
    '/v1/licenses/activate',
    {
      schema: {
        tags: ['licensing'],
        summary: 'Activate a machine (Authorization: License <key>); answers a signed license file',
        body: ActivateBody,
        response: { 201: CheckInAnswer, ...machineErrors },
      },
    },
    async (request, reply) => {
      const command = await activateCommand(ctx, options, licenseKeyOf(request), {
        fingerprint: request.body.fingerprint,
        publicKey: request.body.public_key,
        name: request.body.name ?? null,
      });
      return runMachineWrite(deps, reply, command, (result, now) => ({
        status: 201,
        body: presentCheckIn(result, now),
      }));
    },
  );

  app.post<{ Body: Static<typeof CheckInBody> }>(
    '/v1/licenses/check-in',
    {
      schema: {
        tags: ['licensing'],
        summary: 'Heartbeat: keep the seat, renew a floating seat, lease credits, get a fresh license file',
        body: CheckInBody,
        response: { 200: CheckInAnswer, 402: ErrorBody, ...machineErrors },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const credits = b.credits
        ? {
            amount: positive(b.credits.amount, 'credits.amount'),
            creditType: b.credits.credit_type ?? DEFAULT_CREDIT_TYPE,
            ttlMs: Math.min(
              (b.credits.ttl_seconds ?? Number.MAX_SAFE_INTEGER / 1000) * SECOND,
              options.maxFileTtlMs,
            ),
          }
        : null;
      const command = await checkInCommand(ctx, options, licenseKeyOf(request), {
        fingerprint: b.fingerprint,
        floating: b.floating ?? false,
        credits,
      });
      return runMachineWrite(deps, reply, command, (result, now) => ({
        status: 200,
        body: presentCheckIn(result, now),
      }));
    },
  );

  app.post<{ Body: Static<typeof FingerprintBody> }>(
    '/v1/licenses/deactivate',
    {
      schema: {
        tags: ['licensing'],
        summary: 'Deactivate this machine (Authorization: License <key>)',
        body: FingerprintBody,
        response: { 200: MachineBody, ...machineErrors },
      },
    },
    async (request, reply) => {
      const command = await deactivateCommand(ctx, licenseKeyOf(request), request.body.fingerprint);
      return runMachineWrite(deps, reply, command, (machine) => ({
        status: 200,
        body: presentMachine(machine),
      }));
    },
  );

  app.post<{ Body: Static<typeof FingerprintBody> }>(
    '/v1/licenses/release-seat',
    {
      schema: {
        tags: ['licensing'],
        summary: "Release this machine's floating seat (Authorization: License <key>)",
        body: FingerprintBody,
        response: { 200: ReleasedSeatBody, ...machineErrors },
      },
    },
    async (request, reply) => {
      const command = await releaseSeatCommand(ctx, licenseKeyOf(request), request.body.fingerprint);
      return runMachineWrite(deps, reply, command, (r) => ({ status: 200, body: r }));
    },
  );

  app.post<{ Params: Static<typeof LicenseIdParams>; Body: Static<typeof UsageReceiptsBody> }>(
    '/v1/licenses/:id/usage-receipts',
    {
      schema: {
        tags: ['licensing'],
        summary: "Upload a machine's signed, hash-chained usage log (Authorization: License <key>)",
        params: LicenseIdParams,
        body: UsageReceiptsBody,
        response: { 200: UsageReceiptsAnswer, ...machineErrors },
      },
    },
    async (request, reply) => {
      const command = await uploadUsageCommand(ctx, null, licenseKeyOf(request), request.params.id, {
        fingerprint: request.body.fingerprint,
        records: request.body.records,
      });
      return runMachineWrite(deps, reply, command, (r) => ({
        status: 200,
        body: {
          accepted: r.accepted,
          duplicates: r.duplicates,
          last_seq: r.lastSeq,
          credit_lease: presentLease(r.creditLease),
        },
      }));
    },
  );

  app.get(
    '/v1/licensing/jwks',
    {
      schema: {
        tags: ['licensing'],
        summary: 'The public keys license files are signed with (public, cacheable)',
        response: { 200: JwksBody },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return publicKeySet(ctx, options);
    },
  );

  app.post<{ Body: Static<typeof EmptyBody> | undefined }>(
    '/v1/licensing/keys/rotate',
    {
      config: { scope: 'admin' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['licensing'],
        summary:
          'Rotate the signing key: new files are signed by a new key, old files stay valid until they expire',
        body: EmptyBody,
        response: { 201: RotatedKeyBody, ...errorResponses },
      },
    },
    async (_request, reply) => {
      const key = await rotateSigningKey(ctx, options);
      return reply.code(201).send({ kid: key.kid, created_at: formatInstant(key.createdAt) });
    },
  );
}

function positive(text: string, field: string): Amount {
  const amount = readNonNegative(text, field);
  if (amount.isZero()) throw invalidRequest(`${field} must be positive`, { field });
  return amount;
}
