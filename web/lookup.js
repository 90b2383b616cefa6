// The lookup screen: one email, Keap and Jira searched at the same time through the relay. Each result set says
// which email it is for; a new lookup cancels the one in flight, so a late answer never lands under another email.
// The requests are built and the answers parsed by keyrelay's core compiled to WebAssembly (state.kr).
import { $, copyButton, fullName, h, notice, show } from './dom.js';
import { relayError, send } from './relay.js';
import { PROVIDERS, state } from './state.js';
import { markNeedsReauth, refreshConnections } from './connections.js';
import { showLogin } from './login.js';
import { problemView } from './problem.js';
import { forget, remember, renderRecent } from './recent.js';

const SLOW_AFTER_MS = 3000;
export const PAGE_TIMEOUT_MS = 10000;   // the page's own limit, whatever the relay's upstream timeout is
export const EMAIL = /^[^\s@]+@[^\s@]+$/;

let latest = null;   // the run on screen: {email, controller, stopped, results: {keap, jira}}

function live(run) { return run === latest && run.stopped !== 'superseded'; }

function stop(run, why) {
  if (!run || run.done) return;
  run.stopped = why;
  run.controller.abort();
}

// ---- the two result cards ----

function setResult(provider, status, label, ...content) {
  const card = $(`#result-${provider}`);
  card.dataset.status = status;
  const badge = $('[data-role=state]', card);
  badge.textContent = label;
  badge.dataset.status = status;
  $('[data-role=body]', card).replaceChildren(...content.filter((c) => c !== null && c !== undefined && c !== false));
}

