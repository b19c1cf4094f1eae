import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { invalidRequest } from '../../domain/errors.js';
import { parseRateLimit } from '../../domain/limits/token-bucket.js';
import { formatInstant } from '../../domain/time/instant.js';
import type { ApiKeyRecord } from '../../ports/storage.js';
import { ENV_KEY_NAME } from '../../services/api-keys.js';
import { createApiKeyCommand, revokeApiKeyCommand } from '../../services/commands.js';
import { PERMISSIONS, permissionsOf } from '../../services/permissions.js';
import { listApiKeys } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { readTime } from '../route-helpers.js';
import { errorResponses, OpaqueId } from '../schemas.js';

const Scope = Type.Union([
  Type.Literal('admin'),
  Type.Literal('write'),
  Type.Literal('read'),
  Type.Literal('check'),
]);
const PermissionName = Type.Union(PERMISSIONS.map((p) => Type.Literal(p)));
const CreateApiKeyBody = Type.Object(
  {
    scope: Type.Optional(Scope),
    permissions: Type.Optional(
      Type.Array(PermissionName, {
        minItems: 1,
        maxItems: PERMISSIONS.length,
        description:
          'resource:action permissions (instead of a scope); each must be held by the creating key',
      }),
    ),
    name: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
    expires_at: Type.Optional(
      Type.Union([
        Type.String({ description: 'RFC 3339; the key answers 401 api_key_expired from then on' }),
        Type.Null(),
      ]),
    ),
    rate_limit: Type.Optional(
      Type.Union([
        Type.String({
          pattern: '^[0-9]{1,10}/[0-9]{1,5}s$',
          description:
            "This key's token bucket: `<requests>/<seconds>s` (burst of <requests>); null: the server's default",
        }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
);
export const ApiKeyBody = Type.Object({
  id: Type.String(),
  scope: Scope,
  permissions: Type.Array(Type.String(), { description: "The key's effective permissions" }),
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.Union([Type.String(), Type.Null()]),
  last_used_at: Type.Union([Type.String(), Type.Null()], { description: 'Exact to a minute' }),
  rate_limit: Type.Union([Type.String(), Type.Null()]),
});
const CreatedApiKeyBody = Type.Object({
  ...ApiKeyBody.properties,
  key: Type.String({ description: 'Shown once' }),
});
const KeyIdParams = Type.Object({ key_id: OpaqueId });

const optionalInstant = (at: number | null) => (at === null ? null : formatInstant(at));

/** A key as the API shows it (never the key or its hash). */
export function presentApiKey(k: ApiKeyRecord) {
  return {
    id: k.id,
    scope: k.scope,
    permissions: [...permissionsOf(k)].sort(),
    name: k.name,
    created_at: formatInstant(k.createdAt),
    revoked_at: optionalInstant(k.revokedAt),
    expires_at: optionalInstant(k.expiresAt),
    last_used_at: optionalInstant(k.lastUsedAt),
    rate_limit: k.rateLimit,
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
        summary:
          'Create an API key with a scope preset (admin, write, read, check) or resource:action permissions, an optional expiry and rate limit; the key is returned only here',
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
      const { scope, permissions, expires_at, rate_limit } = request.body;
      if ((scope === undefined) === (permissions === undefined)) {
        throw invalidRequest('give either scope or permissions', { field: 'scope' });
      }
      if (rate_limit != null && parseRateLimit(rate_limit) === null) {
        throw invalidRequest('rate_limit must be <requests>/<seconds>s, both positive', {
          field: 'rate_limit',
        });
      }
      const create = createApiKeyCommand(ctx, request.auth.keyHash, {
        workspaceId: request.auth.workspaceId,
        scope: scope ?? 'admin',
        permissions: permissions ?? null,
        name: request.body.name ?? null,
        expiresAt: expires_at == null ? null : readTime(expires_at, 'expires_at'),
        rateLimit: rate_limit ?? null,
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
