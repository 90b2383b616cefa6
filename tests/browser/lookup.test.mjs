// The lookup page as a person uses it for its one question, "is this email in Keap and in Jira?", and around it:
// exact answers, results tied to their email, never stuck on a slow provider, errors written for people, the
// consent outcome, Disconnect asked first, the explain panel, the query in the URL, links and copy buttons, acting
// on a gap, and bulk lookup. Debian's Chromium, headless, driven by playwright-core, against the real
// keyrelay-sandbox (auto-approving consent) and keyrelay on OS-chosen ports. Screenshots go to build/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DEMO_PASSWORD, DEMO_USER, ROOT, startRelay, startSandbox } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS, pageFolder } from '../lib/browser.mjs';

// The page under test (default web/); pointing it at an older copy shows which of these tests that copy fails.
const WEB_DIR = path.resolve(ROOT, process.env.KEYRELAY_WEB_DIR || 'web');
const SHOTS = path.join(ROOT, 'build', 'screenshots');
const KEAP_CONTACTS = '/keap/crm/rest/v1/contacts';

let sandbox;
let relay;
let context;
let page;
let tmp;
const problems = [];

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `lookup-${name}.png`), fullPage: true });
}

function webRoot() {
  return pageFolder(tmp, WEB_DIR);
}

const keap = () => page.locator('#result-keap');
const jira = () => page.locator('#result-jira');

const settled = () => page.waitForFunction(() => ['keap', 'jira'].every((p) =>
  !['loading', undefined].includes(document.querySelector(`#result-${p}`).dataset.status)));

async function lookup(email) {
  await page.fill('#lookup-email', email);
  await page.press('#lookup-email', 'Enter');
  await settled();
  return { keap: await keap().getAttribute('data-status'), jira: await jira().getAttribute('data-status') };
}

async function home() {
  await page.goto(relay.url);
  await page.waitForSelector('html[data-ready=true]');
}

async function openBulk() {
  if (await page.locator('#bulk').getAttribute('open') === null) await page.locator('#bulk summary').click();
}

async function requestCount(key) {
  const res = await fetch(`${sandbox.url}/sandbox/stats`);
  return (await res.json()).requests[key] || 0;
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-lookup-'));
  sandbox = await startSandbox({ autoApprove: true });
  relay = await startRelay({ sandbox, args: ['--web-dir', webRoot()] });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    args: CHROMIUM_ARGS,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: relay.url });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });

  // Signed in, both providers connected (the sandbox approves consent at once).
  await home();
  await page.fill('#login-user', DEMO_USER);
  await page.fill('#login-password', DEMO_PASSWORD);
  await page.press('#login-password', 'Enter');
  await page.waitForSelector('#app-view:not([hidden])');
  for (const p of ['keap', 'jira']) {
    await page.goto(`${relay.url}/connect/${p}`);
    await page.waitForURL((url) => url.origin === relay.url && url.pathname === '/');
    await page.waitForSelector(`#conn-${p}[data-status=on]`, { state: 'attached' });
  }
});

