import { useState } from 'preact/hooks';
import { api, newIdempotencyKey, type Schemas } from '../api';
import { ConfirmDialog, type PendingAction } from '../components/Confirm';
import { Pager, useCursorPages } from '../components/Pager';
import { formatTime } from '../format';
import { useLoad } from '../hooks';

type Attempt = Schemas['RecentWebhookAttempt'];
type Filter = 'problems' | 'all' | 'delivered';

const OUTCOMES: Record<Filter, string | undefined> = {
  problems: 'retry,failed,gone',
  all: undefined,
  delivered: 'delivered',
};
const PAGE = 50;

/** The workspace's endpoints (for the filter and to show URLs), then one page of recent attempts. */
async function loadDeliveries(filter: Filter, endpointId: string, cursor: string | null) {
  const client = api();
  const endpoints = await client.GET('/v1/webhook-endpoints', { params: { query: { limit: '1000' } } });
  const query: Record<string, string> = { limit: String(PAGE) };
  const outcome = OUTCOMES[filter];
  if (outcome) query.outcome = outcome;
  if (endpointId) query.endpoint_id = endpointId;
  if (cursor) query.cursor = cursor;
  const attempts = await client.GET('/v1/webhook-attempts', { params: { query } });
  return { endpoints: endpoints.data, attempts: attempts.data, next: attempts.next_cursor };
}

/**
 * Operator view of webhook deliveries: recent attempts across every endpoint, newest first, failures
 * only by default; replay sends an attempt's event to its endpoint again (one confirmed API call).
 * Needs an admin key (webhooks:admin).
 */
export function DeliveriesPage() {
  const [filter, setFilter] = useState<Filter>('problems');
  const [endpointId, setEndpointId] = useState('');
  const pages = useCursorPages();
  const cursor = pages.cursor;
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const loaded = useLoad(() => loadDeliveries(filter, endpointId, cursor), [filter, endpointId, cursor]);
  const restart = pages.restart;
  const urlOf = new Map((loaded.data?.endpoints ?? []).map((e) => [e.id, e.url]));
  const replay = (a: Attempt) => {
    const key = newIdempotencyKey();
    setPending({
      question: `Send event ${a.event_id} (${a.event_type ?? 'unknown type'}) to ${urlOf.get(a.endpoint_id) ?? a.endpoint_id} again?`,
      confirmLabel: 'Replay',
      run: async () => {
        const res = await api().POST('/v1/webhook-endpoints/{id}/replay', {
          params: { path: { id: a.endpoint_id } },
          headers: { 'Idempotency-Key': key },
          body: { event_id: a.event_id },
        });
        setNotice(`Queued ${res.queued} delivery of ${a.event_id}.`);
      },
    });
  };
  const rows = loaded.data?.attempts ?? [];
  return (
    <section aria-labelledby="deliveries-title">
      <h1 id="deliveries-title">Webhook deliveries</h1>
      <div class="toolbar">
        <label class="inline">
          Show{' '}
          <select
            name="outcome"
            value={filter}
            onChange={(e) => {
              setFilter((e.target as HTMLSelectElement).value as Filter);
              restart();
            }}
          >
            <option value="problems">Failures and retries</option>
            <option value="all">All attempts</option>
            <option value="delivered">Delivered</option>
          </select>
        </label>
        <label class="inline">
          Endpoint{' '}
          <select
            name="endpoint"
            value={endpointId}
            onChange={(e) => {
              setEndpointId((e.target as HTMLSelectElement).value);
              restart();
            }}
          >
            <option value="">All endpoints</option>
            {(loaded.data?.endpoints ?? []).map((e) => (
              <option key={e.id} value={e.id}>
                {e.description ?? e.url}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="secondary" onClick={() => loaded.reload()}>
          Refresh
        </button>
      </div>
      {loaded.error && (
        <p role="alert" class="error">
          {loaded.error}
        </p>
      )}
      {notice && (
        <p role="status" data-testid="replay-notice">
          {notice}
        </p>
      )}
      {loaded.loading && <p aria-live="polite">Loading…</p>}
      <div class="table-wrap">
        <table data-testid="deliveries-table">
          <caption class="sr-only">Recent webhook delivery attempts, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Event</th>
              <th scope="col" class="num">
                Attempt
              </th>
              <th scope="col">Answer</th>
              <th scope="col">Outcome</th>
              <th scope="col">Delivery now</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.id} data-attempt={a.id} data-event={a.event_id} data-outcome={a.outcome}>
                <td>{formatTime(a.attempted_at)}</td>
                <td>
                  <span title={a.endpoint_id}>{urlOf.get(a.endpoint_id) ?? a.endpoint_id}</span>
                </td>
                <td>
                  {a.event_type ?? '—'} <code class="muted">{a.event_id}</code>
                </td>
                <td class="num">{a.attempt}</td>
                <td>
                  {a.status_code ?? a.error ?? '—'} <span class="muted">{a.latency_ms} ms</span>
                </td>
                <td class={a.outcome === 'delivered' ? '' : 'warn'}>{a.outcome}</td>
                <td>{a.delivery_state ?? '—'}</td>
                <td>
                  <button type="button" class="secondary small" onClick={() => replay(a)}>
                    Replay…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {loaded.data && rows.length === 0 && (
        <p>{filter === 'problems' ? 'No failed or retried attempts.' : 'No attempts.'}</p>
      )}
      <Pager pages={pages} nextCursor={loaded.data?.next} loading={loaded.loading} />
      <ConfirmDialog
        action={pending}
        onClose={(done) => {
          setPending(null);
          if (done) loaded.reload();
        }}
      />
    </section>
  );
}
