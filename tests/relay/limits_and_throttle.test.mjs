// Path traversal on the static files, request size limits and the login throttle.
// Extends tests/relay/basics.test.mjs (/../, /%2e%2e/, /web/../ refused; hidden files 404; a 1 MiB+ PATCH body → 413;
// the 6th failed login → 429) with the spellings, channels and dodges those do not try.
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import {
  ROOT, addSecret, checkLeaksAfterAll, client, errorOf, rawRequest, startRelay, startSandbox, tempDir,
} from '../lib/harness.mjs';
import { procStatus } from '../faults/lib.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

// What a file outside the served folders would give away if a traversal worked.
const OUTSIDE = [/root:[x*]?:0:0/, /cmake_minimum_required/i, /# keyrelay\b/, /"name": "keyrelay-tests"/, /keyrelay_core/];

const TRAVERSALS = [
  '/../../../../etc/passwd', '/..%2f..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
  '/%252e%252e/%252e%252e/etc/passwd', '/%252e%252e%252f%252e%252e%252fREADME.md', '/..%252f..%252fREADME.md',
  '/..\\..\\..\\etc\\passwd', '/%5c..%5c..%5cetc%5cpasswd', '/..%5c..%5cREADME.md', '/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
  '/%c0%af..%c0%afREADME.md', '/.%2e/.%2e/README.md', '/%2e./%2e./README.md', '/..;/..;/README.md', '/index.html/../../README.md',
  '/app.js%00.html', '/../README.md%00', '//etc/passwd', '/%2fetc%2fpasswd', '/etc/passwd', '/C:/Windows/win.ini', '/C:%5cWindows%5cwin.ini',
  '/file:///etc/passwd', '/%2e%2e%2f%2e%2e%2fCMakeLists.txt', '/./../CMakeLists.txt', '/.git/HEAD', '/%2egit/HEAD', '/.%67it/HEAD',
  '/../tests/package.json', '/../shared/CMakeLists.txt',
];

function assertNotServed(res, target, where) {
  assert.ok(res.status === 400 || res.status === 404 || res.status === 403, `${where}${target}: ${res.statusLine}`);
  for (const re of OUTSIDE) assert.ok(!re.test(res.body), `${where}${target}: served content from outside (${re})`);
}

test('path traversal on the page\'s files (../, %2e%2e, encoded and double-encoded slashes, backslashes, overlong UTF-8, NUL, absolute paths) never serves a file outside web/', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  for (const target of TRAVERSALS) assertNotServed(await rawRequest(relay.url, target), target, '');
  assert.equal((await rawRequest(relay.url, '/app.js')).status, 200, 'the real files are still served');
});

test('path traversal under /wasm/ (the second static root, --wasm-dir) is refused the same way, and only keyrelay* files are served there', async (t) => {
  const sandbox = await startSandbox({ t });
  const wasmDir = await tempDir(t);
  await writeFile(path.join(wasmDir, 'keyrelay.mjs'), 'export default 1;\n');
  await writeFile(path.join(wasmDir, 'secret.txt'), 'not for the web\n');
  const relay = await startRelay({ sandbox, t, args: ['--wasm-dir', wasmDir] });
  for (const target of TRAVERSALS) assertNotServed(await rawRequest(relay.url, `/wasm${target}`), target, '/wasm');
  const other = await rawRequest(relay.url, '/wasm/secret.txt');
  assert.equal(other.status, 404, `/wasm/secret.txt: ${other.statusLine}`);
  assert.ok(!other.body.includes('not for the web'));
  assert.equal((await rawRequest(relay.url, '/wasm/keyrelay.mjs')).status, 200);
});

test('symlinks in the web folder that lead outside it (a file, a directory) are not followed', async (t) => {
  const sandbox = await startSandbox({ t });
  const web = await tempDir(t);
  await writeFile(path.join(web, 'index.html'), '<!doctype html><title>page</title>\n');
  await symlink('/etc/passwd', path.join(web, 'passwd.txt'));
  await symlink(ROOT, path.join(web, 'repo'));
  await mkdir(path.join(web, 'sub'));
  await symlink('../../', path.join(web, 'sub', 'up'));
  const relay = await startRelay({ sandbox, t, args: ['--web-dir', web] });
  assert.equal((await rawRequest(relay.url, '/')).status, 200);
  for (const target of ['/passwd.txt', '/repo/README.md', '/repo/CMakeLists.txt', '/sub/up/etc/passwd', '/sub/up/README.md']) {
    assertNotServed(await rawRequest(relay.url, target), target, 'symlink ');
  }
});

