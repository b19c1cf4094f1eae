import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from '../api';

/** What an action asks before it runs: a sentence, and the one API call it makes. */
export interface PendingAction {
  readonly question: string;
  readonly confirmLabel: string;
  readonly run: () => Promise<unknown>;
}

/**
 * A modal confirmation (native <dialog>: focus moves into it, Escape cancels). The action runs
 * only on "confirm", once; its error shows in the dialog.
 */
export function ConfirmDialog({
  action,
  onClose,
}: {
  action: PendingAction | null;
  onClose: (done: boolean) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (action && !d.open) {
      setError(null);
      d.showModal();
    } else if (!action && d.open) d.close();
  }, [action]);
  const confirm = async () => {
    if (!action) return;
    setBusy(true);
    setError(null);
    try {
      await action.run();
      onClose(true);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={dialog} aria-labelledby="confirm-question" onCancel={() => onClose(false)}>
      <p id="confirm-question">{action?.question}</p>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={confirm} disabled={busy}>
          {action?.confirmLabel ?? 'Confirm'}
        </button>
        <button type="button" class="secondary" onClick={() => onClose(false)} disabled={busy}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
