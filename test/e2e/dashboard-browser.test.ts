import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { ManualClock } from '../../src/domain/time/clock.js';
import { TimeOrderedIds } from '../../src/infra/ids.js';
import { createCustomer } from '../../src/services/customers.js';
import { debitCredits, grantCredits } from '../../src/services/ledger.js';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.js';
import { newGrant } from '../fixtures/grants.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { E2E_API_KEY, ServerProcess } from './server-process.js';

/**
 * The dashboard and the portal in a real browser: Debian's Chromium (`/usr/bin/chromium`, which
 * `.ci/run` installs when missing; never a downloaded browser) driven by playwright-core against a
 * real `burndown serve`. Seeds through the API, then checks that what the pages show equals what
 * the API answers. Screenshots of the main pages go to a temporary directory; with
 * `BURNDOWN_UPDATE_SCREENSHOTS=1` they replace the ones in docs/screenshots (shown in the README),
 * so a test run leaves the working tree as it found it.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS =
  process.env['BURNDOWN_UPDATE_SCREENSHOTS'] === '1'
    ? join(ROOT, 'docs/screenshots')
    : mkdtempSync(join(tmpdir(), 'burndown-screenshots-'));
const DAY = 86_400_000;

describe('dashboard and portal in Chromium', () => {
  let server: ServerProcess;
  let context: BrowserContext;
  let profile: string;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
    }
    // The web app must be built (npm test builds everything first; a lone run builds it here).
    if (!existsSync(join(ROOT, 'dist/web/index.html'))) {
      execFileSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
    }
    // A receiver that answers 410: its endpoint's one attempt is `gone` and the endpoint is
    // disabled, so the deliveries view has a stable failure to show and replay (no retries racing).
    receiver = await WebhookReceiver.start();
    receiver.answer = () => ({ status: 410 });
    // Acme's history starts two days ago, written before the server starts: its forecast then
    // fits whole days of use whatever the time of day (with today's use alone, the first hour of
    // a UTC day has too little to scale up, and the runway would be missing).
    const databasePath = join(mkdtempSync(join(tmpdir(), 'burndown-dashboard-')), 'db.sqlite');
    await seedHistory(databasePath, Date.now());
    server = await ServerProcess.startOn(`sqlite:${databasePath}`, {
      BURNDOWN_WEBHOOKS_ALLOW_PRIVATE: '1',
      BURNDOWN_WEBHOOK_INTERVAL_MS: '100',
    });
    profile = mkdtempSync(join(tmpdir(), 'burndown-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    mkdirSync(SHOTS, { recursive: true });

    const ok = async (p: Promise<{ status: number; text: string }>) => {
      const res = await p;
      if (res.status >= 300) throw new Error(`seed failed: ${res.status} ${res.text}`);
    };
    await ok(server.post('/v1/webhook-endpoints', { url: receiver.url, description: 'billing system' }));
    await ok(server.post('/v1/customers', { id: 'globex', name: 'Globex' }));
    await ok(
      server.post('/v1/credit-packs', {
        id: 'starter',
        name: 'Starter',
        credits: '500',
        price: { amount: '5.00', currency: 'USD' },
      }),
    );
    await ok(server.post('/v1/features', { id: 'report', type: 'metered', credits_per_use: '2.5' }));
    await ok(
      server.post('/v1/customers/acme/grants', {
        amount: '200',
        category: 'promotional',
        priority: 5,
        expires_at: new Date(Date.now() + 10 * DAY).toISOString(),
      }),
    );
    for (let i = 0; i < 6; i++) await ok(server.post('/v1/customers/acme/debits', { amount: '37.5' }));
    await ok(server.post('/v1/customers/globex/grants', { amount: '9999' }));
    for (const id of ['initech', 'umbrella']) {
      await ok(server.post('/v1/customers', { id }));
      await ok(server.post(`/v1/customers/${id}/grants`, { amount: id === 'initech' ? '300' : '50' }));
      await ok(server.post(`/v1/customers/${id}/debits`, { amount: id === 'initech' ? '100' : '30' }));
    }
    // Usage of a meter grouped by model, over the last two days.
    await ok(
      server.post('/v1/meters', {
        id: 'tokens',
        event_type: 'llm.call',
        aggregation: 'sum',
        value_property: '$.tokens',
        group_by: { model: '$.model' },
      }),
    );
    const hour = 3_600_000;
    const start = Math.floor(Date.now() / hour) * hour;
    const calls: [number, string, number][] = [
      [30, 'small', 120],
      [29, 'large', 40],
      [29, 'small', 80],
      [5, 'large', 300],
      [2, 'small', 15],
      [2, 'large', 5],
    ];
    for (const [i, [hoursAgo, model, tokens]] of calls.entries()) {
      await ok(
        server.post('/v1/events', {
          id: `call-${i}`,
          type: 'llm.call',
          customer_id: 'acme',
          time: new Date(start - hoursAgo * hour + 60_000).toISOString(),
          data: { model, tokens },
        }),
      );
    }
    // The endpoint's attempt was made (and failed as gone) before the tests look at it.
    for (let i = 0; ; i++) {
      const attempts = await server.get('/v1/webhook-attempts?outcome=gone');
      if ((attempts.body as { data: unknown[] }).data.length > 0) break;
      if (i > 100) throw new Error('no webhook attempt within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await server?.cleanup();
    await receiver?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const balanceOf = async (customer: string) =>
    (await server.get(`/v1/customers/${customer}/balance`)).body as {
      available: string;
      held: string;
      overage: string;
    };

  async function signedIn(): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.getByLabel('API key').fill(E2E_API_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    return page;
  }

  it('signs in with a key kept in sessionStorage only, never in the URL', async () => {
    const page = await signedIn();
    expect(page.url()).not.toContain(E2E_API_KEY);
    expect(await page.evaluate('sessionStorage.getItem("burndown.apiKey")')).toBe(E2E_API_KEY);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect((await context.cookies()).filter((c) => c.value.includes(E2E_API_KEY))).toEqual([]);
    await page.getByTestId('outstanding').waitFor();
    const api = (await server.get('/v1/customer-summaries')).body as { data: { available: string }[] };
    const total = api.data.reduce((s, c) => s + Number(c.available), 0);
    await expect
      .poll(async () => (await page.getByTestId('outstanding').textContent())?.replace(/,/g, ''))
      .toBe(String(total));
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
    await page.getByRole('link', { name: 'Customers', exact: true }).click();
    await page.getByTestId('customers-table').getByRole('link', { name: 'acme' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'customers.png'), fullPage: true });
    await page.close();
  });

  it('a customer page shows the API numbers; a grant made in the UI moves the balance and the chart', async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/customers/acme`);
    const available = page.getByTestId('balance-available');
    await available.waitFor();
    const before = await balanceOf('acme');
    expect(await available.getAttribute('data-value')).toBe(before.available);
    expect(await page.getByTestId('balance-held').getAttribute('data-value')).toBe(before.held);
    expect(await page.getByTestId('balance-overage').getAttribute('data-value')).toBe(before.overage);
    const forecast = (await server.get('/v1/customers/acme/forecast')).body as { status: string };
    expect(forecast.status).toBe('forecast');
    expect(await page.getByTestId('runway').textContent()).toMatch(/\d+ (d|h)/);
    // The ledger's newest entry is the last debit (newest first).
    await expect
      .poll(() => page.getByTestId('ledger-table').locator('tbody tr').first().textContent())
      .toContain('debit');
    const chart = page.getByTestId('burndown-chart');
    await chart.locator('canvas').waitFor();
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SHOTS, 'customer.png'), fullPage: true });
    const chartBefore = await chart.screenshot();

    await page.getByLabel('Amount', { exact: true }).fill('250');
    await page.getByRole('button', { name: 'Grant…' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('Grant 250 credits');
    await dialog.getByRole('button', { name: 'Grant', exact: true }).click();
    const expected = String(Number(before.available) + 250);
    await expect.poll(() => available.getAttribute('data-value')).toBe(expected);
    expect((await balanceOf('acme')).available).toBe(expected);
    await expect.poll(async () => (await chart.screenshot()).equals(chartBefore)).toBe(false);
    const firstRow = page.getByTestId('ledger-table').locator('tbody tr').first();
    await expect.poll(() => firstRow.textContent()).toContain('grant');
    expect(await firstRow.textContent()).toContain('250');

    // Phone width: the page still lays out (no horizontal scroll of the page itself).
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(SHOTS, 'customer-phone.png'), fullPage: false });
    await page.close();
  });

  it('the portal opens through a code once, shows only its customer, and buys a pack', async () => {
    const created = await server.post('/v1/customers/acme/portal-sessions', { scope: 'read+topup' });
    expect(created.status).toBe(201);
    const page = await context.newPage();
    await page.goto(`${server.url}${created.body.portal_url}`);
    const available = page.getByTestId('portal-available');
    await available.waitFor();
    // The code leaves the address bar as soon as it is exchanged.
    expect(page.url()).toBe(`${server.url}/portal`);
    const before = await balanceOf('acme');
    expect(await available.getAttribute('data-value')).toBe(before.available);
    expect(await page.getByTestId('portal-prices').textContent()).toContain('report');
    const cookie = (await context.cookies()).find((c) => c.name === 'burndown_portal');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/v1/portal' });
    expect(await page.evaluate('document.cookie')).toBe('');

    // Another customer's data, from inside the portal page: refused in every form.
    const attempts = await page.evaluate(async () => {
      const status = async (url: string) => (await fetch(url)).status;
      return {
        operatorApi: await status('/v1/customers/globex/balance'),
        operatorLedger: await status('/v1/customers/globex/ledger'),
        portalWithId: await status('/v1/portal/balance?customer_id=globex'),
        portalLedgerWithId: await status('/v1/portal/ledger?customer_id=globex'),
      };
    });
    expect(attempts).toEqual({
      operatorApi: 401,
      operatorLedger: 401,
      portalWithId: 400,
      portalLedgerWithId: 400,
    });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(SHOTS, 'portal.png'), fullPage: true });

    await page.getByRole('button', { name: 'Buy…' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('Starter');
    await dialog.getByRole('button', { name: 'Buy', exact: true }).click();
    await page.getByTestId('portal-bought').waitFor();
    const after = String(Number(before.available) + 500);
    await expect.poll(() => available.getAttribute('data-value')).toBe(after);
    expect((await balanceOf('acme')).available).toBe(after);
    expect((await balanceOf('globex')).available).toBe('9999');

    // The same code again: refused.
    const reuse = await context.newPage();
    await reuse.goto(`${server.url}${created.body.portal_url}`);
    await expect.poll(() => reuse.getByRole('alert').textContent()).toContain('expired or was already used');
    await reuse.close();
    await page.close();
  });

  type SummaryRow = { customer: { id: string }; available: string; runway_seconds: number | null };
  /** Rows as [id, available, runway rounded to 10 minutes] (the runway moves with real time). */
  const rowsOf = async (page: Page) =>
    (await rawRowsOf(page)).map(([id, available, runway]) => [id, available, roundRunway(runway)]);
  const roundRunway = (v: string | null | undefined) => (v ? String(Math.round(Number(v) / 600)) : '');
  const rawRowsOf = async (page: Page) =>
    page
      .getByTestId('customers-table')
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [
          tr.getAttribute('data-customer'),
          tr.querySelectorAll('td')[0]?.getAttribute('data-value') ?? null,
          tr.querySelectorAll('td')[3]?.getAttribute('data-value') ?? null,
        ]),
      );

  it('the customers list sorts and searches on the server; the at-risk view equals the API', async () => {
    const page = await signedIn();
    await page.getByRole('link', { name: 'Customers', exact: true }).click();
    await page.getByTestId('customers-table').getByRole('link', { name: 'acme' }).waitFor();
    await page.getByLabel('Sort by').selectOption('available');
    await page.getByLabel('Descending').check();
    const api = (await server.get('/v1/customer-summaries?sort=available&order=desc')).body as {
      data: SummaryRow[];
    };
    const expected = api.data.map((s) => [
      s.customer.id,
      s.available,
      roundRunway(String(s.runway_seconds ?? '')),
    ]);
    expect(expected.map((r) => r[0])).toEqual(['globex', 'acme', 'initech', 'umbrella']);
    await expect.poll(() => rowsOf(page)).toEqual(expected);

    await page.getByLabel('Search').fill('GLO');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await expect.poll(async () => (await rowsOf(page)).map((r) => r[0])).toEqual(['globex']);

    await page.getByRole('link', { name: 'At risk' }).click();
    await page.getByRole('heading', { name: /At risk/ }).waitFor();
    const risk = (await server.get('/v1/customer-summaries?sort=runway&burning=true')).body as {
      data: SummaryRow[];
    };
    const riskRows = risk.data.map((s) => [
      s.customer.id,
      s.available,
      roundRunway(String(s.runway_seconds ?? '')),
    ]);
    expect(riskRows.length).toBeGreaterThan(0);
    await expect.poll(() => rowsOf(page)).toEqual(riskRows);
    await page.screenshot({ path: join(SHOTS, 'at-risk.png'), fullPage: true });

    // Paging (50 per page): Next shows the rest, Previous the first page again.
    for (let i = 0; i < 50; i++) {
      const created = await server.post('/v1/customers', { id: `paged-${String(i).padStart(2, '0')}` });
      expect(created.status).toBe(201);
    }
    const ids = async () => (await rawRowsOf(page)).map((r) => r[0]);
    await page.getByRole('link', { name: 'Customers', exact: true }).click();
    await expect.poll(async () => (await ids()).length).toBe(50);
    const all = (
      (await server.get('/v1/customer-summaries?limit=200')).body as { data: SummaryRow[] }
    ).data.map((row) => row.customer.id);
    expect(all.length).toBeGreaterThan(50);
    const first = await ids();
    expect(first).toEqual(all.slice(0, 50));
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(ids).toEqual(all.slice(50));
    expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(ids).toEqual(first);
    expect(await page.getByRole('button', { name: 'Previous' }).isDisabled()).toBe(true);
    await page.close();
  });

  it('usage by meter and group, per day and per hour, shows the API figures', async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/customers/acme`);
    const panel = page.getByTestId('usage-tokens');
    await panel.locator('canvas').waitFor();
    const cells = () =>
      panel
        .getByTestId('usage-tokens-table')
        .locator('td')
        .evaluateAll((tds) =>
          tds.map((td) => `${td.getAttribute('data-group')}=${td.getAttribute('data-value')}`),
        );
    const apiCells = async (window: 'day' | 'hour') => {
      const from = new Date(Date.now() - (window === 'day' ? 30 * DAY : 48 * 3_600_000)).toISOString();
      const res = await server.get(
        `/v1/meters/tokens/usage?customer_id=acme&group_by=model&window=${window}&limit=1000&from=${encodeURIComponent(from)}`,
      );
      const rows = (res.body as { data: { window_start: string; value: string; group: { model: string } }[] })
        .data;
      const buckets = [...new Set(rows.map((r) => r.window_start))].sort();
      // Columns: groups by total, largest first (as the panel orders them).
      const totals = new Map<string, number>();
      for (const r of rows) totals.set(r.group.model, (totals.get(r.group.model) ?? 0) + Number(r.value));
      const groups = [...totals.keys()].sort((a, b) => totals.get(b)! - totals.get(a)! || (a < b ? -1 : 1));
      return buckets.flatMap((b) =>
        groups.map((g) => {
          const v = rows
            .filter((r) => r.window_start === b && r.group.model === g)
            .map((r) => Number(r.value));
          return `${g}=${v.reduce((x, y) => x + y, 0)}`;
        }),
      );
    };
    await panel.getByText('Usage of tokens as a table').click();
    const days = await apiCells('day');
    expect(days.length).toBeGreaterThanOrEqual(2);
    await expect.poll(cells).toEqual(days);
    await panel.getByRole('combobox', { name: 'Per', exact: true }).selectOption('hour');
    const hours = await apiCells('hour');
    expect(hours.length).toBe(8); // 4 hours with usage × 2 models
    await panel.getByText('Usage of tokens as a table').waitFor();
    await expect.poll(cells).toEqual(hours);
    await page.close();
  });

  it('adjust is one confirmed, audited call; the deliveries view lists the failure and replays it', async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/customers/globex`);
    const available = page.getByTestId('balance-available');
    await available.waitFor();
    const before = await balanceOf('globex');
    await page.getByLabel('Amount (+ adds, − removes)').fill('-99');
    await page.getByLabel('Reason').fill('refund of order 7');
    await page.getByRole('button', { name: 'Adjust…' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('Remove 99 credits from globex');
    await dialog.getByRole('button', { name: 'Adjust', exact: true }).click();
    const expected = String(Number(before.available) - 99);
    await expect.poll(() => available.getAttribute('data-value')).toBe(expected);
    expect((await balanceOf('globex')).available).toBe(expected);
    const audit = (await server.get('/v1/audit-log?action=adjustment.created')).body as {
      data: { after: { reason: string; amount: string } }[];
    };
    expect(audit.data.map((r) => [r.after.amount, r.after.reason])).toEqual([['-99', 'refund of order 7']]);

    await page.getByRole('link', { name: 'Webhook deliveries' }).click();
    const table = page.getByTestId('deliveries-table');
    const api = (await server.get('/v1/webhook-attempts?outcome=retry,failed,gone')).body as {
      data: { id: string; event_id: string; endpoint_id: string }[];
    };
    // The endpoint answers 410 Gone; every delivery the dispatcher had claimed before its first
    // answer (they are attempted concurrently) was attempted too, so how many failed attempts there
    // are depends on how many events were waiting when it first ran: one or a few, never none.
    expect(api.data.length).toBeGreaterThanOrEqual(1);
    const shown = () =>
      table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-attempt')));
    await expect.poll(shown).toEqual(api.data.map((a) => a.id));
    expect(await table.locator('tbody tr').first().textContent()).toContain('gone');
    await page.screenshot({ path: join(SHOTS, 'deliveries.png'), fullPage: true });
    await table.getByRole('button', { name: 'Replay…' }).first().click();
    await expect.poll(() => dialog.textContent()).toContain(api.data[0]!.event_id);
    await dialog.getByRole('button', { name: 'Replay', exact: true }).click();
    await expect.poll(() => page.getByTestId('replay-notice').textContent()).toContain('Queued 1');
    const event = (await server.get(`/v1/webhook-events/${api.data[0]!.event_id}`)).body as {
      deliveries: { endpoint_id: string; replay: boolean }[];
    };
    expect(event.deliveries.filter((d) => d.replay)).toEqual([
      expect.objectContaining({ endpoint_id: api.data[0]!.endpoint_id }),
    ]);
    // Keyboard: the filter is a labelled select reachable by Tab.
    await page.getByLabel('Show').selectOption('all');
    await expect.poll(async () => (await shown()).length).toBeGreaterThanOrEqual(1);
    await page.close();
  });
});

