// Three relays on one Redis behind a round-robin nginx share what a browser's visit is made of: the session (made on
// one relay, used on another, ended everywhere by a logout on a third), the one-time OAuth state and its PKCE
// verifier (/connect on one relay, /callback on another), and the login throttle (docs/api.md "Page sessions"). Each
// request is sent to one particular relay, as a browser's requests land on whichever relay nginx picks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOOKUP, startCluster } from '../lib/cluster.mjs';
import { addSecret, checkLeaksAfterAll, errorOf } from '../lib/harness.mjs';
import { hasRedis } from '../lib/redis.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';
const XRW = { 'X-Requested-With': 'keyrelay' };

test('a session made on relay A works on relay B; a logout on relay C ends it on all three', { skip }, async (t) => {
  const cluster = await startCluster({ t });
  const browser = cluster.browser();
  const [a, b, c] = [0, 1, 2].map((i) => cluster.direct(i, browser));

  const login = await a.login();
  assert.equal(login.status, 200, login.body);
  const cookie = a.cookie('keyrelay_session');
  assert.ok(cookie, `no keyrelay_session cookie from relay A: ${login.setCookie}`);

  for (const [name, relay] of [['B', b], ['C', c], ['nginx', browser]]) {
    const session = await relay.get('/api/session');
    assert.equal(session.status, 200, `relay ${name} does not know the session made on relay A: ${session.body}`);
    assert.equal(session.json?.user, 'demo');
  }

  const logout = await c.post('/logout', { headers: XRW });
  assert.equal(logout.status, 204, logout.body);
  // The browser dropped the cookie; an attacker who copied it must find it dead on every relay.
  for (const [i, name] of [[0, 'A'], [1, 'B'], [2, 'C']]) {
    const res = await cluster.direct(i).get('/api/session', { headers: { Cookie: `keyrelay_session=${cookie.value}` } });
    assert.equal(res.status, 401, `relay ${name} still accepts the session that was logged out on relay C: ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.no_session');
  }
});

for (const provider of ['keap', 'jira']) {
  test(`${provider}: /connect served by relay A and /callback by relay B connect the provider for all three relays`, { skip }, async (t) => {
    const cluster = await startCluster({ t });
    const browser = cluster.browser();
    const [a, b] = [0, 1].map((i) => cluster.direct(i, browser));
    assert.equal((await a.login()).status, 200);

    const flow = await a.authorize(provider);
    const redirect = new URL(flow.callbackUrl);
    assert.equal(redirect.origin, cluster.url, `the redirect URI must be public_url's (the load balancer): ${flow.callbackUrl}`);
    // The provider sends the browser to the load balancer; this time nginx hands the callback to relay B.
    const onB = new URL(redirect.pathname + redirect.search, cluster.relays[1].url).href;
    const stateCookie = a.cookie(`keyrelay_oauth_${provider}`);
    assert.ok(stateCookie, `relay A set no keyrelay_oauth_${provider} cookie`);
    const callback = await b.request('GET', onB, { initiator: flow.steps[flow.steps.length - 1].url });
    assert.equal(callback.status, 302, `relay B refused the callback of a flow relay A started: ${callback.status} ${callback.body.slice(0, 500)}\n${cluster.logs(1).slice(-3000)}`);
    assert.equal(callback.rawLocation, `/?connected=${provider}`);

    for (const i of [0, 1, 2]) {
      const res = await cluster.api(i, 'GET', LOOKUP[provider]);
      assert.equal(res.status, 200, `relay ${'ABC'[i]}: ${provider} lookup after connecting through A and B: ${res.body}`);
    }
    const stats = await cluster.sandbox.tokenStats(provider);
    assert.equal(stats.exchanges, 1, 'the code was exchanged once');

    // The state is one-time across the cluster: the same callback replayed on relay C, with the state cookie the
    // browser had, is refused as a used state.
    const replay = await cluster.direct(2).request('GET', new URL(redirect.pathname + redirect.search, cluster.relays[2].url).href,
      { headers: { Cookie: `${stateCookie.name}=${stateCookie.value}` } });
    assert.ok(replay.status >= 400 && replay.status < 500, `relay C accepted a replayed callback: ${replay.status}`);
    assert.match(replay.body, /oauth\.state_unknown/, replay.body.slice(0, 500));
    assert.equal((await cluster.sandbox.tokenStats(provider)).exchanges, 1, 'a replayed callback reached the token endpoint');
  });
}

test('the login throttle is shared: 5 failures spread over three relays throttle the next attempt on any of them', { skip }, async (t) => {
  const cluster = await startCluster({ t });
  const clients = [0, 1, 2].map((i) => cluster.direct(i));
  addSecret('not-the-password', 'a wrong password');
  addSecret('still-not-the-password', 'a wrong password');
  // 2 + 2 + 1: no relay alone has seen 5 failures.
  for (const i of [0, 1, 2, 0, 1]) {
    const res = await clients[i].login('demo', 'not-the-password');
    assert.equal(res.status, 401, `failure on relay ${'ABC'[i]}: ${res.status} ${res.body}`);
  }
  for (const i of [2, 0]) {
    const res = await clients[i].login('demo', 'still-not-the-password');
    assert.equal(res.status, 429, `relay ${'ABC'[i]} did not count the failures seen by the other relays: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.throttled');
    assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After');
  }
});
