// The login throttle (5 failures in 5 minutes per client address, docs/api.md) against the two ways around it that a
// black-box probe found: a correct login as another user that wiped the address's count, and a second relay on the
// same data dir that kept a count of its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addSecret, checkLeaksAfterAll, client, startRelay, startSandbox } from '../lib/harness.mjs';

checkLeaksAfterAll();

test('a correct login as another user clears only that user\'s failures: guesses at victim stay counted', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const wrong = `victim-guess-${process.pid}`;
  addSecret(wrong, 'a guessed password');
  const statuses = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 4; i++) statuses.push((await browser.login('victim', wrong)).status);
    const own = await browser.login('demo', 'demo');
    statuses.push(own.status);
  }
  // The fifth failure for victim from this address is the last one allowed; after it every attempt waits.
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 200]);
  assert.equal(statuses[5], 401, 'the fifth guess is still answered');
  assert.ok(statuses.slice(6).every((s) => s === 429), `16 guesses at victim went through: ${statuses}`);
});

test('failures count across usernames from one address, up to the limit, even after a success for one of them', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const wrong = `spray-${process.pid}`;
  addSecret(wrong, 'a sprayed password');
  for (const user of ['alice', 'bob', 'carol']) assert.equal((await browser.login(user, wrong)).status, 401);
  assert.equal((await browser.login('demo', 'demo')).status, 200);
  assert.equal((await browser.login('dave', wrong)).status, 401);
  assert.equal((await browser.login('erin', wrong)).status, 401);
  assert.equal((await browser.login('frank', wrong)).status, 429, 'five failures from this address, whoever they named');
});

test('relays sharing a data dir share the throttle: five failures on one, the next attempt on the other waits', async (t) => {
  const sandbox = await startSandbox({ t });
  const first = await startRelay({ sandbox, t, name: 'keyrelay A' });
  const second = await startRelay({ sandbox, t, dataDir: first.dataDir, storeKey: first.storeKey, name: 'keyrelay B' });
  const wrong = `shared-guess-${process.pid}`;
  addSecret(wrong, 'a guessed password');
  const a = client(first.url);
  for (let i = 0; i < 5; i++) assert.equal((await a.login('demo', wrong)).status, 401);
  const b = client(second.url);
  const res = await b.login('demo', wrong);
  assert.equal(res.status, 429, `the second relay kept its own count: ${res.status} ${res.body}`);
  assert.ok(Number(res.headers.get('retry-after')) > 0);
  assert.equal((await b.login('demo', 'demo')).status, 429, 'the right password waits too while the address is paused');
});
