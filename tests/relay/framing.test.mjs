// Request framing and the other ways a request's bytes could be read two ways (docs/security.md "Request framing"):
// each case is sent as raw bytes, over plain HTTP and over TLS, and the test checks the one answer, that the relay
// closed the connection after a refusal, and that nothing reached the provider.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { ROOT, checkLeaksAfterAll, newApiKey, startRelay, startSandbox, tempDir } from '../lib/harness.mjs';

checkLeaksAfterAll();

/** Sends `bytes` on a new connection; resolves {text, closed, bytes} after the server closes or `wait` ms pass. */
function exchange(relay, bytes, { wait = 1500 } = {}) {
  const u = new URL(relay.url);
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port: Number(u.port) };
    const sock = u.protocol === 'https:' ? tls.connect({ ...opts, ca: relay.ca, servername: 'localhost' }) : net.connect(opts);
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ text: buf.toString('latin1'), closed, bytes: buf.length });
    };
    const timer = setTimeout(() => finish(false), wait);
    sock.on(u.protocol === 'https:' ? 'secureConnect' : 'connect', () => sock.write(bytes));
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => (done ? null : reject(e)));
  });
}

const statusLines = (text) => text.match(/^HTTP\/1\.[01] \d{3}[^\r]*/gm) ?? [];

async function setup(t, transport) {
  const sandbox = await startSandbox({ t });
  const apiKey = newApiKey();
  const env = { KEAP_API_KEY: sandbox.config.keap.api_key };
  let args = [];
  let ca;
  if (transport === 'tls') {
    const dir = await tempDir(t);
    await promisify(execFile)(path.join(ROOT, 'scripts', 'dev-cert'), [dir], { timeout: 30_000 });
    ca = await readFile(path.join(dir, 'ca.pem'));
    args = ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')];
  }
  const relay = await startRelay({ sandbox, t, apiKey, env, args, registerRedirects: false });
  relay.ca = ca;
  const host = `Host: ${new URL(relay.url).host}\r\n`;
  const contactsPosts = async () => (await sandbox.stats()).requests['POST /keap/crm/rest/v1/contacts'] ?? 0;
  return { sandbox, relay, apiKey, host, contactsPosts };
}

for (const transport of ['plain', 'tls']) {
  test(`${transport}: a body without a usable length gets 411/400 before any body byte is read, and the connection closes`, async (t) => {
    const { relay, apiKey, host, contactsPosts } = await setup(t, transport);
    const before = await contactsPosts();
    const next = `GET /healthz HTTP/1.1\r\n${host}Cookie: keyrelay_session=victim\r\nAuthorization: Bearer someone-else\r\n\r\n`;
    const proxyHead = (fields) => `POST /proxy/keap/crm/rest/v1/contacts HTTP/1.1\r\n${host}Authorization: Bearer ${apiKey}\r\n` +
      `Content-Type: application/json\r\n${fields}\r\n`;
    const cases = [
      ['no Content-Length', proxyHead(''), 411],
      ['Content-Length : 5 (space before the colon)', proxyHead('Content-Length : 5\r\n'), 400],
      ['an empty Content-Length', proxyHead('Content-Length:\r\n'), 411],
      ['a folded Content-Length', proxyHead('Content-Length:\r\n 5\r\n'), 411],
      ['two Content-Length fields', proxyHead('Content-Length: 5\r\nContent-Length: 6\r\n'), 400],
      ['chunked', proxyHead('Transfer-Encoding: chunked\r\n'), 411],
    ];
    for (const [name, head, status] of cases) {
      const res = await exchange(relay, head + '{"a":' + next);
      const lines = statusLines(res.text);
      assert.equal(lines.length, 1, `${name}: one answer, got ${JSON.stringify(lines)}`);
      assert.match(lines[0], new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${lines[0]}`);
      assert.match(res.text, /\r\nConnection: close\r\n/, `${name}: no Connection: close`);
      assert.ok(res.closed, `${name}: the relay kept the connection open after refusing the request`);
    }
    assert.equal(await contactsPosts(), before, 'a refused request reached the provider');
  });

  test(`${transport}: header values with control characters (also percent-encoded, %00) are refused with 400 and a close`, async (t) => {
    const { relay, host } = await setup(t, transport);
    for (const field of ['X-Custom: a%00b', 'X-Custom: a\x01b', 'X-Cu stom: a']) {
      const res = await exchange(relay, `GET /healthz HTTP/1.1\r\n${host}${field}\r\n\r\n`);
      assert.match(statusLines(res.text)[0] ?? '', /^HTTP\/1\.1 400 /, `${JSON.stringify(field)}: ${res.text.slice(0, 200)}`);
      assert.ok(res.closed, `${JSON.stringify(field)}: connection left open`);
    }
  });

  test(`${transport}: "100 Continue" is never sent to an HTTP/1.0 client or before a refusal`, async (t) => {
    const { relay, host, contactsPosts } = await setup(t, transport);
    const before = await contactsPosts();
    const old = await exchange(relay, `POST /login HTTP/1.0\r\n${host}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n`);
    assert.doesNotMatch(old.text, /100 Continue/, old.text.slice(0, 200));
    assert.match(statusLines(old.text)[0] ?? '', /^HTTP\/1\.[01] 400 /, old.text.slice(0, 200));
    const big = await exchange(relay, `POST /proxy/keap/crm/rest/v1/contacts HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
    assert.doesNotMatch(big.text, /100 Continue/, big.text.slice(0, 200));
    assert.match(statusLines(big.text)[0] ?? '', /^HTTP\/1\.1 413 /, big.text.slice(0, 200));
    assert.ok(big.closed, 'connection left open after the 413');
    const ok = await exchange(relay, `POST /login HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`, { wait: 800 });
    assert.match(ok.text, /^HTTP\/1\.1 100 Continue\r\n\r\n/, 'an acceptable HTTP/1.1 request gets its 100 Continue');
    assert.equal(await contactsPosts(), before);
  });

  test(`${transport}: Range is honoured only on the page's files, one range at a time`, async (t) => {
    const { relay, apiKey, host } = await setup(t, transport);
    const many = 'bytes=' + Array(300).fill('0-').join(',');
    for (const [target, auth] of [['/app.js', ''], ['/healthz', ''], ['/api/session', ''], ['/proxy/keap/crm/rest/v1/contacts?email=ada@example.com', `Authorization: Bearer ${apiKey}\r\n`]]) {
      const res = await exchange(relay, `GET ${target} HTTP/1.1\r\n${host}${auth}Range: ${many}\r\nConnection: close\r\n\r\n`);
      assert.match(statusLines(res.text)[0] ?? '', /^HTTP\/1\.1 416 /, `${target}: ${res.text.slice(0, 200)}`);
      assert.ok(res.bytes < 2048, `${target}: a ${res.bytes}-byte answer to 300 ranges`);
    }
    const api = await exchange(relay, `GET /healthz HTTP/1.1\r\n${host}Range: bytes=0-3\r\nConnection: close\r\n\r\n`);
    assert.match(statusLines(api.text)[0] ?? '', /^HTTP\/1\.1 416 /, 'one range on /healthz is not applied');
    const file = await exchange(relay, `GET /app.js HTTP/1.1\r\n${host}Range: bytes=0-9\r\nConnection: close\r\n\r\n`);
    assert.match(statusLines(file.text)[0] ?? '', /^HTTP\/1\.1 206 /, file.text.slice(0, 200));
    assert.match(file.text, /\r\nContent-Length: 10\r\n/);
  });
}
