// The crash campaign, short version inside scripts/test: 20 SIGKILLs of the relay during refreshes and store writes
// (tests/faults/crash_campaign.mjs; the long campaign is scripts/crashtest, 200 kills). After every kill the store
// must parse and open with the key, the relay must start again on it, and every connection must be usable or
// correctly marked needs_reauth — needs_reauth only where the kill landed between Keap's rotation and the persist.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll } from '../lib/harness.mjs';
import { formatSummary, runCrashCampaign } from './crash_campaign.mjs';

checkLeaksAfterAll();

test('20 SIGKILLs during refreshes and store writes: the store always loads, no connection is ever half-broken', async (t) => {
  const kills = Number(process.env.KEYRELAY_CRASH_KILLS || 20);
  // A third of the kills aimed right after a rotated token reached the relay, so the window is exercised every run.
  const s = await runCrashCampaign({ kills, maxDelayMs: 1200, targetedShare: 0.34, workers: 5, t });
  for (const line of formatSummary(s).split('\n')) t.diagnostic(line);
  assert.equal(s.kills, kills, 'the campaign stopped early');
  assert.equal(s.storeLoadFailures, 0, 'the relay failed to start on what a kill left');
  assert.equal(s.storeAlwaysParsed, true, 'tokens.json did not parse after a kill');
  assert.equal(s.connectionsAnswered, kills, '/api/connections did not answer after every restart');
  assert.equal(s.outcomes.broken, 0, 'a connection ended neither usable nor marked needs_reauth');
  assert.equal(s.outcomes.usable + s.outcomes.needs_reauth, 2 * kills);
  assert.deepEqual(s.problems, []);
  assert.ok(s.refreshesAtProvider >= kills, `only ${s.refreshesAtProvider} refreshes: the load did not drive refreshes`);
  assert.ok(s.targetedKills >= 1, 'no kill was aimed at a rotation');
  assert.deepEqual(s.tempFilesLeft, [], 'temp files of killed writers are left in the data dir');
});
