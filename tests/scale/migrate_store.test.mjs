// keyrelay migrate-store moves connections between the file store (tokens.json in a data dir) and Redis, both ways
// (docs/deploy.md "Two or more relays"). A relay started on the destination finds the connections and uses them;
// running the same migration again changes nothing (idempotent); and a wrong KEYRELAY_STORE_KEY is refused with a
// message naming it, the destination left as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOOKUP } from '../lib/cluster.mjs';
import { addSecret, checkLeaksAfterAll, client, newStoreKey, recorded, startRelay, startSandbox, tempDir } from '../lib/harness.mjs';
import { hasRedis, startRedis } from '../lib/redis.mjs';
import { connectionRecords } from '../lib/redis_records.mjs';
import { runRelayOnce } from '../lib/security.mjs';
import { readStore } from '../faults/lib.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';

/** keyrelay migrate-store ARGS with env; its output goes into the harness's record for the leak scan. */
async function migrate(args, env) {
  const run = await runRelayOnce(['migrate-store', ...args], env, 30_000);
  for (const [stream, text] of [['stdout', run.stdout], ['stderr', run.stderr]]) {
    for (const line of text.split('\n')) if (line) recorded.logs.push({ name: 'keyrelay migrate-store', stream, line });
  }
  return { ...run, out: `${run.stdout}\n${run.stderr}` };
}

/**
 * provider → what a connection is (its tokens, account, needs_reauth) from decrypted records: readStore's
 * {id: connection} or connectionRecords' {id: {connection}}, for comparing two stores (the version may differ).
 */
const essence = (records) => Object.fromEntries(Object.entries(records)
  .filter(([id]) => id === 'keap' || id === 'jira')
  .map(([id, r]) => {
    const c = r.connection ?? r;
    return [id, JSON.stringify({ tokens: c.tokens, account: c.account, cloud_id: c.cloud_id, needs_reauth: c.needs_reauth })];
  }));

async function usable(relay, what) {
  for (const provider of ['keap', 'jira']) {
    const res = await client(relay.url).request('GET', LOOKUP[provider], { headers: { Authorization: `Bearer ${relay.apiKey}` } });
    assert.equal(res.status, 200, `${what}: ${provider} lookup → ${res.status} ${res.body}`);
  }
}

test('migrate-store copies file-store connections into Redis and back; both ways are idempotent and a relay uses the result', { skip, timeout: 120_000 }, async (t) => {
  const sandbox = await startSandbox({ autoApprove: true, t });
  const redis = await startRedis({ t });
  const storeKey = newStoreKey();
  const env = { KEYRELAY_REDIS_URL: redis.url, KEYRELAY_STORE_KEY: storeKey };

  // A relay on the file store with both providers connected.
  const fileDir = await tempDir(t);
  const fileRelay = await startRelay({ sandbox, dataDir: fileDir, storeKey, apiKey: true, t, name: 'file relay' });
  const browser = client(fileRelay.url);
  assert.equal((await browser.login()).status, 200);
  for (const p of ['keap', 'jira']) assert.equal((await browser.connect(p)).final.rawLocation, `/?connected=${p}`);
  assert.equal((await fileRelay.stop()).code, 0);
  const fileStore = await readStore(fileDir, storeKey);
  assert.equal(fileStore.error, undefined);

  const into = await migrate(['--from-data-dir', fileDir], env);
  assert.equal(into.code, 0, `migrate-store --from-data-dir: exit ${into.code}\n${into.out}`);
  const first = await connectionRecords(redis, storeKey);
  assert.deepEqual(first.errors, []);
  assert.deepEqual(Object.keys(essence(first.records)).sort(), ['jira', 'keap'], `records in Redis: ${Object.keys(first.records)}`);
  assert.deepEqual(essence(first.records), essence(fileStore.records), 'the connections in Redis differ from the file store');
  const keysOnce = await redis.keys('keyrelay:*');

  const again = await migrate(['--from-data-dir', fileDir], env);
  assert.equal(again.code, 0, `a second migrate-store --from-data-dir: exit ${again.code}\n${again.out}`);
  const second = await connectionRecords(redis, storeKey);
  assert.deepEqual(await redis.keys('keyrelay:*'), keysOnce, 'a second migration added or removed keys');
  assert.deepEqual(essence(second.records), essence(first.records), 'a second migration changed the connections');

  const redisRelay = await startRelay({ sandbox, storeKey, apiKey: true, env: { KEYRELAY_REDIS_URL: redis.url }, t, name: 'redis relay' });
  await usable(redisRelay, 'a relay on Redis after migrate-store --from-data-dir');
  assert.equal((await redisRelay.stop()).code, 0);

  const backDir = await tempDir(t);
  const back = await migrate(['--to-data-dir', backDir], env);
  assert.equal(back.code, 0, `migrate-store --to-data-dir: exit ${back.code}\n${back.out}`);
  const backStore = await readStore(backDir, storeKey);
  assert.equal(backStore.error, undefined, backStore.error);
  const inRedis = (await connectionRecords(redis, storeKey)).records;
  assert.deepEqual(essence(backStore.records), essence(inRedis), 'the file store written back differs from Redis');
  const backAgain = await migrate(['--to-data-dir', backDir], env);
  assert.equal(backAgain.code, 0, `a second migrate-store --to-data-dir: exit ${backAgain.code}\n${backAgain.out}`);
  assert.deepEqual(essence((await readStore(backDir, storeKey)).records), essence(backStore.records), 'a second migration back changed tokens.json');

  const fileAgain = await startRelay({ sandbox, dataDir: backDir, storeKey, apiKey: true, t, name: 'file relay again' });
  await usable(fileAgain, 'a file-store relay after migrate-store --to-data-dir');
});

