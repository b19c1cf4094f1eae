// Why src/domain/objects.ts's extend() exists: the cost of building an object from another plus
// one property, and of reading it back, in each of the ways JavaScript spells it. On Node 20 (V8
// 11.3) a literal that adds a property after a spread takes the runtime's slow path and gives each
// object its own map; reads of such objects miss the inline caches (see `node --log-ic`).
//
//   node bench/spread-literals.mjs      (prints ns per object built and read; BENCH_OBJECTS, default 1,000,000)
import { num } from './lib.mjs';

const N = num('BENCH_OBJECTS', 1_000_000);
/**
 * Reads the fields a use case reads of its input. Each variant gets a function of its own (compiled
 * from source, so its inline caches see only that variant's objects).
 */
const reader = () =>
  new Function(
    'input',
    'return input.workspaceId.length + input.customerId.length + (input.quantity ? 1 : 0) + input.now;',
  );
const make = (i) => ({ workspaceId: 'ws', customerId: `c${i & 7}`, featureId: 'f', quantity: { units: 1n } });
const NOW = 1_765_000_000_000; // an instant in ms: a heap number, as `now` is

const variants = {
  '{ ...input, now }': (input, now) => ({ ...input, now }),
  '{ ...input } then o.now = now': (input, now) => {
    const o = { ...input };
    o.now = now;
    return o;
  },
  '{ now, ...input }': (input, now) => ({ now, ...input }),
  'Object.assign({}, input, { now }) (extend)': (input, now) => Object.assign({}, input, { now }),
  'a literal naming every property': (input, now) => ({
    workspaceId: input.workspaceId,
    customerId: input.customerId,
    featureId: input.featureId,
    quantity: input.quantity,
    now,
  }),
};

function run(build, read) {
  let sum = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sum += read(build(make(i), NOW + i));
  return { ns: Number(process.hrtime.bigint() - started) / N, sum };
}

const readers = new Map(Object.keys(variants).map((name) => [name, reader()]));
const rows = [];
for (let pass = 0; pass < 2; pass++) {
  for (const [name, build] of Object.entries(variants)) {
    const { ns } = run(build, readers.get(name));
    if (pass === 1) rows.push(`${ns.toFixed(0).padStart(8)} ns  ${name}`);
  }
}
process.stdout.write(
  `Node ${process.version}: ns per object built and read (second pass of two)\n${rows.join('\n')}\n`,
);
