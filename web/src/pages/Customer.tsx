import { useState } from 'preact/hooks';
import { api, newIdempotencyKey, type Schemas } from '../api';
import { BurnDownChart } from '../components/BurnDown';
import { ConfirmDialog, type PendingAction } from '../components/Confirm';
import { CreditTypePicker } from '../components/CreditTypePicker';
import { LedgerTable } from '../components/Ledger';
import { MeterUsage } from '../components/Usage';
import { compare, formatAmount, units } from '../decimal';
import { formatRunway, formatTime } from '../format';
import { useLoad } from '../hooks';

const DAY = 86_400_000;

/** Everything the customer page shows above the ledger, loaded together (each its own API call). */
async function loadCustomer(id: string, creditType: string) {
  const client = api();
  const path = { params: { path: { id } } };
  const now = Date.now();
  const from = new Date(Math.floor((now - 30 * DAY) / DAY) * DAY).toISOString();
  const [customer, balance, forecast, grants, series, subscriptions, purchases] = await Promise.all([
    client.GET('/v1/customers/{id}', path),
    client.GET('/v1/customers/{id}/balance', {
      params: { path: { id }, query: { credit_type: creditType } },
    }),
    client.GET('/v1/customers/{id}/forecast', {
      params: { path: { id }, query: { credit_type: creditType } },
    }),
    client.GET('/v1/customers/{id}/grants', {
      params: { path: { id }, query: { credit_type: creditType, limit: '200' } },
    }),
    client.GET('/v1/customers/{id}/balance-series', {
      params: { path: { id }, query: { credit_type: creditType, from, step: 'day' } },
    }),
    client.GET('/v1/customers/{id}/subscriptions', path),
    client.GET('/v1/customers/{id}/purchases', path),
  ]);
  return { customer, balance, forecast, grants: grants.data, series, subscriptions, purchases, now };
}

/** The workspace's meters (each one's usage loads in its own panel). */
async function loadMeters() {
  const meters = await api().GET('/v1/meters', { params: { query: { limit: '100' } } });
  return meters.data;
}

/** A grant's remaining amount as a bar of its original amount. */
function RemainingBar({ grant }: { grant: Schemas['Grant'] }) {
  const total = units(grant.amount);
  const left = units(grant.remaining);
  const permille = total > 0n ? Number((left * 1000n) / total) : 0;
  return (
    <meter
      class="bar"
      min={0}
      max={1000}
      value={permille}
      aria-label={`${grant.remaining} of ${grant.amount} left`}
    />
  );
}

