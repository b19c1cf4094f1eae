import createClient, { type Client, type MaybeOptionalInit } from 'openapi-fetch';
import type { HttpMethod, PathsWithMethod, RequiredKeysOf } from 'openapi-typescript-helpers';
import type { components, paths } from './schema.js';

export type { components, paths } from './schema.js';

/** The named schemas of the API (`Schemas['Grant']`, `Schemas['CheckResult']`, …). */
export type Schemas = components['schemas'];
/** An amount of credits: always a decimal string (`"1500"`, `"0.000125"`), never a number. */
export type Amount = components['schemas']['Amount'];

type Operations = { [P in keyof paths]: paths[P][Extract<keyof paths[P], string>] }[keyof paths];
type ResponsesOf<O> = O extends { responses: infer R } ? R[keyof R] : never;
type CodeOf<R> = R extends { content: { 'application/json': infer B } }
  ? B extends { error: { code: infer C } }
    ? C
    : never
  : never;
/** Every error code the API can answer (the union of the document's per-operation enums). */
export type ErrorCode = CodeOf<ResponsesOf<Operations>>;

/** An error answer of the API, with its stable `code` and `details`. */
export class BurndownApiError extends Error {
  override readonly name = 'BurndownApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>>,
    /** The whole body (an event batch refused whole also carries its counts). */
    readonly body: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export interface BurndownClientOptions {
  /** E.g. `http://127.0.0.1:7420` (no `/v1`). */
  readonly baseUrl: string;
  /** An API key: sent as `Authorization: Bearer <key>`. */
  readonly apiKey: string;
  /** Retries of one call after a network error, 409 `request_in_progress`, 429 or 503. Default 3. */
  readonly maxRetries?: number;
  /** Wait before retry `attempt` (1, 2, …) when the server gave no `Retry-After`, in ms. */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Makes the Idempotency-Key of a write that has none. Default `crypto.randomUUID()`. */
  readonly idempotencyKey?: () => string;
  /** The fetch to use (default: the global one). */
  readonly fetch?: (request: Request) => Promise<Response>;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Seconds or an HTTP date, as milliseconds from now; null when absent or unreadable. */
function retryAfterMs(response: Response): number | null {
  const value = response.headers.get('retry-after');
  if (value === null) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/**
 * A fetch that authenticates, gives every write an Idempotency-Key (kept across its retries, so a
 * retry can never apply a write twice) and retries what is safe to retry.
 */
function retryingFetch(options: BurndownClientOptions): (request: Request) => Promise<Response> {
  const base = options.fetch ?? ((request: Request) => fetch(request));
  const maxRetries = options.maxRetries ?? 3;
  const delay = options.retryDelayMs ?? ((attempt: number) => Math.min(2000, 100 * 2 ** (attempt - 1)));
  const newKey = options.idempotencyKey ?? (() => crypto.randomUUID());
  return async (input: Request) => {
    const request = new Request(input);
    request.headers.set('authorization', `Bearer ${options.apiKey}`);
    if (WRITES.has(request.method) && !request.headers.has('idempotency-key')) {
      request.headers.set('idempotency-key', newKey());
    }
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await base(request.clone());
      } catch (error) {
        // The request may or may not have arrived: with its Idempotency-Key, sending it again is safe.
        if (attempt >= maxRetries) throw error;
        await sleep(delay(attempt + 1));
        continue;
      }
      if (attempt >= maxRetries) return response;
      let retry = false;
      if (response.status === 429 || response.status === 503) retry = true;
      else if (response.status === 409) {
        const body = (await response
          .clone()
          .json()
          .catch(() => null)) as { error?: { code?: string } } | null;
        retry = body?.error?.code === 'request_in_progress';
      }
      if (!retry) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(retryAfterMs(response) ?? delay(attempt + 1));
    }
  };
}

/** The init argument of a call, optional when nothing in it is required (as in openapi-fetch). */
type InitParam<Init> =
  RequiredKeysOf<Init> extends never
    ? [(Init & { [key: string]: unknown })?]
    : [Init & { [key: string]: unknown }];
type OpOf<P extends keyof paths, M extends HttpMethod> = M extends keyof paths[P] ? paths[P][M] : never;
/** A typed call of one method: answers the success body, throws {@link BurndownApiError}. */
type Call<M extends HttpMethod> = <
  P extends PathsWithMethod<paths, M>,
  I extends MaybeOptionalInit<paths[P], M>,
>(
  path: P,
  ...init: InitParam<I>
) => Promise<Ok<OpOf<P, M>>>;
type Ok<O> = O extends { responses: infer R }
  ? {
      [S in keyof R]: S extends 200 | 201 | 202
        ? R[S] extends { content: { 'application/json': infer B } }
          ? B
          : R[S] extends { content: { 'text/plain': infer T } }
            ? T
            : undefined
        : S extends 204
          ? undefined
          : never;
    }[keyof R]
  : never;

/** GET operations answering a cursor-paged list `{data, next_cursor}`. */
type ListPaths = {
  [P in PathsWithMethod<paths, 'get'>]: Ok<OpOf<P, 'get'>> extends { data: unknown[]; next_cursor: unknown }
    ? P
    : never;
}[PathsWithMethod<paths, 'get'>];
type ItemOf<P extends keyof paths> = Ok<OpOf<P, 'get'>> extends { data: (infer I)[] } ? I : never;

async function unwrap<T>(call: Promise<{ data?: unknown; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    const body = error as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    throw new BurndownApiError(
      response.status,
      (body?.error?.code ?? 'internal_error') as ErrorCode,
      body?.error?.message ?? response.statusText,
      body?.error?.details ?? {},
      error,
    );
  }
  return data as T;
}

/** The client: typed calls by path (`GET`, `POST`, …) that answer the body or throw, and `list`. */
export interface BurndownClient {
  GET: Call<'get'>;
  POST: Call<'post'>;
  PUT: Call<'put'>;
  PATCH: Call<'patch'>;
  DELETE: Call<'delete'>;
  /** Every item of a cursor-paged list, page after page (`limit` sets the page size). */
  list<P extends ListPaths, I extends MaybeOptionalInit<paths[P], 'get'>>(
    path: P,
    ...init: InitParam<I>
  ): AsyncIterableIterator<ItemOf<P>>;
  /** The openapi-fetch client underneath (answers `{data, error, response}` instead of throwing). */
  readonly raw: Client<paths>;
}

/** A client for one server and key. */
export function createBurndownClient(options: BurndownClientOptions): BurndownClient {
  const raw = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ''),
    fetch: retryingFetch(options),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the typed surface is the interface above.
  const r = raw as any;
  return {
    raw,
    GET: (path: string, ...init: unknown[]) => unwrap(r.GET(path, ...init)),
    POST: (path: string, ...init: unknown[]) => unwrap(r.POST(path, ...init)),
    PUT: (path: string, ...init: unknown[]) => unwrap(r.PUT(path, ...init)),
    PATCH: (path: string, ...init: unknown[]) => unwrap(r.PATCH(path, ...init)),
    DELETE: (path: string, ...init: unknown[]) => unwrap(r.DELETE(path, ...init)),
    async *list(path: string, ...init: unknown[]) {
      const first = (init[0] ?? {}) as { params?: { query?: Record<string, unknown> } };
      let cursor: string | null | undefined;
      do {
        const query = { ...(first.params?.query ?? {}), ...(cursor ? { cursor } : {}) };
        const page = await unwrap<{ data: unknown[]; next_cursor: string | null }>(
          r.GET(path, { ...first, params: { ...(first.params ?? {}), query } }),
        );
        for (const item of page.data) yield item as never;
        cursor = page.next_cursor;
      } while (cursor);
    },
  } as unknown as BurndownClient;
}
