// How a relay is pointed at Redis (docs/deploy.md "Two or more relays", docs/api.md): KEYRELAY_REDIS_URL in the
// environment or "redis_url" in the config file, the environment winning (the URL may hold a password); with Redis,
// KEYRELAY_STORE_KEY is required, since relays that each made their own key could not read each other's records;
// and /healthz names the store in use.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, recorded, startRelay, startSandbox, tempDir, writeConfig } from '../lib/harness.mjs';
import { hasRedis, startRedis } from '../lib/redis.mjs';
import { runRelayOnce } from '../lib/security.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';

async function once(args, env) {
  const run = await runRelayOnce(args, env, 15_000);
  for (const [stream, text] of [['stdout', run.stdout], ['stderr', run.stderr]]) {
    for (const line of text.split('\n')) if (line) recorded.logs.push({ name: 'keyrelay (refused)', stream, line });
  }
  return run;
}

test('with Redis and no KEYRELAY_STORE_KEY, serve refuses to start at once, saying every relay on that Redis needs the same key', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t });
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { redis_url: redis.urlWith({ password: redis.password }) });
  for (const [what, args, env] of [
    ['KEYRELAY_REDIS_URL', ['serve', '--sandbox', sandbox.url, '--port', '0', '--data-dir', dir], { KEYRELAY_REDIS_URL: redis.url }],
    ['"redis_url" in --config', ['serve', '--sandbox', sandbox.url, '--config', config, '--port', '0', '--data-dir', dir], {}],
  ]) {
    const started = Date.now();
    const run = await once(args, env);
    const out = `${run.stdout}\n${run.stderr}`;
    assert.ok(!/^listening on/m.test(run.stdout), `${what}: serve started without KEYRELAY_STORE_KEY:\n${out}`);
    assert.ok(run.code !== null && run.code !== 0, `${what}: exit ${run.code} (signal ${run.signal}), not a refusal:\n${out}`);
    assert.ok(Date.now() - started < 5000, `${what}: took ${Date.now() - started} ms to refuse`);
    assert.match(run.stderr, /KEYRELAY_STORE_KEY/, `${what}: the refusal does not name KEYRELAY_STORE_KEY:\n${out}`);
    assert.match(run.stderr, /config\.store_key_required/, `${what}: no error code config.store_key_required:\n${out}`);
    assert.match(run.stderr, /same/i, `${what}: the refusal does not say that all relays need the same key:\n${out}`);
    assert.ok(!out.includes(redis.password), `${what}: the Redis password was printed:\n${out}`);
  }
  assert.deepEqual(await redis.keys('*'), [], 'a relay that refused to start wrote to Redis');
});

test('"redis_url" in the config file selects Redis, and KEYRELAY_REDIS_URL wins over it', { skip }, async (t) => {
  const sandbox = await startSandbox({ autoApprove: true, t });
  const fromConfig = await startRedis({ t });
  const fromEnv = await startRedis({ t });
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { redis_url: fromConfig.url });

  const byConfig = await startRelay({ sandbox, t, args: ['--config', config], name: 'relay (redis_url in config)' });
  const health = await client(byConfig.url).get('/healthz');
  assert.equal(health.json?.store, 'redis', `/healthz of a relay with redis_url in its config: ${health.body}`);
  assert.equal(health.json?.status, 'ok', health.body);
  assert.equal((await client(byConfig.url).login()).status, 200);
  assert.ok((await fromConfig.keys()).length > 0, 'a login on the relay configured with redis_url left nothing in that Redis');

  const byEnv = await startRelay({ sandbox, t, args: ['--config', config], env: { KEYRELAY_REDIS_URL: fromEnv.url }, name: 'relay (both)' });
  const before = await fromConfig.keys();
  assert.equal((await client(byEnv.url).login()).status, 200);
  assert.ok((await fromEnv.keys()).length > 0, 'KEYRELAY_REDIS_URL did not win over redis_url: its Redis is empty after a login');
  assert.deepEqual(await fromConfig.keys(), before, 'the relay given both wrote to the Redis of redis_url');
});

test('/healthz names the store: "file" without Redis, "redis" with it', { skip }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t });
  const file = await startRelay({ sandbox, t, name: 'relay (file store)' });
  const onRedis = await startRelay({ sandbox, t, env: { KEYRELAY_REDIS_URL: redis.url }, name: 'relay (Redis)' });
  const a = await client(file.url).get('/healthz');
  const b = await client(onRedis.url).get('/healthz');
  assert.equal(a.status, 200);
  assert.deepEqual([a.json?.status, a.json?.store], ['ok', 'file'], a.body);
  assert.equal(b.status, 200);
  assert.deepEqual([b.json?.status, b.json?.store], ['ok', 'redis'], b.body);
});