/** Sends a chunked request head, then streams `mib` MiB of body (stopping as soon as an answer arrives) → {got, sentMiB}. */
function sendChunked(relay, target, headers, mib) {
  return new Promise((resolve) => {
    const s = net.connect(Number(new URL(relay.url).port), '127.0.0.1');
    let got = '';
    let sent = 0;
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('error', () => { /* a refusal closes the connection while the client still sends: a reset here */ });
    s.on('close', () => resolve({ got, sentMiB: sent }));
    s.write(`POST ${target} HTTP/1.1\r\nHost: ${new URL(relay.url).host}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
    const chunk = Buffer.concat([Buffer.from('100000\r\n'), Buffer.alloc(1024 * 1024, 0x61), Buffer.from('\r\n')]);
    const next = () => {
      if (got || s.destroyed) return;
      if (sent >= mib) { s.end('0\r\n\r\n'); return; }
      sent += 1;
      if (s.write(chunk)) setImmediate(next); else s.once('drain', next);
    };
    // A relay that settles the framing from the headers answers before any body byte is sent: give it the chance
    // (otherwise its close while the client still streams is a reset that swallows the answer).
    setTimeout(next, 300);
  });
}

test('a chunked body cannot slip past the 1 MiB body limit (no Content-Length to check): 411 http.length_required, nothing forwarded', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const n = tap.seen.length;
  for (const target of ['/proxy/keap/crm/xmlrpc/v1', '/proxy/keap/crm/rest/v1/contacts']) {
    const { got } = await sendChunked(relay, target, page, 3);
    assert.match(got, /^HTTP\/1\.1 411/, `${target}: ${got.slice(0, 200)}`);
    assert.match(got, /http\.length_required/);
  }
  assert.deepEqual(tap.seen.slice(n).map((r) => `${r.method} ${r.path} ${r.body.length} bytes`), [], 'a chunked body was forwarded');
  assert.equal((await rawRequest(relay.url, '/healthz')).status, 200);
});

test('unauthenticated memory exhaustion: a 128 MiB chunked body to /login is refused before it is buffered (RSS stays flat)', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const before = (await procStatus(relay.child.pid)).rssKiB;
  let peak = before;
  const sampler = setInterval(() => { procStatus(relay.child.pid).then((st) => { peak = Math.max(peak, st.rssKiB); }, () => {}); }, 50);
  t.after(() => clearInterval(sampler));
  const { got, sentMiB } = await sendChunked(relay, '/login', {}, 128);
  clearInterval(sampler);
  peak = Math.max(peak, (await procStatus(relay.child.pid)).rssKiB);
  t.diagnostic(`/login with a chunked body: ${got.split('\r\n')[0] || 'closed'} after ${sentMiB} MiB sent; RSS ${before} → peak ${peak} KiB`);
  assert.ok(peak - before < 32 * 1024, `RSS grew by ${peak - before} KiB: the relay buffered an unauthenticated chunked body`);
  assert.match(got, /^HTTP\/1\.1 (411|413)/, got.slice(0, 200));
  assert.equal((await rawRequest(relay.url, '/healthz')).status, 200);
});

test('oversized requests on the other routes are refused too: a 2 MiB login body (413), a 16 KiB URI (414), a 16 KiB header (400)', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const big = await client(relay.url).post('/login', { json: { username: 'demo', password: 'x'.repeat(2 * 1024 * 1024) } });
  assert.equal(big.status, 413, `a 2 MiB login body: ${big.status}`);
  assert.equal(errorOf(big).code, 'http.payload_too_large');
  const uri = await rawRequest(relay.url, `/api/session?x=${'a'.repeat(16 * 1024)}`);
  assert.equal(uri.status, 414, uri.statusLine);
  const header = await rawRequest(relay.url, '/api/session', { headers: { 'X-Big': 'b'.repeat(16 * 1024) } });
  assert.equal(header.status, 400, header.statusLine);
});

test('a negative, non-numeric or duplicated Content-Length is refused (request-length confusion), never read as another size', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const n = tap.seen.length;
  // RFC 9112 §6.3 (5): an invalid Content-Length makes the framing invalid; the server MUST answer 400 and close.
  // Read leniently ("0x10" as 0, "1e3" as 1, "-1" as 2^64-1), the rest of the bytes become another request.
  const problems = [];
  for (const cl of ['0x10', '-1', '1e3', '10, 20']) {
    const res = await rawRequest(relay.url, '/proxy/keap/crm/xmlrpc/v1', { method: 'POST', timeout: 2000, headers: { ...page, 'Content-Type': 'text/xml', 'Content-Length': cl } })
      .catch(() => ({ status: 0, statusLine: 'no answer within 2 s (the relay waits for a body of the misread length)' }));
    if (res.status !== 400) problems.push(`Content-Length: ${cl} → ${res.statusLine}`);
  }
  const forwarded = tap.seen.slice(n).map((r) => `${r.method} ${r.path} body ${JSON.stringify(r.body)}`);
  assert.deepEqual(forwarded, [], 'a request with a bogus Content-Length was forwarded');
  assert.deepEqual(problems, [], 'bogus Content-Length values are not refused with 400');
});

test('password spraying across usernames is throttled per client address, not per username', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const wrong = `spray-password-${process.pid}`;
  addSecret(wrong, 'a sprayed password');
  const statuses = [];
  for (const user of ['admin', 'root', 'demo', 'alice', 'bob', 'carol', 'dave']) statuses.push((await browser.login(user, wrong)).status);
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
  assert.deepEqual(statuses.slice(5), [429, 429], `changing the username escaped the throttle: ${statuses}`);
});

test('a spoofed X-Forwarded-For, X-Real-IP or Forwarded header does not reset the login throttle', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const wrong = `spoof-password-${process.pid}`;
  addSecret(wrong, 'a tried password');
  for (let i = 0; i < 5; i++) assert.equal((await browser.login('demo', wrong)).status, 401);
  for (let i = 0; i < 4; i++) {
    const res = await browser.post('/login', {
      json: { username: 'demo', password: 'demo' },
      headers: { 'X-Forwarded-For': `203.0.113.${i}`, 'X-Real-IP': `198.51.100.${i}`, Forwarded: `for=192.0.2.${i}`, 'X-Client-IP': `192.0.2.${i}` },
    });
    assert.equal(res.status, 429, `a spoofed client address got past the throttle: ${res.status} ${res.body}`);
  }
});
