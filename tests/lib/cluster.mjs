// A scale-out world for the tests: three relays sharing one Redis (and one KEYRELAY_STORE_KEY), each with its own
// data dir, behind Debian's nginx as a round-robin load balancer, with the sandbox on the other site
// (http://localhost:<port>, auto-approve). The relays' public_url is the nginx address, and the sandbox knows its
// callback URLs, as the developer portal of a real provider would. docs/deploy.md ("Two or more relays") describes
// the same layout for production.
//
// nginx runs without root on a free port (as in tests/relay/behind_nginx.test.mjs), talking HTTP/1.0 to the relays
// (every request its own upstream connection), never marking a relay down (max_fails=0), so requests keep going
// round robin even while one relay is stopped or restarting.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import {
  apiCall, client, metricValue, newApiKey, newStoreKey, sleep, startRelay, startSandbox, tempDir, waitFor, writeConfig,
} from './harness.mjs';
import { freePort, startRedis } from './redis.mjs';

/**
 * startNginx({t, upstreams: ['127.0.0.1:port', ...], port, dir}) → {url, port, stop()}: nginx on 127.0.0.1:<port>
 * balancing round robin over the upstreams, passing the Host the client sent (the relays answer only to their own
 * names: docs/api.md). dir: its working directory (a fresh temporary one, removed with t, unless given).
 */
