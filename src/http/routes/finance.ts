import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Amount } from '../../domain/amount/amount.js';
import { csvLine } from '../../domain/csv/csv.js';
import { invalidRequest } from '../../domain/errors.js';
import {
  BREAKAGE_POLICIES,
  type BreakagePolicy,
  formatMinorUnits,
} from '../../domain/revenue/recognition.js';
import { REVENUE_GROUP_BYS, type RevenueRow } from '../../domain/revenue/report.js';
import type { Instant } from '../../domain/time/instant.js';
import type { ApiKeyScope } from '../../ports/storage.js';
import {
  JOURNAL_COLUMNS,
  journalLineFields,
  REVENUE_COLUMNS,
  revenueJournal,
  revenueReport,
  revenueRowFields,
} from '../../services/revenue.js';
import {
  getRevenuePolicies,
  readBreakagePolicy,
  setPackRevenuePolicyCommand,
  setWorkspaceRevenuePolicyCommand,
} from '../../services/revenue-policies.js';
import { execute } from '../../services/unit-of-work.js';
import type { RouteDeps } from '../app.js';
import { readTime } from '../route-helpers.js';
import { Currency, errorResponses, IdParams } from '../schemas.js';

/**
 * The scope marker of each finance operation (the permission itself is declared in
 * src/http/permissions.ts): the books are the finance team's, so reading them takes
 * `reports:read` and changing settings or importing takes `finance:admin`, both held by the
 * `admin` preset and grantable one by one to a finance key.
 */
export const FINANCE_SCOPES = {
  revenueReport: 'admin',
  journal: 'admin',
  exports: 'admin',
  readRevenueSettings: 'admin',
  writeRevenueSettings: 'admin',
  imports: 'admin',
} as const satisfies Record<string, ApiKeyScope>;

/** Whether the client asked for CSV: `format=csv`, or an Accept header naming text/csv without format. */
export function wantsCsv(request: FastifyRequest, format: string | undefined): boolean {
  if (format !== undefined) return format === 'csv';
  return (request.headers.accept ?? '').toLowerCase().includes('text/csv');
}

/** Parses a required [from, to) range of the query; `to` must come after `from`. */
function readRange(query: { from: string; to: string }): { from: Instant; to: Instant } {
  const from = readTime(query.from, 'from');
  const to = readTime(query.to, 'to');
  if (to <= from) throw invalidRequest('to must be after from', { field: 'to' });
  return { from, to };
}

const Money = Type.String({
  description: 'Money in the currency’s decimals, e.g. "12.30" (JPY "1200", KWD "1.250")',
});

const RevenueRowBody = Type.Object({
  currency: Type.String(),
  group: Type.String({ description: 'Customer id, month (YYYY-MM), credit pack id ("(none)"), or "total"' }),
  period_start: Type.String(),
  period_end: Type.String(),
  opening_deferred: Money,
  additions: Money,
  recognised: Money,
  breakage: Money,
  refunds: Money,
  closing_deferred: Money,
});

const RevenueReportBody = Type.Object({
  from: Type.String(),
  to: Type.String(),
  group_by: Type.String(),
  currency: Type.Union([Type.String(), Type.Null()]),
  rows: Type.Array(RevenueRowBody),
  totals: Type.Array(RevenueRowBody),
});

const Format = Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')]));

const RevenueReportQuery = Type.Object(
  {
    from: Type.String({ description: 'RFC 3339, inclusive' }),
    to: Type.String({ description: 'RFC 3339, exclusive' }),
    currency: Type.Optional(Currency),
    group_by: Type.Optional(Type.Union(REVENUE_GROUP_BYS.map((g) => Type.Literal(g)))),
    format: Format,
  },
  { additionalProperties: false },
);

const JournalQuery = Type.Object(
  {
    from: Type.String({ description: 'RFC 3339, inclusive' }),
    to: Type.String({ description: 'RFC 3339, exclusive' }),
    currency: Type.Optional(Currency),
    format: Format,
  },
  { additionalProperties: false },
);

