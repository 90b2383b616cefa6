#!/usr/bin/env node
// scripts/crashtest's body: node tests/faults/crashtest.mjs [--kills N] [--max-delay MS] [--targeted SHARE]
// [--workers N] [--seed S] [--json FILE]. Runs the crash campaign of tests/faults/crash_campaign.mjs against the
// binaries in $KEYRELAY_BIN_DIR (default build/native/bin), prints the counts, and exits 1 when any connection ended
// broken, the store ever failed to parse or load, or a needs_reauth had no explanation.
import { writeFile } from 'node:fs/promises';

import { formatSummary, runCrashCampaign } from './crash_campaign.mjs';

const args = process.argv.slice(2);
const opts = {};
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    const v = args[++i];
    if (v === undefined) { console.error(`crashtest: ${a} needs a value`); process.exit(2); }
    return v;
  };
  const num = (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) { console.error(`crashtest: ${a} ${v} is not a non-negative number`); process.exit(2); }
    return n;
  };
  if (a === '--kills') opts.kills = Math.floor(num(value()));
  else if (a === '--max-delay') opts.maxDelayMs = Math.floor(num(value()));
  else if (a === '--targeted') opts.targetedShare = num(value());
  else if (a === '--workers') opts.workers = Math.max(1, Math.floor(num(value())));
  else if (a === '--seed') opts.seed = Math.floor(num(value()));
  else if (a === '--json') opts.json = value();
  else if (a === '-h' || a === '--help') {
    console.log('usage: scripts/crashtest [--kills N (200)] [--max-delay MS (1500)] [--targeted SHARE (0.25)] [--workers N (6)] [--seed S] [--json FILE]');
    process.exit(0);
  } else { console.error(`crashtest: unknown argument ${a} (see --help)`); process.exit(2); }
}
const { json, ...campaign } = opts;
const started = Date.now();
const s = await runCrashCampaign({ ...campaign, log: (line) => console.log(line) });
console.log(`\n== crash campaign, ${((Date.now() - started) / 1000).toFixed(0)} s\n${formatSummary(s)}`);
if (json) await writeFile(json, JSON.stringify(s, null, 2));
const failed = s.outcomes.broken > 0 || !s.storeAlwaysParsed || s.storeLoadFailures > 0 || s.problems.length > 0;
console.log(failed ? 'FAILED' : 'OK: every kill left a store that loads, and every connection usable or correctly marked needs_reauth');
process.exit(failed ? 1 : 0);
