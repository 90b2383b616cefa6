// The Explain panel's "Migrate an XML-RPC call" mode in a real browser: a pasted methodCall shown as the Keap REST
// calls the bridge makes for it (the core's plan, compiled to Wasm), its faults in the page's error style, and
// pasted markup shown as text. No sign-in: the panel works before it. Debian's Chromium, headless, driven by
// playwright-core; the page is served by keyrelay (in front of keyrelay-sandbox) on OS-chosen ports.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, startRelay, startSandbox } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS, pageFolder } from '../lib/browser.mjs';

// The page under test (default web/); pointing it at an older copy shows which of these tests that copy fails.
const WEB_DIR = path.resolve(ROOT, process.env.KEYRELAY_WEB_DIR || 'web');
const SHOTS = path.join(ROOT, 'build', 'screenshots');

let sandbox;
let relay;
let context;
let page;
let tmp;
const problems = [];

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `migrate-${name}.png`), fullPage: true });
}

const methodCall = (name, params) => `<?xml version="1.0"?><methodCall><methodName>${name}</methodName><params>` +
  params.map((p) => `<param><value>${p}</value></param>`).join('') + '</params></methodCall>';

async function migrate(text) {
  await page.fill('#migrate-call', text);
  await page.click('#migrate-submit');
  await page.waitForFunction(() => !document.querySelector('#migrate-result').hidden ||
    !document.querySelector('#migrate-error').hidden);
}

const result = () => page.locator('#migrate-result');
const error = () => page.locator('#migrate-error');

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-migrate-'));
  sandbox = await startSandbox();
  relay = await startRelay({ sandbox, args: ['--web-dir', pageFolder(tmp, WEB_DIR)] });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: CHROMIUM_ARGS,
  });
  page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  page.on('console', (msg) => {
    // Before signing in, the session check is a 401 the page expects.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(relay.url);
  await page.waitForSelector('html[data-ready=true]');
});

after(async () => {
  await context?.close();
  await relay?.stop();
  await sandbox?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the mode is reached with the keyboard alone, and its placeholder is a real call', async () => {
  await page.focus('#explain summary');
  await page.keyboard.press('Enter');   // opens the panel
  await page.waitForSelector('#mode-response:visible');
  await page.focus('#mode-response');
  await page.keyboard.press('ArrowDown');   // radio group: the arrow keys move the choice
  assert.equal(await page.locator('#mode-migrate').isChecked(), true);
  assert.equal(await page.locator('#migrate-form').isVisible(), true);
  assert.equal(await page.locator('#explain-form').isVisible(), false);
  assert.match(await page.locator('#migrate-call').getAttribute('placeholder'),
    /<methodName>ContactService\.addWithDupCheck<\/methodName>/);

  await page.keyboard.press('Tab');   // into the textarea
  assert.equal(await page.evaluate(() => document.activeElement.id), 'migrate-call');
  await page.keyboard.insertText(methodCall('DataService.echo', ['<string>hi</string>']));
  await page.keyboard.press('Control+Enter');
  await result().waitFor({ state: 'visible' });
  assert.match(await result().textContent(), /answered by the bridge/);
});

test('addWithDupCheck becomes a search, then a create or an update, each with its path and JSON body', async () => {
  await migrate(methodCall('ContactService.addWithDupCheck', [
    '<string>KEY</string>',
    '<struct><member><name>FirstName</name><value><string>Ben</string></value></member>' +
      '<member><name>Email</name><value><string>ben.anderson@example.com</string></value></member></struct>',
    '<string>Email</string>']));
  assert.equal(await error().isVisible(), false);
  const calls = result().locator('.migration-call');
  assert.equal(await calls.count(), 3, 'the search, then POST or PATCH');
  const requests = await result().locator('.migration-request').allTextContents();
  assert.match(requests[0], /^GET \/crm\/rest\/v2\/contacts\?filter=email%3D%3Dben\.anderson%40example\.com&/);
  assert.match(requests[1], /^POST \/crm\/rest\/v2\/contacts$/);
  assert.match(requests[2], /^PATCH \/crm\/rest\/v2\/contacts\/\{id\}\?update_mask=given_name%2Cemail_addresses$/);
  // The search's query, decoded for reading.
  assert.match(await calls.nth(0).locator('.migration-query').textContent(), /filteremail==ben\.anderson@example\.com/);
  // The later calls say when they happen.
  assert.match(await calls.nth(1).locator('.migration-when').textContent(), /no contact has that email/);
  assert.match(await calls.nth(2).locator('.migration-when').textContent(), /contact \{id\} has that email/);
  // The bodies, as JSON.
  const created = JSON.parse(await calls.nth(1).locator('.migration-body').textContent());
  assert.deepEqual(created, {
    email_addresses: [{ email: 'ben.anderson@example.com', field: 'EMAIL1' }], given_name: 'Ben',
  });
  const updated = JSON.parse(await calls.nth(2).locator('.migration-body').textContent());
  assert.equal(updated.given_name, 'Ben');
  await shot('dupcheck');
});

