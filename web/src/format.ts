/** Display helpers shared by the dashboard and the portal. */

/** A runway in seconds as "3 d 4 h", "5 h", "< 1 h"; null: "no recent usage". */
export function formatRunway(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return 'no recent usage';
  if (seconds <= 0) return 'depleted';
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  if (days >= 365) return '> 1 year';
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h`;
  return '< 1 h';
}

/** An RFC 3339 instant as a short UTC date and time. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

/** An RFC 3339 instant as its UTC date. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  return iso.slice(0, 10);
}
