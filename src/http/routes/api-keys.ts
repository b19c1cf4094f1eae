import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { formatInstant } from '../../domain/time/instant.js';
import type { ApiKeyRecord } from '../../ports/storage.js';
import { ENV_KEY_NAME } from '../../services/api-keys.js';
import { createApiKeyCommand, revokeApiKeyCommand } from '../../services/commands.js';
import { listApiKeys } from '../../services/queries.js';
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
export function registerApiKeyRoutes(app: FastifyInstance, { ctx, writer, keys }: RouteDeps): void {
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
    async (request, reply) => {
      if (request.body.name === ENV_KEY_NAME) {
        throw invalidRequest(`the name ${ENV_KEY_NAME} is reserved for the key that variable creates`, {
          field: 'name',
        });
      }
      const create = createApiKeyCommand(ctx, request.auth.keyHash, {
        workspaceId: request.auth.workspaceId,
        scope: request.body.scope,
        name: request.body.name ?? null,
      });
      // A replay must not reveal the key again: only its hash is kept, here too.
      return writer.run(request, reply, create, ({ record, key }) => ({
        status: 201,
        body: { ...presentApiKey(record), key },
        replayBody: { ...presentApiKey(record), key: null },
      }));
    },
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
      data: (await listApiKeys(ctx, request.auth.workspaceId)).map(presentApiKey),
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
      // The revocation is committed by now; this process forgets cached keys before answering,
      // so the revoked key is refused here from the moment the answer is out.
      onSend: async (_request, reply, payload) => {
        if (reply.statusCode === 200) keys.invalidate();
        return payload;
      },
      schema: {
        tags: ['api keys'],
        summary: 'Revoke an API key (refused at once by this server, within 1 s by every other)',
        params: KeyIdParams,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: ApiKeyBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      writer.run(
        request,
        reply,
        revokeApiKeyCommand(request.auth.workspaceId, request.auth.keyHash, request.params.key_id),
        (revoked) => ({ status: 200, body: presentApiKey(revoked) }),
      ),
  );
}
