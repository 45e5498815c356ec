// Dates, numbers and durations as the user reads them (their locale and time zone),
// except days of usage, which the server counts per UTC day.

export const DAY_MS = 24 * 60 * 60 * 1000;

const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timestampFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const utcDayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const numberFormat = new Intl.NumberFormat();
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const formatDate = (iso) => dateFormat.format(new Date(iso));
export const formatDateTime = (iso) => dateTimeFormat.format(new Date(iso));
export const formatTimestamp = (iso) => timestampFormat.format(new Date(iso)); // with seconds
export const formatUtcDay = (date) => utcDayFormat.format(date);
export const formatNumber = (n) => numberFormat.format(n);

// [unit, its length, from how far away it is used]
const UNITS = [
  ['year', 365 * DAY_MS, 365 * DAY_MS],
  ['month', 30 * DAY_MS, 60 * DAY_MS],
  ['day', DAY_MS, DAY_MS],
  ['hour', 60 * 60 * 1000, 60 * 60 * 1000],
  ['minute', 60 * 1000, 60 * 1000],
];

/** "3 days ago", "in 30 days", "just now". */
export function relativeTime(iso, now = Date.now()) {
  const diff = Date.parse(iso) - now;
  for (const [unit, length, from] of UNITS) {
    if (Math.abs(diff) >= from) return relativeFormat.format(Math.round(diff / length), unit);
  }
  return 'just now';
}

export function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

export function planName(plan) {
  return plan.charAt(0).toUpperCase() + plan.slice(1);
}
