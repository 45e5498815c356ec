// Settings → Integrations → API Keys: the keys table and its actions (generate, rename,
// rotate, revoke, the request log), its alerts and "unused" filter, and the dialog that
// shows a new key once.

import { ActivityPanel } from './activity.js';
import { api, listAll } from './api.js';
import { byId, el, say, show } from './dom.js';
import { DAY_MS, formatDate, formatDateTime, formatNumber, planName, plural, relativeTime } from './format.js';

const SCOPE_LABELS = { full: 'Full Access', read_only: 'Read-Only', custom: 'Custom' };
const RESOURCES = ['projects', 'tasks', 'members'];
const EXPIRES_SOON_MS = 7 * DAY_MS;
const ROTATE_AFTER_DAYS = 90;

/** What the status column shows: the server's status, plus "expires soon" within 7 days. */
export function keyStatus(key, now = Date.now()) {
  if (key.status === 'revoked') return { id: 'revoked', label: 'Revoked' };
  if (key.status === 'expired') return { id: 'expired', label: 'Expired' };
  if (key.expires_at && Date.parse(key.expires_at) - now <= EXPIRES_SOON_MS) {
    return { id: 'expires-soon', label: 'Expires soon' };
  }
  return { id: 'active', label: 'Active' };
}

/** Why a key was revoked, where it says more than "Revoked": found in public (GitHub's secret
 * scanning, with the URL it was found at) or its member's removal. */
function revokedReason(key) {
  if (key.revoked_reason === 'leaked') {
    const note = el('span', { class: 'cell-note revoked-reason revoked-leaked' }, 'Revoked automatically: found in public');
    if (key.leaked_url) note.append(' at ', leakedUrl(key.leaked_url));
    return note;
  }
  if (key.revoked_reason === 'member_removed') {
    return el('span', { class: 'cell-note revoked-reason' }, 'Revoked: member removed');
  }
  return null;
}

