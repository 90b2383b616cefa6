// Shared harness for the node integration tests (tests/relay, tests/browser): it starts the real binaries
// (keyrelay-sandbox, keyrelay) on 127.0.0.1 with OS-chosen ports, talks to them like a browser would (a small cookie
// jar, redirects followed by hand so every hop can be asserted), and records every relay response and every relay
// log line so a test can prove that no secret or token ever left the relay.
//
// Contracts: docs/api.md (the relay's HTTP API) and relay/sandbox/INTERFACE.md (the sandbox). Both binaries print
// exactly one first stdout line `listening on http://127.0.0.1:<port>`; that is how the harness learns the port.
//
// Binaries: $KEYRELAY_BIN_DIR, else build/native/bin beside this repository.
// Every spawned process is killed by its stop(), by the test's after() hook when a test context is passed, and in
// any case when the test process exits (even on failure or on a signal).

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Repository root (two levels above tests/lib). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Directory holding keyrelay and keyrelay-sandbox: $KEYRELAY_BIN_DIR or <root>/build/native/bin. */
export const BIN_DIR = process.env.KEYRELAY_BIN_DIR
  ? path.resolve(process.env.KEYRELAY_BIN_DIR)
  : path.join(ROOT, 'build', 'native', 'bin');

/** Default timeout (ms) for one HTTP exchange and for a process to announce its port. */
export const TIMEOUT_MS = 10_000;

/** The sandbox mode page login (docs/api.md): user demo, password demo. */
export const DEMO_USER = 'demo';
export const DEMO_PASSWORD = 'demo';

/** sleep(ms): a promise resolved after ms milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * waitFor(fn, {timeout, interval, what}): calls async fn until it returns a truthy value, which is returned;
 * throws `timed out waiting for <what>` (with the last value or error) after `timeout` ms.
 */
