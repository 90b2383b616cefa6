// The lookup page in a real browser: Debian's Chromium, headless, driven by playwright-core, against the real
// keyrelay-sandbox and keyrelay (tests/lib/harness.mjs starts them on OS-chosen ports).
//
// The steps run in order on one browser session, as a person would use the page: sign in, connect Keap and Jira on
// the sandbox's consent pages, look up emails found in both / one / neither, rename a Keap contact, live through an
// access-token expiry without noticing, see the reconnect banner after the grant is revoked, and get an HTML error
// page explained. Each step saves a screenshot under build/screenshots/.
//
// The page is served from a folder like scripts/demo's: web/ plus the Wasm module under wasm/
// (from $KEYRELAY_WASM_DIR, default build/wasm).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DEMO_PASSWORD, DEMO_USER, ROOT, startRelay, startSandbox, waitFor } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS, pageFolder } from '../lib/browser.mjs';

const SHOTS = path.join(ROOT, 'build', 'screenshots');
// Short access tokens, so one expires during the session.
const ACCESS_TTL = 3;

let sandbox;
let relay;
let context;
let page;
let tmp;
const problems = [];   // console errors and uncaught page errors, asserted empty at the end

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// The page's folder: web/ and wasm/keyrelay.{mjs,wasm}, copied (build outputs never go into web/).
function webRoot() {
  return pageFolder(tmp);
}

const keap = () => page.locator('#result-keap');
const jira = () => page.locator('#result-jira');

async function lookup(email) {
  await page.fill('#lookup-email', email);
  await page.press('#lookup-email', 'Enter');
  // Both columns leave "loading".
  await page.waitForFunction(() =>
    !['loading', undefined].includes(document.querySelector('#result-keap').dataset.status) &&
    !['loading', undefined].includes(document.querySelector('#result-jira').dataset.status));
  return { keap: await keap().getAttribute('data-status'), jira: await jira().getAttribute('data-status') };
}

async function connectionStatus(provider) {
  return page.locator(`#conn-${provider}`).getAttribute('data-status');
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-browser-'));
  sandbox = await startSandbox({ accessTtl: ACCESS_TTL });
  relay = await startRelay({ sandbox, args: ['--web-dir', webRoot()] });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 860 },
    args: CHROMIUM_ARGS,
  });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // The browser logs every non-2xx fetch ("Failed to load resource: 401"); the page expects some (the session
    // check before signing in, a 409 after revocation). Everything else is a problem.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
});

after(async () => {
  await context?.close();
  await relay?.stop();
  await sandbox?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('1. the page loads its Wasm module and signs in with the keyboard alone', async () => {
  await page.goto(relay.url);
  await page.waitForSelector('html[data-ready=true]');
  assert.match(await page.locator('#version').textContent(), /^\d+\.\d+\.\d+$/);
  assert.equal(await page.locator('#login-view').isVisible(), true);
  await shot('01-login');

  // The username field has focus; type, Tab, type, Enter.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-user');
  await page.keyboard.type(DEMO_USER);
  await page.keyboard.press('Tab');
  await page.keyboard.type('not the password');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.equal(await page.locator('#login-error').textContent(), 'Wrong username or password.');
  await shot('01b-login-wrong-password');

  await page.fill('#login-password', DEMO_PASSWORD);
  await page.press('#login-password', 'Enter');
  await page.waitForSelector('#app-view:not([hidden])');
  assert.equal(await page.locator('#who-user').textContent(), DEMO_USER);
  assert.equal(await connectionStatus('keap'), 'off');
  assert.equal(await connectionStatus('jira'), 'off');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'lookup-email');
  await shot('02-signed-in');
});

test('1b. before anything is connected, a lookup says "not connected" for both', async () => {
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'off', jira: 'off' });
  assert.match(await keap().textContent(), /Keap is not connected/);
  assert.equal(await keap().getByRole('link', { name: 'Connect Keap' }).count(), 1);
});

