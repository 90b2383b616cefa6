// What cpp-httplib 0.11 cannot refuse inside the relay (docs/security.md "Request framing") is closed by the
// TLS-terminating nginx of docs/deploy.md: the same raw probes, sent through that very configuration, find the
// holes closed (a trickled head is cut off, percent-encoded Host and Authorization are refused, a bare LF cannot
// smuggle a second request, ranges are not applied).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';

import {
  ROOT, checkLeaksAfterAll, devCert, newApiKey, sleep, startRelay, startSandbox, tempDir, writeConfig,
} from '../lib/harness.mjs';
import { extractFile } from '../docs/blocks.mjs';

checkLeaksAfterAll();

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** The relay behind docs/deploy.md's nginx block; resolves {port, ca, sandbox, relay, stats()}. */
async function behindNginx(t) {
  const block = extractFile(path.join(ROOT, 'docs/deploy.md')).blocks.find((b) => b.lang === 'nginx');
  assert.ok(block, 'docs/deploy.md has an nginx block');
  const dir = await tempDir(t);
  const { ca } = await devCert(dir);
  const sandbox = await startSandbox({ t });
  const config = await writeConfig(dir, { public_url: 'https://localhost' });
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox, t, apiKey, args: ['--config', config], env: { KEAP_API_KEY: sandbox.config.keap.api_key } });
  const port = await freePort();
  const plainPort = await freePort();
  let conf = block.code;
  for (const [from, to] of [['listen 443 ssl http2;', `listen 127.0.0.1:${port} ssl;`], ['listen 80;', `listen 127.0.0.1:${plainPort};`],
    ['/etc/letsencrypt/live/relay.example.com/fullchain.pem', path.join(dir, 'cert/cert.pem')],
    ['/etc/letsencrypt/live/relay.example.com/privkey.pem', path.join(dir, 'cert/key.pem')],
    ['relay.example.com', 'localhost'], ['127.0.0.1:8080', new URL(relay.url).host]]) {
    assert.ok(conf.includes(from), `the nginx block no longer contains ${from}`);
    conf = conf.split(from).join(to);
  }
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, sub));
  await writeFile(path.join(dir, 'nginx.conf'), [
    'user root;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`,
    'events { worker_connections 256; }', 'http {', '  access_log off;',
    ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s === 'body' ? 'client_body' : s}_temp_path ${dir}/${s};`),
    conf, '}',
  ].join('\n'));
  const nginx = spawn('nginx', ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => nginx.on('exit', resolve));
  t.after(async () => { nginx.kill('SIGTERM'); await exited; });
  const host = `Host: localhost:${port}\r\n`;
  for (let i = 0; i < 100; i++) {
    const r = await probe(port, ca, `GET /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`).catch(() => null);
    if (r && /^HTTP\/1\.1 200/.test(r.text)) break;
    if (i === 99) assert.fail(`nginx did not answer: ${readFileSync(`${dir}/error.log`, 'utf8')}`);
    await sleep(100);
  }
  return { port, ca, sandbox, relay, apiKey, host };
}

/** Raw bytes over TLS; `trickle` sends them one byte every `trickle` ms. Resolves {text, closed, ms}. */
function probe(port, ca, bytes, { wait = 3000, trickle = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const sock = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    const chunks = [];
    let done = false;
    let drip;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(drip);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), wait);
    sock.on('secureConnect', () => {
      if (!trickle) { sock.write(bytes); return; }
      let i = 0;
      drip = setInterval(() => { if (i < bytes.length && !sock.destroyed) sock.write(bytes[i++]); }, trickle);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => (done ? null : reject(e)));
  });
}

const statusLines = (text) => text.match(/^HTTP\/1\.[01] \d{3}[^\r]*/gm) ?? [];

test('behind the documented nginx: percent-encoded Host and Authorization are refused, a bare LF smuggles nothing, ranges are not applied', { skip: !has('nginx') && 'nginx is not installed' }, async (t) => {
  const { port, ca, sandbox, apiKey, host } = await behindNginx(t);
  const count = async (key) => (await sandbox.stats()).requests[key] ?? 0;

  const auth = await probe(port, ca, `GET /proxy/keap/crm/rest/v1/contacts?email=ada%40example.com HTTP/1.1\r\n${host}Authorization: Bearer%20${apiKey}\r\nConnection: close\r\n\r\n`);
  assert.match(statusLines(auth.text)[0] ?? '', /^HTTP\/1\.1 400 /, `Bearer%20<key>: ${auth.text.slice(0, 120)}`);
  const hostPct = await probe(port, ca, `GET /api/session HTTP/1.1\r\nHost: localhost%3a${port}\r\nConnection: close\r\n\r\n`);
  assert.match(statusLines(hostPct.text)[0] ?? '', /^HTTP\/1\.1 400 /, `Host with %3a: ${hostPct.text.slice(0, 120)}`);

  const postsBefore = await count('POST /keap/crm/rest/v1/contacts');
  const getsBefore = await count('GET /keap/crm/rest/v1/contacts');
  const second = `GET /proxy/keap/crm/rest/v1/contacts?email=ada%40example.com HTTP/1.1\r\n${host}Authorization: Bearer ${apiKey}\r\n\r\n`;
  const lf = await probe(port, ca, `POST /proxy/keap/crm/rest/v1/contacts HTTP/1.1\r\n${host}Authorization: Bearer ${apiKey}\r\n` +
    `Content-Type: application/json\r\n\nContent-Length: ${second.length}\r\n\r\n${second}`);
  const lines = statusLines(lf.text);
  assert.ok(lines.every((l) => !/ 20\d /.test(l)), `bare LF: nothing succeeds: ${JSON.stringify(lines)}`);
  assert.equal(await count('POST /keap/crm/rest/v1/contacts'), postsBefore, 'bare LF: the POST reached the provider');
  assert.equal(await count('GET /keap/crm/rest/v1/contacts'), getsBefore, 'bare LF: the smuggled GET reached the provider');

  const many = 'bytes=' + Array(300).fill('0-').join(',');
  const file = await readFile(path.join(ROOT, 'web/app.js'));
  const ranged = await probe(port, ca, `GET /app.js HTTP/1.1\r\n${host}Range: ${many}\r\nConnection: close\r\n\r\n`);
  assert.doesNotMatch(ranged.text, /multipart\/byteranges/);
  assert.ok(ranged.text.length < file.length + 2048, `300 ranges: a ${ranged.text.length}-byte answer for a ${file.length}-byte file`);
});

test('behind the documented nginx: a TLS client trickling its head one byte every 2 s is cut off within 15 s', { skip: !has('nginx') && 'nginx is not installed' }, async (t) => {
  const { port, ca, host } = await behindNginx(t);
  const res = await probe(port, ca, `GET /healthz HTTP/1.1\r\n${host}X-Slow: ${'a'.repeat(100)}\r\n\r\n`, { trickle: 2000, wait: 20_000 });
  t.diagnostic(`trickling client closed after ${res.ms} ms: ${statusLines(res.text).join(', ') || 'no answer'}`);
  assert.ok(res.closed, 'the trickling client still holds its connection after 20 s');
  assert.ok(res.ms < 15_000, `closed only after ${res.ms} ms`);
});
