import { useEffect, useState } from 'preact/hooks';
import { newIdempotencyKey } from '../api';
import { Chart } from '../components/Chart';
import { ConfirmDialog, type PendingAction } from '../components/Confirm';
import { formatAmount, toChartNumber } from '../decimal';
import { formatDate, formatRunway, formatTime } from '../format';
import { useLoad } from '../hooks';
import { PortalError, type PortalSession, portalApi } from '../portal-api';

/** Refresh the session this often (it lives 15 minutes). */
const REFRESH_MS = 10 * 60_000;

/** Opens the session: exchanges the code in the URL (then removes it from the URL), or reuses the cookie. */
async function openSession(): Promise<PortalSession> {
  const params = new URLSearchParams(window.location.search);
  const code = params.get('code');
  if (code) {
    window.history.replaceState(null, '', '/portal');
    return portalApi.exchange(code);
  }
  return portalApi.me();
}

function PortalLedger() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors.at(-1) ?? null;
  const page = useLoad(() => portalApi.ledger(cursor), [cursor]);
  return (
    <div>
      <div class="table-wrap">
        <table data-testid="portal-ledger">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What</th>
              <th scope="col" class="num">
                Credits
              </th>
              <th scope="col" class="num">
                Balance after
              </th>
            </tr>
          </thead>
          <tbody>
            {page.data?.data.map((e) => (
              <tr key={e.id}>
                <td>{formatTime(e.at)}</td>
                <td>{e.type}</td>
                <td class="num">{formatAmount(e.amount)}</td>
                <td class="num">{formatAmount(e.balance_after)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Ledger pages">
        <button
          type="button"
          class="secondary"
          disabled={cursors.length === 1}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          Newer
        </button>
        <button
          type="button"
          class="secondary"
          disabled={!page.data?.next_cursor}
          onClick={() => setCursors((c) => [...c, page.data?.next_cursor ?? null])}
        >
          Older
        </button>
        <a href="/v1/portal/ledger.csv" download>
          Export CSV
        </a>
      </nav>
    </div>
  );
}

/** The customer portal: one customer's balance, runway, grants, usage, ledger, prices and top-up. */
export function PortalPage() {
  const [session, setSession] = useState<PortalSession | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [packId, setPackId] = useState('');
  const [quantity, setQuantity] = useState('1');
  const [bought, setBought] = useState<string | null>(null);

  useEffect(() => {
    openSession().then(setSession, (e: unknown) =>
      setError(
        e instanceof PortalError && e.status === 401
          ? 'This portal link has expired or was already used. Ask for a new link.'
          : String(e),
      ),
    );
  }, []);
  useEffect(() => {
    if (!session) return;
    const timer = setInterval(() => {
      portalApi.refresh().then(setSession, () => setError('Your session has ended. Ask for a new link.'));
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [session !== null]);

  const data = useLoad(async () => {
    if (!session) return null;
    const [balance, forecast, grants, prices] = await Promise.all([
      portalApi.balance(),
      portalApi.forecast(),
      portalApi.grants(),
      portalApi.prices(),
    ]);
    return { balance, forecast, grants: grants.data, prices };
  }, [session?.customer_id, version]);

  if (error) {
    return (
      <main class="login">
        <h1>Credits</h1>
        <p role="alert" class="error">
          {error}
        </p>
      </main>
    );
  }
  if (!session || !data.data) return <main aria-busy="true">Loading…</main>;
  const { balance, forecast, grants, prices } = data.data;
  const canBuy = session.scope === 'read+topup';
  const pack = prices.credit_packs.find((p) => p.id === (packId || prices.credit_packs[0]?.id));
  const days = forecast.daily_consumption;
  return (
    <main>
      <h1>
        Credits <span class="muted">{session.customer_name ?? session.customer_id}</span>
      </h1>
      <div class="cards" aria-live="polite">
        <div class="card">
          <h2>Available</h2>
          <p class="big" data-testid="portal-available" data-value={balance.available}>
            {formatAmount(balance.available)}
          </p>
        </div>
        <div class="card">
          <h2>Reserved</h2>
          <p class="big">{formatAmount(balance.held)}</p>
        </div>
        <div class="card">
          <h2>Runway</h2>
          <p class="big" data-testid="portal-runway">
            {formatRunway(forecast.runway_seconds)}
          </p>
          {forecast.depletion?.p50 && (
            <p class="muted">expected to run out {formatTime(forecast.depletion.p50)}</p>
          )}
        </div>
        {balance.next_expiry && (
          <div class="card">
            <h2>Next expiry</h2>
            <p class="big">{formatAmount(balance.next_expiry.amount)}</p>
            <p class="muted">{formatTime(balance.next_expiry.at)}</p>
          </div>
        )}
      </div>

      <h2>Usage per day</h2>
      <Chart
        title="Credits used per day over the last four weeks"
        xs={days.map((d) => Date.parse(d.day) / 1000)}
        series={[
          {
            label: 'credits used',
            values: days.map((d) => toChartNumber(d.consumed)),
            color: '#2f6fb3',
            bars: true,
          },
        ]}
        height={180}
      />

      <h2>Your credits</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col" class="num">
                Left
              </th>
              <th scope="col">Expires</th>
            </tr>
          </thead>
          <tbody>
            {grants.map((g) => (
              <tr key={g.id}>
                <td>{g.category}</td>
                <td class="num">
                  {formatAmount(g.remaining)} of {formatAmount(g.amount)}
                </td>
                <td>{g.expires_at ? formatDate(g.expires_at) : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>What things cost</h2>
      <div class="table-wrap">
        <table data-testid="portal-prices">
          <thead>
            <tr>
              <th scope="col">Action</th>
              <th scope="col" class="num">
                Credits
              </th>
            </tr>
          </thead>
          <tbody>
            {prices.features
              .filter((f) => f.credits_per_use !== null)
              .map((f) => (
                <tr key={`f-${f.id}`}>
                  <td>{f.name ?? f.id} (each use)</td>
                  <td class="num">{formatAmount(f.credits_per_use ?? '0')}</td>
                </tr>
              ))}
            {prices.rates.map((r) => (
              <tr key={`r-${r.id}`}>
                <td>
                  {r.id} (per unit of {r.meter_id})
                </td>
                <td class="num">
                  {'credits_per_unit' in r && r.credits_per_unit
                    ? formatAmount(String(r.credits_per_unit))
                    : 'tiered'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {canBuy && prices.credit_packs.length > 0 && (
        <form
          class="form"
          aria-labelledby="buy-title"
          onSubmit={(event) => {
            event.preventDefault();
            if (!pack) return;
            const key = newIdempotencyKey();
            const count = Number(quantity);
            setPending({
              question: `Buy ${count} × ${pack.name ?? pack.id} (${formatAmount(pack.credits)} credits each) for ${pack.price.amount} ${pack.price.currency} each?`,
              confirmLabel: 'Buy',
              run: async () => {
                const purchase = await portalApi.buy(pack.id, count, key);
                setBought(`Bought ${formatAmount(purchase.credits)} credits.`);
                setVersion((v) => v + 1);
              },
            });
          }}
        >
          <h2 id="buy-title">Buy credits</h2>
          <label>
            Pack
            <select value={pack?.id} onChange={(e) => setPackId((e.target as HTMLSelectElement).value)}>
              {prices.credit_packs.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name ?? p.id}: {formatAmount(p.credits)} credits, {p.price.amount} {p.price.currency}
                </option>
              ))}
            </select>
          </label>
          <label>
            Quantity
            <input
              type="number"
              min={1}
              max={100}
              value={quantity}
              onInput={(e) => setQuantity((e.target as HTMLInputElement).value)}
            />
          </label>
          <button type="submit">Buy…</button>
          {bought && (
            <p role="status" data-testid="portal-bought">
              {bought}
            </p>
          )}
        </form>
      )}

      <h2>History</h2>
      <PortalLedger key={version} />
      <p>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            portalApi.end().finally(() => setError('You have signed out.'));
          }}
        >
          Sign out
        </button>
      </p>
      <ConfirmDialog action={pending} onClose={() => setPending(null)} />
    </main>
  );
}