test('2. connect Keap by clicking Allow on the sandbox consent page', async () => {
  await page.locator('#conn-keap').getByRole('link', { name: 'Connect Keap' }).click();
  await page.waitForURL((url) => url.origin === sandbox.url);
  await page.waitForSelector('#allow');
  assert.match(await page.textContent('body'), /ab123\.infusionsoft\.com/);
  await shot('03-keap-consent');
  await page.click('#allow');
  await page.waitForURL((url) => url.origin === relay.url);
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
  assert.equal(new URL(page.url()).search, '', 'the ?connected=keap marker is removed from the address bar');
  assert.equal(await page.locator('#notice').textContent(), 'Keap is connected.');
  const card = await page.locator('#conn-keap').textContent();
  assert.match(card, /ab123\.infusionsoft\.com/);
  assert.match(card, /renews itself/);
  await shot('04-keap-connected');
});

test('2b. connect Jira the same way', async () => {
  await page.locator('#conn-jira').getByRole('link', { name: 'Connect Jira' }).click();
  await page.waitForURL((url) => url.origin === sandbox.url);
  await page.waitForSelector('#allow');
  await shot('05-jira-consent');
  await page.click('#allow');
  await page.waitForURL((url) => url.origin === relay.url);
  await page.waitForSelector('#conn-jira[data-status=on]', { state: 'attached' });
  assert.equal(await connectionStatus('keap'), 'on');
  assert.match(await page.locator('#conn-jira').textContent(), /renews itself/);
  await shot('06-both-connected');
});

test('3. an email in both: Keap contact and Jira user side by side', async () => {
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  const k = await keap().textContent();
  assert.match(k, /Ada Lovelace/);
  assert.match(k, /Contact ID\s*101/);
  assert.match(k, /ada@example.com/);
  const j = await jira().textContent();
  assert.match(j, /Ada Lovelace/);
  assert.match(j, /ada@example.com/);
  assert.doesNotMatch(j, /Browse users/, 'no caveat when users are found');
  await shot('07-lookup-both');
});

test('3b. an email only in Keap: Jira says not found, without a permission note on a plain miss', async () => {
  assert.deepEqual(await lookup('paul@example.com'), { keap: 'found', jira: 'none' });
  assert.match(await keap().textContent(), /Paul Grover/);
  const j = await jira().textContent();
  assert.match(j, /No Jira user has this email/);
  assert.doesNotMatch(j, /Browse users and groups/);
  await shot('08-lookup-keap-only');
});

test('3c. an email only in Jira', async () => {
  assert.deepEqual(await lookup('grace@example.com'), { keap: 'none', jira: 'found' });
  assert.match(await keap().textContent(), /No Keap contact has this email/);
  assert.match(await jira().textContent(), /Grace Hopper/);
  await shot('09-lookup-jira-only');
});

test('3d. an email in neither', async () => {
  assert.deepEqual(await lookup('nobody@example.com'), { keap: 'none', jira: 'none' });
  await shot('10-lookup-neither');
});

test('3e. both are queried at once, with visible progress while one is slow', async () => {
  await sandbox.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode: 'slow', delay_ms: 2500 });
  await page.fill('#lookup-email', 'ada@example.com');
  await page.press('#lookup-email', 'Enter');
  // Jira answers while Keap is still on its way: the two requests run side by side.
  await page.waitForSelector('#result-jira[data-status=found]');
  assert.equal(await keap().getAttribute('data-status'), 'loading');
  assert.match(await keap().textContent(), /Searching/);
  assert.equal(await page.locator('#lookup-submit').isDisabled(), false, 'a new lookup may replace this one');
  await shot('10b-lookup-in-progress');
  await page.waitForSelector('#result-keap[data-status=found]', { timeout: 10000 });
});

test('3f. an HTML page where Keap JSON was expected: an error with the diagnosis, Jira unaffected', async () => {
  // A maintenance page served with 200 OK: the relay does not retry it, and wraps it with the core's diagnosis.
  await sandbox.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode: 'html_502', status: 200 });
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'error', jira: 'found' });
  const k = await keap().textContent();
  assert.match(k, /HTML page/);
  assert.match(k, /502 Bad Gateway/);
  assert.match(k, /upstream\.html_page/);
  await shot('10c-lookup-error-diagnosed');
});

