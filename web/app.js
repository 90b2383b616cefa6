// The lookup page. Plain ES modules, no framework, no build step. One module per screen:
//   login.js        signing in and out
//   connections.js  the connection cards / status strip, Connect, Disconnect, the notice after a consent page
//   lookup.js       one email in Keap and Jira (recent.js: the recent lookups kept in this browser)
//   bulk.js         many emails, a table, CSV
//   explain.js      explain a pasted response, without signing in
//   migrate.js      the same panel's other mode: a pasted XML-RPC call as the REST calls it becomes
// Shared: dom.js (text-only DOM helpers), relay.js (fetch to the relay), problem.js (errors for people),
// state.js (the one state object).
//
// The page talks only to the relay that serves it (docs/api.md): /login, /api/session, /api/connections,
// /connect/..., and /proxy/{keap,jira}/... for the API calls. The requests for Keap and Jira are built, and their
// answers parsed and diagnosed, by keyrelay's core compiled to WebAssembly (wasm/keyrelay.mjs): the same code the
// relay runs. No token or secret ever reaches this page.
import { $, show } from './dom.js';
import { call } from './relay.js';
import { state } from './state.js';
import { showApp, showLogin, whenSignedIn, wireLogin } from './login.js';
import { consentOutcome } from './connections.js';
import { startLookup, wireLookup } from './lookup.js';
import { wireBulk } from './bulk.js';
import { wireExplain } from './explain.js';
import { wireMigrate } from './migrate.js';

function fatal(message) {
  const el = $('#fatal');
  el.textContent = message;
  show(el);
}

async function start() {
  wireLogin();
  wireLookup();
  wireBulk();
  wireExplain();
  wireMigrate();

  // Back from a consent page (/?connected=keap, /?connect_failed=keap&code=...): say so once, then clean the
  // address bar so a reload does not say it again. ?email= stays: it is the lookup to repeat.
  const params = new URLSearchParams(location.search);
  consentOutcome(params);
  const email = params.get('email') || '';
  const clean = email ? `${location.pathname}?email=${encodeURIComponent(email)}` : location.pathname;
  if (location.pathname + location.search !== clean) history.replaceState(null, '', clean);
  let pending = email;
  whenSignedIn(() => {
    startLookup(pending);
    pending = '';
  });

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
