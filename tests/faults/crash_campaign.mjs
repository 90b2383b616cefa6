// The crash campaign, shared by scripts/crashtest (200 kills by default) and
// tests/faults/crash.test.mjs (a short run inside scripts/test).
//
// Setup: a sandbox issuing 2-second access tokens (not 1: the sandbox counts whole seconds, so a 1-second token can
// expire a few milliseconds after it was issued), a recording tap between the relay and the sandbox
// (tests/faults/lib.mjs), a relay with a data dir and a store key, Keap and Jira connected by the OAuth dance.
// Then, once per kill:
//   1. drive concurrent proxied calls (Keap REST, Keap XML-RPC, Jira search) with the relay API key: with 2-second
//      tokens they keep triggering refreshes, i.e. token-endpoint calls and store writes (temp file, fsync, rename);
//   2. SIGKILL the relay, either after a random delay (0..maxDelayMs) or — a "targeted" kill — 0..targetMs ms after
//      the tap handed a freshly rotated token to the relay (the worst moment: the provider has rotated, the relay
//      may not have persisted yet);
//   3. with the relay dead, look at what it left on disk: tokens.json must parse and every record must open with
//      the store key (never half-written); temp files are counted; the persisted refresh token is compared with the
//      last one the provider issued: if they differ the kill landed in THE WINDOW (rotated at the provider, not
//      persisted by the relay);
//   4. restart the relay on the same data dir and port: it must start (the store loads) and /api/connections must
//      answer; then the sandbox clock is moved 2 s so every stored access token is expired at the provider, and one
//      lookup per provider forces a refresh with the persisted refresh token. The temp files the killed writer left
//      must be gone after the restart. Outcome per connection: usable (200)
//      or needs_reauth (409 connection.needs_reauth AND /api/connections says needs_reauth); anything else is broken.
//      A needs_reauth is only correct after a Keap window hit (Keap's old refresh token is dead once rotated); after
//      a Jira window hit the connection must stay usable (Atlassian's 10-minute reuse leeway); both are checked;
//   5. a connection marked needs_reauth is connected again (login + consent), as a person would.
// Reading the sandbox is never the relay's view: the tap and the store file are the ground truth.

import { readFile } from 'node:fs/promises';

import {
  DEMO_PASSWORD, DEMO_USER, TIMEOUT_MS, apiCall, client, newApiKey, newStoreKey, sleep, startRelay, startSandbox,
} from '../lib/harness.mjs';
import { plainCall, quantiles, readStore, rng, startHookTap, tempFiles } from './lib.mjs';

const PROVIDERS = ['keap', 'jira'];
const LOOKUP = {
  keap: '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com',
  jira: '/proxy/jira/rest/api/3/user/search?query=ada@example.com',
};
const XMLRPC_FIND = '<?xml version="1.0"?><methodCall><methodName>DataService.findByField</methodName><params>' +
  '<param><value><string>k</string></value></param><param><value><string>Contact</string></value></param>' +
  '<param><value><int>10</int></value></param><param><value><int>0</int></value></param>' +
  '<param><value><string>Email</string></value></param><param><value><string>ada@example.com</string></value></param>' +
  '<param><value><array><data><value><string>FirstName</string></value></data></array></value></param></params></methodCall>';

/** Lines of the relay's stderr (JSON) of the current run whose msg is `msg`, by provider. */
function countLogged(lines, msgs) {
  const out = { keap: 0, jira: 0 };
  for (const { line } of lines) {
    if (!line.startsWith('{')) continue;
    let j;
    try { j = JSON.parse(line); } catch { continue; }
    if (msgs.includes(j.msg) && j.provider in out) out[j.provider] += 1;
  }
  return out;
}