function loadingView(provider, slow, run) {
  const name = PROVIDERS[provider].name;
  if (!slow) {
    return [h('p', { class: 'loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      `Asking ${name} through the relay…`)];
  }
  return [
    h('p', { class: 'loading slow' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      `${name} is slow… still waiting (the page gives up after ${PAGE_TIMEOUT_MS / 1000} s).`),
    h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-role': 'cancel',
      onclick: () => { stop(run, 'cancel'); $('#lookup-email').focus(); } }, 'Cancel'),
  ];
}

// Hides the results (a new email typed, an invalid one submitted) and cancels what is in flight for them.
export function clearResults() {
  stop(latest, 'superseded');
  latest = null;
  show($('#results'), false);
  if (new URLSearchParams(location.search).has('email')) history.replaceState(null, '', location.pathname);
}

export function shownEmail() { return latest ? latest.email : null; }

export async function lookup(email) {
  stop(latest, 'superseded');
  const run = { email, controller: new AbortController(), stopped: '', results: {}, done: false };
  latest = run;
  $('#results-email').textContent = email;
  show($('#across'), false);
  show($('#results'));
  history.replaceState(null, '', `${location.pathname}?email=${encodeURIComponent(email)}`);
  remember(email);
  renderRecent();
  for (const p of Object.keys(PROVIDERS)) setResult(p, 'loading', 'Searching…', ...loadingView(p, false, run));
  const slow = setTimeout(() => {
    for (const p of Object.keys(PROVIDERS)) {
      if (live(run) && !run.results[p]) setResult(p, 'loading', 'Slow', ...loadingView(p, true, run));
    }
  }, SLOW_AFTER_MS);
  const timeout = setTimeout(() => stop(run, 'timeout'), PAGE_TIMEOUT_MS);
  await Promise.all([lookupKeap(run), lookupJira(run)]);
  run.done = true;
  clearTimeout(slow);
  clearTimeout(timeout);
  if (live(run)) renderAcross(run);
  refreshConnections();
}

// Sends one request of a run; {res} or {failure} when the fetch itself failed (network, cancel, timeout).
async function fetchFor(run, req) {
  try {
    return { res: await send(req, run.controller.signal) };
  } catch (err) {
    return { failure: err };
  }
}

function retry(run) { return () => lookup(run.email); }

// What every provider shares: a cancelled or timed-out call, a network failure, the relay's own errors.
// Returns true when it rendered.
function commonOutcome(run, provider, { res, failure }) {
  const name = PROVIDERS[provider].name;
  if (failure) {
    run.results[provider] = { error: true };
    if (run.stopped === 'cancel') {
      setResult(provider, 'cancelled', 'Cancelled', h('p', { class: 'none' }, `You cancelled the ${name} search.`),
        h('button', { type: 'button', class: 'btn btn-secondary btn-small', onclick: retry(run) }, 'Search again'));
    } else if (run.stopped === 'timeout') {
      setResult(provider, 'error', 'Error',
        problemView(name, { kind: 'timeout', seconds: PAGE_TIMEOUT_MS / 1000, error: {
          code: 'page.timeout', message: `No answer from ${name} within ${PAGE_TIMEOUT_MS / 1000} s.`,
          hint: 'The page stopped waiting; the relay may still be waiting for the provider.' } }, retry(run)));
    } else {
      setResult(provider, 'error', 'Error', problemView(name, { kind: 'network', error: {
        code: 'network', message: `The request failed in the browser (${failure.message}).`, hint: '' } }, retry(run)));
    }
    return true;
  }
  const e = relayError(res);
  if (!e) return false;
  run.results[provider] = { error: true };
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
      setResult(provider, 'error', 'Error',
        problemView(name, { kind: 'http', status: res.status, headers: res.headers, error: e }, retry(run)));
      return true;
  }
}

function parseFailure(run, provider, res, error) {
  run.results[provider] = { error: true };
  const diagnosis = state.kr.diagnose({ status: res.status, headers: res.headers, body: res.text, expect: 'json' });
  setResult(provider, 'error', 'Error', problemView(PROVIDERS[provider].name,
    { kind: 'http', status: res.status, headers: res.headers, error }, retry(run), diagnosis));
}

// ---- Keap ----

async function lookupKeap(run) {
  const out = await fetchFor(run, state.kr.keap.findContactsByEmail(run.email));
  if (!live(run) || commonOutcome(run, 'keap', out)) return;
  const { res } = out;
  const parsed = state.kr.keap.parseContacts(res.status, res.headers, res.text);
  if (!parsed.ok) return parseFailure(run, 'keap', res, parsed.error);
  run.results.keap = { contacts: parsed.contacts, raw: res.data };
  renderKeap(run);
}

function renderKeap(run) {
  const { contacts } = run.results.keap;
  if (!contacts.length) {
    return setResult('keap', 'none', 'Not found', h('p', { class: 'none' }, 'No Keap contact has this email.'));
  }
  setResult('keap', 'found', contacts.length === 1 ? 'Found' : `Found ${contacts.length}`,
    h('ul', { class: 'people' }, contacts.map((c) => h('li', { class: 'person', 'data-contact-id': c.id },
      contactView(run, c)))));
}

// Where a person opens the contact in Keap's own app, from the account the relay connected.
function keapLink(id) {
  const account = state.connections.keap && state.connections.keap.account;
  if (!account || !/^[a-z0-9.-]+$/i.test(account)) return null;
  return `https://${account}/Contact/manageContact.jsp?view=edit&ID=${encodeURIComponent(id)}`;
}

// Fields the contact list carries beyond the names (Keap REST v1 contact model): shown when present.
function keapExtras(raw, id) {
  const list = raw && Array.isArray(raw.contacts) ? raw.contacts : [];
  const c = list.find((x) => x && x.id === id) || {};
  const out = [];
  const phones = Array.isArray(c.phone_numbers) ? c.phone_numbers.map((p) => p && p.number).filter(Boolean) : [];
  if (phones.length) out.push(['Phone', phones.join(', ')]);
  const company = c.company && (c.company.company_name || c.company.name);
  if (company) out.push(['Company', String(company)]);
  if (Array.isArray(c.tag_ids)) out.push(['Tags', c.tag_ids.length ? `${c.tag_ids.length} tag${c.tag_ids.length === 1 ? '' : 's'}` : 'none']);
  const updated = Date.parse(c.last_updated);
  if (Number.isFinite(updated)) {
    out.push(['Last updated', new Date(updated).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })]);
  }
  return out;
}

