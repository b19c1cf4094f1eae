import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createCustomerCommand, updateCustomerCommand } from '../../services/commands.js';
import { getCustomer, listCustomers } from '../../services/queries.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { presentCustomer } from '../presenters.js';
import { readMetadata } from '../route-helpers.js';
import {
  CreateCustomerBody,
  CustomerBody,
  errorResponses,
  IdParams,
  ListOf,
  ListQuery,
  UpdateCustomerBody,
} from '../schemas.js';

/** Customers: create, read, update, list. */
export function registerCustomerRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateCustomerBody> }>(
    '/v1/customers',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['customers'],
        summary: 'Create a customer',
        body: CreateCustomerBody,
        response: { 201: CustomerBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id, name = null, metadata } = request.body;
      const meta = readMetadata(metadata);
      const create = createCustomerCommand({
        workspaceId: request.auth.workspaceId,
        id,
        name,
        metadata: meta,
      });
      return writer.run(request, reply, create, (customer) => ({
        status: 201,
        body: presentCustomer(customer),
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/customers/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['customers'],
        summary: 'Get a customer',
        params: IdParams,
        response: { 200: CustomerBody, ...errorResponses },
      },
    },
    async (request) => presentCustomer(await getCustomer(ctx, request.auth.workspaceId, request.params.id)),
  );

  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof UpdateCustomerBody> }>(
    '/v1/customers/:id',
    {
      config: { scope: 'write' },
      // A PATCH without a body changes nothing and answers the customer as it is.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags: ['customers'],
        summary:
          'Update a customer: fields left out are kept, name null clears it, metadata replaces the stored metadata whole',
        params: IdParams,
        body: UpdateCustomerBody,
        response: { 200: CustomerBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const metadata = body.metadata === undefined ? undefined : readMetadata(body.metadata);
      const ws = request.auth.workspaceId;
      const update = updateCustomerCommand({
        workspaceId: ws,
        id: request.params.id,
        ...(body.name === undefined ? {} : { name: body.name }),
        ...(metadata === undefined ? {} : { metadata }),
      });
      return writer.run(request, reply, update, (customer) => ({
        status: 200,
        body: presentCustomer(customer),
      }));
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/customers',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['customers'],
        summary: 'List customers',
        querystring: ListQuery,
        response: { 200: ListOf(CustomerBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listCustomers(ctx, request.auth.workspaceId, readPageRequest(request.query));
      return presentPage(page, presentCustomer);
    },
  );
}
