import { useState } from 'preact/hooks';

/**
 * Keyset paging state of a list view: the cursor of the page shown, and the cursors of the pages
 * before it (so Previous can go back without the API paging backwards).
 */
export function useCursorPages() {
  const [before, setBefore] = useState<(string | null)[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  return {
    cursor,
    hasPrevious: before.length > 0,
    /** Back to the first page (a filter or sort changed). */
    restart: () => {
      setBefore([]);
      setCursor(null);
    },
    previous: () => {
      setCursor(before[before.length - 1] ?? null);
      setBefore(before.slice(0, -1));
    },
    next: (nextCursor: string) => {
      setBefore([...before, cursor]);
      setCursor(nextCursor);
    },
  };
}

/** Previous/Next buttons of a list paged by {@link useCursorPages}. */
export function Pager({
  pages,
  nextCursor,
  loading,
}: {
  pages: ReturnType<typeof useCursorPages>;
  /** The cursor of the page after the one shown (null or undefined: it is the last). */
  nextCursor: string | null | undefined;
  loading: boolean;
}) {
  return (
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        class="secondary"
        disabled={!pages.hasPrevious || loading}
        onClick={pages.previous}
      >
        Previous
      </button>{' '}
      <button
        type="button"
        class="secondary"
        disabled={!nextCursor || loading}
        onClick={() => nextCursor && pages.next(nextCursor)}
      >
        Next
      </button>
    </nav>
  );
}
