// docs/deploy.md stays true: its nginx configuration really fronts the relay (Host passed through, cookies made
// Secure, HSTS, /login limited, http → https), and the systemd unit it installs (relay/keyrelay.service, plus the
// built-in TLS drop-in it shows) passes `systemd-analyze verify` and has the settings the page describes.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import {
  BIN_DIR, ROOT, checkLeaksAfterAll, devCert, newApiKey, newStoreKey, sleep, startRelay, startSandbox, tempDir,
  writeConfig,
} from '../lib/harness.mjs';
import { extractFile } from './blocks.mjs';

checkLeaksAfterAll();

const deployBlocks = extractFile(path.join(ROOT, 'docs/deploy.md')).blocks;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A free TCP port on 127.0.0.1 (closed again at once; nginx binds it right after). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** One HTTP(S) exchange with an explicit Host header; resolves {status, headers, body}. */
function exchange(url, { method = 'GET', host, headers = {}, body, ca } = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request({
      host: '127.0.0.1', port: u.port, path: u.pathname + u.search, method, ca, servername: 'localhost',
      headers: { Host: host ?? u.host, Connection: 'close', ...headers }, timeout: 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs an nginx block of docs/deploy.md as printed, in `dir`, with this machine's ports and files: its TLS and plain
 * listeners on free ports, the dev certificate in dir/cert for the public one, localhost for relay.example.com, plus
 * the block's own `substitutions` ([from, to] pairs). Each must apply exactly where expected, or the test says the
 * docs moved. Returns the two ports; nginx stops with the test.
 */
async function runDocsNginx(t, dir, block, what, substitutions) {
  const tlsPort = await freePort();
  const plainPort = await freePort();
  let conf = block.code;
  const substitute = (from, to) => {
    assert.ok(conf.includes(from), `the ${what} of docs/deploy.md no longer contains ${JSON.stringify(from)}: update this test`);
    conf = conf.split(from).join(to);
  };
  substitute('listen 443 ssl http2;', `listen 127.0.0.1:${tlsPort} ssl http2;`);
  substitute('listen 80;', `listen 127.0.0.1:${plainPort};`);
  substitute('/etc/letsencrypt/live/relay.example.com/fullchain.pem', path.join(dir, 'cert/cert.pem'));
  substitute('/etc/letsencrypt/live/relay.example.com/privkey.pem', path.join(dir, 'cert/key.pem'));
  substitute('relay.example.com', 'localhost');
  for (const [from, to] of substitutions) substitute(from, to);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, sub));
  await writeFile(path.join(dir, 'nginx.conf'), [
    'user root;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`,
    'events { worker_connections 64; }',
    'http {', '  access_log off;',
    ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s === 'body' ? 'client_body' : s}_temp_path ${dir}/${s};`),
    conf, '}',
  ].join('\n'));
  const check = spawnSync('nginx', ['-t', '-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`], { encoding: 'utf8' });
  assert.equal(check.status, 0, `nginx -t:\n${check.stderr}`);
  const nginx = spawn('nginx', ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => nginx.on('exit', resolve));
  t.after(async () => { nginx.kill('SIGTERM'); await exited; });
  return { tlsPort, plainPort };
}

