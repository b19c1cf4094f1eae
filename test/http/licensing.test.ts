import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LICENSING_EVENTS } from '../../src/http/webhook-events/licensing.js';
import {
  generateMachineKey,
  type Jwks,
  UsageLog,
  type UsageRecord,
  verifyLicenseFile,
} from '../../src/licensing-verify/index.js';
import { sweepSilentMachines } from '../../src/services/licensing.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

const DAY = 86_400_000;

for (const dialect of DIALECTS) {
  describe(`licensing (${dialect.name})`, () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
    });
    afterEach(async () => {
      expect((await reconcileLedger(t.storage)).failures).toEqual([]);
      await t.close();
    });

    async function newLicense(fields: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
      const res = await t.post('/v1/licenses', { customer_id: 'acme', ...fields });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; key: string };
    }

    const asMachine = (key: string) => ({ authorization: `License ${key}` });

    async function machine(name: string) {
      const { keyPair, publicKey } = await generateMachineKey();
      return { fingerprint: `fp-${name}`, publicKey, keyPair };
    }

    async function activate(key: string, m: { fingerprint: string; publicKey: string }) {
      return t.post(
        '/v1/licenses/activate',
        { fingerprint: m.fingerprint, public_key: m.publicKey },
        asMachine(key),
      );
    }

    const jwks = async (): Promise<Jwks> => (await t.get('/v1/licensing/jwks')).json() as Jwks;

    it('creates a license with a human-typeable key shown once, stored hashed', async () => {
      const created = await newLicense({ machine_limit: 2, metadata: { seats: 'team' } });
      expect(created.key).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$/);
      const read = (await t.get(`/v1/licenses/${created.id}`)).json() as Record<string, unknown>;
      expect(read['key']).toBeUndefined();
      expect(read['key_prefix']).toBe(created.key.slice(0, 5));
      expect(read['status']).toBe('active');
      // Typed in lower case with spaces instead of dashes, the key still opens the license.
      const m = await machine('a');
      const typed = created.key.toLowerCase().replace(/-/g, ' ').replace(/ /g, '');
      expect((await activate(typed, m)).statusCode).toBe(201);
      expect((await activate('AAAAA-BBBBB-CCCCC-DDDDD-EEEEE', m)).json().error.code).toBe(
        'license_key_invalid',
      );
    });

    it('20 concurrent activations on a limit of 3 activate exactly 3', async () => {
      const { key, id } = await newLicense({ machine_limit: 3 });
      const machines = await Promise.all(Array.from({ length: 20 }, (_, i) => machine(String(i))));
      const answers = await Promise.all(machines.map((m) => activate(key, m)));
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(3);
      expect(statuses.filter((s) => s === 409)).toHaveLength(17);
      for (const a of answers.filter((x) => x.statusCode === 409))
        expect(a.json().error.code).toBe('machine_limit_reached');
      const listed = (await t.get(`/v1/licenses/${id}/machines`)).json().data as { status: string }[];
      expect(listed.filter((m) => m.status === 'active')).toHaveLength(3);
    });

    it('deactivation frees a seat; machines silent past the window are culled by the sweeper', async () => {
      const { key, id } = await newLicense({ machine_limit: 1, heartbeat_window_seconds: 3600 });
      const a = await machine('a');
      const b = await machine('b');
      expect((await activate(key, a)).statusCode).toBe(201);
      expect((await activate(key, b)).json().error.code).toBe('machine_limit_reached');
      expect(
        (await t.post('/v1/licenses/deactivate', { fingerprint: a.fingerprint }, asMachine(key))).statusCode,
      ).toBe(200);
      expect((await activate(key, b)).statusCode).toBe(201);
      // b checks in within the window, then goes silent.
      t.clock.advance(3000_000);
      expect(
        (await t.post('/v1/licenses/check-in', { fingerprint: b.fingerprint }, asMachine(key))).statusCode,
      ).toBe(200);
      t.clock.advance(3599_000);
      expect(await sweepSilentMachines(t.ctx)).toBe(0);
      t.clock.advance(2000);
      expect(await sweepSilentMachines(t.ctx)).toBe(1);
      const listed = (await t.get(`/v1/licenses/${id}/machines`)).json().data as {
        fingerprint: string;
        status: string;
      }[];
      expect(listed.find((m) => m.fingerprint === b.fingerprint)?.status).toBe('culled');
      expect(
        (await t.post('/v1/licenses/check-in', { fingerprint: b.fingerprint }, asMachine(key))).statusCode,
      ).toBe(404);
      expect((await activate(key, a)).statusCode).toBe(201);
    });

    it('suspension and revocation take effect at the next check-in; revocation is final', async () => {
      const { key, id } = await newLicense({ machine_limit: 1 });
      const a = await machine('a');
      expect((await activate(key, a)).statusCode).toBe(201);
      const checkIn = () => t.post('/v1/licenses/check-in', { fingerprint: a.fingerprint }, asMachine(key));
      expect((await t.post(`/v1/licenses/${id}/suspend`)).json().status).toBe('suspended');
      expect((await checkIn()).json().error.code).toBe('license_suspended');
      expect((await t.post(`/v1/licenses/${id}/reinstate`)).json().status).toBe('active');
      expect((await checkIn()).statusCode).toBe(200);
      expect((await t.post(`/v1/licenses/${id}/revoke`)).json().status).toBe('revoked');
      const refused = await checkIn();
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('license_revoked');
      expect((await t.post(`/v1/licenses/${id}/reinstate`)).json().error.code).toBe('invalid_request');
    });

    it('an expired license refuses check-ins', async () => {
      const { key } = await newLicense({ expires_at: new Date(T0 + DAY).toISOString() });
      const a = await machine('a');
      expect((await activate(key, a)).statusCode).toBe(201);
      t.clock.advance(DAY);
      const res = await t.post('/v1/licenses/check-in', { fingerprint: a.fingerprint }, asMachine(key));
      expect(res.json().error.code).toBe('license_expired');
    });

    it('floating seats: at most N held; a seat past its TTL is free again', async () => {
      const { key } = await newLicense({ machine_limit: 5, floating_limit: 1, floating_ttl_seconds: 600 });
      const a = await machine('a');
      const b = await machine('b');
      await activate(key, a);
      await activate(key, b);
      const take = (m: { fingerprint: string }) =>
        t.post('/v1/licenses/check-in', { fingerprint: m.fingerprint, floating: true }, asMachine(key));
      const first = await take(a);
      expect(first.statusCode).toBe(200);
      expect(first.json().seat.expires_at).toBe(new Date(T0 + 600_000).toISOString());
      expect((await take(b)).json().error.code).toBe('seat_limit_reached');
      // a renews its seat by heartbeat; b still waits.
      t.clock.advance(500_000);
      expect((await take(a)).json().seat.expires_at).toBe(new Date(T0 + 1_100_000).toISOString());
      t.clock.advance(500_000);
      expect((await take(b)).json().error.code).toBe('seat_limit_reached');
      // a goes silent: its seat lapses at its TTL and b takes it.
      t.clock.advance(100_000);
      expect((await take(b)).statusCode).toBe(200);
      expect((await take(a)).json().error.code).toBe('seat_limit_reached');
      // Releasing frees it at once.
      expect(
        (await t.post('/v1/licenses/release-seat', { fingerprint: b.fingerprint }, asMachine(key))).json(),
      ).toEqual({
        released: true,
      });
      expect((await take(a)).statusCode).toBe(200);
    });

    it('license files verify offline, with a distinct error for each way they fail', async () => {
      await t.post('/v1/features', { id: 'export', type: 'config', credit_type: 'credits' });
      const { key } = await newLicense({
        entitlements: [{ feature_id: 'export', config: { formats: ['pdf'] } }],
      });
      const a = await machine('a');
      const answer = (await activate(key, a)).json() as { license_file: string };
      const file = answer.license_file;
      const keys = await jwks();
      const ok = await verifyLicenseFile(file, keys, { fingerprint: a.fingerprint, now: T0 });
      expect(ok.ok).toBe(true);
      if (!ok.ok) return;
      expect(ok.payload.config).toEqual({ export: { formats: ['pdf'] } });
      expect(ok.payload.customer.id).toBe('acme');
      expect(ok.payload.machine.fingerprint).toBe(a.fingerprint);
      expect(ok.payload.last_seen_at).toBe(new Date(T0).toISOString());
      // Tampered: one payload character changed.
      const [h, p, s] = file.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      const forged = Buffer.from(
        JSON.stringify({ ...payload, expires_at: '2099-01-01T00:00:00.000Z' }),
      ).toString('base64url');
      expect(await verifyLicenseFile(`${h}.${forged}.${s}`, keys, { now: T0 })).toMatchObject({
        ok: false,
        error: 'tampered',
      });
      expect(await verifyLicenseFile(file, keys, { fingerprint: 'other', now: T0 })).toMatchObject({
        ok: false,
        error: 'wrong_machine',
      });
      expect(await verifyLicenseFile(file, keys, { now: T0 + 7 * DAY })).toMatchObject({
        ok: false,
        error: 'expired',
      });
      expect(await verifyLicenseFile(file, keys, { now: T0 - DAY })).toMatchObject({
        ok: false,
        error: 'clock_rollback',
      });
      expect(
        await verifyLicenseFile(file, keys, { now: T0 + DAY, lastKnownTime: T0 + 2 * DAY }),
      ).toMatchObject({
        ok: false,
        error: 'clock_rollback',
      });
      expect(await verifyLicenseFile(file, { keys: [] }, { now: T0 })).toMatchObject({
        ok: false,
        error: 'unknown_key',
      });
      expect(await verifyLicenseFile('not a file', keys)).toMatchObject({ ok: false, error: 'malformed' });
    });

    it('rotation: new files are signed by the new key; old files stay valid until they expire', async () => {
      const { key } = await newLicense();
      const a = await machine('a');
      const before = (await activate(key, a)).json().license_file as string;
      const oldKeys = await jwks();
      const rotated = await t.post('/v1/licensing/keys/rotate');
      expect(rotated.statusCode).toBe(201);
      t.clock.advance(1000);
      const after = (
        await t.post('/v1/licenses/check-in', { fingerprint: a.fingerprint }, asMachine(key))
      ).json().license_file as string;
      const newKeys = await jwks();
      expect(newKeys.keys).toHaveLength(2);
      expect(await verifyLicenseFile(before, newKeys, { now: T0 + 1000 })).toMatchObject({ ok: true });
      expect(await verifyLicenseFile(after, newKeys, { now: T0 + 1000 })).toMatchObject({
        ok: true,
        kid: rotated.json().kid,
      });
      // A verifier that only knows the old key set does not know the new kid.
      expect(await verifyLicenseFile(after, oldKeys, { now: T0 + 1000 })).toMatchObject({
        ok: false,
        error: 'unknown_key',
      });
      // Once every file the old key signed has expired, it leaves the key set.
      t.clock.advance(7 * DAY);
      expect((await jwks()).keys.map((k) => k.kid)).toEqual([rotated.json().kid]);
    });

    describe('offline credit leases and usage logs', () => {
      let key: string;
      let licenseId: string;
      let m: Awaited<ReturnType<typeof machine>>;
      let log: UsageLog;

      beforeEach(async () => {
        expect((await t.post('/v1/customers/acme/grants', { amount: '100' })).statusCode).toBe(201);
        await t.post('/v1/meters', {
          id: 'renders',
          event_type: 'render',
          aggregation: 'sum',
          value_property: '$.quantity',
        });
        expect(
          (await t.post('/v1/rates', { id: 'render-rate', meter_id: 'renders', credits_per_unit: '2' }))
            .statusCode,
        ).toBe(201);
        ({ key, id: licenseId } = await newLicense({ machine_limit: 2 }));
        m = await machine('offline');
        const activated = (await activate(key, m)).json() as { machine: { id: string } };
        log = new UsageLog({ licenseId, machineId: activated.machine.id }, m.keyPair.privateKey);
      });

      const balance = async () => {
        const b = (await t.get('/v1/customers/acme/balance')).json() as {
          available: string;
          held: string;
          overage: string;
        };
        return { available: b.available, held: b.held, overage: b.overage };
      };
      const upload = (records: readonly UsageRecord[]) =>
        t.post(
          `/v1/licenses/${licenseId}/usage-receipts`,
          { fingerprint: m.fingerprint, records },
          asMachine(key),
        );
      const meterSum = async () => {
        const rows = (await t.get('/v1/meters/renders/usage?window=day&customer_id=acme')).json().data as {
          value: string;
        }[];
        return rows.map((r) => r.value);
      };
      const record = (quantity: string, minutes: number) =>
        log.append({ eventType: 'render', quantity, time: new Date(T0 + minutes * 60_000) });

      async function leaseCredits(amount: string) {
        const res = await t.post(
          '/v1/licenses/check-in',
          { fingerprint: m.fingerprint, credits: { amount, ttl_seconds: 86_400 } },
          asMachine(key),
        );
        expect(res.statusCode, res.body).toBe(200);
        return res.json() as {
          credit_lease: { id: string; amount: string; hold_id: string };
          license_file: string;
        };
      }

      it('an offline session end to end: lease, record offline, upload; ledger and meters exact', async () => {
        const lease = await leaseCredits('50');
        expect(await balance()).toEqual({ available: '50', held: '50', overage: '0' });
        const verified = await verifyLicenseFile(lease.license_file, await jwks(), {
          fingerprint: m.fingerprint,
          now: T0,
        });
        expect(verified.ok && verified.payload.credit_lease?.amount).toBe('50');
        // Offline: three uses, recorded in the signed chain.
        await record('5', 10);
        await record('3', 20);
        await record('2', 30);
        t.clock.advance(3600_000);
        const res = await upload(log.records);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toMatchObject({ accepted: 3, duplicates: 0, last_seq: 3 });
        // 10 units at 2 credits: 20 captured from the lease's hold, 30 still held for the lease.
        expect(await balance()).toEqual({ available: '50', held: '30', overage: '0' });
        expect(await meterSum()).toEqual(['10']);
        // A replay changes nothing.
        const replay = await upload(log.records);
        expect(replay.json()).toMatchObject({ accepted: 0, duplicates: 3 });
        expect(await balance()).toEqual({ available: '50', held: '30', overage: '0' });
        // More usage than the lease has left: the rest of the lease, then the excess from available credits.
        await record('20', 40);
        expect((await upload(log.records)).json()).toMatchObject({
          accepted: 1,
          duplicates: 3,
          credit_lease: null,
        });
        expect(await balance()).toEqual({ available: '40', held: '0', overage: '0' });
        expect(await meterSum()).toEqual(['30']);
      });

      it('the unused rest of a lease is released at its end, or replaced by a renewed lease', async () => {
        await leaseCredits('50');
        await record('5', 1);
        expect((await upload(log.records)).statusCode).toBe(200);
        expect(await balance()).toEqual({ available: '50', held: '40', overage: '0' });
        await leaseCredits('30');
        expect(await balance()).toEqual({ available: '60', held: '30', overage: '0' });
        t.clock.advance(DAY + 1);
        expect(await balance()).toEqual({ available: '90', held: '0', overage: '0' });
        // Usage uploaded after the lease ended is debited directly.
        await record('1', 2);
        expect((await upload(log.records)).json()).toMatchObject({ accepted: 1, duplicates: 1 });
        expect(await balance()).toEqual({ available: '88', held: '0', overage: '0' });
      });

      it('gapped, reordered, forked and badly signed logs are refused with their own codes; nothing changes', async () => {
        await leaseCredits('50');
        const r1 = await record('1', 1);
        const r2 = await record('1', 2);
        const r3 = await record('1', 3);
        const before = await balance();
        const expectRefused = async (records: UsageRecord[], code: string) => {
          const res = await upload(records);
          expect(res.json().error?.code, res.body).toBe(code);
          expect(await balance()).toEqual(before);
          expect(await meterSum()).toEqual([]);
        };
        await expectRefused([r2, r3], 'usage_log_gap');
        await expectRefused([r2, r1], 'usage_log_out_of_order');
        await expectRefused([{ ...r1, quantity: '100' }], 'usage_log_bad_hash');
        const other = await generateMachineKey();
        const forger = new UsageLog(
          { licenseId, machineId: (await t.get(`/v1/licenses/${licenseId}/machines`)).json().data[0].id },
          other.keyPair.privateKey,
        );
        const forged = await forger.append({ eventType: 'render', quantity: '1', time: new Date(T0) });
        await expectRefused([forged], 'usage_log_bad_signature');
        await expectRefused([{ ...r1, prev_hash: 'f'.repeat(64) }], 'usage_log_fork');
        // A fork after acceptance: another record 1 than the one the server holds.
        expect((await upload([r1])).statusCode).toBe(200);
        const afterFirst = await balance();
        const fork = await new UsageLog(
          { licenseId, machineId: (await t.get(`/v1/licenses/${licenseId}/machines`)).json().data[0].id },
          m.keyPair.privateKey,
        ).append({ eventType: 'render', quantity: '7', time: new Date(T0) });
        const res = await upload([fork]);
        expect(res.json().error.code).toBe('usage_log_fork');
        expect(await balance()).toEqual(afterFirst);
        // Every refusal was reported as a license.anomaly fact.
        const facts = await t.storage.read.outbox.listAfter('default', 0, 100);
        const schema = LICENSING_EVENTS.find((e) => e.type === 'license.anomaly')!.data;
        for (const fact of facts.filter((f) => f.type === 'license.anomaly'))
          expect(Value.Check(schema, fact.data), JSON.stringify(fact.data)).toBe(true);
        expect(
          facts.filter((f) => f.type === 'license.anomaly').map((f) => (f.data as { kind: string }).kind),
        ).toEqual([
          'usage_log_gap',
          'usage_log_out_of_order',
          'usage_log_bad_hash',
          'usage_log_bad_signature',
          'usage_log_fork',
          'usage_log_fork',
        ]);
      });

      it('keeps the valid prefix of a log that breaks later', async () => {
        await leaseCredits('50');
        const r1 = await record('1', 1);
        const r2 = await record('2', 2);
        await record('3', 3);
        const r4 = await record('4', 4);
        const res = await upload([r1, r2, r4]);
        expect(res.statusCode).toBe(409);
        expect(res.json().error).toMatchObject({
          code: 'usage_log_gap',
          details: { accepted: 2, accepted_through_seq: 2 },
        });
        expect(await meterSum()).toEqual(['3']);
        expect(await balance()).toEqual({ available: '50', held: '44', overage: '0' });
        expect((await upload(log.records)).json()).toMatchObject({ accepted: 2, duplicates: 2, last_seq: 4 });
        expect(await meterSum()).toEqual(['10']);
      });
    });
  });
}