after(async () => {
  await context?.close();
  await relay?.stop();
  await sandbox?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('once both are connected, the cards collapse into a one-line status strip that expands', async () => {
  await home();
  const strip = page.locator('#conn-strip');
  await strip.waitFor({ state: 'visible' });
  assert.match(await strip.textContent(), /Keap connected · ab123\.infusionsoft\.com/);
  assert.match(await strip.textContent(), /Jira connected · keyrelay-sandbox\.atlassian\.net/);
  assert.equal(await page.locator('#conn-keap').isVisible(), false, 'the cards are folded away');
  await strip.getByRole('button', { name: 'Manage' }).click();
  assert.equal(await page.locator('#conn-keap').isVisible(), true);
  await strip.getByRole('button', { name: 'Hide details' }).click();
  assert.equal(await page.locator('#conn-keap').isVisible(), false);
});

test('the email field has focus when the page loads', async () => {
  await home();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'lookup-email');
});

test('a connection warning from the relay shows on the status strip and on its card', async () => {
  await page.route('**/api/connections', async (route) => {
    const res = await route.fetch();
    const data = await res.json();
    for (const c of data.connections) {
      if (c.provider === 'jira') c.warnings = [{ code: 'jira.consent_expiring', message: 'Jira consent ends in 12 days: reconnect before then.' }];
    }
    await route.fulfill({ response: res, json: data });
  });
  await home();
  await page.waitForSelector('#conn-strip .strip-warning');
  assert.match(await page.locator('#conn-strip').textContent(), /Jira consent ends in 12 days/);
  assert.match(await page.locator('#conn-jira').textContent(), /Jira consent ends in 12 days/);
  await page.unroute('**/api/connections');
  await home();
});

test('a prefix of an email is not "Found" in Jira: the prefix hits are shown apart, as similar users', async () => {
  await home();
  for (const email of ['ada@example.co', 'ada@example']) {
    assert.deepEqual(await lookup(email), { keap: 'none', jira: 'none' }, email);
    const j = await jira().textContent();
    assert.match(j, /No Jira user has this email/);
    assert.match(j, /Similar users, not this email/);
    assert.match(j, /Ada Lovelace · ada@example\.com/);
    assert.equal(await jira().locator('.people').count(), 0, 'nothing listed as found');
  }
  await shot('wrong-email-prefix');
  // The same email with other case and spaces is the same person.
  assert.deepEqual(await lookup('  ADA@Example.com '), { keap: 'found', jira: 'found' });
});

test('a Jira user whose email is hidden is still shown, with its caveat', async () => {
  assert.deepEqual(await lookup('private@example.com'), { keap: 'none', jira: 'found' });
  assert.match(await jira().textContent(), /Private User/);
  assert.match(await jira().textContent(), /Email hidden by the user’s profile visibility/);
});

test('a plain miss in Jira carries no permission note; a refusal from Jira names the missing permission', async () => {
  assert.deepEqual(await lookup('paul@example.com'), { keap: 'found', jira: 'none' });
  assert.doesNotMatch(await jira().textContent(), /Browse users|myself/);
  // A 403 is how the relay can tell the permission is missing.
  await sandbox.fail({ path: '/jira/', count: 1, mode: 'status', status: 403 });
  assert.deepEqual(await lookup('paul@example.com'), { keap: 'found', jira: 'error' });
  assert.equal(await jira().locator('.problem-title').textContent(),
    'Jira refused the search: the connected account lacks the "Browse users and groups" permission. ' +
    'Ask a Jira admin to grant it, then reconnect Jira.');
});

test('each result set names its email; a new input or an invalid email clears the old cards', async () => {
  await lookup('ada@example.com');
  assert.equal(await page.locator('.results-for').textContent(), 'Results for ada@example.com');
  await page.fill('#lookup-email', 'grace@exam');
  assert.equal(await page.locator('#results').isVisible(), false, 'typing another email hides the old results');
  await lookup('ada@example.com');
  await page.fill('#lookup-email', 'not-an-email');
  await page.press('#lookup-email', 'Enter');
  await page.waitForSelector('#lookup-error:not([hidden])');
  assert.equal(await page.locator('#results').isVisible(), false, 'a validation error leaves no stale cards');
  assert.equal(await page.locator('#result-keap').filter({ hasText: 'Ada Lovelace' }).isVisible(), false);
});

test('a new lookup cancels the one in flight; the late answer never shows under another email', async () => {
  await sandbox.fail({ path: KEAP_CONTACTS, count: 1, mode: 'slow', delay_ms: 4000 });
  await page.fill('#lookup-email', 'ada@example.com');
  await page.press('#lookup-email', 'Enter');
  await page.waitForSelector('#result-jira[data-status=found]');
  assert.equal(await keap().getAttribute('data-status'), 'loading');
  // Enter again with another email, while Keap still works on the first: it is not ignored.
  await page.fill('#lookup-email', 'paul@example.com');
  await page.press('#lookup-email', 'Enter');
  await settled();
  assert.equal(await page.locator('.results-for').textContent(), 'Results for paul@example.com');
  assert.match(await keap().textContent(), /Paul Grover/);
  await page.waitForTimeout(4500);   // past the moment the slow answer for ada@ reaches the relay and the page
  assert.match(await keap().textContent(), /Paul Grover/);
  assert.doesNotMatch(await keap().textContent(), /Ada/);
  assert.equal(await jira().getAttribute('data-status'), 'none');
});

test('a slow provider is named after about 3 s, and Cancel stops waiting for it', async () => {
  await sandbox.fail({ path: KEAP_CONTACTS, count: 1, mode: 'slow', delay_ms: 8000 });
  const started = Date.now();
  await page.fill('#lookup-email', 'ada@example.com');
  await page.press('#lookup-email', 'Enter');
  await page.waitForSelector('#result-jira[data-status=found]');
  assert.doesNotMatch(await keap().textContent(), /slow/, 'not called slow at once');
  await page.waitForFunction(() => /Keap is slow…/.test(document.querySelector('#result-keap').textContent));
  const waited = Date.now() - started;
  assert.ok(waited >= 2500 && waited < 5000, `"Keap is slow" after ${waited} ms`);
  await shot('slow-provider-cancel');
  await keap().getByRole('button', { name: 'Cancel' }).click();
  await page.waitForSelector('#result-keap[data-status=cancelled]');
  assert.match(await keap().textContent(), /You cancelled the Keap search/);
  assert.equal(await jira().getAttribute('data-status'), 'found', 'Jira keeps its answer');
  await keap().getByRole('button', { name: 'Search again' }).click();
  await page.waitForSelector('#result-keap[data-status=found]');
});

test('the page gives up after about 10 s, whatever the relay\'s upstream timeout (30 s)', async () => {
  await sandbox.fail({ path: KEAP_CONTACTS, count: 1, mode: 'slow', delay_ms: 16000 });
  const started = Date.now();
  await page.fill('#lookup-email', 'ben.anderson@example.com');
  await page.press('#lookup-email', 'Enter');
  await page.waitForSelector('#result-keap[data-status=error]', { timeout: 14000 });
  const waited = Date.now() - started;
  assert.ok(waited >= 9500 && waited < 12500, `gave up after ${waited} ms`);
  assert.match(await keap().locator('.problem-title').textContent(), /^Keap did not answer within 10 s\. Try again in a minute\.$/);
  assert.equal(await keap().getByRole('button', { name: 'Try again' }).count(), 1);
});

test('a failing provider reads as a plain heading with Try again; the diagnosis is behind Details', async () => {
  // Enough 503s for the relay's retries of a GET, so the page sees one.
  await sandbox.fail({ path: KEAP_CONTACTS, count: 3, mode: 'html_503' });
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'error', jira: 'found' });
  const title = await keap().locator('.problem-title').textContent();
  assert.equal(title, 'Keap is having problems (HTTP 503). Try again in a minute.', 'names Keap\'s own status');
  const details = keap().locator('details.problem-more');
  assert.equal(await details.getAttribute('open'), null, 'Details start closed');
  await details.locator('summary').click();
  assert.match(await details.textContent(), /Diagnosis code/);
  const text = await keap().textContent();
  assert.doesNotMatch(text, /https?:\/\/|127\.0\.0\.1|upstream_read_timeout_ms/, 'no upstream address, no config advice');
  await shot('error-details');
  await keap().getByRole('button', { name: 'Try again' }).click();
  await page.waitForSelector('#result-keap[data-status=found]');
  assert.equal(await page.locator('.results-for').textContent(), 'Results for ada@example.com');
});

