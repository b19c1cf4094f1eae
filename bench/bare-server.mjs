// The framework-independent ceiling: a bare node:http server doing the minimum a JSON API must
// do per request (read the body, JSON.parse it, answer a small JSON body). No routing, no auth,
// no validation, no storage. Run as a child process by bench/debits.mjs.
//
//   PORT=0 node bench/bare-server.mjs   → prints "bare listening on http://127.0.0.1:<port>"
import { createServer } from 'node:http';

let served = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let parsed;
    try {
      parsed = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' });
      res.end('{"error":"invalid json"}');
      return;
    }
    served += 1;
    const body = JSON.stringify({ ok: true, n: served, amount: parsed?.amount ?? null });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  process.stdout.write(`bare listening on http://${address}:${port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
