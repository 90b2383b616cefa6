// Signing in and out. The relay's session is a cookie; the page keeps only the user name.
import { $, notice, show } from './dom.js';
import { call, relayError } from './relay.js';
import { state } from './state.js';
import { refreshConnections } from './connections.js';

const REFRESH_EVERY_MS = 20000;
let timer = 0;
let onSignedIn = () => {};

// What to do once the app view is up (the lookup screen focuses its field and runs a pending ?email=).
export function whenSignedIn(fn) { onSignedIn = fn; }

export function showLogin(message) {
  state.user = null;
  clearInterval(timer);
  show($('#app-view'), false);
  show($('#who'), false);
  show($('#login-view'));
  const err = $('#login-error');
  err.textContent = message || '';
  show(err, !!message);
  $('#login-user').focus();
}

export async function showApp(user) {
  state.user = user;
  $('#who-user').textContent = user;
  await refreshConnections();   // before showing the cards, so they never flash an unknown state
  show($('#login-view'), false);
  show($('#who'));
  show($('#app-view'));
  clearInterval(timer);
  timer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshConnections();
  }, REFRESH_EVERY_MS);
  onSignedIn();
}

export function wireLogin() {
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const username = $('#login-user').value.trim();
    const password = $('#login-password').value;
    const err = $('#login-error');
    if (!username || !password) {
      err.textContent = 'Enter your username and password.';
      return show(err);
    }
    const button = $('#login-submit');
    button.disabled = true;
    let res;
    try {
      res = await call('/login', { method: 'POST', json: { username, password } });
    } catch (x) {
      res = { status: 0, data: null, failure: x.message };
    } finally {
      button.disabled = false;
    }
    if (res.status === 200) {
      $('#login-password').value = '';
      show(err, false);
      await showApp((res.data && res.data.user) || username);
      return;
    }
    const e2 = relayError(res);
    err.textContent = res.failure ? `The relay did not answer (${res.failure}).`
      : e2 && e2.code === 'auth.bad_credentials' ? 'Wrong username or password.'
      : e2 ? `${e2.message} ${e2.hint || ''}`.trim()
      : `Sign-in failed (HTTP ${res.status}).`;
    show(err);
    $('#login-password').select();
  });

  $('#logout').addEventListener('click', async () => {
    try { await call('/logout', { method: 'POST' }); } catch { /* the session is gone either way */ }
    notice('');
    showLogin();
  });

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.user) refreshConnections();
  });
}
