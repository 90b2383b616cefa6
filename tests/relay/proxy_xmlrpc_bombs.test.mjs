// XXE and entity-expansion bombs against XML-RPC decoding. The sandbox never sends such a body, so
// the tap plays a hostile (or impersonated) Keap: it answers the relay's XML-RPC call with the attack. The core
// decoder never processes a DOCTYPE or an entity declaration (shared/src/xmlrpc.cpp), so the relay must answer the
// caller with 502 upstream.<diagnosis> at once — no file content, no expansion, no outbound fetch of a DTD — and keep
// serving. tests/relay/upstream.test.mjs covers the benign broken-XML case (bad_xml_char).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, errorOf } from '../lib/harness.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

const CALL = '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params>' +
  '<param><value><string>k</string></value></param></params></methodCall>';
const answer = (inner, prolog = '') => `<?xml version="1.0"?>${prolog}<methodResponse><params><param><value>${inner}</value></param></params></methodResponse>`;

/** Makes the tap answer the next XML-RPC calls with `body`, calls the relay once, and returns the caller's answer. */
async function attack(ctx, body) {
  const off = ctx.tap.intercept(({ path }) => (path.startsWith('/keap/crm/xmlrpc/v1') ? { status: 200, headers: { 'Content-Type': 'text/xml' }, body } : undefined));
  try {
    const started = Date.now();
    const res = await ctx.browser.proxy('keap', 'crm/xmlrpc/v1', { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: CALL, timeout: 20_000 });
    res.took = Date.now() - started;
    return res;
  } finally {
    off();
  }
}

async function stillServes(ctx) {
  const res = await ctx.browser.proxy('keap', 'crm/xmlrpc/v1', { method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: CALL });
  assert.equal(res.status, 200, `the relay no longer serves XML-RPC after the attack: ${res.body.slice(0, 200)}`);
}

test('XXE: an XML-RPC answer declaring an external entity (SYSTEM "file:///etc/passwd") is refused with 502 upstream.doctype_refused, and no file content reaches the caller', async (t) => {
  const ctx = await tappedSetup({ t });
  const res = await attack(ctx, answer('<string>&xxe;</string>', '<!DOCTYPE methodResponse [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'));
  assert.equal(res.status, 502, res.body);
  assert.equal(errorOf(res).code, 'upstream.doctype_refused');
  assert.ok(!/root:|daemon:|\/bin\/(ba)?sh/.test(res.body), `file content leaked: ${res.body.slice(0, 300)}`);
  await stillServes(ctx);
});

test('billion laughs: nested internal entities are refused at once (502 upstream.doctype_refused), never expanded', async (t) => {
  const ctx = await tappedSetup({ t });
  let decl = '<!ENTITY lol0 "lollollollollollollollollollol">';
  for (let i = 1; i <= 9; i++) decl += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
  const res = await attack(ctx, answer('<string>&lol9;</string>', `<!DOCTYPE lolz [${decl}]>`));
  assert.equal(res.status, 502, res.body.slice(0, 300));
  assert.equal(errorOf(res).code, 'upstream.doctype_refused');
  assert.ok(res.body.length < 4096, `an expanded answer of ${res.body.length} bytes`);
  assert.ok(res.took < 5000, `took ${res.took} ms`);
  await stillServes(ctx);
});

test('an external DTD and parameter entities (SYSTEM "http://…/evil.dtd", %pe;) are refused without fetching anything', async (t) => {
  const ctx = await tappedSetup({ t });
  const dtd = `${ctx.tap.url}/evil.dtd`;
  for (const prolog of [
    `<!DOCTYPE methodResponse SYSTEM "${dtd}">`,
    `<!DOCTYPE methodResponse [<!ENTITY % pe SYSTEM "${dtd}"> %pe;]>`,
    `<!DOCTYPE methodResponse PUBLIC "-//EVIL//DTD//EN" "${dtd}">`,
  ]) {
    const res = await attack(ctx, answer('<string>x</string>', prolog));
    assert.equal(res.status, 502, `${prolog}: ${res.body.slice(0, 300)}`);
    assert.equal(errorOf(res).code, 'upstream.doctype_refused', prolog);
  }
  assert.deepEqual(ctx.tap.seen.filter((r) => r.path.includes('evil.dtd')).map((r) => r.path), [], 'the relay fetched the external DTD');
  await stillServes(ctx);
});

test('an entity declaration without a DOCTYPE and an undefined entity reference (&xxe;) are refused, never resolved', async (t) => {
  const ctx = await tappedSetup({ t });
  const declared = await attack(ctx, `<?xml version="1.0"?><!ENTITY xxe SYSTEM "file:///etc/passwd">${answer('<string>&xxe;</string>').replace('<?xml version="1.0"?>', '')}`);
  assert.equal(declared.status, 502, declared.body.slice(0, 300));
  assert.match(errorOf(declared).code, /^upstream\.(doctype_refused|malformed_xml|invalid_xmlrpc)$/);
  const undefinedRef = await attack(ctx, answer('<string>&xxe;</string>'));
  assert.equal(undefinedRef.status, 502, undefinedRef.body.slice(0, 300));
  assert.equal(errorOf(undefinedRef).code, 'upstream.malformed_xml');
  assert.ok(!/root:/.test(declared.body + undefinedRef.body));
  await stillServes(ctx);
});

test('depth bomb: 100 000 nested arrays (stack exhaustion) are refused by the relay as 502 upstream.too_deep, not handed to the browser\'s decoder', async (t) => {
  const ctx = await tappedSetup({ t });
  const n = 100_000;
  const res = await attack(ctx, answer(`${'<array><data><value>'.repeat(n)}<int>1</int>${'</value></data></array>'.repeat(n)}`));
  assert.equal(ctx.relay.child.exitCode, null, 'the relay crashed on a depth bomb');
  assert.equal(res.status, 502, `a depth bomb was passed through to the caller (${res.status}, ${res.body.length} bytes): ${res.body.slice(0, 120)}`);
  assert.equal(errorOf(res).code, 'upstream.too_deep');
  await stillServes(ctx);
});
