import { createHmac } from 'node:crypto';
import { signedContent } from '../domain/webhooks/envelope.js';

/** Prefix of Standard Webhooks secrets; the rest is the base64 of the key bytes. */
export const SECRET_PREFIX = 'whsec_';

/** `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` under one secret (its base64-decoded key). */
export function signatureOf(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(
    secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
    'base64',
  );
  const mac = createHmac('sha256', key)
    .update(signedContent(id, timestampSeconds, body))
    .digest('base64');
  return `v1,${mac}`;
}

/**
 * The `webhook-signature` header: one `v1,<sig>` per secret, space-separated (during a rotation's
 * overlap a receiver holding either secret verifies).
 */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => signatureOf(s, id, timestampSeconds, body)).join(' ');
}
