// The connections screen: one card per provider, collapsed into a one-line status strip once both are connected;
// Connect, Reconnect and Disconnect (asked first); the reconnect banner; the notice after a consent page.
import { $, h, notice, show } from './dom.js';
import { call, relayError } from './relay.js';
import { PROVIDERS, state } from './state.js';
import { showLogin } from './login.js';

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

// ---- the relay's connection records ----

export async function refreshConnections() {
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

export function statusOf(provider) {
  const c = state.connections[provider];
  return c && c.needs_reauth ? 'reauth' : c && c.connected ? 'on' : 'off';
}

// Keap names the account ("ab123.infusionsoft.com"); Jira the site ("https://example.atlassian.net").
export function accountLabel(c) {
  return ((c && c.account) || '').replace(/^https:\/\//, '').replace(/\/$/, '');
}

function warningsOf(c) {
  return c && Array.isArray(c.warnings) ? c.warnings.filter((w) => w && typeof w.message === 'string') : [];
}

let stripOpen = false;

function renderConnections() {
  for (const provider of Object.keys(PROVIDERS)) renderCard(provider, state.connections[provider]);
  renderStrip();
  renderReauthBanner();
}

// Both connected and healthy: the cards give way to one line, so the lookup comes first.
function renderStrip() {
  const strip = $('#conn-strip');
  const all = Object.keys(PROVIDERS).every((p) => statusOf(p) === 'on');
  show(strip, all);
  show($('#connections'), !all || stripOpen);
  if (!all) return;
  const toggle = h('button', { type: 'button', class: 'link strip-toggle', 'aria-expanded': String(stripOpen),
    'aria-controls': 'connections' }, stripOpen ? 'Hide details' : 'Manage');
  toggle.addEventListener('click', () => { stripOpen = !stripOpen; renderStrip(); });
  strip.replaceChildren(
    ...Object.keys(PROVIDERS).map((p) => {
      const c = state.connections[p];
      const warnings = warningsOf(c);
      return h('span', { class: 'strip-item', 'data-provider': p },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('strong', {}, PROVIDERS[p].name), ' connected',
        accountLabel(c) ? h('span', { class: 'muted' }, ` · ${accountLabel(c)}`) : null,
        warnings.map((w) => h('span', { class: 'strip-warning', 'data-code': w.code || '' }, w.message)));
    }),
    toggle);
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

  const status = statusOf(provider);
  card.dataset.status = status;
  badge.dataset.status = status;
  badge.textContent = { off: 'Not connected', reauth: 'Needs reconnecting', on: 'Connected' }[status];

  const fact = (term, ...desc) => facts.append(h('div', { class: 'fact' }, h('dt', {}, term), h('dd', {}, ...desc)));

  note.textContent = status === 'off' ? `Connect once; from then on the relay keeps ${name} access alive.` : '';
  show(note, status === 'off');
  show(facts, status !== 'off');
  if (status !== 'off') {
    const account = accountLabel(c);
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
    for (const w of warningsOf(c)) {
      facts.append(h('p', { class: 'conn-warning', 'data-code': w.code || '' }, w.message));
    }
  }

  if (!c || isOAuth(c)) {
    if (status === 'on') {
      actions.append(
        h('a', { class: 'btn btn-secondary', href: `/connect/${provider}` }, 'Reconnect'),
        h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => askDisconnect(provider, actions) },
          'Disconnect'));
    } else {
      actions.append(h('a', { class: 'btn btn-primary', href: `/connect/${provider}` },
        status === 'reauth' ? `Reconnect ${name}` : `Connect ${name}`));
    }
  }
}

