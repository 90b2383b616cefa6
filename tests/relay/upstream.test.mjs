// The proxy against a misbehaving upstream (docs/api.md, Proxy): idempotent calls are retried on 502/503/
// 504, resets and 429 with bounded backoff; an upstream 401 causes one reactive refresh; what is not the API's answer
// (an HTML page, a gateway fault, broken XML-RPC) comes back as 502 upstream.<diagnosis> with message and hint.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, connectedSetup, errorOf } from '../lib/harness.mjs';

checkLeaksAfterAll();

const CONTACTS = '/keap/crm/rest/v1/contacts';
const ADA = 'crm/rest/v1/contacts?email=ada@example.com';
const count = async (sandbox, key) => (await sandbox.stats()).requests[key] ?? 0;

test('one HTML 502 from the upstream on a GET is retried: the caller gets 200', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  const before = await count(sandbox, `GET ${CONTACTS}`);
  await sandbox.fail({ path: CONTACTS, count: 1, mode: 'html_502' });
  const res = await browser.proxy('keap', ADA, { timeout: 20_000 });
  assert.equal(res.status, 200, res.body);
  assert.equal(await count(sandbox, `GET ${CONTACTS}`), before + 2, 'one failed try and one retry');
});

test('a connection reset on a GET is retried: the caller gets 200', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  await sandbox.fail({ path: CONTACTS, count: 1, mode: 'reset' });
  const res = await browser.proxy('keap', ADA, { timeout: 20_000 });
  assert.equal(res.status, 200, res.body);
});

test('an HTML 502 that persists → 502 upstream.* with the diagnosis as message and hint, after a bounded number of tries', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  const before = await count(sandbox, `GET ${CONTACTS}`);
  await sandbox.fail({ path: CONTACTS, count: 50, mode: 'html_502' });
  const started = Date.now();
  const res = await browser.proxy('keap', ADA, { timeout: 30_000 });
  assert.equal(res.status, 502, res.body);
  assert.match(errorOf(res).code, /^upstream\./);
  assert.ok(!/<html/i.test(res.body), 'the raw HTML page is wrapped, not passed through');
  const tries = await count(sandbox, `GET ${CONTACTS}`) - before;
  assert.equal(tries, 3, `${tries} tries: docs/api.md says at most 2 retries of an idempotent call`);
  assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms: at most 2 s of waiting in total`);
});

test('a Keap/Apigee gateway fault that persists → 502 upstream.* (a gateway fault is not the API\'s answer)', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  await sandbox.fail({ path: CONTACTS, count: 50, mode: 'gateway_fault' });
  const res = await browser.proxy('keap', ADA, { timeout: 30_000 });
  assert.equal(res.status, 502, res.body);
  assert.match(errorOf(res).code, /^upstream\./);
});

test('a non-idempotent call (PATCH) is not retried on a 502', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  await sandbox.fail({ path: `${CONTACTS}/101`, count: 1, mode: 'html_502' });
  const res = await browser.proxy('keap', 'crm/rest/v1/contacts/101', { method: 'PATCH', json: { given_name: 'Ada' }, timeout: 20_000 });
  assert.equal(res.status, 502, res.body);
  assert.match(errorOf(res).code, /^upstream\./);
  assert.equal(await count(sandbox, `PATCH ${CONTACTS}/101`), 1, 'a PATCH was sent twice');
});

test('XML-RPC broken by a control character → 502 upstream.* with the diagnosis', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  await sandbox.fail({ path: '/keap/crm/xmlrpc/v1', count: 1, mode: 'bad_xml_char' });
  const res = await browser.proxy('keap', 'crm/xmlrpc/v1', {
    method: 'POST', headers: { 'Content-Type': 'text/xml' },
    body: '<?xml version="1.0"?><methodCall><methodName>DataService.findByField</methodName><params>' +
      '<param><value><string>k</string></value></param><param><value><string>Contact</string></value></param>' +
      '<param><value><int>10</int></value></param><param><value><int>0</int></value></param>' +
      '<param><value><string>Email</string></value></param><param><value><string>ada@example.com</string></value></param>' +
      '<param><value><array><data><value><string>FirstName</string></value></data></array></value></param></params></methodCall>',
  });
  assert.equal(res.status, 502, res.body);
  assert.match(errorOf(res).code, /^upstream\./);
});

test('an upstream 401 on a live connection causes exactly one reactive refresh, then the call succeeds', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  const before = await sandbox.tokenStats('keap');
  await sandbox.fail({ path: CONTACTS, count: 1, mode: 'status', status: 401 });
  const res = await browser.proxy('keap', ADA, { timeout: 20_000 });
  assert.equal(res.status, 200, res.body);
  const after = await sandbox.tokenStats('keap');
  assert.equal(after.refreshes - before.refreshes, 1);
});

test('a Jira 429 with Retry-After 30 is not waited out (2 s budget): the caller gets the 429 with its rate-limit headers', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t, providers: ['jira'] });
  await sandbox.fail({ path: '/jira/ex/jira/', count: 1, mode: 'rate_limit' });
  const started = Date.now();
  const res = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com', { timeout: 30_000 });
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  assert.equal(res.status, 429, res.body);
  assert.equal(res.headers.get('retry-after'), '30');
  for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) assert.ok(res.headers.get(h), `${h} passes through`);
});

test('Jira\'s 2026 points-based rate-limit headers pass through with the 429', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t, providers: ['jira'] });
  await sandbox.fail({ path: '/jira/ex/jira/', count: 1, mode: 'points_limit' });
  const res = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com', { timeout: 30_000 });
  assert.equal(res.status, 429, res.body);
  assert.equal(res.headers.get('ratelimit-reason'), 'jira-quota-tenant-based');
  assert.equal(res.headers.get('beta-ratelimit-policy'), '"tenant-app-quota";q=100100;w=3600');
  assert.equal(res.headers.get('beta-ratelimit'), '"tenant-app-quota";r=0;t=1800');
  assert.equal(res.headers.get('x-ratelimit-nearlimit'), 'true');
  assert.equal(res.headers.get('retry-after'), '1800');
});

test('Keap\'s rate-limit headers pass through on an ordinary answer', async (t) => {
  const { browser } = await connectedSetup({ t });
  const res = await browser.proxy('keap', ADA);
  assert.equal(res.status, 200);
  const names = [...res.headers.keys()];
  assert.ok(names.some((h) => /^x-keap-product-(quota|throttle)-/.test(h)), `headers: ${names.join(', ')}`);
});
