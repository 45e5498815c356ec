// Usage: the workspace's plan, quota, used, remaining and reset date, and the per-day
// chart of one key at a time: its requests, stacked by outcome, with a legend.

import { api } from './api.js';
import { drawDailyChart, SERIES } from './chart.js';
import { byId, el } from './dom.js';
import { formatDate, formatDateTime, formatNumber, formatUtcDay, planName, relativeTime } from './format.js';

export class UsagePanel {
  constructor(app) {
    this.app = app;
    this.keys = [];
    this.selected = null;
    this.drawing = 0;
    this.drawn = null; // {usage, name, width} of the chart on screen
    byId('chart-key').addEventListener('change', (event) => this.select(Number(event.target.value)));
    // The chart is drawn at its width on screen: draw it again when that changes (on the
    // next frame, not inside the observer, which would see its own change of height).
    const canvas = byId('chart-canvas');
    new ResizeObserver(() => requestAnimationFrame(() => {
      if (this.drawn && canvas.clientWidth !== this.drawn.width) this.draw(this.drawn.usage, this.drawn.name);
    })).observe(canvas);
  }

  draw(usage, name) {
    const canvas = byId('chart-canvas');
    const drawn = drawDailyChart(canvas, usage, name);
    this.drawn = { usage, name, width: canvas.clientWidth };
    return drawn;
  }

  async load() {
    const usage = await api('GET', '/v1/usage');
    byId('usage-plan').textContent = planName(usage.plan);
    byId('usage-quota').textContent = formatNumber(usage.quota);
    byId('usage-used').textContent = formatNumber(usage.used);
    byId('usage-remaining').textContent = formatNumber(usage.remaining);
    const reset = byId('usage-reset');
    reset.replaceChildren(
      el('time', { datetime: usage.period_end, title: formatDateTime(usage.period_end) }, formatDate(usage.period_end)),
      el('span', { class: 'stat-note' }, relativeTime(usage.period_end)),
    );
    byId('usage-period').textContent = `Billing period ${formatDate(usage.period_start)} – ${formatDate(usage.period_end)}`;
    const share = usage.quota ? Math.min(1, usage.used / usage.quota) : 1;
    const meter = byId('usage-meter');
    meter.value = share;
    meter.classList.toggle('is-high', share >= 0.8);
    byId('usage-percent').textContent = `${(share * 100).toFixed(share < 0.1 && share > 0 ? 1 : 0)}%`;
  }

  /** The keys the chart can show; keeps the current choice, else the busiest key. */
  async setKeys(keys) {
    this.keys = keys;
    const picker = byId('chart-key');
    picker.replaceChildren(...keys.map((key) => el('option', { value: key.id },
      `${key.name} (${key.prefix}…${key.last_four})${key.status === 'revoked' ? ' · revoked' : ''}`)));
    picker.disabled = keys.length === 0;
    if (!keys.length) {
      this.selected = null;
      this.drawn = null;
      byId('chart-canvas').replaceChildren(el('p', { class: 'empty' }, 'Generate a key to see its requests here.'));
      byId('chart-caption').textContent = '';
      byId('chart-legend').replaceChildren();
      byId('chart-table-body').replaceChildren();
      return;
    }
    const keep = keys.find((key) => key.id === this.selected);
    const busiest = keys.reduce((a, b) => (b.requests_this_period > a.requests_this_period ? b : a));
    await this.select((keep ?? busiest).id);
  }

  /** From a key's "Usage" button: show its chart and move there. */
  async showKey(keyId) {
    await this.select(keyId);
    byId('usage-section').scrollIntoView({ block: 'start' });
    byId('chart-key').focus();
  }

  async select(keyId) {
    const key = this.keys.find((k) => k.id === keyId);
    if (!key) return;
    this.selected = keyId;
    byId('chart-key').value = String(keyId);
    const ticket = ++this.drawing;
    let usage;
    try {
      usage = await api('GET', `/v1/api-keys/${keyId}/usage`);
    } catch (err) {
      this.app.fail(err);
      return;
    }
    if (ticket !== this.drawing) return; // a later choice won
    const { summary, totals } = this.draw(usage, key.name);
    byId('chart-caption').textContent = `“${key.name}”: ${summary} Days are UTC.`;
    // The series the period has, each with its colour (as in the bars) and its total.
    byId('chart-legend').replaceChildren(...SERIES.filter((series) => totals[series.id] > 0).map((series) => el('li',
      { class: 'chart-legend-item', dataset: { series: series.id } },
      el('span', { class: `chart-swatch chart-series-${series.id}`, 'aria-hidden': 'true' }),
      el('span', {}, series.label),
      el('span', { class: 'chart-legend-count' }, formatNumber(totals[series.id])))));
    byId('chart-table-body').replaceChildren(...usage.days.map((day) => el('tr', {},
      el('td', {}, formatUtcDay(new Date(`${day.date}T00:00:00Z`))),
      el('td', { class: 'num' }, formatNumber(day.requests)),
      el('td', { class: 'daily-outcomes' }, outcomesText(day.outcomes)))));
  }

  clear() {
    this.keys = [];
    this.selected = null;
    this.drawn = null;
    byId('chart-key').replaceChildren();
    byId('chart-canvas').replaceChildren();
    byId('chart-legend').replaceChildren();
    byId('chart-table-body').replaceChildren();
  }
}

/** "ok 10, not_found 2": a day's outcome codes, the most frequent first; none: "—". */
function outcomesText(outcomes) {
  const codes = Object.entries(outcomes ?? {}).sort(([a, m], [b, n]) => n - m || a.localeCompare(b));
  return codes.length ? codes.map(([code, n]) => `${code} ${formatNumber(n)}`).join(', ') : '—';
}