/**
 * runCrashCampaign(options) → summary (see the bottom). Options:
 *   kills (200), maxDelayMs (1500), targetedShare (0.25: the share of kills aimed at a rotated token),
 *   targetMs (4: a targeted kill lands 0..targetMs ms after the answer reached the relay), workers (6),
 *   seed (random), log (a line printer), t (a node:test context for cleanup).
 * Throws only when the setup fails; every broken outcome is counted and described in summary.problems.
 */
export async function runCrashCampaign({
  kills = 200, maxDelayMs = 1500, targetedShare = 0.25, targetMs = 4, workers = 6, seed, log = () => {}, t,
} = {}) {
  seed ??= Math.floor(Math.random() * 2 ** 31);
  const random = rng(seed);
  const sandbox = await startSandbox({ t, autoApprove: true, accessTtl: 2 });
  // The crash loop makes far more OAuth calls per minute than Keap's default allowance; not what is under test.
  await plainCall(`${sandbox.url}/sandbox/limits`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ keap_oauth_per_minute: 1000000, keap_oauth_per_day: 100000000, jira_burst: 100000, jira_per_second: 100000 }),
  });
  const tap = await startHookTap({ sandbox, t });
  const storeKey = newStoreKey();
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox: tap, storeKey, apiKey, t, name: 'keyrelay-crash' });
  const browser = client(relay.url, { record: false });
  const connect = async (provider) => {
    const login = await browser.login(DEMO_USER, DEMO_PASSWORD);
    if (login.status !== 200) throw new Error(`login → ${login.status} ${login.body}`);
    const flow = await browser.connect(provider);
    if (flow.final.rawLocation !== `/?connected=${provider}`) throw new Error(`connect ${provider}:\n  ${flow.trace}`);
  };
  for (const p of PROVIDERS) await connect(p);

  const s = {
    seed, kills: 0, targetedKills: 0, randomKills: 0, killsDuringRefresh: 0,
    window: { keap: 0, jira: 0 },              // kills that landed between the provider's rotation and the persist
    windowOnTargeted: 0, windowKills: { random: 0, aimed: 0 }, aimedByDelay: {},
    outcomes: { usable: 0, needs_reauth: 0, broken: 0 },
    jiraSavedByLeeway: 0, keapLostToWindow: 0, reconnects: 0, secondTries: 0,
    storeAlwaysParsed: true, storeLoadFailures: 0, connectionsAnswered: 0,
    tempFilesAfterKill: 0, tempFileNames: new Set(), tempFilesRemovedByRestart: 0,
    refreshesAtProvider: 0, callsOk: 0, callsFailed: 0,
    persistLatencyMs: [],
    problems: [],
  };
  const problem = (i, what) => { s.problems.push(`kill ${i}: ${what}`); log(`  !! kill ${i}: ${what}`); };

  for (let i = 1; i <= kills; i++) {
    const runLines = relay.logs().length;
    const refreshesBefore = { keap: tap.requests.keap.refresh, jira: tap.requests.jira.refresh };

    // 1. Load.
    let running = true;
    const loop = async (w) => {
      let n = 0;
      while (running) {
        n += 1;
        const pick = (w + n) % 5;
        const res = pick === 4
          ? await plainCall(`${relay.url}/proxy/keap/crm/xmlrpc/v1`, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'text/xml' }, body: XMLRPC_FIND, timeout: 5000 })
          : await plainCall(relay.url + LOOKUP[pick % 2 ? 'jira' : 'keap'], { headers: { Authorization: `Bearer ${apiKey}` }, timeout: 5000 });
        if (res.status === 200) s.callsOk += 1; else s.callsFailed += 1;
        if (res.status === 0) await sleep(5);
      }
    };
    const load = Array.from({ length: workers }, (_, w) => loop(w));

    // 2. Kill.
    const targeted = random() < targetedShare;
    let deliveredAt = null;
    const delay = Math.floor(random() * (targetMs + 1));
    if (targeted) {
      await new Promise((resolve) => {
        const fallback = setTimeout(() => { off(); resolve(); }, maxDelayMs + 3000);
        const off = tap.onTokenAnswer(({ grant, status }) => {
          if (grant !== 'refresh' || status !== 200) return;
          off();
          clearTimeout(fallback);
          deliveredAt = Date.now();
          if (delay === 0) { relay.child.kill('SIGKILL'); resolve(); } else setTimeout(() => { relay.child.kill('SIGKILL'); resolve(); }, delay);
        });
      });
    } else {
      await sleep(Math.floor(random() * (maxDelayMs + 1)));
    }
    const exit = await relay.stop('SIGKILL');
    s.kills += 1;
    if (deliveredAt !== null) s.targetedKills += 1; else s.randomKills += 1;
    if (exit.signal !== 'SIGKILL') problem(i, `the relay had already exited (${JSON.stringify(exit)}) before the kill`);
    running = false;
    await Promise.all(load);
    await tap.waitIdle();
    await sleep(20); // the last stderr lines of the killed process

    // Was a refresh in flight? The tap saw a refresh request whose outcome the relay never logged.
    const lines = relay.logs().slice(runLines);
    const done = countLogged(lines, ['token refreshed', 'token refresh failed', 'token refresh failed: provider unreachable',
      'connection needs re-authorization: the grant is dead', 'refreshed tokens could not be saved; the connection will need re-authorization']);
    let inFlight = false;
    for (const p of PROVIDERS) {
      const started = tap.requests[p].refresh - refreshesBefore[p];
      if (started > done[p]) inFlight = true;
    }
    if (inFlight) s.killsDuringRefresh += 1;
    // 3. What the dead relay left on disk.
    const store = await readStore(relay.dataDir, storeKey);
    if (!store.parses) { s.storeAlwaysParsed = false; problem(i, store.error); }
    if (store.error) problem(i, store.error);
    const temps = await tempFiles(relay.dataDir);
    s.tempFilesAfterKill = Math.max(s.tempFilesAfterKill, temps.length);
    for (const f of temps) s.tempFileNames.add(f);
    const windowHit = {};
    for (const p of PROVIDERS) {
      const latest = tap.latest(p);
      const stored = store.records[p];
      windowHit[p] = Boolean(latest && stored && !stored.needs_reauth && stored.tokens?.refresh_token !== latest.refresh_token);
      if (windowHit[p]) {
        s.window[p] += 1;
        if (deliveredAt !== null) s.windowOnTargeted += 1;
      }
      if (!stored) problem(i, `${p}: the record is missing from tokens.json`);
    }
    const hit = PROVIDERS.some((p) => windowHit[p]);
    if (hit) s.windowKills[deliveredAt !== null ? 'aimed' : 'random'] += 1;
    if (deliveredAt !== null) {
      const row = (s.aimedByDelay[delay] ??= { kills: 0, inWindow: 0 });
      row.kills += 1;
      if (hit) row.inWindow += 1;
    }

    // 4. Restart on the same data dir; the store must load and every connection must be usable or marked.
    const reusesBefore = (await tap.tokenStats('jira')).reuses ?? 0;
    try {
      await relay.restart();
    } catch (err) {
      s.storeLoadFailures += 1;
      problem(i, `the relay did not start again: ${err.message.split('\n').slice(0, 6).join(' | ')}`);
      break;
    }
    const restartLines = relay.logs().length;
    const after = await tempFiles(relay.dataDir);
    s.tempFilesRemovedByRestart += temps.filter((f) => !after.includes(f)).length;
    // A restart removes what a killed writer left behind (relay/src/state/store_keys.cpp remove_stale_temp_files).
    const stale = after.filter((f) => temps.includes(f));
    if (stale.length) problem(i, `the restart left the killed relay's temp files: ${stale.join(', ')}`);
    const conns = await apiCall(relay.url, 'GET', '/api/connections', { apiKey });
    if (conns.status !== 200) { problem(i, `/api/connections → ${conns.status} ${conns.body.slice(0, 200)}`); continue; }
    s.connectionsAnswered += 1;
    await tap.clock(2);
    for (const p of PROVIDERS) {
      const entry = conns.json.connections.find((c) => c.provider === p);
      let outcome;
      let detail = '';
      if (entry?.needs_reauth) {
        outcome = 'needs_reauth';
      } else if (!entry?.connected) {
        outcome = 'broken';
        detail = `not connected after the restart: ${JSON.stringify(entry)}`;
      } else {
        let res = await apiCall(relay.url, 'GET', LOOKUP[p], { apiKey, timeout: 20_000 });
        if (res.status === 401 || (res.status === 502 && res.json?.error?.code === 'upstream.gateway_fault')) {
          // The provider refused the token the relay had just refreshed: with 2-second tokens counted in whole
          // seconds, a stalled machine can outlive a fresh token between the refresh and the retry. A second call
          // tells a transient expiry from a half-broken connection (which would fail again).
          s.secondTries += 1;
          res = await apiCall(relay.url, 'GET', LOOKUP[p], { apiKey, timeout: 20_000 });
        }
        if (res.status === 200) {
          outcome = 'usable';
        } else if (res.status === 409 && res.json?.error?.code === 'connection.needs_reauth') {
          const again = await apiCall(relay.url, 'GET', '/api/connections', { apiKey });
          const marked = again.json?.connections?.find((c) => c.provider === p)?.needs_reauth === true;
          outcome = marked ? 'needs_reauth' : 'broken';
          if (!marked) detail = 'the lookup says needs_reauth but /api/connections does not';
        } else {
          outcome = 'broken';
          detail = `lookup → ${res.status} ${res.body.slice(0, 200)}`;
        }
      }
      s.outcomes[outcome] += 1;
      if (outcome === 'broken') {
        const trail = relay.logs().slice(restartLines).map((l) => l.line).filter((l) => /refresh|retry|upstream|re-auth/.test(l));
        problem(i, `${p}: ${detail}; window hit: ${windowHit[p]}; stored v${store.records[p]?.version}; relay log since restart:\n    ${trail.join('\n    ')}`);
      }
      if (outcome === 'needs_reauth') {
        if (p === 'keap' && windowHit.keap) s.keapLostToWindow += 1;
        else problem(i, `${p} needs re-authorization although the kill did not land in ${p}'s rotation window`);
      } else if (outcome === 'usable' && windowHit[p]) {
        if (p === 'jira') {
          const reuses = (await tap.tokenStats('jira')).reuses ?? 0;
          if (reuses > reusesBefore) s.jiraSavedByLeeway += 1;
          else problem(i, 'jira: a window hit stayed usable without a reuse inside the leeway (the check is wrong)');
        } else {
          problem(i, 'keap: a window hit stayed usable, but Keap kills the old refresh token (the check is wrong)');
        }
      }
      // 5. Connect again what needs it.
      if (outcome === 'needs_reauth') {
        try { await connect(p); s.reconnects += 1; } catch (err) { problem(i, `reconnecting ${p} failed: ${err.message}`); }
      }
    }
    const storeAfter = await readStore(relay.dataDir, storeKey);
    if (!storeAfter.parses || storeAfter.error) problem(i, `after the restart: ${storeAfter.error}`);
    if (i % 10 === 0 || i === kills) {
      log(`kill ${i}/${kills}: during refresh ${s.killsDuringRefresh}, window keap ${s.window.keap} jira ${s.window.jira}, ` +
        `usable ${s.outcomes.usable}, needs_reauth ${s.outcomes.needs_reauth}, broken ${s.outcomes.broken}`);
    }
  }
  const stats = await tap.stats();
  for (const p of PROVIDERS) s.refreshesAtProvider += stats.tokens?.[tap.config[p].client_id]?.refreshes ?? 0;
  s.tempFilesLeft = await tempFiles(relay.dataDir);
  // How long the relay took from receiving a rotated token to logging it persisted (the log line follows the save):
  // every "token refreshed" line against the last refresh answer the tap handed over before it.
  for (const { line } of relay.logs()) {
    if (!line.includes('"token refreshed"')) continue;
    let j;
    try { j = JSON.parse(line); } catch { continue; }
    const ts = Date.parse(j.ts);
    const before = (tap.issued[j.provider] ?? []).filter((e) => e.grant === 'refresh' && e.status === 200 && e.at <= ts + 1);
    if (before.length) s.persistLatencyMs.push(Math.max(0, ts - before[before.length - 1].at));
  }
  const [p50, p90, pmax] = quantiles(s.persistLatencyMs, [0.5, 0.9, 1]);
  s.persistLatency = { samples: s.persistLatencyMs.length, p50, p90, max: pmax };
  s.tempFileNames = [...s.tempFileNames];
  s.finalStoreBytes = (await readFile(`${relay.dataDir}/tokens.json`)).length;
  delete s.persistLatencyMs;
  void TIMEOUT_MS;
  return s;
}

