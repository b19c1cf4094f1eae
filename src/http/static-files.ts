import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Serves the built web app (the operator dashboard and the customer portal, `web/`, built by
 * `npm run build` into `dist/web`) from the API server, without a static-file plugin:
 *
 * - only GET and HEAD, only paths outside the API (`/v1/…`) and the operator endpoints;
 * - no path traversal: the decoded path is normalised and must stay inside the root, and no
 *   segment may start with a dot (no dotfiles, no `..`);
 * - content types from a closed list (anything else is not served);
 * - hashed assets (`/assets/…`, named by content) are cached for a year, immutable; `index.html`
 *   is revalidated on every load so a new build is picked up;
 * - a path without an extension is a client route (`/customers/acme`, `/portal`): it gets
 *   `index.html`;
 * - a strict Content-Security-Policy: scripts, styles, images and connections from this origin
 *   only; no framing of the dashboard; the portal may be framed by the origins configured in
 *   `BURNDOWN_PORTAL_FRAME_ANCESTORS`.
 */

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/** The CSP of every page; `frameAncestors` differs between the dashboard and the portal. */
export function contentSecurityPolicy(frameAncestors: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors.length === 0 ? "'none'" : frameAncestors.join(' ')}`,
  ].join('; ');
}

export interface StaticFilesOptions {
  /** The directory holding `index.html` and `assets/`. */
  readonly root: string;
  /** Origins allowed to frame `/portal` (CSP frame-ancestors); empty: none. */
  readonly portalFrameAncestors: readonly string[];
}

/** What {@link StaticFiles.serve} did: answered, or left the request to the 404 handler. */
export type Served = 'served' | 'not_mine';

/** The static handler; one per app. */
export class StaticFiles {
  private readonly root: string;

  constructor(private readonly options: StaticFilesOptions) {
    this.root = resolve(options.root);
  }

  /** Whether a request is one this handler may answer (GET/HEAD outside the API paths). */
  static claims(method: string, path: string): boolean {
    if (method !== 'GET' && method !== 'HEAD') return false;
    return !(path === '/v1' || path.startsWith('/v1/') || path === '/metrics' || path === '/healthz');
  }

  /** Answers a file, `index.html` for a client route, or `not_mine` (a missing asset, a bad path). */
  async serve(request: FastifyRequest, reply: FastifyReply): Promise<Served> {
    const rawPath = (request.url.split('?')[0] ?? '/').split('#')[0] ?? '/';
    if (!StaticFiles.claims(request.method, rawPath)) return 'not_mine';
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return 'not_mine';
    }
    if (path.includes('\0') || path.includes('\\')) return 'not_mine';
    const segments = path.split('/').filter((s) => s !== '');
    if (segments.some((s) => s.startsWith('.'))) return 'not_mine';
    const isPortal = segments[0] === 'portal';
    const extension = extname(segments.at(-1) ?? '');
    let file: string;
    if (segments.length === 0 || extension === '') {
      file = join(this.root, 'index.html');
    } else {
      file = resolve(this.root, ...segments);
      if (!file.startsWith(this.root + sep)) return 'not_mine';
    }
    const type = CONTENT_TYPES[extname(file)];
    if (type === undefined) return 'not_mine';
    let body: Buffer;
    try {
      if (!(await stat(file)).isFile()) return 'not_mine';
      body = await readFile(file);
    } catch {
      return 'not_mine';
    }
    const hashed = segments[0] === 'assets';
    reply
      .code(200)
      .header('content-type', type)
      .header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header(
        'content-security-policy',
        contentSecurityPolicy(isPortal ? this.options.portalFrameAncestors : []),
      );
    if (!isPortal) reply.header('x-frame-options', 'DENY');
    await reply.send(body);
    return 'served';
  }
}
