// Upstream faults through the sandbox's /sandbox/fail (relay/sandbox/INTERFACE.md): HTML 502 and
// 503 pages, Keap's 596, Apigee gateway faults, slow answers past the relay's read timeout, connections reset before
// any byte, XML-RPC broken by a control character, and 429s. Over 500 injected faults the relay must stay up, answer
// every caller with the one error shape of docs/api.md ({error:{code,message,hint}}; a 429 is the provider's own
// answer, passed through with its rate-limit headers), and keep its memory, thread count and open descriptors
// bounded (/proc/<pid>/status VmRSS and Threads, /proc/<pid>/fd).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { apiCall, checkLeaksAfterAll, connectedSetup, newApiKey, tempDir, writeConfig } from '../lib/harness.mjs';
import { procStatus } from './lib.mjs';

checkLeaksAfterAll();

const XMLRPC_BODY = '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params>' +
  '<param><value><string>k</string></value></param></params></methodCall>';

// Where each kind of call is failed at the sandbox, and how the caller makes it.
const TARGETS = {
  xmlrpc: { failPath: '/keap/crm/xmlrpc/v1', method: 'POST', path: '/proxy/keap/crm/xmlrpc/v1', headers: { 'Content-Type': 'text/xml' }, body: XMLRPC_BODY },
  keap: { failPath: '/keap/crm/rest/v1/contacts', method: 'GET', path: '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com' },
  jira: { failPath: '/jira/ex/jira/', method: 'GET', path: '/proxy/jira/rest/api/3/user/search?query=ada@example.com' },
};
// Mode → how many faults per target. `slow` waits 1.5 s against a 1 s read timeout: few of them, the sandbox serves
// them on a small thread pool.
const PLAN = [
  ['html_502', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['html_503', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['http_596', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['gateway_fault', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['reset', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['bad_xml_char', { xmlrpc: 40 }],
  ['rate_limit', { xmlrpc: 35, keap: 25, jira: 15 }],
  ['slow', { xmlrpc: 8, keap: 8, jira: 8 }],
];
const CONCURRENCY = 16;

/** Runs fn over items with at most `limit` in flight. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** Is this answer "clear" for the caller: 200, a 429 passed through with its rate-limit headers, or the error shape. */
function unclear(res) {
  if (res.status === 200) return null;
  if (res.status === 429) {
    const names = [...res.headers.keys()];
    const limited = names.some((h) => h === 'retry-after' || h.startsWith('x-keap-product-') || h.startsWith('x-ratelimit-'));
    return limited ? null : `429 without any rate-limit header: ${names.join(', ')}`;
  }
  const e = res.json?.error;
  if (!(e && typeof e.code === 'string' && e.code && typeof e.message === 'string' && e.message && typeof e.hint === 'string' && e.hint)) {
    return `${res.status} not {error:{code,message,hint}}: ${res.body.slice(0, 200)}`;
  }
  if (/<html|<!doctype/i.test(res.body)) return `${res.status} the provider's HTML page reached the caller`;
  if (!/^(upstream|connection)\./.test(e.code)) return `${res.status} ${e.code}: not an upstream.* error`;
  return null;
}

test('over 500 upstream faults (HTML pages, 596, gateway faults, timeouts, resets, bad XML, 429) every caller gets a clear answer, and the relay stays up with bounded memory, threads and descriptors', async (t) => {
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { upstream_read_timeout_ms: 1000 });
  const apiKey = newApiKey();
  const { sandbox, relay } = await connectedSetup({
    t, providers: ['keap', 'jira'], relayOptions: { apiKey, args: ['--config', config] },
  });
  const pid = relay.child.pid;
  const call = (target) => apiCall(relay.url, target.method, target.path, {
    apiKey, headers: target.headers, body: target.body, timeout: 30_000,
  });
  const normal = async (n) => {
    const res = await pool(Array.from({ length: n }, (_, i) => TARGETS[['keap', 'jira', 'xmlrpc'][i % 3]]), CONCURRENCY, call);
    return res.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 120)}`);
  };

  // Warm up (thread pool, upstream connection pool, allocator arenas), then take the baseline.
  assert.deepEqual(await normal(90), [], 'normal calls fail before any fault');
  const baseline = await procStatus(pid);
  const samples = [baseline];
  const sampler = setInterval(() => { procStatus(pid).then((s) => samples.push(s), () => {}); }, 100);
  t.after(() => clearInterval(sampler));

  const problems = [];
  const codes = new Map();
  let faults = 0;
  let calls = 0;
  const halfway = [];
  for (const [index, [mode, counts]] of PLAN.entries()) {
    for (const [name, n] of Object.entries(counts)) {
      const target = TARGETS[name];
      // Exactly n faults for exactly n calls: the calls consume them all (a retried GET may consume more than one
      // and the last tries then succeed), so no fault is left over for the next batch.
      await sandbox.fail({ path: target.failPath, count: n, mode, delay_ms: 1500 });
      faults += n;
      const results = await pool(Array.from({ length: n }, () => target), CONCURRENCY, call);
      calls += n;
      for (const r of results) {
        const why = unclear(r);
        if (why) problems.push(`${mode} ${name}: ${why}`);
        const key = `${r.status} ${r.json?.error?.code ?? (r.status === 200 ? 'ok' : 'passthrough')}`;
        codes.set(`${mode} ${name} → ${key}`, (codes.get(`${mode} ${name} → ${key}`) ?? 0) + 1);
      }
    }
    if (index === 3) halfway.push(await procStatus(pid));
  }
  clearInterval(sampler);
  // The relay stays up and serves normally afterwards.
  const health = await apiCall(relay.url, 'GET', '/healthz');
  assert.equal(health.status, 200, 'the relay is down after the faults');
  assert.deepEqual(await normal(60), [], 'normal calls fail after the faults');
  const end = await procStatus(pid);
  samples.push(end);

  const maxThreads = Math.max(...samples.map((s) => s.threads));
  const maxRss = Math.max(...samples.map((s) => s.rssKiB));
  t.diagnostic(`${faults} faults over ${calls} calls; answers: ${[...codes].map(([k, n]) => `${k} ×${n}`).join('; ')}`);
  t.diagnostic(`RSS KiB: baseline ${baseline.rssKiB}, halfway ${halfway[0].rssKiB}, max ${maxRss}, end ${end.rssKiB}; ` +
    `threads: baseline ${baseline.threads}, max ${maxThreads}, end ${end.threads}; fds: baseline ${baseline.fds}, end ${end.fds}; ${samples.length} samples`);

  assert.ok(faults >= 500, `only ${faults} faults were injected`);
  assert.deepEqual(problems, [], `${problems.length} callers got an unclear answer`);
  for (const mode of ['html_502', 'html_503', 'http_596', 'gateway_fault', 'reset', 'bad_xml_char', 'slow']) {
    assert.ok([...codes.keys()].some((k) => k.startsWith(`${mode} `) && / (upstream|connection)\./.test(k)),
      `no caller saw an upstream.* error for ${mode}: ${[...codes.keys()].filter((k) => k.startsWith(mode)).join(', ')}`);
  }
  assert.ok([...codes.keys()].some((k) => k.startsWith('slow ') && k.includes('504 upstream.timeout')), 'slow answers past the read timeout → 504 upstream.timeout');
  // Bounds: the server's thread pool is fixed (server_threads), so the thread count must not grow with faults;
  // descriptors come back (no socket is leaked by a reset or a timeout); memory settles.
  assert.ok(maxThreads <= baseline.threads + 2, `threads grew from ${baseline.threads} to ${maxThreads}`);
  assert.ok(end.fds <= baseline.fds + 40, `open descriptors grew from ${baseline.fds} to ${end.fds} (leaked sockets?)`);
  assert.ok(maxRss - baseline.rssKiB < 48 * 1024, `RSS grew by ${maxRss - baseline.rssKiB} KiB during the faults`);
  assert.ok(end.rssKiB - halfway[0].rssKiB < 16 * 1024,
    `RSS kept growing in the second half: ${halfway[0].rssKiB} → ${end.rssKiB} KiB (a leak per fault?)`);
});
