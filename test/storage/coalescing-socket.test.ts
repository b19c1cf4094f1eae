import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { coalescingSocket } from '../../src/storage/postgres/coalescing-socket.js';

describe('the PostgreSQL connection socket sends the writes of one tick together', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  async function connected(): Promise<{ socket: Socket; received: () => Promise<string> }> {
    const chunks: Buffer[] = [];
    const server = createServer((peer) => {
      peer.on('data', (chunk: Buffer) => chunks.push(chunk));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const socket = coalescingSocket();
    socket.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    closers.push(() => {
      socket.destroy();
      server.close();
    });
    const received = async () => {
      socket.end();
      await once(socket, 'close');
      return Buffer.concat(chunks).toString();
    };
    return { socket, received };
  }

  it('writes made in one tick leave as one batch, in order, when the tick ends', async () => {
    const { socket, received } = await connected();
    // `_writev` is how a writable hands several buffered chunks to the handle at once.
    const batched = vi.spyOn(socket as unknown as { _writev: () => void }, '_writev');
    socket.write('Parse;');
    socket.write('Bind;');
    socket.write('Execute;');
    socket.write('Sync;');
    expect(socket.writableCorked).toBe(1);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(socket.writableCorked).toBe(0);
    expect(batched).toHaveBeenCalledTimes(1);
    socket.write('next tick;');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await received()).toBe('Parse;Bind;Execute;Sync;next tick;');
  });

  it('write callbacks and the return value behave as on a plain socket', async () => {
    const { socket, received } = await connected();
    const done = new Promise<void>((resolve, reject) =>
      socket.write('one;', (error) => (error ? reject(error) : resolve())),
    );
    expect(socket.write(Buffer.from('two;'))).toBe(true);
    await done;
    expect(await received()).toBe('one;two;');
  });
});
