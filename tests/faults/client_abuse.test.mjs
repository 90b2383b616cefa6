// Client abuse on loopback, bounded in count and time. Slow clients (slowloris: many sockets that
// send their headers one byte a second), idle connections, oversized request lines, headers and bodies, and many
// connections at once. The relay must stay up, answer what it refuses with a 4xx inside its limits (docs/api.md:
// bodies over 1 MiB → 413 http.payload_too_large), and keep serving a normal client meanwhile: /healthz and a proxied
// lookup are timed while the abuse runs.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import { apiCall, checkLeaksAfterAll, connectedSetup, newApiKey, rawRequest, sleep, tempDir, writeConfig } from '../lib/harness.mjs';
import { procStatus } from './lib.mjs';

checkLeaksAfterAll();

const LOOKUP = '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com';

async function setup(t) {
  const apiKey = newApiKey();
  const { relay, sandbox } = await connectedSetup({ t, relayOptions: { apiKey } });
  return { relay, sandbox, apiKey };
}

/**
 * Probes the relay as a normal client every `everyMs` until stop() is called: GET /healthz and a proxied lookup,
 * each with a 15 s timeout. stop() → {healthz: [ms], proxy: [ms], failures: [text]}.
 */
function normalClient(relay, apiKey, everyMs = 400) {
  const out = { healthz: [], proxy: [], failures: [] };
  let running = true;
  const timed = async (kind, fn) => {
    const t0 = Date.now();
    try {
      const res = await fn();
      if (res.status !== 200) out.failures.push(`${kind} → ${res.status} ${res.body.slice(0, 120)}`);
    } catch (err) {
      out.failures.push(`${kind}: ${err.message.slice(0, 160)}`);
    }
    out[kind].push(Date.now() - t0);
  };
  const loop = (async () => {
    while (running) {
      await Promise.all([
        timed('healthz', () => apiCall(relay.url, 'GET', '/healthz', { timeout: 15_000 })),
        timed('proxy', () => apiCall(relay.url, 'GET', LOOKUP, { apiKey, timeout: 15_000 })),
      ]);
      await sleep(everyMs);
    }
  })();
  return async () => { running = false; await loop; return out; };
}

/** Opens n sockets to the relay (in batches, so the accept backlog is not the thing under test). */
async function openSockets(relay, n) {
  const port = Number(new URL(relay.url).port);
  const socks = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => { /* the relay may drop it: that is the point */ });
      s.once('connect', () => resolve(s));
      s.once('close', () => resolve(s));
    })));
    socks.push(...batch);
  }
  return socks;
}

const worst = (xs) => (xs.length ? Math.max(...xs) : NaN);

test('slowloris: 100 sockets sending their headers one byte a second for 8 s do not stop a normal client from being served within 3 s', async (t) => {
  const { relay, apiKey } = await setup(t);
  const socks = await openSockets(relay, 100);
  t.after(() => socks.forEach((s) => s.destroy()));
  const header = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200);
  let pos = 0;
  const drip = setInterval(() => {
    const ch = header[pos % header.length];
    pos += 1;
    for (const s of socks) if (!s.destroyed) s.write(ch);
  }, 1000);
  t.after(() => clearInterval(drip));
  await sleep(1500); // every slow socket has started its request
  const stop = normalClient(relay, apiKey);
  await sleep(6500);
  const seen = await stop();
  clearInterval(drip);
  const open = socks.filter((s) => !s.destroyed).length;
  socks.forEach((s) => s.destroy());
  t.diagnostic(`slowloris: ${open}/100 slow sockets still open after 8 s; normal client worst latency: /healthz ${worst(seen.healthz)} ms, proxied ${worst(seen.proxy)} ms over ${seen.healthz.length} probes; failures: ${seen.failures.length}`);
  assert.equal(relay.child.exitCode, null, 'the relay died');
  assert.deepEqual(seen.failures, [], 'a normal call failed during the slowloris');
  assert.ok(worst(seen.healthz) < 3000, `/healthz took ${worst(seen.healthz)} ms during the slowloris (latencies ${seen.healthz.join(', ')})`);
  assert.ok(worst(seen.proxy) < 3000, `a proxied lookup took ${worst(seen.proxy)} ms during the slowloris`);
});

