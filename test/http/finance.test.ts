/**
 * Finance over HTTP, on SQLite and PostgreSQL: the revenue report (per customer, month and credit
 * pack; JSON and CSV; each row's identity to the minor unit; breakage at expiry and proportional per
 * pack), the journal (balanced per entry and per currency), breakage settings, streaming exports
 * (NDJSON and CSV, filters, resuming after a row's cursor) and CSV imports (row-by-row report, all
 * or nothing, dry run writes nothing, re-running changes nothing).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/domain/csv/csv.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const FROM = iso(T0);

interface Row {
  currency: string;
  group: string;
  opening_deferred: string;
  additions: string;
  recognised: string;
  breakage: string;
  refunds: string;
  closing_deferred: string;
}

/** The identity in minor units (decimal strings with the currency's fixed decimals). */
function balances(r: Row): boolean {
  const u = (s: string) => BigInt(s.replace('.', ''));
  return (
    u(r.opening_deferred) + u(r.additions) - u(r.recognised) - u(r.breakage) - u(r.refunds) ===
    u(r.closing_deferred)
  );
}

for (const dialect of DIALECTS) {
  describe(`finance over HTTP (${dialect.name})`, () => {
    let t: TestApp;
    const ok = async (res: Promise<{ statusCode: number; body: string }>, status = 200) => {
      const r = await res;
      expect(r.statusCode, r.body).toBe(status);
      return JSON.parse(r.body === '' ? 'null' : r.body);
    };
    const report = async (query: string) => {
      const body = await ok(t.get(`/v1/reports/revenue?${query}`));
      for (const r of [...body.rows, ...body.totals]) expect(balances(r), JSON.stringify(r)).toBe(true);
      return body as { rows: Row[]; totals: Row[] };
    };
    const touch = (customer: string) => t.get(`/v1/customers/${customer}/ledger?limit=1`);

    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      for (const id of ['acme', 'beta']) await ok(t.post('/v1/customers', { id }), 201);
      await ok(
        t.post('/v1/credit-packs', {
          id: 'usd-100',
          credits: '100',
          price: { amount: '10.00', currency: 'USD' },
          expires_after_days: 40,
        }),
        201,
      );
      await ok(
        t.post('/v1/credit-packs', {
          id: 'jpy-300',
          credits: '300',
          price: { amount: '1000', currency: 'JPY' },
        }),
        201,
      );
    });
    afterEach(async () => {
      await t.close();
    });

    it('recognises on consumption, breakage at expiry, per customer, month and pack, in JSON and CSV', async () => {
      await ok(t.post('/v1/customers/acme/purchases', { pack_id: 'usd-100', quantity: 1 }), 201);
      await ok(t.post('/v1/customers/beta/purchases', { pack_id: 'jpy-300', quantity: 1 }), 201);
      // A direct paid grant in a three-decimal currency, and a promotional one (no revenue).
      await ok(
        t.post('/v1/customers/beta/grants', {
          amount: '3',
          cost_basis: { amount: '1.000', currency: 'KWD' },
          priority: 1,
        }),
        201,
      );
      await ok(
        t.post('/v1/customers/acme/grants', { amount: '50', category: 'promotional', priority: 99 }),
        201,
      );
      t.clock.set(T0 + 5 * DAY);
      await ok(t.post('/v1/customers/acme/debits', { amount: '30' }), 201);
      await ok(t.post('/v1/customers/beta/debits', { amount: '1' }), 201); // the KWD grant first (priority 1)
      t.clock.set(T0 + 35 * DAY); // February
      await ok(t.post('/v1/customers/acme/debits', { amount: '20' }), 201);
      await ok(t.post('/v1/customers/beta/debits', { amount: '150' }), 201); // 2 KWD credits, 148 JPY
      t.clock.set(T0 + 41 * DAY); // the USD pack expired at day 40 with 50 credits left
      await touch('acme');
      const to = iso(T0 + 59 * DAY);

      const byCustomer = await report(`from=${FROM}&to=${to}&group_by=customer`);
      expect(byCustomer.rows).toEqual([
        expect.objectContaining({
          currency: 'JPY',
          group: 'beta',
          additions: '1000',
          recognised: '493',
          closing_deferred: '507',
        }),
        expect.objectContaining({
          currency: 'KWD',
          group: 'beta',
          additions: '1.000',
          recognised: '1.000',
          closing_deferred: '0.000',
        }),
        expect.objectContaining({
          currency: 'USD',
          group: 'acme',
          opening_deferred: '0.00',
          additions: '10.00',
          recognised: '5.00',
          breakage: '5.00',
          refunds: '0.00',
          closing_deferred: '0.00',
        }),
      ]);

      const byMonth = await report(`from=${FROM}&to=${to}&group_by=month&currency=USD`);
      expect(
        byMonth.rows.map((r) => [
          r.group,
          r.opening_deferred,
          r.additions,
          r.recognised,
          r.breakage,
          r.closing_deferred,
        ]),
      ).toEqual([
        ['2026-01', '0.00', '10.00', '3.00', '0.00', '7.00'],
        ['2026-02', '7.00', '0.00', '2.00', '5.00', '0.00'],
      ]);
      const byPack = await report(`from=${FROM}&to=${to}&group_by=credit_pack`);
      expect(byPack.rows.map((r) => [r.currency, r.group])).toEqual([
        ['JPY', 'jpy-300'],
        ['KWD', '(none)'],
        ['USD', 'usd-100'],
      ]);
      // A later range opens with what was deferred at its start.
      const feb = await report(`from=${iso(T0 + 31 * DAY)}&to=${to}&currency=USD`);
      expect(feb.totals[0]).toMatchObject({
        opening_deferred: '7.00',
        additions: '0.00',
        closing_deferred: '0.00',
      });

      // CSV by format=csv and by Accept.
      for (const res of [
        await t.get(`/v1/reports/revenue?from=${FROM}&to=${to}&group_by=month&format=csv`),
        await t.get(`/v1/reports/revenue?from=${FROM}&to=${to}&group_by=month`, { accept: 'text/csv' }),
      ]) {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toContain('text/csv');
        const parsed = parseCsv(res.body);
        if ('message' in parsed) throw new Error(parsed.message);
        const [header, ...rows] = parsed.records.map((r) => r.fields);
        expect(header).toEqual([
          'currency',
          'group',
          'period_start',
          'period_end',
          'opening_deferred',
          'additions',
          'recognised',
          'breakage',
          'refunds',
          'closing_deferred',
        ]);
        for (const f of rows) {
          const row = {
            currency: f[0]!,
            group: f[1]!,
            opening_deferred: f[4]!,
            additions: f[5]!,
            recognised: f[6]!,
            breakage: f[7]!,
            refunds: f[8]!,
            closing_deferred: f[9]!,
          };
          expect(balances(row)).toBe(true);
        }
        expect(rows.filter((f) => f[1] === 'total').map((f) => f[0])).toEqual(['JPY', 'KWD', 'USD']);
      }

      // The journal: every entry balances; deferred revenue moves by closing − opening per currency.
      const journal = await ok(t.get(`/v1/reports/journal?from=${FROM}&to=${to}`));
      const net = new Map<string, bigint>();
      const deferred = new Map<string, bigint>();
      const u = (s: string) => BigInt(s.replace('.', ''));
      for (const line of journal.lines) {
        net.set(line.journal_id, (net.get(line.journal_id) ?? 0n) + u(line.debit) - u(line.credit));
        if (line.account === 'deferred_revenue')
          deferred.set(line.currency, (deferred.get(line.currency) ?? 0n) + u(line.credit) - u(line.debit));
      }
      expect([...net.values()].every((v) => v === 0n)).toBe(true);
      expect(deferred.get('USD')).toBe(0n);
      expect(deferred.get('JPY')).toBe(507n);
      expect(journal.lines).toContainEqual(
        expect.objectContaining({
          journal_id: 'USD-2026-02-breakage',
          account: 'breakage_revenue',
          credit: '5.00',
        }),
      );
      const csv = await t.get(`/v1/reports/journal?from=${FROM}&to=${to}&format=csv`);
      expect(csv.body.split('\r\n')[0]).toBe('journal_id,date,period_end,currency,account,debit,credit,memo');
    });

    it('recognises expected breakage in proportion to consumption under a pack override, trued up at expiry', async () => {
      expect(await ok(t.get('/v1/settings/revenue'))).toEqual({
        breakage_policy: 'at_expiry',
        expected_breakage_rate: '0',
        credit_packs: [],
      });
      const bad = await t.request({
        method: 'PUT',
        url: '/v1/settings/revenue',
        headers: { 'content-type': 'application/json' },
        payload: { breakage_policy: 'proportional', expected_breakage_rate: '1' },
      });
      expect(bad.statusCode).toBe(400);
      const unknown = await t.request({
        method: 'PUT',
        url: '/v1/credit-packs/nope/revenue-policy',
        headers: { 'content-type': 'application/json' },
        payload: { breakage_policy: 'proportional', expected_breakage_rate: '0.2' },
      });
      expect(unknown.statusCode).toBe(404);
      await ok(
        t.request({
          method: 'PUT',
          url: '/v1/credit-packs/usd-100/revenue-policy',
          headers: { 'content-type': 'application/json' },
          payload: { breakage_policy: 'proportional', expected_breakage_rate: '0.2' },
        }),
      );
      expect((await ok(t.get('/v1/settings/revenue'))).credit_packs).toEqual([
        { credit_pack_id: 'usd-100', breakage_policy: 'proportional', expected_breakage_rate: '0.2' },
      ]);
      await ok(t.post('/v1/customers/acme/purchases', { pack_id: 'usd-100', quantity: 1 }), 201);
      await ok(t.post('/v1/customers/acme/debits', { amount: '30' }), 201);
      const mid = iso(T0 + 10 * DAY);
      // 30 consumed: 30 × 0.2 / 0.8 = 7.5 credits of expected breakage → 0.75 USD.
      const early = await report(`from=${FROM}&to=${mid}&currency=USD`);
      expect(early.rows[0]).toMatchObject({ recognised: '3.00', breakage: '0.75', closing_deferred: '6.25' });
      t.clock.set(T0 + 41 * DAY);
      await touch('acme');
      const end = await report(`from=${FROM}&to=${iso(T0 + 50 * DAY)}&currency=USD&group_by=month`);
      // Trued up at expiry: 70 credits expired → breakage 7.00 in total.
      expect(end.totals[0]).toMatchObject({ recognised: '3.00', breakage: '7.00', closing_deferred: '0.00' });
      expect(end.rows.map((r) => r.breakage)).toEqual(['0.75', '6.25']);
      // The policy in force was recorded on the grant at its sale: removing the override and
      // changing the workspace default later reach only grants sold afterwards.
      expect(
        (await t.request({ method: 'DELETE', url: '/v1/credit-packs/usd-100/revenue-policy' })).statusCode,
      ).toBe(204);
      const setDefault = (payload: object) =>
        ok(
          t.request({
            method: 'PUT',
            url: '/v1/settings/revenue',
            headers: { 'content-type': 'application/json' },
            payload,
          }),
        );
      await setDefault({ breakage_policy: 'proportional', expected_breakage_rate: '0.5' });
      const kept = await report(`from=${FROM}&to=${mid}&currency=USD`);
      expect(kept.rows[0]).toMatchObject({ recognised: '3.00', breakage: '0.75', closing_deferred: '6.25' });
      // beta buys under the new default (proportional 0.5): 10 consumed → 10 × 0.5 / 0.5 = 10
      // credits of expected breakage → 1.00 USD.
      await ok(t.post('/v1/customers/beta/purchases', { pack_id: 'usd-100', quantity: 1 }), 201);
      await ok(t.post('/v1/customers/beta/debits', { amount: '10' }), 201);
      const betaIn = async () =>
        (
          await report(`from=${iso(T0 + 41 * DAY)}&to=${iso(T0 + 42 * DAY)}&currency=USD&group_by=customer`)
        ).rows.find((r) => r.group === 'beta');
      expect(await betaIn()).toMatchObject({ additions: '10.00', recognised: '1.00', breakage: '1.00' });
      await setDefault({ breakage_policy: 'at_expiry' });
      expect(await betaIn()).toMatchObject({
        recognised: '1.00',
        breakage: '1.00',
        closing_deferred: '8.00',
      });
      expect(await report(`from=${FROM}&to=${mid}&currency=USD`)).toMatchObject({
        rows: [{ breakage: '0.75', closing_deferred: '6.25' }],
      });
      // A grant sold now, under at_expiry again, recognises no breakage before it expires.
      await ok(t.post('/v1/customers/beta/purchases', { pack_id: 'usd-100', quantity: 1 }), 201);
      const both = await betaIn();
      expect(both).toMatchObject({ additions: '20.00', breakage: '1.00' });
      // Each policy change is in the audit log with what it replaced; the refused ones are not.
      const audit = (await ok(t.get('/v1/audit-log?target_type=credit_pack&target_id=usd-100'))).data.filter(
        (r: { action: string }) => r.action.startsWith('credit_pack_revenue_policy.'),
      );
      expect(audit.map((r: { action: string }) => r.action)).toEqual([
        'credit_pack_revenue_policy.updated',
        'credit_pack_revenue_policy.deleted',
      ]);
      expect(audit[0]).toMatchObject({
        before: null,
        after: { policy: 'proportional', expectedBreakageRate: '0.2' },
      });
      expect(audit[1]).toMatchObject({ before: { policy: 'proportional' }, after: null });
    });

    it('refuses a bad range; answers reports to a reports:read key, not to a read key, and imports to neither', async () => {
      expect((await t.get(`/v1/reports/revenue?from=${FROM}&to=${FROM}`)).statusCode).toBe(400);
      expect((await t.get(`/v1/reports/revenue?from=nope&to=${FROM}`)).statusCode).toBe(400);
      const reader = await ok(t.post('/v1/api-keys', { scope: 'read', name: 'reader' }), 201);
      const readerAuth = { authorization: `Bearer ${reader.key}` };
      expect(
        (await t.get(`/v1/reports/revenue?from=${FROM}&to=${iso(T0 + DAY)}`, readerAuth)).statusCode,
      ).toBe(403);
      const created = await ok(
        t.post('/v1/api-keys', { permissions: ['reports:read'], name: 'finance' }),
        201,
      );
      const auth = { authorization: `Bearer ${created.key}` };
      expect((await t.get(`/v1/reports/revenue?from=${FROM}&to=${iso(T0 + DAY)}`, auth)).statusCode).toBe(
        200,
      );
      expect((await t.get('/v1/exports/grants', auth)).statusCode).toBe(200);
      const importing = await t.request({
        method: 'POST',
        url: '/v1/imports?kind=customers',
        headers: { ...auth, 'content-type': 'text/csv' },
        payload: 'id\nzeta\n',
      });
      expect(importing.statusCode).toBe(403);
    });

    it('streams exports in NDJSON and CSV, filtered, resumable after any row', async () => {
      await ok(t.post('/v1/customers/acme/grants', { amount: '100' }), 201);
      await ok(t.post('/v1/customers/beta/grants', { amount: '10' }), 201);
      for (let i = 0; i < 5; i += 1) {
        t.clock.advance(1000);
        await ok(t.post('/v1/customers/acme/debits', { amount: '1' }), 201);
      }
      const all = await t.get('/v1/exports/ledger-entries');
      expect(all.headers['content-type']).toContain('application/x-ndjson');
      const lines = all.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.type)).toEqual([
        'grant',
        'grant',
        'debit',
        'debit',
        'debit',
        'debit',
        'debit',
      ]);
      const acme = (await t.get('/v1/exports/ledger-entries?customer_id=acme')).body.trim().split('\n');
      expect(acme).toHaveLength(6);
      const ranged = (
        await t.get(`/v1/exports/ledger-entries?from=${iso(T0 + 2000)}&to=${iso(T0 + 4000)}`)
      ).body
        .trim()
        .split('\n');
      expect(ranged).toHaveLength(2);
      // Resume after the third row: exactly the rest.
      const rest = await t.get(`/v1/exports/ledger-entries?after=${lines[2].cursor}`);
      expect(
        rest.body
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).id),
      ).toEqual(lines.slice(3).map((l) => l.id));
      expect((await t.get('/v1/exports/ledger-entries?after=garbage')).statusCode).toBe(400);

      const grants = await t.get('/v1/exports/grants?format=csv');
      expect(grants.headers['content-type']).toContain('text/csv');
      const parsed = parseCsv(grants.body);
      if ('message' in parsed) throw new Error(parsed.message);
      expect(parsed.records[0]!.fields.slice(0, 3)).toEqual(['id', 'customer_id', 'credit_type']);
      expect(parsed.records.slice(1).map((r) => r.fields[5])).toEqual(expect.arrayContaining(['95', '10']));
      for (const kind of ['events', 'usage']) {
        const res = await t.get(`/v1/exports/${kind}`, { accept: 'text/csv' });
        expect(res.statusCode).toBe(200);
        expect(res.body.split('\r\n')[0]).toContain('cursor');
      }
    });

    it('imports customers and grants row by row, all or nothing, with a dry run and idempotently', async () => {
      const csv = (url: string, payload: string, headers: Record<string, string> = {}) =>
        t.request({ method: 'POST', url, headers: { 'content-type': 'text/csv', ...headers }, payload });
      const customersCsv =
        'id,name,metadata\r\nc1,"One, Inc.","{""tier"":""gold""}"\r\nc2,Two,\r\nacme,Acme,\r\n';
      const dry = await ok(csv('/v1/imports?kind=customers&dry_run=true', customersCsv));
      expect(dry).toMatchObject({ dry_run: true, created: 2, unchanged: 1 });
      expect((await t.get('/v1/customers/c1')).statusCode).toBe(404); // the dry run wrote nothing
      const done = await ok(csv('/v1/imports?kind=customers', customersCsv));
      expect(done).toMatchObject({ dry_run: false, created: 2, unchanged: 1 });
      expect(await ok(t.get('/v1/customers/c1'))).toMatchObject({
        name: 'One, Inc.',
        metadata: { tier: 'gold' },
      });
      expect(await ok(csv('/v1/imports?kind=customers', customersCsv))).toMatchObject({
        created: 0,
        unchanged: 3,
      });

      // Row-by-row report; nothing written when any row is bad.
      const badGrants =
        'external_id,customer_id,amount,cost_basis_amount,cost_basis_currency,expires_at\n' +
        'g1,c1,100,10.00,USD,\n' +
        'g2,c2,-5,,,\n' +
        'g3,nobody,5,,,\n' +
        'g1,c2,5,1,usd,yesterday\n';
      const refused = await t.request({
        method: 'POST',
        url: '/v1/imports?kind=grants',
        headers: { 'content-type': 'text/csv' },
        payload: badGrants,
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.code).toBe('invalid_import');
      const problems = refused
        .json()
        .error.details.problems.map((p: { row: number; column: string; code: string }) => [
          p.row,
          p.column,
          p.code,
        ]);
      expect(problems).toEqual([
        [3, 'amount', 'invalid_amount'],
        [5, 'expires_at', 'invalid_time'],
        [5, 'cost_basis_currency', 'invalid_value'],
      ]);
      const unknownCustomer = await csv(
        '/v1/imports?kind=grants&dry_run=true',
        badGrants
          .split('\n')
          .filter((_, i) => i !== 2 && i !== 4)
          .join('\n'),
      );
      expect(unknownCustomer.statusCode).toBe(400);
      expect(unknownCustomer.json().error.details.problems).toEqual([
        expect.objectContaining({ row: 3, column: 'customer_id', code: 'unknown_customer' }),
      ]);
      expect((await ok(t.get('/v1/customers/c1/grants'))).data).toEqual([]);

      const grantsCsv =
        'external_id,customer_id,amount,cost_basis_amount,cost_basis_currency\n' +
        'g1,c1,100,10.00,USD\n' +
        'g2,c2,5,,\n';
      // A dry run writes nothing anywhere: no grant, entry, import record, audit record or fact.
      const everything = async () =>
        Promise.all(
          [
            '/v1/exports/ledger-entries',
            '/v1/exports/grants',
            '/v1/exports/events',
            '/v1/audit-log?limit=100',
            '/v1/customers?limit=100',
          ].map(async (url) => {
            const res = await t.get(url);
            expect(res.statusCode, url).toBe(200);
            return res.body;
          }),
        );
      const beforeDryRun = await everything();
      expect(await ok(csv('/v1/imports?kind=grants&dry_run=true', grantsCsv))).toMatchObject({ created: 2 });
      expect(await ok(csv('/v1/imports?kind=customers&dry_run=true', 'id\nnew-one\n'))).toMatchObject({
        created: 1,
      });
      expect(await everything()).toEqual(beforeDryRun);
      expect((await ok(t.get('/v1/customers/c1/grants'))).data).toEqual([]);
      const first = await ok(csv('/v1/imports?kind=grants', grantsCsv, { 'idempotency-key': 'imp-1' }));
      expect(first).toMatchObject({ created: 2, unchanged: 0 });
      const replay = await csv('/v1/imports?kind=grants', grantsCsv, { 'idempotency-key': 'imp-1' });
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(await ok(csv('/v1/imports?kind=grants', grantsCsv))).toMatchObject({ created: 0, unchanged: 2 });
      const grants = (await ok(t.get('/v1/customers/c1/grants'))).data;
      expect(grants).toHaveLength(1);
      expect(grants[0]).toMatchObject({
        amount: '100',
        category: 'paid',
        cost_basis: { amount: '10', currency: 'USD' },
      });

      // Opening balances: keyed by customer and credit type unless an external id is given.
      const opening = 'customer_id,amount\nc2,7\n';
      expect(await ok(csv('/v1/imports?kind=opening_balances', opening))).toMatchObject({ created: 1 });
      expect(await ok(csv('/v1/imports?kind=opening_balances', opening))).toMatchObject({
        created: 0,
        unchanged: 1,
      });
      expect((await ok(t.get('/v1/customers/c2/balance'))).available).toBe('12');

      expect(
        (await csv('/v1/imports?kind=grants', 'customer_id,amount,colour\nc1,1,red\n')).json().error.details
          .problems,
      ).toEqual([
        expect.objectContaining({ row: 1, column: 'colour', code: 'unknown_column' }),
        expect.objectContaining({ row: 1, column: 'external_id', code: 'missing_column' }),
      ]);
      expect((await csv('/v1/customers', 'id\nx\n')).statusCode).toBe(415);
      const json = await t.post('/v1/imports?kind=customers', { id: 'x' });
      expect([json.statusCode, json.json().error.code]).toEqual([415, 'unsupported_media_type']);
      // Applied imports are audited (one record each, naming what they created); refused ones are not.
      const imports = (await ok(t.get('/v1/audit-log?target_type=import'))).data;
      expect(imports.map((r: { action: string }) => r.action)).toEqual([
        'import.customers',
        'import.customers',
        'import.grants',
        'import.grants',
        'import.opening_balances',
        'import.opening_balances',
      ]);
      expect(imports[0].after).toMatchObject({ created: 2 });
    });
  });
}
