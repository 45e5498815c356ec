// The per-day requests chart: an SVG drawn from scratch, one bar per UTC day of the
// billing period (days still to come are empty slots), each bar a stack of the day's
// outcomes (succeeded, refused, limited, other errors). It is drawn at the width it has on
// screen (its viewBox in CSS pixels), so its labels keep their 12 px on a phone: a narrower
// chart gets fewer day labels, not smaller ones. Redraw it when that width changes.

import { DAY_MS, formatNumber, formatUtcDay, plural } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const DEFAULT_WIDTH = 760; // if the container is not laid out (hidden)
const MIN_WIDTH = 280;
const MARGIN = { top: 18, right: 16, bottom: 34 }; // left: as wide as the longest count
const DIGIT_PX = 7; // about one digit of a 12 px label
const DAY_LABEL_PX = 60; // the room one day's label ("Nov 30", "Today") takes, with a gap

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const utcMidnight = (ms) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
};

/** The UTC days of the period [start, end), as epoch milliseconds at midnight. */
export function periodDays(periodStart, periodEnd) {
  const days = [];
  const last = utcMidnight(Date.parse(periodEnd) - 1);
  for (let day = utcMidnight(Date.parse(periodStart)); day <= last; day += DAY_MS) days.push(day);
  return days;
}

/** The outcome series, bottom of a bar first. `unrecorded` holds what the quota counted that
 * day beyond the outcomes on record (usage from before the request log, or the last second's
 * lines not written yet). */
export const SERIES = [
  { id: 'ok', label: 'Succeeded', text: () => 'succeeded' },
  { id: 'unrecorded', label: 'Outcome not recorded', text: () => 'without a recorded outcome' },
  { id: 'error', label: 'Other errors (404, 422, …)', text: (n) => (n === 1 ? 'other error' : 'other errors') },
  { id: 'refused', label: 'Refused (401, 403)', text: () => 'refused (401, 403)' },
  { id: 'limited', label: 'Limited (429)', text: () => 'limited (429)' },
];

const REFUSED = new Set([
  'invalid_key', 'key_revoked', 'key_expired', 'workspace_mismatch',
  'insufficient_scope', 'insufficient_role', 'plan_required', 'ip_not_allowed',
]);
const LIMITED = new Set(['quota_exceeded', 'rate_limited']);
// Refused before the quota counts a request (the key's checks), or not counted at all (429).
const NOT_COUNTED = new Set([
  'invalid_key', 'key_revoked', 'key_expired', 'workspace_mismatch', 'plan_required',
  'ip_not_allowed', 'quota_exceeded', 'rate_limited',
]);

/** The series an outcome code belongs to. */
export function seriesOf(code) {
  if (code === 'ok') return 'ok';
  if (REFUSED.has(code)) return 'refused';
  if (LIMITED.has(code)) return 'limited';
  return 'error';
}

/** A day's stack: {ok, unrecorded, error, refused, limited, total}. */
export function dayStack(day) {
  const stack = Object.fromEntries(SERIES.map((series) => [series.id, 0]));
  let counted = 0;
  for (const [code, n] of Object.entries(day.outcomes ?? {})) {
    stack[seriesOf(code)] += n;
    if (!NOT_COUNTED.has(code)) counted += n;
  }
  stack.unrecorded = Math.max(0, day.requests - counted);
  stack.total = SERIES.reduce((sum, series) => sum + stack[series.id], 0);
  return stack;
}

/** "10 succeeded, 2 refused (401, 403)": the non-zero series of a stack. */
export function stackText(stack) {
  return SERIES.filter((series) => stack[series.id] > 0)
    .map((series) => `${formatNumber(stack[series.id])} ${series.text(stack[series.id])}`)
    .join(', ');
}

/** A round step for about `count` gridlines up to `max`. */
function niceStep(max, count = 4) {
  const raw = Math.max(max, 1) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((f) => f * magnitude >= raw) * magnitude;
  return Math.max(1, step);
}

/**
 * Draw the chart into `container` (replacing what was there).
 * usage: {period_start, period_end, days: [{date: 'YYYY-MM-DD', requests, outcomes: {code: n}}]}
 * Returns {summary, totals}: the text that describes it, and each series' total.
 */
