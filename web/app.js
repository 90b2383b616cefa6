// The lookup page. Plain ES module, no framework, no build step.
//
// It talks only to the relay that serves it (docs/api.md): /login, /api/session, /api/connections, /connect/...,
// and /proxy/{keap,jira}/... for the API calls. The requests for Keap and Jira are built, and their answers parsed
// and diagnosed, by keyrelay's core compiled to WebAssembly (wasm/keyrelay.mjs): the same code the relay runs.
// No token or secret ever reaches this page; the relay holds them and the browser holds a session cookie.

const PROVIDERS = {
  keap: { name: 'Keap', what: 'contact' },
  jira: { name: 'Jira', what: 'user' },
};
const REFRESH_EVERY_MS = 20000;

const state = {
  kr: null,
  user: null,
  connections: {},     // provider -> the relay's connection record
  lookupSeq: 0,        // the latest lookup; answers to older ones are dropped
  email: '',
  updated: new Set(),  // Keap contact ids changed in this session, marked in the results
  timer: 0,
};

// ---- small DOM helpers (text only: upstream data never becomes HTML) ----

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(el, visible = true) { el.hidden = !visible; }

function notice(text, kind = 'ok') {
  const el = $('#notice');
  el.textContent = text;
  el.dataset.kind = kind;
  show(el, !!text);
}

// ---- talking to the relay ----

// Every call carries X-Requested-With: keyrelay (the relay's CSRF check, docs/api.md) and the session cookie.
async function call(path, { method = 'GET', json, headers = {}, body } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store',
                 headers: { 'X-Requested-With': 'keyrelay', ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body) {
    init.body = body;
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, data };
}

// A request built by the Wasm module ({method, path, headers, body}) sent through fetch.
function send(req) {
  return call(req.path, { method: req.method, headers: req.headers, body: req.body || undefined });
}

// The relay's own error shape: {"error": {"code", "message", "hint"}}. Provider errors look different
// (Keap's OAuth errors carry a string "error"; Jira's carry "errorMessages").
function relayError(res) {
  const e = res.data && res.data.error;
  return e && typeof e === 'object' && typeof e.code === 'string' ? e : null;
}

// ---- time ----

