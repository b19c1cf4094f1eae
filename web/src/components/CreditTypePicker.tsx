import { useLoad } from '../hooks';
import { loadCreditTypes } from '../summaries';

/** A labelled select of the workspace's credit types. */
export function CreditTypePicker({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const types = useLoad(loadCreditTypes, []);
  return (
    <label class="inline">
      Credit type{' '}
      <select value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {(types.data ?? [value]).map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
    </label>
  );
}
