import type { paths } from '@burndown/client';

/**
 * The portal's calls: same-origin fetches that carry the httpOnly session cookie (no API key in the
 * page). Answers are typed with the generated OpenAPI types.
 */
type Json<P extends keyof paths, M extends 'get' | 'post', S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { 'application/json': infer B } } };
}
  ? B
  : never;

export type PortalSession = Json<'/v1/portal/me', 'get', 200>;
export type PortalBalance = Json<'/v1/portal/balance', 'get', 200>;
export type PortalForecast = Json<'/v1/portal/forecast', 'get', 200>;
export type PortalGrants = Json<'/v1/portal/grants', 'get', 200>;
export type PortalLedger = Json<'/v1/portal/ledger', 'get', 200>;
export type PortalPrices = Json<'/v1/portal/prices', 'get', 200>;
export type PortalPurchase = Json<'/v1/portal/purchases', 'post', 201>;

/** An error answer of the portal API. */
export class PortalError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new PortalError(response.status, error?.code ?? 'error', error?.message ?? response.statusText);
  }
  return parsed as T;
}

export const portalApi = {
  exchange: (code: string) => call<PortalSession>('POST', '/v1/portal/session', { code }),
  refresh: () => call<PortalSession>('POST', '/v1/portal/session/refresh'),
  end: () => call<unknown>('POST', '/v1/portal/session/end'),
  me: () => call<PortalSession>('GET', '/v1/portal/me'),
  balance: () => call<PortalBalance>('GET', '/v1/portal/balance'),
  forecast: () => call<PortalForecast>('GET', '/v1/portal/forecast'),
  grants: () => call<PortalGrants>('GET', '/v1/portal/grants'),
  ledger: (cursor: string | null) =>
    call<PortalLedger>(
      'GET',
      `/v1/portal/ledger?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    ),
  prices: () => call<PortalPrices>('GET', '/v1/portal/prices'),
  buy: (packId: string, quantity: number, idempotencyKey: string) =>
    call<PortalPurchase>(
      'POST',
      '/v1/portal/purchases',
      { pack_id: packId, quantity },
      { 'idempotency-key': idempotencyKey },
    ),
};
