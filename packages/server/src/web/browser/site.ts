/**
 * Every page's script: `<time data-rel>` elements (rendered by the server with the absolute UTC
 * time, which stays their title) read as "3 minutes ago", kept current. Without script the
 * absolute time is what one reads.
 */
const UNITS: readonly [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86_400_000],
  ['month', 30 * 86_400_000],
  ['week', 7 * 86_400_000],
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];
const format = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

export function relative(ms: number, now: number): string {
  const diff = ms - now;
  for (const [unit, size] of UNITS) {
    if (Math.abs(diff) >= size || unit === 'second') {
      if (unit === 'second' && Math.abs(diff) < 10_000) return diff > 0 ? 'in a few seconds' : 'just now';
      return format.format(Math.trunc(diff / size), unit);
    }
  }
  return '';
}

function update(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLTimeElement>('time[data-rel]')) {
    const ms = Date.parse(el.dateTime);
    if (Number.isNaN(ms)) continue;
    if (!el.title) el.title = el.textContent ?? '';
    el.textContent = relative(ms, now);
  }
}

update();
setInterval(update, 30_000);
