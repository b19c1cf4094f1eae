import { BurndownApiError, type BurndownClient, createBurndownClient, type Schemas } from '@burndown/client';

export type { Schemas };
export { BurndownApiError };

/**
 * The operator's API key lives in sessionStorage only: gone when the tab closes, never in a URL,
 * never in localStorage or a cookie.
 */
const KEY_SLOT = 'burndown.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_SLOT);
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY_SLOT, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_SLOT);
}

let cached: { key: string; client: BurndownClient } | null = null;

/** The typed client for the stored key (generated from the server's OpenAPI document). */
export function api(): BurndownClient {
  const key = storedKey();
  if (key === null) throw new Error('not signed in');
  if (cached?.key !== key) {
    cached = {
      key,
      client: createBurndownClient({
        baseUrl: window.location.origin,
        apiKey: key,
        maxRetries: 1,
        idempotencyKey: newIdempotencyKey,
      }),
    };
  }
  return cached.client;
}

/** A random Idempotency-Key; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A message for an error an API call threw. */
export function errorText(error: unknown): string {
  if (error instanceof BurndownApiError)
    return `${error.code}: ${error.message.replace(/^\d+ [a-z_]+: /, '')}`;
  return error instanceof Error ? error.message : String(error);
}