test('a dropped upstream connection never shows an internal address, to the page or to the API', async () => {
  await sandbox.fail({ path: KEAP_CONTACTS, count: 3, mode: 'reset' });
  const api = await page.evaluate(async () => {
    const r = await fetch('/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com',
      { headers: { 'X-Requested-With': 'keyrelay' } });
    return r.text();
  });
  assert.match(api, /upstream\.connection_reset/);
  assert.doesNotMatch(api, /127\.0\.0\.1|http:\/\//, 'the relay\'s own error names no upstream address');
  await sandbox.fail({ path: KEAP_CONTACTS, count: 3, mode: 'reset' });
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'error', jira: 'found' });
  assert.equal(await keap().locator('.problem-title').textContent(), 'The relay could not reach Keap. Try again in a minute.');
  await keap().locator('details.problem-more summary').click();
  assert.doesNotMatch(await keap().textContent(), /127\.0\.0\.1|https?:\/\//);
});

test('Deny on a consent page comes back as a styled notice with Try again, at a clean URL', async () => {
  await page.goto(`${relay.url}/?connect_failed=keap&code=oauth.access_denied`);
  await page.waitForSelector('html[data-ready=true]');
  const box = page.locator('#connect-failed');
  await box.waitFor({ state: 'visible' });
  assert.match(await box.textContent(), /Keap was not connected: you pressed Deny\./);
  assert.equal(await box.getByRole('link', { name: 'Try again' }).getAttribute('href'), '/connect/keap');
  assert.equal(new URL(page.url()).search, '', 'the address bar is clean');
  await shot('deny-notice');
  await page.reload();
  await page.waitForSelector('html[data-ready=true]');
  assert.equal(await box.isVisible(), false, 'a reload does not say it again');

  await page.goto(`${relay.url}/?connect_failed=jira&code=oauth.access_denied`);
  await page.waitForSelector('html[data-ready=true]');
  assert.match(await box.textContent(), /Jira was not connected: you pressed Cancel\./);
});

