import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateMachineKey, UsageLog } from '../../src/licensing-verify/index.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

/**
 * Usage beyond a credit lease follows the policy of the license's entitlement for the usage's
 * feature: overage allowed, it runs into overage quietly; a hard limit draws on available credits
 * and, the usage having happened, still runs into overage, reported as a `lease_exceeded` anomaly.
 */
describe('licensing: usage beyond the credit lease', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await t.post('/v1/customers', { id: 'acme' });
    await t.post('/v1/customers/acme/grants', { amount: '30' });
    await t.post('/v1/meters', {
      id: 'renders',
      event_type: 'render',
      aggregation: 'sum',
      value_property: '$.quantity',
    });
    await t.post('/v1/rates', { id: 'render-rate', meter_id: 'renders', credits_per_unit: '2' });
    const feature = await t.post('/v1/features', {
      id: 'rendering',
      type: 'metered',
      rate_ids: ['render-rate'],
    });
    expect(feature.statusCode, feature.body).toBe(201);
  });
  afterEach(async () => {
    expect((await reconcileLedger(t.storage)).failures).toEqual([]);
    await t.close();
  });

  async function offlineSession(entitlement: Record<string, unknown>) {
    const created = (
      await t.post('/v1/licenses', { customer_id: 'acme', entitlements: [entitlement] })
    ).json() as {
      id: string;
      key: string;
    };
    const auth = { authorization: `License ${created.key}` };
    const { keyPair, publicKey } = await generateMachineKey();
    const activated = await t.post(
      '/v1/licenses/activate',
      { fingerprint: 'fp', public_key: publicKey },
      auth,
    );
    const log = new UsageLog(
      { licenseId: created.id, machineId: activated.json().machine.id },
      keyPair.privateKey,
    );
    const lease = await t.post(
      '/v1/licenses/check-in',
      { fingerprint: 'fp', credits: { amount: '20' } },
      auth,
    );
    expect(lease.statusCode, lease.body).toBe(200);
    // 20 renders at 2 credits: 40 credits, twice the lease; 10 more are available, 10 become overage
    // (available reads -10: what is owed).
    await log.append({ eventType: 'render', quantity: '20', time: new Date(T0) });
    const upload = await t.post(
      `/v1/licenses/${created.id}/usage-receipts`,
      { fingerprint: 'fp', records: log.records },
      auth,
    );
    expect(upload.statusCode, upload.body).toBe(200);
    const balance = (await t.get('/v1/customers/acme/balance')).json() as Record<string, string>;
    const anomalies = (await t.storage.read.outbox.listAfter('default', 0, 100)).filter(
      (f) => f.type === 'license.anomaly',
    );
    return { balance: [balance['available'], balance['held'], balance['overage']], anomalies };
  }

  it('overage allowed: the excess runs into overage without an anomaly', async () => {
    const { balance, anomalies } = await offlineSession({ feature_id: 'rendering', overage: {} });
    expect(balance).toEqual(['-10', '0', '10']);
    expect(anomalies).toEqual([]);
  });

  it('hard limit: the excess still runs into overage (the usage happened) and is reported', async () => {
    const { balance, anomalies } = await offlineSession({ feature_id: 'rendering' });
    expect(balance).toEqual(['-10', '0', '10']);
    expect(anomalies.map((a) => (a.data as { kind: string }).kind)).toEqual(['lease_exceeded']);
  });
});