test('the example buttons fill in a call and show its plan', async () => {
  await page.click('[data-migrate-example="query"]');
  await result().waitFor({ state: 'visible' });
  assert.match(await page.locator('#migrate-call').inputValue(), /DataService\.query/);
  const requests = await result().locator('.migration-request').allTextContents();
  assert.match(requests[0], /^GET \/crm\/rest\/v2\/contacts\?filter=email%3D%3Dben%2A&fields=id%2Cgiven_name%2Cfamily_name%2Cemail_addresses&page_size=100$/);
  assert.match(await result().textContent(), /next_page_token/);
});

test('echo needs no REST call: the bridge answers it', async () => {
  await migrate(methodCall('DataService.echo', ['<string>hello</string>']));
  assert.equal(await error().isVisible(), false);
  assert.match(await result().textContent(), /No REST call: this one is answered by the bridge itself/);
  assert.equal(await result().locator('.migration-call').count(), 0);
});

test('garbage, an unknown method and wrong parameter types show the fault, in the error style', async () => {
  await migrate('this is not XML at all');
  assert.equal(await result().isVisible(), false);
  assert.match(await error().textContent(), /Failed to parse XML-RPC request/);
  assert.match(await error().textContent(), /faultCode 0/);
  assert.equal(await error().getAttribute('role'), 'alert');

  await migrate(methodCall('ContactService.merge', ['<string>KEY</string>', '<int>1</int>', '<int>2</int>']));
  assert.match(await error().textContent(), /No such handler: ContactService\.merge/);
  assert.match(await error().textContent(), /\/crm\/rest\/v2\/contacts/, 'names the REST endpoint to use');

  await migrate(methodCall('ContactService.load', ['<string>KEY</string>', '<string>seven</string>',
    '<array><data></data></array>']));
  assert.match(await error().textContent(), /No method matching arguments: java\.lang\.String, java\.lang\.String/);

  await migrate('   ');
  assert.match(await error().textContent(), /Paste an XML-RPC call first/);
  await shot('fault');
});

test('markup inside a pasted call is shown as text, never run', async () => {
  const hostile = '<img src=x onerror="window.__pwned=1">';
  const escaped = hostile.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  // In a value: it reaches the planned JSON body.
  await migrate(methodCall('ContactService.add', ['<string>KEY</string>',
    `<struct><member><name>FirstName</name><value><string>${escaped}</string></value></member></struct>`]));
  const body = JSON.parse(await result().locator('.migration-body').first().textContent());
  assert.equal(body.given_name, hostile);
  assert.equal(await result().locator('img').count(), 0);
  // In a method name: it reaches the fault text.
  await migrate(methodCall(`Contact${escaped}`, ['<string>KEY</string>']));
  assert.match(await error().textContent(), /<img src=x onerror=/);
  assert.equal(await error().locator('img').count(), 0);
  // In a field name: the fault names it.
  await migrate(methodCall('ContactService.add', ['<string>KEY</string>',
    `<struct><member><name>${escaped}</name><value><string>x</string></value></member></struct>`]));
  assert.match(await error().textContent(), /No field found: Contact\.<img src=x onerror=/);
  assert.equal(await page.locator('#explain img').count(), 0);
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
});

test('switching back shows the response form again; no page errors', async () => {
  await page.check('#mode-response');
  assert.equal(await page.locator('#explain-form').isVisible(), true);
  assert.equal(await page.locator('#migrate-form').isVisible(), false);
  assert.equal(await result().isVisible(), false);
  assert.deepEqual(problems, []);
});
