// Times presenting a debit's answer (its balance lists every grant of the customer) both ways the
// code can: `JSON.stringify(presentDebit(…))`, and `presentDebitText(…)`, which reuses the text of
// grants unchanged since an earlier answer (src/services/balance-document.ts). The workload has
// the shape of the debit benchmarks: 1,000 customers with 12 grants each, a random customer per
// answer, whose first grant changed since its previous answer. Alternating rounds, one process.
//
//   npm run build && node bench/answer-text.mjs [<dist>]   (BENCH_ANSWERS per round, 30,000)
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { num, root } from './lib.mjs';

const dist = resolve(process.argv[2] ?? join(root, 'dist'));
const load = (path) => import(pathToFileURL(join(dist, path)).href);
const { Amount } = await load('domain/amount/amount.js');
const { presentDebit, presentDebitText } = await load('http/presenters.js');

const ANSWERS = num('BENCH_ANSWERS', 30_000);
const DAY = 86_400_000;
const now = Date.now();
const customers = Array.from({ length: 1000 }, (_, c) =>
  Array.from({ length: 12 }, (_, g) => {
    const k = c * 31 + g * 17;
    return {
      grantId: `grant_${String(c * 12 + g).padStart(20, '0')}`,
      remaining: Amount.of('1000000'),
      expiresAt: g % 4 === 0 ? null : now + (2 + (k % 179)) * DAY + (k % 3600) * 1000,
      priority: (k * 7) % 100,
      category: ['paid', 'promotional', 'allowance'][k % 3],
    };
  }),
);
const drawn = Amount.of('1.5');
let seq = 0;

/** The next answer's debit and balance: a random customer, its first grant drawn on. */
function nextAnswer() {
  const c = Math.floor(Math.random() * customers.length);
  const grants = customers[c];
  grants[0] = { ...grants[0], remaining: grants[0].remaining.minus(drawn) };
  seq += 1;
  const customerId = `bench-cust-${String(c).padStart(5, '0')}`;
  const debit = {
    id: `debit_${seq}`,
    customerId,
    creditType: 'credits',
    amount: drawn,
    drawdowns: [{ grantId: grants[0].grantId, amount: drawn }],
    overage: Amount.ZERO,
    holdId: null,
    featureId: null,
    quantity: null,
    createdAt: now + seq,
    description: null,
    metadata: {},
  };
  const balance = {
    customerId,
    creditType: 'credits',
    at: now + seq,
    available: Amount.of('11999998.5'),
    held: Amount.ZERO,
    overage: Amount.ZERO,
    // Fresh view objects per answer, as the ledger's balance() makes them.
    grants: grants.map((g) => ({ ...g, remaining: Amount.fromUnits(g.remaining.units) })),
    nextExpiry: null,
  };
  return { debit, balance };
}

const ways = {
  'JSON.stringify(presentDebit)': ({ debit, balance }) => JSON.stringify(presentDebit(debit, balance)),
  presentDebitText: ({ debit, balance }) => presentDebitText(debit, balance).text,
};
const totals = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (let round = 0; round < 4; round++) {
  for (const [name, present] of Object.entries(ways)) {
    const inputs = Array.from({ length: ANSWERS }, nextAnswer);
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    for (const input of inputs) bytes += present(input).length;
    const us = Number(process.hrtime.bigint() - t0) / 1000 / ANSWERS;
    if (round > 0) totals[name].push(us);
    console.log(
      `round ${round}: ${name}: ${us.toFixed(2)} µs per answer, ${Math.round(bytes / ANSWERS)} bytes`,
    );
  }
}
for (const [name, xs] of Object.entries(totals)) {
  xs.sort((a, b) => a - b);
  console.log(`${name}: median ${xs[Math.floor(xs.length / 2)].toFixed(2)} µs per answer (rounds 1–3)`);
}
