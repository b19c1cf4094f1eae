import { BurndownError, ErrorCode, notFound } from '../domain/errors.js';
import type { Instant } from '../domain/time/instant.js';
import type { ApiKeyRecord, WorkspaceRecord, WriteOperations } from '../ports/storage.js';
import { createApiKey } from './api-keys.js';
import type { ServiceContext } from './context.js';

/**
 * Workspaces: the boundary of everything (customers, ledgers, catalogue, events, keys, audit log).
 * Every row carries its workspace and every read and write names it; a key belongs to one
 * workspace and acts only there, so nothing crosses. Creating one is the installation's business
 * (`workspaces:admin`, held by the bootstrap key only).
 */

/** Creates a workspace and its first admin key (the plain key is returned this once). */
export async function createWorkspace(
  ctx: ServiceContext,
  tx: WriteOperations,
  input: { id: string; name: string | null; now: Instant },
): Promise<{ workspace: WorkspaceRecord; admin: ApiKeyRecord; key: string }> {
  const workspace: WorkspaceRecord = { id: input.id, name: input.name, createdAt: input.now };
  if (!(await tx.insertWorkspace(workspace))) {
    throw new BurndownError(ErrorCode.alreadyExists, `workspace "${input.id}" already exists`, {
      kind: 'workspace',
      id: input.id,
    });
  }
  const { record, key } = await createApiKey(ctx, tx, {
    workspaceId: input.id,
    scope: 'admin',
    name: 'first admin key',
    now: input.now,
  });
  return { workspace, admin: record, key };
}

/** One workspace (404 when unknown). */
export async function getWorkspace(ctx: ServiceContext, id: string): Promise<WorkspaceRecord> {
  const found = await ctx.storage.read.getWorkspace(id);
  if (!found) throw notFound('workspace', id);
  return found;
}

/** Every workspace of the installation, oldest first. */
export async function listWorkspaces(ctx: ServiceContext): Promise<readonly WorkspaceRecord[]> {
  return ctx.storage.read.listWorkspaces();
}