function renderReauthBanner() {
  const banner = $('#reauth');
  const dead = Object.keys(PROVIDERS).filter((p) => statusOf(p) === 'reauth');
  banner.replaceChildren();
  if (!dead.length) return show(banner, false);
  for (const p of dead) {
    const name = PROVIDERS[p].name;
    banner.append(h('div', { class: 'banner-row' },
      h('div', {},
        h('strong', {}, `${name} needs to be reconnected.`), ' ',
        'The relay could not renew its access: the grant was revoked, or it expired unused. ',
        `${name} lookups fail until you reconnect.`),
      h('a', { class: 'btn btn-primary', href: `/connect/${p}` }, `Reconnect ${name}`)));
  }
  show(banner);
}

export function markNeedsReauth(provider) {
  const c = state.connections[provider];
  if (c && !c.needs_reauth) {
    c.needs_reauth = true;
    renderConnections();
  }
  refreshConnections();
}

// ---- disconnect: asked first, in the card ----

function askDisconnect(provider, actions) {
  const name = PROVIDERS[provider].name;
  const confirmBox = h('div', { class: 'confirm', role: 'alertdialog', 'aria-labelledby': `confirm-${provider}` },
    h('p', { id: `confirm-${provider}`, class: 'confirm-title' }, `Disconnect ${name}?`),
    h('p', { class: 'confirm-text' },
      `The relay deletes its ${name} tokens at once. ${name} lookups stop until someone connects again, which needs `,
      `a ${name} sign-in and consent. Nothing in ${name} itself is changed or deleted.`));
  const yes = h('button', { type: 'button', class: 'btn btn-danger btn-small' }, `Disconnect ${name}`);
  const no = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Keep connected');
  confirmBox.append(h('div', { class: 'confirm-actions' }, yes, no));
  yes.addEventListener('click', () => disconnect(provider));
  no.addEventListener('click', () => renderConnections());
  confirmBox.addEventListener('keydown', (e) => { if (e.key === 'Escape') no.click(); });
  actions.replaceChildren(confirmBox);
  no.focus();
}

async function disconnect(provider) {
  let res;
  try {
    res = await call(`/api/connections/${provider}/disconnect`, { method: 'POST' });
  } catch (err) {
    res = { status: 0, data: null, failure: err.message };
  }
  if (res.status === 204 || res.status === 200) {
    notice(`${PROVIDERS[provider].name} is disconnected. The relay deleted its tokens.`);
  } else {
    const e = relayError(res);
    notice(e ? `${e.message} ${e.hint || ''}`.trim()
      : res.failure ? 'The relay did not answer. Try again.'
      : `Disconnecting failed (HTTP ${res.status}).`, 'error');
  }
  refreshConnections();
}

// ---- back from a consent page ----

// /?connected=<provider> after Allow; /?connect_failed=<provider>&code=<diagnosis code> after Deny/Cancel or any
// error= the provider sent to the callback (docs/api.md).
export function consentOutcome(params) {
  const connected = params.get('connected');
  if (connected && PROVIDERS[connected]) notice(`${PROVIDERS[connected].name} is connected.`);
  const failed = params.get('connect_failed');
  if (!failed || !PROVIDERS[failed]) return;
  const name = PROVIDERS[failed].name;
  const code = params.get('code') || '';
  // Keap's consent page says Deny, Jira's says Cancel (relay/sandbox/INTERFACE.md, and the real pages).
  const pressed = failed === 'jira' ? 'Cancel' : 'Deny';
  const why = code === 'oauth.access_denied' ? `you pressed ${pressed}.`
    : `${name} answered with an error${code ? ` (${code})` : ''}.`;
  const box = $('#connect-failed');
  box.replaceChildren(h('div', { class: 'banner-row' },
    h('div', {}, h('strong', {}, `${name} was not connected: ${why}`), ' ',
      code === 'oauth.access_denied' ? `The relay needs your consent to look people up in ${name}.`
        : 'Try again; if it happens again, ask whoever runs the relay to check its log.'),
    h('div', { class: 'banner-actions' },
      h('a', { class: 'btn btn-primary', href: `/connect/${failed}` }, 'Try again'),
      h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => show(box, false) }, 'Dismiss'))));
  box.dataset.provider = failed;
  box.dataset.code = code;
  show(box);
}
