import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../domain/errors.js';
import {
  archiveFeatureCommand,
  createFeatureCommand,
  createPlanCommand,
  updateFeatureCommand,
  updatePlanCommand,
} from '../../services/commands.js';
import { getFeature, getPlanVersion, listFeatures, listPlans } from '../../services/queries.js';
import { execute } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { presentPage, readPageRequest } from '../pagination.js';
import { readFeature, readPlan } from '../plan-input.js';
import { presentFeature, presentPlan } from '../plan-presenters.js';
import {
  CreateFeatureBody,
  CreatePlanBody,
  FeatureBody,
  PlanBody,
  ReplaceFeatureBody,
  ReplacePlanBody,
} from '../plan-schemas.js';
import { requestContextOf } from '../route-helpers.js';
import { errorResponses, IdParams, ListOf, ListQuery } from '../schemas.js';

const PlanVersionQuery = Type.Object(
  { version: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })) },
  { additionalProperties: false },
);

/** Features (what customers can be entitled to) and plans (versioned bundles of them). */
export function registerFeatureAndPlanRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.post<{ Body: Static<typeof CreateFeatureBody> }>(
    '/v1/features',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['plans'],
        summary: 'Create a feature (boolean, metered or config)',
        body: CreateFeatureBody,
        response: { 201: FeatureBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = readFeature(request.body.id, request.body);
      const ws = request.auth.workspaceId;
      return writer.run(request, reply, createFeatureCommand(ws, input), (feature) => ({
        status: 201,
        body: presentFeature(feature),
      }));
    },
  );

  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof ReplaceFeatureBody> }>(
    '/v1/features/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['plans'],
        summary: "Replace a feature's definition (its type cannot change)",
        params: IdParams,
        body: ReplaceFeatureBody,
        response: { 200: FeatureBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = readFeature(request.params.id, request.body);
      const ws = request.auth.workspaceId;
      return writer.run(request, reply, updateFeatureCommand(ws, input), (feature) => ({
        status: 200,
        body: presentFeature(feature),
      }));
    },
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/features/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['plans'],
        summary: 'Archive a feature: it stays readable and entitles nobody any more',
        params: IdParams,
        response: { 200: FeatureBody, ...errorResponses },
      },
    },
    async (request) => {
      const ws = request.auth.workspaceId;
      const feature = await execute(
        ctx,
        archiveFeatureCommand(ws, request.params.id),
        requestContextOf(request),
      );
      return presentFeature(feature);
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/features/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['plans'],
        summary: 'Get a feature',
        params: IdParams,
        response: { 200: FeatureBody, ...errorResponses },
      },
    },
    async (request) => {
      const feature = await getFeature(ctx, request.auth.workspaceId, request.params.id);
      return presentFeature(feature);
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/features',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['plans'],
        summary: 'List features',
        querystring: ListQuery,
        response: { 200: ListOf(FeatureBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listFeatures(ctx, request.auth.workspaceId, readPageRequest(request.query));
      return presentPage(page, presentFeature);
    },
  );

  app.post<{ Body: Static<typeof CreatePlanBody> }>(
    '/v1/plans',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['plans'],
        summary: 'Create a plan (version 1): entitlements, allowances, time zone, price',
        body: CreatePlanBody,
        response: { 201: PlanBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = readPlan(request.body.id, request.body);
      const ws = request.auth.workspaceId;
      return writer.run(request, reply, createPlanCommand(ws, input), (plan) => ({
        status: 201,
        body: presentPlan(plan),
      }));
    },
  );

  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof ReplacePlanBody> }>(
    '/v1/plans/:id',
    {
      config: { scope: 'write' },
      schema: {
        tags: ['plans'],
        summary: 'Edit a plan: stores the next version; subscriptions keep theirs until changed',
        params: IdParams,
        body: ReplacePlanBody,
        response: { 201: PlanBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = readPlan(request.params.id, request.body);
      const ws = request.auth.workspaceId;
      return writer.run(request, reply, updatePlanCommand(ws, input), (plan) => ({
        status: 201,
        body: presentPlan(plan),
      }));
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof PlanVersionQuery> }>(
    '/v1/plans/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['plans'],
        summary: 'Get a plan (the latest version, or ?version=n)',
        params: IdParams,
        querystring: PlanVersionQuery,
        response: { 200: PlanBody, ...errorResponses },
      },
    },
    async (request) => {
      const version = request.query.version === undefined ? null : Number(request.query.version);
      const plan = await getPlanVersion(ctx, request.auth.workspaceId, request.params.id, version);
      if (!plan) throw notFound(version === null ? 'plan' : `plan version ${version} of`, request.params.id);
      return presentPlan(plan);
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/plans',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['plans'],
        summary: 'List plans (latest versions)',
        querystring: ListQuery,
        response: { 200: ListOf(PlanBody), ...errorResponses },
      },
    },
    async (request) => {
      const page = await listPlans(ctx, request.auth.workspaceId, readPageRequest(request.query));
      return presentPage(page, presentPlan);
    },
  );
}
