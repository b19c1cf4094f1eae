import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  dryRunImport,
  IMPORT_KINDS,
  type ImportResult,
  importCommand,
  MAX_IMPORT_ROWS,
  planImport,
} from '../../services/imports.js';
import type { RouteDeps } from '../app.js';
import { errorResponses } from '../schemas.js';
import { FINANCE_SCOPES } from './finance.js';

const ImportQuery = Type.Object(
  {
    kind: Type.Union(IMPORT_KINDS.map((k) => Type.Literal(k))),
    dry_run: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  },
  { additionalProperties: false },
);

const ImportBody = Type.Object({
  kind: Type.String(),
  dry_run: Type.Boolean(),
  created: Type.Integer({ description: 'Rows that created something (in a dry run: would create)' }),
  unchanged: Type.Integer({ description: 'Rows an earlier import (or an existing customer) already covers' }),
  rows: Type.Array(
    Type.Object({
      row: Type.Integer({ description: 'CSV line (1 is the header)' }),
      external_id: Type.String(),
      status: Type.Union([Type.Literal('created'), Type.Literal('unchanged')]),
      id: Type.Union([Type.String(), Type.Null()], {
        description: 'Customer or grant id; null in a dry run for new rows',
      }),
    }),
  ),
});

function present(result: ImportResult) {
  return {
    kind: result.kind,
    dry_run: result.dryRun,
    created: result.created,
    unchanged: result.unchanged,
    rows: result.rows.map((r) => ({
      row: r.row,
      external_id: r.externalId,
      status: r.status,
      id: r.objectId,
    })),
  };
}

/**
 * `POST /v1/imports?kind=customers|grants|opening_balances[&dry_run=true]` with a `text/csv` body:
 * validated row by row (400 `invalid_import` lists each problem: row, column, code), written all or
 * nothing, idempotent by row (ids / external ids) and by Idempotency-Key.
 */
export function registerImportRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Querystring: Static<typeof ImportQuery>; Body: string }>(
    '/v1/imports',
    {
      config: { scope: FINANCE_SCOPES.imports },
      schema: {
        tags: ['finance'],
        summary: `Import customers, grants or opening balances from a CSV body (Content-Type: text/csv; at most ${MAX_IMPORT_ROWS} rows): all or nothing, dry_run=true writes nothing, re-running changes nothing`,
        querystring: ImportQuery,
        body: Type.String({ description: 'CSV with a header line (RFC 4180)' }),
        response: { 200: ImportBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const kind = request.query.kind;
      const workspaceId = request.auth.workspaceId;
      const rows = planImport(kind, request.body);
      // The dry run checks references too (customers, credit types), so it answers what the real
      // run would; it reads only.
      const planned = await dryRunImport(ctx, { workspaceId, kind, rows });
      if (request.query.dry_run === 'true') return reply.code(200).send(present(planned));
      return writer.run(request, reply, importCommand(ctx, { workspaceId, kind, rows }), (result) => ({
        status: 200,
        body: present(result),
      }));
    },
  );
}