test('docs/deploy.md: its nginx configuration fronts the relay as the page says', async (t) => {
  if (!has('nginx')) { t.skip('nginx is not installed (scripts/setup installs nginx-light)'); return; }
  const block = deployBlocks.find((b) => b.lang === 'nginx');
  assert.ok(block, 'docs/deploy.md has an nginx block');
  const dir = await tempDir(t);

  // A certificate for localhost from scripts/dev-cert stands in for the public one.
  const { ca } = await devCert(dir);

  const sandbox = await startSandbox({ t });
  const config = await writeConfig(dir, { public_url: 'https://localhost' });
  const relay = await startRelay({ sandbox, t, apiKey: newApiKey(), args: ['--config', config], env: { KEAP_API_KEY: sandbox.config.keap.api_key } });
  const upstream = new URL(relay.url).host;
  // The block as printed, with this machine's ports and files.
  const { tlsPort, plainPort } = await runDocsNginx(t, dir, block, 'nginx block', [['127.0.0.1:8080', upstream]]);

  const base = `https://localhost:${tlsPort}`;
  let health;
  for (let i = 0; i < 100 && !health; i++) {
    try { health = await exchange(`${base}/healthz`, { ca, host: `localhost:${tlsPort}` }); } catch { await sleep(100); }
  }
  assert.ok(health, `nginx did not answer; its log:\n${readFileSync(`${dir}/error.log`, 'utf8')}`);
  assert.equal(health.status, 200, `/healthz through nginx: ${health.status} ${health.body}`);
  assert.match(health.headers['strict-transport-security'] ?? '', /max-age=\d+/, 'HSTS is sent');

  // The Host the browser sent reaches the relay: a name it does not serve is refused by the relay itself.
  const foreign = await exchange(`${base}/healthz`, { ca, host: 'rebind.example' });
  assert.equal(foreign.status, 400);
  assert.equal(JSON.parse(foreign.body).error.code, 'http.bad_host');

  // The session cookie leaves nginx with Secure.
  const login = await exchange(`${base}/login`, {
    ca, method: 'POST', host: `localhost:${tlsPort}`, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo' }),
  });
  assert.equal(login.status, 200, login.body);
  const cookie = (login.headers['set-cookie'] ?? []).find((c) => /^keyrelay_session=/.test(c));
  assert.ok(cookie, `a session cookie: ${login.headers['set-cookie']}`);
  assert.match(cookie, /;\s*secure/i, `Secure added by proxy_cookie_flags: ${cookie}`);
  assert.match(cookie, /HttpOnly/);

  // A backend's call goes through too.
  const contacts = await exchange(`${base}/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com&limit=1`, {
    ca, host: `localhost:${tlsPort}`, headers: { Authorization: `Bearer ${relay.apiKey}` },
  });
  assert.equal(contacts.status, 200, contacts.body);
  assert.equal(JSON.parse(contacts.body).contacts[0].id, 101);

  // /login is limited per client address by nginx (503), not only by the relay (429, per proxy address).
  const statuses = [];
  for (let i = 0; i < 9; i++) {
    statuses.push((await exchange(`${base}/login`, {
      ca, method: 'POST', host: `localhost:${tlsPort}`, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'demo', password: `wrong-${i}` }),
    })).status);
  }
  assert.ok(statuses.includes(503), `nginx's limit_req answers 503 after the burst: ${statuses}`);

  // Plain HTTP is redirected to HTTPS.
  const plain = await exchange(`http://localhost:${plainPort}/api/session`, { host: 'localhost' });
  assert.equal(plain.status, 301);
  assert.equal(plain.headers.location, 'https://localhost/api/session');
});

test('docs/deploy.md: its load-balancer nginx block spreads one browser session over two relays', async (t) => {
  if (!has('nginx')) { t.skip('nginx is not installed (scripts/setup installs nginx-light)'); return; }
  const block = deployBlocks.find((b) => b.lang === 'nginx' && b.code.includes('upstream keyrelay'));
  assert.ok(block, 'docs/deploy.md ("Two or more relays") has an nginx block with an upstream of relays');
  const dir = await tempDir(t);
  const { ca } = await devCert(dir);

  // Two relays that share their state: here one data dir (the page's Redis setup shares it the same way), one key.
  const sandbox = await startSandbox({ t });
  const config = await writeConfig(dir, { public_url: 'https://localhost' });
  const shared = path.join(dir, 'data');
  await mkdir(shared, { mode: 0o700 });
  const storeKey = newStoreKey();
  const relays = [];
  for (const name of ['relay A', 'relay B']) {
    relays.push(await startRelay({ sandbox, t, name, dataDir: shared, storeKey, args: ['--config', config] }));
  }
  const { tlsPort } = await runDocsNginx(t, dir, block, 'load-balancer nginx block', [
    ['server 10.0.0.11:8080;', `server ${new URL(relays[0].url).host};`],
    ['server 10.0.0.12:8080;', `server ${new URL(relays[1].url).host};`],
  ]);

  const base = `https://localhost:${tlsPort}`;
  const host = `localhost:${tlsPort}`;
  let health;
  for (let i = 0; i < 100 && !health; i++) {
    try { health = await exchange(`${base}/healthz`, { ca, host }); } catch { await sleep(100); }
  }
  assert.ok(health, `nginx did not answer; its log:\n${readFileSync(`${dir}/error.log`, 'utf8')}`);
  const login = await exchange(`${base}/login`, {
    ca, method: 'POST', host, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: 'demo' }),
  });
  assert.equal(login.status, 200, login.body);
  const cookie = (login.headers['set-cookie'] ?? []).find((c) => /^keyrelay_session=/.test(c));
  assert.match(cookie ?? '', /;\s*secure/i, `a Secure session cookie through the load balancer: ${login.headers['set-cookie']}`);
  const session = cookie.split(';')[0];
  for (let i = 0; i < 6; i++) {
    const res = await exchange(`${base}/api/session`, { ca, host, headers: { Cookie: session } });
    assert.equal(res.status, 200, `GET /api/session #${i + 1} through the load balancer: ${res.status} ${res.body}`);
  }
  const served = relays.map((r) => r.logs().filter(({ line }) => line.includes('"path":"/api/session"')).length);
  assert.ok(served.every((n) => n > 0), `round robin: each relay serves some of the session's requests (${served})`);
});

