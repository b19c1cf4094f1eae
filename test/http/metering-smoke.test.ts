import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Amount } from '../../src/domain/amount/amount.js';
import { reconcileLedger } from '../../src/services/reconcile.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, T0, type TestApp } from '../fixtures/harness.js';

for (const dialect of DIALECTS) {
  describe(`metering and rating over HTTP (${dialect.name})`, () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await createTestApp({ storage: await dialect.open() });
      await t.post('/v1/customers', { id: 'acme' });
      await t.post('/v1/customers/acme/grants', { amount: '100' });
      expect(
        (
          await t.post('/v1/meters', {
            id: 'tokens',
            event_type: 'llm.tokens',
            aggregation: 'sum',
            value_property: '$.tokens',
            group_by: { model: '$.model', kind: '$.kind' },
          })
        ).statusCode,
      ).toBe(201);
      const rate = await t.post('/v1/rates', {
        id: 'gpt-x-output',
        meter_id: 'tokens',
        filter: { model: 'gpt-x', kind: 'output' },
        credits_per_unit: '0.002',
      });
      expect(rate.statusCode, rate.body).toBe(201);
    });
    afterEach(async () => {
      expect((await reconcileLedger(t.storage)).failures).toEqual([]);
      await t.close();
    });

    const event = (id: string, tokens: number, extra: Record<string, unknown> = {}) => ({
      id,
      type: 'llm.tokens',
      customer_id: 'acme',
      time: new Date(T0).toISOString(),
      data: { model: 'gpt-x', kind: 'output', tokens, ...extra },
    });

    it('stores, dedups and burns matching events exactly once', async () => {
      const res = await t.post('/v1/events', [
        event('e1', 1200),
        event('e2', 300, { kind: 'input' }),
        { ...event('e3', 5), customer_id: 'nobody' },
        { id: 'e4', type: 'llm.tokens' },
        event('e1', 1200),
      ]);
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json()).toEqual({
        accepted: 2,
        duplicates: 1,
        unmetered: 0,
        rejected: [
          { index: 2, error: { code: 'customer_not_found', message: expect.any(String) } },
          { index: 3, error: { code: 'invalid_event', message: expect.any(String) } },
        ],
      });
      expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('97.6');
      const replay = await t.post('/v1/events', [event('e1', 1200), event('e2', 300, { kind: 'input' })]);
      expect(replay.json()).toMatchObject({ accepted: 0, duplicates: 2 });
      expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('97.6');
      const usage = await t.get('/v1/meters/tokens/usage?customer_id=acme&window=day&group_by=kind');
      expect(usage.json().data).toEqual([
        {
          window_start: '2026-01-01T00:00:00.000Z',
          window_end: '2026-01-02T00:00:00.000Z',
          value: '300',
          group: { kind: 'input' },
        },
        {
          window_start: '2026-01-01T00:00:00.000Z',
          window_end: '2026-01-02T00:00:00.000Z',
          value: '1200',
          group: { kind: 'output' },
        },
      ]);
    });

    it('quotes without writing, and burns past the balance as overage', async () => {
      const quote = await t.post('/v1/quote', {
        customer_id: 'acme',
        events: [{ type: 'llm.tokens', data: { model: 'gpt-x', kind: 'output', tokens: 60000 } }],
      });
      expect(quote.json()).toEqual({
        credits: '120',
        credit_type: 'credits',
        lines: [{ rate_id: 'gpt-x-output', quantity: '60000', credits: '120' }],
        available: '100',
        allowed: false,
      });
      await t.post('/v1/events', event('big', 60000));
      expect((await t.get('/v1/customers/acme/balance')).json()).toMatchObject({
        available: '-20',
        overage: '20',
      });
    });

    it('accepts CloudEvents in structured, batched and binary modes', async () => {
      const ce = (id: string) => ({
        specversion: '1.0',
        id,
        source: 'svc',
        type: 'llm.tokens',
        subject: 'acme',
        data: { model: 'gpt-x', kind: 'output', tokens: 500 },
      });
      const structured = await t.post('/v1/events', ce('c1'), {
        'content-type': 'application/cloudevents+json',
      });
      expect(structured.json()).toMatchObject({ accepted: 1 });
      const batch = await t.post('/v1/events', [ce('c1'), ce('c2')], {
        'content-type': 'application/cloudevents-batch+json',
      });
      expect(batch.json()).toMatchObject({ accepted: 1, duplicates: 1 });
      const binary = await t.post(
        '/v1/events',
        { model: 'gpt-x', kind: 'output', tokens: 500 },
        {
          'ce-specversion': '1.0',
          'ce-id': 'c3',
          'ce-source': 'svc',
          'ce-type': 'llm.tokens',
          'ce-subject': 'acme',
        },
      );
      expect(binary.json()).toMatchObject({ accepted: 1 });
      expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('97');
    });

    it('backfills a rate created later, once', async () => {
      await t.post('/v1/events', [event('b1', 100, { kind: 'input' }), event('b2', 200, { kind: 'input' })]);
      expect(
        (
          await t.post('/v1/rates', {
            id: 'in',
            meter_id: 'tokens',
            filter: { kind: 'input' },
            package: { size: '150', credits: '1' },
          })
        ).statusCode,
      ).toBe(201);
      expect((await t.post('/v1/backfills', { rate_id: 'in' })).json()).toMatchObject({
        scanned: 2,
        burned: 2,
        already_burned: 0,
      });
      expect((await t.post('/v1/backfills', { rate_id: 'in' })).json()).toMatchObject({
        scanned: 2,
        burned: 0,
        already_burned: 2,
      });
      expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('97');
    });

    it('ingests a full batch of rated events for one customer (more rows than one statement may bind)', async () => {
      const batch = Array.from({ length: 3000 }, (_, i) => event(`big-${i}`, 10));
      const res = await t.post('/v1/events', batch);
      expect(res.json()).toMatchObject({ accepted: 3000, duplicates: 0, rejected: [] });
      expect((await t.get('/v1/customers/acme/balance')).json().available).toBe('40');
    });

    it('honours Idempotency-Key on event batches: replay, and 422 for another body', async () => {
      const key = { 'idempotency-key': 'ingest-1' };
      const first = await t.post('/v1/events', [event('k1', 100)], key);
      const again = await t.post('/v1/events', [event('k1', 100)], key);
      expect([again.statusCode, again.body, again.headers['idempotent-replayed']]).toEqual([
        202,
        first.body,
        'true',
      ]);
      expect((await t.post('/v1/events', [event('k2', 100)], key)).json().error.code).toBe(
        'idempotency_key_reused',
      );
    });

    it('reconciles non-ASCII event ids, and names burns of events that do not exist', async () => {
      await t.post('/v1/events', [event('a\uE000', 10), event('a😀', 10), event('z', 10)]);
      expect((await reconcileLedger(t.storage)).ok).toBe(true);
      await t.storage.write('orphan', async (tx) => {
        await tx.insertBurn({
          workspaceId: 'default',
          eventKey: 'id:zzz-no-such-event',
          rateId: 'gpt-x-output',
          customerId: 'acme',
          debitId: null,
          quantity: Amount.ZERO,
          credits: Amount.ZERO,
          createdAt: T0,
        });
      });
      const report = await reconcileLedger(t.storage);
      expect(report.failures.map((f) => f.check)).toEqual(['event_burn']);
      const orphanEvent = {
        workspaceId: 'default',
        eventKey: 'id:zzz-no-such-event',
        id: 'zzz-no-such-event',
        source: null,
        customerId: 'acme',
        time: T0,
        rulesSeq: 1_000,
        unmetered: false,
        receivedAt: T0,
      };
      await t.storage.write('orphan', async (tx) => {
        await tx.insertEvent({
          ...orphanEvent,
          eventKey: 'id:zzz-other',
          id: 'zzz-other',
          type: 'other.type',
          data: {},
        });
      });
      // Another event does not make the burn's event exist.
      expect((await reconcileLedger(t.storage)).failures.map((f) => f.check)).toEqual(['event_burn']);
      await t.storage.write('orphan', async (tx) => {
        // The burn's event appears, matching the rate: the books are right again.
        await tx.insertEvent({
          ...orphanEvent,
          type: 'llm.tokens',
          data: { model: 'gpt-x', kind: 'output', tokens: 0 },
        });
      });
      expect((await reconcileLedger(t.storage)).ok).toBe(true);
    });
  });
}
