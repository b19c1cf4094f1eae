import { createHash, randomBytes } from 'node:crypto';
import { BurndownError, ErrorCode, invalidRequest, notFound } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { PortalScope, PortalSessionRecord } from '../ports/storage.js';
import { customerLockKey, type ServiceContext } from './context.js';
import { requireCustomer } from './lookups.js';
import { command, execute } from './unit-of-work.js';

/**
 * Customer portal sessions. An operator's server asks for a session for one customer
 * (`POST /v1/customers/{id}/portal-sessions`) and gets a single-use code valid {@link CODE_TTL_MS};
 * the portal page exchanges it (once) for a session token the browser keeps in an httpOnly,
 * SameSite=Strict cookie, valid {@link SESSION_TTL_MS} and refreshable while live. Only SHA-256
 * hashes of codes and tokens are stored, so a database dump opens no portal. Every portal read
 * and write is of the session's one customer: the customer never comes from the request.
 */

/** How long a portal code may wait to be exchanged. */
export const CODE_TTL_MS = 60_000;
/** How long a portal session lives without a refresh (at most 15 minutes). */
export const SESSION_TTL_MS = 15 * 60_000;
export const PORTAL_SCOPES: readonly PortalScope[] = ['read', 'read+topup'];

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');
const secret = (prefix: string) => `${prefix}_${randomBytes(32).toString('base64url')}`;

/** The refusal of a code or session that is unknown, spent, expired or revoked (no detail on which). */
function portalUnauthorized(what: 'code' | 'session'): BurndownError {
  return new BurndownError(
    ErrorCode.unauthorized,
    what === 'code'
      ? 'this portal code is unknown, already used or expired'
      : 'no live portal session (it expired or was revoked): open the portal again',
    {},
  );
}

/** Creates a session for one customer; answers the code (shown once) and the record. */
export async function createPortalSession(
  ctx: ServiceContext,
  input: { workspaceId: string; customerId: string; scope: PortalScope },
): Promise<{ record: PortalSessionRecord; code: string }> {
  const code = secret('pc');
  const record = await execute(
    ctx,
    command(customerLockKey(input.workspaceId, input.customerId), async (tx, now) => {
      await requireCustomer(tx, input.workspaceId, input.customerId);
      const record: PortalSessionRecord = {
        id: `ps_${randomBytes(12).toString('hex')}`,
        workspaceId: input.workspaceId,
        customerId: input.customerId,
        scope: input.scope,
        codeHash: hash(code),
        codeExpiresAt: now + CODE_TTL_MS,
        codeUsedAt: null,
        sessionHash: null,
        sessionExpiresAt: null,
        revokedAt: null,
        createdAt: now,
      };
      await tx.portal.insert(record);
      return record;
    }),
  );
  return { record, code };
}

/** A live session and its token (set as the cookie). */
export interface PortalSessionGrant {
  readonly record: PortalSessionRecord;
  readonly token: string;
  readonly expiresAt: Instant;
}

/** Exchanges a code for a session, once: a second exchange, or one after a minute, is a 401. */
export async function exchangePortalCode(ctx: ServiceContext, code: string): Promise<PortalSessionGrant> {
  if (code.length > 200) throw invalidRequest('code is too long', { field: 'code' });
  const codeHash = hash(code);
  const token = secret('ps');
  const granted = await execute(
    ctx,
    command(`portal:${codeHash}`, async (tx, now) => {
      const record = await tx.portal.findByCodeHash(codeHash);
      if (!record) return { record: null, expiresAt: 0 };
      const expiresAt = now + SESSION_TTL_MS;
      const redeemed = await tx.portal.redeem(record.id, hash(token), expiresAt, now);
      return { record: redeemed ? record : null, expiresAt };
    }),
  );
  if (!granted.record) throw portalUnauthorized('code');
  return { record: granted.record, token, expiresAt: granted.expiresAt };
}

/** The live session of a token, or a 401. */
export async function resolvePortalSession(
  ctx: ServiceContext,
  token: string | undefined,
): Promise<PortalSessionRecord> {
  if (!token || token.length > 200) throw portalUnauthorized('session');
  const record = await ctx.storage.read.portal.findBySessionHash(hash(token));
  const now = ctx.clock.now();
  if (!record || record.revokedAt !== null || (record.sessionExpiresAt ?? 0) <= now) {
    throw portalUnauthorized('session');
  }
  return record;
}

/** A new token and expiry for a live session (the old token stops working). */
export async function refreshPortalSession(ctx: ServiceContext, token: string): Promise<PortalSessionGrant> {
  const record = await resolvePortalSession(ctx, token);
  const next = secret('ps');
  const refreshed = await execute(
    ctx,
    command(customerLockKey(record.workspaceId, record.customerId), async (tx, now) => {
      const expiresAt = now + SESSION_TTL_MS;
      const ok = await tx.portal.refresh(record.id, hash(token), hash(next), expiresAt, now);
      return { ok, expiresAt };
    }),
  );
  if (!refreshed.ok) throw portalUnauthorized('session');
  return { record, token: next, expiresAt: refreshed.expiresAt };
}

/** Ends a session for good (the operator's revoke, or the portal's sign-out). 404 when unknown. */
export async function revokePortalSession(
  ctx: ServiceContext,
  workspaceId: string,
  id: string,
): Promise<PortalSessionRecord> {
  return execute(
    ctx,
    command(`portal-session:${workspaceId}:${id}`, async (tx, now) => {
      const record = await tx.portal.get(workspaceId, id);
      if (!record) throw notFound('portal session', id);
      await tx.portal.revoke(workspaceId, id, now);
      return { ...record, revokedAt: record.revokedAt ?? now };
    }),
  );
}