function extrasView(pairs) {
  if (!pairs.length) return null;
  return h('dl', { class: 'extras' }, pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
}

function contactView(run, c) {
  const name = fullName(c.given_name, c.family_name);
  const link = keapLink(c.id);
  const wrap = h('div', { class: 'person-main' },
    h('p', { class: 'person-name' }, name || h('span', { class: 'muted' }, '(no name)'),
      state.updated.has(c.id) ? h('span', { class: 'tag' }, 'updated') : null),
    h('p', { class: 'person-meta' }, 'Contact ID ', h('span', { class: 'mono' }, String(c.id)),
      copyButton(String(c.id), `Keap contact ID ${c.id}`)),
    c.emails.length ? h('p', { class: 'person-meta' }, c.emails.join(', '),
      copyButton(c.emails[0], `the email ${c.emails[0]}`)) : null,
    extrasView(keapExtras(run.results.keap.raw, c.id)));
  const edit = h('button', { type: 'button', class: 'btn btn-quiet btn-small',
    'aria-label': `Edit the name of ${name || `contact ${c.id}`}` }, 'Edit name');
  const side = h('div', { class: 'person-actions' },
    link ? h('a', { class: 'btn btn-secondary btn-small', href: link, target: '_blank', rel: 'noopener' }, 'Open in Keap')
      : null,
    edit);
  const row = h('div', { class: 'person-row' }, wrap, side);
  edit.addEventListener('click', () => row.replaceWith(nameForm({
    title: `Rename contact ${c.id}`, current: name, given: c.given_name, family: c.family_name, label: `Edit contact ${c.id}`,
    request: (g, f) => state.kr.keap.updateContactName(c.id, g, f),
    done: (g, f) => {
      state.updated.add(c.id);
      return `Saved. Keap contact ${c.id} is now ${fullName(g, f)}.`;
    },
    focusAfter: () => $(`#result-keap [data-contact-id="${c.id}"] button[aria-label^="Edit"]`),
    cancelTo: row,
  })));
  return row;
}

// A first/last name form that sends one request through the relay, then looks the email up again so the page shows
// what Keap now stores, not what was typed. Used to rename a contact (the forum's ContactService.Update as a REST
// PATCH) and to create one from a Jira user.
function nameForm({ title, current, given: given0, family: family0, label, request, done, focusAfter, cancelTo, submit = 'Save' }) {
  const given = h('input', { name: 'given', value: given0 || '', autocomplete: 'off', required: true });
  const family = h('input', { name: 'family', value: family0 || '', autocomplete: 'off' });
  const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, submit);
  const cancel = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Cancel');
  const form = h('form', { class: 'edit', novalidate: true, 'aria-label': label },
    h('p', { class: 'edit-title' }, title, current ? h('span', { class: 'muted' }, ` · now “${current}”`) : null),
    h('div', { class: 'edit-fields' },
      h('label', { class: 'field' }, h('span', {}, 'First name'), given),
      h('label', { class: 'field' }, h('span', {}, 'Last name'), family)),
    error,
    h('div', { class: 'edit-actions' }, save, cancel));
  cancel.addEventListener('click', () => {
    form.replaceWith(cancelTo);
    const b = $('button[aria-label^="Edit"], .create-row button', cancelTo.parentNode) || $('button', cancelTo);
    if (b) b.focus();
  });
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
    const label0 = save.textContent;
    save.textContent = 'Saving…';
    show(error, false);
    let res;
    try {
      res = await send(request(g, f));
    } catch (err) {
      res = { status: 0, headers: {}, text: '', data: null, failure: err.message };
    }
    save.disabled = false;
    save.textContent = label0;
    if (res.status >= 200 && res.status < 300) {
      const message = done(g, f, res);
      const email = shownEmail();
      if (email) await lookup(email);
      notice(message);
      const again = focusAfter && focusAfter();
      if (again) again.focus();
      return;
    }
    const e2 = relayError(res);
    if (e2 && e2.code === 'connection.needs_reauth') markNeedsReauth('keap');
    const problem = res.failure
      ? { kind: 'network', error: { code: 'network', message: res.failure, hint: '' } }
      : { kind: 'http', status: res.status, headers: res.headers,
          error: e2 || { code: `http_${res.status}`, message: `Keap refused the change (HTTP ${res.status}).`, hint: '' } };
    const diagnosis = res.status && !e2
      ? state.kr.diagnose({ status: res.status, headers: res.headers, body: res.text, expect: 'json' }) : null;
    error.replaceChildren(problemView('Keap', problem, null, diagnosis));
    show(error);
  });
  queueMicrotask(() => given.focus());
  return form;
}

// ---- Jira ----

async function lookupJira(run) {
  const out = await fetchFor(run, state.kr.jira.searchUsers(run.email));
  if (!live(run) || commonOutcome(run, 'jira', out)) return;
  const { res } = out;
  const parsed = state.kr.jira.parseUsers(res.status, res.headers, res.text, run.email);
  if (!parsed.ok) return parseFailure(run, 'jira', res, parsed.error);
  // The core marks each user (jira::Match): only "exact" is this email; a hidden email cannot be compared and is
  // shown with that caveat; the rest are Jira's prefix matches.
  const found = parsed.users.filter((u) => u.match === 'exact' || u.match === 'email_hidden');
  const similar = parsed.users.filter((u) => u.match === 'other_email');
  run.results.jira = { users: found, exact: parsed.users.filter((u) => u.match === 'exact') };
  const similarView = similar.length ? h('div', { class: 'similar' },
    h('p', { class: 'similar-title' }, 'Similar users, not this email'),
    h('ul', { class: 'similar-list' }, similar.map((u) => h('li', {},
      u.displayName || '(no name)', h('span', { class: 'muted' }, ` · ${u.emailAddress}`))))) : null;
  if (!found.length) {
    return setResult('jira', 'none', 'Not found', h('p', { class: 'none' }, 'No Jira user has this email.'), similarView);
  }
  setResult('jira', 'found', found.length === 1 ? 'Found' : `Found ${found.length}`,
    h('ul', { class: 'people' }, found.map((u) => h('li', { class: 'person', 'data-account-id': u.accountId },
      jiraUserView(u)))),
    similarView);
}