function clock(unix) {
  const d = new Date(unix * 1000);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return today ? time : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${time}`;
}

function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 && hrs < 10 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  return `${Math.round(hrs / 24)} days`;
}

function relative(unix) {
  const delta = unix - Date.now() / 1000;
  if (Math.abs(delta) < 5) return delta >= 0 ? 'in a moment' : 'a moment ago';
  return delta >= 0 ? `in ${span(delta)}` : `${span(delta)} ago`;
}

// ---- views ----

function showLogin(message) {
  state.user = null;
  clearInterval(state.timer);
  show($('#app-view'), false);
  show($('#who'), false);
  show($('#login-view'));
  const err = $('#login-error');
  err.textContent = message || '';
  show(err, !!message);
  $('#login-user').focus();
}

async function showApp(user) {
  state.user = user;
  $('#who-user').textContent = user;
  await refreshConnections();   // before showing the cards, so they never flash an unknown state
  show($('#login-view'), false);
  show($('#who'));
  show($('#app-view'));
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshConnections();
  }, REFRESH_EVERY_MS);
}

// ---- connections ----

async function refreshConnections() {
  let res;
  try {
    res = await call('/api/connections');
  } catch {
    return;  // offline for a moment: keep what is shown, the next refresh tries again
  }
  if (res.status === 401) return showLogin('Your session ended. Sign in again.');
  if (res.status !== 200 || !res.data || !Array.isArray(res.data.connections)) return;
  state.connections = {};
  for (const c of res.data.connections) state.connections[c.provider] = c;
  renderConnections();
}

function isOAuth(c) { return !c || !c.mode || c.mode === 'oauth'; }

function renderConnections() {
  for (const provider of Object.keys(PROVIDERS)) renderCard(provider, state.connections[provider]);
  renderReauthBanner();
}

function renderCard(provider, c) {
  const card = $(`#conn-${provider}`);
  const name = PROVIDERS[provider].name;
  const badge = $('[data-role=badge]', card);
  const facts = $('[data-role=facts]', card);
  const note = $('[data-role=note]', card);
  const actions = $('[data-role=actions]', card);
  facts.replaceChildren();
  actions.replaceChildren();

  const status = c && c.needs_reauth ? 'reauth' : c && c.connected ? 'on' : 'off';
  card.dataset.status = status;
  badge.dataset.status = status;
  badge.textContent = { off: 'Not connected', reauth: 'Needs reconnecting', on: 'Connected' }[status];

  const fact = (term, ...desc) => facts.append(h('div', { class: 'fact' }, h('dt', {}, term), h('dd', {}, ...desc)));

  note.textContent = status === 'off' ? `Connect once; from then on the relay keeps ${name} access alive.` : '';
  show(note, status === 'off');
  show(facts, status !== 'off');
  if (status !== 'off') {
    // Keap names the account ("ab123.infusionsoft.com"); Jira the site ("https://example.atlassian.net").
    const account = (c.account || '').replace(/^https:\/\//, '').replace(/\/$/, '');
    fact('Account', account ? h('span', { class: 'mono' }, account) : h('span', { class: 'muted' }, 'not reported'));
    if (!isOAuth(c)) {
      const kind = { api_key: 'API key', api_token: 'API token', pat: 'Personal access token' }[c.mode] || c.mode;
      fact('Credential', `${kind}, configured on the relay`);
    } else if (status === 'reauth') {
      fact('Access', h('span', { class: 'warn-text' }, 'The relay can no longer renew access. Reconnect to continue.'));
    } else if (c.expires_at) {
      const future = c.expires_at * 1000 > Date.now();
      fact('Access token',
        future ? `expires ${clock(c.expires_at)} (${relative(c.expires_at)})`
               : `expired ${clock(c.expires_at)}`,
        h('span', { class: 'renews' }, future ? 'renews itself' : 'renews itself on the next call'));
    } else {
      fact('Access token', h('span', { class: 'renews' }, 'renews itself'));
    }
    if (isOAuth(c) && c.last_refresh_at) {
      const ok = !c.last_refresh_result || c.last_refresh_result === 'ok';
      fact('Last renewal', `${clock(c.last_refresh_at)}`,
        ok ? '' : h('span', { class: 'warn-text' }, ` · failed (${c.last_refresh_result})`));
    }
  }

  if (!c || isOAuth(c)) {
    if (status === 'on') {
      actions.append(
        h('a', { class: 'btn btn-secondary', href: `/connect/${provider}` }, 'Reconnect'),
        h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => disconnect(provider) }, 'Disconnect'));
    } else {
      actions.append(h('a', { class: 'btn btn-primary', href: `/connect/${provider}` },
        status === 'reauth' ? `Reconnect ${name}` : `Connect ${name}`));
    }
  }
}

function renderReauthBanner() {
  const banner = $('#reauth');
  const dead = Object.keys(PROVIDERS).filter((p) => state.connections[p] && state.connections[p].needs_reauth);
  banner.replaceChildren();
  if (!dead.length) return show(banner, false);
  for (const p of dead) {
    const name = PROVIDERS[p].name;
    banner.append(h('div', { class: 'banner-row' },
      h('div', {},
        h('strong', {}, `${name} needs to be reconnected.`), ' ',
        `The relay could not renew its access: the grant was revoked, or it expired unused. `,
        `${name} lookups fail until you reconnect.`),
      h('a', { class: 'btn btn-primary', href: `/connect/${p}` }, `Reconnect ${name}`)));
  }
  show(banner);
}

function markNeedsReauth(provider) {
  const c = state.connections[provider];
  if (c && !c.needs_reauth) {
    c.needs_reauth = true;
    renderConnections();
  }
  refreshConnections();
}

async function disconnect(provider) {
  const res = await call(`/api/connections/${provider}/disconnect`, { method: 'POST' });
  if (res.status === 204 || res.status === 200) {
    notice(`${PROVIDERS[provider].name} is disconnected. The relay deleted its tokens.`);
  } else {
    const e = relayError(res);
    notice(e ? `${e.message} ${e.hint || ''}` : `Disconnecting failed (HTTP ${res.status}).`, 'error');
  }
  refreshConnections();
}

// ---- lookup ----

function resultCard(provider) {
  const card = $(`#result-${provider}`);
  return { card, state: $('[data-role=state]', card), body: $('[data-role=body]', card) };
}

function setResult(provider, status, label, ...content) {
  const r = resultCard(provider);
  r.card.dataset.status = status;
  r.state.textContent = label;
  r.state.dataset.status = status;
  r.body.replaceChildren(...content.filter((c) => c !== null && c !== undefined && c !== false));
}