test('300 idle connections that never send a byte are dropped after the keep-alive wait and do not starve a normal client', async (t) => {
  const { relay, apiKey } = await setup(t);
  const stop = normalClient(relay, apiKey);
  const socks = await openSockets(relay, 300);
  t.after(() => socks.forEach((s) => s.destroy()));
  await sleep(7000);
  const seen = await stop();
  const open = socks.filter((s) => !s.destroyed && !s.readableEnded).length;
  socks.forEach((s) => s.destroy());
  t.diagnostic(`idle: ${open}/300 idle sockets still open after 7 s; normal client worst latency: /healthz ${worst(seen.healthz)} ms, proxied ${worst(seen.proxy)} ms`);
  assert.equal(relay.child.exitCode, null, 'the relay died');
  assert.deepEqual(seen.failures, [], 'a normal call failed while idle connections were held');
  assert.ok(worst(seen.healthz) < 5000, `/healthz took ${worst(seen.healthz)} ms while 300 idle connections were held`);
  assert.ok(open < 300, 'no idle connection was ever closed by the relay');
});

test('a request line over 8 KiB, a header over 8 KiB and 64 KiB of headers are refused with a 4xx, and the relay keeps serving', async (t) => {
  const { relay, apiKey } = await setup(t);
  const cases = [
    ['request line of 16 KiB', `/healthz?pad=${'a'.repeat(16 * 1024)}`, {}],
    ['one header of 16 KiB', '/healthz', { 'X-Big': 'b'.repeat(16 * 1024) }],
    ['one header of 1 MiB', '/healthz', { 'X-Huge': 'c'.repeat(1024 * 1024) }],
    ['1000 headers of 64 bytes', '/healthz', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`X-H${i}`, 'd'.repeat(64)]))],
  ];
  for (const [what, target, headers] of cases) {
    let res;
    try {
      res = await rawRequest(relay.url, target, { headers, timeout: 10_000 });
    } catch (err) {
      // Closing the connection on a header flood is a refusal too; what matters is that the relay stays up.
      res = { status: 0, statusLine: `closed: ${err.code ?? err.message}` };
    }
    t.diagnostic(`${what}: ${res.statusLine}`);
    if (what === '1000 headers of 64 bytes') {
      // 64 KiB of ordinary headers is within what a server may accept; it must answer, not crash.
      assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500) || res.status === 0, `${what}: ${res.statusLine}`);
    } else {
      assert.ok(res.status === 0 || (res.status >= 400 && res.status < 500), `${what} was not refused: ${res.statusLine}`);
    }
    const health = await apiCall(relay.url, 'GET', '/healthz');
    assert.equal(health.status, 200, `the relay stopped serving after ${what}`);
  }
  assert.equal((await apiCall(relay.url, 'GET', LOOKUP, { apiKey })).status, 200);
});