export async function waitFor(fn, { timeout = TIMEOUT_MS, interval = 100, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    }
    await sleep(interval);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Recording: every relay response and every relay log line, for the secrets scan.

/**
 * recorded: what this test process saw from the relay.
 *   responses: [{url, status, headers: {name: value}, setCookie: [...], body}] for every relay response
 *   logs:      [{name, stream, line}] for every stdout/stderr line of every relay process (stopped ones included)
 *   secrets:   Map value -> label, every secret known to the harness (client secrets, API keys, PATs, API tokens,
 *              store keys, relay API keys, session cookie values, OAuth codes and wrong passwords the tests used)
 */
export const recorded = { responses: [], logs: [], secrets: new Map() };

/** addSecret(value, label): remember a value that must never appear in a relay response or log (ignored if < 6 chars). */
export function addSecret(value, label) {
  if (typeof value === 'string' && value.length >= 6 && !recorded.secrets.has(value)) recorded.secrets.set(value, label);
}

/**
 * SANDBOX_TOKEN_PATTERNS: the sandbox's token formats (relay/sandbox/INTERFACE.md): access tokens sbx_{keap,jira}_at_…,
 * refresh tokens sbx_{keap,jira}_rt_…, authorization codes sbx_{keap,jira}_code_…. The relay holds such values but
 * must never show one.
 */
export const SANDBOX_TOKEN_PATTERNS = [/sbx_(keap|jira)_(at|rt)_[A-Za-z0-9_-]{12,}/, /sbx_(keap|jira)_code_[A-Za-z0-9_-]{8,}/];

/**
 * findLeaks({extraSecrets, patterns}): scans recorded.responses (headers and bodies) and recorded.logs for every
 * known secret (as is and percent-encoded), every [value, label] of extraSecrets and every RegExp of patterns
 * (default SANDBOX_TOKEN_PATTERNS). Exact values matter too: behind startTap() every token the sandbox issues
 * becomes a known secret. A session cookie value is allowed in the Set-Cookie header that sets it and nowhere else.
 * Returns [{where, label, excerpt}] (empty when nothing leaked).
 */
export function findLeaks({ extraSecrets = [], patterns = SANDBOX_TOKEN_PATTERNS } = {}) {
  const secrets = new Map(recorded.secrets);
  for (const [value, label] of extraSecrets) if (value && value.length >= 6) secrets.set(value, label);
  const leaks = [];
  const excerpt = (text, i, n) => JSON.stringify(text.slice(Math.max(0, i - 40), i + n + 40));
  const scan = (where, text, { allowCookies = false } = {}) => {
    if (!text) return;
    for (const [value, label] of secrets) {
      if (allowCookies && label.startsWith('session cookie')) continue;
      for (const form of [value, encodeURIComponent(value)]) {
        const i = text.indexOf(form);
        if (i >= 0) { leaks.push({ where, label, excerpt: excerpt(text, i, form.length) }); break; }
      }
    }
    for (const re of patterns) {
      const m = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g').exec(text);
      if (m) leaks.push({ where, label: `token pattern ${re}`, excerpt: excerpt(text, m.index, m[0].length) });
    }
  };
  for (const r of recorded.responses) {
    const where = `response ${r.status} ${r.method} ${r.url}`;
    const { 'set-cookie': _ignored, ...otherHeaders } = r.headers;
    scan(`${where} headers`, JSON.stringify(otherHeaders));
    scan(`${where} set-cookie`, r.setCookie.join('\n'), { allowCookies: true });
    scan(`${where} body`, r.body);
  }
  for (const l of recorded.logs) scan(`${l.name} ${l.stream}`, l.line);
  return leaks;
}

/**
 * checkLeaksAfterAll(): registers a root-level after() hook in the calling test file that fails the file (node:test
 * reports a failed hook as a failure) if findLeaks() finds anything in what the file's tests recorded. Call it once at
 * the top of a test file, so that every response and log line of the whole suite is scanned, not only the tour of
 * tests/relay/secrets.test.mjs.
 */
export function checkLeaksAfterAll() {
  after(() => {
    const leaks = findLeaks();
    if (leaks.length) {
      throw new Error(`secrets leaked into relay responses or logs:\n${leaks.map((l) => `  ${l.label} in ${l.where}: ${l.excerpt}`).join('\n')}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Processes.

const live = new Set();
function killAll() {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { killAll(); process.exit(130); });
}

/**
 * spawnServer(bin, args, {env, name, timeout, stderrFile}) → {child, url, port, lines: {stdout: [], stderr: []}, exited}
 * Spawns a binary and resolves once its first stdout line is `listening on http(s)://127.0.0.1:<port>`.
 * Rejects (and kills it) if the line is different, if it exits first, or after `timeout` ms; the error carries
 * everything it printed. `exited` is a promise of {code, signal}. stderrFile: the program's stderr (its log) goes
 * straight to that file instead of through this process (the benchmark: node reading 50,000 log lines a second
 * would take CPU from the programs it measures).
 */
export function spawnServer(bin, args, { env = {}, name = path.basename(bin), timeout = TIMEOUT_MS, onLine, stderrFile } = {}) {
  if (!existsSync(bin)) {
    return Promise.reject(new Error(`${bin} does not exist: build it (cmake --build <dir> --target ${path.basename(bin)}) or set KEYRELAY_BIN_DIR`));
  }
  const errFd = stderrFile ? openSync(stderrFile, 'a') : null;
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', errFd ?? 'pipe'] });
  if (errFd !== null) closeSync(errFd);
  live.add(child);
  const lines = { stdout: [], stderr: [] };
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { live.delete(child); resolve({ code, signal }); }));
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${name} (${bin} ${args.join(' ')}) ${why}\nstdout:\n${lines.stdout.join('\n')}\nstderr:\n${lines.stderr.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`did not print "listening on ..." within ${timeout} ms`), timeout);
    for (const stream of ['stdout', 'stderr']) {
      if (!child[stream]) continue;
      let buf = '';
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          lines[stream].push(line);
          onLine?.(stream, line);
          if (stream === 'stdout' && lines.stdout.length === 1 && !settled) {
            const m = /^listening on (https?:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
            if (!m) { fail(`printed "${line}" as its first stdout line, not "listening on http://127.0.0.1:<port>"`); return; }
            settled = true;
            clearTimeout(timer);
            resolve({ child, url: m[1], port: Number(m[2]), lines, exited });
          }
        }
      });
      child[stream].on('end', () => { if (buf) { lines[stream].push(buf); onLine?.(stream, buf); buf = ''; } });
    }
    child.on('error', (err) => fail(`could not start: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited (code ${code}, signal ${signal}) before listening`));
  });
}