const JournalBody = Type.Object({
  from: Type.String(),
  to: Type.String(),
  lines: Type.Array(
    Type.Object({
      journal_id: Type.String(),
      date: Type.String({ description: 'First day of the period (YYYY-MM-DD, UTC)' }),
      period_end: Type.String(),
      currency: Type.String(),
      account: Type.String(),
      debit: Money,
      credit: Money,
      memo: Type.String(),
    }),
  ),
});

const PolicyBody = Type.Object({
  breakage_policy: Type.Union(BREAKAGE_POLICIES.map((p) => Type.Literal(p))),
  expected_breakage_rate: Type.String({ description: 'Share of credits expected never to be used, [0, 1)' }),
});

const PolicyInput = Type.Object(
  {
    breakage_policy: Type.Union(BREAKAGE_POLICIES.map((p) => Type.Literal(p))),
    expected_breakage_rate: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);

const RevenueSettingsBody = Type.Object({
  breakage_policy: Type.Union(BREAKAGE_POLICIES.map((p) => Type.Literal(p))),
  expected_breakage_rate: Type.String(),
  credit_packs: Type.Array(
    Type.Object({
      credit_pack_id: Type.String(),
      breakage_policy: Type.Union(BREAKAGE_POLICIES.map((p) => Type.Literal(p))),
      expected_breakage_rate: Type.String(),
    }),
  ),
});

function presentPolicy(policy: BreakagePolicy) {
  return { breakage_policy: policy.policy, expected_breakage_rate: policy.expectedBreakageRate.toString() };
}

function readPolicyInput(body: Static<typeof PolicyInput>): BreakagePolicy {
  let rate: Amount | null = null;
  if (body.expected_breakage_rate !== undefined) {
    const parsed = Amount.tryParse(body.expected_breakage_rate);
    if (typeof parsed === 'string') {
      throw invalidRequest('expected_breakage_rate must be a decimal string such as "0.1"', {
        field: 'expected_breakage_rate',
      });
    }
    rate = parsed;
  }
  return readBreakagePolicy(body.breakage_policy, rate);
}

function presentRow(row: RevenueRow) {
  const [
    currency,
    group,
    periodStart,
    periodEnd,
    opening,
    additions,
    recognised,
    breakage,
    refunds,
    closing,
  ] = revenueRowFields(row);
  return {
    currency: currency!,
    group: group!,
    period_start: periodStart!,
    period_end: periodEnd!,
    opening_deferred: opening!,
    additions: additions!,
    recognised: recognised!,
    breakage: breakage!,
    refunds: refunds!,
    closing_deferred: closing!,
  };
}

function sendCsv(
  reply: FastifyReply,
  filename: string,
  header: readonly string[],
  rows: readonly string[][],
) {
  const text = csvLine(header) + rows.map(csvLine).join('');
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .send(text);
}

/** Revenue recognition: the report, the journal, and the breakage policies. */
export function registerFinanceRoutes(app: FastifyInstance, { ctx, writer }: RouteDeps): void {
  app.get<{ Querystring: Static<typeof RevenueReportQuery> }>(
    '/v1/reports/revenue',
    {
      config: { scope: FINANCE_SCOPES.revenueReport },
      schema: {
        tags: ['finance'],
        summary:
          'Deferred revenue roll-forward of paid credits per currency and group (JSON, or CSV with format=csv / Accept: text/csv)',
        querystring: RevenueReportQuery,
        response: { 200: RevenueReportBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { from, to } = readRange(request.query);
      const groupBy = request.query.group_by ?? 'customer';
      const currency = request.query.currency ?? null;
      const report = await revenueReport(ctx, {
        workspaceId: request.auth.workspaceId,
        from,
        to,
        currency,
        groupBy,
      });
      if (wantsCsv(request, request.query.format)) {
        return sendCsv(reply, 'revenue.csv', REVENUE_COLUMNS, [
          ...report.rows.map(revenueRowFields),
          ...report.totals.map(revenueRowFields),
        ]);
      }
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        group_by: groupBy,
        currency,
        rows: report.rows.map(presentRow),
        totals: report.totals.map(presentRow),
      };
    },
  );

  app.get<{ Querystring: Static<typeof JournalQuery> }>(
    '/v1/reports/journal',
    {
      config: { scope: FINANCE_SCOPES.journal },
      schema: {
        tags: ['finance'],
        summary:
          'The revenue facts as balanced double-entry journal lines per currency and month (JSON or CSV)',
        querystring: JournalQuery,
        response: { 200: JournalBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { from, to } = readRange(request.query);
      const lines = await revenueJournal(ctx, {
        workspaceId: request.auth.workspaceId,
        from,
        to,
        currency: request.query.currency ?? null,
      });
      if (wantsCsv(request, request.query.format)) {
        return sendCsv(reply, 'journal.csv', JOURNAL_COLUMNS, lines.map(journalLineFields));
      }
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        lines: lines.map((line) => ({
          journal_id: line.journalId,
          date: new Date(line.periodStart).toISOString().slice(0, 10),
          period_end: new Date(line.periodEnd).toISOString(),
          currency: line.currency,
          account: line.account,
          debit: formatMinorUnits(line.debit, line.currency),
          credit: formatMinorUnits(line.credit, line.currency),
          memo: line.memo,
        })),
      };
    },
  );

  app.get(
    '/v1/settings/revenue',
    {
      config: { scope: FINANCE_SCOPES.readRevenueSettings },
      schema: {
        tags: ['finance'],
        summary: "The workspace's breakage policy and the credit packs that override it",
        response: { 200: RevenueSettingsBody, ...errorResponses },
      },
    },
    async (request) => {
      const policies = await getRevenuePolicies(ctx, request.auth.workspaceId);
      return {
        ...presentPolicy(policies.workspaceDefault),
        credit_packs: [...policies.byPack.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([id, p]) => ({ credit_pack_id: id, ...presentPolicy(p) })),
      };
    },
  );

  app.put<{ Body: Static<typeof PolicyInput> }>(
    '/v1/settings/revenue',
    {
      config: { scope: FINANCE_SCOPES.writeRevenueSettings },
      schema: {
        tags: ['finance'],
        summary: "Set the workspace's breakage policy (at_expiry, or proportional with an expected rate)",
        body: PolicyInput,
        response: { 200: PolicyBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const policy = readPolicyInput(request.body);
      const cmd = setWorkspaceRevenuePolicyCommand({ workspaceId: request.auth.workspaceId, policy });
      return writer.run(request, reply, cmd, (done) => ({ status: 200, body: presentPolicy(done.policy) }));
    },
  );

  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof PolicyInput> }>(
    '/v1/credit-packs/:id/revenue-policy',
    {
      config: { scope: FINANCE_SCOPES.writeRevenueSettings },
      schema: {
        tags: ['finance'],
        summary: "Override the workspace's breakage policy for one credit pack",
        params: IdParams,
        body: PolicyInput,
        response: { 200: PolicyBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const policy = readPolicyInput(request.body);
      const cmd = setPackRevenuePolicyCommand({
        workspaceId: request.auth.workspaceId,
        packId: request.params.id,
        policy,
      });
      return writer.run(request, reply, cmd, () => ({ status: 200, body: presentPolicy(policy) }));
    },
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/credit-packs/:id/revenue-policy',
    {
      config: { scope: FINANCE_SCOPES.writeRevenueSettings },
      schema: {
        tags: ['finance'],
        summary: "Stop overriding a credit pack's breakage policy (the workspace's applies again)",
        params: IdParams,
        response: { 204: Type.Null({ description: 'Removed' }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const cmd = setPackRevenuePolicyCommand({
        workspaceId: request.auth.workspaceId,
        packId: request.params.id,
        policy: null,
      });
      await execute(ctx, cmd);
      return reply.code(204).send();
    },
  );
}