async function lookup(email) {
  const seq = ++state.lookupSeq;
  state.email = email;
  const button = $('#lookup-submit');
  button.disabled = true;
  button.textContent = 'Looking up…';
  show($('#results'));
  for (const p of Object.keys(PROVIDERS)) {
    setResult(p, 'loading', 'Searching…',
      h('p', { class: 'loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        `Asking ${PROVIDERS[p].name} through the relay…`));
  }
  await Promise.all([lookupKeap(email, seq), lookupJira(email, seq)]);
  if (seq === state.lookupSeq) {
    button.disabled = false;
    button.textContent = 'Look up';
  }
  refreshConnections();
}

// Handles the answers every provider shares: relay errors, network failures. Returns true when it rendered.
function relayOutcome(provider, res, seq) {
  if (seq !== state.lookupSeq) return true;
  const name = PROVIDERS[provider].name;
  const e = relayError(res);
  if (!e) return false;
  switch (e.code) {
    case 'connection.not_connected':
      setResult(provider, 'off', 'Not connected',
        h('p', {}, `${name} is not connected, so it was not searched.`),
        h('a', { class: 'btn btn-secondary', href: `/connect/${provider}` }, `Connect ${name}`));
      return true;
    case 'connection.needs_reauth':
      // The banner above carries the Reconnect button.
      setResult(provider, 'reauth', 'Needs reconnecting',
        h('p', {}, `The relay can no longer renew ${name} access, so ${name} was not searched. `,
          'Reconnect it from the banner above.'));
      markNeedsReauth(provider);
      return true;
    case 'auth.no_session':
      showLogin('Your session ended. Sign in again.');
      return true;
    default:
      setResult(provider, 'error', 'Error', errorView(e, null));
      return true;
  }
}

function networkError(provider, err, seq) {
  if (seq !== state.lookupSeq) return;
  setResult(provider, 'error', 'Error', errorView({
    code: 'network',
    message: `The relay did not answer (${err.message}).`,
    hint: 'Check that keyrelay is still running, then try again.',
  }, null));
}

function errorView(error, diagnosis) {
  const box = h('div', { class: 'problem' },
    h('p', { class: 'problem-title' }, error.message || 'The request failed.'),
    error.hint ? h('p', { class: 'problem-hint' }, error.hint) : null,
    h('p', { class: 'problem-code' }, h('code', {}, error.code)));
  if (diagnosis && diagnosis.code !== 'ok' && diagnosis.summary && diagnosis.summary !== error.message) {
    box.append(h('details', { class: 'problem-more' },
      h('summary', {}, 'Diagnosis of the response'),
      h('p', {}, diagnosis.summary),
      diagnosis.hint ? h('p', { class: 'problem-hint' }, diagnosis.hint) : null,
      h('p', { class: 'problem-code' }, h('code', {}, diagnosis.code))));
  }
  return box;
}

async function lookupKeap(email, seq) {
  const kr = state.kr;
  let res;
  try {
    res = await send(kr.keap.findContactsByEmail(email));
  } catch (err) {
    return networkError('keap', err, seq);
  }
  if (relayOutcome('keap', res, seq)) return;
  const parsed = kr.keap.parseContacts(res.status, res.headers, res.text);
  if (!parsed.ok) {
    const diagnosis = kr.diagnose({ status: res.status, headers: res.headers, body: res.text, expect: 'json' });
    return setResult('keap', 'error', 'Error', errorView(parsed.error, diagnosis));
  }
  renderKeapContacts(parsed.contacts);
}

function renderKeapContacts(contacts) {
  if (!contacts.length) {
    return setResult('keap', 'none', 'Not found', h('p', { class: 'none' }, 'No Keap contact has this email.'));
  }
  setResult('keap', 'found', contacts.length === 1 ? 'Found' : `Found ${contacts.length}`,
    h('ul', { class: 'people' }, contacts.map((c) => h('li', { class: 'person', 'data-contact-id': c.id },
      contactView(c)))));
}

function fullName(given, family) {
  return [given, family].filter(Boolean).join(' ');
}

function contactView(c) {
  const name = fullName(c.given_name, c.family_name);
  const wrap = h('div', { class: 'person-main' },
    h('p', { class: 'person-name' }, name || h('span', { class: 'muted' }, '(no name)'),
      state.updated.has(c.id) ? h('span', { class: 'tag' }, 'updated') : null),
    h('p', { class: 'person-meta' }, `Contact ID `, h('span', { class: 'mono' }, String(c.id))),
    c.emails.length ? h('p', { class: 'person-meta' }, c.emails.join(', ')) : null);
  const edit = h('button', { type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': `Edit the name of ${name || `contact ${c.id}`}` },
    'Edit name');
  const row = h('div', { class: 'person-row' }, wrap, edit);
  edit.addEventListener('click', () => row.replaceWith(editForm(c, row)));
  return row;
}

// The forum's ContactService.Update(4393, {FirstName: "Joe", LastName: "Bobertson"}), as a REST PATCH through the
// relay (PATCH /crm/rest/v1/contacts/{id} with {given_name, family_name}).
function editForm(c, row) {
  const given = h('input', { name: 'given', value: c.given_name, autocomplete: 'off', required: true });
  const family = h('input', { name: 'family', value: c.family_name, autocomplete: 'off' });
  const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Cancel');
  const current = fullName(c.given_name, c.family_name);
  const form = h('form', { class: 'edit', novalidate: true, 'aria-label': `Edit contact ${c.id}` },
    h('p', { class: 'edit-title' }, `Rename contact ${c.id}`,
      current ? h('span', { class: 'muted' }, ` · now “${current}”`) : null),
    h('div', { class: 'edit-fields' },
      h('label', { class: 'field' }, h('span', {}, 'First name'), given),
      h('label', { class: 'field' }, h('span', {}, 'Last name'), family)),
    error,
    h('div', { class: 'edit-actions' }, save, cancel));
  cancel.addEventListener('click', () => { form.replaceWith(row); $('button', row).focus(); });
  form.addEventListener('keydown', (e) => { if (e.key === 'Escape') cancel.click(); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const g = given.value.trim();
    const f = family.value.trim();
    if (!g && !f) {
      error.textContent = 'Enter a first or last name.';
      return show(error);
    }
    save.disabled = true;
    save.textContent = 'Saving…';
    show(error, false);
    let res;
    try {
      res = await send(state.kr.keap.updateContactName(c.id, g, f));
    } catch (err) {
      res = { status: 0, headers: {}, text: '', data: null, failure: err.message };
    }
    save.disabled = false;
    save.textContent = 'Save';
    if (res.status >= 200 && res.status < 300) {
      state.updated.add(c.id);
      await refreshKeap();
      notice(`Saved. Keap contact ${c.id} is now ${fullName(g, f)}.`);
      const again = $(`#result-keap [data-contact-id="${c.id}"] button`);
      if (again) again.focus();
      return;
    }
    const e2 = relayError(res);
    if (e2 && e2.code === 'connection.needs_reauth') markNeedsReauth('keap');
    const problem = e2 || (res.failure
      ? { code: 'network', message: `The relay did not answer (${res.failure}).`, hint: 'Try again.' }
      : { code: `http_${res.status}`, message: `Keap refused the change (HTTP ${res.status}).`, hint: '' });
    const diagnosis = res.status ? state.kr.diagnose({ status: res.status, headers: res.headers, body: res.text, expect: 'json' }) : null;
    error.replaceChildren(errorView(problem, diagnosis));
    show(error);
  });
  queueMicrotask(() => given.focus());
  return form;
}

// After an update: search Keap again so the page shows what Keap now stores, not what was typed.
async function refreshKeap() {
  const seq = ++state.lookupSeq;
  await lookupKeap(state.email, seq);
}

async function lookupJira(email, seq) {
  const kr = state.kr;
  let res;
  try {
    res = await send(kr.jira.searchUsers(email));
  } catch (err) {
    return networkError('jira', err, seq);
  }
  if (relayOutcome('jira', res, seq)) return;
  const parsed = kr.jira.parseUsers(res.status, res.headers, res.text);
  if (!parsed.ok) {
    const diagnosis = kr.diagnose({ status: res.status, headers: res.headers, body: res.text, expect: 'json' });
    return setResult('jira', 'error', 'Error', errorView(parsed.error, diagnosis));
  }
  const caveat = parsed.caveat ? h('p', { class: 'caveat' }, h('strong', {}, 'Note: '), parsed.caveat) : null;
  if (!parsed.users.length) {
    return setResult('jira', 'none', 'Not found', h('p', { class: 'none' }, 'No Jira user has this email.'), caveat);
  }
  setResult('jira', 'found', parsed.users.length === 1 ? 'Found' : `Found ${parsed.users.length}`,
    h('ul', { class: 'people' }, parsed.users.map((u) => h('li', { class: 'person' },
      h('div', { class: 'person-row' }, h('div', { class: 'person-main' },
        h('p', { class: 'person-name' }, u.displayName || h('span', { class: 'muted' }, '(no name)'),
          u.active ? null : h('span', { class: 'tag tag-muted' }, 'inactive')),
        h('p', { class: 'person-meta' }, 'Account ID ', h('span', { class: 'mono' }, u.accountId)),
        h('p', { class: 'person-meta' }, u.emailAddress
          ? u.emailAddress
          : h('span', { class: 'muted' }, 'Email hidden by the user’s profile visibility'))))))),
    caveat);
}

// ---- explain a response ----

const EXAMPLES = {
  html: {
    status: 502, expect: 'xmlrpc', headers: 'Content-Type: text/html; charset=utf-8',
    body: '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>Bad Gateway</h1>\n' +
      '<p>The server returned an invalid or incomplete response.</p>\n</body>\n</html>\n',
  },
  cors: { status: 403, expect: 'json', headers: 'Content-Type: text/plain', body: 'CORS origin denied' },
  grant: {
    status: 400, expect: 'token', headers: 'Content-Type: application/json;charset=UTF-8',
    body: '{"error":"invalid_grant","error_description":"Invalid refresh token"}',
  },
};

function parseHeaderLines(text) {
  const headers = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

function explain() {
  const out = $('#explain-result');
  const status = Number.parseInt($('#explain-status').value, 10);
  const d = state.kr.diagnose({
    status: Number.isFinite(status) ? status : 0,
    headers: parseHeaderLines($('#explain-headers').value),
    body: $('#explain-body').value,
    expect: $('#explain-expect').value,
  });
  out.dataset.status = d.code === 'ok' ? 'ok' : 'problem';
  out.replaceChildren(
    h('p', { class: 'diagnosis-summary' }, d.summary),
    d.hint ? h('p', { class: 'diagnosis-hint' }, d.hint) : null,
    h('p', { class: 'problem-code' }, 'Diagnosis code ', h('code', {}, d.code)));
  show(out);
}

function fillExample(name) {
  const ex = EXAMPLES[name];
  $('#explain-status').value = ex.status;
  $('#explain-expect').value = ex.expect;
  $('#explain-headers').value = ex.headers;
  $('#explain-body').value = ex.body;
  explain();
}

// ---- start ----

function wire() {
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
      $('#lookup-email').focus();
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

  $('#lookup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#lookup-email');
    const email = input.value.trim();
    const err = $('#lookup-error');
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
      err.textContent = 'Enter an email address, like name@example.com.';
      show(err);
      input.focus();
      return;
    }
    show(err, false);
    notice('');
    lookup(email);
  });

  $('#explain-form').addEventListener('submit', (e) => { e.preventDefault(); explain(); });
  $('#explain-body').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); explain(); }
  });
  for (const b of document.querySelectorAll('[data-example]')) {
    b.addEventListener('click', () => fillExample(b.dataset.example));
  }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.user) refreshConnections();
  });
}