/** stopProcess(child, exited, signal, graceMs): sends `signal`, SIGKILLs after graceMs; resolves {code, signal}. */
async function stopProcess(child, exited, signal = 'SIGTERM', graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill(signal);
  const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

/** registerCleanup(t, fn): runs fn in t.after() when t (a node:test context) is given. */
function registerCleanup(t, fn) {
  if (t && typeof t.after === 'function') t.after(fn);
}

// ---------------------------------------------------------------------------------------------------------------
// The sandbox.

/**
 * startSandbox({autoApprove, accessTtl, refreshTtl, args, site, t}) → sandbox handle:
 *   url       "http://localhost:<port>" (site 'localhost', the default) or "http://127.0.0.1:<port>" (site '127.0.0.1').
 *             The relay runs at 127.0.0.1, so by default the providers are on another site than the relay, as Keap's
 *             and Atlassian's are in production: a browser then treats the consent page's redirect back to the relay
 *             as a cross-site navigation (SameSite cookies). The sandbox answers in the name it is called by.
 *   config    the parsed GET /sandbox/config (its secrets are registered with addSecret)
 *   stats()   GET /sandbox/stats, parsed
 *   tokenStats(provider) → the tokens[client_id] entry of that provider's client ({exchanges, refreshes,
 *             refresh_failures}, zeros when absent)
 *   fail(spec)   POST /sandbox/fail with spec ({path, count, mode, status, delay_ms})
 *   revoke(spec) POST /sandbox/revoke with spec ({provider} or {refresh_token})
 *   registerRedirectUri(provider, uri)  POST /sandbox/redirect-uris
 *   clock(seconds)  POST /sandbox/clock {advance_seconds}: moves the sandbox's clock forward (code/token expiry)
 *   reset()   POST /sandbox/reset
 *   stop(signal = 'SIGTERM')  (SIGKILL after 5 s; the t.after() cleanup uses SIGKILL)
 *   logs      {stdout: [...], stderr: [...]} lines so far
 * Every harness request sends Connection: close (an idle keep-alive connection delays a server's graceful stop).
 * Options: autoApprove → --auto-approve; accessTtl/refreshTtl → --access-ttl/--refresh-ttl (seconds); args: extra
 * arguments; t: a node:test context whose after() stops the sandbox.
 */
export async function startSandbox({ autoApprove = false, accessTtl, refreshTtl, args = [], site = 'localhost', t } = {}) {
  if (site !== 'localhost' && site !== '127.0.0.1') throw new Error(`startSandbox: site must be 'localhost' or '127.0.0.1', not ${site}`);
  const bin = path.join(BIN_DIR, 'keyrelay-sandbox');
  const argv = ['--port', '0'];
  if (autoApprove) argv.push('--auto-approve');
  if (accessTtl !== undefined) argv.push('--access-ttl', String(accessTtl));
  if (refreshTtl !== undefined) argv.push('--refresh-ttl', String(refreshTtl));
  argv.push(...args);
  const proc = await spawnServer(bin, argv, { name: 'keyrelay-sandbox' });
  const stop = (signal = 'SIGTERM') => stopProcess(proc.child, proc.exited, signal);
  // At cleanup a relay may still hold idle keep-alive connections to the sandbox, which would make a graceful stop
  // wait for them: the sandbox's own shutdown is not under test, so it is killed.
  registerCleanup(t, () => stop('SIGKILL'));
  const url = site === 'localhost' ? proc.url.replace('//127.0.0.1:', '//localhost:') : proc.url;
  const control = async (method, p, body) => {
    const res = await fetch(url + p, {
      method,
      headers: body === undefined ? { Connection: 'close' } : { 'Content-Type': 'application/json', Connection: 'close' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`sandbox ${method} ${p} → ${res.status}: ${text}`);
    try { return text ? JSON.parse(text) : null; } catch { return text; }
  };
  let config;
  try {
    config = await control('GET', '/sandbox/config');
  } catch (err) {
    await stop();
    throw err;
  }
  for (const provider of ['keap', 'jira']) {
    const c = config[provider] ?? {};
    for (const key of ['client_secret', 'api_key', 'pat', 'api_token', 'no_browse_api_token']) {
      addSecret(c[key], `sandbox ${provider}.${key}`);
    }
  }
  const stats = () => control('GET', '/sandbox/stats');
  return {
    url,
    config,
    stats,
    async tokenStats(provider) {
      const s = await stats();
      const entry = s.tokens?.[config[provider].client_id] ?? {};
      return { exchanges: 0, refreshes: 0, refresh_failures: 0, ...entry };
    },
    fail: (spec) => control('POST', '/sandbox/fail', spec),
    revoke: (spec) => control('POST', '/sandbox/revoke', spec),
    registerRedirectUri: (provider, uri) => control('POST', '/sandbox/redirect-uris', { provider, redirect_uri: uri }),
    clock: (advanceSeconds) => control('POST', '/sandbox/clock', { advance_seconds: advanceSeconds }),
    reset: () => control('POST', '/sandbox/reset'),
    stop,
    logs: proc.lines,
    child: proc.child,
  };
}

/**
 * startTap({sandbox, t}) → a sandbox handle (same methods, same config shape) whose url is a recording HTTP proxy in
 * front of the sandbox. GET /sandbox/config is rewritten so every sandbox URL in it points at the tap, so a relay
 * started on the tap sends ALL its provider traffic through it. The tap records:
 *   seen: [{method, path, headers (lower-case), body, status, responseBody}] for every request that went through
 *   tokens: Set of every access_token / refresh_token / code the sandbox issued (each also registered with addSecret)
 * This is how the tests know the exact tokens the relay holds (the sandbox's tokens are random, with no prefix) and
 * which headers the relay forwarded upstream.
 */
export async function startTap({ sandbox, t }) {
  const seen = [];
  const tokens = new Set();
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const target = new URL(sandbox.url);
  let tapUrl;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // Identity encoding upstream, so the tap can read (and rewrite) every answer; the original headers are recorded.
      const headers = { ...req.headers, host: target.host };
      delete headers['accept-encoding'];
      const entry = { method: req.method, path: req.url, headers: { ...req.headers }, body: body.toString('utf8') };
      seen.push(entry);
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
        const out = [];
        ur.on('data', (c) => out.push(c));
        ur.on('end', () => {
          let raw = Buffer.concat(out);
          const text = raw.toString('utf8');
          entry.status = ur.statusCode;
          entry.responseBody = text;
          const rh = { ...ur.headers };
          if (req.url.split('?')[0] === '/sandbox/config') {
            raw = Buffer.from(text.split(sandbox.url).join(tapUrl));
            rh['content-length'] = String(raw.length);
          }
          try {
            const j = JSON.parse(text);
            for (const k of ['access_token', 'refresh_token']) {
              if (typeof j?.[k] === 'string') { tokens.add(j[k]); addSecret(j[k], `sandbox-issued ${k}`); }
            }
          } catch { /* not JSON */ }
          const loc = ur.headers.location;
          if (loc) {
            const code = new URL(loc, sandbox.url).searchParams.get('code');
            if (code) { tokens.add(code); addSecret(code, 'sandbox-issued OAuth code'); }
          }
          res.writeHead(ur.statusCode, rh);
          res.end(raw);
        });
        ur.on('error', () => res.destroy());
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  tapUrl = `http://127.0.0.1:${server.address().port}`;
  const stop = () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); agent.destroy(); });
  registerCleanup(t, stop);
  const rewrite = (v) => (typeof v === 'string' ? v.split(sandbox.url).join(tapUrl) : Array.isArray(v) ? v.map(rewrite)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)])) : v);
  return { ...sandbox, url: tapUrl, config: rewrite(sandbox.config), sandbox, seen, tokens, stop };
}

