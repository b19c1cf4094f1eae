import { it } from 'vitest';
import { createTestApp } from '../fixtures/harness.js';

it('probe', async () => {
  const t = await createTestApp();
  const put = (url: string, body: unknown) =>
    t.request({
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  const del = (url: string) => t.request({ method: 'DELETE', url });
  const show = async (what: string, p: Promise<{ statusCode: number; payload: string }>) => {
    const s = Date.now();
    const r = await p;
    console.log(what, '=>', r.statusCode, `${Date.now() - s}ms`, r.payload.slice(0, 250));
    return r;
  };
  const N20 = '99999999999999999999';
  await show('cust', t.post('/v1/customers', { id: 'acme' }));
  await show('cust b', t.post('/v1/customers', { id: 'b' }));
  await show('cust c', t.post('/v1/customers', { id: 'c' }));
  await show('cust d', t.post('/v1/customers', { id: 'd' }));
  await show('grant N20', t.post('/v1/customers/b/grants', { amount: N20 }));
  await show('grant N20', t.post('/v1/customers/b/grants', { amount: N20 }));
  await show('balance b', t.get('/v1/customers/b/balance'));
  await show('feat', t.post('/v1/features', { id: 'gpt-x', type: 'metered', credits_per_use: '5' }));
  await show('feat lim', t.post('/v1/features', { id: 'exports', type: 'metered' }));
  await show('feat bool', t.post('/v1/features', { id: 'sso', type: 'boolean' }));
  await show(
    'plan',
    t.post('/v1/plans', {
      id: 'pro',
      entitlements: [
        { feature_id: 'gpt-x' },
        { feature_id: 'exports', usage_limit: { amount: N20, period: 'P1M' } },
      ],
      allowances: [{ amount: '500', period: 'P1M' }],
      price: { amount: '29.00', currency: 'USD' },
    }),
  );
  await show(
    'plan daily',
    t.post('/v1/plans', { id: 'daily', allowances: [{ amount: '1', period: 'P1D' }] }),
  );
  await show(
    'plan big',
    t.post('/v1/plans', {
      id: 'bigp',
      allowances: [
        { amount: N20, period: 'P1M' },
        { amount: N20, period: 'P1M' },
      ],
    }),
  );
  await show(
    'plan applies unknown',
    t.post('/v1/plans', { id: 'x1', allowances: [{ amount: '1', period: 'P1M', applies_to: ['nope'] }] }),
  );
  await show(
    'plan pct 100.5',
    t.post('/v1/plans', {
      id: 'x2',
      allowances: [{ amount: '1', period: 'P1M', rollover: { max_percent: '100.5' } }],
    }),
  );
  await show(
    'plan pct num',
    t.post('/v1/plans', {
      id: 'x2',
      allowances: [{ amount: '1', period: 'P1M', rollover: { max_percent: 50 } }],
    }),
  );
  await show('plan tz +05:00', t.post('/v1/plans', { id: 'x3', time_zone: '+05:00' }));
  await show('plan tz utc', t.post('/v1/plans', { id: 'x3', time_zone: 'utc' }));
  await show('sub big on c', t.post('/v1/customers/c/subscriptions', { plan_id: 'bigp' }));
  await show('balance c', t.get('/v1/customers/c/balance'));
  const sub = await show('sub', t.post('/v1/customers/acme/subscriptions', { plan_id: 'pro' }));
  const subId = JSON.parse(sub.payload).id;
  await show(
    'debit q N20',
    t.post('/v1/customers/acme/debits', { amount: '1', feature_id: 'exports', quantity: N20 }),
  );
  await show(
    'debit q N20',
    t.post('/v1/customers/acme/debits', { amount: '1', feature_id: 'exports', quantity: N20 }),
  );
  await show('check exports', t.post('/v1/check', { customer_id: 'acme', feature_id: 'exports' }));
  await show(
    'debit exports',
    t.post('/v1/customers/acme/debits', { amount: '1', feature_id: 'exports', quantity: '1' }),
  );
  await show(
    'check huge',
    t.post('/v1/check', { customer_id: 'acme', feature_id: 'gpt-x', quantity: N20, hold: {} }),
  );
  await show('change same', t.post(`/v1/subscriptions/${subId}/change`, { plan_id: 'pro' }));
  await show('change v99', t.post(`/v1/subscriptions/${subId}/change`, { plan_id: 'pro', plan_version: 99 }));
  await show(
    'change v1e300',
    t.post(`/v1/subscriptions/${subId}/change`, { plan_id: 'daily', plan_version: 1e300 }),
  );
  await show(
    'sub v1e300',
    t.post('/v1/customers/acme/subscriptions', { plan_id: 'daily', plan_version: 1e300 }),
  );
  await show('get plan v0', t.get('/v1/plans/pro?version=0'));
  await show('get plan v999999999', t.get('/v1/plans/pro?version=999999999'));
  await show(
    'sub future',
    t.post('/v1/customers/d/subscriptions', { plan_id: 'pro', start_at: '9999-12-31T23:59:59Z' }),
  );
  await show('sub d list', t.get('/v1/customers/d/subscriptions'));
  await show(
    'sub past 1900 daily',
    t.post('/v1/customers/d/subscriptions', { plan_id: 'daily', start_at: '1990-01-01T00:00:00Z' }),
  );
  await show('del feat', del('/v1/features/sso'));
  await show('del feat again', del('/v1/features/sso'));
  await show('put archived feat', put('/v1/features/sso', { type: 'boolean', name: 'x' }));
  await show('plan with archived', t.post('/v1/plans', { id: 'x4', entitlements: [{ feature_id: 'sso' }] }));
  await show(
    'plan allowance applies archived',
    t.post('/v1/plans', { id: 'x5', allowances: [{ amount: '1', period: 'P1M', applies_to: ['sso'] }] }),
  );
  await show(
    'grant applies unknown',
    t.post('/v1/customers/acme/grants', { amount: '1', applies_to: ['nope'] }),
  );
  await show('cancel atend', t.post(`/v1/subscriptions/${subId}/cancel`, { at_period_end: true }));
  await show('change canceling', t.post(`/v1/subscriptions/${subId}/change`, { plan_id: 'daily' }));
  await show('cancel again atend', t.post(`/v1/subscriptions/${subId}/cancel`, { at_period_end: true }));
  await show('cancel now', t.post(`/v1/subscriptions/${subId}/cancel`, {}));
  await show('cancel ended', t.post(`/v1/subscriptions/${subId}/cancel`, {}));
  await show('change ended', t.post(`/v1/subscriptions/${subId}/change`, { plan_id: 'daily' }));
  await show('recon', t.get('/v1/reconciliation'));
  await t.close();
}, 120000);
