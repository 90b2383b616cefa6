// Connecting Keap and Jira in a real browser with the providers on another site than the relay, as in production
// (Keap's consent page is accounts.infusionsoft.com, the relay is relay.example.com): the relay at
// http://127.0.0.1:P, the sandbox's consent pages at http://localhost:S. To a browser those are two sites, so the
// consent page's redirect back to /callback/{provider} is a cross-site navigation, and the relay's SameSite=Strict
// session cookie does not come with it (RFC 6265bis §5.5). The callback must work all the same, through the
// one-time Lax state cookie and the pending authorization the relay keeps for the session (docs/security.md).
//
// Debian's Chromium, headless, driven by playwright-core; the page is served as scripts/demo serves it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DEMO_PASSWORD, DEMO_USER, ROOT, startRelay, startSandbox } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS, pageFolder } from '../lib/browser.mjs';


let sandbox;
let relay;
let browser;
let tmp;
const problems = [];

function webRoot() {
  return pageFolder(tmp);
}

// A fresh browser profile (its own cookie jar), signed in to the relay at `origin`.
async function signedIn(origin = relay.url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.goto(origin);
  await page.waitForSelector('html[data-ready=true]');
  await page.fill('#login-user', DEMO_USER);
  await page.fill('#login-password', DEMO_PASSWORD);
  await page.press('#login-password', 'Enter');
  await page.waitForSelector('#app-view:not([hidden])');
  return { context, page };
}

// Presses Connect for `provider`, then `button` (#allow or #deny) on the sandbox's consent page. Resolves with the
// relay's answer to the callback.
async function consent(page, provider, button) {
  // Once both are connected the page folds the cards into a one-line status strip; Manage unfolds them.
  const manage = page.locator('#conn-strip').getByRole('button', { name: 'Manage' });
  if (await manage.isVisible()) await manage.click();
  await page.locator(`#conn-${provider}`).getByRole('link', { name: /^(Connect|Reconnect)/ }).first().click();
  await page.waitForURL((url) => url.origin === sandbox.url);
  await page.waitForSelector(button);
  const callback = page.waitForResponse((r) => new URL(r.url()).pathname === `/callback/${provider}`);
  await page.click(button);
  return callback;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-cross-site-'));
  sandbox = await startSandbox({ site: 'localhost' });
  relay = await startRelay({ sandbox, args: ['--web-dir', webRoot()] });
  assert.equal(new URL(sandbox.url).hostname, 'localhost');
  assert.equal(new URL(relay.url).hostname, '127.0.0.1');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await sandbox?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the session cookie stays SameSite=Strict and HttpOnly', async () => {
  const { context } = await signedIn();
  const cookies = await context.cookies(relay.url);
  const session = cookies.find((c) => c.name === 'keyrelay_session');
  assert.ok(session, `a session cookie is set; cookies: ${JSON.stringify(cookies.map((c) => c.name))}`);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.httpOnly, true);
  await context.close();
});

test('Connect Keap and Jira, Allow on the other site\'s consent page: both connected', async () => {
  const { context, page } = await signedIn();
  for (const provider of ['keap', 'jira']) {
    const answer = await consent(page, provider, '#allow');
    // This is the failure this file pins: 401 auth.no_session because the Strict cookie stayed behind.
    assert.equal(answer.status(), 302, `callback answered ${answer.status()}: ${await answer.text().catch(() => '')}`);
    assert.equal(answer.headers().location, `/?connected=${provider}`);
    await page.waitForURL((url) => url.origin === relay.url);
    await page.waitForSelector(`#conn-${provider}[data-status=on]`, { state: 'attached' });
  }
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 1);
  assert.equal((await sandbox.tokenStats('jira')).exchanges, 1);
  await context.close();
});

test('Reconnect an already connected provider through the consent page again', async () => {
  const { context, page } = await signedIn();
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
  const before = (await sandbox.tokenStats('keap')).exchanges;
  const answer = await consent(page, 'keap', '#allow');
  assert.equal(answer.status(), 302);
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
  assert.equal((await sandbox.tokenStats('keap')).exchanges, before + 1, 'a new code was exchanged');
  await context.close();
});