// ---------------------------------------------------------------------------------------------------------------
// The relay.

/** newStoreKey(): a fresh 32-byte store key as 64 hex characters (KEYRELAY_STORE_KEY). */
export const newStoreKey = () => randomBytes(32).toString('hex');

/** newApiKey(): a fresh relay API key for server-to-server callers (KEYRELAY_API_KEY). */
export const newApiKey = () => 'test-relay-key-' + randomBytes(18).toString('base64url');

/**
 * startRelay({sandboxUrl, sandbox, env, args, dataDir, storeKey, apiKey, registerRedirects, t, stderrFile}) → relay handle:
 *   url        "http://127.0.0.1:<port>"
 *   dataDir    the --data-dir (a fresh fs.mkdtemp directory unless given; removed at cleanup if the harness made it)
 *   storeKey   the KEYRELAY_STORE_KEY given to it (null when storeKey: null was passed: the relay makes a key file)
 *   apiKey     the KEYRELAY_API_KEY given to it (only when apiKey was passed or apiKey: true)
 *   redis      under KEYRELAY_TEST_STORE=redis, the redis-server it was given (tests/lib/redis.mjs); else null
 *   logs()     every stdout/stderr line of the current and previous runs, as [{stream, line}]
 *   stop(signal = 'SIGTERM') → {code, signal} of the exit (SIGKILL after 5 s)
 *   restart()  stop(SIGTERM), then start again with the same arguments, data dir and port
 * Runs `keyrelay serve --sandbox <url> --port 0 --data-dir <dir> [args...]`. env is added to the environment;
 * env values whose name looks secret (…SECRET, …KEY, …TOKEN, …PASSWORD) are registered with addSecret. `name`
 * labels its lines in recorded.logs. t: a node:test context whose after() stops it (and removes a made data dir).
 * When registerRedirects is true (default) and a sandbox handle is given, the relay's callback URLs
 * <url>/callback/{keap,jira} are registered at the sandbox (as a developer does in the provider's portal), since
 * the sandbox only knows 127.0.0.1:8080 by default.
 */