function GrantForm({
  onAsk,
  creditType,
  customerId,
}: {
  onAsk: (a: PendingAction) => void;
  creditType: string;
  customerId: string;
}) {
  const [amount, setAmount] = useState('');
  const [category, setCategory] = useState<'paid' | 'promotional' | 'allowance'>('promotional');
  const [priority, setPriority] = useState('10');
  const [expires, setExpires] = useState('');
  const [description, setDescription] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    const body = {
      amount: amount.trim(),
      credit_type: creditType,
      category,
      priority: Number(priority),
      ...(expires ? { expires_at: new Date(expires).toISOString() } : {}),
      ...(description ? { description } : {}),
    };
    const key = newIdempotencyKey();
    onAsk({
      question: `Grant ${body.amount} ${creditType} (${category}, priority ${body.priority}${expires ? `, expiring ${formatTime(body.expires_at)}` : ''}) to ${customerId}?`,
      confirmLabel: 'Grant',
      run: async () => {
        await api().POST('/v1/customers/{id}/grants', {
          params: { path: { id: customerId } },
          headers: { 'Idempotency-Key': key },
          body,
        });
        setAmount('');
      },
    });
  };
  return (
    <form class="form" onSubmit={submit} aria-labelledby="grant-title">
      <h3 id="grant-title">Grant credits</h3>
      <label>
        Amount
        <input
          name="amount"
          required
          inputMode="decimal"
          pattern="[0-9]+(\.[0-9]+)?"
          value={amount}
          onInput={(e) => setAmount((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Category
        <select
          value={category}
          onChange={(e) => setCategory((e.target as HTMLSelectElement).value as typeof category)}
        >
          <option value="paid">paid</option>
          <option value="promotional">promotional</option>
          <option value="allowance">allowance</option>
        </select>
      </label>
      <label>
        Priority
        <input
          type="number"
          min={0}
          max={1000000}
          value={priority}
          onInput={(e) => setPriority((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Expires (optional, your local time)
        <input
          type="datetime-local"
          value={expires}
          onInput={(e) => setExpires((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Description
        <input value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Grant…</button>
    </form>
  );
}

/**
 * An adjustment with a reason: one call to `POST /v1/customers/{id}/adjustments` (a positive
 * amount is a promotional grant, a negative one a debit, overage allowed), audited with the reason.
 */
function AdjustForm({
  onAsk,
  creditType,
  customerId,
}: {
  onAsk: (a: PendingAction) => void;
  creditType: string;
  customerId: string;
}) {
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    const value = amount.trim().replace(/^\+/, '');
    const negative = value.startsWith('-');
    const magnitude = negative ? value.slice(1) : value;
    const why = reason.trim();
    const key = newIdempotencyKey();
    onAsk({
      question: negative
        ? `Remove ${magnitude} ${creditType} from ${customerId} (a debit, overage allowed): “${why}”?`
        : `Add ${magnitude} ${creditType} to ${customerId} (a promotional grant): “${why}”?`,
      confirmLabel: 'Adjust',
      run: async () => {
        await api().POST('/v1/customers/{id}/adjustments', {
          params: { path: { id: customerId } },
          headers: { 'Idempotency-Key': key },
          body: { amount: value, reason: why, credit_type: creditType, allow_overage: true },
        });
        setAmount('');
        setReason('');
      },
    });
  };
  return (
    <form class="form" onSubmit={submit} aria-labelledby="adjust-title">
      <h3 id="adjust-title">Adjust</h3>
      <label>
        Amount (+ adds, − removes)
        <input
          name="adjust-amount"
          required
          pattern="[+-]?[0-9]+(\.[0-9]+)?"
          value={amount}
          onInput={(e) => setAmount((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Reason
        <input required value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Adjust…</button>
    </form>
  );
}

/** One customer: balance, forecast, burn-down chart, grants, usage, ledger, subscriptions, purchases, actions. */
export function CustomerPage({ id }: { id: string }) {
  const [creditType, setCreditType] = useState('credits');
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [ledgerVersion, setLedgerVersion] = useState(0);
  const data = useLoad(() => loadCustomer(id, creditType), [id, creditType]);
  const meters = useLoad(loadMeters, []);
  const ask = (action: PendingAction) => setPending(action);
  const closed = (done: boolean) => {
    setPending(null);
    if (done) {
      data.reload();
      setLedgerVersion((v) => v + 1);
    }
  };
  const d = data.data;
  const f = d?.forecast;
  return (
    <section aria-labelledby="customer-title">
      <h1 id="customer-title">
        {id} {d?.customer.name && <span class="muted">{d.customer.name}</span>}
      </h1>
      <div class="toolbar">
        <CreditTypePicker value={creditType} onChange={setCreditType} />
        <button type="button" class="secondary" onClick={() => data.reload()}>
          Refresh
        </button>
      </div>
      {data.error && (
        <p role="alert" class="error">
          {data.error}
        </p>
      )}
      {d && f && (
        <>
          <div class="cards" aria-live="polite">
            <div class="card">
              <h2>Available</h2>
              <p class="big" data-testid="balance-available" data-value={d.balance.available}>
                {formatAmount(d.balance.available)}
              </p>
            </div>
            <div class="card">
              <h2>Held</h2>
              <p class="big" data-testid="balance-held" data-value={d.balance.held}>
                {formatAmount(d.balance.held)}
              </p>
            </div>
            <div class="card">
              <h2>Overage</h2>
              <p
                class={`big ${compare(d.balance.overage, '0') > 0 ? 'warn' : ''}`}
                data-testid="balance-overage"
                data-value={d.balance.overage}
              >
                {formatAmount(d.balance.overage)}
              </p>
            </div>
            <div class="card">
              <h2>Runway</h2>
              <p class="big" data-testid="runway">
                {formatRunway(f.runway_seconds)}
              </p>
              {f.depletion && (
                <p class="muted">
                  runs out {formatTime(f.depletion.p50)}
                  <br />
                  10–90 %: {formatTime(f.depletion.p10)} –{' '}
                  {f.depletion.p90 ? formatTime(f.depletion.p90) : 'beyond a year'}
                </p>
              )}
            </div>
          </div>
          <h2>Burn-down</h2>
          <BurnDownChart
            series={d.series}
            forecast={f}
            grants={d.grants}
            nowAvailable={d.balance.available}
            now={d.now}
          />
          <details>
            <summary>How the forecast is made</summary>
            <p>{f.model?.description ?? 'No usage in the last 28 days: no forecast.'}</p>
            {f.model && (
              <p>
                Mean {formatAmount(f.model.mean_per_day, 2)} a day, level{' '}
                {formatAmount(f.model.level_per_day, 2)}, trend {formatAmount(f.model.trend_per_day, 3)} a
                day.
              </p>
            )}
            {f.known_future.auto_top_up && (
              <p>
                Auto top-up: {f.known_future.auto_top_up.quantity} × {f.known_future.auto_top_up.pack_id}{' '}
                below {formatAmount(f.known_future.auto_top_up.threshold)}; expected to fire{' '}
                {f.known_future.auto_top_up.fires_at.map(formatTime).join(', ') || 'not within the forecast'}.
              </p>
            )}
            {f.known_future.allowance_resets.length > 0 && (
              <p>
                Next allowance reset {formatTime(f.known_future.allowance_resets[0]!.at)} (+
                {formatAmount(f.known_future.allowance_resets[0]!.amount)}).
              </p>
            )}
          </details>

          <h2>Grants</h2>
          <div class="table-wrap">
            <table data-testid="grants-table">
              <thead>
                <tr>
                  <th scope="col">Grant</th>
                  <th scope="col">Category</th>
                  <th scope="col" class="num">
                    Priority
                  </th>
                  <th scope="col">Remaining</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.grants.map((g) => (
                  <tr key={g.id}>
                    <td>
                      <code>{g.id}</code>
                    </td>
                    <td>{g.category}</td>
                    <td class="num">{g.priority}</td>
                    <td>
                      <RemainingBar grant={g} /> {formatAmount(g.remaining)} / {formatAmount(g.amount)}
                    </td>
                    <td>{formatTime(g.expires_at)}</td>
                    <td>{g.status}</td>
                    <td>
                      {(g.status === 'active' || g.status === 'pending') && (
                        <button
                          type="button"
                          class="secondary small"
                          onClick={() => {
                            const key = newIdempotencyKey();
                            ask({
                              question: `Void grant ${g.id}? Its ${g.remaining} remaining credits leave now.`,
                              confirmLabel: 'Void grant',
                              run: () =>
                                api().POST('/v1/grants/{grant_id}/void', {
                                  params: { path: { grant_id: g.id } },
                                  headers: { 'Idempotency-Key': key },
                                  body: { reason: 'voided from the dashboard' },
                                }),
                            });
                          }}
                        >
                          Void…
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>

          <div class="columns">
            <GrantForm onAsk={ask} creditType={creditType} customerId={id} />
            <AdjustForm onAsk={ask} creditType={creditType} customerId={id} />
          </div>
        </>
      )}

      <h2>Usage by meter and group</h2>
      {meters.error && <p class="error">{meters.error}</p>}
      {meters.data?.length === 0 && <p class="muted">No meters.</p>}
      {meters.data?.map((meter) => (
        <MeterUsage key={meter.id} meter={meter} customerId={id} />
      ))}

      <h2>Ledger</h2>
      <LedgerTable customerId={id} creditType={creditType} version={ledgerVersion} onAsk={ask} />

      {d && (
        <div class="columns">
          <div>
            <h2>Subscriptions</h2>
            <table>
              <thead>
                <tr>
                  <th scope="col">Plan</th>
                  <th scope="col">Status</th>
                  <th scope="col">Current period</th>
                </tr>
              </thead>
              <tbody>
                {d.subscriptions.data.map((s) => (
                  <tr key={s.id}>
                    <td>
                      {s.plan_id} v{s.plan_version}
                    </td>
                    <td>{s.status}</td>
                    <td>
                      {formatTime(s.current_period.start)} – {formatTime(s.current_period.end)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.subscriptions.data.length === 0 && <p class="muted">None.</p>}
          </div>
          <div>
            <h2>Purchases</h2>
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Pack</th>
                  <th scope="col" class="num">
                    Credits
                  </th>
                  <th scope="col" class="num">
                    Price
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.purchases.data.map((p) => (
                  <tr key={p.id}>
                    <td>{formatTime(p.created_at)}</td>
                    <td>
                      {p.quantity} × {p.pack_id} ({p.source})
                    </td>
                    <td class="num">{formatAmount(p.credits)}</td>
                    <td class="num">
                      {p.price.amount} {p.price.currency}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.purchases.data.length === 0 && <p class="muted">None.</p>}
          </div>
        </div>
      )}
      <ConfirmDialog action={pending} onClose={closed} />
    </section>
  );
}
