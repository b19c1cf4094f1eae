// Preloaded into a Burndown server (`node --import ./bench/thread-cpu-probe.mjs dist/cli/main.js
// serve`, or BENCH_NODE_ARGS="--import <abs path>" for compare-builds.mjs / wrk.mjs): splits the CPU
// a server spent per HTTP request by thread, and reports its garbage collection per request, so a
// difference in "process µs/req" between builds can be placed: the main thread (user and system
// apart), V8's platform workers (concurrent compilation, GC helpers), libuv's thread pool (the
// pipelined WAL fdatasync) and the checkpoint worker. Threads are listed by id in creation order,
// because Node 20 names them all "node".
//
// When the server gets SIGTERM (the benchmarks stop servers so), one JSON line is appended to
// $BENCH_THREAD_PROBE_FILE: the build (its cli path), the requests it served, the main thread's user
// and system µs per request, every other thread's µs per request, its scheduler switches per
// request, and per kind of GC (v8.GCProfiler): count, pause µs per request and bytes promoted to
// the old generation per request. Totals are over the server's whole life (seeding excluded when
// the benchmark seeds with another server, as compare-builds.mjs does; its warm-up included).
// Without BENCH_THREAD_PROBE_FILE this module does nothing. Nothing under src/ is changed.
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import v8 from 'node:v8';
import { cpuTimesOf } from './lib.mjs';

const file = process.env.BENCH_THREAD_PROBE_FILE;

if (file) {
  let requests = 0;
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function counted(name, ...args) {
    if (name === 'request') requests += 1;
    return emit.call(this, name, ...args);
  };
  const gc = new v8.GCProfiler();
  gc.start();

  let reported = false;
  const report = () => {
    // A second SIGTERM (a benchmark that stops twice) finds the profiler stopped: report once.
    if (reported) return;
    reported = true;
    const per = (x) => Math.round((x / Math.max(requests, 1)) * 100) / 100;
    const main = cpuTimesOf(process.pid, process.pid);
    const threads = {};
    for (const tid of readdirSync(`/proc/${process.pid}/task`).sort((a, b) => Number(a) - Number(b))) {
      if (tid === String(process.pid)) continue;
      const t = cpuTimesOf(process.pid, tid);
      // NaN: the thread ended meanwhile
      if (!Number.isNaN(t.user)) threads[tid] = per((t.user + t.system) * 1e6);
    }
    const sched = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
    const switches = (label) =>
      Number(new RegExp(`^${label}:\\s+(\\d+)`, 'm').exec(sched)?.[1] ?? Number.NaN);
    const gcByKind = {};
    for (const event of gc.stop().statistics) {
      const oldUsed = (stats) =>
        stats.heapSpaceStatistics.find((s) => s.spaceName === 'old_space')?.spaceUsedSize ?? 0;
      gcByKind[event.gcType] ??= { count: 0, pauseMicros: 0, promotedBytes: 0 };
      const kind = gcByKind[event.gcType];
      kind.count += 1;
      kind.pauseMicros += event.cost;
      if (event.gcType === 'Scavenge') kind.promotedBytes += oldUsed(event.afterGC) - oldUsed(event.beforeGC);
    }
    const gcPerRequest = Object.fromEntries(
      Object.entries(gcByKind).map(([kind, k]) => [
        kind,
        {
          count: k.count,
          pauseMicrosPerRequest: per(k.pauseMicros),
          promotedBytesPerRequest: per(k.promotedBytes),
        },
      ]),
    );
    appendFileSync(
      file,
      `${JSON.stringify({
        build: process.argv[1],
        requests,
        mainUserMicrosPerRequest: per(main.user * 1e6),
        mainSystemMicrosPerRequest: per(main.system * 1e6),
        otherThreadsMicrosPerRequest: threads,
        mainVoluntarySwitchesPerRequest: per(switches('voluntary_ctxt_switches')),
        mainInvoluntarySwitchesPerRequest: per(switches('nonvoluntary_ctxt_switches')),
        gcPerRequest,
      })}\n`,
    );
  };
  // Runs before the server's own SIGTERM handler, which closes and exits.
  process.prependListener('SIGTERM', report);
}
