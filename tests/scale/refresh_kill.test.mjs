// SIGKILL in the middle of a refresh, 20 times, on relays sharing one Redis. Each round kills the relay that is
// refreshing at one of two moments — when its refresh request reaches the provider (nothing was spent yet), or right
// after the provider handed it a rotated token it has not stored yet — restarts it, and lets another relay take over
// once the lease has run out. The connection must end usable or needs_reauth (a Keap refresh token rotated and lost
// with the killed process: RFC 6749 §10.4 makes the old one dead), never corrupt: every record opens with the store
// key, and the three relays agree. The outcome counts are printed for the record (docs/crash-safety.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startHookTap, rng } from '../faults/lib.mjs';
import { LOOKUP, connectionsOf, raiseSandboxLimits, startCluster, untilExpired } from '../lib/cluster.mjs';
import { checkLeaksAfterAll, startSandbox, waitFor } from '../lib/harness.mjs';
import { hasRedis } from '../lib/redis.mjs';
import { connectionRecords } from '../lib/redis_records.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';
const ROUNDS = 20;
const SEED = Number(process.env.KEYRELAY_KILL_SEED ?? 15);

test(`SIGKILL mid-refresh ${ROUNDS} times over three relays on one Redis: every round ends usable or needs_reauth, never corrupt`, { skip, timeout: 300_000 }, async (t) => {
  const sandbox = await startSandbox({ autoApprove: true, accessTtl: 2, t });
  await raiseSandboxLimits(sandbox);
  const tap = await startHookTap({ sandbox, t });
  const cluster = await startCluster({ t, sandbox: tap, leaseMs: 1000 });
  const browser = cluster.browser();
  await cluster.connect(browser, ['keap', 'jira']);
  const random = rng(SEED);

  const outcomes = { usable: 0, needs_reauth: 0, corrupt: 0 };
  const byMoment = {};
  const trail = [];
  for (let round = 0; round < ROUNDS; round++) {
    const provider = round % 2 ? 'jira' : 'keap';
    const victim = round % 3;
    const witness = (victim + 1 + Math.floor(random() * 2)) % 3;
    const moment = random() < 0.5 ? 'request sent' : 'rotated token received';
    const relay = cluster.relays[victim];
    await untilExpired(cluster, provider, 100);

    let killed = false;
    const kill = () => { if (!killed) { killed = true; relay.child.kill('SIGKILL'); } };
    const removers = [];
    if (moment === 'request sent') {
      // Killed as its request arrives, which the provider then never sees: nothing was spent.
      removers.push(tap.intercept(({ path: p, body }) => {
        if (killed || !/\/(keap\/token|jira\/oauth\/token)$/.test(p.split('?')[0]) || !/refresh_token/.test(body)) return undefined;
        kill();
        return { status: 503, body: 'the relay that asked is gone' };
      }));
    } else {
      removers.push(tap.onTokenAnswer(({ grant }) => { if (grant === 'refresh') kill(); }));
    }
    const call = await cluster.api(victim, 'GET', LOOKUP[provider], { timeout: 20_000 }).catch((err) => ({ status: 0, body: err.message }));
    for (const remove of removers) remove();
    assert.ok(killed, `round ${round}: relay ${'ABC'[victim]} answered ${call.status} without refreshing ${provider}: ${call.body}`);
    await tap.waitIdle();
    await relay.restart();

    // Another relay takes over once the dead relay's lease has run out.
    const after = await cluster.api(witness, 'GET', LOOKUP[provider], { timeout: 20_000 }).catch((err) => ({ status: 0, body: err.message }));
    const views = [];
    for (const i of [0, 1, 2]) views.push((await connectionsOf(cluster, i))[provider]);
    const { errors } = await connectionRecords(cluster.redis, cluster.storeKey);
    let outcome;
    if (errors.length || views.some((v) => v.needs_reauth !== views[0].needs_reauth)) outcome = 'corrupt';
    else if (after.status === 200 && !views[0].needs_reauth) outcome = 'usable';
    else if (views[0].needs_reauth && after.json?.error?.code === 'connection.needs_reauth') outcome = 'needs_reauth';
    else outcome = 'corrupt';
    outcomes[outcome] += 1;
    byMoment[`${provider}, ${moment}`] ??= { usable: 0, needs_reauth: 0, corrupt: 0 };
    byMoment[`${provider}, ${moment}`][outcome] += 1;
    trail.push(`round ${round}: ${provider}, relay ${'ABC'[victim]} killed when its ${moment}; relay ${'ABC'[witness]} then answered ` +
      `${after.status}${after.status === 200 ? '' : ' ' + (after.json?.error?.code ?? String(after.body).slice(0, 120))}` +
      ` → ${outcome}${errors.length ? ' (' + errors.join('; ') + ')' : ''}`);
    t.diagnostic(trail.at(-1));
    assert.notEqual(outcome, 'corrupt', `${trail.at(-1)}\nviews: ${JSON.stringify(views)}\n${cluster.logs(witness).slice(-2000)}`);
    if (moment === 'request sent') {
      assert.equal(outcome, 'usable', `${trail.at(-1)}: the provider never saw the killed relay's request, so nothing was spent`);
    }
    if (outcome === 'needs_reauth') {
      const flow = await browser.connect(provider);
      assert.equal(flow.final.status, 302, `reconnecting ${provider}: ${flow.trace}`);
      await waitFor(async () => (await connectionsOf(cluster, 0))[provider].needs_reauth === false, { what: `${provider} reconnected` });
    }
  }
  t.diagnostic(`kill campaign (seed ${SEED}): ${ROUNDS} kills → usable ${outcomes.usable}, needs_reauth ${outcomes.needs_reauth}, corrupt ${outcomes.corrupt}; ` +
    `by provider and moment: ${JSON.stringify(byMoment)}`);
  assert.equal(outcomes.usable + outcomes.needs_reauth, ROUNDS);
});
