// A measurement, not a server to deploy: how many debits a second this machine could answer over
// HTTP if the thread that parses HTTP did nothing else and a worker thread owned the SQLite
// connection and ran the use case (issue #10's suggested design: "a worker owning the connection
// with pipelined group commit"). Started by `BENCH_TARGETS=…,split node bench/wrk.mjs`, which
// measures it with the same wrk script as the bare ceiling and the real server, in the same run.
//
// The worker runs exactly what the debit route runs below HTTP: `runWrite(ctx, debitCommand(…))`
// against the build's SqliteStorage (durable: WAL, synchronous FULL through the pipelined sync),
// and presents the answer as text (`presentDebitText`). The HTTP thread reads the body, parses
// the JSON, checks the key by comparing it, checks the amount's form, and passes the request on;
// requests and answers cross the thread boundary in batches, one message per event-loop turn each
// way. It skips what the real server's HTTP layer does besides (Fastify's routing and hooks,
// schema validation, hashing the key, per-request metrics), so its figure is an upper bound for
// the design: the real server's GET of a customer (that layer alone) costs about 8 µs more of
// main-thread CPU per request than the bare endpoint.
//
//   PORT=0 BENCH_CUSTOMERS=1000 BENCH_GRANTS=12 node bench/split-thread.mjs <dist> <db path>
//   → seeds the customers in the worker, then prints "split listening on http://127.0.0.1:<port>"
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { API_KEY, customerId, grantBody } from './lib.mjs';

const DEBIT_PATH = /^\/v1\/customers\/([A-Za-z0-9._:-]{1,128})\/debits$/;
const DECIMAL = /^\d{1,20}(\.\d{1,12})?$/;

if (isMainThread) {
  const [distArg, dbPath] = process.argv.slice(2);
  if (!distArg || !dbPath) throw new Error('usage: node bench/split-thread.mjs <dist> <db path>');
  const worker = new Worker(new URL(import.meta.url), {
    workerData: {
      dist: resolve(distArg),
      dbPath,
      customers: Number(process.env.BENCH_CUSTOMERS ?? 1000),
      grants: Number(process.env.BENCH_GRANTS ?? 12),
    },
  });
  /** Answers awaited, by request number. */
  const waiting = new Map();
  let next = 0;
  let outgoing = [];
  const flush = () => {
    const batch = outgoing;
    outgoing = [];
    worker.postMessage(batch);
  };
  worker.on('message', (message) => {
    if (message === 'ready') {
      server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
        process.stdout.write(`split listening on http://127.0.0.1:${server.address().port}\n`);
      });
      return;
    }
    for (const [n, status, text] of message) {
      const res = waiting.get(n);
      waiting.delete(n);
      answer(res, status, text);
    }
  });
  worker.on('error', (error) => {
    console.error(error);
    process.exit(1);
  });
  const answer = (res, status, text) => {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const match = req.method === 'POST' ? DEBIT_PATH.exec(req.url ?? '') : null;
    if (match === null) return answer(res, 404, '{"error":{"code":"not_found"}}');
    if (req.headers.authorization !== `Bearer ${API_KEY}`) {
      return answer(res, 401, '{"error":{"code":"unauthorized"}}');
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(res, 400, '{"error":{"code":"invalid_request"}}');
      }
      if (typeof body?.amount !== 'string' || !DECIMAL.test(body.amount)) {
        return answer(res, 400, '{"error":{"code":"invalid_amount"}}');
      }
      const n = next++;
      waiting.set(n, res);
      if (outgoing.length === 0) setImmediate(flush);
      outgoing.push([n, match[1], body.amount]);
    });
  });
  server.keepAliveTimeout = 65_000;
  process.on('SIGTERM', () => process.exit(0));
} else {
  const { dist, dbPath, customers, grants } = workerData;
  const load = (path) => import(pathToFileURL(join(dist, path)).href);
  const { Amount } = await load('domain/amount/amount.js');
  const { TimeOrderedIds } = await load('infra/ids.js');
  const { SqliteStorage } = await load('storage/sqlite/sqlite-storage.js');
  const { createCustomer } = await load('services/customers.js');
  const { grantCredits } = await load('services/ledger.js');
  const { debitCommand } = await load('services/commands.js');
  const { runWrite } = await load('services/unit-of-work.js');
  const { presentDebitText } = await load('http/presenters.js');

  const storage = await SqliteStorage.open({ path: dbPath });
  const ctx = { storage, clock: { now: () => Date.now() }, ids: new TimeOrderedIds(() => Date.now()) };
  const WS = 'default';
  const now = Date.now();
  // The customers and grants bench/lib.mjs's seedCustomers makes over HTTP, made here directly.
  for (let start = 0; start < customers; start += 100) {
    const chunk = [];
    for (let c = start; c < Math.min(customers, start + 100); c++) chunk.push(c);
    await Promise.all(
      chunk.map((c) =>
        storage.write(`${WS}/${customerId(c)}`, async (tx) => {
          const id = customerId(c);
          await tx.ensureWorkspace(WS, now);
          await createCustomer(tx, { workspaceId: WS, id, name: null, metadata: {}, now });
          for (let g = 0; g < grants; g++) {
            const body = grantBody(c, g, now, '1000000');
            await grantCredits(ctx, tx, {
              key: { workspaceId: WS, customerId: id, creditType: 'credits' },
              grant: {
                amount: Amount.of(body.amount),
                category: body.category,
                priority: body.priority,
                effectiveAt: now,
                expiresAt: body.expires_at === null ? null : Date.parse(body.expires_at),
                costBasis: null,
                appliesTo: null,
                description: null,
                metadata: {},
              },
              now,
            });
          }
        }),
      ),
    );
  }

  let replies = [];
  const flush = () => {
    const batch = replies;
    replies = [];
    parentPort.postMessage(batch);
  };
  const reply = (n, status, text) => {
    if (replies.length === 0) setImmediate(flush);
    replies.push([n, status, text]);
  };
  parentPort.on('message', (batch) => {
    for (const [n, customerId, amount] of batch) {
      const input = {
        key: { workspaceId: WS, customerId, creditType: 'credits' },
        amount: Amount.parse(amount),
        allowOverage: false,
        featureId: null,
        quantity: null,
        description: null,
        metadata: {},
        manual: false,
      };
      runWrite(ctx, debitCommand(ctx, input), (outcome) =>
        outcome.ok
          ? { status: 201, body: presentDebitText(outcome.value.debit, outcome.value.balance) }
          : { status: 402, body: { error: { code: 'insufficient_credits' } } },
      ).then(
        (answer) => reply(n, answer.status, answer.text),
        (error) =>
          reply(n, 500, JSON.stringify({ error: { code: 'internal_error', message: String(error) } })),
      );
    }
  });
  parentPort.postMessage('ready');
}
