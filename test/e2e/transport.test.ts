import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_API_KEY, ServerProcess } from './server-process.js';

/*
 * Transport bounds on a real server process and raw sockets (hardening issue, item 8): a body
 * dribbled slower than BURNDOWN_REQUEST_TIMEOUT_MS gets 408 request_timeout and the connection
 * closes; a request with an unknown key gets its 401 and the connection closes without the body
 * being read; at most BURNDOWN_MAX_CONNECTIONS connections are open at once.
 */

/** A raw connection: everything received, and when (if) the server closed it. */
interface Raw {
  readonly socket: Socket;
  readonly opened: number;
  received: string;
  closedAt: number | null;
  closed: Promise<void>;
}

function open(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let markClosed: () => void = () => undefined;
    const raw: Raw = {
      socket,
      opened: Date.now(),
      received: '',
      closedAt: null,
      closed: new Promise((r) => {
        markClosed = r;
      }),
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      raw.received += chunk;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      raw.closedAt = Date.now();
      markClosed();
    });
    socket.once('connect', () => resolve(raw));
    socket.once('error', reject);
  });
}

const within = (raw: Raw, ms: number) =>
  Promise.race([raw.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

const statusOf = (received: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
const jsonOf = (received: string) => JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));

describe('transport bounds (real server, raw sockets)', () => {
  let server: ServerProcess;
  let port = 0;
  beforeAll(async () => {
    server = await ServerProcess.start({
      BURNDOWN_REQUEST_TIMEOUT_MS: '1000',
      BURNDOWN_MAX_CONNECTIONS: '6',
    });
    port = Number(new URL(server.url).port);
  }, 30_000);
  afterAll(async () => {
    await server?.cleanup();
  });

  it('a dribbled body times out with 408 request_timeout and the connection closes', async () => {
    const raw = await open(port);
    raw.socket.write(
      'POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${E2E_API_KEY}\r\nContent-Length: 1000\r\n\r\n{`,
    );
    const dribble = setInterval(() => {
      if (!raw.socket.destroyed) raw.socket.write(' ');
    }, 100);
    try {
      expect(await within(raw, 4000)).toBe(true);
    } finally {
      clearInterval(dribble);
    }
    const took = (raw.closedAt ?? 0) - raw.opened;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
    expect(statusOf(raw.received)).toBe(408);
    expect(jsonOf(raw.received).error.code).toBe('request_timeout');
    // Nothing was written.
    expect((await server.get('/v1/customers')).body.data).toEqual([]);
  });

  it('dribbled headers time out the same way', async () => {
    const raw = await open(port);
    raw.socket.write('GET /v1/customers HTTP/1.1\r\nHost: x\r\n');
    const dribble = setInterval(() => {
      if (!raw.socket.destroyed) raw.socket.write('X-Slow: 1\r\n');
    }, 100);
    try {
      expect(await within(raw, 4000)).toBe(true);
    } finally {
      clearInterval(dribble);
    }
    expect((raw.closedAt ?? 0) - raw.opened).toBeLessThan(3000);
    expect(statusOf(raw.received)).toBe(408);
    expect(jsonOf(raw.received).error.code).toBe('request_timeout');
  });

  it('oversized headers get 431 headers_too_large', async () => {
    const raw = await open(port);
    raw.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(await within(raw, 2000)).toBe(true);
    expect(statusOf(raw.received)).toBe(431);
    expect(jsonOf(raw.received).error.code).toBe('headers_too_large');
  });

  it('an unknown key gets 401 and the connection closes without the body being read', async () => {
    const raw = await open(port);
    raw.socket.write(
      'POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Authorization: Bearer not-a-key-at-all-0000\r\nContent-Length: 50000000\r\n\r\n',
    );
    expect(await within(raw, 800)).toBe(true);
    expect(statusOf(raw.received)).toBe(401);
    expect(raw.received.toLowerCase()).toContain('connection: close');
    expect(jsonOf(raw.received).error.code).toBe('unauthorized');
  });

  it('connections beyond BURNDOWN_MAX_CONNECTIONS are closed at once', async () => {
    const held = await Promise.all(Array.from({ length: 6 }, () => open(port)));
    await new Promise((r) => setTimeout(r, 100));
    const extra = await open(port);
    expect(await within(extra, 800)).toBe(true);
    expect(extra.received).toBe('');
    // The held ones still work, and once one is gone a new connection is served.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(statusOf(held[0]!.received)).toBe(200);
    for (const raw of held) raw.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const later = await open(port);
    later.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await within(later, 2000)).toBe(true);
    expect(statusOf(later.received)).toBe(200);
  });
});
