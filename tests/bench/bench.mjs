// scripts/bench: what the relay costs, measured side by side with its peers in the same run, since these
// machines are noisy and only ratios carry over. Prints a table and writes build/bench/results.json. Never asserts a
// timing: a target that is missed is printed as MISS; the exit status is non-zero only when a measurement could not
// run at all (a binary missing, a server that does not start, a leg whose every request failed).
//
//   node tests/bench/bench.mjs [--quick] [--only core,proxy,sandbox,page,stampede,bridge,redis] [--out DIR]
//                              [--bin-dir DIR] [--tools-dir DIR] [--wasm-dir DIR]
//
// scripts/bench builds what is needed and calls this. Sections:
//   proxy     wrk (closed loop, keep-alive, 64 connections) against (a) a static nginx upstream, (b) nginx proxy_pass
//             with an injected Authorization header, (c) keyrelay /proxy/keap/... (server-to-server API key) to the
//             same upstream, (d) a hand-written node `http` proxy with a keep-alive agent (tests/bench/node_proxy.mjs);
//             one wrk leg of (c) with 256 connections; then keyrelay_loadgen at a fixed 1,000 req/s against the same
//             four; the relay's RSS idle and peak (/proc/<pid>/status VmRSS, VmHWM); CPU time per request of each
//             proxy (/proc/<pid>/stat).
//   sandbox   the same lookup against keyrelay-sandbox, directly and through a relay in sandbox mode (OAuth), at a
//             fixed rate under the sandbox's own Keap throttle (1,500/min per OAuth client).
//   page      the Wasm module's bytes raw and gzip; navigation → interactive page in headless Chromium, median.
//   core      XML-RPC and JSON contact-list decode throughput: native, Wasm under node, Python, on the same bytes.
//   stampede  500 concurrent proxied calls at the moment the access token expires: refreshes seen by the sandbox,
//             and the latency of those calls.
//   redis     the store on Redis: two relays in sandbox mode (OAuth, Keap connected), one on the file store and one
//             on a local redis-server (AOF on, a password), under the same wrk and fixed-rate load: CPU per request
//             and p99 side by side, the redis-server's own CPU, and Redis commands per proxied call (INFO stats);
//             then 500 concurrent calls over three relays sharing that Redis at expiry: refreshes seen by the
//             sandbox (tests/lib/cluster.mjs, without nginx: the calls go to each relay directly).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { lookupJson, writeCoreInputs } from './data.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const SECTIONS = ['core', 'proxy', 'sandbox', 'page', 'stampede', 'bridge', 'redis'];

// ---------------------------------------------------------------------------------------------------------------
// Options.

function usage(code) {
  process.stdout.write(`usage: scripts/bench [--quick] [--only ${SECTIONS.join(',')}] [--out DIR]\n` +
    '                     [--bin-dir DIR] [--tools-dir DIR] [--wasm-dir DIR]\n' +
    '  --quick   a few seconds per leg (scripts/test runs this to prove the bench still works)\n');
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    quick: false, only: new Set(SECTIONS), out: path.join(ROOT, 'build', 'bench'),
    binDir: process.env.KEYRELAY_BIN_DIR || path.join(ROOT, 'build', 'native', 'bin'),
    toolsDir: process.env.KEYRELAY_BENCH_TOOLS_DIR || '',
    wasmDir: process.env.KEYRELAY_WASM_DIR || path.join(ROOT, 'build', 'wasm'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => { if (i + 1 >= argv.length) usage(2); return argv[++i]; };
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = new Set(value().split(',').filter(Boolean));
    else if (a === '--out') o.out = path.resolve(value());
    else if (a === '--bin-dir') o.binDir = path.resolve(value());
    else if (a === '--tools-dir') o.toolsDir = path.resolve(value());
    else if (a === '--wasm-dir') o.wasmDir = path.resolve(value());
    else if (a === '--help' || a === '-h') usage(0);
    else { process.stderr.write(`scripts/bench: unknown argument ${a}\n`); usage(2); }
  }
  for (const s of o.only) if (!SECTIONS.includes(s)) { process.stderr.write(`scripts/bench: unknown section ${s}\n`); usage(2); }
  return o;
}

const OPT = parseArgs(process.argv.slice(2));
// The shared test harness finds the binaries through this variable (tests/lib/harness.mjs).
process.env.KEYRELAY_BIN_DIR = OPT.binDir;
const H = await import('../lib/harness.mjs');

const QUICK = OPT.quick;
const PLAN = {
  wrkSeconds: QUICK ? 2 : 5,
  wrkRounds: QUICK ? 1 : 2,
  wrkConnections: 64,
  wrkThreads: 2,
  rate: 1000,
  rateSeconds: QUICK ? 2 : 2.5,
  rateWarmup: 0.5,
  rateRounds: QUICK ? 1 : 5,
  rateConnections: 16,
  sandboxRate: 20,
  sandboxSeconds: QUICK ? 3 : 6,
  sandboxRounds: QUICK ? 1 : 2,
  coreSeconds: QUICK ? 0.7 : 2,
  coreRounds: QUICK ? 1 : 3,
  pageRuns: QUICK ? 3 : 10,
  stampede: 500,
  stampedeTtl: 3,
  redisRate: 200,
  redisStampedeTtl: 9,
};

const LOOKUP_PATH = '/crm/rest/v1/contacts?email=ada%40example.com';

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] : null; };
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const log = (...a) => process.stderr.write(`bench: ${a.join(' ')}\n`);

const children = new Set();
function killChildren() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  children.clear();
}
process.on('exit', killChildren);