/** Sends a request head, then (optionally) `bodyBytes` of body in chunks; resolves with the status line it got. */
function sendBody(relay, head, { bodyBytes = 0, chunked = false, timeout = 15_000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(Number(new URL(relay.url).port), '127.0.0.1');
    let got = '';
    let sent = 0;
    const timer = setTimeout(() => { s.destroy(); resolve({ statusLine: 'timeout', sent }); }, timeout);
    s.on('data', (d) => {
      got += d.toString('latin1');
      // An answer before the body was all sent: take it (the relay may keep reading and discarding the body).
      if (/\r\n\r\n[\s\S]*\}/.test(got)) { clearTimeout(timer); s.destroy(); resolve({ statusLine: got.split('\r\n')[0], raw: got, sent }); }
    });
    s.on('error', () => { /* reset after the relay answered and closed: expected */ });
    s.on('close', () => { clearTimeout(timer); resolve({ statusLine: got.split('\r\n')[0], raw: got, sent }); });
    s.on('connect', async () => {
      s.write(head);
      // A relay that settles the body size from the headers answers before any body byte: give it the chance
      // (its close while the client still streams would be a reset that swallows the answer).
      await new Promise((r) => setTimeout(r, 300));
      const piece = Buffer.alloc(64 * 1024, 0x61);
      while (sent < bodyBytes && !s.destroyed && !got) {
        const n = Math.min(piece.length, bodyBytes - sent);
        const data = chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece.subarray(0, n), Buffer.from('\r\n')]) : piece.subarray(0, n);
        if (!s.write(data)) await new Promise((r) => { s.once('drain', r); s.once('close', r); });
        sent += n;
      }
      if (chunked && !s.destroyed && !got) s.write('0\r\n\r\n');
    });
  });
}

test('huge bodies: a 64 MiB body is refused with 413 without being buffered (RSS stays flat), a 3 MiB chunked body with 411, and nothing reaches the sandbox', async (t) => {
  const { relay, sandbox, apiKey } = await setup(t);
  const before = (await sandbox.stats()).requests['POST /keap/crm/xmlrpc/v1'] ?? 0;
  const rss = (await procStatus(relay.child.pid)).rssKiB;
  const head = (extra) => `POST /proxy/keap/crm/xmlrpc/v1 HTTP/1.1\r\nHost: ${new URL(relay.url).host}\r\nAuthorization: Bearer ${apiKey}\r\n` +
    `Content-Type: text/xml\r\nConnection: close\r\n${extra}\r\n`;
  const big = 64 * 1024 * 1024;
  const whole = await sendBody(relay, head(`Content-Length: ${big}\r\n`), { bodyBytes: big, timeout: 60_000 });
  const grown = (await procStatus(relay.child.pid)).rssKiB - rss;
  t.diagnostic(`Content-Length 64 MiB: ${whole.statusLine} after ${whole.sent} bytes; RSS grew ${grown} KiB`);
  assert.match(whole.statusLine, /^HTTP\/1\.1 413/, `a 64 MiB body: ${whole.statusLine}`);
  assert.match(whole.raw, /http\.payload_too_large/);
  assert.ok(grown < 16 * 1024, `RSS grew by ${grown} KiB while a 64 MiB body was refused (buffered?)`);
  const chunked = await sendBody(relay, head('Transfer-Encoding: chunked\r\n'), { bodyBytes: 3 * 1024 * 1024, chunked: true });
  t.diagnostic(`chunked 3 MiB: ${chunked.statusLine || 'connection closed'} after ${chunked.sent} bytes`);
  assert.match(chunked.statusLine, /^HTTP\/1\.1 411/, `a 3 MiB chunked body: ${chunked.statusLine}`);
  assert.match(chunked.raw, /http\.length_required/);
  assert.equal((await sandbox.stats()).requests['POST /keap/crm/xmlrpc/v1'] ?? 0, before, 'an oversized body reached the sandbox');
  assert.equal((await apiCall(relay.url, 'GET', LOOKUP, { apiKey })).status, 200, 'the relay serves normally afterwards');
});

test('a 1 GiB Content-Length is refused with 413 as soon as the headers arrive, so no worker waits for (or reads) a body it will refuse', async (t) => {
  const { relay, apiKey } = await setup(t);
  const head = `POST /proxy/keap/crm/xmlrpc/v1 HTTP/1.1\r\nHost: ${new URL(relay.url).host}\r\nAuthorization: Bearer ${apiKey}\r\n` +
    `Content-Type: text/xml\r\nConnection: close\r\nContent-Length: ${2 ** 30}\r\n\r\n`;
  const started = Date.now();
  const res = await sendBody(relay, head, { bodyBytes: 1024 * 1024, timeout: 5000 });
  t.diagnostic(`Content-Length 1 GiB, 1 MiB sent: ${res.statusLine} after ${Date.now() - started} ms`);
  assert.match(res.statusLine, /^HTTP\/1\.1 413/, `no 413 within 5 s: ${res.statusLine}`);
});

