import { BurndownError, ErrorCode } from '../errors.js';
import { formatInstant, type Instant } from '../time/instant.js';

/**
 * The body of a webhook delivery (Standard Webhooks' recommended shape): the event type, when it
 * happened (RFC 3339, the write's instant), and the event's data. The same bytes every attempt,
 * so a signature over them is stable apart from the timestamp.
 */
export function webhookBody(type: string, occurredAt: Instant, data: unknown): string {
  return JSON.stringify({ type, timestamp: formatInstant(occurredAt), data });
}

/**
 * What Standard Webhooks signs: `<webhook-id>.<webhook-timestamp>.<body>`, the timestamp in
 * whole seconds. The HMAC itself is computed outside the domain (src/infra/webhook-signature.ts).
 */
export function signedContent(id: string, timestampSeconds: number, body: string): string {
  return `${id}.${timestampSeconds}.${body}`;
}

/** Whether an endpoint subscribed to `eventTypes` (null: every type) wants an event of `type`. */
export function endpointWants(eventTypes: readonly string[] | null, type: string): boolean {
  return eventTypes === null || eventTypes.includes(type);
}

/** Longest endpoint URL accepted (browsers' and proxies' common bound). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Checks the shape of an endpoint URL: absolute http(s), no credentials, at most
 * {@link MAX_WEBHOOK_URL_LENGTH} characters. Returns the parsed URL; throws 400 with a stable code.
 * (Where the host points is checked separately, with DNS, at creation and at every delivery.)
 */
export function checkWebhookUrlShape(text: string): URL {
  if (text.length > MAX_WEBHOOK_URL_LENGTH) {
    throw new BurndownError(
      ErrorCode.webhookUrlTooLong,
      `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`,
      { field: 'url', max_length: MAX_WEBHOOK_URL_LENGTH },
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BurndownError(ErrorCode.invalidWebhookUrl, 'url must be an absolute http or https URL', {
      field: 'url',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BurndownError(ErrorCode.invalidWebhookUrl, 'url must use http or https', {
      field: 'url',
      scheme: url.protocol.replace(/:$/, ''),
    });
  }
  if (url.username !== '' || url.password !== '' || url.hostname === '') {
    throw new BurndownError(ErrorCode.invalidWebhookUrl, 'url must name a host and carry no credentials', {
      field: 'url',
    });
  }
  return url;
}