test('docs/deploy.md: the http2 form it gives for each nginx version is the one the installed nginx takes', async (t) => {
  if (!has('nginx')) { t.skip('nginx is not installed (scripts/setup installs nginx-light)'); return; }
  const page = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8').replace(/\s+/g, ' ');
  assert.match(page, /`listen 443 ssl http2;` is the form Debian 12's nginx \(1\.22\) needs: the separate `http2 on;` directive only exists from nginx 1\.25\.1/);
  const block = deployBlocks.find((b) => b.lang === 'nginx');
  assert.match(block.code, /^\s*listen 443 ssl http2;$/m, 'the nginx block uses the form Debian 12 needs');

  const version = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr);
  assert.ok(version, 'nginx -v printed no version');
  const [major, minor, patch] = version.slice(1).map(Number);
  const hasHttp2Directive = major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));

  const dir = await tempDir(t);
  await devCert(dir);
  const check = async (serverLines) => {
    const conf = path.join(dir, 'nginx.conf');
    await writeFile(conf, [
      `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`, 'events {}', 'http { server {',
      ...serverLines, `ssl_certificate ${dir}/cert/cert.pem;`, `ssl_certificate_key ${dir}/cert/key.pem;`, '} }',
    ].join('\n'));
    return spawnSync('nginx', ['-t', '-p', dir, '-e', `${dir}/error.log`, '-c', conf], { encoding: 'utf8' });
  };
  const port = await freePort();
  const onListen = await check([`listen 127.0.0.1:${port} ssl http2;`]);
  const directive = await check([`listen 127.0.0.1:${port} ssl;`, 'http2 on;']);
  t.diagnostic(`nginx ${version.slice(1).join('.')}: "listen ... http2" → ${onListen.status}, "http2 on;" → ${directive.status}`);
  if (hasHttp2Directive) {
    assert.equal(directive.status, 0, `nginx ${version[0]} should take http2 on;\n${directive.stderr}`);
    assert.match(onListen.stderr, /deprecated/, `nginx ${version[0]} should call listen ... http2 deprecated`);
  } else {
    assert.equal(onListen.status, 0, `nginx ${version[0]} should take listen ... ssl http2;\n${onListen.stderr}`);
    assert.notEqual(directive.status, 0, `nginx ${version[0]} took http2 on;, which the page says needs 1.25.1`);
    assert.match(directive.stderr, /unknown directive "http2"/);
  }
});

test('relay/keyrelay.service passes systemd-analyze verify and has what docs/deploy.md says', async (t) => {
  const unit = await readFile(path.join(ROOT, 'relay/keyrelay.service'), 'utf8');
  for (const line of ['DynamicUser=yes', 'StateDirectory=keyrelay', 'EnvironmentFile=/etc/keyrelay/keyrelay.env',
    'ExecStart=/usr/bin/keyrelay serve --config /etc/keyrelay/keyrelay.json', 'Restart=on-failure', 'UMask=0077',
    'ProtectSystem=strict', 'NoNewPrivileges=yes', 'KillSignal=SIGTERM']) {
    assert.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), `the unit has ${line}`);
  }
  if (!has('systemd-analyze')) { t.skip('systemd-analyze is not installed'); return; }
  const dir = await tempDir(t);
  // The binary is wherever this test's build put it; everything else as shipped, plus deploy.md's TLS drop-in.
  await writeFile(path.join(dir, 'keyrelay.service'),
    unit.replace('ExecStart=/usr/bin/keyrelay', `ExecStart=${path.join(BIN_DIR, 'keyrelay')}`));
  const dropIn = deployBlocks.find((b) => b.lang === 'ini');
  assert.ok(dropIn && /^\[Service\]/.test(dropIn.code), 'docs/deploy.md shows the TLS drop-in as an ini block');
  await mkdir(path.join(dir, 'keyrelay.service.d'));
  await writeFile(path.join(dir, 'keyrelay.service.d', 'tls.conf'), dropIn.code);
  const verify = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(dir, 'keyrelay.service')], { encoding: 'utf8' });
  assert.equal(verify.status, 0, `systemd-analyze verify:\n${verify.stdout}${verify.stderr}`);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify warns:\n${verify.stderr}`);
});
