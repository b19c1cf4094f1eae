/**
 * The README's walkthrough with the TypeScript client (`@burndown/client`): a customer, a promo
 * grant that expires and a paid one, a debit (the promo burns first), a hold captured in part, the
 * balance now and an hour ago, and the ledger behind it. Run: `npx tsx examples/walkthrough.ts`
 * (starts a local server unless BURNDOWN_URL and BURNDOWN_API_KEY are set).
 */
import { BurndownApiError, createBurndownClient } from '@burndown/client';
import { runExample } from './local-server.js';

await runExample(async ({ url, apiKey }) => {
  const bd = createBurndownClient({ baseUrl: url, apiKey });
  const id = `acme-${Date.now().toString(36)}`;
  const customer = { params: { path: { id } } };

  // a customer
  await bd.POST('/v1/customers', { body: { id, name: 'Acme Inc.' } });

  // credits in: a promotional grant that expires, and a purchased pack with its cost basis
  await bd.POST('/v1/customers/{id}/grants', {
    ...customer,
    body: { amount: '500', category: 'promotional', expires_at: '2030-01-31T00:00:00Z' },
  });
  await bd.POST('/v1/customers/{id}/grants', {
    ...customer,
    body: { amount: '10000', category: 'paid', cost_basis: { amount: '100.00', currency: 'USD' } },
  });

  // credits out: the promo burns first (it expires sooner); the answer shows the drawdowns.
  // The client sends an Idempotency-Key with every write (here our own) and retries safely.
  const debit = await bd.POST('/v1/customers/{id}/debits', {
    ...customer,
    body: { amount: '650.5' },
    headers: { 'Idempotency-Key': `job-42-${id}` },
  });
  console.log('debit', debit.amount, debit.drawdowns);

  // reserve, then capture part of it (the rest is released)
  const hold = await bd.POST('/v1/customers/{id}/holds', {
    ...customer,
    body: { amount: '40', ttl_seconds: 300 },
  });
  const capture = await bd.POST('/v1/holds/{hold_id}/capture', {
    params: { path: { hold_id: hold.id } },
    body: { amount: '31.5' },
  });
  console.log('captured', capture.amount, 'of', hold.amount);

  // the balance now, as it was an hour ago, and the ledger behind it
  const now = await bd.GET('/v1/customers/{id}/balance', customer);
  const anHourAgo = new Date(Date.now() - 3600_000).toISOString();
  const before = await bd.GET('/v1/customers/{id}/balance', {
    params: { path: { id }, query: { at: anHourAgo } },
  });
  console.log('available now', now.available, '- an hour ago', before.available);
  for await (const entry of bd.list('/v1/customers/{id}/ledger', {
    params: { path: { id }, query: { limit: '20' } },
  })) {
    console.log(
      `  ${entry.at} ${entry.type.padEnd(8)} ${entry.amount.padStart(10)} → ${entry.balance_after}`,
    );
  }

  // a short balance is a typed error: 402 insufficient_credits, and nothing is debited
  try {
    await bd.POST('/v1/customers/{id}/debits', { ...customer, body: { amount: '1000000' } });
  } catch (error) {
    if (!(error instanceof BurndownApiError) || error.code !== 'insufficient_credits') throw error;
    console.log(`${error.status} ${error.code}: available ${String(error.details['available'])}`);
  }
  if (now.available !== '9818') throw new Error(`unexpected balance ${now.available}`);
});