/** run(cmd, args, {env, timeoutMs}) → {code, signal, stdout, stderr}: a child process to completion. */
function run(cmd, args, { env = {}, timeoutMs = 120_000, cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) { reject(err); return; }
    children.add(child);
    const out = []; const errb = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => errb.push(d));
    const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); children.delete(child); reject(new Error(`${cmd}: ${err.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errb).toString() });
    });
  });
}

function lastJsonLine(text, prefix = '') {
  const lines = text.split('\n').filter((l) => l.startsWith(prefix + '{'));
  if (!lines.length) return null;
  try { return JSON.parse(lines[lines.length - 1].slice(prefix.length)); } catch { return null; }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitForPort(port, { timeoutMs = 10_000, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return false;
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); resolve(true); });
      sock.once('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

/** /proc/<pid>/status VmRSS and VmHWM in bytes. */
function memoryOf(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; } })();

/** CPU time (user + system, all threads) of the given processes, in microseconds. */
function cpuMicros(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);   // utime, stime (fields 14 and 15 of proc(5))
    } catch { /* exited */ }
  }
  return (ticks * 1e6) / CLK_TCK;
}

/** pid and its direct children (nginx: the master and its workers). */
function withChildren(pid) {
  const pids = [pid];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch { /* gone */ }
  }
  return pids;
}

function toolVersion(cmd, args, re = /.*/) {
  try {
    const r = execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    return (re.exec(r.toString()) ?? [''])[0].trim();
  } catch (err) {
    const text = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    return (re.exec(text) ?? [''])[0].trim() || null;
  }
}

function toolPath(name) {
  const candidates = OPT.toolsDir ? [path.join(OPT.toolsDir, name)] : [];
  candidates.push(path.join(ROOT, 'build', 'native', 'tests', 'bench', name), path.join(OPT.out, 'tools', name));
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`${name} is not built (looked in ${candidates.join(', ')}); run scripts/bench, which builds it`);
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Results.

const results = {
  generated_at: new Date().toISOString(),
  quick: QUICK,
  plan: PLAN,
  machine: {
    cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, kernel: os.release(),
    memory_bytes: os.totalmem(), loadavg_at_start: os.loadavg().map((x) => round(x, 2)),
  },
  tools: {},
  sections: {},
  targets: [],
  failures: [],
};

function fail(section, err) {
  const message = err instanceof Error ? err.message : String(err);
  results.failures.push({ section, message });
  log(`${section}: FAILED: ${message}`);
}

// ---------------------------------------------------------------------------------------------------------------
// nginx: the static upstream and the peer proxy, each its own unprivileged-friendly instance under OUT/nginx/NAME.

async function startNginx(name, serverBlock) {
  const dir = path.join(OPT.out, 'nginx', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${path.join(dir, 'tmp', t)};`).join('\n');
  const conf = `# generated by scripts/bench
daemon off;
master_process on;
worker_processes auto;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
${temp}
  # Reconnects would measure wrk, not the server: keep client connections open for the whole leg.
  keepalive_requests 1000000;
  keepalive_timeout 60s;
${serverBlock(port)}
}
`;
  const confPath = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confPath, conf);
  const child = spawn('nginx', ['-p', dir + '/', '-c', confPath, '-e', path.join(dir, 'error.log')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const err = [];
  child.stderr.on('data', (d) => err.push(d));
  let exited = false;
  child.on('exit', () => { exited = true; children.delete(child); });
  const up = await waitForPort(port, { alive: () => !exited });
  if (!up) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
    const elog = fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
    throw new Error(`nginx (${name}) did not start on port ${port}: ${Buffer.concat(err).toString()}${elog.slice(-1500)}`);
  }
  return {
    name, port, url: `http://127.0.0.1:${port}`, pid: child.pid,
    pids: () => withChildren(child.pid),
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

const nginxString = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function upstreamBlock(body) {
  return (port) => `  server {
    listen 127.0.0.1:${port} reuseport;
    default_type application/json;
    # The same small answer as GET /crm/rest/v1/contacts?email=ada@example.com from Keap.
    location / { return 200 ${nginxString(body)}; }
  }`;
}

function proxyBlock(upstreamPort, bearer) {
  return (port) => `  upstream keap_static {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      proxy_pass http://keap_static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization ${nginxString('Bearer ' + bearer)};
    }
  }`;
}

// ---------------------------------------------------------------------------------------------------------------
// Load: wrk (closed loop) and keyrelay_loadgen (fixed rate).

async function sanity(url, headers) {
  const h = Object.fromEntries(headers.map((x) => [x.slice(0, x.indexOf(':')), x.slice(x.indexOf(':') + 1).trim()]));
  let res;
  try {
    res = await fetch(url, { headers: h, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(`GET ${url} failed: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`);
  }
  const body = await res.text();
  let json;
  try { json = JSON.parse(body); } catch { json = null; }
  if (res.status !== 200 || !Array.isArray(json?.contacts) || json.contacts.length !== 1) {
    throw new Error(`GET ${url} answered ${res.status} ${body.slice(0, 300)}, not the one-contact lookup`);
  }
}

/** One wrk run of `seconds` against url → {requests, duration_us, latency_us, errors, cpu_us}. */
async function wrkRun(label, url, headers, pidsOf, seconds, connections = PLAN.wrkConnections) {
  const cpu0 = pidsOf ? cpuMicros(pidsOf()) : 0;
  const args = [`-t${PLAN.wrkThreads}`, `-c${connections}`, `-d${seconds}s`, '--latency',
    '--timeout', '5s', '-s', path.join(HERE, 'wrk_report.lua')];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  const r = await run('wrk', args, { timeoutMs: (seconds + 60) * 1000 });
  const cpu1 = pidsOf ? cpuMicros(pidsOf()) : 0;
  const w = lastJsonLine(r.stdout, 'WRK_JSON ');
  if (r.code !== 0 || !w) throw new Error(`wrk ${label} failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
  if (w.requests === 0 || w.errors.status >= w.requests) {
    throw new Error(`wrk ${label}: no successful response (${JSON.stringify(w)}); last output: ${r.stdout.slice(-500)}`);
  }
  return { ...w, cpu_us: cpu1 - cpu0 };
}

/**
 * Closed-loop legs, interleaved like rateLegs: `rounds` rounds of `seconds` per leg. req/s and CPU per request are
 * exact over the rounds (sums); p50 and p99 are the worst of the rounds' values (wrk keeps its histogram to itself).
 * legs: [[key, label, url, headers, pidsOf]] → {key: result}.
 */
async function wrkLegs(legs, { rounds = PLAN.wrkRounds, seconds = PLAN.wrkSeconds } = {}) {
  const acc = {};
  for (const [key, , url, headers] of legs) {
    try { await sanity(url, headers); } catch (err) { fail(`proxy ${key}`, err); acc[key] = null; }
  }
  for (let r = 0; r < rounds; r++) {
    for (const [key, label, url, headers, pidsOf] of legs) {
      if (acc[key] === null) continue;
      log(`wrk ${label}: ${seconds} s, ${PLAN.wrkConnections} connections (round ${r + 1}/${rounds})`);
      let w;
      try { w = await wrkRun(label, url, headers, pidsOf, seconds); } catch (err) { fail(`proxy ${key}`, err); acc[key] = null; continue; }
      (acc[key] ??= { label, url, pidsOf, runs: [] }).runs.push(w);
      await sleep(500);
    }
  }
  const out = {};
  for (const [key, a] of Object.entries(acc)) {
    if (!a) continue;
    const sum = (f) => a.runs.reduce((t, w) => t + f(w), 0);
    const requests = sum((w) => w.requests);
    const errors = {};
    for (const k of ['connect', 'read', 'write', 'status', 'timeout']) errors[k] = sum((w) => w.errors[k]);
    out[key] = {
      label: a.label, url: a.url, rounds: a.runs.length, requests, seconds: round(sum((w) => w.duration_us) / 1e6, 2),
      rps: round(requests / (sum((w) => w.duration_us) / 1e6), 0),
      latency_us: { p50: Math.max(...a.runs.map((w) => w.latency_us.p50)), p99: Math.max(...a.runs.map((w) => w.latency_us.p99)),
        max: Math.max(...a.runs.map((w) => w.latency_us.max)) },
      rounds_rps: a.runs.map((w) => round(w.requests / (w.duration_us / 1e6), 0)),
      errors, error_total: Object.values(errors).reduce((t, x) => t + x, 0),
      cpu_us_per_request: a.pidsOf ? round(sum((w) => w.cpu_us) / requests, 1) : null,
    };
  }
  return out;
}

/**
 * Fixed-rate legs, interleaved: `rounds` rounds, each running every leg for `seconds` (the first `warmup` seconds of
 * each run dropped), so that load from elsewhere on the machine falls on all legs alike. The latencies of a leg's runs
 * are merged before its percentiles are taken. legs: [[key, label, url, headers]] → {key: result}.
 */
async function rateLegs(legs, { rate = PLAN.rate, seconds = PLAN.rateSeconds, warmup = PLAN.rateWarmup,
  connections = PLAN.rateConnections, rounds = PLAN.rateRounds, section = 'rate' } = {}) {
  const acc = {};
  const dir = path.join(OPT.out, 'latencies');
  fs.mkdirSync(dir, { recursive: true });
  for (const [key, , url, headers] of legs) {
    try { await sanity(url, headers); } catch (err) { fail(`${section} ${key}`, err); acc[key] = null; }
  }
  for (let r = 0; r < rounds; r++) {
    for (const [key, label, url, headers] of legs) {
      if (acc[key] === null) continue;
      const file = path.join(dir, `${section}-${key}-${r}.txt`);
      const args = ['--url', url, '--rate', String(rate), '--duration', String(seconds), '--warmup', String(warmup),
        '--connections', String(connections), '--latencies', file];
      for (const h of headers) args.push('--header', h);
      log(`loadgen ${label}: ${rate} req/s for ${seconds} s (round ${r + 1}/${rounds})`);
      const res = await run(toolPath('keyrelay_loadgen'), args, { timeoutMs: (seconds + 60) * 1000 });
      const j = lastJsonLine(res.stdout);
      if (res.code !== 0 || !j) {
        fail(`${section} ${key}`, new Error(`keyrelay_loadgen ${label} failed (exit ${res.code}): ${res.stdout}${res.stderr}`));
        acc[key] = null;
        continue;
      }
      const lat = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      fs.rmSync(file, { force: true });
      const a = (acc[key] ??= { label, url, rate, rounds, seconds_per_round: seconds, warmup_per_round: warmup,
        connections, scheduled: 0, completed: 0, errors: 0, non_2xx: 0, timeouts: 0, retries: 0, reconnects: 0,
        latencies: [] });
      for (const k of ['scheduled', 'completed', 'errors', 'non_2xx', 'timeouts', 'retries', 'reconnects']) a[k] += j[k] ?? 0;
      a.latencies.push(...lat);
      await sleep(200);
    }
  }
  const out = {};
  for (const [key, a] of Object.entries(acc)) {
    if (!a) continue;
    const { latencies, ...rest } = a;
    if (!latencies.length || a.non_2xx >= a.completed) {
      fail(`${section} ${key}`, new Error(`no successful response at ${rate} req/s: ${JSON.stringify(rest)}`));
      continue;
    }
    const sorted = latencies.sort((x, y) => x - y);
    const pct = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
    out[key] = { ...rest, measured: sorted.length,
      achieved_rate: round(sorted.length / (a.rounds * (a.seconds_per_round - a.warmup_per_round)), 1),
      latency_us: { p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9), max: sorted[sorted.length - 1],
        mean: round(sorted.reduce((t, x) => t + x, 0) / sorted.length, 1) } };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Section: proxy throughput, latency at a fixed rate, relay memory.

async function sectionProxy() {
  const s = { legs: {}, rate: {}, memory: {}, ratios: {}, relay_setup: null };
  results.sections.proxy = s;
  const body = lookupJson();
  const relayKey = H.newApiKey();
  const keapKey = 'KeapAK-bench-static-upstream-key';
  const upstream = await startNginx('upstream', upstreamBlock(body));
  const peer = await startNginx('proxy', proxyBlock(upstream.port, keapKey));
  let relay;
  let nodeProxy;
  let httplibProxy;
  try {
    // keyrelay pointed at the static upstream: the built-in Keap provider with its api_base overridden in a config
    // file, in api_key mode (KEAP_API_KEY, attached as X-Keap-API-Key), called server-to-server with the relay's
    // own API key (docs/api.md "Proxy").
    const dir = path.join(OPT.out, 'relay-static');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const config = { providers: { keap: { api_base: upstream.url } } };
    const configPath = await H.writeConfig(dir, config);
    // The relay logs every request (its default), to a file as a deployment's journal would take it; the nginx legs
    // log nothing (access_log off), so this comparison counts the relay's logging against it.
    const relayLog = path.join(dir, 'relay.log');
    s.relay_setup = { command: 'keyrelay serve --config keyrelay.json --port 0 --data-dir DIR 2>relay.log', config,
      env: ['KEAP_API_KEY', 'KEYRELAY_API_KEY', 'KEYRELAY_STORE_KEY'], log: relayLog };
    let relayUrl = null;
    const relayHeaders = [`Authorization: Bearer ${relayKey}`];
    try {
      relay = await H.startRelay({ args: ['--config', configPath], dataDir: path.join(dir, 'data'), apiKey: relayKey,
        env: { KEAP_API_KEY: keapKey }, name: 'keyrelay (static upstream)', stderrFile: relayLog });
      relayUrl = `${relay.url}/proxy/keap${LOOKUP_PATH}`;
      await sanity(relayUrl, relayHeaders);
      await sleep(500);
      s.memory.idle = memoryOf(relay.child.pid);
      s.memory.idle_note = 'after start and one proxied request';
    } catch (err) {
      fail('proxy c_keyrelay', err);
      relayUrl = null;
    }

    let nodeUrl = null;
    try {
      nodeProxy = await H.spawnServer(process.execPath, [path.join(HERE, 'node_proxy.mjs'), upstream.url, keapKey],
        { name: 'node proxy' });
      nodeUrl = `${nodeProxy.url}/proxy/keap${LOOKUP_PATH}`;
    } catch (err) {
      fail('proxy d_node', err);
    }

    let httplibUrl = null;
    try {
      const up = new URL(upstream.url);
      httplibProxy = await H.spawnServer(toolPath('keyrelay_bench_httplib_proxy'), [up.hostname, up.port, keapKey],
        { name: 'cpp-httplib proxy' });
      httplibUrl = `${httplibProxy.url}/proxy/keap${LOOKUP_PATH}`;
    } catch (err) {
      fail('proxy e_httplib', err);
    }

    const legs = [
      ['a_direct', 'direct to the static upstream (nginx return 200)', `${upstream.url}${LOOKUP_PATH}`, [], upstream.pids],
      ['b_nginx', 'nginx proxy_pass + injected Authorization', `${peer.url}${LOOKUP_PATH}`, [], peer.pids],
      ['c_keyrelay', 'keyrelay /proxy/keap (API key)', relayUrl, relayHeaders, () => [relay.child.pid]],
      ['d_node', 'node http proxy, keep-alive agent, injected key', nodeUrl, [], () => [nodeProxy.child.pid]],
      ['e_httplib', 'cpp-httplib alone (server + keep-alive client), injected key', httplibUrl, [],
        () => [httplibProxy.child.pid]],
    ].filter((leg) => leg[2] !== null);
    s.legs = await wrkLegs(legs);
    // 256 connections at once, on keyrelay and on cpp-httplib alone: what one worker per connection costs (the
    // relay's listen queue is widened past cpp-httplib's 5).
    const run256 = async (key, label, url, headers, pidsOf) => {
      log(`wrk ${label}: ${PLAN.wrkSeconds} s, 256 connections`);
      try {
        const w = await wrkRun(`${label}, 256 connections`, url, headers, pidsOf, PLAN.wrkSeconds, 256);
        return { rps: round(w.requests / (w.duration_us / 1e6), 0), latency_us: w.latency_us, errors: w.errors,
          cpu_us_per_request: round(w.cpu_us / w.requests, 1) };
      } catch (err) {
        fail(`proxy ${key} 256 connections`, err);
        return undefined;
      }
    };
    if (relayUrl) {
      s.relay_256 = await run256('c_keyrelay', 'keyrelay', relayUrl, relayHeaders, () => [relay.child.pid]);
      s.memory.after_wrk = memoryOf(relay.child.pid);
    }
    if (httplibUrl) {
      s.httplib_256 = await run256('e_httplib', 'cpp-httplib alone', httplibUrl, [], () => [httplibProxy.child.pid]);
    }
    s.rate = await rateLegs(legs);
    if (relayUrl) {
      const end = memoryOf(relay.child.pid);
      s.memory.peak = end.hwm;
      s.memory.after_load = end.rss;
    }
    const a = s.legs.a_direct; const b = s.legs.b_nginx; const c = s.legs.c_keyrelay; const d = s.legs.d_node;
    if (a && c) s.ratios.c_over_a = round(c.rps / a.rps, 3);
    if (d && c) s.ratios.c_over_d = round(c.rps / d.rps, 3);
    if (b && c) s.ratios.c_over_b = round(c.rps / b.rps, 3);
    if (b && c && b.cpu_us_per_request && c.cpu_us_per_request) {
      s.ratios.cpu_per_request_c_over_b = round(c.cpu_us_per_request / b.cpu_us_per_request, 2);
    }
    // (e) is keyrelay's stack with nothing of keyrelay: e over b is the floor the library sets, c over e what
    // keyrelay's own code adds to it.
    const e = s.legs.e_httplib;
    if (b && e && b.cpu_us_per_request && e.cpu_us_per_request) {
      s.ratios.cpu_per_request_e_over_b = round(e.cpu_us_per_request / b.cpu_us_per_request, 2);
    }
    if (c && e && c.cpu_us_per_request && e.cpu_us_per_request) {
      s.ratios.cpu_per_request_c_over_e = round(c.cpu_us_per_request / e.cpu_us_per_request, 2);
    }
    const ra = s.rate.a_direct; const rc = s.rate.c_keyrelay; const rb = s.rate.b_nginx; const re = s.rate.e_httplib;
    if (ra && rc) s.ratios.p99_added_us_relay = round(rc.latency_us.p99 - ra.latency_us.p99, 1);
    if (ra && rb) s.ratios.p99_added_us_nginx = round(rb.latency_us.p99 - ra.latency_us.p99, 1);
    if (ra && re) s.ratios.p99_added_us_httplib = round(re.latency_us.p99 - ra.latency_us.p99, 1);
    if (ra && rc) s.ratios.p50_added_us_relay = round(rc.latency_us.p50 - ra.latency_us.p50, 1);
    if (ra && rb) s.ratios.p50_added_us_nginx = round(rb.latency_us.p50 - ra.latency_us.p50, 1);
  } catch (err) {
    fail('proxy', err);
  } finally {
    if (relay) {
      await relay.stop();
      try {
        const text = fs.readFileSync(s.relay_setup.log, 'utf8');
        s.relay_log_lines = text.split('\n').filter(Boolean).length;
        s.relay_log_tail = text.split('\n').filter(Boolean).slice(-3);
      } catch { /* no log */ }
    }
    if (nodeProxy) {
      nodeProxy.child.kill('SIGTERM');
      await nodeProxy.exited;
    }
    if (httplibProxy) {
      httplibProxy.child.kill('SIGTERM');
      await httplibProxy.exited;
    }
    await peer.stop();
    await upstream.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: through the sandbox (reference).

/** An access token for the sandbox's Keap, by the code flow done directly (no relay): RFC 6749 §4.1. */
async function sandboxAccessToken(sandbox) {
  const k = sandbox.config.keap;
  const redirect = k.redirect_uris?.[0] ?? 'http://127.0.0.1:8080/callback/keap';
  const auth = new URL(k.authorize_url);
  auth.search = new URLSearchParams({ response_type: 'code', client_id: k.client_id, redirect_uri: redirect,
    scope: 'full', state: 'bench-state' }).toString();
  const res = await fetch(auth, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  const loc = res.headers.get('location');
  const code = loc ? new URL(loc, auth).searchParams.get('code') : null;
  if (!code) throw new Error(`the sandbox's authorize endpoint answered ${res.status} without a code: ${(await res.text()).slice(0, 300)}`);
  const tok = await fetch(k.token_url, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: k.client_id,
      client_secret: k.client_secret, redirect_uri: redirect }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  const j = await tok.json().catch(() => null);
  if (tok.status !== 200 || !j?.access_token) throw new Error(`the sandbox's token endpoint answered ${tok.status} ${JSON.stringify(j)}`);
  return j.access_token;
}

async function sectionSandbox() {
  const s = { legs: {} };
  results.sections.sandbox = s;
  let setup;
  try {
    setup = await H.connectedSetup({ providers: ['keap'], relayOptions: { apiKey: true } });
    const token = await sandboxAccessToken(setup.sandbox);
    s.note = `fixed ${PLAN.sandboxRate} req/s, ${PLAN.sandboxRounds} interleaved round(s) of ${PLAN.sandboxSeconds} s: the sandbox throttles Keap OAuth clients at 1,500/min like Keap`;
    s.legs = await rateLegs([
      ['direct', 'direct to the sandbox (Bearer)', `${setup.sandbox.url}/keap${LOOKUP_PATH}`, [`Authorization: Bearer ${token}`]],
      ['relay', 'keyrelay (sandbox mode, OAuth) → sandbox', `${setup.relay.url}/proxy/keap${LOOKUP_PATH}`,
        [`Authorization: Bearer ${setup.relay.apiKey}`]],
    ], { rate: PLAN.sandboxRate, seconds: PLAN.sandboxSeconds, warmup: 1, connections: 4, rounds: PLAN.sandboxRounds,
      section: 'sandbox' });
    if (!s.legs.direct || !s.legs.relay) return;
    s.p99_added_us = round(s.legs.relay.latency_us.p99 - s.legs.direct.latency_us.p99, 1);
    s.p50_added_us = round(s.legs.relay.latency_us.p50 - s.legs.direct.latency_us.p50, 1);
  } catch (err) {
    fail('sandbox', err);
  } finally {
    if (setup) { await setup.relay.stop(); await setup.sandbox.stop(); }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: refresh stampede.

async function sectionStampede() {
  const s = {};
  results.sections.stampede = s;
  let setup;
  try {
    setup = await H.connectedSetup({ providers: ['keap'], sandboxOptions: { accessTtl: PLAN.stampedeTtl },
      relayOptions: { apiKey: true } });
    const { sandbox, relay, browser } = setup;
    const url = `${relay.url}/proxy/keap${LOOKUP_PATH}`;
    const headers = { Authorization: `Bearer ${relay.apiKey}` };
    const warm = await fetch(url, { headers });
    if (warm.status !== 200) throw new Error(`the warm-up call answered ${warm.status} ${await warm.text()}`);
    const conn = (await browser.connections()).keap;
    if (typeof conn?.expires_at !== 'number') throw new Error(`/api/connections has no expires_at: ${JSON.stringify(conn)}`);
    const wait = conn.expires_at * 1000 - Date.now() + 100;
    s.fired_ms_after_expiry = 100;
    if (wait > 0) await sleep(wait);
    const before = await sandbox.tokenStats('keap');
    // One socket per call, all opened at once: 500 callers arriving together, not a pool queueing them.
    const t0 = performance.now();
    const calls = Array.from({ length: PLAN.stampede }, async () => {
      const start = performance.now();
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(60_000) });
        await res.arrayBuffer();
        return { status: res.status, ms: performance.now() - start };
      } catch (err) {
        return { status: 0, ms: performance.now() - start, error: err.cause?.message ?? err.message };
      }
    });
    const done = await Promise.all(calls);
    s.wall_ms = round(performance.now() - t0, 1);
    const after = await sandbox.tokenStats('keap');
    s.calls = done.length;
    s.ok = done.filter((d) => d.status === 200).length;
    const statuses = {};
    for (const d of done) statuses[d.status] = (statuses[d.status] ?? 0) + 1;
    s.statuses = statuses;
    const errors = done.filter((d) => d.error).map((d) => d.error);
    if (errors.length) s.errors_sample = [...new Set(errors)].slice(0, 3);
    s.refreshes = after.refreshes - before.refreshes;
    s.refresh_failures = after.refresh_failures - before.refresh_failures;
    const ms = done.map((d) => d.ms);
    s.latency_ms = { p50: round(percentile(ms, 50), 1), p99: round(percentile(ms, 99), 1), max: round(Math.max(...ms), 1) };
    if (s.ok === 0) throw new Error(`none of the ${s.calls} calls succeeded: ${JSON.stringify(statuses)} ${errors[0] ?? ''}`);
  } catch (err) {
    fail('stampede', err);
  } finally {
    if (setup) { await setup.relay.stop(); await setup.sandbox.stop(); }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: the store on Redis.

/** INFO commandstats of a redis handle (tests/lib/redis.mjs) → {command: calls}. */
async function redisCommandStats(redis) {
  const info = (await redis.command('INFO', 'commandstats')).toString();
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function sectionRedis() {
  const s = { legs: {}, rate: {}, ratios: {}, stampede: null };
  results.sections.redis = s;
  const R = await import('../lib/redis.mjs');
  const C = await import('../lib/cluster.mjs');
  if (!R.hasRedis()) throw new Error('redis-server is not installed (scripts/setup installs it)');
  const dir = path.join(OPT.out, 'relay-redis');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let sandbox; let redis; const relays = [];
  try {
    sandbox = await H.startSandbox({ autoApprove: true });
    await C.raiseSandboxLimits(sandbox);
    redis = await R.startRedis({});
    s.redis_version = /redis_version:(\S+)/.exec((await redis.command('INFO', 'server')).toString())?.[1] ?? null;
    const start = async (key, label, env) => {
      const relay = await H.startRelay({ sandbox, apiKey: true, env, name: label, stderrFile: path.join(dir, `${key}.log`) });
      relays.push(relay);
      const browser = H.client(relay.url, { record: false });
      const login = await browser.login();
      if (login.status !== 200) throw new Error(`${label}: POST /login → ${login.status} ${login.body}`);
      const flow = await browser.connect('keap');
      if (flow.final.rawLocation !== '/?connected=keap') throw new Error(`${label}: connecting Keap: ${flow.trace}`);
      return relay;
    };
    const fileRelay = await start('file', 'keyrelay (file store)', {});
    const redisRelay = await start('redis', 'keyrelay (Redis store)', { KEYRELAY_REDIS_URL: redis.url });
    const health = await (await fetch(`${redisRelay.url}/healthz`, { signal: AbortSignal.timeout(10_000) })).json().catch(() => ({}));
    if (health.store !== 'redis') throw new Error(`the relay given KEYRELAY_REDIS_URL reports ${JSON.stringify(health)} on /healthz, not "store":"redis"`);
    const leg = (key, label, relay) => [key, label, `${relay.url}/proxy/keap${LOOKUP_PATH}`,
      [`Authorization: Bearer ${relay.apiKey}`], () => [relay.child.pid]];
    const legs = [leg('file', 'keyrelay, file store (OAuth) → sandbox', fileRelay),
      leg('redis', 'keyrelay, Redis store (OAuth) → sandbox', redisRelay)];
    const commands0 = await redisCommandStats(redis);
    const redisCpu0 = cpuMicros([redis.pid]);
    s.legs = await wrkLegs(legs);
    const redisCpu1 = cpuMicros([redis.pid]);
    const commands1 = await redisCommandStats(redis);
    const f = s.legs.file; const r = s.legs.redis;
    if (r) {
      // The relay's commands only: not the INFO calls, nor the AUTH of the second one. The leg's sanity call is a call.
      const calls = r.requests + 1;
      const by = {};
      for (const [cmd, n] of Object.entries(commands1)) {
        const d = n - (commands0[cmd] ?? 0) - (cmd === 'auth' ? 1 : 0);
        if (cmd !== 'info' && d > 0) by[cmd] = round(d / calls, 4);
      }
      s.redis_commands_per_call_by_command = by;
      s.redis_commands_per_call = round(Object.values(by).reduce((a, x) => a + x, 0), 3);
      // wrk does not count the calls still in flight when it stops (up to one per connection), which Redis did see.
      // The steady state is counted exactly: sequential calls on a warm relay, Redis's counters read around them.
      const steadyCalls = 200;
      await sleep(1000);   // the relay finishes the calls wrk left in flight
      const before = await redisCommandStats(redis);
      for (let k = 0; k < steadyCalls; k++) {
        const res = await fetch(legs[1][2], { headers: { Authorization: `Bearer ${redisRelay.apiKey}` }, signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`steady-state call ${k} answered ${res.status}`);
      }
      const afterSteady = await redisCommandStats(redis);
      const steady = {};
      for (const [cmd, n] of Object.entries(afterSteady)) {
        const d = n - (before[cmd] ?? 0) - (cmd === 'auth' ? 1 : 0);
        if (cmd !== 'info' && d > 0) steady[cmd] = d;
      }
      s.redis_steady = { calls: steadyCalls, commands: steady };
      s.redis_steady_commands_per_call = round(Object.values(steady).reduce((a, x) => a + x, 0) / steadyCalls, 3);
      s.redis_server_cpu_us_per_request = round((redisCpu1 - redisCpu0) / r.requests, 1);
    }
    if (f && r && f.cpu_us_per_request && r.cpu_us_per_request) {
      s.ratios.cpu_per_request_redis_over_file = round(r.cpu_us_per_request / f.cpu_us_per_request, 2);
      s.ratios.cpu_per_request_redis_with_server_over_file =
        round((r.cpu_us_per_request + (s.redis_server_cpu_us_per_request ?? 0)) / f.cpu_us_per_request, 2);
    }
    s.rate = await rateLegs(legs.map((l) => l.slice(0, 4)), { rate: PLAN.redisRate, section: 'redis' });
    const rf = s.rate.file; const rr = s.rate.redis;
    if (rf && rr) {
      s.ratios.p99_added_us_redis = round(rr.latency_us.p99 - rf.latency_us.p99, 1);
      s.ratios.p50_added_us_redis = round(rr.latency_us.p50 - rf.latency_us.p50, 1);
    }
  } catch (err) {
    fail('redis proxy', err);
  } finally {
    for (const relay of relays) await relay.stop();
    if (sandbox) await sandbox.stop();
  }

  // The 3-relay stampede on the same Redis (emptied first), with a sandbox of its own.
  let cluster;
  try {
    if (!redis) throw new Error('no redis-server');
    await redis.command('FLUSHALL');
    cluster = await C.startCluster({ accessTtl: PLAN.redisStampedeTtl, redis });
    await C.raiseSandboxLimits(cluster.sandbox);
    await cluster.connect(cluster.browser(), ['keap']);
    for (const i of [0, 1, 2]) {
      const warm = await cluster.api(i, 'GET', `/proxy/keap${LOOKUP_PATH}`);
      if (warm.status !== 200) throw new Error(`warm-up on relay ${i}: ${warm.status} ${warm.body}`);
    }
    await C.untilExpired(cluster, 'keap', 100);
    const before = await cluster.sandbox.tokenStats('keap');
    const t0 = performance.now();
    const done = await Promise.all(Array.from({ length: PLAN.stampede }, async (_, k) => {
      const startMs = performance.now();
      const url = `${cluster.relays[k % 3].url}/proxy/keap${LOOKUP_PATH}`;
      try {
        const res = await fetch(url, { headers: { Authorization: `Bearer ${cluster.apiKey}` }, signal: AbortSignal.timeout(60_000) });
        await res.arrayBuffer();
        return { status: res.status, ms: performance.now() - startMs };
      } catch (err) {
        return { status: 0, ms: performance.now() - startMs, error: err.cause?.message ?? err.message };
      }
    }));
    const after = await cluster.sandbox.tokenStats('keap');
    const statuses = {};
    for (const d of done) statuses[d.status] = (statuses[d.status] ?? 0) + 1;
    const ms = done.map((d) => d.ms);
    const waits = await C.metricSum(cluster, 'keyrelay_store_lock_waits_total');
    s.stampede = {
      relays: 3, calls: done.length, ok: done.filter((d) => d.status === 200).length, statuses,
      refreshes: after.refreshes - before.refreshes, refresh_failures: after.refresh_failures - before.refresh_failures,
      lock_waits: waits.each, wall_ms: round(performance.now() - t0, 1), fired_ms_after_expiry: 100,
      errors_sample: [...new Set(done.filter((d) => d.error).map((d) => d.error))].slice(0, 3),
      latency_ms: { p50: round(percentile(ms, 50), 1), p99: round(percentile(ms, 99), 1), max: round(Math.max(...ms), 1) },
    };
    if (s.stampede.ok === 0) throw new Error(`none of the ${done.length} calls succeeded: ${JSON.stringify(statuses)}`);
  } catch (err) {
    fail('redis stampede', err);
  } finally {
    if (cluster) await cluster.stop();
    if (redis) await redis.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: page weight and time to an interactive page.

async function sectionPage() {
  const s = { files: {} };
  results.sections.page = s;
  for (const name of ['keyrelay.wasm', 'keyrelay.mjs']) {
    const file = path.join(OPT.wasmDir, name);
    if (!fs.existsSync(file)) { fail('page', new Error(`${file} is missing: build the wasm preset`)); return; }
    const raw = fs.readFileSync(file);
    s.files[name] = { raw: raw.length, gzip: zlib.gzipSync(raw, { level: 9 }).length };
  }
  // Every file of web/: the page is split into one ES module per screen.
  for (const name of fs.readdirSync(path.join(ROOT, 'web')).sort()) {
    const file = path.join(ROOT, 'web', name);
    if (!fs.statSync(file).isFile()) continue;
    const raw = fs.readFileSync(file);
    s.files[`web/${name}`] = { raw: raw.length, gzip: zlib.gzipSync(raw, { level: 9 }).length };
  }
  s.wasm_mjs_gzip = s.files['keyrelay.wasm'].gzip + s.files['keyrelay.mjs'].gzip;
  s.wasm_mjs_raw = s.files['keyrelay.wasm'].raw + s.files['keyrelay.mjs'].raw;
  s.page_gzip = Object.values(s.files).reduce((t, f) => t + f.gzip, 0);

  let setup;
  let browser;
  try {
    const require = createRequire(path.join(ROOT, 'tests', 'package.json'));
    let chromium;
    try {
      ({ chromium } = require('playwright-core'));
    } catch (err) {
      throw new Error(`playwright-core is not installed in tests/node_modules (scripts/setup installs it): ${err.message}`);
    }
    const sandbox = await H.startSandbox({ autoApprove: true });
    const relay = await H.startRelay({ sandbox, args: ['--wasm-dir', OPT.wasmDir] });
    setup = { sandbox, relay };
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium', headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    s.browser = `chromium ${browser.version()}`;
    const runs = [];
    // One throw-away navigation to start the browser's processes; then each run in a fresh context (its own cache
    // and cookies, like a first visit). "Interactive": the page sets <html data-ready="true"> once the Wasm module
    // is loaded and the login form (or the lookup) is shown; the time is performance.now() at that moment, i.e. from
    // the navigation's start (High Resolution Time, timeOrigin).
    for (let i = 0; i <= PLAN.pageRuns; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.addInitScript(() => {
        const mark = () => {
          if (document.documentElement.dataset.ready === 'true' && !window.__benchReadyAt) window.__benchReadyAt = performance.now();
        };
        // Init scripts run before the document's <html> exists: watch the whole document instead.
        new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-ready'] });
      });
      await page.goto(`${relay.url}/`, { waitUntil: 'commit', timeout: 30_000 });
      const outcome = await page.waitForFunction(() => {
        if (window.__benchReadyAt) return 'ready';
        const banner = document.querySelector('#fatal');
        return banner && !banner.hidden && banner.textContent.trim() ? `fatal: ${banner.textContent.trim()}` : false;
      }, null, { timeout: 30_000, polling: 50 }).then((h) => h.jsonValue());
      if (outcome !== 'ready') throw new Error(`the page did not become interactive: ${outcome}`);
      const m = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const form = document.querySelector('#login-submit') ?? document.querySelector('input[type="email"], input[name="email"]');
        return {
          ready_ms: window.__benchReadyAt,
          dom_content_loaded_ms: nav?.domContentLoadedEventEnd ?? null,
          load_ms: nav?.loadEventEnd ?? null,
          interactive_control: form ? `${form.id || form.name}${form.disabled ? ' (disabled)' : ''}` : null,
          control_enabled: !!form && !form.disabled && form.offsetParent !== null,
          transferred: performance.getEntriesByType('resource').reduce((t, r) => t + (r.transferSize || 0), nav?.transferSize || 0),
        };
      });
      await context.close();
      if (!m.control_enabled) throw new Error(`the page said ready but no enabled login button or lookup field is visible (${m.interactive_control})`);
      if (i > 0) runs.push(m);
    }
    s.runs = runs.map((r) => round(r.ready_ms, 1));
    s.interactive_ms = round(median(runs.map((r) => r.ready_ms)), 1);
    s.load_event_ms = round(median(runs.map((r) => r.load_ms)), 1);
    s.interactive_control = runs[0]?.interactive_control;
    s.transferred_bytes = runs[0]?.transferred ?? null;
  } catch (err) {
    fail('page', err);
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (setup) { await setup.relay.stop(); await setup.sandbox.stop(); }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: core speed.

async function sectionCore() {
  const s = { inputs: {}, xmlrpc: {}, json: {} };
  results.sections.core = s;
  try {
    const inputs = writeCoreInputs(path.join(OPT.out, 'data'), 1000);
    s.inputs = { xmlrpc: { file: path.relative(ROOT, inputs.xml), bytes: fs.statSync(inputs.xml).size, contacts: 1000 },
      json: { file: path.relative(ROOT, inputs.json), bytes: fs.statSync(inputs.json).size, contacts: 1000 } };
    const cjs = path.join(OPT.wasmDir, 'keyrelay.cjs');
    const native = toolPath('keyrelay_bench_core');
    const secs = String(PLAN.coreSeconds);
    const runners = {
      xmlrpc: {
        native: [native, ['xmlrpc', inputs.xml, secs]],
        wasm: ['node', [path.join(HERE, 'core_node.cjs'), cjs, 'xmlrpc', inputs.xml, secs]],
        python: ['/usr/bin/python3', [path.join(HERE, 'core_python.py'), 'xmlrpc', inputs.xml, secs]],
      },
      json: {
        native: [native, ['contacts', inputs.json, secs]],
        wasm: ['node', [path.join(HERE, 'core_node.cjs'), cjs, 'contacts', inputs.json, secs]],
        python: ['/usr/bin/python3', [path.join(HERE, 'core_python.py'), 'json', inputs.json, secs]],
      },
    };
    if (!fs.existsSync(cjs)) fail('core wasm', new Error(`${cjs} is missing: build the wasm preset`));
    // Rounds interleave the runtimes, so a burst of load from elsewhere on the machine hits all of them alike.
    const samples = {};
    for (let round_ = 0; round_ < PLAN.coreRounds; round_++) {
      for (const [what, byRuntime] of Object.entries(runners)) {
        for (const [runtime, [cmd, args]] of Object.entries(byRuntime)) {
          if (runtime === 'wasm' && !fs.existsSync(cjs)) continue;
          const key = `${what}.${runtime}`;
          if (samples[key] === null) continue;
          log(`core ${key} (round ${round_ + 1}/${PLAN.coreRounds})`);
          const r = await run(cmd, args, { timeoutMs: 120_000 });
          const j = lastJsonLine(r.stdout);
          if (r.code !== 0 || !j) {
            fail(`core ${key}`, new Error(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.slice(-800)}`));
            samples[key] = null;
            continue;
          }
          (samples[key] ??= []).push(j);
        }
      }
    }
    for (const [key, list] of Object.entries(samples)) {
      if (!list) continue;
      const [what, runtime] = key.split('.');
      const first = list[0];
      s[what][runtime] = { runtime: first.runtime, function: first.function, bytes: first.bytes,
        mb_per_s: round(median(list.map((x) => x.mb_per_s)), 1), rounds: list.map((x) => x.mb_per_s) };
    }
    for (const what of ['xmlrpc', 'json']) {
      const py = s[what].python?.mb_per_s;
      for (const runtime of ['native', 'wasm']) {
        if (py && s[what][runtime]) s[what][runtime].x_python = round(s[what][runtime].mb_per_s / py, 2);
      }
    }
  } catch (err) {
    fail('core', err);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Section: the XML-RPC bridge's own cost per call (tests/bench/bridge_bench.cpp), natively, without Keap.

async function sectionBridge() {
  const s = {};
  results.sections.bridge = s;
  const r = await run(toolPath('keyrelay_bench_bridge'), [String(OPT.quick ? 50 : 500)], { timeoutMs: 300_000 });
  const j = lastJsonLine(r.stdout);
  if (r.code !== 0 || !j) throw new Error(`keyrelay_bench_bridge failed (exit ${r.code}): ${r.stderr.slice(-800)}`);
  Object.assign(s, j);
}

// ---------------------------------------------------------------------------------------------------------------
// Targets and the table.

function targets() {
  const t = [];
  const add = (name, goal, measured, pass, note = '') => t.push({ name, goal, measured, pass, note });
  const p = results.sections.proxy;
  if (p) {
    add('relay throughput vs a node proxy', '>= 2 x node', p.ratios.c_over_d ?? null,
      p.ratios.c_over_d === undefined ? null : p.ratios.c_over_d >= 2, 'req/s (c)/(d), wrk');
    add('relay CPU per request vs nginx', '<= 3 x nginx', p.ratios.cpu_per_request_c_over_b ?? null,
      p.ratios.cpu_per_request_c_over_b === undefined ? null : p.ratios.cpu_per_request_c_over_b <= 3,
      `CPU us per request (c)/(b), wrk; cpp-httplib alone (e)/(b) ${p.ratios.cpu_per_request_e_over_b ?? '-'}, ` +
      `keyrelay over cpp-httplib alone (c)/(e) ${p.ratios.cpu_per_request_c_over_e ?? '-'}`);
    add('p99 added latency at 1,000 req/s', '<= 500 us over direct', p.ratios.p99_added_us_relay ?? null,
      p.ratios.p99_added_us_relay === undefined ? null : p.ratios.p99_added_us_relay <= 500,
      `us, p99(c) - p99(a); cpp-httplib alone p99(e) - p99(a) ${p.ratios.p99_added_us_httplib ?? '-'}, ` +
      `nginx p99(b) - p99(a) ${p.ratios.p99_added_us_nginx ?? '-'}`);
    const mb = (x) => round(x / 1048576, 1);
    add('relay RSS idle', '<= 16 MB', p.memory.idle ? mb(p.memory.idle.rss) : null,
      p.memory.idle ? p.memory.idle.rss <= 16 * 1048576 : null, 'MB, VmRSS');
    add('relay RSS under load', '<= 48 MB', p.memory.peak ? mb(p.memory.peak) : null,
      p.memory.peak ? p.memory.peak <= 48 * 1048576 : null, 'MB, VmHWM after the wrk and 1,000 req/s legs');
  }
  const pg = results.sections.page;
  if (pg && pg.wasm_mjs_gzip) {
    add('.wasm + .mjs gzipped', '<= 200 KB', round(pg.wasm_mjs_gzip / 1024, 1), pg.wasm_mjs_gzip <= 200 * 1024, 'KB (gzip -9)');
  }
  const c = results.sections.core;
  if (c) {
    for (const runtime of ['native', 'wasm']) {
      const x = c.xmlrpc?.[runtime]?.x_python;
      add(`XML-RPC decode, ${runtime === 'native' ? 'native' : 'Wasm under node'}`, '>= 2 x Python', x ?? null,
        x === undefined ? null : x >= 2, 'x xmlrpc.client.loads');
    }
  }
  const b = results.sections.bridge;
  if (b && b.p99_us !== undefined) {
    add('XML-RPC bridge, 1,000-contact query page', '<= 200 us p99', b.p99_us, b.p99_us <= 200,
      `us per call (decode, plan, map, encode; no upstream), p50 ${b.p50_us}, CPU p50 ${b.p50_cpu_us} p99 ` +
      `${b.p99_cpu_us}, ${b.rest_mb_per_s} MB/s of REST ` +
      `JSON (${round(b.rest_bytes / 1024, 0)} KB in, ${round(b.response_bytes / 1024, 0)} KB of XML out), ` +
      `returnFields ${b.return_fields}, ${b.calls} calls; side by side, nlohmann/json alone reading the same page ` +
      `into a handler that keeps nothing: CPU p50 ${b.json_read_p50_cpu_us} us (the call is ` +
      `${b.bridge_over_json_read} x that read); a one-contact findByEmail: p50 ${b.one_contact_p50_us} us, ` +
      `p99 ${b.one_contact_p99_us} us`);
  }
  const rd = results.sections.redis;
  if (rd) {
    add('Redis round trips per proxied call, steady state', '<= 1', rd.redis_steady_commands_per_call ?? null,
      rd.redis_steady_commands_per_call === undefined ? null : rd.redis_steady_commands_per_call <= 1,
      `INFO commandstats around ${rd.redis_steady?.calls ?? '-'} sequential calls: ${JSON.stringify(rd.redis_steady?.commands ?? {})}`);
    if (rd.stampede) {
      add('refreshes in the 3-relay stampede', 'exactly 1', rd.stampede.refreshes, rd.stampede.refreshes === 1,
        `${rd.stampede.ok}/${rd.stampede.calls} calls answered 200`);
    }
  }
  const st = results.sections.stampede;
  if (st) add('refreshes in the stampede', 'exactly 1', st.refreshes ?? null, st.refreshes === undefined ? null : st.refreshes === 1,
    `${st.ok ?? 0}/${st.calls ?? PLAN.stampede} calls answered 200`);
  return t;
}

function table(rows, header) {
  const all = [header, ...rows].map((r) => r.map((x) => (x === null || x === undefined ? '-' : String(x))));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

function report() {
  const out = [];
  const kb = (b) => (b === null || b === undefined ? null : round(b / 1024, 1));
  const mb = (b) => (b === null || b === undefined ? null : round(b / 1048576, 1));
  out.push(`keyrelay bench ${QUICK ? '(--quick: short legs, figures are only indicative)' : ''}`.trim());
  out.push(`machine: ${results.machine.cpus} CPUs (${results.machine.cpu_model}), load average at start ${results.machine.loadavg_at_start.join(' ')}, at end ${results.machine.loadavg_at_end?.join(' ')}`);
  const p = results.sections.proxy;
  if (p) {
    out.push('', `1. Proxy: wrk -t${PLAN.wrkThreads} -c${PLAN.wrkConnections} -d${PLAN.wrkSeconds}s, keep-alive, GET ${LOOKUP_PATH} (${lookupJson().length} B JSON); ${PLAN.wrkRounds} interleaved round(s) per leg: req/s over all rounds, p50/p99 the worst round's`);
    const rows = [];
    for (const [key, leg] of Object.entries(p.legs)) {
      rows.push([key, leg.rps, round(leg.latency_us.p50 / 1000, 3), round(leg.latency_us.p99 / 1000, 3),
        leg.cpu_us_per_request, leg.error_total, leg.label]);
    }
    out.push(table(rows, ['leg', 'req/s', 'p50 ms', 'p99 ms', 'server CPU us/req', 'errors', 'what']));
    out.push('(c) is `keyrelay serve --config` with providers.keap.api_base = the static upstream, KEAP_API_KEY set (api_key mode: X-Keap-API-Key upstream) and KEYRELAY_API_KEY (Authorization: Bearer from the caller)');
    out.push(`    it logs every request (its default) to a file${p.relay_log_lines ? ` (${p.relay_log_lines} lines in this run)` : ''}; the nginx legs log nothing (access_log off)`);
    out.push(`ratios: (c)/(d) = ${p.ratios.c_over_d ?? '-'}   (c)/(b) = ${p.ratios.c_over_b ?? '-'}   (c)/(a) = ${p.ratios.c_over_a ?? '-'}   CPU per request (c)/(b) = ${p.ratios.cpu_per_request_c_over_b ?? '-'}, (e)/(b) = ${p.ratios.cpu_per_request_e_over_b ?? '-'}, (c)/(e) = ${p.ratios.cpu_per_request_c_over_e ?? '-'}`);
    if (p.relay_256) out.push(`keyrelay with 256 connections: ${p.relay_256.rps} req/s, p99 ${p.relay_256.latency_us.p99} us, max ${p.relay_256.latency_us.max} us, errors ${JSON.stringify(p.relay_256.errors)}`);
    if (p.httplib_256) out.push(`cpp-httplib alone with 256 connections: ${p.httplib_256.rps} req/s, p99 ${p.httplib_256.latency_us.p99} us, max ${p.httplib_256.latency_us.max} us, errors ${JSON.stringify(p.httplib_256.errors)}`);
    out.push('', `   Fixed rate: keyrelay_loadgen ${PLAN.rate} req/s, ${PLAN.rateConnections} keep-alive connections, latency from the scheduled send time; ${PLAN.rateRounds} interleaved round(s) of ${PLAN.rateSeconds} s per leg (first ${PLAN.rateWarmup} s of each dropped), latencies merged`);
    const rrows = Object.entries(p.rate).map(([key, r]) => [key, r.achieved_rate, round(r.latency_us.p50 / 1000, 3),
      round(r.latency_us.p99 / 1000, 3), round(r.latency_us.p999 / 1000, 3), round(r.latency_us.max / 1000, 3),
      r.errors + r.timeouts + r.non_2xx]);
    out.push(table(rrows, ['leg', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors']));
    out.push(`p99 added over direct: keyrelay ${p.ratios.p99_added_us_relay ?? '-'} us, nginx ${p.ratios.p99_added_us_nginx ?? '-'} us, cpp-httplib alone ${p.ratios.p99_added_us_httplib ?? '-'} us; p50 added: keyrelay ${p.ratios.p50_added_us_relay ?? '-'} us, nginx ${p.ratios.p50_added_us_nginx ?? '-'} us`);
    out.push('', '2. Relay memory (keyrelay of leg c)');
    out.push(`RSS idle ${mb(p.memory.idle?.rss) ?? '-'} MB; peak (VmHWM) ${mb(p.memory.peak) ?? '-'} MB; RSS after the load ${mb(p.memory.after_load) ?? '-'} MB`);
  }
  const sb = results.sections.sandbox;
  if (sb && sb.legs) {
    out.push('', `   Through keyrelay-sandbox (reference): ${sb.note ?? ''}`);
    const rows = Object.entries(sb.legs).map(([key, r]) => [key, r.achieved_rate, round(r.latency_us.p50 / 1000, 3),
      round(r.latency_us.p99 / 1000, 3), round(r.latency_us.max / 1000, 3), r.errors + r.timeouts + r.non_2xx, r.label]);
    out.push(table(rows, ['leg', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'what']));
  }
  const pg = results.sections.page;
  if (pg) {
    out.push('', '3. Page weight and time to interactive');
    const rows = Object.entries(pg.files).map(([name, f]) => [name, f.raw, kb(f.raw), f.gzip, kb(f.gzip)]);
    out.push(table(rows, ['file', 'bytes', 'KB', 'gzip bytes', 'gzip KB']));
    out.push(`keyrelay.wasm + keyrelay.mjs: ${kb(pg.wasm_mjs_raw)} KB raw, ${kb(pg.wasm_mjs_gzip)} KB gzipped; whole page ${kb(pg.page_gzip)} KB gzipped`);
    if (pg.interactive_ms !== undefined) {
      out.push(`navigation → interactive (html[data-ready], ${pg.interactive_control} enabled), ${pg.browser}, median of ${pg.runs.length}: ${pg.interactive_ms} ms (load event ${pg.load_event_ms} ms; runs ${pg.runs.join(', ')})`);
    }
  }
  const c = results.sections.core;
  if (c && c.inputs?.xmlrpc) {
    out.push('', `4. Core speed, MB/s (10^6 B), median of ${PLAN.coreRounds} interleaved round(s) of 7 batches`);
    const rows = [];
    for (const what of ['xmlrpc', 'json']) {
      for (const runtime of ['native', 'wasm', 'python']) {
        const r = c[what][runtime];
        if (r) rows.push([what === 'xmlrpc' ? `DataService.query, ${round(c.inputs.xmlrpc.bytes / 1024, 0)} KB` : `REST contacts, ${round(c.inputs.json.bytes / 1024, 0)} KB`,
          r.function, r.runtime, r.mb_per_s, r.x_python ?? (runtime === 'python' ? 1 : null)]);
      }
    }
    out.push(table(rows, ['input (1,000 contacts)', 'decoder', 'runtime', 'MB/s', 'x Python']));
  }
  const st = results.sections.stampede;
  if (st && st.calls) {
    out.push('', `5. Refresh stampede: ${st.calls} concurrent proxied calls ${st.fired_ms_after_expiry} ms after the access token expired (sandbox --access-ttl ${PLAN.stampedeTtl})`);
    out.push(`refreshes at the sandbox: ${st.refreshes} (failures ${st.refresh_failures}); answered 200: ${st.ok}/${st.calls} ${JSON.stringify(st.statuses)}; latency p50 ${st.latency_ms.p50} ms, p99 ${st.latency_ms.p99} ms, max ${st.latency_ms.max} ms`);
  }
  const rd = results.sections.redis;
  if (rd && Object.keys(rd.legs).length) {
    out.push('', `6. The store on Redis ${rd.redis_version ?? ''}: the same relay (sandbox mode, Keap OAuth) on the file store and on Redis, wrk -c${PLAN.wrkConnections}, then ${PLAN.redisRate} req/s fixed`);
    const rows = [];
    for (const key of ['file', 'redis']) {
      const w = rd.legs[key]; const r = rd.rate[key];
      if (!w) continue;
      rows.push([key, w.rps, w.cpu_us_per_request, r ? round(r.latency_us.p50 / 1000, 3) : null,
        r ? round(r.latency_us.p99 / 1000, 3) : null, w.error_total + (r ? r.errors + r.timeouts + r.non_2xx : 0)]);
    }
    out.push(table(rows, ['store', 'wrk req/s', 'relay CPU us/req', `p50 ms @${PLAN.redisRate}/s`, `p99 ms @${PLAN.redisRate}/s`, 'errors']));
    out.push(`redis-server CPU ${rd.redis_server_cpu_us_per_request ?? '-'} us/req; Redis commands per proxied call ${rd.redis_commands_per_call ?? '-'} ${JSON.stringify(rd.redis_commands_per_call_by_command ?? {})}; ` +
      `CPU per request Redis/file ${rd.ratios.cpu_per_request_redis_over_file ?? '-'} (with redis-server ${rd.ratios.cpu_per_request_redis_with_server_over_file ?? '-'}); ` +
      `p99 added by Redis ${rd.ratios.p99_added_us_redis ?? '-'} us`);
  }
  if (rd?.stampede) {
    const x = rd.stampede;
    out.push(`3-relay stampede on one Redis: ${x.calls} calls ${x.fired_ms_after_expiry} ms after expiry (--access-ttl ${PLAN.redisStampedeTtl}); ` +
      `refreshes at the sandbox ${x.refreshes} (failures ${x.refresh_failures}); answered 200: ${x.ok}/${x.calls} ${JSON.stringify(x.statuses)}; ` +
      `lock waits per relay ${JSON.stringify(x.lock_waits)}; p50 ${x.latency_ms.p50} ms, p99 ${x.latency_ms.p99} ms, max ${x.latency_ms.max} ms` +
      (x.errors_sample.length ? `; failed calls: ${x.errors_sample.join(' | ')}` : ''));
  }
  out.push('', 'Targets');
  out.push(table(results.targets.map((t) => [t.name, t.goal, t.measured, t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS', t.note]),
    ['target', 'goal', 'measured', 'result', 'unit / how']));
  if (results.failures.length) {
    out.push('', 'Legs that could not run:');
    for (const f of results.failures) out.push(`  ${f.section}: ${f.message.split('\n')[0].slice(0, 400)}`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(OPT.out, { recursive: true });
  results.tools = {
    wrk: toolVersion('wrk', ['-v'], /wrk [^ ]+/),
    nginx: toolVersion('nginx', ['-v'], /nginx\/\S+/),
    node: process.version,
    python: toolVersion('/usr/bin/python3', ['--version'], /Python \S+/),
    bin_dir: OPT.binDir, wasm_dir: OPT.wasmDir,
  };
  const order = [['core', sectionCore], ['proxy', sectionProxy], ['sandbox', sectionSandbox], ['page', sectionPage],
    ['stampede', sectionStampede], ['bridge', sectionBridge], ['redis', sectionRedis]];
  for (const [name, fn] of order) {
    if (!OPT.only.has(name)) continue;
    log(`section ${name}`);
    try { await fn(); } catch (err) { fail(name, err); }
  }
  results.machine.loadavg_at_end = os.loadavg().map((x) => round(x, 2));
  results.targets = targets();
  const text = report();
  fs.writeFileSync(path.join(OPT.out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(OPT.out, 'results.txt'), text + '\n');
  process.stdout.write(text + '\n');
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), path.join(OPT.out, 'results.json'))}\n`);
  return results.failures.length ? 1 : 0;
}

main().then((code) => { killChildren(); process.exit(code); }, (err) => { log(err.stack); killChildren(); process.exit(1); });