export async function startNginx({ t, upstreams, port, dir }) {
  dir ??= await tempDir(t);
  await mkdir(dir, { recursive: true });
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, sub));
  const conf = [
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`,
    'events { worker_connections 4096; }',
    'http {', '  access_log off;',
    ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s === 'body' ? 'client_body' : s}_temp_path ${dir}/${s};`),
    '  upstream keyrelay {',
    ...upstreams.map((u) => `    server ${u} max_fails=0;`),
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    client_max_body_size 1m;',
    '    location / {',
    '      proxy_pass http://keyrelay;',
    '      proxy_set_header Host $http_host;',
    '      proxy_connect_timeout 2s;',
    '      proxy_read_timeout 30s;',
    '    }',
    '  }',
    '}',
  ].join('\n');
  await writeFile(path.join(dir, 'nginx.conf'), conf);
  const nginx = spawn('nginx', ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => nginx.on('exit', resolve));
  const stop = async () => { if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGTERM'); await exited; };
  if (t) t.after(stop);
  process.on('exit', () => { try { nginx.kill('SIGKILL'); } catch { /* gone */ } });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(`${dir}/error.log`, 'utf8')}`);
    const res = await fetch(`${url}/healthz`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status === 200;
  }, { what: `nginx on ${url} answering /healthz` });
  return { url, port, stop, errorLog: () => readFileSync(`${dir}/error.log`, 'utf8') };
}

/**
 * startCluster({t, size = 3, accessTtl, refreshTtl, leaseMs = 1000, config = {}, redis, sandbox}) → cluster:
 *   redis       the shared Redis (tests/lib/redis.mjs; started here unless given)
 *   sandbox     the sandbox handle (auto-approve; access/refresh TTLs from the options)
 *   relays      [relay handle (tests/lib/harness.mjs startRelay), ...], each with its own data dir
 *   url         the nginx address: every relay's public_url
 *   storeKey, apiKey, redisUrl, configFile
 *   browser()   a browser-like client of the load balancer; its cookies are kept per host name, as a browser keeps
 *               them, so direct(i, browser) sees the same cookies
 *   direct(i, browser?)  a client of relay i itself (http://127.0.0.1:<its port>), sharing browser's cookie jar
 *   api(i, method, path, opts)  a server-to-server call (Bearer apiKey) to relay i (i = null: through nginx)
 *   connect(browser, providers)  logs in and connects each provider through the load balancer (asserted)
 *   restart(i)  SIGTERM then start relay i again on the same port
 *   stop()      stops nginx, the relays, and the sandbox and Redis when they were started here; removes the
 *               temporary files (what t.after() does when t is given: for callers without a test, the benchmark)
 * Config: refresh_lease_ms = leaseMs, short Redis timeouts (connect 500 ms, command 1000 ms), and `config` on top.
 */
export async function startCluster({ t, size = 3, accessTtl, refreshTtl, leaseMs = 1000, config = {}, redis, sandbox, relayEnv = {} } = {}) {
  redis ??= await startRedis({ t });
  sandbox ??= await startSandbox({ autoApprove: true, accessTtl, refreshTtl, t });
  const storeKey = newStoreKey();
  const apiKey = newApiKey();
  const ownRedis = !redis;
  const ownSandbox = !sandbox;
  const dir = await tempDir(t);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = await writeConfig(dir, {
    public_url: url, refresh_lease_ms: leaseMs, redis_connect_timeout_ms: 500, redis_command_timeout_ms: 1000, ...config,
  });
  for (const provider of ['keap', 'jira']) await sandbox.registerRedirectUri(provider, `${url}/callback/${provider}`);
  const relays = [];
  for (let i = 0; i < size; i++) {
    await mkdir(path.join(dir, `data-${i}`), { mode: 0o700 });
    relays.push(await startRelay({
      sandbox, t, storeKey, apiKey, name: `relay ${'ABCDEFGH'[i]}`, args: ['--config', configFile], dataDir: path.join(dir, `data-${i}`),
      env: { KEYRELAY_REDIS_URL: redis.url, ...relayEnv },
    }));
  }
  const nginx = await startNginx({ t, upstreams: relays.map((r) => new URL(r.url).host), port, dir: path.join(dir, 'nginx') });
  const cluster = {
    redis, sandbox, relays, url, storeKey, apiKey, redisUrl: redis.url, configFile, nginx,
    browser: () => client(url, { cookiesByHost: true }),
    direct: (i, browser) => client(relays[i].url, { cookiesByHost: true, jar: browser?.jar ?? new Map() }),
    api: (i, method, p, opts = {}) => apiCall(i === null ? url : relays[i].url, method, p, { apiKey, ...opts }),
    async connect(browser, providers = ['keap', 'jira']) {
      const login = await browser.login();
      if (login.status !== 200) throw new Error(`POST /login through nginx → ${login.status} ${login.body}`);
      for (const provider of providers) {
        const flow = await browser.connect(provider);
        if (flow.final.status !== 302 || flow.final.rawLocation !== `/?connected=${provider}`) {
          throw new Error(`connecting ${provider} through nginx did not end with 302 /?connected=${provider}:\n  ${flow.trace}`);
        }
      }
    },
    restart: (i) => relays[i].restart(),
    async stop() {
      await nginx.stop();
      for (const relay of relays) await relay.stop();
      if (ownSandbox) await sandbox.stop('SIGKILL');
      if (ownRedis) await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
    /** logs(i) → relay i's log lines (all runs) as text, for a failure message. */
    logs: (i) => relays[i].logs().map((l) => l.line).join('\n'),
  };
  return cluster;
}

/**
 * raiseSandboxLimits(sandbox): lifts the sandbox's per-client rate limits (relay/sandbox/INTERFACE.md
 * "/sandbox/limits") far above a test's burst, so a 429 from the fake provider never stands for a relay fault.
 */
export async function raiseSandboxLimits(sandbox) {
  const res = await fetch(`${sandbox.url}/sandbox/limits`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Connection: 'close' },
    body: JSON.stringify({ keap_oauth_per_minute: 1_000_000, keap_oauth_per_day: 10_000_000, jira_burst: 100_000, jira_per_second: 100_000 }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`POST /sandbox/limits → ${res.status} ${await res.text()}`);
}

/**
 * metricSum(cluster, name, labels) → the sum over every relay of metric `name` (tests/lib/harness.mjs metricValue),
 * and the per-relay values: {total, each: [n | undefined]}.
 */
export async function metricSum(cluster, name, labels = {}) {
  const each = [];
  for (let i = 0; i < cluster.relays.length; i++) {
    const res = await cluster.api(i, 'GET', '/metrics');
    each.push(metricValue(res.body, name, labels));
  }
  return { total: each.reduce((a, v) => a + (v ?? 0), 0), each };
}

/** LOOKUP: one allowlisted read per provider (sample data of relay/sandbox/INTERFACE.md). */
export const LOOKUP = {
  keap: '/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com',
  jira: '/proxy/jira/rest/api/3/user/search?query=ada%40example.com',
};

/**
 * connectionsOf(cluster, i = 0) → the parsed GET /api/connections of relay i, provider → entry (throws unless 200).
 */
export async function connectionsOf(cluster, i = 0) {
  const res = await cluster.api(i, 'GET', '/api/connections');
  if (res.status !== 200 || !Array.isArray(res.json?.connections)) throw new Error(`GET /api/connections on relay ${i} → ${res.status} ${res.body}`);
  return Object.fromEntries(res.json.connections.map((e) => [e.provider, e]));
}

/** untilExpired(cluster, provider, ms): sleeps until `ms` after the provider's access token expired (expires_at). */
export async function untilExpired(cluster, provider, ms = 100) {
  const conn = (await connectionsOf(cluster))[provider];
  if (typeof conn?.expires_at !== 'number') throw new Error(`no expires_at for ${provider}: ${JSON.stringify(conn)}`);
  const wait = conn.expires_at * 1000 - Date.now() + ms;
  if (wait > 15_000) throw new Error(`${provider}'s token expires in ${wait} ms although the sandbox issues short tokens`);
  if (wait > 0) await sleep(wait);
}
