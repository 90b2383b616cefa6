// A throw-away redis-server for the tests: Debian's redis-server 7 on 127.0.0.1, on a free port, in a temporary
// directory, with a random password (so every client exercises AUTH) and the append-only file on (so a restart keeps
// what was written: https://redis.io/docs/management/persistence/). Cleaned up by the test's t.after() and, in any
// case, when the test process exits.
//
// Two ways to talk to it:
//   cli(...args)      redis-cli with the password in REDISCLI_AUTH (never on the command line), for what redis-cli does
//                     best (--scan); returns its stdout.
//   command(...args)  one RESP exchange over a socket (https://redis.io/docs/reference/protocol-spec/), binary-safe:
//                     bulk strings come back as Buffers, so DUMP payloads and sealed records are read byte for byte.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { addSecret, TIMEOUT_MS } from './harness.mjs';

/** hasRedis(): redis-server and redis-cli are installed (scripts/setup installs them). */
export function hasRedis() {
  return ['redis-server', 'redis-cli'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
});

/** freePort(): a port the OS just handed out on 127.0.0.1 (bound and closed; the caller retries if it is taken). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/**
 * startRedis({t, appendonly = true, save = '', maxmemoryPolicy, password, user, args}) → redis handle
 * (password: a random one unless given; null for a Redis without AUTH):
 *   port, password, dir       where it listens, its requirepass, its working directory (the AOF lives there)
 *   url                       redis://:<password>@127.0.0.1:<port>/0 (what KEYRELAY_REDIS_URL takes)
 *   urlWith({password, db})   the same URL with another password or database
 *   stop(signal = 'SIGTERM')  stops it (SIGKILL after 5 s); resolves when it is gone
 *   start()                   starts it again on the same port, directory and settings (after stop())
 *   restart()                 stop() then start()
 *   pause(), resume()         SIGSTOP / SIGCONT: a Redis that accepts connections and never answers
 *   cli(...args), command(...args), dump(key) → Buffer | null
 *   scan(pattern = '*')       the key names redis-cli --scan lists (blocks this process while redis-cli runs)
 *   keys(pattern = 'keyrelay:*')  the same through SCAN on a socket (async: for sampling while the relays work)
 *   logs                      every line it printed
 * save '' turns RDB snapshots off (the AOF alone persists); pass save: null to keep Redis's default snapshots.
 * rdbcompression is off so a DUMP payload holds each string as it is stored (LZF would hide a plaintext secret from a
 * byte scan).
 */
export async function startRedis({ t, appendonly = true, save = '', maxmemoryPolicy, password, user, args = [] } = {}) {
  if (password === undefined) password = 'redis-test-' + randomBytes(18).toString('base64url');
  addSecret(password, 'Redis password');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-redis-'));
  let port;
  let proc;
  const logs = [];

  const argv = () => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--logfile', '',
    '--appendonly', appendonly ? 'yes' : 'no', ...(password ? ['--requirepass', password] : []), '--rdbcompression', 'no',
    ...(save === null ? [] : ['--save', save]),
    ...(maxmemoryPolicy ? ['--maxmemory-policy', maxmemoryPolicy] : []),
    ...(user ? ['--user', user.name, 'on', `>${user.password}`, '~keyrelay:*', '+@all'] : []),
    ...args,
  ];

  const launch = () => new Promise((resolve, reject) => {
    const child = spawn('redis-server', argv(), { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const exited = new Promise((r) => child.on('exit', (code, signal) => { live.delete(child); r({ code, signal }); }));
    let settled = false;
    const mine = [];
    const timer = setTimeout(() => finish(new Error(`redis-server did not get ready within ${TIMEOUT_MS} ms:\n${mine.join('\n')}`)), TIMEOUT_MS);
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) { try { child.kill('SIGKILL'); } catch { /* gone */ } reject(Object.assign(err, { output: mine.join('\n') })); }
      else resolve({ child, exited });
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          logs.push(line);
          mine.push(line);
          if (/Ready to accept connections/.test(line)) finish();
        }
      });
    }
    child.on('error', (err) => finish(err));
    exited.then(({ code, signal }) => finish(new Error(`redis-server exited (code ${code}, signal ${signal}) before it was ready:\n${mine.join('\n')}`)));
  });

  const start = async ({ newPort = false } = {}) => {
    for (let attempt = 0; ; attempt++) {
      if (port === undefined || newPort) port = await freePort();
      try {
        proc = await launch();
        return;
      } catch (err) {
        // Another process took the port between freePort() and the bind: pick another one (first start only).
        if (attempt < 5 && /Address already in use/.test(err.output ?? '') && (newPort || attempt === 0)) { newPort = true; continue; }
        throw err;
      }
    }
  };
  await start({ newPort: true });

  const stop = async (signal = 'SIGTERM') => {
    const { child, exited } = proc;
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    try { child.kill('SIGCONT'); } catch { /* gone */ }
    child.kill(signal);
    const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };

  const env = { ...process.env, ...(password ? { REDISCLI_AUTH: password } : {}) };
  const cli = (...cliArgs) => {
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--no-auth-warning', ...cliArgs],
      { env, encoding: 'utf8', timeout: TIMEOUT_MS });
    if (r.status !== 0) throw new Error(`redis-cli ${cliArgs.join(' ')} → exit ${r.status}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  const handle = {
    get port() { return port; },
    password,
    dir,
    logs,
    get url() { return password ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}/0` : `redis://127.0.0.1:${port}/0`; },
    urlWith({ password: pw = password, user: u, db = 0 } = {}) {
      const auth = u ? `${encodeURIComponent(u)}:${encodeURIComponent(pw)}` : `:${encodeURIComponent(pw)}`;
      return `redis://${auth}@127.0.0.1:${port}/${db}`;
    },
    get pid() { return proc.child.pid; },
    stop,
    start: () => start(),
    async restart() { await stop(); await start(); },
    pause() { proc.child.kill('SIGSTOP'); },
    resume() { proc.child.kill('SIGCONT'); },
    cli,
    command: (...cmd) => command(port, password, cmd),
    scan(pattern = '*') {
      return cli('--scan', '--pattern', pattern).split('\n').filter(Boolean).sort();
    },
    async keys(pattern = 'keyrelay:*') {
      const out = [];
      let cursor = '0';
      do {
        const [next, batch] = await command(port, password, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000']);
        cursor = next.toString();
        out.push(...batch.map(String));
      } while (cursor !== '0');
      return [...new Set(out)].sort();
    },
    async dump(key) { return command(port, password, ['DUMP', key]); },
  };
  if (t && typeof t.after === 'function') {
    t.after(async () => { await stop('SIGKILL'); await rm(dir, { recursive: true, force: true }); });
  }
  return handle;
}

