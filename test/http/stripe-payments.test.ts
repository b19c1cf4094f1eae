/**
 * Payments in through Stripe, end to end over HTTP on both dialects: Stripe payloads signed locally
 * with `stripe.webhooks.generateTestHeaderString` (never the network), auto top-ups charged through
 * the payment provider double. After every sequence the ledger reconciles, credits moved exactly,
 * and every fact emitted validates against its published schema (src/http/webhook-events/payments.ts).
 */
import { Value } from '@sinclair/typebox/value';
import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PAYMENT_EVENTS } from '../../src/http/webhook-events/payments.js';
import { chargeWaitingTopUps } from '../../src/services/top-ups.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';
import { PaymentProviderDouble } from '../fixtures/payment-provider-double.js';

const SECRET = 'whsec_test_0123456789abcdef';
const WEBHOOK = '/v1/integrations/stripe/webhook';

type Json = Record<string, unknown>;

let eventCounter = 0;
const nextEventId = () => `evt_test_${++eventCounter}`;

function checkoutEvent(
  type: 'checkout.session.completed' | 'checkout.session.async_payment_succeeded',
  session: {
    id?: string;
    paymentStatus?: 'paid' | 'unpaid';
    amountTotal?: number;
    currency?: string;
    paymentIntent?: string;
    metadata?: Record<string, string>;
  } = {},
  id = nextEventId(),
): Json {
  return {
    id,
    object: 'event',
    type,
    data: {
      object: {
        id: session.id ?? 'cs_test_1',
        object: 'checkout.session',
        mode: 'payment',
        payment_status: session.paymentStatus ?? 'paid',
        amount_total: session.amountTotal ?? 900,
        currency: session.currency ?? 'usd',
        payment_intent: session.paymentIntent ?? 'pi_test_1',
        metadata: session.metadata ?? { burndown_customer_id: 'acme', burndown_credit_pack_id: 'p100' },
      },
    },
  };
}

function refundEvent(amountRefunded: number, id = nextEventId()): Json {
  return {
    id,
    object: 'event',
    type: 'charge.refunded',
    data: {
      object: {
        id: 'ch_test_1',
        object: 'charge',
        amount: 900,
        amount_refunded: amountRefunded,
        currency: 'usd',
        payment_intent: 'pi_test_1',
      },
    },
  };
}

