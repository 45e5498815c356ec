// The dashboard's entry point: the session (sign in, sign out, resume after a reload) and
// the wiring between the keys table and the usage panel.

import { api, ApiError, setCsrfToken } from './api.js';
import { byId, say, show } from './dom.js';
import { planName } from './format.js';
import { KeysPage } from './keys.js';
import { UsagePanel } from './usage.js';

let session = null;

const app = {
  session: () => session,
  reloadAll,
  notify,
  fail,
  showChart: (keyId) => usage.showKey(keyId),
};
const keys = new KeysPage(app);
const usage = new UsagePanel(app);

function showView(name) {
  show(byId('loading-view'), name === 'loading');
  show(byId('signin-view'), name === 'signin');
  show(byId('app-view'), name === 'app');
}

function notify(message) {
  say(byId('error'), '');
  say(byId('notice'), message);
}

/** Show what went wrong where the user is looking; a lost session goes back to sign-in. */
function fail(err, where = byId('error')) {
  if (err instanceof ApiError && err.status === 401 && session) {
    signedOut('Your session has ended. Sign in again to continue.');
    return;
  }
  say(where, err.detail ?? err.message);
}

async function reloadAll() {
  const main = byId('main');
  main.setAttribute('aria-busy', 'true');
  try {
    const list = await keys.load();
    await Promise.all([usage.load(), usage.setKeys(list)]);
  } catch (err) {
    fail(err);
  } finally {
    main.setAttribute('aria-busy', 'false');
  }
}

async function enter(current) {
  session = current;
  setCsrfToken(current.csrf_token);
  byId('workspace-name').textContent = current.workspace.name;
  byId('workspace-plan').textContent = `${planName(current.workspace.plan)} plan`;
  byId('user-email').textContent = current.user.email;
  byId('user-role').textContent = current.role;
  say(byId('notice'), '');
  say(byId('error'), '');
  showView('app');
  await reloadAll();
}

function signedOut(message) {
  session = null;
  setCsrfToken(null);
  byId('main').removeAttribute('aria-busy');
  keys.clear();
  usage.clear();
  byId('signin-password').value = '';
  say(byId('signin-error'), '');
  say(byId('signin-notice'), message);
  showView('signin');
  const workspace = byId('signin-workspace');
  (workspace.value ? byId('signin-email') : workspace).focus();
}

byId('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  say(byId('signin-error'), '');
  try {
    const current = await api('POST', '/v1/sessions', {
      workspace: form.elements.workspace.value.trim(),
      email: form.elements.email.value.trim(),
      password: form.elements.password.value,
    });
    form.elements.password.value = '';
    await enter(current);
    byId('page-title').focus();
  } catch (err) {
    fail(err, byId('signin-error'));
  } finally {
    button.disabled = false;
  }
});

byId('signout').addEventListener('click', async () => {
  try {
    await api('DELETE', '/v1/sessions/current');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      fail(err);
      return;
    }
  }
  signedOut('You are signed out.');
});

async function boot() {
  const workspace = new URLSearchParams(window.location.search).get('workspace');
  if (workspace) byId('signin-workspace').value = workspace;
  try {
    await enter(await api('GET', '/v1/sessions/current'));
  } catch (err) {
    signedOut(err instanceof ApiError && err.status === 401 ? '' : err.detail);
  }
}

boot();