test('Disconnect asks first and says what it does', async () => {
  await home();
  await page.locator('#conn-strip').getByRole('button', { name: 'Manage' }).click();
  const card = page.locator('#conn-keap');
  await card.getByRole('button', { name: 'Disconnect' }).click();
  const confirmBox = card.locator('.confirm');
  await confirmBox.waitFor();
  assert.match(await confirmBox.textContent(), /Disconnect Keap\?/);
  assert.match(await confirmBox.textContent(), /deletes its Keap tokens/);
  assert.match(await confirmBox.textContent(), /Nothing in Keap itself is changed/);
  await confirmBox.getByRole('button', { name: 'Keep connected' }).click();
  assert.equal(await card.getAttribute('data-status'), 'on', 'nothing happened without the confirmation');
  await card.getByRole('button', { name: 'Disconnect' }).click();
  await card.getByRole('button', { name: 'Disconnect Keap' }).click();
  await page.waitForSelector('#conn-keap[data-status=off]');
  // Connect again for the tests after this one.
  await card.getByRole('link', { name: 'Connect Keap' }).click();
  await page.waitForURL((url) => url.origin === relay.url && url.pathname === '/');
  await page.waitForSelector('#conn-keap[data-status=on]', { state: 'attached' });
});

test('the explain panel reads a raw pasted response, and refuses a status outside 100–599', async () => {
  await page.locator('#explain summary').click();
  await page.fill('#explain-status', 'abc');
  await page.fill('#explain-headers', '');
  await page.fill('#explain-body', '{"ok":true}');
  await page.click('#explain-submit');
  await page.waitForSelector('#explain-error:not([hidden])');
  assert.match(await page.locator('#explain-error').textContent(), /The status must be a number from 100 to 599/);
  assert.equal(await page.locator('#explain-result').isVisible(), false, 'no "HTTP 0" diagnosis');
  await page.fill('#explain-status', '700');
  await page.click('#explain-submit');
  assert.match(await page.locator('#explain-error').textContent(), /“700” is not one/);

  await page.fill('#explain-body', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\n' +
    'Content-Type: text/html\r\n\r\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
  await page.selectOption('#explain-expect', 'json');
  await page.click('#explain-submit');
  const out = page.locator('#explain-result');
  await out.waitFor({ state: 'visible' });
  assert.equal(await page.locator('#explain-error').isVisible(), false);
  assert.match(await out.textContent(), /Read as a whole response: HTTP 502, 2 headers/);
  assert.match(await out.textContent(), /502 Bad Gateway/);
  assert.match(await out.textContent(), /html_page/);
  await page.locator('#explain summary').click();
});

test('the query is in the URL: a reload repeats it; recent lookups are kept and can be cleared', async () => {
  await lookup('grace@example.com');
  assert.equal(new URL(page.url()).searchParams.get('email'), 'grace@example.com');
  await page.reload();
  await page.waitForSelector('html[data-ready=true]');
  await settled();
  assert.equal(await page.locator('.results-for').textContent(), 'Results for grace@example.com');
  assert.equal(await jira().getAttribute('data-status'), 'found');
  const recent = page.locator('#recent');
  assert.match(await recent.textContent(), /grace@example\.com/);
  assert.match(await recent.textContent(), /ada@example\.com/);
  await recent.getByRole('button', { name: 'paul@example.com' }).click();
  await settled();
  assert.equal(await page.locator('.results-for').textContent(), 'Results for paul@example.com');
  await recent.getByRole('button', { name: 'Clear' }).click();
  assert.equal(await recent.isVisible(), false);
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes('@')).length), 0);
});

