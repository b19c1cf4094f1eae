/**
 * A small "licensed app": a CLI that activates itself with a license key, verifies its signed
 * license file offline, records usage in a signed, hash-chained log while offline, and syncs that
 * log when it is back online (the offline credits were leased as a hold on the server).
 *
 *   npx tsx examples/licensed-app/main.ts                 the whole story against a local server
 *   npx tsx examples/licensed-app/main.ts activate <key>  with BURNDOWN_URL set
 *   npx tsx examples/licensed-app/main.ts lease <credits> | verify | use <quantity> | sync
 *
 * State (the machine key, the license file, the cached key set, the usage log) lives in
 * LICENSED_APP_HOME (default ./.licensed-app). Only the verifier module of this repository is
 * used on the machine side (src/licensing-verify: WebCrypto, no dependency).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBurndownClient } from '@burndown/client';
import {
  generateMachineKey,
  type Jwks,
  UsageLog,
  type UsageRecord,
  verifyLicenseFile,
} from '../../src/licensing-verify/index.js';
import { runExample } from '../local-server.js';

interface State {
  server: string;
  licenseKey: string;
  licenseId: string;
  machineId: string;
  fingerprint: string;
  privateKey: JsonWebKey;
  licenseFile: string;
  jwks: Jwks;
  records: UsageRecord[];
  /** The latest time this machine has seen: a clock set back below it is refused offline. */
  lastKnownTime: number;
}

const subtle = globalThis.crypto.subtle;

class LicensedApp {
  constructor(private readonly home: string) {}

  private get statePath() {
    return join(this.home, 'state.json');
  }

  load(): State {
    return JSON.parse(readFileSync(this.statePath, 'utf8')) as State;
  }

  save(state: State): void {
    mkdirSync(this.home, { recursive: true });
    writeFileSync(this.statePath, JSON.stringify(state, null, 2));
  }