/** The URL as text; a link only when it is http(s) (never javascript:, data: and the like). */
function leakedUrl(url) {
  let web = false;
  try {
    web = ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {
    web = false;
  }
  if (!web) return el('span', { class: 'leaked-url' }, url);
  return el('a', { class: 'leaked-url', href: url, rel: 'noopener noreferrer nofollow', target: '_blank' }, url);
}

/** Each alert's badge: a short reason; the server's `detail` says the rest. */
const ALERT_LABELS = {
  new_ip: 'New IP',
  failing: 'Failing',
  revoked_in_use: 'Revoked key in use',
  unused: 'Unused 30 days',
};

const isUnused = (key) => key.alerts?.some((alert) => alert.kind === 'unused');

const ageInDays = (key, now = Date.now()) => Math.floor((now - Date.parse(key.created_at)) / DAY_MS);
const keyLabel = (key) => `${key.prefix}…${key.last_four}`;

export class KeysPage {
  /**
   * app: {session(): the signed-in session, reloadAll(): Promise, notify(message),
   *       fail(error, alertNode?), showChart(keyId)}
   */
  constructor(app) {
    this.app = app;
    this.keys = [];
    this.projects = null;
    this.pending = null; // the key the rotate or revoke dialog is about
    this.revealedFor = null; // the id of the key whose secret the reveal dialog shows
    this.activity = new ActivityPanel(app, (keyId) => this.focusAction(keyId, 'activity'));

    this.generateDialog = byId('generate-dialog');
    this.revealDialog = byId('reveal-dialog');
    this.revokeDialog = byId('revoke-dialog');
    this.rotateDialog = byId('rotate-dialog');

    for (const dialog of [this.generateDialog, this.revokeDialog, this.rotateDialog]) {
      for (const button of dialog.querySelectorAll('[data-close]')) {
        button.addEventListener('click', () => dialog.close());
      }
    }
    byId('generate-open').addEventListener('click', () => this.openGenerate());
    byId('generate-form').addEventListener('submit', (event) => this.submitGenerate(event));
    byId('generate-form').addEventListener('change', () => this.syncGenerateForm());
    byId('revoke-form').addEventListener('submit', (event) => this.submitRevoke(event));
    byId('rotate-form').addEventListener('submit', (event) => this.submitRotate(event));
    // The key leaves the page as the dialog is dismissed (Done or Escape), not a task later.
    byId('reveal-done').addEventListener('click', () => {
      this.forgetRevealedKey();
      this.revealDialog.close();
    });
    this.revealDialog.addEventListener('cancel', () => this.forgetRevealedKey());
    byId('keys-unused').addEventListener('change', () => this.render());
    this.revealDialog.addEventListener('close', () => {
      this.forgetRevealedKey();
      this.focusAction(this.revealedFor, 'rename');
      this.revealedFor = null;
    });
  }

  // ---- the table -------------------------------------------------------------------

  async load() {
    this.keys = await listAll('/v1/api-keys');
    if (this.projects === null && this.keys.some((key) => key.project_ids?.length)) {
      this.projects = await listAll('/v1/dashboard/projects');
    }
    this.render();
    return this.keys;
  }

  clear() {
    this.keys = [];
    this.projects = null;
    byId('keys-body').replaceChildren();
    byId('keys-unused').checked = false;
    for (const dialog of [this.generateDialog, this.revokeDialog, this.rotateDialog, this.revealDialog]) {
      if (dialog.open) dialog.close();
    }
    this.activity.clear();
  }

  get managesWorkspace() {
    return ['owner', 'admin'].includes(this.app.session().role);
  }

  render() {
    const manager = this.managesWorkspace;
    byId('keys-table').classList.toggle('hide-creator', !manager);
    byId('keys-visibility').textContent = manager
      ? 'As an owner or admin, you see every key of this workspace and who created it.'
      : 'You see the keys you created.';
    // Re-rendering replaces the rows: keep the keyboard focus on the same key's same button.
    const focused = document.activeElement?.closest('#keys-body [data-action]');
    const [keyId, action] = [focused?.closest('tr')?.dataset.keyId, focused?.dataset.action];
    // "Unused for 30 days": only the keys with an `unused` alert.
    const onlyUnused = byId('keys-unused').checked;
    const shown = onlyUnused ? this.keys.filter(isUnused) : this.keys;
    byId('keys-body').replaceChildren(...shown.map((key) => this.row(key)));
    if (focused) this.focusAction(keyId, action);
    show(byId('keys-filters'), this.keys.length > 0);
    byId('keys-unused-count').textContent = `(${formatNumber(this.keys.filter(isUnused).length)})`;
    show(byId('keys-empty'), this.keys.length === 0);
    show(byId('keys-none-unused'), this.keys.length > 0 && shown.length === 0);
    show(byId('keys-table'), shown.length > 0);
  }

  row(key) {
    const status = keyStatus(key);
    const age = ageInDays(key);
    const needsRotation = age > ROTATE_AFTER_DAYS && status.id !== 'revoked' && status.id !== 'expired';

    const created = el('td', { class: 'cell-created', dataset: { label: 'Created' } },
      el('time', { datetime: key.created_at, title: formatDateTime(key.created_at) }, formatDate(key.created_at)));
    if (needsRotation) {
      created.append(
        el('span', { class: 'cell-note' }, `${age} days old`),
        el('span', {
          class: 'badge badge-age',
          title: `Regenerate keys every ${ROTATE_AFTER_DAYS} days: rotate this one.`,
        }, 'Rotate regularly'),
      );
    }

    const lastUsed = key.last_used_at
      ? el('time', { datetime: key.last_used_at, title: lastUsedTitle(key) }, relativeTime(key.last_used_at))
      : el('span', { class: 'muted' }, 'never');
    const activity = iconButton(`Activity of ${key.name}`, 'Activity: the key’s request log', 'activity', LIST);
    activity.addEventListener('click', () => this.activity.open(key));

    const statusCell = el('td', { class: 'cell-status', dataset: { label: 'Status' } },
      el('span', { class: `badge badge-${status.id}` }, status.label));
    if (key.status === 'revoked' && key.revoked_at) {
      statusCell.append(el('span', { class: 'cell-note' }, `on ${formatDate(key.revoked_at)}`));
      const why = revokedReason(key);
      if (why) statusCell.append(why);
    } else if (key.expires_at) {
      const past = Date.parse(key.expires_at) <= Date.now();
      statusCell.append(el('span', { class: 'cell-note', title: formatDateTime(key.expires_at) },
        `${past ? 'expired' : 'expires'} ${relativeTime(key.expires_at)}`));
    }
    if (key.alerts?.length) statusCell.append(alertBadges(key));

    return el('tr', { dataset: { keyId: key.id }, class: `status-${status.id}` },
      el('td', { class: 'cell-name' }, this.nameCell(key)),
      el('td', { class: 'cell-scope', dataset: { label: 'Scope' } }, this.scopeCell(key)),
      el('td', { class: 'col-creator', dataset: { label: 'Created by' } }, breakableEmail(key.created_by.email)),
      created,
      el('td', { class: 'cell-last-used', dataset: { label: 'Last used' } },
        el('span', { class: 'last-used' }, lastUsed, activity)),
      el('td', { class: 'num cell-requests', dataset: { label: 'Requests this period' } }, this.requestsCell(key)),
      statusCell,
      el('td', { class: 'cell-actions' }, this.actions(key, status)),
    );
  }

  scopeCell(key) {
    const parts = [el('span', { class: `scope scope-${key.scope}` }, SCOPE_LABELS[key.scope] ?? key.scope)];
    if (key.scope === 'custom') {
      const access = RESOURCES.map((r) => `${r} ${key.permissions[r]}`).join(' · ');
      parts.push(el('span', { class: 'cell-note' }, access));
      if (key.project_ids?.length) {
        const names = key.project_ids.map((id) => this.projectName(id));
        parts.push(el('span', { class: 'cell-note' }, `only ${names.join(', ')}`));
      }
    }
    parts.push(this.controlsSummary(key));
    return parts;
  }

  /** The name (with its rename button), and the key as shown: prefix and last 4 characters. */
  nameCell(key) {
    const rename = iconButton(`Rename ${key.name}`, 'Rename', 'rename', PENCIL);
    rename.addEventListener('click', () => this.startRename(key));
    return [
      el('span', { class: 'name-line' }, el('span', { class: 'key-name' }, key.name), rename),
      el('code', { class: 'key-prefix', title: 'The key’s prefix and last 4 characters' }, keyLabel(key)),
    ];
  }

  requestsCell(key) {
    const chart = iconButton(`Usage chart of ${key.name}`, 'Show the usage chart', 'usage', BARS);
    chart.addEventListener('click', () => this.app.showChart(key.id));
    return el('span', { class: 'requests' }, el('span', {}, formatNumber(key.requests_this_period)), chart);
  }

  projectName(id) {
    return this.projects?.find((p) => p.id === id)?.name ?? `project ${id}`;
  }

  actions(key, status) {
    const button = (label, action, handler, extraClass = '') => {
      const node = el('button', {
        type: 'button',
        class: `btn btn-small ${extraClass}`,
        'aria-label': `${label} ${key.name}`,
        dataset: { action },
      }, label);
      node.addEventListener('click', () => handler(node));
      return node;
    };
    const buttons = [];
    // Only a key's creator rotates it (the new key acts as them); others may revoke it.
    const session = this.app.session();
    const rotatable = key.created_by.id === session.user.id
      && (key.scope !== 'custom' || session.workspace.plan === 'business');
    if (rotatable && (status.id === 'active' || status.id === 'expires-soon')) {
      buttons.push(button('Rotate', 'rotate', () => this.openRotate(key)));
    }
    if (status.id !== 'revoked') {
      buttons.push(button('Revoke', 'revoke', () => this.openRevoke(key), 'btn-danger-quiet'));
    }
    return el('div', { class: 'actions' }, buttons);
  }

  rowOf(keyId) {
    return byId('keys-body').querySelector(`tr[data-key-id="${Number(keyId)}"]`);
  }

  focusAction(keyId, action) {
    const target = this.rowOf(keyId)?.querySelector(`[data-action="${action}"]`);
    (target ?? byId('generate-open')).focus();
  }

  // ---- rename, inline ------------------------------------------------------------------

  startRename(key) {
    const cell = this.rowOf(key.id).querySelector('.cell-name');
    const inputId = `rename-${key.id}`;
    const input = el('input', {
      id: inputId, type: 'text', required: true, maxlength: 100, autocomplete: 'off', value: key.name,
    });
    const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
    const cancel = el('button', { type: 'button', class: 'btn btn-small' }, 'Cancel');
    const form = el('form', { class: 'rename-form' },
      el('label', { for: inputId, class: 'visually-hidden' }, `New name for ${key.name}`),
      input,
      el('div', { class: 'rename-buttons' },
        el('button', { type: 'submit', class: 'btn btn-small btn-primary' }, 'Save'),
        cancel),
      error,
    );
    const stop = () => {
      cell.replaceChildren(...this.nameCell(key));
      this.focusAction(key.id, 'rename');
    };
    cancel.addEventListener('click', stop);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        stop();
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (!name) return;
      try {
        await api('PATCH', `/v1/api-keys/${key.id}`, { name });
      } catch (err) {
        this.app.fail(err, error);
        return;
      }
      await this.app.reloadAll();
      this.app.notify(`Key renamed to “${name}”.`);
      this.focusAction(key.id, 'rename');
    });
    cell.replaceChildren(form);
    input.focus();
    input.select();
  }

  // ---- allowed IPs and rate limit, inline -------------------------------------------------

  /** Where the key may be used from and how often, with the button that edits both. */
  controlsSummary(key) {
    const ips = key.allowed_ips?.length
      ? el('span', { class: 'controls-ips', title: key.allowed_ips.join(', ') }, 'IPs: ', rangeList(key.allowed_ips))
      : el('span', { class: 'controls-ips' }, 'Any IP');
    const limit = key.rate_limit && el('span', {
      class: 'controls-limit',
      title: `At most ${rateLimitText(key.rate_limit)}`,
    }, `Limit: ${formatNumber(key.rate_limit.requests)} / ${formatNumber(key.rate_limit.per_seconds)}\u00a0s`);
    const status = keyStatus(key);
    if (status.id !== 'revoked' && status.id !== 'expired') {
      const edit = iconButton(`Restrict ${key.name}`, 'Allowed IPs and rate limit', 'restrict', SHIELD);
      edit.setAttribute('aria-expanded', 'false');
      edit.addEventListener('click', () => this.startRestrict(key));
      (limit || ips).append(' ', edit); // at the end of the last line
    }
    return el('div', { class: 'key-controls' }, ips, limit);
  }

  /** The allowed IPs and rate limit form, in a row of its own below the key's. */
  startRestrict(key) {
    const open = byId(`controls-${key.id}`);
    if (open) {
      open.querySelector('textarea').focus();
      return;
    }
    const row = this.rowOf(key.id);
    const button = row.querySelector('[data-action="restrict"]');
    const id = (part) => `controls-${key.id}-${part}`;
    const ips = el('textarea', {
      id: id('ips'), rows: Math.min(8, Math.max(2, (key.allowed_ips?.length ?? 0) + 1)),
      autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: '203.0.113.0/24',
      'aria-describedby': id('ips-hint'),
    }, (key.allowed_ips ?? []).join('\n'));
    const number = (part, max, value) => el('input', {
      id: id(part), type: 'number', min: 1, max, step: 1, inputmode: 'numeric', value,
      'aria-labelledby': id(`${part}-word`), 'aria-describedby': id('rate-hint'),
    });
    const requests = number('requests', 1000000, key.rate_limit?.requests);
    const seconds = number('seconds', 86400, key.rate_limit?.per_seconds);
    const error = el('p', { class: 'form-error', role: 'alert', hidden: true });
    const cancel = el('button', { type: 'button', class: 'btn btn-small' }, 'Cancel');
    const form = el('form', { class: 'controls-form', 'aria-label': `Allowed IPs and rate limit of ${key.name}` },
      el('div', { class: 'controls-field' },
        el('label', { for: id('ips') }, 'Allowed IPs', el('span', { class: 'visually-hidden' }, ` of ${key.name}`)),
        ips,
        el('p', { id: id('ips-hint'), class: 'hint' },
          'One address or range a line, or separated by commas, e.g. ', el('code', {}, '203.0.113.0/24'),
          '. Empty: any IP.')),
      el('fieldset', { class: 'controls-field' },
        el('legend', {}, 'Rate limit'),
        el('div', { class: 'rate-line' },
          el('span', {}, 'At most'), requests, el('span', { id: id('requests-word') }, 'requests'),
          el('span', {}, 'per'), seconds, el('span', { id: id('seconds-word') }, 'seconds')),
        el('p', { id: id('rate-hint'), class: 'hint' }, 'Both empty: no limit.')),
      error,
      el('div', { class: 'rename-buttons' },
        el('button', { type: 'submit', class: 'btn btn-small btn-primary' }, 'Save'),
        cancel),
    );
    const formRow = el('tr', { id: `controls-${key.id}`, class: 'controls-row' },
      el('td', { colspan: row.cells.length }, form));
    const stop = () => {
      formRow.remove();
      button.setAttribute('aria-expanded', 'false');
      this.focusAction(key.id, 'restrict');
    };
    cancel.addEventListener('click', stop);
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        stop();
      }
    });
    let saving = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (saving) return;
      let body;
      try {
        // Both always sent: an emptied field clears what the key had.
        body = { allowed_ips: parseRanges(ips.value), rate_limit: readRateLimit(requests, seconds) };
      } catch (err) {
        say(error, err.message);
        return;
      }
      saving = true;
      let updated;
      try {
        updated = await api('PATCH', `/v1/api-keys/${key.id}`, body);
      } catch (err) {
        this.app.fail(err, error);
        return;
      } finally {
        saving = false;
      }
      await this.app.reloadAll();
      this.app.notify(controlsNotice(updated));
      this.focusAction(key.id, 'restrict');
    });
    row.after(formRow);
    button.setAttribute('aria-expanded', 'true');
    button.setAttribute('aria-controls', formRow.id);
    ips.focus();
  }

  // ---- generate ------------------------------------------------------------------------

  async openGenerate() {
    const form = byId('generate-form');
    form.reset();
    say(byId('generate-error'), '');
    const session = this.app.session();
    const business = session.workspace.plan === 'business';
    const custom = byId('scope-custom');
    custom.disabled = !business;
    byId('scope-custom-choice').classList.toggle('is-disabled', !business);
    byId('scope-custom-hint').textContent = business
      ? 'Restrict the key to resource types and projects.'
      : `Available on the Business plan only. This workspace is on the ${planName(session.workspace.plan)} plan.`;
    byId('key-expiry-date').min = isoDate(Date.now() + DAY_MS);
    this.syncGenerateForm();
    this.generateDialog.showModal();
    byId('key-name').focus();
    if (business) await this.loadProjects();
  }

  /** The project picker, read afresh each time the dialog opens. */
  async loadProjects() {
    const list = byId('project-list');
    list.replaceChildren(el('p', { class: 'hint' }, 'Loading projects…'));
    try {
      this.projects = await listAll('/v1/dashboard/projects');
    } catch (err) {
      this.app.fail(err, byId('generate-error'));
      return;
    }
    list.replaceChildren(...(this.projects.length
      ? this.projects.map((project) => el('label', { class: 'choice choice-compact' },
        el('input', { type: 'checkbox', name: 'project', value: project.id }),
        el('span', {}, project.name)))
      : [el('p', { class: 'hint' }, 'This workspace has no projects yet.')]));
    this.syncGenerateForm();
  }

  syncGenerateForm() {
    const form = byId('generate-form');
    const custom = form.elements.scope.value === 'custom';
    show(byId('custom-fields'), custom);
    const some = form.elements['project-limit'].value === 'some';
    for (const box of byId('project-list').querySelectorAll('input[type=checkbox]')) box.disabled = !some;
    const onDate = byId('key-expiry').value === 'date';
    show(byId('expiry-date-field'), onDate);
    byId('key-expiry-date').required = onDate;
  }

  generateBody() {
    const form = byId('generate-form');
    const body = { name: byId('key-name').value.trim(), scope: form.elements.scope.value };
    if (body.scope === 'custom') {
      body.permissions = Object.fromEntries(RESOURCES.map((r) => [r, byId(`access-${r}`).value]));
      if (RESOURCES.every((r) => body.permissions[r] === 'none')) {
        throw new Error('Give the key read or write access to at least one resource type.');
      }
      if (form.elements['project-limit'].value === 'some') {
        body.project_ids = [...byId('project-list').querySelectorAll('input:checked')].map((box) => Number(box.value));
        if (!body.project_ids.length) throw new Error('Choose at least one project, or allow all projects.');
      }
    }
    const expiry = byId('key-expiry').value;
    if (expiry === 'date') {
      const end = new Date(`${byId('key-expiry-date').value}T23:59:59`);
      if (!(end > new Date())) throw new Error('Choose an expiry date in the future.');
      body.expires_at = end.toISOString();
    } else if (expiry) {
      body.expires_at = new Date(Date.now() + Number(expiry) * DAY_MS).toISOString();
    }
    // Sent only when filled in: left out, the key works from any IP, without a rate limit.
    const allowedIps = parseRanges(byId('key-allowed-ips').value);
    if (allowedIps) body.allowed_ips = allowedIps;
    const rateLimit = readRateLimit(byId('key-rate-requests'), byId('key-rate-seconds'));
    if (rateLimit) body.rate_limit = rateLimit;
    return body;
  }

  async submitGenerate(event) {
    event.preventDefault();
    const errorNode = byId('generate-error');
    let body;
    try {
      body = this.generateBody();
    } catch (err) {
      say(errorNode, err.message);
      return;
    }
    const submit = byId('generate-submit');
    submit.disabled = true;
    let created;
    try {
      created = await api('POST', '/v1/api-keys', body);
    } catch (err) {
      this.app.fail(err, errorNode);
      return;
    } finally {
      submit.disabled = false;
    }
    this.generateDialog.close();
    await this.app.reloadAll();
    this.reveal(created.key, `“${created.name}” (${keyLabel(created)}) is ready to use.`, created.id);
    delete created.key;
  }

  // ---- the new key, shown once -----------------------------------------------------------

  reveal(secret, note, keyId) {
    const slot = byId('reveal-slot');
    const value = el('code', { id: 'new-key', class: 'secret-value' }, secret);
    const copy = el('button', { type: 'button', class: 'btn', id: 'copy-key', 'aria-label': 'Copy API key' }, 'Copy');
    const status = el('span', { id: 'copy-status', class: 'copy-status', role: 'status' });
    copy.addEventListener('click', async () => {
      const copied = await copyText(value);
      status.textContent = copied ? 'Copied to the clipboard.' : 'Copy failed: select the key and copy it by hand.';
      if (copied) copy.textContent = 'Copied';
    });
    slot.replaceChildren(
      el('p', { class: 'secret-label', id: 'secret-label' }, 'API key'),
      el('div', { class: 'secret', role: 'group', 'aria-labelledby': 'secret-label' }, value, copy),
      status,
    );
    byId('reveal-note').textContent = note;
    this.revealedFor = keyId;
    this.revealDialog.showModal();
    copy.focus();
  }

  /** On dismissal the key leaves the page for good: its nodes are removed, nothing kept. */
  forgetRevealedKey() {
    byId('reveal-slot').replaceChildren();
    byId('reveal-note').textContent = '';
  }

  // ---- revoke ----------------------------------------------------------------------------

  openRevoke(key) {
    this.pending = key;
    byId('revoke-title').textContent = `Revoke “${key.name}”?`;
    byId('revoke-text').textContent = `${keyLabel(key)} stops working at once: integrations using it `
      + 'will get 401 Unauthorized from their next request on. This cannot be undone.';
    say(byId('revoke-error'), '');
    this.revokeDialog.showModal();
    byId('revoke-confirm').focus();
  }

  async submitRevoke(event) {
    event.preventDefault();
    const key = this.pending;
    try {
      await api('DELETE', `/v1/api-keys/${key.id}`);
    } catch (err) {
      this.app.fail(err, byId('revoke-error'));
      return;
    }
    this.revokeDialog.close();
    await this.app.reloadAll();
    this.app.notify(`“${key.name}” was revoked. Requests with it now get 401 Unauthorized.`);
    this.focusAction(key.id, 'rename');
  }

  // ---- rotate ----------------------------------------------------------------------------

  openRotate(key) {
    this.pending = key;
    byId('rotate-title').textContent = `Rotate “${key.name}”`;
    byId('rotate-grace').value = '86400';
    say(byId('rotate-error'), '');
    this.rotateDialog.showModal();
    byId('rotate-grace').focus();
  }

  async submitRotate(event) {
    event.preventDefault();
    const old = this.pending;
    const grace = Number(byId('rotate-grace').value);
    let created;
    try {
      created = await api('POST', `/v1/api-keys/${old.id}/rotate`, { expire_old_after_seconds: grace });
    } catch (err) {
      this.app.fail(err, byId('rotate-error'));
      return;
    }
    this.rotateDialog.close();
    const until = grace === 0
      ? `The old key ${keyLabel(old)} has stopped working.`
      : `The old key ${keyLabel(old)} keeps working until ${formatDateTime(new Date(Date.now() + grace * 1000))}: `
        + 'update your integrations before then.';
    await this.app.reloadAll();
    this.reveal(created.key, `“${created.name}” was rotated. ${until}`, created.id);
    delete created.key;
  }
}