/**
 * Acme's first two days: the customer and a paid grant of 1,000 two days before `now`, and a
 * debit of 112.5 on each of those days, written through the services with a clock set to each
 * day (the API stamps everything with the present).
 */
async function seedHistory(path: string, now: number): Promise<void> {
  const storage = await SqliteStorage.open({ path });
  const clock = new ManualClock(now - 2 * DAY);
  const ctx = { storage, clock, ids: new TimeOrderedIds(() => clock.now()) };
  const key = { workspaceId: 'default', customerId: 'acme', creditType: 'credits' };
  const start = clock.now();
  try {
    await storage.write('default/acme', async (tx) => {
      await createCustomer(tx, {
        workspaceId: 'default',
        id: 'acme',
        name: 'Acme Inc.',
        metadata: {},
        now: start,
      });
      await grantCredits(ctx, tx, {
        key,
        grant: newGrant('1000', start),
        now: start,
      });
    });
    for (const at of [start, start + DAY]) {
      clock.set(at);
      await storage.write('default/acme', async (tx) =>
        debitCredits(ctx, tx, {
          key,
          amount: Amount.of('112.5'),
          allowOverage: false,
          description: null,
          metadata: {},
          now: at,
        }),
      );
    }
  } finally {
    await storage.close();
  }
}
