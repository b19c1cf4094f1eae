/**
 * How webhooks leave the process: where a URL may point, and sending one signed delivery. The real
 * transport (src/infra/webhook-transport.ts) resolves the host, refuses private addresses unless
 * allowed, signs per Standard Webhooks and sends over HTTP with a timeout; tests may use it against
 * a local receiver (with private addresses allowed) or substitute their own.
 */
export interface WebhookTransport {
  /**
   * Refuses (throws a 400 `webhook_url_not_allowed`) a URL whose host is, or resolves to, a
   * private, loopback, link-local or unique-local address, unless the transport allows them.
   * The URL's shape has been checked before.
   */
  checkDestination(url: string): Promise<void>;
  /** Sends one attempt; never throws for what the receiver did (no answer is a result too). */
  send(request: WebhookRequest): Promise<WebhookResponse>;
}

/** One attempt to send: the event's stable id, the attempt's timestamp, the body and the secrets that sign it. */
export interface WebhookRequest {
  readonly url: string;
  /** The `webhook-id` header: the outbox event id, the same for every attempt and replay. */
  readonly id: string;
  /** The `webhook-timestamp` header, in seconds since the epoch. */
  readonly timestampSeconds: number;
  readonly body: string;
  /** Secrets (`whsec_…`) each of which signs; two during a rotation's overlap. */
  readonly secrets: readonly string[];
}

/** What the receiver did. */
export interface WebhookResponse {
  /** The HTTP status, or null when no answer came (refused, reset, timed out, forbidden address). */
  readonly statusCode: number | null;
  readonly retryAfter: string | null;
  /** The answer's first 1 kB (UTF-8, cut at a character boundary). */
  readonly excerpt: string | null;
  /** Why no answer came. */
  readonly error: string | null;
  readonly latencyMs: number;
}
