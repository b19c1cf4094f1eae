// Where a thread's instructions and cache misses go, from callgrind dumps that
// bench/instructions-per-request.mjs kept (BENCH_KEEP_DIR): self cost per area of the process
// (SQLite, V8's inline caches and property lookups, JSON, garbage collection, promises, JIT code,
// libc, …) and the functions whose cost differs most between two dumps, all per request.
// JIT-compiled JavaScript has no symbols under valgrind: it shows as one area ("JIT code"), so
// this tells how the work is spread over the runtime, not which JavaScript function did it (a
// V8 CPU profile tells that, in time).
//
//   node bench/callgrind-areas.mjs <dump> [<other dump>] [--requests=1000] [--sort=Ir|I1mr|D1mr|DLmr|…] [--top=25]
//   e.g. node bench/callgrind-areas.mjs /tmp/cg/callgrind-0.out.1-01 /tmp/cg/callgrind-1.out.1-01 --sort=D1mr
// (`<prefix>.1-01`: the first dump, the measured window, of thread 1, the main thread.)
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const arg = args.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
};
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0 || files.length > 2) {
  process.stderr.write(
    'usage: node bench/callgrind-areas.mjs <dump> [<other dump>] [--requests=N] [--sort=EVENT] [--top=N]\n',
  );
  process.exit(2);
}
const REQUESTS = Number(option('requests', '1000'));
const SORT = option('sort', 'Ir');
const TOP = Number(option('top', '25'));

/**
 * Self cost per function ("object::function") of a callgrind dump: the cost lines under each
 * `fn=`, without the inclusive costs that follow `calls=` lines. Names are compressed in the
 * format (`(id) name` the first time, `(id)` after), so they are remembered as they appear.
 */
function selfCosts(file) {
  const names = { fn: new Map(), ob: new Map() };
  const nameOf = (kind, value) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(value);
    if (!m) return value;
    if (m[2] !== undefined) names[kind].set(m[1], m[2]);
    return names[kind].get(m[1]) ?? `(${m[1]})`;
  };
  let events = ['Ir'];
  let fn = '?';
  let ob = '?';
  let afterCalls = false;
  const byFunction = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('events:')) events = line.slice(7).trim().split(/\s+/);
    else if (line.startsWith('ob=')) ob = nameOf('ob', line.slice(3)).split('/').pop();
    else if (line.startsWith('fn=')) fn = nameOf('fn', line.slice(3));
    else if (line.startsWith('cob=')) nameOf('ob', line.slice(4));
    else if (line.startsWith('cfn=')) nameOf('fn', line.slice(4));
    else if (line.startsWith('calls=')) afterCalls = true;
    else if (/^[+\-*\d]/.test(line)) {
      if (afterCalls) {
        afterCalls = false; // the inclusive cost of the call just named
        continue;
      }
      const key = `${ob}::${fn}`;
      const costs = byFunction.get(key) ?? new Array(events.length).fill(0);
      line
        .trim()
        .split(/\s+/)
        .slice(1)
        .forEach((v, i) => {
          costs[i] += Number(v);
        });
      byFunction.set(key, costs);
    }
  }
  return { events, byFunction };
}

/** The part of the process a function belongs to. */
function areaOf(key) {
  if (key.startsWith('???::')) return 'JIT code (JavaScript, optimised)';
  if (key.startsWith('better_sqlite3')) return 'SQLite (better-sqlite3)';
  if (/Builtins_\w+Handler\b|Builtins_Interpreter|Baseline/.test(key)) return 'interpreter and baseline code';
  if (
    /Scaveng|MarkCompact|Heap::|heap::|Sweeper|Marking|Evacuat|BodyDescriptor|Factory::AllocateRaw/.test(key)
  )
    return 'garbage collection and allocation';
  if (/Async|Promise|Microtask|Await|Generator/.test(key)) return 'promises and async functions';
  if (/Json|JSON/.test(key)) return 'JSON';
  if (/IC\b|IC_|ICBaseline|Keyed|Property|Lookup|MigrateToMap|Transition|FieldIndex/.test(key))
    return 'inline caches and property lookups';
  if (/BigInt|bigint/.test(key)) return 'BigInt';
  if (/String|Utf8/.test(key)) return 'strings';
  if (key.startsWith('node::Builtins_')) return 'other V8 builtins';
  if (key.startsWith('libc')) return 'libc (malloc, memcpy, syscalls)';
  return 'other native (V8 runtime, Node, OpenSSL, libuv)';
}

const dumps = files.map(selfCosts);
const events = dumps[0].events;
const shown = ['Ir', 'I1mr', 'D1mr', 'D1mw', 'ILmr', 'DLmr', 'DLmw'].filter((e) => events.includes(e));
const at = (costs, event) => costs?.[events.indexOf(event)] ?? 0;
const perRequest = (n) => Math.round(n / REQUESTS).toLocaleString('en-US');
const cell = (list, event) => list.map((costs) => perRequest(at(costs, event)).padStart(9)).join(' ');
const header = (label) => `${label.padEnd(52)}${shown.map((e) => e.padStart(files.length * 10)).join(' ')}`;

const byArea = dumps.map(({ byFunction }) => {
  const areas = new Map();
  for (const [key, costs] of byFunction) {
    const area = areaOf(key);
    const sum = areas.get(area) ?? new Array(events.length).fill(0);
    costs.forEach((v, i) => {
      sum[i] += v;
    });
    areas.set(area, sum);
  }
  return areas;
});
const areaNames = [...new Set(byArea.flatMap((a) => [...a.keys()]))].sort(
  (x, y) => at(byArea.at(-1).get(y), 'Ir') - at(byArea.at(-1).get(x), 'Ir'),
);
process.stdout.write(
  `per request (÷${REQUESTS}); ${files.length === 2 ? 'each column: first dump, second dump' : files[0]}\n\n`,
);
process.stdout.write(`${header('area (self cost)')}\n`);
for (const area of areaNames) {
  const list = byArea.map((a) => a.get(area));
  process.stdout.write(`${area.padEnd(52)}${shown.map((e) => cell(list, e)).join(' ')}\n`);
}
const totals = dumps.map(({ byFunction }) => {
  const sum = new Array(events.length).fill(0);
  for (const costs of byFunction.values()) {
    costs.forEach((v, i) => {
      sum[i] += v;
    });
  }
  return sum;
});
process.stdout.write(`${'total'.padEnd(52)}${shown.map((e) => cell(totals, e)).join(' ')}\n`);

const keys = [...new Set(dumps.flatMap((d) => [...d.byFunction.keys()]))];
const weight = (key) =>
  dumps.length === 2
    ? Math.abs(at(dumps[1].byFunction.get(key), SORT) - at(dumps[0].byFunction.get(key), SORT))
    : at(dumps[0].byFunction.get(key), SORT);
keys.sort((x, y) => weight(y) - weight(x));
process.stdout.write(
  `\n${header(dumps.length === 2 ? `functions by the difference in ${SORT}` : `functions by ${SORT}`)}\n`,
);
for (const key of keys.slice(0, TOP)) {
  const list = dumps.map((d) => d.byFunction.get(key));
  process.stdout.write(`${key.slice(0, 51).padEnd(52)}${shown.map((e) => cell(list, e)).join(' ')}\n`);
}