export async function startRelay({
  sandboxUrl, sandbox, env = {}, args = [], dataDir, storeKey, apiKey, registerRedirects = true, t, name = 'keyrelay',
  stderrFile,
} = {}) {
  sandboxUrl ??= sandbox?.url;
  const bin = path.join(BIN_DIR, 'keyrelay');
  const ownDir = !dataDir;
  dataDir ??= await mkdtemp(path.join(os.tmpdir(), 'keyrelay-test-'));
  if (storeKey === undefined) storeKey = newStoreKey();
  if (apiKey === true) apiKey = newApiKey();
  addSecret(storeKey, 'KEYRELAY_STORE_KEY');
  addSecret(apiKey, 'KEYRELAY_API_KEY');
  for (const [k, v] of Object.entries(env)) if (/SECRET|KEY|TOKEN|PASSWORD/.test(k)) addSecret(v, `env ${k}`);
  const fullEnv = { ...env };
  const redis = STORE_BACKEND === 'redis' && !('KEYRELAY_REDIS_URL' in env) ? await redisFor(dataDir, t) : null;
  if (redis) fullEnv.KEYRELAY_REDIS_URL = redis.url;
  if (storeKey) fullEnv.KEYRELAY_STORE_KEY = storeKey;
  if (apiKey) fullEnv.KEYRELAY_API_KEY = apiKey;
  const history = [];
  const onLine = (stream, line) => { history.push({ stream, line }); recorded.logs.push({ name, stream, line }); };
  const argvFor = (port) => ['serve', ...(sandboxUrl ? ['--sandbox', sandboxUrl] : []), '--port', String(port), '--data-dir', dataDir, ...args];

  let proc = await spawnServer(bin, argvFor(0), { env: fullEnv, name, onLine, stderrFile });
  const handle = {
    url: proc.url,
    port: proc.port,
    dataDir,
    storeKey,
    apiKey,
    redis,
    logs: () => history.slice(),
    get child() { return proc.child; },
    stop: (signal = 'SIGTERM') => stopProcess(proc.child, proc.exited, signal),
    async restart() {
      await handle.stop('SIGTERM');
      proc = await spawnServer(bin, argvFor(handle.port), { env: fullEnv, name, onLine, stderrFile });
      if (proc.url !== handle.url) throw new Error(`restarted relay listens on ${proc.url}, not ${handle.url}`);
      return handle;
    },
  };
  registerCleanup(t, async () => {
    await handle.stop('SIGTERM');
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
  });
  if (registerRedirects && sandbox) {
    for (const provider of ['keap', 'jira']) await sandbox.registerRedirectUri(provider, `${proc.url}/callback/${provider}`);
  }
  if (fullEnv.KEYRELAY_REDIS_URL && STORE_BACKEND === 'redis' && proc.url.startsWith('http:')) {
    // A relay that ignored KEYRELAY_REDIS_URL would pass the whole suite on the file store: make sure it did not.
    const res = await fetch(`${proc.url}/healthz`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const health = await res.json().catch(() => ({}));
    if (health.store !== 'redis') {
      throw new Error(`KEYRELAY_TEST_STORE=redis, but the relay's /healthz says ${JSON.stringify(health)}, not "store":"redis"`);
    }
  }
  return handle;
}

/**
 * STORE_BACKEND: 'file' (the default) or 'redis' when KEYRELAY_TEST_STORE=redis. Under 'redis' every relay that
 * startRelay() starts gets KEYRELAY_REDIS_URL of a fresh redis-server (tests/lib/redis.mjs) unless its env names one:
 * one Redis per data dir, so relays that share a data dir (a restart, two relays on one store) share one Redis too.
 * scripts/test runs tests/relay this way as the stage relay-redis.
 */
export const STORE_BACKEND = process.env.KEYRELAY_TEST_STORE === 'redis' ? 'redis' : 'file';
if (!['', 'file', 'redis'].includes(process.env.KEYRELAY_TEST_STORE ?? '')) {
  throw new Error(`KEYRELAY_TEST_STORE must be "file" or "redis", not ${JSON.stringify(process.env.KEYRELAY_TEST_STORE)}`);
}

/**
 * fileStoreOnly: for `test(name, {skip: fileStoreOnly}, ...)` in tests about the file store itself (tokens.json,
 * store.key, the data dir): false with the file store; under KEYRELAY_TEST_STORE=redis, the reason it is skipped.
 */
export const fileStoreOnly = STORE_BACKEND === 'redis' &&
  'about the file store itself (tokens.json, store.key, the data dir): skipped under KEYRELAY_TEST_STORE=redis';

const redisByDataDir = new Map();
async function redisFor(dataDir, t) {
  if (!redisByDataDir.has(dataDir)) {
    const { startRedis } = await import('./redis.mjs');
    const started = startRedis({ t });
    redisByDataDir.set(dataDir, started);
    registerCleanup(t, () => redisByDataDir.delete(dataDir));
  }
  return redisByDataDir.get(dataDir);
}

/** writeConfig(dir, object) → path of <dir>/keyrelay.json holding JSON.stringify(object) (for --config). */
export async function writeConfig(dir, object) {
  const file = path.join(dir, 'keyrelay.json');
  await writeFile(file, JSON.stringify(object, null, 2));
  return file;
}

/** tempDir(t): a fresh temporary directory, removed in t.after() when t is given. */
export async function tempDir(t) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-test-'));
  registerCleanup(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A certificate for localhost from scripts/dev-cert (a local CA), written to DIR/cert: {dir, ca} with the CA's PEM
 * for a client to trust.
 */
export async function devCert(dir) {
  const certDir = path.join(dir, 'cert');
  const made = spawnSync(path.join(ROOT, 'scripts/dev-cert'), [certDir], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`scripts/dev-cert failed (exit ${made.status}): ${made.stderr}`);
  return { dir: certDir, ca: await readFile(path.join(certDir, 'ca.pem')) };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: a browser-like client with a cookie jar.

/**
 * parseSetCookie(header) → {name, value, attrs} where attrs has lower-case keys: httponly/secure (true),
 * samesite, path, domain, max-age, expires (strings) — exactly the attributes the header carried.
 */
export function parseSetCookie(header) {
  const [pair, ...parts] = header.split(';');
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const part of parts) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf('=');
    if (i < 0) attrs[p.toLowerCase()] = true;
    else attrs[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs, raw: header };
}

/**
 * A response as the harness returns it (the body is always read):
 *   {method, url, status, headers (a fetch Headers), setCookie: [raw Set-Cookie lines], body (text),
 *    json (parsed body or undefined), location (absolute URL of Location, or null)}
 */
async function readResponse(method, url, res, { record }) {
  const body = await res.text();
  let json;
  try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
  const loc = res.headers.get('location');
  const out = {
    method, url, status: res.status, headers: res.headers, setCookie: res.headers.getSetCookie(), body, json,
    location: loc === null ? null : new URL(loc, url).href, rawLocation: loc,
  };
  if (record) {
    recorded.responses.push({
      method, url, status: out.status, headers: Object.fromEntries(res.headers), setCookie: out.setCookie, body,
    });
  }
  return out;
}

/**
 * client(relayUrl, {record = true, jar, cookiesByHost = false}) → a browser-like client:
 *   jar            Map origin → Map cookie name → {name, value, attrs, raw} (the latest Set-Cookie of each); pass
 *                  one to share cookies between clients. cookiesByHost: the jar is keyed by host name instead of
 *                  origin (a browser's cookies ignore the port), so clients of relays on other ports share them.
 *   cookie(name, origin = relay) → that cookie's entry or undefined
 *   request(method, pathOrUrl, {headers, body, json, redirect = 'manual', timeout, initiator}) → a response (see
 *                  above). pathOrUrl is relative to the relay unless absolute. `json` sends a JSON body. Cookies of the
 *                  target origin are sent and Set-Cookie answers stored (Max-Age=0 / past Expires delete).
 *                  `initiator`: the URL of the page that caused a navigation; when it is on another site (another
 *                  host), cookies are sent as a browser sends them on a cross-site top-level navigation (RFC 6265bis
 *                  §5.5): SameSite=Strict never, Lax (and unmarked, Lax by default) only for GET and HEAD.
 *                  Responses from the relay's origin are recorded for the secrets scan.
 *   get(path, opts), post(path, opts)
 *   proxy(provider, apiPath, opts)  a page-style proxied call: adds X-Requested-With: keyrelay
 *   login(user = 'demo', pass = 'demo') → the POST /login response (the session cookie value is registered as a secret)
 *   connect(provider, {decision = 'allow', query = ''}) → {steps, authorizeUrl, callbackUrl, code, state, final}: the whole
 *                  OAuth dance with manual redirects: GET /connect/p → 302 to the sandbox authorize page →
 *                  (auto-approve: a 302 straight to the callback; otherwise the consent HTML, whose form is parsed
 *                  and submitted with decision=allow or deny like a browser) → GET the relay callback with the
 *                  state cookie → final. `query` (e.g. '?return_to=x') is appended to /connect/p. Throws with the whole trace if a hop is not what the contract says, except
 *                  that the final callback response is returned as is (tests assert it).
 *   authorize(provider, {decision, query}) → the first half only (up to the sandbox's redirect to the callback, not followed):
 *                  {steps, authorizeUrl, callbackUrl, code, state}
 */
export function client(relayUrl, { record = true, jar = new Map(), cookiesByHost = false } = {}) {
  const relayOrigin = new URL(relayUrl).origin;
  // cookiesByHost: one cookie store per host name, whatever the port, as browsers keep them (RFC 6265 §8.5: "cookies
  // do not provide isolation by port"). Several relays on 127.0.0.1 then see the cookies a browser would send them.
  const jarFor = (origin) => {
    const key = cookiesByHost ? new URL(origin).hostname : origin;
    if (!jar.has(key)) jar.set(key, new Map());
    return jar.get(key);
  };

  async function request(method, target, { headers = {}, body, json, redirect = 'manual', timeout = TIMEOUT_MS, initiator } = {}) {
    const url = new URL(target, relayUrl).href;
    const origin = new URL(url).origin;
    const h = { ...headers };
    const crossSite = initiator !== undefined && new URL(initiator).hostname !== new URL(url).hostname;
    const sendable = (c) => {
      if (!crossSite) return true;
      const sameSite = String(c.attrs.samesite ?? 'lax').toLowerCase();
      if (sameSite === 'none') return true;
      return sameSite === 'lax' && (method === 'GET' || method === 'HEAD');
    };
    const cookies = [...jarFor(origin).values()].filter(sendable).map((c) => `${c.name}=${c.value}`).join('; ');
    if (cookies && !Object.keys(h).some((k) => k.toLowerCase() === 'cookie')) h.Cookie = cookies;
    if (json !== undefined) { body = JSON.stringify(json); h['Content-Type'] ??= 'application/json'; }
    // No idle keep-alive connections left behind: they would delay the servers' graceful stop.
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'connection')) h.Connection = 'close';
    let res;
    try {
      res = await fetch(url, { method, headers: h, body, redirect, signal: AbortSignal.timeout(timeout) });
    } catch (err) {
      throw new Error(`${method} ${url} failed: ${err.message}${err.cause ? ' (' + err.cause.message + ')' : ''}`);
    }
    const out = await readResponse(method, url, res, { record: record && origin === relayOrigin });
    for (const raw of out.setCookie) {
      const c = parseSetCookie(raw);
      const expired = c.attrs['max-age'] === '0' || (c.attrs.expires && Date.parse(c.attrs.expires) < Date.now());
      if (expired) jarFor(origin).delete(c.name);
      else jarFor(origin).set(c.name, c);
    }
    return out;
  }

  const trace = (steps) => steps.map((s) => `${s.method} ${s.url} → ${s.status}${s.location ? ' ' + s.location : ''}${s.status >= 400 ? ' ' + s.body.slice(0, 300) : ''}`).join('\n  ');

  async function authorize(provider, { decision = 'allow', query = '' } = {}) {
    const steps = [];
    const start = await request('GET', `/connect/${provider}${query}`);
    steps.push(start);
    if (start.status !== 302 || !start.location) throw new Error(`GET /connect/${provider} should redirect to the provider:\n  ${trace(steps)}`);
    const authorizeUrl = start.location;
    const state = new URL(authorizeUrl).searchParams.get('state');
    let page = await request('GET', authorizeUrl);
    steps.push(page);
    if (page.status === 200) {
      const form = parseConsentForm(page.body, authorizeUrl);
      if (!form) throw new Error(`no consent form on the authorize page:\n  ${trace(steps)}\n${page.body.slice(0, 2000)}`);
      const fields = new URLSearchParams(form.fields);
      const button = form.buttons.find((b) => new RegExp(decision, 'i').test(`${b.value} ${b.text}`));
      if (button?.name) fields.set(button.name, button.value);
      else fields.set('decision', decision);
      page = await request(form.method, form.action, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form.method === 'GET' ? undefined : fields.toString(),
      });
      steps.push(page);
    }
    if (![302, 303].includes(page.status) || !page.location) throw new Error(`the sandbox should redirect to the relay's callback:\n  ${trace(steps)}`);
    const callbackUrl = page.location;
    const code = new URL(callbackUrl).searchParams.get('code');
    addSecret(code, `OAuth code (${provider})`);
    return { steps, authorizeUrl, callbackUrl, code, state };
  }

  const c = {
    url: relayUrl,
    jar,
    cookie: (name, origin = relayOrigin) => jarFor(origin).get(name),
    request,
    get: (p, opts) => request('GET', p, opts),
    post: (p, opts) => request('POST', p, opts),
    proxy: (provider, apiPath, { headers = {}, method = 'GET', ...opts } = {}) =>
      request(method, `/proxy/${provider}/${apiPath.replace(/^\//, '')}`, { ...opts, headers: { 'X-Requested-With': 'keyrelay', ...headers } }),
    async login(user = DEMO_USER, pass = DEMO_PASSWORD) {
      const res = await request('POST', '/login', { json: { username: user, password: pass } });
      for (const ck of jarFor(relayOrigin).values()) if (/session/i.test(ck.name)) addSecret(ck.value, `session cookie ${ck.name}`);
      return res;
    },
    authorize,
    async connect(provider, { decision = 'allow', query = '' } = {}) {
      const a = await authorize(provider, { decision, query });
      // The provider's page sends the browser back: a navigation that the provider's site started.
      const final = await request('GET', a.callbackUrl, { initiator: a.steps[a.steps.length - 1].url });
      a.steps.push(final);
      return { ...a, final, trace: trace(a.steps) };
    },
    /** connections() → the parsed GET /api/connections as a map provider → entry (throws unless 200). */
    async connections(opts) {
      const res = await request('GET', '/api/connections', opts);
      if (res.status !== 200 || !Array.isArray(res.json?.connections)) throw new Error(`GET /api/connections → ${res.status} ${res.body}`);
      return Object.fromEntries(res.json.connections.map((e) => [e.provider, e]));
    },
  };
  return c;
}

