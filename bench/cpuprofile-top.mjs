// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, top by
// inclusive (total) time, and self time grouped by area (Burndown source, Fastify, Node core…).
//
//   node bench/cpuprofile-top.mjs <file.cpuprofile> [topN]
//   node bench/cpuprofile-top.mjs <file.cpuprofile> [topN] --only-after-ms=<ms>   (skip warm-up/seeding)
//   node bench/cpuprofile-top.mjs <file.cpuprofile> [topN] --only-after-ms=<ms> --until-ms=<ms>   (one window)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const shortUrl = (url) => {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  const dist = u.indexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  return u;
};

/** Which part of the stack a frame belongs to. */
function areaOf(frame) {
  const url = frame.url ?? '';
  const name = frame.functionName;
  if (!url) {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(idle)') return 'idle';
    if (name === '(program)') return 'native / VM (incl. SQLite, fsync)';
    return 'native / VM (incl. SQLite, fsync)';
  }
  if (url.startsWith('node:')) return 'Node core (http, streams, timers)';
  const nm = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return nm[1];
  const dist = url.match(/\/dist\/([^/]+)\//);
  if (dist) return `burndown ${dist[1]}/`;
  if (url.includes('/dist/')) return 'burndown';
  return 'other';
}

export function summariseProfile(
  profile,
  { top = 25, onlyAfterMs = 0, untilMs = Number.POSITIVE_INFINITY } = {},
) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map(); // node id → µs
  let t = profile.startTime;
  const cutoff = profile.startTime + onlyAfterMs * 1000;
  const end = profile.startTime + untilMs * 1000;
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < cutoff || t > end) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0; // time until the next sample is attributed to this one
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + dt);
    totalUs += dt;
  }

  const keyOf = (f) => `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}:${f.lineNumber + 1}`;
  const selfByFn = new Map();
  const totalByFn = new Map();
  const byArea = new Map();
  for (const [id, us] of self) {
    const node = nodes.get(id);
    const f = node.callFrame;
    const key = keyOf(f);
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
    const area = areaOf(f);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    // inclusive: once per distinct function on the stack
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(nodes.get(cur).callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      totalByFn.set(k, (totalByFn.get(k) ?? 0) + us);
    }
  }
  const busyUs = totalUs - (byArea.get('idle') ?? 0);
  const rank = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, pctOfBusy: (us / busyUs) * 100 }));
  const result = {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    top: rank(selfByFn),
    topInclusive: rank(totalByFn).filter((x) => !x.fn.startsWith('(root)')),
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: us / 1000, pctOfBusy: (us / busyUs) * 100 })),
  };
  const pct = (x) => `${x.pctOfBusy.toFixed(1).padStart(5)} %  ${x.ms.toFixed(0).padStart(7)} ms`;
  result.text = [
    `profiled ${result.totalMs.toFixed(0)} ms, busy (non-idle) ${result.busyMs.toFixed(0)} ms; percentages are of busy time`,
    '',
    'self time by area:',
    ...result.byArea.filter((x) => x.area !== 'idle').map((x) => `  ${pct(x)}  ${x.area}`),
    '',
    `top ${top} functions by self time:`,
    ...result.top.map((x) => `  ${pct(x)}  ${x.fn}`),
    '',
    `top ${top} functions by inclusive time:`,
    ...result.topInclusive.map((x) => `  ${pct(x)}  ${x.fn}`),
  ].join('\n');
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write(
      'usage: node bench/cpuprofile-top.mjs <file.cpuprofile> [topN] [--only-after-ms=N] [--until-ms=N]\n',
    );
    process.exit(2);
  }
  const topArg = process.argv.find((a, i) => i > 2 && /^\d+$/.test(a));
  const after = process.argv.find((a) => a.startsWith('--only-after-ms='));
  const until = process.argv.find((a) => a.startsWith('--until-ms='));
  const summary = summariseProfile(JSON.parse(readFileSync(file, 'utf8')), {
    top: topArg ? Number(topArg) : 25,
    onlyAfterMs: after ? Number(after.split('=')[1]) : 0,
    untilMs: until ? Number(until.split('=')[1]) : Number.POSITIVE_INFINITY,
  });
  process.stdout.write(`${summary.text}\n`);
}
