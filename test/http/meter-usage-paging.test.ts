import { afterEach, describe, expect, it } from 'vitest';
import type { MeterRecord, Storage, StoredEvent } from '../../src/ports/storage.js';
import { meterUsage, USAGE_PAGE } from '../../src/services/metering.js';
import { DIALECTS } from '../fixtures/dialects.js';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/*
 * GET /v1/meters/{id}/usage is paged and bounded (hardening issue, item 10): `limit` rows per page
 * (1–1000, default 100), `next_cursor` to resume, pages that together are exactly the whole
 * answer (a window's groups may straddle pages), and reading that gives other work the event loop.
 */
interface Row {
  window_start: string;
  window_end: string;
  value: string;
  group: Record<string, string | null>;
}

for (const dialect of DIALECTS) {
  describe(`meter usage paging (${dialect.name})`, () => {
    let t: TestApp;
    afterEach(async () => {
      await t.close();
    });

    async function seed(): Promise<void> {
      t = await createTestApp({ storage: await dialect.open() });
      await t.post('/v1/customers', { id: 'acme' });
      const meter = await t.post('/v1/meters', {
        id: 'tokens',
        event_type: 'llm.tokens',
        aggregation: 'sum',
        value_property: '$.tokens',
        group_by: { model: '$.model', region: '$.region' },
      });
      expect(meter.statusCode, meter.body).toBe(201);
      // 10 hourly windows × 5 models, two events each (two regions): 50 rows by model, 100 by both.
      const events = [];
      const start = Date.parse('2025-12-31T00:00:00Z');
      for (let h = 0; h < 10; h++) {
        for (let m = 0; m < 5; m++) {
          for (let r = 0; r < 2; r++) {
            events.push({
              id: `e-${h}-${m}-${r}`,
              type: 'llm.tokens',
              customer_id: 'acme',
              time: new Date(start + h * 3_600_000 + m * 60_000 + r).toISOString(),
              data: { model: `m${m}`, region: `r${r}`, tokens: h * 100 + m * 10 + r + 1 },
            });
          }
        }
      }
      const sent = await t.post('/v1/events', events);
      expect(sent.statusCode, sent.body).toBe(202);
    }

    async function allPages(query: string, limit: number): Promise<{ rows: Row[]; pages: number }> {
      const rows: Row[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url = `/v1/meters/tokens/usage?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await t.get(url);
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { data: Row[]; next_cursor: string | null };
        expect(body.data.length).toBeLessThanOrEqual(limit);
        rows.push(...body.data);
        cursor = body.next_cursor;
        pages += 1;
        expect(pages).toBeLessThan(200);
      } while (cursor !== null);
      return { rows, pages };
    }

    it('pages of any size add up to the whole answer, in window then group order', async () => {
      await seed();
      const whole = (await t.get('/v1/meters/tokens/usage?window=hour&group_by=model&limit=1000')).json();
      expect(whole.next_cursor).toBeNull();
      expect(whole.data).toHaveLength(50);
      expect(whole.data[0]).toEqual({
        window_start: '2025-12-31T00:00:00.000Z',
        window_end: '2025-12-31T01:00:00.000Z',
        value: '3',
        group: { model: 'm0' },
      });
      for (const limit of [1, 3, 5, 7, 49, 50]) {
        const paged = await allPages('window=hour&group_by=model', limit);
        expect(paged.rows, `limit ${limit}`).toEqual(whole.data);
        expect(paged.pages).toBe(Math.ceil(50 / limit));
      }
      // The default page is 100 rows: two pages for the 100 rows by model and region.
      const first = (
        await t.get('/v1/meters/tokens/usage?window=hour&group_by=model,region&limit=100')
      ).json();
      expect([first.data.length, first.next_cursor]).toEqual([100, null]);
      const byDefault = (await t.get('/v1/meters/tokens/usage?window=hour&group_by=model,region')).json();
      expect(byDefault.data).toHaveLength(USAGE_PAGE.defaultLimit);
      // A cursor resumes within a time range too.
      const ranged = await allPages('window=hour&from=2025-12-31T03:02:00Z&to=2025-12-31T06:00:00Z', 2);
      expect(ranged.rows.map((r) => [r.window_start, r.value])).toEqual([
        ['2025-12-31T03:00:00.000Z', '1989'],
        ['2025-12-31T04:00:00.000Z', '4215'],
        ['2025-12-31T05:00:00.000Z', '5215'],
      ]);
    });

    it('refuses a bad limit or cursor', async () => {
      await seed();
      for (const query of ['limit=0', 'limit=1001', 'limit=x', 'cursor=nonsense', 'cursor=bm9wZQ']) {
        const res = await t.get(`/v1/meters/tokens/usage?${query}`);
        expect([res.statusCode, res.json().error.code], query).toEqual([400, 'invalid_request']);
      }
    });
  });
}

describe('meter usage reading', () => {
  const meter: MeterRecord = {
    workspaceId: 'ws',
    id: 'calls',
    eventType: 'call',
    aggregation: 'count',
    valueProperty: null,
    groupBy: {},
    createdAt: 0,
  } as unknown as MeterRecord;
  /** A storage whose event scan answers at once (as SQLite does): only explicit yields let others run. */
  function storageOf(count: number, perWindow: number): Storage {
    return {
      read: {
        getMeter: () => meter,
        async *scanEvents() {
          for (let i = 0; i < count; i++) {
            yield { time: Math.floor(i / perWindow) * 3_600_000, data: {} } as unknown as StoredEvent;
          }
        },
      },
    } as unknown as Storage;
  }
  const read = (storage: Storage, limit: number) =>
    meterUsage({ storage, clock: { now: () => 0 }, ids: null } as never, {
      workspaceId: 'ws',
      meterId: 'calls',
      customerId: null,
      from: null,
      to: null,
      window: 'hour',
      groupBy: [],
      timeZone: 'UTC',
      limit,
    });

  it('lets other work run while it reads', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 0);
    try {
      const page = await read(storageOf(20_000, 100), 1000);
      expect(page.rows).toHaveLength(200);
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });

  it('stops a page at the first window boundary after the scan bound', async () => {
    const page = await read(storageOf(USAGE_PAGE.maxScannedEvents * 2, 1000), 1000);
    expect(page.rows.length).toBe(USAGE_PAGE.maxScannedEvents / 1000);
    expect(page.next).toEqual({ windowStart: (USAGE_PAGE.maxScannedEvents / 1000) * 3_600_000, offset: 0 });
  });
});
