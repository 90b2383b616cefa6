// HTTPS (docs/api.md, Page sessions): with --tls-cert/--tls-key the relay announces https://, and the session cookie
// becomes __Host-keyrelay_session with Secure (the __Host- prefix needs Secure, Path=/ and no Domain: RFC 6265bis
// §4.1.3.2). The certificate comes from scripts/dev-cert (a local CA), trusted here through https.request's `ca`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import {
  ROOT, checkLeaksAfterAll, parseSetCookie, recorded, startRelay, startSandbox, tempDir,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

function httpsRequest(url, { method = 'GET', headers = {}, body, ca }) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers: { Connection: 'close', ...headers }, ca, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        recorded.responses.push({ method, url, status: res.statusCode, headers: res.headers, setCookie: res.headers['set-cookie'] ?? [], body: text });
        resolve({ status: res.statusCode, headers: res.headers, body: text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

test('over HTTPS the relay announces https:// and sets __Host-keyrelay_session; Secure; HttpOnly; SameSite=Strict; Path=/', async (t) => {
  const dir = await tempDir(t);
  await promisify(execFile)(path.join(ROOT, 'scripts', 'dev-cert'), [dir], { timeout: 30_000 });
  const ca = await readFile(path.join(dir, 'ca.pem'));
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({
    sandbox, t, registerRedirects: false,
    args: ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')],
  });
  assert.match(relay.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  const health = await httpsRequest(`${relay.url}/healthz`, { ca });
  assert.equal(health.status, 200, health.body);

  const login = await httpsRequest(`${relay.url}/login`, {
    method: 'POST', ca, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: 'demo' }),
  });
  assert.equal(login.status, 200, login.body);
  const cookies = (login.headers['set-cookie'] ?? []).map(parseSetCookie);
  const session = cookies.find((c) => c.name === '__Host-keyrelay_session');
  assert.ok(session, `no __Host-keyrelay_session cookie: ${JSON.stringify(login.headers['set-cookie'])}`);
  assert.equal(session.attrs.secure, true, session.raw);
  assert.equal(session.attrs.httponly, true, session.raw);
  assert.equal(String(session.attrs.samesite).toLowerCase(), 'strict', session.raw);
  assert.equal(session.attrs.path, '/', session.raw);
  assert.equal(session.attrs.domain, undefined, session.raw);
  assert.equal(cookies.find((c) => c.name === 'keyrelay_session'), undefined, 'the plain-HTTP cookie name over HTTPS');

  const me = await httpsRequest(`${relay.url}/api/session`, { ca, headers: { Cookie: `__Host-keyrelay_session=${session.value}` } });
  assert.equal(me.status, 200, me.body);
  assert.equal(JSON.parse(me.body).user, 'demo');

  // The OAuth state cookie is Secure over HTTPS too, and the redirect URI the relay sends is its https:// callback.
  const connect = await httpsRequest(`${relay.url}/connect/keap`, { ca, headers: { Cookie: `__Host-keyrelay_session=${session.value}` } });
  assert.equal(connect.status, 302, connect.body);
  const state = (connect.headers['set-cookie'] ?? []).map(parseSetCookie).find((c) => /keyrelay_oauth_keap$/.test(c.name));
  assert.ok(state, JSON.stringify(connect.headers['set-cookie']));
  assert.equal(state.attrs.secure, true, state.raw);
  assert.equal(state.attrs.httponly, true, state.raw);
  assert.equal(new URL(connect.headers.location).searchParams.get('redirect_uri'), `${relay.url}/callback/keap`);
});