/** An email that wraps before its "@" in a narrow column (and inside a part too long for it). */
function breakableEmail(email) {
  const at = email.lastIndexOf('@');
  if (at <= 0) return [email];
  return [el('span', { class: 'email-part' }, email.slice(0, at)), el('wbr'), el('span', { class: 'email-part' }, email.slice(at))];
}

/** What the last-used time's tooltip says: when, from where, with what. */
function lastUsedTitle(key) {
  let title = formatDateTime(key.last_used_at);
  if (key.last_used_ip) title += ` from ${key.last_used_ip}`;
  if (key.last_used_user_agent) title += ` (${key.last_used_user_agent})`;
  return title;
}

/** A badge per alert: its short reason, with the server's detail as its description (and
 * tooltip). The detail's node is hidden: it is read as the badge's description, not twice. */
function alertBadges(key) {
  return el('span', { class: 'key-alerts' }, key.alerts.map((alert, n) => {
    const id = `alert-${key.id}-${n}`; // a key may have a "new IP" alert per address
    return [
      el('span', {
        class: `alert-badge alert-${alert.kind.replaceAll('_', '-')}`,
        dataset: { kind: alert.kind },
        title: alert.detail,
        'aria-describedby': id,
      }, ALERT_LABELS[alert.kind] ?? alert.kind),
      el('span', { id, hidden: true }, alert.detail),
    ];
  }));
}