  private static async call(
    server: string,
    key: string,
    path: string,
    body: unknown,
  ): Promise<Record<string, unknown>> {
    const res = await fetch(`${server}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `License ${key}` },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** Online: creates this machine's key pair, activates it and keeps the license file and key set. */
  async activate(server: string, licenseKey: string): Promise<void> {
    const { keyPair, publicKey } = await generateMachineKey();
    const fingerprint = `machine-${randomBytes(8).toString('hex')}`;
    const answer = await LicensedApp.call(server, licenseKey, '/v1/licenses/activate', {
      fingerprint,
      public_key: publicKey,
      name: 'example workstation',
    });
    const jwks = (await (await fetch(`${server}/v1/licensing/jwks`)).json()) as Jwks;
    const license = answer['license'] as { id: string };
    const machine = answer['machine'] as { id: string };
    this.save({
      server,
      licenseKey,
      licenseId: license.id,
      machineId: machine.id,
      fingerprint,
      privateKey: await subtle.exportKey('jwk', keyPair.privateKey),
      licenseFile: answer['license_file'] as string,
      jwks,
      records: [],
      lastKnownTime: Date.now(),
    });
    console.log(`activated ${fingerprint} on license ${license.id}`);
  }

  /** Online: leases credits for offline use (a hold on the server) and keeps the new license file. */
  async lease(credits: string): Promise<void> {
    const state = this.load();
    const answer = await LicensedApp.call(state.server, state.licenseKey, '/v1/licenses/check-in', {
      fingerprint: state.fingerprint,
      credits: { amount: credits, ttl_seconds: 86_400 },
    });
    this.save({ ...state, licenseFile: answer['license_file'] as string, lastKnownTime: Date.now() });
    console.log(
      `leased ${credits} credits until ${(answer['credit_lease'] as { expires_at: string }).expires_at}`,
    );
  }

  /** Offline: checks the license file with the cached key set, this machine and this clock. */
  async verify(): Promise<{ credits: string | null; features: string[] }> {
    const state = this.load();
    const verdict = await verifyLicenseFile(state.licenseFile, state.jwks, {
      fingerprint: state.fingerprint,
      lastKnownTime: state.lastKnownTime,
    });
    if (!verdict.ok) throw new Error(`license refused offline: ${verdict.error} (${verdict.message})`);
    this.save({ ...state, lastKnownTime: Math.max(state.lastKnownTime, Date.now()) });
    const lease = verdict.payload.credit_lease;
    console.log(
      `license ${verdict.payload.license.id} valid offline until ${verdict.payload.expires_at}` +
        (lease ? `; ${lease.amount} ${lease.credit_type} leased until ${lease.expires_at}` : ''),
    );
    return {
      credits: lease?.amount ?? null,
      features: verdict.payload.entitlements.map((e) => e.feature_id),
    };
  }

  /** Offline: records one use in the signed, hash-chained log. */
  async use(quantity: string): Promise<void> {
    await this.verify();
    const state = this.load();
    const privateKey = await subtle.importKey('jwk', state.privateKey, { name: 'Ed25519' }, false, ['sign']);
    const log = new UsageLog(
      { licenseId: state.licenseId, machineId: state.machineId },
      privateKey,
      state.records,
    );
    const record = await log.append({ eventType: 'render', quantity, time: new Date() });
    this.save({ ...state, records: [...log.records] });
    console.log(`recorded use #${record.seq}: ${quantity} render(s), hash ${record.hash.slice(0, 12)}…`);
  }

  /** Online again: uploads the log (records already received are skipped by the server) and renews the file. */
  async sync(): Promise<void> {
    const state = this.load();
    const answer = await LicensedApp.call(
      state.server,
      state.licenseKey,
      `/v1/licenses/${state.licenseId}/usage-receipts`,
      {
        fingerprint: state.fingerprint,
        records: state.records,
      },
    );
    console.log(`synced: ${answer['accepted']} new record(s), ${answer['duplicates']} already received`);
    const checkIn = await LicensedApp.call(state.server, state.licenseKey, '/v1/licenses/check-in', {
      fingerprint: state.fingerprint,
    });
    const jwks = (await (await fetch(`${state.server}/v1/licensing/jwks`)).json()) as Jwks;
    this.save({ ...state, licenseFile: checkIn['license_file'] as string, jwks, lastKnownTime: Date.now() });
  }
}

/** The vendor's side and the app's, one after the other, against a server (started here unless given). */
async function demo(): Promise<void> {
  await runExample(async ({ url, apiKey }) => {
    const bd = createBurndownClient({ baseUrl: url, apiKey });
    const suffix = Date.now().toString(36);
    const customer = `studio-${suffix}`;
    // The vendor: a customer with 100 credits, renders metered at 2 credits each, a license for 2 machines.
    await bd.POST('/v1/customers', { body: { id: customer } });
    await bd.POST('/v1/customers/{id}/grants', {
      params: { path: { id: customer } },
      body: { amount: '100' },
    });
    await bd.POST('/v1/meters', {
      body: {
        id: `renders-${suffix}`,
        event_type: 'render',
        aggregation: 'sum',
        value_property: '$.quantity',
      },
    });
    await bd.POST('/v1/rates', {
      body: { id: `render-${suffix}`, meter_id: `renders-${suffix}`, credits_per_unit: '2' },
    });
    // Licenses are created with the admin API (plain fetch here: any HTTP client does).
    const created = await fetch(`${url}/v1/licenses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ customer_id: customer, machine_limit: 2 }),
    });
    const license = (await created.json()) as { id: string; key: string };
    if (created.status !== 201) throw new Error(`license not created: ${JSON.stringify(license)}`);
    console.log(`vendor: license ${license.id}, key ${license.key} (shown once)`);

    const home = mkdtempSync(join(tmpdir(), 'licensed-app-'));
    try {
      const app = new LicensedApp(home);
      await app.activate(url, license.key);
      await app.lease('40');
      // Offline from here: verification and usage need no server.
      await app.verify();
      await app.use('3');
      await app.use('5');
      await app.use('2');
      // Back online.
      await app.sync();
      await app.sync(); // a replay changes nothing
      const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path: { id: customer } } });
      console.log(`customer balance: ${balance.available} available, ${balance.held} still leased`);
      if (balance.available !== '60' || balance.held !== '20')
        throw new Error('unexpected balance after sync');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
}

const [command, arg] = process.argv.slice(2);
const app = new LicensedApp(process.env['LICENSED_APP_HOME'] ?? join(process.cwd(), '.licensed-app'));
switch (command) {
  case undefined:
    await demo();
    break;
  case 'activate':
    await app.activate(process.env['BURNDOWN_URL'] ?? 'http://127.0.0.1:7420', arg ?? '');
    break;
  case 'lease':
    await app.lease(arg ?? '10');
    break;
  case 'verify':
    await app.verify();
    break;
  case 'use':
    await app.use(arg ?? '1');
    break;
  case 'sync':
    await app.sync();
    break;
  default:
    console.error(`unknown command ${command}; see the comment at the top of this file`);
    process.exitCode = 2;
}