export function drawDailyChart(container, usage, keyLabel) {
  const width = container.clientWidth ? Math.max(MIN_WIDTH, Math.floor(container.clientWidth)) : DEFAULT_WIDTH;
  const height = Math.round(Math.min(320, Math.max(200, width * 0.3)));
  const counts = new Map(usage.days.map((d) => [Date.parse(`${d.date}T00:00:00Z`), d.requests]));
  const stacks = new Map(usage.days.map((d) => [Date.parse(`${d.date}T00:00:00Z`), dayStack(d)]));
  const days = periodDays(usage.period_start, usage.period_end);
  const today = utcMidnight(Date.now());
  const max = Math.max(0, ...[...stacks.values()].map((stack) => stack.total));
  const step = niceStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const left = Math.max(40, 14 + DIGIT_PX * formatNumber(top).length);
  const plotWidth = width - left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const slot = plotWidth / days.length;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  let busiest = null;
  for (const [day, n] of counts) if (n > 0 && (!busiest || n > busiest[1])) busiest = [day, n];
  const totals = Object.fromEntries(SERIES.map((series) => [series.id, 0]));
  for (const stack of stacks.values()) for (const series of SERIES) totals[series.id] += stack[series.id];
  const recorded = SERIES.some((series) => series.id !== 'unrecorded' && totals[series.id] > 0);
  const summary = `${plural(total, 'request', 'requests')} this period`
    + (busiest ? `; busiest day ${formatUtcDay(new Date(busiest[0]))} with ${formatNumber(busiest[1])}.` : '.')
    + (recorded ? ` By outcome: ${stackText(totals)}.` : '');

  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart-svg',
    role: 'img',
    'aria-labelledby': 'chart-svg-title',
    'aria-describedby': 'chart-svg-desc',
  });
  root.append(
    svg('title', { id: 'chart-svg-title' }, `Requests per day for ${keyLabel}`),
    svg('desc', { id: 'chart-svg-desc' }, summary),
  );

  const grid = svg('g', { class: 'chart-grid' });
  for (let value = 0; value <= top; value += step) {
    grid.append(
      svg('line', { x1: left, x2: width - MARGIN.right, y1: y(value), y2: y(value) }),
      svg('text', { x: left - 8, y: y(value) + 4, class: 'chart-y-label' }, formatNumber(value)),
    );
  }
  root.append(grid);

  const bars = svg('g', { class: 'chart-bars' });
  const labelEvery = Math.ceil(days.length / Math.max(2, Math.min(8, Math.floor(plotWidth / DAY_LABEL_PX))));
  const todayIndex = days.indexOf(today);
  const labelled = (index) => index === todayIndex || (index % labelEvery === 0
    && (todayIndex < 0 || Math.abs(index - todayIndex) * slot >= DAY_LABEL_PX * 1.2));
  // A label's centre, kept far enough from the right edge for the whole label to show.
  const labelX = (x) => Math.min(x + slot / 2, width - DAY_LABEL_PX / 2 + 6);
  days.forEach((day, index) => {
    const x = left + index * slot;
    const requests = counts.get(day) ?? 0;
    const future = day > today;
    if (!future) {
      const stack = stacks.get(day) ?? dayStack({ requests: 0 });
      const barHeight = stack.total ? Math.max(2, (stack.total / top) * plotHeight) : 0;
      const barX = x + slot * 0.18;
      const barWidth = Math.max(1, slot * 0.64);
      const iso = new Date(day).toISOString().slice(0, 10);
      const group = svg('g', { class: 'chart-day', 'data-day': iso });
      let base = MARGIN.top + plotHeight;
      for (const series of SERIES) {
        if (!stack[series.id]) continue;
        const segmentHeight = (stack[series.id] / stack.total) * barHeight;
        base -= segmentHeight;
        group.append(svg('rect', {
          x: barX, y: base, width: barWidth, height: segmentHeight,
          class: `chart-segment chart-series-${series.id}`,
          'data-series': series.id,
          'data-count': stack[series.id],
        }));
      }
      // The whole bar, over its segments: what the pointer hovers and tests measure.
      const bar = svg('rect', {
        x: barX,
        y: MARGIN.top + plotHeight - barHeight,
        width: barWidth,
        height: barHeight,
        rx: Math.min(3, slot * 0.2),
        class: day === today ? 'chart-bar chart-bar-today' : 'chart-bar',
        'data-day': iso,
        'data-requests': requests,
        'data-total': stack.total,
      });
      const breakdown = stackText(stack);
      bar.append(svg('title', {}, `${formatUtcDay(new Date(day))}: ${plural(requests, 'request', 'requests')}`
        + (breakdown && stack.unrecorded !== stack.total ? ` (${breakdown})` : '')));
      group.append(bar);
      bars.append(group);
    }
    if (labelled(index)) {
      const isToday = day === today;
      bars.append(svg('text', {
        x: labelX(x),
        y: height - MARGIN.bottom + 18,
        class: `chart-x-label${isToday ? ' chart-x-today' : ''}${future ? ' chart-x-future' : ''}`,
      }, isToday ? 'Today' : formatUtcDay(new Date(day))));
    }
  });
  root.append(bars);
  root.append(svg('line', {
    class: 'chart-axis',
    x1: left, x2: width - MARGIN.right,
    y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight,
  }));
  if (max === 0) {
    // One line where it fits (13 px text, about 290 px), else two.
    const lines = plotWidth >= 320 ? ['No requests with this key yet this period']
      : ['No requests with this key', ' yet this period'];
    const middle = MARGIN.top + plotHeight / 2 - (lines.length - 1) * 8;
    const empty = svg('text', { x: left + plotWidth / 2, y: middle, class: 'chart-empty' });
    lines.forEach((line, index) => empty.append(svg('tspan', { x: left + plotWidth / 2, dy: index ? '1.3em' : 0 }, line)));
    root.append(empty);
  }
  container.replaceChildren(root);
  return { summary, totals };
}
