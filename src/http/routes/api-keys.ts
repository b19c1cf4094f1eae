import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import type { ApiKeyRecord } from '../../ports/storage.js';
import { createApiKey } from '../../services/api-keys.js';
import type { RouteDeps } from '../app.js';
import { errorResponses, OpaqueId } from '../schemas.js';

const Scope = Type.Union([
  Type.Literal('admin'),
  Type.Literal('write'),
  Type.Literal('read'),
  Type.Literal('check'),
]);
const CreateApiKeyBody = Type.Object(
  { scope: Scope, name: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])) },
  { additionalProperties: false },
);
const ApiKeyBody = Type.Object({
  id: Type.String(),
  scope: Scope,
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});
const CreatedApiKeyBody = Type.Object({
  ...ApiKeyBody.properties,
  key: Type.String({ description: 'Shown once' }),
});
const KeyIdParams = Type.Object({ key_id: OpaqueId });

function presentApiKey(k: ApiKeyRecord) {
  return {
    id: k.id,
    scope: k.scope,
    name: k.name,
    created_at: formatInstant(k.createdAt),
    revoked_at: k.revokedAt === null ? null : formatInstant(k.revokedAt),
  };
}

/** API keys of the caller's workspace: create (the key is shown once), list, revoke. Admin only. */
export function registerApiKeyRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateApiKeyBody> }>(
    '/v1/api-keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key with a scope (admin, write, read, check); the key is returned only here',
        body: CreateApiKeyBody,
        response: { 201: CreatedApiKeyBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(request, reply, `${request.auth.workspaceId}/api-keys`, async (tx, now) => {
        const { record, key } = await createApiKey(ctx, tx, {
          workspaceId: request.auth.workspaceId,
          scope: request.body.scope,
          name: request.body.name ?? null,
          now,
        });
        // A replay must not reveal the key again: only its hash is kept, here too.
        return {
          status: 201,
          body: { ...presentApiKey(record), key },
          replayBody: { ...presentApiKey(record), key: null },
        };
      }),
  );

  app.get(
    '/v1/api-keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['api keys'],
        summary: "List the workspace's API keys (never the keys themselves)",
        response: {
          200: Type.Object({ data: Type.Array(ApiKeyBody), next_cursor: Type.Null() }),
          ...errorResponses,
        },
      },
    },
    async (request) => ({
      data: (await ctx.storage.read.listApiKeysOf(request.auth.workspaceId)).map(presentApiKey),
      next_cursor: null,
    }),
  );

  app.post<{ Params: Static<typeof KeyIdParams> }>(
    '/v1/api-keys/:key_id/revoke',
    {
      config: { scope: 'admin' },
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['api keys'],
        summary: 'Revoke an API key (effective within seconds on every server)',
        params: KeyIdParams,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: ApiKeyBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(request, reply, `${request.auth.workspaceId}/api-keys`, async (tx, now) => {
        const workspaceId = request.auth.workspaceId;
        if (!(await tx.revokeApiKey(workspaceId, request.params.key_id, now))) {
          throw notFound('active API key', request.params.key_id);
        }
        const revoked = (await tx.listApiKeysOf(workspaceId)).find((k) => k.id === request.params.key_id);
        if (!revoked) throw notFound('API key', request.params.key_id);
        return { status: 200, body: presentApiKey(revoked) };
      }),
  );
}
