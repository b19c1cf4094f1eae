import { it } from 'vitest';
import { createTestApp } from '../fixtures/harness.js';

it('explore', async () => {
  const t = await createTestApp();
  await t.post('/v1/customers', { id: 'acme' });
  const show = async (label: string, p: Promise<any>) => {
    const r = await p;
    console.log(label, r.statusCode, r.payload.slice(0, 200));
  };
  await show('cursor zzzz customers', t.get('/v1/customers?cursor=zzzz'));
  await show('cursor zzzz grants', t.get('/v1/customers/acme/grants?cursor=zzzz'));
  await show('cursor zzzz ledger', t.get('/v1/customers/acme/ledger?cursor=zzzz'));
  await show('cursor zzzz ct', t.get('/v1/credit-types?cursor=zzzz'));
  await show('cursor !!!', t.get('/v1/customers?cursor=!!!'));
  await show('no ctype', t.request({ method: 'POST', url: '/v1/customers', payload: '{"id":"x1"}' }));
  await show(
    'jsonx',
    t.request({
      method: 'POST',
      url: '/v1/customers',
      headers: { 'content-type': 'application/jsonx' },
      payload: '{"id":"x2"}',
    }),
  );
  await show(
    'json-seq',
    t.request({
      method: 'POST',
      url: '/v1/customers',
      headers: { 'content-type': 'application/json-seq' },
      payload: '{"id":"x3"}',
    }),
  );
  await show(
    'text/json',
    t.request({
      method: 'POST',
      url: '/v1/customers',
      headers: { 'content-type': 'text/json' },
      payload: '{"id":"x4"}',
    }),
  );
  await show('empty idem', t.post('/v1/customers', { id: 'x5' }, { 'idempotency-key': '' }));
  await show('amount num', t.post('/v1/customers/acme/debits', { amount: 5 }));
  await show('amount null', t.post('/v1/customers/acme/debits', { amount: null }));
  await show('amount missing', t.post('/v1/customers/acme/debits', {}));
  await show('amount num+extra', t.post('/v1/customers/acme/debits', { amount: 5, foo: 1 }));
  await show('extra+amount num', t.post('/v1/customers/acme/debits', { foo: 1, amount: 5 }));
  await show('proto', t.post('/v1/customers/acme/debits', '{"amount":"5","__proto__":{"x":1}}'));
  await show('null body cust', t.post('/v1/customers', 'null'));
  await show('at future', t.get('/v1/customers/acme/balance?at=2030-01-01T00:00:00Z'));
  await show('at feb30', t.get('/v1/customers/acme/balance?at=2025-02-30T00:00:00Z'));

  await show('big', t.post('/v1/customers', '{"id":"' + 'a'.repeat(1024 * 1024) + '"}'));
  await show('limit 1.5', t.get('/v1/customers?limit=1.5'));
  await show('limit 0', t.get('/v1/customers?limit=0'));
  await show('limit dup', t.get('/v1/customers?limit=1&limit=2'));
  await show('read balance', t.get('/v1/customers/acme/balance?credit_type=nope'));
  await t.close();
});