test('4. rename the forum\'s contact 4393 to Joe Bobertson, and see it on a second lookup', async () => {
  assert.deepEqual(await lookup('ben.anderson@example.com'), { keap: 'found', jira: 'found' });
  const person = keap().locator('[data-contact-id="4393"]');
  assert.match(await person.textContent(), /Ben Anderson/);
  await person.getByRole('button', { name: /Edit the name/ }).click();
  const form = keap().locator('form.edit');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'given', 'the first name field has focus');
  await form.getByLabel('First name').fill('Joe');
  await form.getByLabel('Last name').fill('Bobertson');
  await shot('11-edit-contact');
  await form.getByLabel('Last name').press('Enter');
  await page.waitForFunction(() => /Saved/.test(document.querySelector('#notice').textContent));
  await page.waitForSelector('#result-keap[data-status=found] [data-contact-id="4393"] .person-name');
  assert.match(await keap().locator('[data-contact-id="4393"]').textContent(), /Joe Bobertson/);
  assert.equal(await page.locator('#notice').textContent(), 'Saved. Keap contact 4393 is now Joe Bobertson.');

  // A second, separate lookup reads the new name back from Keap.
  await lookup('nobody@example.com');
  assert.deepEqual(await lookup('ben.anderson@example.com'), { keap: 'found', jira: 'found' });
  const again = await keap().locator('[data-contact-id="4393"]').textContent();
  assert.match(again, /Joe Bobertson/);
  assert.doesNotMatch(again, /Ben Anderson/);
  await shot('12-contact-updated');
});

test('5. the access token expires mid-session and nothing visible happens', async () => {
  const before = { keap: await sandbox.tokenStats('keap'), jira: await sandbox.tokenStats('jira') };
  await page.waitForTimeout((ACCESS_TTL + 1.5) * 1000);
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  assert.equal(await page.locator('#reauth').isHidden(), true);
  assert.equal(await page.locator('#notice').isHidden(), true);
  assert.equal(await connectionStatus('keap'), 'on');
  assert.equal(await connectionStatus('jira'), 'on');
  const after = { keap: await sandbox.tokenStats('keap'), jira: await sandbox.tokenStats('jira') };
  assert.ok(after.keap.refreshes > before.keap.refreshes, 'the relay renewed the Keap token behind the scenes');
  assert.ok(after.jira.refreshes > before.jira.refreshes, 'the relay renewed the Jira token behind the scenes');
  await shot('13-after-token-expiry');
});

test('6. the sandbox revokes the Keap grant: the reconnect banner appears, Jira keeps working', async () => {
  await sandbox.revoke({ provider: 'keap' });
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'reauth', jira: 'found' });
  await page.waitForSelector('#reauth:not([hidden])');
  const banner = page.locator('#reauth');
  assert.match(await banner.textContent(), /Keap needs to be reconnected/);
  assert.equal(await banner.getByRole('link', { name: 'Reconnect Keap' }).getAttribute('href'), '/connect/keap');
  await page.waitForSelector('#conn-keap[data-status=reauth]');
  await shot('14-reconnect-banner');

  // Reconnecting from the banner brings everything back.
  await banner.getByRole('link', { name: 'Reconnect Keap' }).click();
  await page.waitForURL((url) => url.origin === sandbox.url);
  await page.click('#allow');
  await page.waitForURL((url) => url.origin === relay.url);
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
  assert.equal(await page.locator('#reauth').isHidden(), true);
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  await shot('15-reconnected');
});

test('7. the explain panel diagnoses a pasted HTML error page, in the browser', async () => {
  await page.locator('#explain summary').click();
  await page.fill('#explain-status', '502');
  await page.selectOption('#explain-expect', 'xmlrpc');
  await page.fill('#explain-headers', 'Content-Type: text/html\nServer: nginx');
  await page.fill('#explain-body', '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n' +
    '<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\n</html>\n');
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.click('#explain-submit');
  const result = page.locator('#explain-result');
  await result.waitFor({ state: 'visible' });
  const text = await result.textContent();
  assert.match(text, /502 Bad Gateway/);
  assert.match(text, /HTML page/);
  assert.match(text, /html_page/);
  assert.deepEqual(requests, [], 'the diagnosis made no network request');
  await result.scrollIntoViewIfNeeded();
  await shot('16-explain-html-page');
});

test('8. on a phone-sized screen nothing scrolls sideways', async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: innerWidth }));
  assert.ok(widths.scroll <= widths.view, `page is ${widths.scroll} px wide in a ${widths.view} px window`);
  await shot('17-phone');
  await page.setViewportSize({ width: 1100, height: 860 });
});

test('9. no script errors on the way', () => {
  assert.deepEqual(problems, []);
});