function disputeEvent(
  type: 'charge.dispute.created' | 'charge.dispute.closed',
  status: string,
  amount = 900,
  id = nextEventId(),
): Json {
  return {
    id,
    object: 'event',
    type,
    data: {
      object: {
        id: 'dp_test_1',
        object: 'dispute',
        amount,
        currency: 'usd',
        charge: 'ch_test_1',
        payment_intent: 'pi_test_1',
        status,
      },
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`Stripe payments in (${dialect.name})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      t = await createTestApp({
        storage: await dialect.open(),
        appOptions: { stripe: { webhookSecret: SECRET, workspaceId: 'default' } },
      });
      expect((await t.post('/v1/customers', { id: 'acme' })).statusCode).toBe(201);
      const pack = await t.post('/v1/credit-packs', {
        id: 'p100',
        credits: '100',
        price: { amount: '10.00', currency: 'USD' },
      });
      expect(pack.statusCode, pack.body).toBe(201);
    });

    afterEach(async () => {
      // Every sequence leaves a ledger that reconciles, and facts that match their schemas.
      const report = await t.get('/v1/reconciliation');
      expect(report.json(), report.body).toMatchObject({ ok: true, failures: [] });
      const facts = await t.storage.read.outbox.listAfter('default', 0, 1000);
      for (const fact of facts) {
        const definition = PAYMENT_EVENTS.find((d) => d.type === fact.type);
        if (!definition) continue;
        expect(Value.Check(definition.data, fact.data), `${fact.type}: ${JSON.stringify(fact.data)}`).toBe(
          true,
        );
      }
      await t.close();
    });

    /** Delivers an event signed now (or `ageSeconds` ago, or with the given header). */
    async function deliver(event: Json, options: { ageSeconds?: number; header?: string | null } = {}) {
      const payload = JSON.stringify(event);
      const timestamp = Math.floor(t.clock.now() / 1000) - (options.ageSeconds ?? 0);
      const header =
        options.header === undefined
          ? Stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET, timestamp })
          : options.header;
      return t.app.inject({
        method: 'POST',
        url: WEBHOOK,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          ...(header === null ? {} : { 'stripe-signature': header }),
        },
        payload,
      });
    }

    async function expectReceipt(event: Json, status: string) {
      const res = await deliver(event);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().status, res.body).toBe(status);
      return res.json() as { status: string; reason: string | null };
    }

    async function balance() {
      const res = await t.get('/v1/customers/acme/balance');
      expect(res.statusCode, res.body).toBe(200);
      const b = res.json() as { available: string; held: string; overage: string };
      return { available: b.available, held: b.held, overage: b.overage };
    }

    async function facts(type: string) {
      return (await t.storage.read.outbox.listAfter('default', 0, 1000))
        .filter((f) => f.type === type)
        .map((f) => f.data as Json);
    }

    async function buyThroughCheckout() {
      await expectReceipt(checkoutEvent('checkout.session.completed'), 'processed');
      expect(await balance()).toEqual({ available: '100', held: '0', overage: '0' });
    }

    it('a paid Checkout Session buys the pack: credits appear with the amount paid as cost basis', async () => {
      await buyThroughCheckout();
      const grants = (await t.get('/v1/customers/acme/grants')).json().data as Json[];
      expect(grants).toHaveLength(1);
      expect(grants[0]).toMatchObject({
        category: 'paid',
        amount: '100',
        cost_basis: { amount: '9', currency: 'USD' },
        metadata: { stripe_checkout_session_id: 'cs_test_1', stripe_payment_intent_id: 'pi_test_1' },
      });
      const purchases = (await t.get('/v1/customers/acme/purchases')).json().data as Json[];
      expect(purchases).toMatchObject([{ pack_id: 'p100', quantity: 1, source: 'stripe_checkout' }]);
      const events = (await t.get('/v1/integrations/stripe/events')).json().data as Json[];
      expect(events).toMatchObject([
        { type: 'checkout.session.completed', status: 'processed', object_id: 'cs_test_1' },
      ]);
    });

    it('takes the quantity from the metadata and converts zero-decimal currencies exactly', async () => {
      await expectReceipt(
        checkoutEvent('checkout.session.completed', {
          amountTotal: 2500,
          currency: 'jpy',
          metadata: { burndown_customer_id: 'acme', burndown_credit_pack_id: 'p100', burndown_quantity: '3' },
        }),
        'processed',
      );
      expect((await balance()).available).toBe('300');
      const grants = (await t.get('/v1/customers/acme/grants')).json().data as Json[];
      expect(grants[0]).toMatchObject({ amount: '300', cost_basis: { amount: '2500', currency: 'JPY' } });
    });

    it('an unpaid session waits for the async payment, and the session grants once whatever arrives', async () => {
      expect(
        (
          await expectReceipt(
            checkoutEvent('checkout.session.completed', { paymentStatus: 'unpaid' }),
            'ignored',
          )
        ).reason,
      ).toMatch(/waiting for checkout.session.async_payment_succeeded/);
      expect((await balance()).available).toBe('0');
      const succeeded = checkoutEvent('checkout.session.async_payment_succeeded');
      await expectReceipt(succeeded, 'processed');
      expect((await balance()).available).toBe('100');
      // The same event again (Stripe retries), and the same session under another event id.
      await expectReceipt(succeeded, 'duplicate');
      await expectReceipt(checkoutEvent('checkout.session.completed'), 'ignored');
      await expectReceipt(checkoutEvent('checkout.session.async_payment_succeeded'), 'ignored');
      expect(await balance()).toEqual({ available: '100', held: '0', overage: '0' });
      expect((await t.get('/v1/customers/acme/purchases')).json().data).toHaveLength(1);
    });

    it('the same paid session delivered twice grants once', async () => {
      const event = checkoutEvent('checkout.session.completed');
      await expectReceipt(event, 'processed');
      await expectReceipt(event, 'duplicate');
      expect((await balance()).available).toBe('100');
    });

    it('an unknown customer or pack is answered 200 and recorded as failed with its reason', async () => {
      await expectReceipt(
        checkoutEvent('checkout.session.completed', {
          id: 'cs_x',
          metadata: { burndown_customer_id: 'nobody', burndown_credit_pack_id: 'p100' },
        }),
        'failed',
      );
      t.clock.advance(1000);
      await expectReceipt(
        checkoutEvent('checkout.session.completed', {
          id: 'cs_y',
          metadata: { burndown_customer_id: 'acme', burndown_credit_pack_id: 'nope' },
        }),
        'failed',
      );
      t.clock.advance(1000);
      await expectReceipt(
        checkoutEvent('checkout.session.completed', { id: 'cs_z', metadata: {} }),
        'failed',
      );
      const failed = (await t.get('/v1/integrations/stripe/events?status=failed&limit=2')).json() as {
        data: Json[];
        next_cursor: string | null;
      };
      expect(failed.data).toHaveLength(2);
      expect(failed.data[0]!['reason']).toMatch(/burndown_customer_id is missing/);
      expect(failed.data[1]!['reason']).toMatch(/credit pack "nope"/);
      const rest = (
        await t.get(`/v1/integrations/stripe/events?status=failed&cursor=${failed.next_cursor}`)
      ).json();
      expect(rest.data).toHaveLength(1);
      expect(rest.data[0].reason).toMatch(/customer "nobody"/);
      expect((await balance()).available).toBe('0');
    });

    it('unknown event types are answered 200 and recorded as ignored', async () => {
      const receipt = await expectReceipt(
        { id: nextEventId(), object: 'event', type: 'customer.created', data: { object: { id: 'cus_1' } } },
        'ignored',
      );
      expect(receipt.reason).toMatch(/customer.created is not handled/);
    });

    it('unsigned, wrongly signed and stale payloads are refused with 400 and change nothing', async () => {
      const event = checkoutEvent('checkout.session.completed');
      const unsigned = await deliver(event, { header: null });
      const wrong = await deliver(event, {
        header: Stripe.webhooks.generateTestHeaderString({
          payload: JSON.stringify(event),
          secret: 'whsec_someone_else',
          timestamp: Math.floor(t.clock.now() / 1000),
        }),
      });
      const stale = await deliver(event, { ageSeconds: 301 });
      const garbage = await deliver(event, { header: 't=1,v1=abc' });
      for (const res of [unsigned, wrong, stale, garbage]) {
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json().error.code).toBe('invalid_signature');
      }
      // A body altered after signing fails too.
      const payload = JSON.stringify(event);
      const header = Stripe.webhooks.generateTestHeaderString({
        payload,
        secret: SECRET,
        timestamp: Math.floor(t.clock.now() / 1000),
      });
      const tampered = await t.app.inject({
        method: 'POST',
        url: WEBHOOK,
        headers: { 'content-type': 'application/json', 'stripe-signature': header },
        payload: payload.replace('"amount_total":900', '"amount_total":9'),
      });
      expect(tampered.statusCode).toBe(400);
      expect(await balance()).toEqual({ available: '0', held: '0', overage: '0' });
      expect((await t.get('/v1/integrations/stripe/events')).json().data).toEqual([]);
      // Just inside the tolerance it is accepted.
      expect((await deliver(event, { ageSeconds: 299 })).json().status).toBe('processed');
    });

    it('refunds claw back the refunded share: partial refunds add up exactly, a full refund takes all', async () => {
      await buyThroughCheckout();
      const first = refundEvent(300);
      await expectReceipt(first, 'processed');
      expect((await balance()).available).toBe('66.666666666667');
      await expectReceipt(first, 'duplicate');
      // Another event carrying the same cumulative amount adds nothing.
      await expectReceipt(refundEvent(300), 'ignored');
      await expectReceipt(refundEvent(600), 'processed');
      expect((await balance()).available).toBe('33.333333333334');
      await expectReceipt(refundEvent(900), 'processed');
      expect(await balance()).toEqual({ available: '0', held: '0', overage: '0' });
      const refunded = await facts('payment.refunded');
      expect(refunded.map((f) => f['credits_clawed_back'])).toEqual([
        '33.333333333333',
        '33.333333333333',
        '33.333333333334',
      ]);
      expect(refunded.map((f) => [f['amount_refunded'], f['amount_refunded_total']])).toEqual([
        ['3', '3'],
        ['3', '6'],
        ['3', '9'],
      ]);
      expect(refunded[0]).toMatchObject({ customer_id: 'acme', charge_id: 'ch_test_1', currency: 'USD' });
      const ledger = (await t.get('/v1/customers/acme/ledger')).json().data as Json[];
      const clawbacks = ledger.filter((e) => e['type'] === 'clawback');
      expect(clawbacks).toHaveLength(3);
      expect(clawbacks.every((e) => e['to_account'] === 'clawed_back')).toBe(true);
    });

    it('a full refund after a partial one takes exactly the rest', async () => {
      await buyThroughCheckout();
      await expectReceipt(refundEvent(450), 'processed');
      expect((await balance()).available).toBe('50');
      await expectReceipt(refundEvent(900), 'processed');
      expect((await balance()).available).toBe('0');
    });

    it('a refund after consumption turns what was consumed into overage debt', async () => {
      await buyThroughCheckout();
      expect((await t.post('/v1/customers/acme/debits', { amount: '80' })).statusCode).toBe(201);
      await expectReceipt(refundEvent(900), 'processed');
      expect(await balance()).toEqual({ available: '-80', held: '0', overage: '80' });
      const [fact] = await facts('payment.refunded');
      expect(fact).toMatchObject({ credits_clawed_back: '100', credits_became_overage: '80' });
      // The next credits pay the debt first.
      await t.post('/v1/customers/acme/grants', { amount: '100' });
      expect(await balance()).toEqual({ available: '20', held: '0', overage: '0' });
    });

    it('a dispute holds the credits; won releases them', async () => {
      await buyThroughCheckout();
      await expectReceipt(disputeEvent('charge.dispute.created', 'needs_response'), 'processed');
      expect(await balance()).toEqual({ available: '0', held: '100', overage: '0' });
      // Burns cannot reach held credits.
      expect((await t.post('/v1/customers/acme/debits', { amount: '1' })).statusCode).toBe(402);
      // Only the dispute's outcome ends its hold: the API can neither release nor capture it.
      const holdEntry = (await t.get('/v1/customers/acme/ledger?order=desc'))
        .json()
        .data.find((e: { type: string }) => e.type === 'hold');
      for (const action of ['release', 'capture']) {
        const refused = await t.post(`/v1/holds/${holdEntry.ref}/${action}`, {});
        expect(refused.statusCode, refused.body).toBe(409);
        expect(refused.json().error.code).toBe('hold_managed_by_dispute');
      }
      expect(await balance()).toEqual({ available: '0', held: '100', overage: '0' });
      // Far in the future the dispute hold is still there: no TTL while disputed.
      t.clock.advance(90 * 86_400_000);
      expect((await balance()).held).toBe('100');
      const won = disputeEvent('charge.dispute.closed', 'won');
      await expectReceipt(won, 'processed');
      await expectReceipt(won, 'duplicate');
      expect(await balance()).toEqual({ available: '100', held: '0', overage: '0' });
      expect((await facts('payment.disputed')).map((f) => [f['status'], f['credits_held']])).toEqual([
        ['opened', '100'],
        ['won', '0'],
      ]);
    });

    it('a lost dispute claws the credits back; what was consumed before becomes overage', async () => {
      await buyThroughCheckout();
      expect((await t.post('/v1/customers/acme/debits', { amount: '30' })).statusCode).toBe(201);
      await expectReceipt(disputeEvent('charge.dispute.created', 'needs_response'), 'processed');
      expect(await balance()).toEqual({ available: '0', held: '70', overage: '0' });
      await expectReceipt(disputeEvent('charge.dispute.closed', 'lost'), 'processed');
      expect(await balance()).toEqual({ available: '-30', held: '0', overage: '30' });
      const [, lost] = await facts('payment.disputed');
      expect(lost).toMatchObject({
        status: 'lost',
        credits_clawed_back: '100',
        credits_became_overage: '30',
      });
      // A later refund of the same charge has nothing left to take.
      await expectReceipt(refundEvent(900), 'processed');
      expect((await balance()).available).toBe('-30');
    });

    it('a partial dispute lost claws back its share only', async () => {
      await buyThroughCheckout();
      await expectReceipt(disputeEvent('charge.dispute.created', 'needs_response', 450), 'processed');
      expect(await balance()).toEqual({ available: '50', held: '50', overage: '0' });
      await expectReceipt(disputeEvent('charge.dispute.closed', 'lost', 450), 'processed');
      expect(await balance()).toEqual({ available: '50', held: '0', overage: '0' });
    });

    it('a refund or dispute of a payment Burndown never saw is recorded as failed', async () => {
      const res = await expectReceipt(refundEvent(100), 'failed');
      expect(res.reason).toMatch(/no payment of Burndown has payment intent pi_test_1/);
    });

    describe('auto top-up through the payment provider', () => {
      async function crossThreshold() {
        expect((await t.post('/v1/customers/acme/grants', { amount: '50' })).statusCode).toBe(201);
        const rule = await t.request({
          method: 'PUT',
          url: '/v1/customers/acme/auto-top-up',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ threshold: '20', pack_id: 'p100', provider: 'stripe' }),
        });
        expect(rule.statusCode, rule.body).toBe(200);
        expect(rule.json().provider).toBe('stripe');
        expect((await t.post('/v1/customers/acme/debits', { amount: '40' })).statusCode).toBe(201);
        // Nothing is granted in the burn's transaction: the charge has not happened yet.
        expect((await balance()).available).toBe('10');
      }

      it('a successful charge grants the pack once, with the amount charged as cost basis', async () => {
        await crossThreshold();
        const provider = new PaymentProviderDouble();
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 1, failed: 0, unknown: 0 });
        expect((await balance()).available).toBe('110');
        expect(provider.requests).toHaveLength(1);
        expect(provider.requests[0]).toMatchObject({ customerId: 'acme', currency: 'USD' });
        expect(provider.requests[0]!.amount.toString()).toBe('10');
        // Nothing waits any more: a second run charges nothing.
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 0, failed: 0, unknown: 0 });
        expect(provider.requests).toHaveLength(1);
        const [fact] = await facts('topup.succeeded');
        expect(fact).toMatchObject({ customer_id: 'acme', pack_id: 'p100', credits: '100', amount: '10' });
        const purchases = (await t.get('/v1/customers/acme/purchases')).json().data as Json[];
        expect(purchases).toMatchObject([
          { source: 'auto_top_up', price: { amount: '10', currency: 'USD' } },
        ]);
      });

      it('a declined charge grants nothing and records topup.failed', async () => {
        await crossThreshold();
        const provider = new PaymentProviderDouble().will('decline');
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 0, failed: 1, unknown: 0 });
        expect((await balance()).available).toBe('10');
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 0, failed: 0, unknown: 0 });
        expect((await t.get('/v1/customers/acme/purchases')).json().data).toEqual([]);
        const [fact] = await facts('topup.failed');
        expect(fact).toMatchObject({ customer_id: 'acme', reason: 'card declined: insufficient_funds' });
        expect(await facts('topup.succeeded')).toEqual([]);
      });

      it('an unknown outcome leaves the top-up waiting; the retry uses the same idempotency key', async () => {
        await crossThreshold();
        const provider = new PaymentProviderDouble().will('throw');
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 0, failed: 0, unknown: 1 });
        expect((await balance()).available).toBe('10');
        expect(await chargeWaitingTopUps(t.ctx, provider)).toEqual({ succeeded: 1, failed: 0, unknown: 0 });
        expect(provider.requests.map((r) => r.idempotencyKey)).toEqual([
          provider.requests[0]!.idempotencyKey,
          provider.requests[0]!.idempotencyKey,
        ]);
        expect((await balance()).available).toBe('110');
      });

      it('a refund of a top-up charge claws its credits back', async () => {
        await crossThreshold();
        const provider = new PaymentProviderDouble();
        await chargeWaitingTopUps(t.ctx, provider);
        const key = provider.requests[0]!.idempotencyKey;
        const res = await deliver({
          id: nextEventId(),
          object: 'event',
          type: 'charge.refunded',
          data: {
            object: {
              id: `ch_${key}`,
              amount: 1000,
              amount_refunded: 1000,
              currency: 'usd',
              payment_intent: `pi_${key}`,
            },
          },
        });
        expect(res.json().status, res.body).toBe('processed');
        expect((await balance()).available).toBe('10');
      });
    });
  });
}
