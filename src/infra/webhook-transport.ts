import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { BurndownError, ErrorCode } from '../domain/errors.js';
import type { WebhookRequest, WebhookResponse, WebhookTransport } from '../ports/webhooks.js';
import { isForbiddenAddress } from './address-guard.js';
import { signatureHeader } from './webhook-signature.js';

/** Longest a receiver may take to answer an attempt (Standard Webhooks' common bound). */
export const WEBHOOK_TIMEOUT_MS = 15_000;
/** How much of an answer's body the delivery log keeps. */
export const RESPONSE_EXCERPT_BYTES = 1024;
/** How much of an answer is read at most before the connection is dropped. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** Options of the HTTP transport. */
export interface HttpWebhookTransportOptions {
  /** Allow private, loopback and link-local destinations (`BURNDOWN_WEBHOOKS_ALLOW_PRIVATE=1`; tests). */
  readonly allowPrivate: boolean;
  /** Per-attempt timeout in ms; default {@link WEBHOOK_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

function notAllowed(host: string, address: string): BurndownError {
  return new BurndownError(
    ErrorCode.webhookUrlNotAllowed,
    `url host ${host} resolves to ${address}, a private, loopback or link-local address`,
    { field: 'url', host, address },
  );
}

/** Every address a host name resolves to (all families). */
function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });
}

/**
 * Sends webhooks over HTTP(S) with Standard Webhooks headers. The server-side request forgery
 * guard runs at delivery time too, inside the connection's own DNS lookup: the address checked is
 * the address connected to, so a name that re-resolves to a private address between the check and
 * the connection (DNS rebinding) is still refused.
 */
export class HttpWebhookTransport implements WebhookTransport {
  private readonly timeoutMs: number;

  constructor(private readonly options: HttpWebhookTransportOptions) {
    this.timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  }

  async checkDestination(url: string): Promise<void> {
    if (this.options.allowPrivate) return;
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      if (isForbiddenAddress(host)) throw notAllowed(host, host);
      return;
    }
    let addresses: LookupAddress[];
    try {
      addresses = await resolveAll(host);
    } catch {
      throw new BurndownError(ErrorCode.invalidWebhookUrl, `url host ${host} does not resolve`, {
        field: 'url',
        host,
      });
    }
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) throw notAllowed(host, bad.address);
  }

  /** The connection's lookup: resolves, and refuses the host if any address it has is forbidden. */
  private readonly guardedLookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const bad = addresses.find((a) => isForbiddenAddress(a.address));
      if (bad) return callback(notAllowed(hostname, bad.address), '', 0);
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
      return callback(null, first.address, first.family);
    });
  };

  send(req: WebhookRequest): Promise<WebhookResponse> {
    const started = performance.now();
    const elapsed = () => Math.max(0, Math.floor(performance.now() - started));
    const failed = (error: string): WebhookResponse => ({
      statusCode: null,
      retryAfter: null,
      excerpt: null,
      error,
      latencyMs: elapsed(),
    });
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return Promise.resolve(failed('invalid url'));
    }
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (!this.options.allowPrivate && isIP(literal) !== 0 && isForbiddenAddress(literal)) {
      return Promise.resolve(failed(`address ${literal} is not allowed`));
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (response: WebhookResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(response);
      };
      const request = send(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Burndown-Webhooks/1',
            'webhook-id': req.id,
            'webhook-timestamp': String(req.timestampSeconds),
            'webhook-signature': signatureHeader(req.secrets, req.id, req.timestampSeconds, req.body),
            'content-length': Buffer.byteLength(req.body),
          },
          ...(this.options.allowPrivate ? {} : { lookup: this.guardedLookup }),
        },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const done = () => {
            const text = Buffer.concat(chunks)
              .subarray(0, RESPONSE_EXCERPT_BYTES)
              .toString('utf8')
              .replace(/\uFFFD+$/, '');
            const retryAfter = response.headers['retry-after'];
            finish({
              statusCode: response.statusCode ?? null,
              retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
              excerpt: text === '' ? null : text,
              error: null,
              latencyMs: elapsed(),
            });
          };
          response.on('data', (chunk: Buffer) => {
            if (size < RESPONSE_EXCERPT_BYTES) chunks.push(chunk);
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              done();
              response.destroy();
            }
          });
          response.on('end', done);
          response.on('error', done);
          response.on('close', done);
        },
      );
      const timer = setTimeout(() => {
        finish(failed(`no answer within ${this.timeoutMs} ms`));
        request.destroy();
      }, this.timeoutMs);
      request.on('error', (error: Error) => finish(failed(error.message)));
      request.end(req.body);
    });
  }
}