function fatal(message) {
  const el = $('#fatal');
  el.textContent = message;
  show(el);
}

async function start() {
  wire();
  // Back from a provider's consent page: /?connected=keap (docs/api.md). Say so once, then clean the address bar.
  const params = new URLSearchParams(location.search);
  const connected = params.get('connected');
  if (connected && PROVIDERS[connected]) notice(`${PROVIDERS[connected].name} is connected.`);
  if (location.search) history.replaceState(null, '', location.pathname);

  const session = call('/api/session').catch((err) => ({ status: 0, failure: err.message }));
  try {
    const { default: createKeyrelay } = await import('./wasm/keyrelay.mjs');
    state.kr = await createKeyrelay();
  } catch (err) {
    fatal(`The page could not load its WebAssembly module (wasm/keyrelay.mjs: ${err.message}). ` +
      'Build it with "cmake --build --preset wasm" and serve build/wasm/keyrelay.{mjs,wasm} under /wasm/, ' +
      'or start everything with scripts/demo.');
    return;
  }
  $('#version').textContent = state.kr.version;
  show($('#explain-view'));

  const res = await session;
  if (res.status === 200 && res.data && res.data.user) {
    await showApp(res.data.user);
  } else if (res.status === 0) {
    fatal(`The relay did not answer (${res.failure}). Is keyrelay running?`);
  } else {
    showLogin();
  }
  document.documentElement.dataset.ready = 'true';
}

start();
