import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../fixtures/harness.js';

/** The web app's static handler (src/http/static-files.ts) over a made-up build directory. */
describe('static web app', () => {
  let root: string;
  let outside: string;
  let t: TestApp;
  beforeAll(() => {
    outside = mkdtempSync(join(tmpdir(), 'burndown-web-'));
    root = join(outside, 'web');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(root, 'assets', 'index-abc123.css'), 'body{}');
    writeFileSync(join(root, '.secret'), 'no');
    writeFileSync(join(outside, 'secret.txt'), 'outside the root');
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));
  beforeEach(async () => {
    t = await createTestApp({
      app: { web: { root, portalFrameAncestors: ['https://app.example.com'] } },
    });
  });
  afterEach(async () => {
    await t.close();
  });
  const get = (url: string) => t.app.inject({ method: 'GET', url });

  it('serves index.html at / and for client routes, revalidated, with a strict CSP and no framing', async () => {
    for (const url of ['/', '/customers', '/customers/acme', '/at-risk?x=1']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<title>app</title>');
      expect(res.headers['cache-control']).toBe('no-cache');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('the portal may be framed by the configured origins only', async () => {
    const res = await get('/portal?code=abc');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toContain('frame-ancestors https://app.example.com');
    expect(res.headers['x-frame-options']).toBeUndefined();
  });

  it('hashed assets: their content type, cached for a year', async () => {
    const js = await get('/assets/index-abc123.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await get('/assets/index-abc123.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await t.app.inject({ method: 'HEAD', url: '/assets/index-abc123.js' })).statusCode).toBe(200);
  });

  it('no traversal, no dotfiles, no unknown types, no missing assets: a JSON 404', async () => {
    for (const url of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/.secret',
      '/assets/missing.js',
      '/assets/x.php',
      '/%00.js',
      '/assets\\..\\secret.txt',
    ]) {
      const res = await get(url);
      // 400 when the router itself refuses the path (a NUL), 404 otherwise: never the file.
      expect([400, 404], url).toContain(res.statusCode);
      expect(res.body).not.toContain('outside the root');
      expect(res.body).not.toBe('no');
    }
  });

  it('the API keeps its own 404 and 405 answers', async () => {
    const unknown = await get('/v1/nothing-here');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('not_found');
    const wrongMethod = await get('/v1/grants/grt_x/void');
    expect(wrongMethod.statusCode).toBe(405);
    const post = await t.app.inject({ method: 'POST', url: '/customers', payload: {} });
    expect(post.statusCode).toBe(404);
  });
});
