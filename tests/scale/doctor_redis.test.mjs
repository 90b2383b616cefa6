// keyrelay doctor checks the Redis a relay is given (docs/connect.md, docs/deploy.md "Two or more relays"): that it
// is reachable and AUTH works, its server version, that persistence is on (AOF or RDB; without it a restart of Redis
// logs every user out of Keap: https://redis.io/docs/management/persistence/), and that maxmemory-policy cannot evict
// the relay's keys (only noeviction and the volatile-* policies spare keys without a TTL:
// https://redis.io/docs/reference/eviction/). Each Redis here is set up to pass or to fail exactly one check.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addSecret, checkLeaksAfterAll, newStoreKey, recorded, startSandbox } from '../lib/harness.mjs';
import { hasRedis, startRedis } from '../lib/redis.mjs';
import { runRelayOnce } from '../lib/security.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';

/** keyrelay doctor --sandbox URL with KEYRELAY_REDIS_URL → {code, out, lines: the lines that mention Redis}. */
async function doctor(sandbox, redisUrl) {
  const run = await runRelayOnce(['doctor', '--sandbox', sandbox.url], { KEYRELAY_REDIS_URL: redisUrl, KEYRELAY_STORE_KEY: newStoreKey() }, 30_000);
  for (const line of run.stdout.split('\n')) if (line) recorded.logs.push({ name: 'keyrelay doctor', stream: 'stdout', line });
  for (const line of run.stderr.split('\n')) if (line) recorded.logs.push({ name: 'keyrelay doctor', stream: 'stderr', line });
  const out = `${run.stdout}\n${run.stderr}`;
  // A check is a "[ OK ]", "[INFO]", "[WARN]" or "[FAIL]" line, with its hint on the next line ("-> ...").
  const checks = [];
  for (const line of run.stdout.split('\n')) {
    const m = /^\[(?: OK |INFO|WARN|FAIL)\] /.exec(line);
    if (m) checks.push({ level: line.slice(1, 5).trim(), text: line.slice(7), hint: '' });
    else if (checks.length && /^\s+->/.test(line)) checks.at(-1).hint += line.trim();
  }
  return { code: run.code, out, checks, redis: checks.filter((c) => /redis/i.test(c.text + c.hint)) };
}

const about = (checks, re) => checks.filter((c) => re.test(c.text + ' ' + c.hint));
const PERSISTENCE = /persist|append|AOF|RDB|snapshot/i;
const EVICTION = /evict|maxmemory/i;

test('doctor: a Redis with AOF on and maxmemory-policy noeviction passes every Redis check and names its version', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t, appendonly: true, maxmemoryPolicy: 'noeviction' });
  const version = /redis_version:(\S+)/.exec((await redis.command('INFO', 'server')).toString())[1];
  const d = await doctor(sandbox, redis.url);
  assert.equal(d.code, 0, `doctor failed on a good Redis:\n${d.out}`);
  assert.ok(d.redis.length >= 3, `doctor printed no Redis checks:\n${d.out}`);
  assert.deepEqual(d.redis.filter((c) => c.level === 'WARN' || c.level === 'FAIL'), [], `a good Redis was warned about:\n${d.out}`);
  assert.ok(d.checks.some((c) => c.text.includes(version)), `doctor does not name the server version ${version}:\n${d.out}`);
  assert.ok(about(d.checks, PERSISTENCE).some((c) => c.level === 'OK'), `no passed persistence check:\n${d.out}`);
  assert.ok(about(d.checks, EVICTION).some((c) => c.level === 'OK'), `no passed eviction check:\n${d.out}`);
});

test('doctor: a Redis with appendonly no and save "" is warned about: a restart would lose every connection', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t, appendonly: false, save: '', maxmemoryPolicy: 'noeviction' });
  const d = await doctor(sandbox, redis.url);
  const bad = about(d.checks, PERSISTENCE).filter((c) => c.level === 'WARN' || c.level === 'FAIL');
  assert.ok(bad.length >= 1, `no warning about persistence for a Redis without AOF or RDB:\n${d.out}`);
  assert.ok(bad.some((c) => c.hint), `the persistence warning has no hint (what to do):\n${d.out}`);
  assert.deepEqual(about(d.checks, EVICTION).filter((c) => c.level !== 'OK' && c.level !== 'INFO'), [], `noeviction was warned about:\n${d.out}`);
});

test('doctor: a Redis with maxmemory-policy allkeys-lru is warned about: it may evict connections', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t, appendonly: true, maxmemoryPolicy: 'allkeys-lru' });
  const d = await doctor(sandbox, redis.url);
  const bad = about(d.checks, EVICTION).filter((c) => c.level === 'WARN' || c.level === 'FAIL');
  assert.ok(bad.length >= 1, `no warning about allkeys-lru:\n${d.out}`);
  assert.ok(bad.some((c) => /allkeys-lru/.test(c.text + c.hint)), `the warning does not name the policy allkeys-lru:\n${d.out}`);
  assert.ok(bad.some((c) => /noeviction|volatile/.test(c.text + c.hint)), `the warning does not say which policy to use:\n${d.out}`);
  assert.deepEqual(about(d.checks, PERSISTENCE).filter((c) => c.level === 'WARN' || c.level === 'FAIL'), [], `AOF on was warned about:\n${d.out}`);
});

test('doctor: a wrong Redis password fails the AUTH check (non-zero exit) and the password is printed nowhere', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t });
  const wrong = 'wrong-redis-password-' + Date.now();
  addSecret(wrong, 'a wrong Redis password');
  const d = await doctor(sandbox, redis.urlWith({ password: wrong }));
  assert.notEqual(d.code, 0, `doctor passed with a wrong Redis password:\n${d.out}`);
  const failed = d.redis.filter((c) => c.level === 'FAIL');
  assert.ok(failed.some((c) => /auth|password/i.test(c.text + c.hint)), `no failed AUTH check:\n${d.out}`);
  assert.ok(!d.out.includes(wrong) && !d.out.includes(redis.password), `doctor printed a Redis password:\n${d.out}`);
});