function jiraLink(accountId) {
  const site = state.connections.jira && state.connections.jira.account;
  if (!site || !/^https:\/\/[a-z0-9.-]+\/?$/i.test(site)) return null;
  return `${site.replace(/\/$/, '')}/jira/people/${encodeURIComponent(accountId)}`;
}

const ACCOUNT_TYPES = { atlassian: 'Atlassian account', app: 'App (bot) account', customer: 'Service desk customer' };

function jiraUserView(u) {
  const link = jiraLink(u.accountId);
  const extras = [['Status', u.active ? 'active' : 'inactive']];
  if (u.accountType) extras.push(['Account type', ACCOUNT_TYPES[u.accountType] || u.accountType]);
  return h('div', { class: 'person-row' },
    h('div', { class: 'person-main' },
      h('p', { class: 'person-name' }, u.displayName || h('span', { class: 'muted' }, '(no name)'),
        u.active ? null : h('span', { class: 'tag tag-muted' }, 'inactive')),
      h('p', { class: 'person-meta' }, 'Account ID ', h('span', { class: 'mono' }, u.accountId),
        copyButton(u.accountId, `Jira account ID ${u.accountId}`)),
      h('p', { class: 'person-meta' }, u.emailAddress
        ? [u.emailAddress, copyButton(u.emailAddress, `the email ${u.emailAddress}`)]
        : h('span', { class: 'caveat-inline' },
          'Email hidden by the user’s profile visibility: Jira matched this user, but the page cannot confirm the email.')),
      extrasView(extras)),
    link ? h('div', { class: 'person-actions' },
      h('a', { class: 'btn btn-secondary btn-small', href: link, target: '_blank', rel: 'noopener' }, 'Open in Jira'))
      : null);
}

// ---- across the two: a name that differs, a person missing from Keap ----

const normal = (s) => String(s || '').trim().replace(/\s+/g, ' ').toLowerCase();

function renderAcross(run) {
  const across = $('#across');
  across.replaceChildren();
  const keap = run.results.keap;
  const jira = run.results.jira;
  if (keap && keap.contacts && jira && jira.exact && keap.contacts.length === 1 && jira.exact.length === 1) {
    const kName = fullName(keap.contacts[0].given_name, keap.contacts[0].family_name);
    const jName = jira.exact[0].displayName;
    if (kName && jName && normal(kName) !== normal(jName)) {
      across.append(h('p', { class: 'name-differs' }, h('strong', {}, 'The name differs: '),
        `Keap has “${kName}”, Jira has “${jName}”.`));
    }
  }
  if (keap && keap.contacts && !keap.contacts.length && jira && jira.exact && jira.exact.length === 1) {
    const u = jira.exact[0];
    const words = (u.displayName || '').trim().split(/\s+/);
    const given = words.length > 1 ? words.slice(0, -1).join(' ') : words[0] || '';
    const family = words.length > 1 ? words[words.length - 1] : '';
    const button = h('button', { type: 'button', class: 'btn btn-primary btn-small' }, 'Create Keap contact');
    const row = h('div', { class: 'create-row' },
      h('p', {}, `${u.displayName || 'This person'} is in Jira but not in Keap.`), button);
    button.addEventListener('click', () => row.replaceWith(nameForm({
      title: `New Keap contact for ${run.email}`, given, family, label: 'Create Keap contact', submit: 'Create contact',
      request: (g, f) => state.kr.keap.createContact(g, f, run.email),
      done: (g, f, res) => `Created Keap contact ${res.data && res.data.id ? `${res.data.id} ` : ''}for ${fullName(g, f)} (${run.email}).`,
      cancelTo: row,
    })));
    $('#result-keap [data-role=body]').append(row);
  }
  show(across, across.childElementCount > 0);
}

// ---- the form ----

export function wireLookup() {
  const input = $('#lookup-email');
  $('#lookup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const email = input.value.trim();
    const err = $('#lookup-error');
    if (!EMAIL.test(email)) {
      clearResults();
      err.textContent = 'Enter an email address, like name@example.com.';
      show(err);
      input.focus();
      return;
    }
    show(err, false);
    notice('');
    lookup(email);
  });
  // Typing another email takes the old results away: they would answer a question no longer asked.
  input.addEventListener('input', () => {
    if (latest && input.value.trim() !== latest.email) clearResults();
  });
  $('#recent').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    if (b.dataset.role === 'clear-recent') {
      forget();
      renderRecent();
      input.focus();
    } else if (b.dataset.email) {
      input.value = b.dataset.email;
      show($('#lookup-error'), false);
      lookup(b.dataset.email);
    }
  });
  renderRecent();
}

// Once signed in: the email field has focus, and ?email= in the address repeats that lookup.
export function startLookup(email) {
  const input = $('#lookup-email');
  input.focus();
  if (email && EMAIL.test(email.trim())) {
    input.value = email.trim();
    lookup(email.trim());
  }
}