/** The printed report of a campaign (scripts/crashtest and the test's diagnostics). */
export function formatSummary(s) {
  const kinds = (names) => {
    const m = new Map();
    for (const n of names) {
      const k = n.replace(/\.tmp\.\d+\.[0-9a-f]+$/, '.tmp.<pid>.<random>').replace(/\.tmp\.\d+$/, '.tmp.<pid>');
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return [...m].map(([k, n]) => `${n} × ${k}`).join(', ') || 'none';
  };
  return [
    `seed ${s.seed}`,
    `kills: ${s.kills} (${s.randomKills} at a random moment, ${s.targetedKills} aimed 0-4 ms after a rotated token reached the relay)`,
    `kills during a refresh (the provider got a refresh request whose outcome the relay never logged): ${s.killsDuringRefresh}`,
    `kills in the rotation window (rotated at the provider, not persisted): ${s.windowKills.random} of ${s.randomKills} random kills, ${s.windowKills.aimed} of ${s.targetedKills} aimed kills; connections hit: keap ${s.window.keap}, jira ${s.window.jira}`,
    `  aimed kills by delay after the rotated token reached the relay: ${Object.entries(s.aimedByDelay).map(([d, r]) => `${d} ms: ${r.inWindow}/${r.kills} in the window`).join(', ')}`,
    `outcomes per connection after restart: usable ${s.outcomes.usable}, needs_reauth ${s.outcomes.needs_reauth}, broken ${s.outcomes.broken}`,
    `  keap lost to the window (needs_reauth, reconnected): ${s.keapLostToWindow}; jira saved by the 10-minute reuse leeway: ${s.jiraSavedByLeeway}; reconnects: ${s.reconnects}`,
    `  lookups that needed a second call (a just-refreshed 2-second token already expired on a stalled machine): ${s.secondTries}`,
    `store: tokens.json always parsed and opened: ${s.storeAlwaysParsed && !s.problems.some((p) => /does not open|not JSON/.test(p))}; relay failed to start: ${s.storeLoadFailures}; /api/connections answered ${s.connectionsAnswered}/${s.kills}`,
    `temp files: at most ${s.tempFilesAfterKill} after a kill; removed by a restart: ${s.tempFilesRemovedByRestart}; left at the end: ${kinds(s.tempFilesLeft)}`,
    `relay: rotated token received → "token refreshed" logged (after the save): p50 ${s.persistLatency.p50} ms, p90 ${s.persistLatency.p90} ms, max ${s.persistLatency.max} ms over ${s.persistLatency.samples} refreshes`,
    `refreshes at the provider: ${s.refreshesAtProvider}; proxied calls ok ${s.callsOk}, failed ${s.callsFailed} (the failures are the kills)`,
    `problems: ${s.problems.length}${s.problems.length ? '\n  ' + s.problems.slice(0, 30).join('\n  ') : ''}`,
  ].join('\n');
}
