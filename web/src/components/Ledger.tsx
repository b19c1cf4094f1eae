import { useState } from 'preact/hooks';
import { api, newIdempotencyKey } from '../api';
import { formatAmount } from '../decimal';
import { formatTime } from '../format';
import { useLoad } from '../hooks';
import type { PendingAction } from './Confirm';

const PAGE_SIZE = '50';

/**
 * The ledger, newest first, one page at a time (keyset cursors): a customer with 100,000 entries
 * loads 50 of them. "Newer" goes back through the cursors already seen.
 */
export function LedgerTable({
  customerId,
  creditType,
  version,
  onAsk,
}: {
  customerId: string;
  creditType: string;
  version: number;
  onAsk: (a: PendingAction) => void;
}) {
  // cursors[i] opens page i (null: the first page).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const pageIndex = cursors.length - 1;
  const cursor = cursors[pageIndex] ?? null;
  const page = useLoad(
    () =>
      api().GET('/v1/customers/{id}/ledger', {
        params: {
          path: { id: customerId },
          query: { credit_type: creditType, order: 'desc', limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) },
        },
      }),
    [customerId, creditType, cursor, version],
  );
  return (
    <div>
      {page.error && <p class="error">{page.error}</p>}
      <div class="table-wrap">
        <table data-testid="ledger-table">
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Type</th>
              <th scope="col" class="num">
                Amount
              </th>
              <th scope="col" class="num">
                Balance after
              </th>
              <th scope="col">Reference</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
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
                <td>
                  <code>{e.ref ?? e.grant_id ?? ''}</code>
                </td>
                <td>
                  {(e.type === 'debit' || e.type === 'capture') && e.ref && (
                    <button
                      type="button"
                      class="secondary small"
                      onClick={() => {
                        const key = newIdempotencyKey();
                        const debitId = e.ref!;
                        onAsk({
                          question: `Reverse what is left of debit ${debitId}? Credits go back to the grants they came from.`,
                          confirmLabel: 'Reverse debit',
                          run: () =>
                            api().POST('/v1/debits/{id}/reverse', {
                              params: { path: { id: debitId } },
                              headers: { 'Idempotency-Key': key },
                              body: { reason: 'reversed from the dashboard' },
                            }),
                        });
                      }}
                    >
                      Reverse…
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Ledger pages">
        <button
          type="button"
          class="secondary"
          disabled={pageIndex === 0}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          Newer
        </button>
        <span>Page {pageIndex + 1}</span>
        <button
          type="button"
          class="secondary"
          disabled={!page.data?.next_cursor}
          onClick={() => setCursors((c) => [...c, page.data?.next_cursor ?? null])}
        >
          Older
        </button>
      </nav>
    </div>
  );
}