/**
 * parseConsentForm(html, pageUrl) → {action (absolute), method, fields: [[name, value]] of hidden/text inputs,
 * buttons: [{name, value, text}]} of the first <form>, or null. Good enough for the sandbox's consent page.
 */
export function parseConsentForm(html, pageUrl) {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return null;
  const attr = (tag, name) => {
    const r = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
    return r ? decodeEntities(r[2] ?? r[3] ?? r[4]) : undefined;
  };
  const action = new URL(attr(m[1], 'action') ?? pageUrl, pageUrl).href;
  const method = (attr(m[1], 'method') ?? 'GET').toUpperCase();
  const fields = [];
  for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
    const type = (attr(input[1], 'type') ?? 'text').toLowerCase();
    const name = attr(input[1], 'name');
    if (!name || ['submit', 'button', 'checkbox', 'radio'].includes(type)) continue;
    fields.push([name, attr(input[1], 'value') ?? '']);
  }
  const buttons = [];
  for (const b of m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
    buttons.push({ name: attr(b[1], 'name'), value: attr(b[1], 'value') ?? '', text: b[2].replace(/<[^>]*>/g, '').trim() });
  }
  for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
    if ((attr(input[1], 'type') ?? '').toLowerCase() === 'submit') {
      buttons.push({ name: attr(input[1], 'name'), value: attr(input[1], 'value') ?? '', text: attr(input[1], 'value') ?? '' });
    }
  }
  return { action, method, fields, buttons };
}