test('Deny on the consent page returns to the page with the reason, and connects nothing', async () => {
  const { context, page } = await signedIn();
  const res = await page.request.post(`${relay.url}/api/connections/jira/disconnect`, { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(res.status(), 204);
  await page.reload();
  await page.waitForSelector('#conn-jira[data-status=off]', { state: 'attached' });
  const exchanges = (await sandbox.tokenStats('jira')).exchanges;
  const answer = await consent(page, 'jira', '#deny');
  assert.equal(answer.status(), 302);
  assert.equal(answer.headers().location, '/?connect_failed=jira&code=oauth.access_denied');
  await page.waitForURL((url) => url.origin === relay.url);
  await page.waitForSelector('#conn-jira[data-status=off]', { state: 'attached' });
  // The page says what happened, offers the same Connect again, and cleans the address bar.
  const notice = page.locator('#connect-failed');
  await notice.waitFor({ state: 'visible' });
  assert.match(await notice.textContent(), /Jira was not connected: you pressed Cancel\./);
  assert.equal(await notice.getByRole('link', { name: 'Try again' }).getAttribute('href'), '/connect/jira');
  assert.equal(new URL(page.url()).search, '');
  fs.mkdirSync(path.join(ROOT, 'build', 'screenshots'), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, 'build', 'screenshots', 'cross-site-deny-notice.png'), fullPage: true });
  assert.equal((await sandbox.tokenStats('jira')).exchanges, exchanges, 'no code was exchanged');
  await context.close();
});

test('a callback from another browser\'s flow is refused, even with this browser signed in', async () => {
  // The attacker's browser starts a flow and keeps the redirect back (its code and state) instead of following it.
  const attacker = await signedIn();
  await attacker.page.route(/\/callback\/keap/, (route) => route.abort());
  let stolen;
  attacker.page.on('request', (r) => { if (new URL(r.url()).pathname === '/callback/keap') stolen = r.url(); });
  await attacker.page.locator('#conn-keap').getByRole('link', { name: /^(Connect|Reconnect)/ }).first().click();
  await attacker.page.waitForURL((url) => url.origin === sandbox.url);
  await attacker.page.click('#allow');
  for (let i = 0; i < 100 && !stolen; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(stolen, 'the attacker captured a callback URL');
  await attacker.context.close();

  const victim = await signedIn();
  const exchanges = (await sandbox.tokenStats('keap')).exchanges;
  const res = await victim.page.goto(stolen);
  assert.equal(res.status(), 400);
  assert.match(await victim.page.textContent('body'), /not started by this browser/);
  assert.equal((await sandbox.tokenStats('keap')).exchanges, exchanges, 'the stolen code was never exchanged');
  await victim.context.close();
});

test('a callback after the session that pressed Connect logged out is refused', async () => {
  const { context, page } = await signedIn();
  await page.locator('#conn-keap').getByRole('link', { name: /^(Connect|Reconnect)/ }).first().click();
  await page.waitForURL((url) => url.origin === sandbox.url);
  await page.waitForSelector('#allow');
  // Log out in the background (as another tab would), then Allow.
  const out = await page.request.post(`${relay.url}/logout`, { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(out.status(), 204);
  const callback = page.waitForResponse((r) => new URL(r.url()).pathname === '/callback/keap');
  await page.click('#allow');
  const answer = await callback;
  assert.equal(answer.status(), 401);
  assert.match(await answer.text(), /session that pressed Connect has ended/);
  await context.close();
});

test('the page opened at localhost moves to the relay\'s own address, and Connect works from there', async () => {
  const localhostUrl = relay.url.replace('//127.0.0.1:', '//localhost:');
  const { context, page } = await signedIn(localhostUrl);
  assert.equal(new URL(page.url()).origin, relay.url, 'the page moved from localhost to 127.0.0.1');
  const answer = await consent(page, 'keap', '#allow');
  assert.equal(answer.status(), 302);
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
  await context.close();
});

test('no page errors along the way', () => {
  assert.deepEqual(problems, []);
});