const PENCIL = 'M4 20h4L19 9a2.1 2.1 0 0 0-4-4L4 16z';
const LIST = 'M9 6h11M9 12h11M9 18h11M4.5 6h.01M4.5 12h.01M4.5 18h.01';
const SHIELD = 'M12 3 5 6v5c0 4.4 3 8.4 7 10 4-1.6 7-5.6 7-10V6z';
const BARS = 'M5 20V11M12 20V5M19 20v-6';

/** A small button showing an icon; `name` is what assistive technology announces. */
function iconButton(name, tooltip, action, path) {
  const SVG = 'http://www.w3.org/2000/svg';
  const icon = document.createElementNS(SVG, 'svg');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('aria-hidden', 'true');
  icon.setAttribute('class', 'icon');
  const line = document.createElementNS(SVG, 'path');
  line.setAttribute('d', path);
  icon.append(line);
  return el('button', { type: 'button', class: 'btn btn-icon', 'aria-label': name, title: tooltip, dataset: { action } }, icon);
}

function isoDate(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

async function copyText(node) {
  const text = node.textContent;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Without the async clipboard (plain http on another host): select and copy.
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const copied = document.execCommand('copy');
    selection.removeAllRanges();
    return copied;
  }
}

// ---- allowed IPs and rate limit: what the fields mean, how the table says it ----------------

