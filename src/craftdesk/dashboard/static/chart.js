// The per-day requests chart: an SVG drawn from scratch, one bar per UTC day of the
// billing period (days still to come are empty slots). It is drawn at the width it has on
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

/** A round step for about `count` gridlines up to `max`. */
function niceStep(max, count = 4) {
  const raw = Math.max(max, 1) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((f) => f * magnitude >= raw) * magnitude;
  return Math.max(1, step);
}

/**
 * Draw the chart into `container` (replacing what was there).
 * usage: {period_start, period_end, days: [{date: 'YYYY-MM-DD', requests}]}
 */
export function drawDailyChart(container, usage, keyLabel) {
  const width = container.clientWidth ? Math.max(MIN_WIDTH, Math.floor(container.clientWidth)) : DEFAULT_WIDTH;
  const height = Math.round(Math.min(320, Math.max(200, width * 0.3)));
  const counts = new Map(usage.days.map((d) => [Date.parse(`${d.date}T00:00:00Z`), d.requests]));
  const days = periodDays(usage.period_start, usage.period_end);
  const today = utcMidnight(Date.now());
  const max = Math.max(0, ...counts.values());
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
  const summary = `${plural(total, 'request', 'requests')} this period`
    + (busiest ? `; busiest day ${formatUtcDay(new Date(busiest[0]))} with ${formatNumber(busiest[1])}.` : '.');

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
      const barHeight = requests ? Math.max(2, plotHeight - (y(requests) - MARGIN.top)) : 0;
      const bar = svg('rect', {
        x: x + slot * 0.18,
        y: MARGIN.top + plotHeight - barHeight,
        width: Math.max(1, slot * 0.64),
        height: barHeight,
        rx: Math.min(3, slot * 0.2),
        class: day === today ? 'chart-bar chart-bar-today' : 'chart-bar',
        'data-day': new Date(day).toISOString().slice(0, 10),
        'data-requests': requests,
      });
      bar.append(svg('title', {}, `${formatUtcDay(new Date(day))}: ${plural(requests, 'request', 'requests')}`));
      bars.append(bar);
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
  if (total === 0) {
    // One line where it fits (13 px text, about 290 px), else two.
    const lines = plotWidth >= 320 ? ['No requests with this key yet this period']
      : ['No requests with this key', ' yet this period'];
    const middle = MARGIN.top + plotHeight / 2 - (lines.length - 1) * 8;
    const empty = svg('text', { x: left + plotWidth / 2, y: middle, class: 'chart-empty' });
    lines.forEach((line, index) => empty.append(svg('tspan', { x: left + plotWidth / 2, dy: index ? '1.3em' : 0 }, line)));
    root.append(empty);
  }
  container.replaceChildren(root);
  return summary;
}
