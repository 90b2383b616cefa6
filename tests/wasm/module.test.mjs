// The module itself: both variants export the factory and the same API; results are plain values.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { kr, createKeyrelay, wasmDir, repoRoot } from './load.mjs';

const API = {
  xmlrpc: ['encodeCall', 'decodeResponse'],
  oauth: ['basicAuthHeader', 'parseTokenResponse'],
  keap: ['findContactsByEmail', 'updateContactName', 'createContact', 'parseContacts'],
  jira: ['searchUsers', 'parseUsers'],
};

test('kr.version is the project version from CMakeLists.txt', () => {
  const cmake = fs.readFileSync(path.join(repoRoot, 'CMakeLists.txt'), 'utf8');
  const version = /project\(keyrelay VERSION ([0-9.]+)/.exec(cmake)[1];
  assert.equal(kr.version, version);
});

test('the CommonJS module exports the createKeyrelay factory with the namespaced API', () => {
  assert.equal(typeof createKeyrelay, 'function');
  for (const [ns, fns] of Object.entries(API)) {
    for (const fn of fns) assert.equal(typeof kr[ns][fn], 'function', `kr.${ns}.${fn}`);
  }
  assert.equal(typeof kr.diagnose, 'function');
});

test('two instances are independent and give the same answers', async () => {
  const other = await createKeyrelay();
  assert.notEqual(other, kr);
  assert.deepEqual(other.keap.findContactsByEmail('ada@example.com'), kr.keap.findContactsByEmail('ada@example.com'));
});

test('the browser ES module exports the same factory and API (loaded in node with wasmBinary)', async () => {
  const mjs = path.join(wasmDir, 'keyrelay.mjs');
  const { default: createEsm } = await import(pathToFileURL(mjs).href);
  assert.equal(typeof createEsm, 'function');
  const esm = await createEsm({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'keyrelay.wasm')) });
  assert.equal(esm.version, kr.version);
  for (const [ns, fns] of Object.entries(API)) {
    for (const fn of fns) assert.equal(typeof esm[ns][fn], 'function', `kr.${ns}.${fn}`);
  }
  assert.equal(esm.oauth.basicAuthHeader('a', 'b+c'), kr.oauth.basicAuthHeader('a', 'b+c'));
  assert.deepEqual(esm.jira.parseUsers(200, {}, '[]', 'a@b.c'), kr.jira.parseUsers(200, {}, '[]', 'a@b.c'));
});

test('thousands of calls need no cleanup: nothing is a handle, memory stays bounded', () => {
  const before = kr.HEAP8.length;
  const body = JSON.stringify({ contacts: Array.from({ length: 50 }, (_, i) => ({
    id: i + 1, given_name: 'G'.repeat(100), family_name: 'F', email_addresses: [{ email: `p${i}@example.com` }] })) });
  for (let i = 0; i < 3000; i++) {
    const r = kr.keap.parseContacts(200, { 'content-type': 'application/json' }, body);
    assert.equal(r.contacts.length, 50);
    assert.equal(typeof r.delete, 'undefined');
    kr.diagnose({ status: 502, headers: {}, body: '<html><title>x</title></html>', expect: 'xmlrpc' });
  }
  assert.ok(kr.HEAP8.length <= before * 2, `the heap grew from ${before} to ${kr.HEAP8.length} bytes`);
});

test('a large body within the limits decodes (memory grows as needed)', () => {
  const values = Array.from({ length: 20000 }, (_, i) => `<value><string>row ${i} ${'x'.repeat(100)}</string></value>`);
  const body = `<?xml version="1.0"?><methodResponse><params><param><value><array><data>${values.join('')}` +
    '</data></array></value></param></params></methodResponse>';
  const r = kr.xmlrpc.decodeResponse(body);
  assert.equal(r.ok, true);
  assert.equal(r.value.length, 20000);
  assert.equal(r.value[19999].slice(0, 10), 'row 19999 ');
});
