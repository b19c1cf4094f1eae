/**
 * A hybrid plan set up from a script: a monthly allowance of credits included in the plan, plus
 * credit packs a customer buys when the allowance runs short (and auto top-up below a threshold).
 * Allowance credits burn first (lower priority number), then purchased ones. Run:
 * `npx tsx examples/hybrid-plan.ts` (starts a local server unless BURNDOWN_URL and
 * BURNDOWN_API_KEY are set).
 */
import { BurndownApiError, createBurndownClient } from '@burndown/client';
import { runExample } from './local-server.js';

await runExample(async ({ url, apiKey }) => {
  const bd = createBurndownClient({ baseUrl: url, apiKey });
  const suffix = Date.now().toString(36);
  const customer = `hybrid-${suffix}`;

  // The catalogue: a feature, a plan with 1,000 credits a month, a pack of 5,000 credits.
  await bd.POST('/v1/features', {
    body: { id: `reports-${suffix}`, type: 'metered', credits_per_use: '50' },
  });
  const plan = await bd.POST('/v1/plans', {
    body: {
      id: `team-${suffix}`,
      name: 'Team',
      entitlements: [{ feature_id: `reports-${suffix}` }],
      allowances: [{ amount: '1000', period: 'P1M', priority: 5 }],
      price: { amount: '99.00', currency: 'USD' },
      billing_period: 'P1M',
    },
  });
  const pack = await bd.POST('/v1/credit-packs', {
    body: {
      id: `pack-5k-${suffix}`,
      credits: '5000',
      price: { amount: '40.00', currency: 'USD' },
      volume_discounts: [{ min_quantity: 3, percent_off: '10' }],
      expires_after_days: 365,
    },
  });
  console.log(`plan ${plan.id} v${plan.version}; pack ${pack.id} (${pack.credits} credits)`);

  // A customer on the plan: the month's allowance is granted when the subscription starts.
  await bd.POST('/v1/customers', { body: { id: customer, name: 'Hybrid Co.' } });
  const sub = await bd.POST('/v1/customers/{id}/subscriptions', {
    params: { path: { id: customer } },
    body: { plan_id: plan.id },
  });
  console.log(`subscription ${sub.id}: ${sub.current_period.start} → ${sub.current_period.end}`);

  // Burn the allowance down, then run short.
  await bd.POST('/v1/customers/{id}/debits', { params: { path: { id: customer } }, body: { amount: '900' } });
  try {
    await bd.POST('/v1/customers/{id}/debits', {
      params: { path: { id: customer } },
      body: { amount: '300' },
    });
    throw new Error('expected 402');
  } catch (error) {
    if (!(error instanceof BurndownApiError) || error.code !== 'insufficient_credits') throw error;
    console.log(`short: ${error.code}, available ${String(error.details['available'])}`);
  }

  // Buy a pack; the debit now succeeds, the allowance first, then the pack.
  const purchase = await bd.POST('/v1/customers/{id}/purchases', {
    params: { path: { id: customer } },
    body: { pack_id: pack.id, quantity: 1 },
  });
  console.log(`purchased ${purchase.credits} credits (grant ${purchase.grant.id})`);
  const debit = await bd.POST('/v1/customers/{id}/debits', {
    params: { path: { id: customer } },
    body: { amount: '300' },
  });
  console.log(`debit drew: ${debit.drawdowns.map((d) => `${d.amount} from ${d.grant_id}`).join(', ')}`);

  // Auto top-up: below 500 credits, buy one more pack (at most twice a month).
  await bd.PUT('/v1/customers/{id}/auto-top-up', {
    params: { path: { id: customer } },
    body: { threshold: '500', pack_id: pack.id, quantity: 1, max_per_period: 2, period: 'P1M' },
  });
  await bd.POST('/v1/customers/{id}/debits', {
    params: { path: { id: customer } },
    body: { amount: '4500' },
  });
  const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path: { id: customer } } });
  console.log(`available ${balance.available} across ${balance.grants.length} grants`);
  const grants: string[] = [];
  for await (const g of bd.list('/v1/customers/{id}/grants', { params: { path: { id: customer } } })) {
    grants.push(`${g.category}:${g.remaining}/${g.amount}`);
  }
  console.log(`grants: ${grants.join(' ')}`);
  if (balance.available !== '5300') throw new Error(`unexpected balance ${balance.available}`);
});