test('found records open in Keap and in Jira, and their email and ids can be copied', async () => {
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  assert.equal(await keap().getByRole('link', { name: 'Open in Keap' }).getAttribute('href'),
    'https://ab123.infusionsoft.com/Contact/manageContact.jsp?view=edit&ID=101');
  const jiraHref = await jira().getByRole('link', { name: 'Open in Jira' }).getAttribute('href');
  assert.match(jiraHref, /^https:\/\/keyrelay-sandbox\.atlassian\.net\/jira\/people\/[^/]+$/);
  await keap().getByRole('button', { name: 'Copy Keap contact ID 101' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), '101');
  await jira().getByRole('button', { name: 'Copy the email ada@example.com' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'ada@example.com');
  await shot('lookup-1280');
});

test('records show more than yes/no: last updated and tags in Keap, status and account type in Jira', async () => {
  const k = await keap().textContent();
  assert.match(k, /Last updated/);
  assert.match(k, /Tags\s*none/);
  const j = await jira().textContent();
  assert.match(j, /Status\s*active/);
  assert.match(j, /Account type\s*Atlassian account/);
});

test('someone only in Jira can be created in Keap, pre-filled from Jira, through the relay\'s allowlisted POST', async () => {
  assert.deepEqual(await lookup('grace@example.com'), { keap: 'none', jira: 'found' });
  await keap().getByRole('button', { name: 'Create Keap contact' }).click();
  const form = keap().locator('form.edit');
  assert.equal(await form.getByLabel('First name').inputValue(), 'Grace');
  assert.equal(await form.getByLabel('Last name').inputValue(), 'Hopper');
  const posts = await requestCount(`POST ${KEAP_CONTACTS}`);
  await form.getByRole('button', { name: 'Create contact' }).click();
  await page.waitForFunction(() => /Created Keap contact/.test(document.querySelector('#notice').textContent));
  await page.waitForSelector('#result-keap[data-status=found]');
  assert.match(await keap().textContent(), /Grace Hopper/);
  assert.equal(await requestCount(`POST ${KEAP_CONTACTS}`), posts + 1);
});

test('a name that differs between Keap and Jira is pointed out', async () => {
  assert.deepEqual(await lookup('ben.anderson@example.com'), { keap: 'found', jira: 'found' });
  assert.equal(await page.locator('#across').isVisible(), false, 'the same name: nothing to point out');
  const person = keap().locator('[data-contact-id="4393"]');
  await person.getByRole('button', { name: /Edit the name/ }).click();
  const form = keap().locator('form.edit');
  await form.getByLabel('First name').fill('Joe');
  await form.getByLabel('Last name').fill('Bobertson');
  await form.getByLabel('Last name').press('Enter');
  await page.waitForFunction(() => /Saved/.test(document.querySelector('#notice').textContent));
  await page.waitForSelector('#across:not([hidden])');
  assert.equal(await page.locator('#across').textContent(),
    'The name differs: Keap has “Joe Bobertson”, Jira has “Ben Anderson”.');
});

test('bulk lookup fills a table as answers arrive, a few calls at a time, and exports CSV', async () => {
  const known = ['ada@example.com', 'ben.anderson@example.com', 'paul@example.com', 'grace@example.com',
    'private@example.com', 'nobody@example.com'];
  const unknown = Array.from({ length: 30 }, (_, i) => `person${i}@example.org`);
  const pasted = `name,email\nAda,ada@example.com\n${known.slice(1).join('\n')}\n${unknown.join('\n')}\nADA@example.com\n`;
  let inFlight = 0;
  let most = 0;
  const proxied = (r) => r.url().includes('/proxy/');
  const up = (r) => { if (proxied(r)) { inFlight += 1; most = Math.max(most, inFlight); } };
  const down = (r) => { if (proxied(r)) inFlight -= 1; };
  page.on('request', up);
  page.on('requestfinished', down);
  page.on('requestfailed', down);
  await sandbox.fail({ path: KEAP_CONTACTS, count: 4, mode: 'slow', delay_ms: 1500 });

  await openBulk();
  await page.fill('#bulk-input', pasted);
  await page.click('#bulk-start');
  await page.waitForSelector('#bulk-run:not([hidden])');
  assert.equal(await page.locator('#bulk-table tbody tr').count(), 36, 'one row per email, duplicates dropped');
  await page.waitForFunction(() => document.querySelectorAll('#bulk-table td[data-state=found]').length >= 2);
  await page.locator('#bulk').scrollIntoViewIfNeeded();
  await shot('bulk-mid-run');
  assert.match(await page.locator('#bulk-status').textContent(), /Looked up \d+ of 36 emails/);
  await page.waitForFunction(() => /^Done/.test(document.querySelector('#bulk-status').textContent), null, { timeout: 60000 });
  page.off('request', up);
  page.off('requestfinished', down);
  page.off('requestfailed', down);
  assert.ok(most <= 4 && most >= 2, `${most} calls were in flight at once`);
  assert.equal(await page.locator('#bulk-progress').evaluate((p) => p.value === p.max), true);

  const row = (email) => page.locator(`#bulk-table tr[data-email="${email}"]`);
  const ada = await row('ada@example.com').locator('td').allTextContents();
  assert.equal(ada[1], '✓ 101');
  assert.equal(ada[2], '✓');
  assert.deepEqual((await row('nobody@example.com').locator('td').allTextContents()).slice(1), ['✗', '✗']);
  assert.deepEqual((await row('private@example.com').locator('td').allTextContents()).slice(1), ['✗', '? email hidden']);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#bulk-export')]);
  const csv = fs.readFileSync(await download.path(), 'utf8').split('\r\n');
  assert.equal(csv[0], 'email,keap,keap_contact_ids,jira,jira_account_ids');
  assert.match(csv.find((l) => l.startsWith('ada@example.com,')), /^ada@example\.com,found,101,found,\S+$/);
  assert.equal(csv.find((l) => l.startsWith('nobody@example.com,')), 'nobody@example.com,not_found,,not_found,');
  assert.equal(csv.filter(Boolean).length, 37);
});

test('bulk lookup waits out a 429 and can be cancelled', async () => {
  // Three 429s without Retry-After: the relay retries a GET twice, the page sees the third and pauses Keap.
  await sandbox.fail({ path: KEAP_CONTACTS, count: 3, mode: 'status', status: 429 });
  await openBulk();
  await page.fill('#bulk-input', 'ada@example.com');
  await page.click('#bulk-start');
  await page.waitForFunction(() => /Keap asked to wait 5 s \(HTTP 429\)/.test(document.querySelector('#bulk-status').textContent));
  await page.waitForFunction(() => /^Done/.test(document.querySelector('#bulk-status').textContent), null, { timeout: 20000 });
  assert.match(await page.locator('#bulk-table tr[data-email="ada@example.com"] td').nth(1).textContent(), /^✓ 101$/);

  // Four workers, each soon waiting on a slow Keap answer; four failures, so none are left for the next test.
  await sandbox.fail({ path: KEAP_CONTACTS, count: 4, mode: 'slow', delay_ms: 2500 });
  await page.fill('#bulk-input', Array.from({ length: 40 }, (_, i) => `someone${i}@example.net`).join('\n'));
  await page.click('#bulk-start');
  await page.waitForSelector('#bulk-cancel:not([hidden])');
  await page.click('#bulk-cancel');
  await page.waitForFunction(() => /^Cancelled after \d+ of 40 emails/.test(document.querySelector('#bulk-status').textContent));
  assert.ok(await page.locator('#bulk-table td[data-state=cancelled]').count() > 0);
  assert.equal(await page.locator('#bulk-start').isDisabled(), false);
});

test('bulk lookup slows down when Keap\'s throttle runs low, and no call reaches a 429', async () => {
  // Sixty calls a minute for the OAuth client, one given back every second; 62 lookups need more than the bucket.
  const limits = async (body) => {
    const r = await fetch(`${sandbox.url}/sandbox/limits`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) });
    assert.equal(r.status, 200, await r.text());
  };
  await limits({ keap_oauth_per_minute: 60 });
  try {
    const started = Date.now();
    await openBulk();
    await page.fill('#bulk-input', Array.from({ length: 62 }, (_, i) => `throttled${i}@example.net`).join('\n'));
    await page.click('#bulk-start');
    await page.waitForFunction(() => /Keap is near its rate limit \(\d calls? left\): slowing down\./
      .test(document.querySelector('#bulk-status').textContent));
    await page.waitForFunction(() => /^Done/.test(document.querySelector('#bulk-status').textContent), null, { timeout: 40000 });
    const states = await page.locator('#bulk-table td[data-provider=keap]').evaluateAll((tds) => tds.map((t) => `${t.dataset.state} ${t.title}`));
    assert.equal(states.filter((t) => t.startsWith('none')).length, 62,
      `every Keap call answered, none was refused with a 429:\n${states.join('\n')}`);
    assert.ok(Date.now() - started >= 3000, 'the calls past the bucket waited for it to refill');
  } finally {
    await limits({ keap_oauth_per_minute: 1500 });
  }
});

test('at 375 px the search is on the first screen, and nothing scrolls sideways', async () => {
  await page.setViewportSize({ width: 375, height: 667 });
  await home();
  const box = await page.locator('#lookup-email').boundingBox();
  assert.ok(box && box.y + box.height <= 667, `the email field ends at ${box && box.y + box.height} px`);
  assert.deepEqual(await lookup('ada@example.com'), { keap: 'found', jira: 'found' });
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: innerWidth }));
  assert.ok(widths.scroll <= widths.view, `page is ${widths.scroll} px wide in a ${widths.view} px window`);
  await shot('lookup-375');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('no script errors on the way', () => {
  assert.deepEqual(problems, []);
});
