import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { formatInstant } from '../../domain/time/instant.js';
import type { WorkspaceRecord } from '../../ports/storage.js';
import { createWorkspaceCommand } from '../../services/commands.js';
import { getWorkspace, listWorkspaces } from '../../services/workspaces.js';
import type { RouteDeps } from '../app.js';
import { errorResponses } from '../schemas.js';
import { ApiKeyBody, presentApiKey } from './api-keys.js';

const WorkspaceId = Type.String({
  pattern: '^[a-z0-9][a-z0-9_-]{0,63}$',
  description: 'Lower-case letters, digits, `_` and `-`; 1–64 characters',
});
const CreateWorkspaceBody = Type.Object(
  { id: WorkspaceId, name: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])) },
  { additionalProperties: false },
);
const WorkspaceBody = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});
const CreatedWorkspaceBody = Type.Object({
  ...WorkspaceBody.properties,
  admin_key: Type.Object({ ...ApiKeyBody.properties, key: Type.Union([Type.String(), Type.Null()]) }),
});
const WorkspaceParams = Type.Object({ workspace_id: WorkspaceId });

function presentWorkspace(w: WorkspaceRecord) {
  return { id: w.id, name: w.name, created_at: formatInstant(w.createdAt) };
}

/**
 * Workspaces of the installation (`workspaces:admin`, the bootstrap key's): create one (its first
 * admin key is shown once), list them, read one.
 */
export function registerWorkspaceRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateWorkspaceBody> }>(
    '/v1/workspaces',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'Create a workspace (installation admin); answers its first admin key, shown only here',
        body: CreateWorkspaceBody,
        response: { 201: CreatedWorkspaceBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(
        request,
        reply,
        createWorkspaceCommand(ctx, request.auth.keyHash, {
          id: request.body.id,
          name: request.body.name ?? null,
        }),
        ({ workspace, admin, key }) => ({
          status: 201,
          body: { ...presentWorkspace(workspace), admin_key: { ...presentApiKey(admin), key } },
          // A replay must not reveal the key again.
          replayBody: { ...presentWorkspace(workspace), admin_key: { ...presentApiKey(admin), key: null } },
        }),
      ),
  );

  app.get(
    '/v1/workspaces',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['workspaces'],
        summary: "List the installation's workspaces (installation admin)",
        response: {
          200: Type.Object({ data: Type.Array(WorkspaceBody), next_cursor: Type.Null() }),
          ...errorResponses,
        },
      },
    },
    async () => ({ data: (await listWorkspaces(ctx)).map(presentWorkspace), next_cursor: null }),
  );

  app.get<{ Params: Static<typeof WorkspaceParams> }>(
    '/v1/workspaces/:workspace_id',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['workspaces'],
        summary: 'One workspace (installation admin)',
        params: WorkspaceParams,
        response: { 200: WorkspaceBody, ...errorResponses },
      },
    },
    async (request) => presentWorkspace(await getWorkspace(ctx, request.params.workspace_id)),
  );
}
