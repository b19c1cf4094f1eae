import { describe, expect, it } from 'vitest';
import { checkWebhookUrlShape, signedContent, webhookBody } from '../../src/domain/webhooks/envelope.js';
import {
  MAX_ATTEMPTS,
  nextDeliveryStep,
  parseRetryAfter,
  RETRY_DELAYS_MS,
  retryDelay,
  shouldDisableEndpoint,
} from '../../src/domain/webhooks/retry.js';

const T = Date.parse('2026-03-01T12:00:00.000Z');
const HOUR = 3_600_000;

describe('webhook retry schedule', () => {
  it('is the Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h, about three days in all', () => {
    expect(RETRY_DELAYS_MS.slice(0, 6)).toEqual([5_000, 300_000, 1_800_000, 2 * HOUR, 5 * HOUR, 10 * HOUR]);
    const total = RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
    expect(total / HOUR).toBeGreaterThan(66);
    expect(total / HOUR).toBeLessThan(80);
    expect(MAX_ATTEMPTS).toBe(12);
  });

  it('jitters each wait within ±10 % and ends after the last attempt', () => {
    expect(retryDelay(1, 0)).toBe(4_500);
    expect(retryDelay(1, 0.5)).toBe(5_000);
    expect(retryDelay(1, 0.999999)).toBeLessThan(5_500);
    expect(retryDelay(MAX_ATTEMPTS - 1, 0.5)).toBe(10 * HOUR);
    expect(retryDelay(MAX_ATTEMPTS, 0.5)).toBeNull();
  });

  it('reads Retry-After as seconds or an HTTP date, and ignores anything else', () => {
    expect(parseRetryAfter('120', T)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', T)).toBe(0);
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:02:00 GMT', T)).toBe(120_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', T)).toBe(0);
    expect(parseRetryAfter('999999999', T)).toBe(24 * HOUR);
    expect(parseRetryAfter('soon', T)).toBeNull();
    expect(parseRetryAfter('-5', T)).toBeNull();
    expect(parseRetryAfter(null, T)).toBeNull();
  });

  it('decides the next step: 2xx delivered, 410 gone, Retry-After honoured only on 429/502/503/504', () => {
    expect(nextDeliveryStep({ statusCode: 204, retryAfter: null }, 1, T, 0.5)).toEqual({ kind: 'delivered' });
    expect(nextDeliveryStep({ statusCode: 410, retryAfter: null }, 1, T, 0.5)).toEqual({ kind: 'gone' });
    expect(nextDeliveryStep({ statusCode: null, retryAfter: null }, 1, T, 0.5)).toEqual({
      kind: 'retry',
      at: T + 5_000,
    });
    for (const status of [429, 502, 503, 504]) {
      expect(nextDeliveryStep({ statusCode: status, retryAfter: '60' }, 1, T, 0.5)).toEqual({
        kind: 'retry',
        at: T + 60_000,
      });
    }
    // The schedule's wait wins when it is longer; other statuses ignore the header.
    expect(nextDeliveryStep({ statusCode: 503, retryAfter: '1' }, 2, T, 0.5)).toEqual({
      kind: 'retry',
      at: T + 300_000,
    });
    expect(nextDeliveryStep({ statusCode: 500, retryAfter: '60' }, 1, T, 0.5)).toEqual({
      kind: 'retry',
      at: T + 5_000,
    });
    expect(nextDeliveryStep({ statusCode: 500, retryAfter: null }, MAX_ATTEMPTS, T, 0.5)).toEqual({
      kind: 'exhausted',
    });
  });

  it('disables an endpoint only after failing for the whole configured span', () => {
    expect(shouldDisableEndpoint(null, T, HOUR)).toBe(false);
    expect(shouldDisableEndpoint(T - HOUR + 1, T, HOUR)).toBe(false);
    expect(shouldDisableEndpoint(T - HOUR, T, HOUR)).toBe(true);
  });
});

describe('webhook envelope', () => {
  it('is {type, timestamp, data} and signs id.timestamp.body', () => {
    const body = webhookBody('grant.created', T, { amount: '1.5' });
    expect(JSON.parse(body)).toEqual({
      type: 'grant.created',
      timestamp: '2026-03-01T12:00:00.000Z',
      data: { amount: '1.5' },
    });
    expect(signedContent('evt_1', 1_772_366_400, body)).toBe(`evt_1.1772366400.${body}`);
  });

  it('accepts absolute http(s) URLs up to 2048 characters', () => {
    expect(checkWebhookUrlShape('https://example.com/x').hostname).toBe('example.com');
    const long = `https://example.com/${'a'.repeat(2048 - 'https://example.com/'.length)}`;
    expect(long).toHaveLength(2048);
    expect(() => checkWebhookUrlShape(long)).not.toThrow();
    expect(() => checkWebhookUrlShape(`${long}a`)).toThrow(
      expect.objectContaining({ code: 'webhook_url_too_long' }),
    );
    expect(() => checkWebhookUrlShape('file:///etc/passwd')).toThrow(
      expect.objectContaining({ code: 'invalid_webhook_url' }),
    );
    expect(() => checkWebhookUrlShape('https://user:pw@example.com/')).toThrow(
      expect.objectContaining({ code: 'invalid_webhook_url' }),
    );
  });
});
