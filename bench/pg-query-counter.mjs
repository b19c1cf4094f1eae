// Preloaded into a Burndown server by bench/postgres.mjs (`node --import ./bench/pg-query-counter.mjs
// dist/cli/main.js serve`): counts every query the `pg` driver sends, by SQL text, with the time
// the caller waited for its answer. With `pg`, one `client.query()` is one network round trip
// (simple query, or Parse/Bind/Execute/Sync sent together), so the counts are SQL round trips.
//
// It also measures how long each transaction holds its customer's advisory lock: from the answer
// to `SELECT pg_advisory_xact_lock(…)` to the answer to COMMIT/ROLLBACK on the same connection,
// including the time the server's event loop spends between the queries. Holds of the customer
// named by $BENCH_HOT_CUSTOMER are kept apart from the others.
//
// On SIGUSR2 the counts so far are written (atomically) as JSON to $BENCH_QUERY_COUNT_FILE with
// an increasing `seq`, so the benchmark can take a snapshot before and after a measured window.
// The overhead is a Map update and two performance.now() calls per query. Nothing in the server
// is changed; without BENCH_QUERY_COUNT_FILE this module does nothing.
import { renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

const file = process.env.BENCH_QUERY_COUNT_FILE;

if (file) {
  /** SQL text (whitespace collapsed) → { n, ms } */
  const counts = new Map();
  const keys = new Map(); // raw SQL text → collapsed text
  const keyOf = (config) => {
    const text = typeof config === 'string' ? config : (config?.text ?? '(query object)');
    let key = keys.get(text);
    if (key === undefined) {
      key = text.replace(/\s+/g, ' ').trim();
      if (keys.size < 10_000) keys.set(text, key);
    }
    return key;
  };
  const record = (key, ms) => {
    let c = counts.get(key);
    if (!c) {
      c = { n: 0, ms: 0 };
      counts.set(key, c);
    }
    c.n += 1;
    c.ms += ms;
  };

  /** Upper bounds (ms) of the lock-hold histogram buckets. */
  const HOLD_BOUNDS = [
    0.25,
    0.5,
    1,
    1.5,
    2,
    3,
    4,
    5,
    7.5,
    10,
    15,
    20,
    30,
    50,
    75,
    100,
    200,
    500,
    1000,
    Infinity,
  ];
  const newHold = () => ({ n: 0, ms: 0, max: 0, buckets: HOLD_BOUNDS.map(() => 0) });
  const holds = { hot: newHold(), other: newHold() };
  const hotSuffix = process.env.BENCH_HOT_CUSTOMER ? `/${process.env.BENCH_HOT_CUSTOMER}` : null;
  const lockAt = new WeakMap(); // client → { at, hot }
  const recordHold = (h, ms) => {
    h.n += 1;
    h.ms += ms;
    if (ms > h.max) h.max = ms;
    h.buckets[HOLD_BOUNDS.findIndex((b) => ms <= b)] += 1;
  };
  const track = (client, key, values) => {
    if (key.startsWith('SELECT pg_advisory_xact_lock')) {
      const lockKey = Array.isArray(values) ? String(values[0]) : '';
      lockAt.set(client, { at: performance.now(), hot: hotSuffix !== null && lockKey.endsWith(hotSuffix) });
    } else if (key === 'COMMIT' || key === 'ROLLBACK') {
      const held = lockAt.get(client);
      if (held) {
        lockAt.delete(client);
        recordHold(held.hot ? holds.hot : holds.other, performance.now() - held.at);
      }
    }
  };

  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(config, values, callback) {
    const key = keyOf(config);
    const t0 = performance.now();
    const params = typeof config === 'object' && config !== null && config.values ? config.values : values;
    const done = () => {
      record(key, performance.now() - t0);
      track(this, key, params);
    };
    if (typeof callback === 'function') {
      return original.call(this, config, values, (err, res) => {
        done();
        callback(err, res);
      });
    }
    if (typeof values === 'function') {
      return original.call(this, config, (err, res) => {
        done();
        values(err, res);
      });
    }
    const result = original.call(this, config, values);
    if (result && typeof result.then === 'function') result.then(done, done);
    else done();
    return result;
  };

  let seq = 0;
  process.on('SIGUSR2', () => {
    seq += 1;
    const body = {
      seq,
      pid: process.pid,
      at: Date.now(),
      queries: Object.fromEntries([...counts].map(([k, v]) => [k, { n: v.n, ms: v.ms }])),
      lockHold: { bounds: HOLD_BOUNDS.map(String), hot: holds.hot, other: holds.other },
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(body));
    renameSync(`${file}.tmp`, file);
  });
}