function decodeEntities(s) {
  return s.replace(/&(amp|lt|gt|quot|#39|#x27|apos);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", apos: "'" }[e]));
}

/**
 * apiCall(relayUrl, method, path, {apiKey, headers, body, json, timeout}) → a response: a server-to-server call
 * with `Authorization: Bearer <apiKey>` and no cookies (recorded for the secrets scan).
 */
export async function apiCall(relayUrl, method, p, { apiKey, headers = {}, body, json, timeout = TIMEOUT_MS } = {}) {
  const url = new URL(p, relayUrl).href;
  const h = { Connection: 'close', ...headers };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  if (json !== undefined) { body = JSON.stringify(json); h['Content-Type'] = 'application/json'; }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(timeout) });
  return readResponse(method, url, res, { record: true });
}

/**
 * rawRequest(baseUrl, requestTarget, {method, headers, host, timeout}) → {status, statusLine, headers (lower-case
 * names → value, Set-Cookie joined by \n), body, raw}. Sends the request target byte for byte over net.connect
 * (for paths fetch would normalise: `..`, %2e%2e, %2f, absolute URLs). `host` replaces the Host header (default: the
 * base URL's host:port). `Connection: close` is added; the answer is
 * read to the end (chunked bodies are decoded). Recorded for the secrets scan.
 */
