// Preloaded into a Burndown server by bench/events.mjs with BENCH_SQL_TIMING=1 (`node --import
// ./bench/sqlite-statement-timer.mjs dist/cli/main.js serve`): times every better-sqlite3
// statement call (run/get/all/iterate), by SQL text, on the thread that makes it. SQLite's own
// work (B-tree updates, WAL writes, the fsync inside COMMIT) is native code that a CPU profile
// attributes to whichever JS function called it; this splits it by statement instead.
//
// On SIGUSR2 the totals so far are written (atomically) as JSON to $BENCH_SQL_TIMING_FILE with an
// increasing `seq`, so the benchmark can take a snapshot before and after a measured window.
// Overhead: a Map lookup and two hrtime calls per statement. Without BENCH_SQL_TIMING_FILE this
// module does nothing. Nothing under src/ is changed.
import { renameSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';

const file = process.env.BENCH_SQL_TIMING_FILE;

if (file) {
  const probe = new Database(':memory:');
  const Statement = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  /** SQL text (whitespace collapsed, truncated) → { n, ns } */
  const totals = new Map();
  const keyOf = new WeakMap();
  const key = (statement) => {
    let k = keyOf.get(statement);
    if (k === undefined) {
      k = statement.source.replace(/\s+/g, ' ').trim().slice(0, 160);
      keyOf.set(statement, k);
    }
    return k;
  };
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = Statement[method];
    Statement[method] = function timed(...args) {
      const t0 = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        const ns = Number(process.hrtime.bigint() - t0);
        const k = key(this);
        let c = totals.get(k);
        if (!c) {
          c = { n: 0, ns: 0 };
          totals.set(k, c);
        }
        c.n += 1;
        c.ns += ns;
      }
    };
  }
  // In-process harnesses (bench/cpu-per-op.mjs) reset the totals when their measured window starts
  // and get them written when the process exits.
  globalThis.__burndownSqlTimingReset = () => totals.clear();
  process.on('exit', () => {
    writeFileSync(file, JSON.stringify({ seq: -1, at: Date.now(), statements: Object.fromEntries(totals) }));
  });
  let seq = 0;
  process.on('SIGUSR2', () => {
    seq += 1;
    const out = { seq, at: Date.now(), statements: Object.fromEntries(totals) };
    writeFileSync(`${file}.tmp`, JSON.stringify(out));
    renameSync(`${file}.tmp`, file);
  });
}
