// Bulk lookup: up to 500 pasted emails, a table of email · Keap · Jira filled in as answers arrive, a few calls in
// flight at once, paced by the providers' rate-limit headers, cancellable, exportable as CSV. The job behind the
// single lookup: offboarding and access audits.
import { $, h, show } from './dom.js';
import { relayError, send } from './relay.js';
import { PROVIDERS, state } from './state.js';
import { showLogin } from './login.js';
import { headline } from './problem.js';
import { EMAIL } from './lookup.js';

export const MAX_EMAILS = 500;
export const IN_FLIGHT = 4;       // calls at once, both providers together
// Keap's x-keap-product-throttle-available (or Jira's X-RateLimit-Remaining) below this: slow down. Other calls may
// be in flight already, each about to spend one.
const LOW_THROTTLE = IN_FLIGHT + 1;
const SLOW_DOWN_MS = 1000;           // at least this long; Keap: until its throttle gives a call back
const DEFAULT_WAIT_S = 5;         // a 429 without a usable Retry-After
const ATTEMPTS = 5;               // per cell: 429s, each waited out

let job = null;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Emails from pasted text: one per line, or CSV (any column; quotes and <angle brackets> stripped). Duplicates
// (ignoring case) are dropped. -> {emails, ignored} where ignored counts the fields with an @ that are not emails.
export function parseEmails(text) {
  const seen = new Set();
  const emails = [];
  let ignored = 0;
  for (const field of text.split(/[\r\n,;\t]+/)) {
    const t = field.trim().replace(/^["'<\s]+|["'>\s]+$/g, '');
    if (!t.includes('@')) continue;
    if (!EMAIL.test(t)) { ignored += 1; continue; }
    const key = t.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    emails.push(t);
  }
  return { emails, ignored };
}

function header(headers, name) {
  const v = headers && headers[name];
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : null;
}

// How long Keap's throttle takes to give back one call: x-keap-product-throttle-limit calls per
// x-keap-product-throttle-interval x-keap-product-throttle-time-unit (developer.infusionsoft.com, "Rate limits").
function keapRefillMs(headers) {
  const limit = header(headers, 'x-keap-product-throttle-limit');
  const unit = { second: 1000, minute: 60000, hour: 3600000, day: 86400000 }[
    String((headers && headers['x-keap-product-throttle-time-unit']) || '').toLowerCase()];
  const interval = header(headers, 'x-keap-product-throttle-interval') || 1;
  return limit > 0 && unit ? Math.min(60000, (unit * interval) / limit) : 0;
}

// ---- one cell: one provider for one email ----

function outcomeOf(provider, email, res) {
  if (provider === 'keap') {
    const parsed = state.kr.keap.parseContacts(res.status, res.headers, res.text);
    if (!parsed.ok) return { state: 'error', error: parsed.error, status: res.status, headers: res.headers };
    return parsed.contacts.length ? { state: 'found', ids: parsed.contacts.map((c) => String(c.id)) } : { state: 'none', ids: [] };
  }
  const parsed = state.kr.jira.parseUsers(res.status, res.headers, res.text, email);
  if (!parsed.ok) return { state: 'error', error: parsed.error, status: res.status, headers: res.headers };
  const exact = parsed.users.filter((u) => u.match === 'exact');
  if (exact.length) return { state: 'found', ids: exact.map((u) => u.accountId) };
  const hidden = parsed.users.filter((u) => u.match === 'email_hidden');
  return hidden.length ? { state: 'hidden', ids: hidden.map((u) => u.accountId) } : { state: 'none', ids: [] };
}

async function waitTurn(j, provider) {
  for (;;) {
    const wait = j.pausedUntil[provider] - Date.now();
    if (j.cancelled) return;
    if (wait <= 0) break;
    await sleep(Math.min(wait, 250));
  }
  // While a provider is throttled its calls leave one per spacing, not all together when a pause ends.
  if (j.spacing[provider]) j.pausedUntil[provider] = Date.now() + j.spacing[provider];
}

async function runCell(j, row, provider) {
  if (j.off[provider]) return setCell(j, row, provider, { state: 'off' });
  for (let attempt = 1; ; attempt += 1) {
    await waitTurn(j, provider);
    if (j.cancelled) return;
    const req = provider === 'keap' ? state.kr.keap.findContactsByEmail(row.email) : state.kr.jira.searchUsers(row.email);
    let res;
    try {
      res = await send(req, j.controller.signal);
    } catch (err) {
      if (j.cancelled) return;
      return setCell(j, row, provider, { state: 'error', error: { code: 'network', message: err.message, hint: '' }, kind: 'network' });
    }
    // Pace by the quota headers the relay passes through (docs/api.md): Keap's throttle, Jira's X-RateLimit-*.
    const left = provider === 'keap' ? header(res.headers, 'x-keap-product-throttle-available')
      : header(res.headers, 'x-ratelimit-remaining');
    const refill = Math.max(SLOW_DOWN_MS, provider === 'keap' ? keapRefillMs(res.headers) : 0);
    if (left !== null && left >= LOW_THROTTLE) j.spacing[provider] = 0;
    if (left !== null && left < LOW_THROTTLE && res.status !== 429) {
      // Nearly out: each next call waits until the throttle has given one back.
      j.spacing[provider] = refill;
      j.pausedUntil[provider] = Math.max(j.pausedUntil[provider], Date.now() + refill);
      j.waitNote = `${PROVIDERS[provider].name} is near its rate limit (${left} call${left === 1 ? '' : 's'} left): slowing down.`;
      renderStatus(j);
    }
    if (res.status === 429 && attempt < ATTEMPTS) {
      const after = header(res.headers, 'retry-after');
      const seconds = after !== null && after >= 0 ? after : DEFAULT_WAIT_S;
      j.pausedUntil[provider] = Math.max(j.pausedUntil[provider], Date.now() + seconds * 1000);
      j.spacing[provider] = Math.max(j.spacing[provider], refill);
      j.waitNote = `${PROVIDERS[provider].name} asked to wait ${seconds} s (HTTP 429); resuming after that.`;
      renderStatus(j);
      continue;
    }
    const e = relayError(res);
    if (e && e.code === 'auth.no_session') {
      cancel();
      return showLogin('Your session ended. Sign in again.');
    }
    if (e && (e.code === 'connection.not_connected' || e.code === 'connection.needs_reauth')) {
      j.off[provider] = e.code;
      return setCell(j, row, provider, { state: 'off' });
    }
    if (e) return setCell(j, row, provider, { state: 'error', error: e, status: res.status, headers: res.headers });
    return setCell(j, row, provider, outcomeOf(provider, row.email, res));
  }
}

// ---- the table ----

// Keap contact ids are short and worth seeing; Jira account ids are long: in the cell's title and the CSV.
const MARK = {
  found: (o, provider) => (provider === 'keap' ? `✓ ${o.ids.join(', ')}` : '✓'),
  none: () => '✗',
  hidden: () => '? email hidden',
  off: () => 'not connected',
  error: () => '! error',
  cancelled: () => '—',
};

function setCell(j, row, provider, outcome) {
  row[provider] = outcome;
  j.done += 1;
  if (j !== job) return;
  const cell = row.cells[provider];
  cell.dataset.state = outcome.state;
  cell.textContent = MARK[outcome.state](outcome, provider);
  if (outcome.ids && outcome.ids.length) cell.title = outcome.ids.join(', ');
  if (outcome.state === 'error') {
    cell.title = headline(PROVIDERS[provider].name, { kind: outcome.kind || 'http', status: outcome.status,
      headers: outcome.headers, error: outcome.error });
  }
  if (j.waitNote && Date.now() >= j.pausedUntil[provider]) j.waitNote = '';
  renderStatus(j);
}

function renderStatus(j) {
  const total = j.rows.length * 2;
  $('#bulk-progress').max = total;
  $('#bulk-progress').value = j.done;
  const emailsDone = j.rows.filter((r) => r.keap && r.jira).length;
  const count = (p) => j.rows.filter((r) => r[p] && r[p].state === 'found').length;
  let text;
  if (j.cancelled) text = `Cancelled after ${emailsDone} of ${j.rows.length} emails.`;
  else if (j.done === total) text = `Done: ${j.rows.length} emails. Keap found ${count('keap')}, Jira found ${count('jira')}.`;
  else text = `Looked up ${emailsDone} of ${j.rows.length} emails…`;
  const off = Object.keys(j.off).filter((p) => j.off[p]).map((p) => `${PROVIDERS[p].name} is not connected.`);
  $('#bulk-status').textContent = [text, j.cancelled ? '' : j.waitNote, ...off].filter(Boolean).join(' ');
  $('#bulk-export').disabled = j.done === 0;
}

// ---- CSV ----

// RFC 4180 quoting; a field that a spreadsheet would run as a formula (=, +, -, @) gets a leading ' (OWASP "CSV
// Injection").
function csvField(v) {
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows) {
  const lines = [['email', 'keap', 'keap_contact_ids', 'jira', 'jira_account_ids']];
  const word = (o) => (o ? { found: 'found', none: 'not_found', hidden: 'email_hidden', off: 'not_connected',
    error: 'error', cancelled: 'not_checked' }[o.state] : 'not_checked');
  for (const r of rows) {
    lines.push([r.email, word(r.keap), r.keap && r.keap.ids ? r.keap.ids.join(' ') : '',
      word(r.jira), r.jira && r.jira.ids ? r.jira.ids.join(' ') : '']);
  }
  return lines.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function exportCsv() {
  if (!job) return;
  const url = URL.createObjectURL(new Blob([toCsv(job.rows)], { type: 'text/csv' }));
  const a = h('a', { href: url, download: `keyrelay-lookup-${new Date().toISOString().slice(0, 10)}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- run, cancel ----

function cancel() {
  if (!job || job.finished) return;
  job.cancelled = true;
  job.controller.abort();
}

async function start(emails) {
  cancel();
  const j = { rows: [], done: 0, cancelled: false, finished: false, off: {}, waitNote: '',
              pausedUntil: { keap: 0, jira: 0 }, spacing: { keap: 0, jira: 0 }, controller: new AbortController() };
  job = j;
  const body = $('#bulk-table tbody');
  body.replaceChildren();
  for (const email of emails) {
    const row = { email, keap: null, jira: null, cells: {} };
    const tr = h('tr', { 'data-email': email }, h('td', { class: 'mono' }, email));
    for (const p of Object.keys(PROVIDERS)) {
      row.cells[p] = h('td', { 'data-provider': p, 'data-state': 'pending' }, '…');
      tr.append(row.cells[p]);
    }
    body.append(tr);
    j.rows.push(row);
  }
  show($('#bulk-run'));
  show($('#bulk-cancel'));
  $('#bulk-start').disabled = true;
  renderStatus(j);

  const tasks = j.rows.flatMap((row) => Object.keys(PROVIDERS).map((p) => [row, p]));
  let next = 0;
  const worker = async () => {
    while (!j.cancelled && next < tasks.length) {
      const [row, p] = tasks[next++];
      await runCell(j, row, p);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  j.finished = true;
  if (j !== job) return;
  if (j.cancelled) {
    for (const row of j.rows) {
      for (const p of Object.keys(PROVIDERS)) {
        if (!row[p]) {
          row[p] = { state: 'cancelled' };
          row.cells[p].dataset.state = 'cancelled';
          row.cells[p].textContent = MARK.cancelled();
        }
      }
    }
  }
  show($('#bulk-cancel'), false);
  $('#bulk-start').disabled = false;
  renderStatus(j);
}

export function wireBulk() {
  $('#bulk-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const err = $('#bulk-error');
    const { emails, ignored } = parseEmails($('#bulk-input').value);
    let message = '';
    if (!emails.length) message = 'Paste at least one email address: one per line, or a CSV with an email column.';
    else if (emails.length > MAX_EMAILS) message = `At most ${MAX_EMAILS} emails at once; this has ${emails.length}. Split the list.`;
    err.textContent = message;
    show(err, !!message);
    if (message) return;
    $('#bulk-note').textContent = ignored ? `${ignored} field${ignored === 1 ? '' : 's'} with an @ that ` +
      `${ignored === 1 ? 'is' : 'are'} not an email address ${ignored === 1 ? 'was' : 'were'} skipped.` : '';
    start(emails);
  });
  $('#bulk-cancel').addEventListener('click', cancel);
  $('#bulk-export').addEventListener('click', exportCsv);
}
