import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
    }
    // The web app must be built (npm test builds everything first; a lone run builds it here).
    if (!existsSync(join(ROOT, 'dist/web/index.html'))) {
      execFileSync('npm', ['run', 'build:web'], { cwd: ROOT, stdio: 'inherit' });
    }
    server = await ServerProcess.start();
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
    await ok(server.post('/v1/customers', { id: 'acme', name: 'Acme Inc.' }));
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
    await ok(server.post('/v1/customers/acme/grants', { amount: '1000', category: 'paid' }));
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
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await server?.cleanup();
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
});
