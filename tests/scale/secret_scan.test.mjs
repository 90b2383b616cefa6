// Redis never sees a secret in plaintext (docs/security.md): after a full session over three relays — a failed and a
// good login, both providers connected, a refresh, proxied calls on every relay, and an OAuth flow left half done so
// that its state record is live — every key that `redis-cli --scan` lists, its DUMP payload and its contents read by
// type hold no token, client secret, password, session id, OAuth state or PKCE verifier, in any of the forms they
// travel in. Connections are sealed records; sessions, states and the throttle are keyed by SHA-256 hashes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startHookTap } from '../faults/lib.mjs';
import { LOOKUP, raiseSandboxLimits, startCluster, untilExpired } from '../lib/cluster.mjs';
import { SANDBOX_TOKEN_PATTERNS, addSecret, checkLeaksAfterAll, recorded, startSandbox } from '../lib/harness.mjs';
import { hasRedis, readAll } from '../lib/redis.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';

/** The forms a secret can take in a store: as is, percent-encoded, base64 and base64url of its bytes. */
const formsOf = (value) => [...new Set([value, encodeURIComponent(value), Buffer.from(value).toString('base64').replace(/=+$/, ''),
  Buffer.from(value).toString('base64url')])];

test('after a full session over three relays, no key, DUMP payload or value in Redis holds a secret in plaintext', { skip, timeout: 120_000 }, async (t) => {
  const sandbox = await startSandbox({ autoApprove: true, accessTtl: 2, t });
  await raiseSandboxLimits(sandbox);
  const tap = await startHookTap({ sandbox, t });
  const cluster = await startCluster({ t, sandbox: tap });
  const browser = cluster.browser();

  const wrong = 'scan-wrong-password-' + Date.now();
  addSecret(wrong, 'a wrong password');
  assert.equal((await cluster.direct(2, browser).login('demo', wrong)).status, 401);
  await cluster.connect(browser, ['keap', 'jira']);
  for (const provider of ['keap', 'jira']) {
    await untilExpired(cluster, provider, 100);
    for (const i of [0, 1, 2]) {
      const res = await cluster.api(i, 'GET', LOOKUP[provider]);
      assert.equal(res.status, 200, `relay ${'ABC'[i]} ${provider}: ${res.body}`);
    }
    const s = await sandbox.tokenStats(provider);
    assert.ok(s.refreshes >= 1, `${provider} was never refreshed: ${JSON.stringify(s)}`);
  }
  // A flow started and not finished: its state record (which holds the PKCE verifier) is in Redis now.
  const pending = await cluster.direct(1, browser).authorize('jira');

  // The relay hands the state to the browser (it is in the authorize URL and the state cookie), so it is not one of
  // the harness's secrets for responses; Redis must still never hold it as is.
  const secrets = new Map(recorded.secrets);
  secrets.set(pending.state, 'OAuth state of an unfinished flow');
  for (const req of tap.seen) {
    const verifier = /code_verifier"?\s*[:=]\s*"?([A-Za-z0-9._~-]{20,})/.exec(req.body)?.[1];
    if (verifier) secrets.set(verifier, 'PKCE code_verifier');
  }
  for (const cookie of browser.jar.get('127.0.0.1')?.values() ?? []) {
    if (cookie.value.length >= 6) secrets.set(cookie.value, `cookie ${cookie.name}`);
  }
  for (const r of recorded.responses) {
    const loc = r.headers?.location;
    const state = loc && /[?&]state=([^&]+)/.exec(loc)?.[1];
    if (state) secrets.set(decodeURIComponent(state), 'OAuth state');
  }
  const labels = new Set(secrets.values());
  // PKCE is off for the sandbox's providers (relay/src/config.cpp), so a verifier is looked for only when one was sent.
  const pkce = recorded.responses.some((r) => /[?&]code_challenge=/.test(r.headers?.location ?? ''));
  for (const expected of ['sandbox keap.client_secret', 'Redis password', 'KEYRELAY_STORE_KEY', 'KEYRELAY_API_KEY', 'OAuth state',
    'sandbox-issued refresh_token', 'sandbox-issued access_token', 'cookie keyrelay_session', ...(pkce ? ['PKCE code_verifier'] : [])]) {
    assert.ok(labels.has(expected), `the scan would not look for a ${expected} (labels: ${[...labels].join(', ')})`);
  }

  const leaksIn = (entries) => {
    const found = [];
    for (const e of entries) {
      const places = [['key name', Buffer.from(e.key)], ['DUMP', e.dump], ...e.values.map((v, k) => [`value ${k}`, v])];
      for (const [where, bytes] of places) {
        const textForm = bytes.toString('latin1');
        for (const [value, label] of secrets) {
          if (formsOf(value).some((f) => textForm.includes(f))) found.push(`${label} in ${e.key} (${e.type}) ${where}`);
        }
        for (const re of SANDBOX_TOKEN_PATTERNS) if (re.test(textForm)) found.push(`a token (${re}) in ${e.key} ${where}`);
      }
    }
    return found;
  };

  // The scan finds what it looks for: a refresh token planted in a hash, then removed.
  const planted = tap.latest('keap').refresh_token;
  await cluster.redis.command('HSET', 'keyrelay:scan-canary', 'f', `{"x":"${planted}"}`);
  const canary = leaksIn(await readAll(cluster.redis, 'keyrelay:scan-canary'));
  await cluster.redis.command('DEL', 'keyrelay:scan-canary');
  assert.ok(canary.some((l) => l.startsWith('sandbox-issued refresh_token in keyrelay:scan-canary (hash) DUMP')) &&
    canary.some((l) => l.includes('value 1')), `the scan missed a planted refresh token: ${JSON.stringify(canary)}`);

  const entries = await readAll(cluster.redis);
  assert.ok(entries.length >= 4, `too few keys to prove anything: ${entries.map((e) => e.key)}`);
  const foreign = entries.filter((e) => !e.key.startsWith('keyrelay:')).map((e) => e.key);
  assert.deepEqual(foreign, [], 'keys outside keyrelay:');
  const leaks = leaksIn(entries);
  t.diagnostic(`scanned ${entries.length} keys (${[...new Set(entries.map((e) => e.key.split(':').slice(0, 2).join(':')))].join(', ')}) ` +
    `for ${secrets.size} secrets and ${SANDBOX_TOKEN_PATTERNS.length} token patterns`);
  assert.deepEqual(leaks, [], 'secrets in Redis');
});