test('migrate-store refuses a wrong KEYRELAY_STORE_KEY both ways, naming the key, and leaves the destination as it was', { skip, timeout: 60_000 }, async (t) => {
  const sandbox = await startSandbox({ autoApprove: true, t });
  const redis = await startRedis({ t });
  const storeKey = newStoreKey();
  const wrongKey = newStoreKey();
  addSecret(wrongKey, 'a wrong KEYRELAY_STORE_KEY');
  const fileDir = await tempDir(t);
  const relay = await startRelay({ sandbox, dataDir: fileDir, storeKey, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  assert.equal((await browser.connect('keap')).final.rawLocation, '/?connected=keap');
  assert.equal((await relay.stop()).code, 0);

  const refusedInto = await migrate(['--from-data-dir', fileDir], { KEYRELAY_REDIS_URL: redis.url, KEYRELAY_STORE_KEY: wrongKey });
  assert.notEqual(refusedInto.code, 0, `migrate-store --from-data-dir with a wrong key succeeded:\n${refusedInto.out}`);
  assert.match(refusedInto.out, /KEYRELAY_STORE_KEY/, `the refusal does not name KEYRELAY_STORE_KEY:\n${refusedInto.out}`);
  assert.deepEqual(await redis.keys('keyrelay:*'), [], 'a refused migration wrote to Redis');

  const ok = await migrate(['--from-data-dir', fileDir], { KEYRELAY_REDIS_URL: redis.url, KEYRELAY_STORE_KEY: storeKey });
  assert.equal(ok.code, 0, ok.out);
  const keys = await redis.keys('keyrelay:*');
  const backDir = await tempDir(t);
  const refusedBack = await migrate(['--to-data-dir', backDir], { KEYRELAY_REDIS_URL: redis.url, KEYRELAY_STORE_KEY: wrongKey });
  assert.notEqual(refusedBack.code, 0, `migrate-store --to-data-dir with a wrong key succeeded:\n${refusedBack.out}`);
  assert.match(refusedBack.out, /KEYRELAY_STORE_KEY/, `the refusal does not name KEYRELAY_STORE_KEY:\n${refusedBack.out}`);
  assert.equal((await readStore(backDir, storeKey)).exists, false, 'a refused migration wrote tokens.json');
  assert.deepEqual(await redis.keys('keyrelay:*'), keys, 'a refused migration back changed Redis');
});