const SHOWN_RANGES = 3;

/** The ranges typed in a field, one a line or separated by commas (or spaces); none: null. */
export function parseRanges(text) {
  const ranges = text.split(/[\s,]+/).filter(Boolean);
  return ranges.length ? ranges : null;
}

/** `{requests, per_seconds}` from the two fields, null when both are empty. */
export function readRateLimit(requestsInput, secondsInput) {
  const requests = requestsInput.value.trim();
  const seconds = secondsInput.value.trim();
  if (!requests && !seconds) return null;
  if (!requests || !seconds) {
    throw new Error('Fill in both the number of requests and the seconds of the rate limit, or neither.');
  }
  return { requests: Number(requests), per_seconds: Number(seconds) };
}

/** "10.0.0.0/8, 2001:db8::/32", or the first two of a longer list and how many more: each
 * range kept on one line where it fits. */
function rangeList(ranges) {
  const shown = ranges.length > SHOWN_RANGES ? ranges.slice(0, SHOWN_RANGES - 1) : ranges;
  const parts = shown.map((range, n) => el('span', { class: 'ip-range' }, n < shown.length - 1 ? `${range},` : range));
  if (shown.length < ranges.length) parts.push(el('span', { class: 'ip-range' }, `+${formatNumber(ranges.length - shown.length)} more`));
  return parts.flatMap((part, n) => (n ? [' ', part] : [part]));
}

function rateLimitText(limit) {
  return `${plural(limit.requests, 'request', 'requests')} per ${plural(limit.per_seconds, 'second', 'seconds')}`;
}

/** What the notice says once a key's allowed IPs and rate limit are saved. */
function controlsNotice(key) {
  const ips = key.allowed_ips;
  let where = 'from any IP';
  if (ips?.length) {
    where = ips.length <= SHOWN_RANGES
      ? `only from ${ips.join(', ')}`
      : `only from its ${formatNumber(ips.length)} IP ranges`;
  }
  const limit = key.rate_limit ? `at most ${rateLimitText(key.rate_limit)}` : 'with no rate limit';
  return `“${key.name}” now works ${where}, ${limit}.`;
}