export function rawRequest(baseUrl, target, { method = 'GET', headers = {}, host, timeout = TIMEOUT_MS } = {}) {
  const u = new URL(baseUrl);
  const head = [`${method} ${target} HTTP/1.1`, `Host: ${host ?? u.host}`];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  head.push('Connection: close', '', '');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks = [];
    sock.setTimeout(timeout, () => { sock.destroy(); reject(new Error(`raw ${method} ${target}: no complete answer within ${timeout} ms`)); });
    sock.on('error', reject);
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const split = raw.indexOf('\r\n\r\n');
      const headText = split >= 0 ? raw.slice(0, split) : raw;
      let body = split >= 0 ? raw.slice(split + 4) : '';
      const [statusLine, ...headerLines] = headText.split('\r\n');
      const hs = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        hs[k] = k in hs ? `${hs[k]}\n${v}` : v;
      }
      if (/chunked/i.test(hs['transfer-encoding'] ?? '')) body = dechunk(body);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      recorded.responses.push({ method, url: baseUrl + target, status, headers: hs, setCookie: hs['set-cookie']?.split('\n') ?? [], body });
      let json;
      try { json = JSON.parse(body); } catch { json = undefined; }
      resolve({ status, statusLine, headers: hs, body, json, raw });
    });
    sock.write(head.join('\r\n'), 'latin1');
  });
}

function dechunk(s) {
  let out = '';
  let i = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', i);
    if (nl < 0) break;
    const n = parseInt(s.slice(i, nl), 16);
    if (!n) break;
    out += s.slice(nl + 2, nl + 2 + n);
    i = nl + 2 + n + 2;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Assertions shared by the suites.

/**
 * errorOf(res) → res.json.error after checking the one error shape of docs/api.md: {error: {code, message, hint}},
 * three non-empty strings. Throws an AssertionError-like Error naming the response otherwise.
 */
export function errorOf(res) {
  const e = res.json?.error;
  const ok = e && typeof e.code === 'string' && e.code && typeof e.message === 'string' && e.message &&
    typeof e.hint === 'string' && e.hint;
  if (!ok) throw new Error(`${res.method} ${res.url} → ${res.status}: not the error shape {error:{code,message,hint}}: ${String(res.body).slice(0, 500)}`);
  return e;
}

/**
 * metricValue(text, name, labels = {}) → the sum of the samples of metric `name` whose labels include `labels`
 * in a Prometheus text exposition, or undefined when there is no such sample.
 */
export function metricValue(text, name, labels = {}) {
  let sum;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1]] = l[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) sum = (sum ?? 0) + Number(m[4]);
  }
  return sum;
}

/**
 * connectedSetup({t, providers = ['keap'], sandboxOptions, relayOptions, tap}) → {sandbox, relay, browser, tap}:
 * a sandbox (auto-approve unless sandboxOptions says otherwise), optionally a recording tap in front of it (see
 * startTap; then `sandbox` is the tap's handle and `tap` the same object), a relay on it, and a logged-in client with
 * every provider in `providers` connected (each hop asserted). The common start of most tests.
 */
export async function connectedSetup({ t, providers = ['keap'], sandboxOptions = {}, relayOptions = {}, tap = false } = {}) {
  let sandbox = await startSandbox({ autoApprove: true, ...sandboxOptions, t });
  if (tap) sandbox = await startTap({ sandbox, t });
  const relay = await startRelay({ sandbox, ...relayOptions, t });
  const browser = client(relay.url);
  const login = await browser.login();
  if (login.status !== 200) throw new Error(`POST /login → ${login.status} ${login.body}`);
  for (const provider of providers) {
    const flow = await browser.connect(provider);
    if (flow.final.status !== 302 || flow.final.rawLocation !== `/?connected=${provider}`) {
      throw new Error(`connecting ${provider} did not end with 302 /?connected=${provider}:\n  ${flow.trace}\n${relay.logs().slice(-20).map((l) => l.line).join('\n')}`);
    }
  }
  return { sandbox, relay, browser, tap: tap ? sandbox : undefined };
}