test('400 concurrent callers (health checks and proxied lookups) are all answered, and the workers never exceed server_threads', async (t) => {
  // The relay starts workers on demand up to server_threads (32 of them stay when idle); past that, connections wait
  // in its queue and the listen queue (widened past cpp-httplib's 5, docs/deploy.md). With server_threads 64 the 400 callers need both.
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { server_threads: 64 });
  const apiKey = newApiKey();
  const { relay } = await connectedSetup({ t, relayOptions: { apiKey, args: ['--config', config] } });
  const before = await procStatus(relay.child.pid);
  const CORE = 32;
  const started = Date.now();
  let peak = before.threads;
  const sampler = setInterval(() => { procStatus(relay.child.pid).then((s) => { peak = Math.max(peak, s.threads); }, () => {}); }, 20);
  t.after(() => clearInterval(sampler));
  const results = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2
    ? apiCall(relay.url, 'GET', '/healthz', { timeout: 30_000 })
    : apiCall(relay.url, 'GET', LOOKUP, { apiKey, timeout: 30_000 })).catch((err) => ({ status: 0, body: err.message }))));
  const took = Date.now() - started;
  clearInterval(sampler);
  const after = await procStatus(relay.child.pid);
  peak = Math.max(peak, after.threads);
  const bad = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${String(r.body).slice(0, 100)}`);
  t.diagnostic(`400 concurrent calls in ${took} ms; threads ${before.threads} → peak ${peak} → ${after.threads}; RSS ${before.rssKiB} → ${after.rssKiB} KiB`);
  assert.deepEqual(bad, [], `${bad.length} of 400 concurrent calls failed`);
  assert.ok(peak <= before.threads - CORE + 64 + 2, `threads grew from ${before.threads} to ${peak}: more workers than server_threads 64`);
});

test('100 slowloris sockets and 300 idle keep-alive connections at once: a normal client is still served within 3 s', async (t) => {
  const { relay, apiKey } = await setup(t);
  const slow = await openSockets(relay, 100);
  const idle = await openSockets(relay, 300);
  t.after(() => [...slow, ...idle].forEach((s) => s.destroy()));
  const host = new URL(relay.url).host;
  // The idle ones each make one request and then keep the connection open without another.
  for (const s of idle) if (!s.destroyed) s.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const header = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ` + 'a'.repeat(200);
  let pos = 0;
  const drip = setInterval(() => {
    const ch = header[pos % header.length];
    pos += 1;
    for (const s of slow) if (!s.destroyed) s.write(ch);
  }, 1000);
  t.after(() => clearInterval(drip));
  await sleep(1000);
  const stop = normalClient(relay, apiKey);
  await sleep(6000);
  const seen = await stop();
  clearInterval(drip);
  const slowOpen = slow.filter((s) => !s.destroyed).length;
  const idleOpen = idle.filter((s) => !s.destroyed && !s.readableEnded).length;
  t.diagnostic(`slowloris + idle keep-alive: ${slowOpen}/100 slow and ${idleOpen}/300 idle sockets open after 7 s; normal client worst latency: /healthz ${worst(seen.healthz)} ms, proxied ${worst(seen.proxy)} ms over ${seen.healthz.length} probes; failures: ${seen.failures.length}`);
  assert.equal(relay.child.exitCode, null, 'the relay died');
  assert.deepEqual(seen.failures, [], 'a normal call failed');
  assert.ok(worst(seen.healthz) < 3000, `/healthz took ${worst(seen.healthz)} ms (latencies ${seen.healthz.join(', ')})`);
  assert.ok(worst(seen.proxy) < 3000, `a proxied lookup took ${worst(seen.proxy)} ms`);
});
