/**
 * An AI app on Burndown: before calling the model it checks the customer may use the feature and
 * reserves credits with a hold (`POST /v1/check` with `hold`), calls the (fake) model, prices what
 * the call really used with a quote, then captures that cost from the hold, or releases the hold
 * when the call failed. Run: `npx tsx examples/ai-app.ts` (starts a local server unless
 * BURNDOWN_URL and BURNDOWN_API_KEY are set).
 */
import { BurndownApiError, createBurndownClient } from '@burndown/client';
import { runExample } from './local-server.js';

/** A fake language model: answers with the tokens it used, and fails when asked to. */
async function fakeModel(prompt: string): Promise<{ text: string; outputTokens: number }> {
  if (prompt.includes('fail')) throw new Error('model overloaded');
  return { text: `echo: ${prompt}`, outputTokens: 40 * prompt.length };
}

await runExample(async ({ url, apiKey }) => {
  const bd = createBurndownClient({ baseUrl: url, apiKey });
  const suffix = Date.now().toString(36);
  const customer = `ai-customer-${suffix}`;

  // Pricing: output tokens of gpt-x cost 0.002 credits each; the chat feature is priced by that rate.
  await bd.POST('/v1/meters', {
    body: {
      id: `tokens-${suffix}`,
      event_type: 'llm.tokens',
      aggregation: 'sum',
      value_property: '$.tokens',
    },
  });
  await bd.POST('/v1/rates', {
    body: { id: `gpt-x-output-${suffix}`, meter_id: `tokens-${suffix}`, credits_per_unit: '0.002' },
  });
  await bd.POST('/v1/features', {
    body: { id: `chat-${suffix}`, type: 'metered', credits_per_use: '5' },
  });
  await bd.POST('/v1/plans', {
    body: {
      id: `starter-${suffix}`,
      name: 'Starter',
      entitlements: [{ feature_id: `chat-${suffix}` }],
      allowances: [{ amount: '100', period: 'P1M' }],
    },
  });
  await bd.POST('/v1/customers', { body: { id: customer, name: 'An AI app user' } });
  await bd.POST('/v1/customers/{id}/subscriptions', {
    params: { path: { id: customer } },
    body: { plan_id: `starter-${suffix}` },
  });

  async function answer(prompt: string): Promise<string | null> {
    // 1. Allowed? Reserve the feature's price for this call in the same transaction as the decision.
    const check = await bd.POST('/v1/check', {
      body: { customer_id: customer, feature_id: `chat-${suffix}`, hold: { ttl_seconds: 120 } },
    });
    if (!check.allowed || check.hold_id === null) {
      console.log(`refused (${check.reason}); available ${check.available}`);
      return null;
    }
    const holdId = check.hold_id;
    try {
      // 2. Call the model.
      const result = await fakeModel(prompt);
      // 3. What did it really cost? The rate prices the tokens it used.
      const quote = await bd.POST('/v1/quote', {
        body: {
          customer_id: customer,
          events: [{ type: 'llm.tokens', data: { tokens: result.outputTokens } }],
        },
      });
      // 4. Capture the real cost; the rest of the hold goes back (more than held draws like a debit).
      const debit = await bd.POST('/v1/holds/{hold_id}/capture', {
        params: { path: { hold_id: holdId } },
        body: { amount: quote.credits, allow_overage: true },
      });
      console.log(`"${prompt}": held ${check.credits}, captured ${debit.amount} credits`);
      return result.text;
    } catch (error) {
      if (error instanceof BurndownApiError) throw error;
      // The model failed: nothing was used, give the credits back.
      const hold = await bd.POST('/v1/holds/{hold_id}/release', { params: { path: { hold_id: holdId } } });
      console.log(`"${prompt}": model failed (${(error as Error).message}), hold ${hold.status}`);
      return null;
    }
  }

  const a = await answer('hello there');
  const b = await answer('please fail');
  const balance = await bd.GET('/v1/customers/{id}/balance', { params: { path: { id: customer } } });
  console.log(`balance: available ${balance.available}, held ${balance.held}`);
  if (a === null || b !== null) throw new Error('unexpected outcome');
  if (balance.held !== '0') throw new Error('a hold was left open');
  if (balance.available !== String(100 - 0.002 * 40 * 'hello there'.length)) {
    throw new Error(`unexpected balance ${balance.available}`);
  }
});