/**
 * command(port, password, args) → the reply of one Redis command sent after AUTH: a Buffer for a bulk string, a
 * string for a simple string, a number for an integer, an array for an array, null for a null reply. A Redis error
 * reply rejects with its text.
 */
export function command(port, password, args) {
  const encode = (parts) => Buffer.concat([
    Buffer.from(`*${parts.length}\r\n`),
    ...parts.flatMap((p) => { const b = Buffer.isBuffer(p) ? p : Buffer.from(String(p)); return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]; }),
  ]);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const replies = [];
    sock.setTimeout(TIMEOUT_MS, () => { sock.destroy(); reject(new Error(`redis ${args[0]}: no answer within ${TIMEOUT_MS} ms`)); });
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parseReply(buf, 0);
        if (!r) break;
        buf = buf.subarray(r.end);
        replies.push(r.value);
      }
      if (replies.length === 2) {
        sock.end();
        const [auth, reply] = replies;
        if (auth instanceof Error) reject(new Error(`redis AUTH: ${auth.message}`));
        else if (reply instanceof Error) reject(new Error(`redis ${args.join(' ').slice(0, 80)}: ${reply.message}`));
        else resolve(reply);
      }
    });
    // Without a password the reply to PING stands in for the one to AUTH.
    sock.write(Buffer.concat([encode(password ? ['AUTH', password] : ['PING']), encode(args)]));
  });
}

function parseReply(buf, at) {
  const nl = buf.indexOf('\r\n', at);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.subarray(at + 1, nl).toString('utf8');
  if (type === '+') return { value: line, end: nl + 2 };
  if (type === '-') return { value: new Error(line), end: nl + 2 };
  if (type === ':') return { value: Number(line), end: nl + 2 };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, end: nl + 2 };
    if (buf.length < nl + 2 + n + 2) return null;
    return { value: buf.subarray(nl + 2, nl + 2 + n), end: nl + 2 + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, end: nl + 2 };
    const items = [];
    let end = nl + 2;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, end);
      if (!r) return null;
      items.push(r.value);
      end = r.end;
    }
    return { value: items, end };
  }
  throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
}

/**
 * readAll(redis, pattern = '*') → [{key, type, ttl, dump: Buffer, values: [Buffer]}] for every key (redis-cli --scan):
 * its DUMP payload and its contents read by type (GET, HGETALL, SMEMBERS, ZRANGE, LRANGE), for a byte scan.
 */
export async function readAll(redis, pattern = '*') {
  const out = [];
  for (const key of redis.scan(pattern)) {
    const type = await redis.command('TYPE', key);
    const ttl = await redis.command('PTTL', key);
    const dump = await redis.command('DUMP', key);
    let values = [];
    if (type === 'string') values = [await redis.command('GET', key)];
    else if (type === 'hash') values = await redis.command('HGETALL', key);
    else if (type === 'set') values = await redis.command('SMEMBERS', key);
    else if (type === 'zset') values = await redis.command('ZRANGE', key, '0', '-1', 'WITHSCORES');
    else if (type === 'list') values = await redis.command('LRANGE', key, '0', '-1');
    out.push({ key, type, ttl, dump: dump ?? Buffer.alloc(0), values: (values ?? []).filter(Boolean) });
  }
  return out;
}
