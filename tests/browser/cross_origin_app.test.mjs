// A web app of the user's own on another origin (an Angular or React dev server on its own port, listed in the
// relay's cors_origins) calls the relay with the user's relay session, as the Angular page of the forum thread
// wanted to: the preflight passes, the call answers, and the app's JavaScript can read the rate-limit headers Keap
// and Jira send, which a browser hides from another origin unless Access-Control-Expose-Headers names them
// (WHATWG Fetch §3.2.4, https://fetch.spec.whatwg.org/#http-access-control-expose-headers).
//
// The app at http://127.0.0.1:A and the relay at http://127.0.0.1:P are two origins of one site, so the relay's
// SameSite=Strict session cookie comes with `credentials: 'include'` (RFC 6265bis §5.5). Debian's Chromium, headless,
// driven by playwright-core, against keyrelay-sandbox and keyrelay on OS-chosen ports.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DEMO_PASSWORD, DEMO_USER, client, startRelay, startSandbox, writeConfig } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from '../lib/browser.mjs';

let sandbox;
let relay;
let app;
let appOrigin;
let browser;
let page;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-cross-origin-'));
  app = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>my app</title><h1>my app</h1>');
  });
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  appOrigin = `http://127.0.0.1:${app.address().port}`;
  sandbox = await startSandbox({ autoApprove: true });
  relay = await startRelay({ sandbox, args: ['--config', await writeConfig(tmp, { cors_origins: [appOrigin] })] });
  // Connections belong to the relay, not to a session: connect both once, as the relay's page would.
  const setup = client(relay.url);
  assert.equal((await setup.login()).status, 200);
  for (const provider of ['keap', 'jira']) {
    const flow = await setup.connect(provider);
    assert.equal(flow.final.rawLocation, `/?connected=${provider}`, flow.trace);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  // The user logs in to the relay; the session cookie is the browser's own (HttpOnly: the app never sees it).
  const login = await context.request.post(`${relay.url}/login`, {
    data: { username: DEMO_USER, password: DEMO_PASSWORD }, headers: { 'X-Requested-With': 'keyrelay' },
  });
  assert.equal(login.status(), 200, await login.text());
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${appOrigin}/`);
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await sandbox?.stop();
  await new Promise((resolve) => (app ? app.close(resolve) : resolve()));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// fetch() from the app's page: the status, the JSON body when there is one, and what its script can read of `names`.
function callFromApp(apiPath, names) {
  return page.evaluate(async ({ url, names }) => {
    const res = await fetch(url, { credentials: 'include', headers: { 'X-Requested-With': 'keyrelay' } });
    const text = await res.text();
    return { status: res.status, text, headers: Object.fromEntries(names.map((n) => [n, res.headers.get(n)])) };
  }, { url: `${relay.url}${apiPath}`, names });
}

test('the app looks an email up in Keap through the relay and reads Keap\'s quota headers and the request id', async () => {
  const names = ['x-keap-product-quota-available', 'x-keap-product-throttle-available', 'x-request-id'];
  const res = await callFromApp('/proxy/keap/crm/rest/v1/contacts?email=ada@example.com', names);
  assert.equal(res.status, 200, res.text);
  assert.equal(JSON.parse(res.text).contacts[0].email_addresses[0].email, 'ada@example.com');
  for (const name of names) assert.ok(res.headers[name], `${name} is readable by the app: ${JSON.stringify(res.headers)}`);
});

test('a Jira 429 from the 2026 points-based quota: the app reads why, for how long, and the quota policy', async () => {
  await sandbox.fail({ path: '/jira/ex/jira/', count: 1, mode: 'points_limit' });
  const names = ['retry-after', 'ratelimit-reason', 'beta-ratelimit-policy', 'beta-ratelimit', 'x-ratelimit-nearlimit'];
  const res = await callFromApp('/proxy/jira/rest/api/3/user/search?query=ada@example.com', names);
  assert.equal(res.status, 429, res.text);
  assert.deepEqual(res.headers, {
    'retry-after': '1800',
    'ratelimit-reason': 'jira-quota-tenant-based',
    'beta-ratelimit-policy': '"tenant-app-quota";q=100100;w=3600',
    'beta-ratelimit': '"tenant-app-quota";r=0;t=1800',
    'x-ratelimit-nearlimit': 'true',
  });
});
