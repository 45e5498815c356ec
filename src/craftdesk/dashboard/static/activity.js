// A key's Activity: its request log (GET /v1/api-keys/{id}/requests), newest first, in a
// dialog: filters by status and by code, "Older" pages on with the log's next_cursor.
// Lines reach the log about a second after their answer: Refresh reads it again.

import { api } from './api.js';
import { seriesOf } from './chart.js';
import { byId, el, say, show } from './dom.js';
import { formatDateTime, formatNumber, formatTimestamp, plural, relativeTime } from './format.js';

export class ActivityPanel {
  /**
   * app: {fail(error, alertNode?)}; returnFocus(keyId): where focus goes once it closes.
   */
  constructor(app, returnFocus) {
    this.app = app;
    this.returnFocus = returnFocus;
    this.key = null;
    this.cursor = null; // the next (older) page's cursor, null when there is none
    this.shown = 0;
    this.ticket = 0; // a later load wins over an earlier one still on its way
    this.loadingOlder = false;
    this.applied = ''; // the query of the lines shown, without a cursor
    this.dialog = byId('activity-dialog');
    for (const button of this.dialog.querySelectorAll('[data-close]')) {
      button.addEventListener('click', () => this.dialog.close());
    }
    this.dialog.addEventListener('close', () => {
      const keyId = this.key?.id;
      this.key = null;
      this.ticket += 1;
      if (keyId !== undefined) this.returnFocus(keyId);
    });
    byId('activity-filters').addEventListener('submit', (event) => {
      event.preventDefault();
      this.load();
    });
    byId('activity-limit').addEventListener('change', () => this.load());
    byId('activity-clear').addEventListener('click', () => {
      byId('activity-status').value = '';
      byId('activity-code').value = '';
      this.load();
    });
    byId('activity-refresh').addEventListener('click', () => this.load());
    byId('activity-older').addEventListener('click', async () => {
      if (this.loadingOlder) return; // (not disabled: a disabled button would lose the focus)
      this.loadingOlder = true;
      try {
        await this.load({ older: true });
      } finally {
        this.loadingOlder = false;
      }
    });
  }

  async open(key) {
    this.key = key;
    byId('activity-title').textContent = `Activity of “${key.name}”`;
    byId('activity-key').replaceChildren(...keyFacts(key));
    byId('activity-filters').reset();
    // Not the lines of the key shown before while this one's load.
    byId('activity-lines').replaceChildren();
    for (const id of ['activity-table', 'activity-empty', 'activity-older']) show(byId(id), false);
    byId('activity-summary').textContent = 'Loading…';
    this.dialog.showModal();
    byId('activity-status').focus();
    await this.load();
  }

  clear() {
    this.key = null; // signed out: no focus to return
    if (this.dialog.open) this.dialog.close();
    byId('activity-lines').replaceChildren();
  }

  /** The filters as the API takes them: `status` and `code`, only those filled in. */
  query() {
    const query = new URLSearchParams({ limit: byId('activity-limit').value });
    const status = byId('activity-status').value.trim();
    const code = byId('activity-code').value.trim();
    if (status) query.set('status', status);
    if (code) query.set('code', code);
    return query;
  }

  /** The newest page (filters changed, Refresh), or the page older than those shown. */
  async load({ older = false } = {}) {
    const key = this.key;
    if (!key) return;
    // Older pages keep the filters of the lines shown, whatever the fields say by now.
    const query = older ? new URLSearchParams(this.applied) : this.query();
    if (!older) this.applied = query.toString();
    if (older && this.cursor) query.set('cursor', this.cursor);
    const ticket = ++this.ticket;
    const error = byId('activity-error');
    say(error, '');
    this.dialog.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await api('GET', `/v1/api-keys/${key.id}/requests?${query}`);
    } catch (err) {
      if (ticket === this.ticket) {
        this.app.fail(err, error);
        this.dialog.removeAttribute('aria-busy');
      }
      return;
    }
    if (ticket !== this.ticket) return;
    this.dialog.removeAttribute('aria-busy');
    const rows = this.display(page.data, page.next_cursor, { older, query });
    // Older pressed on the last page: its button goes, so focus goes to the first line it added.
    if (older && !this.cursor && rows.length) rows[0].focus();
  }

  /** Put the lines on screen (after those shown, for an older page), and say what they are. */
  display(lines, cursor, { older, query }) {
    const body = byId('activity-lines');
    const rows = lines.map((line) => lineRow(line));
    if (older) body.append(...rows);
    else body.replaceChildren(...rows);
    this.shown = (older ? this.shown : 0) + rows.length;
    this.cursor = cursor;

    const filtered = query.has('status') || query.has('code');
    show(byId('activity-table'), this.shown > 0);
    const empty = byId('activity-empty');
    empty.textContent = filtered
      ? 'No requests match these filters.'
      : 'No requests with this key yet (the log keeps 30 days).';
    show(empty, this.shown === 0);
    show(byId('activity-older'), Boolean(this.cursor));
    byId('activity-summary').textContent = this.shown === 0 ? ''
      : `${plural(this.shown, 'request', 'requests')}${filtered ? ` ${filterText(query)}` : ''}, `
        + `newest first${this.cursor ? '; older ones follow' : ''}.`;
    return rows;
  }
}

function filterText(query) {
  const parts = [];
  if (query.has('status')) parts.push(`status ${query.get('status')}`);
  if (query.has('code')) parts.push(`code ${query.get('code')}`);
  return `with ${parts.join(' and ')}`;
}

/** The key, and where and with what it was last used (as coarse as last_used_at). */
function keyFacts(key) {
  const fact = (term, ...value) => el('div', { class: 'activity-fact' }, el('dt', {}, term), el('dd', {}, ...value));
  const facts = [fact('Key', el('code', {}, `${key.prefix}…${key.last_four}`))];
  if (!key.last_used_at) {
    facts.push(fact('Last used', 'never'));
    return facts;
  }
  facts.push(fact('Last used', el('time', { datetime: key.last_used_at, title: formatDateTime(key.last_used_at) },
    relativeTime(key.last_used_at))));
  facts.push(fact('Last IP', key.last_used_ip ?? '—'));
  facts.push(fact('Last user agent', key.last_used_user_agent
    ? el('span', { class: 'activity-agent-full' }, key.last_used_user_agent)
    : '—'));
  return facts;
}

/** One line of the log. The user agent is cut to one line on screen; its full text is the
 * cell's text (for screen readers and copying) and its tooltip. */
function lineRow(line) {
  const cell = (label, className, ...content) => el('td', { class: className, dataset: { label } }, ...content);
  const agent = line.user_agent
    ? el('span', { class: 'user-agent', title: line.user_agent }, line.user_agent)
    : el('span', { class: 'muted' }, '—');
  return el('tr', { tabindex: -1, class: `outcome-${seriesOf(line.code)}`, dataset: { requestId: line.request_id } },
    cell('Time', 'line-time',
      el('time', { datetime: line.at, title: line.at }, formatTimestamp(line.at)),
      el('span', { class: 'cell-note' }, `${formatNumber(Math.round(line.duration_ms * 10) / 10)} ms`)),
    cell('Method', 'line-method', line.method),
    cell('Path', 'line-path', el('code', {}, line.path)),
    cell('Status', 'line-status num', String(line.status)),
    cell('Code', 'line-code', el('span', { class: `outcome outcome-${seriesOf(line.code)}` }, line.code)),
    cell('IP', 'line-ip', line.ip ?? '—'),
    cell('User agent', 'line-agent', agent),
    cell('Request id', 'line-request-id', el('code', {}, line.request_id)),
  );
}
