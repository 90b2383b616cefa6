// The docs stay true: every shell example in README.md and docs/*.md runs here, in order, against a sandbox and a
// relay with Keap and Jira connected, and must exit as documented and print what its directives say
// (tests/docs/blocks.mjs explains the directives). The TypeScript example runs too, and links must resolve.
//
// The examples see what a reader has after `scripts/demo` (docs/calling.md, "Before you start"):
//   RELAY             the relay's URL              KEYRELAY_API_KEY  the relay's API key
//   SANDBOX           the fake Keap and Jira       PATH              starts with the directory of keyrelay
// and run in a scratch directory (also $HOME) holding links to the repository's scripts/, relay/, web/, wasm/ and
// docs/, so `scripts/dev-cert` writes to the scratch build/ and `cat > keyrelay.json` touches nothing real.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { BIN_DIR, ROOT, apiCall, checkLeaksAfterAll, connectedSetup } from '../lib/harness.mjs';
import { extractFile, stripTypes } from './blocks.mjs';

checkLeaksAfterAll();

/** At most this many runnable blocks may be skipped in all the docs together (each with its reason). */
const MAX_SKIPS = 10;
/** At least this many blocks must really run: a broken extractor or a skip-everything edit cannot pass. */
const MIN_RUN = 20;
const BLOCK_TIMEOUT_MS = 60_000;
/** What `keyrelay hash-password` (and any other prompt) reads from stdin in a block. */
const STDIN = 'docs-test-page-password\n';

const DOC_FILES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`),
];
const extracted = Object.fromEntries(DOC_FILES.map((f) => [f, extractFile(path.join(ROOT, f))]));

test('every docs-test directive is well-formed, skips are few and say why, and enough blocks run', () => {
  const problems = [];
  const skips = [];
  let run = 0;
  for (const [file, { blocks, errors }] of Object.entries(extracted)) {
    for (const e of errors) problems.push(`${file}:${e.line}: ${e.message}`);
    for (const b of blocks.filter((x) => x.runnable)) {
      if (b.skip) skips.push(`${file}:${b.line}: ${b.skip}`);
      else run++;
    }
  }
  assert.deepEqual(problems, [], `bad docs-test directives:\n${problems.join('\n')}`);
  assert.ok(skips.length <= MAX_SKIPS,
    `${skips.length} skipped examples (at most ${MAX_SKIPS}): make them runnable against the sandbox\n${skips.join('\n')}`);
  assert.ok(run >= MIN_RUN, `only ${run} examples run (expected at least ${MIN_RUN})`);
});

// GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces to -, duplicates numbered.
function anchorsOf(markdown) {
  const seen = new Map();
  const out = new Set();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s{0,3}(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1].replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

test('relative links in the docs point at files and headings that exist', () => {
  const broken = [];
  for (const file of DOC_FILES) {
    const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/i.test(target)) continue;
      const [rel, anchor] = target.split('#');
      const resolved = rel ? path.resolve(path.dirname(path.join(ROOT, file)), rel) : path.join(ROOT, file);
      if (!existsSync(resolved)) { broken.push(`${file}: ${target} (no such file)`); continue; }
      if (anchor && resolved.endsWith('.md') && !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${path.relative(ROOT, resolved)})`);
      }
    }
  }
  assert.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`);
});

/** A scratch directory laid out like a checkout, used as the blocks' cwd and $HOME. */
async function scratchDir(t) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-docs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of ['scripts', 'relay', 'web', 'wasm', 'docs']) await symlink(path.join(ROOT, name), path.join(dir, name));
  await mkdir(path.join(dir, 'build'));
  return dir;
}

function blockEnv({ dir, relay, sandbox }) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(KEAP_|JIRA_|KEYRELAY_)/.test(k)) env[k] = v;
  }
  return {
    ...env,
    PATH: `${BIN_DIR}${path.delimiter}${process.env.PATH}`,
    HOME: dir,
    RELAY: relay.url,
    KEYRELAY_API_KEY: relay.apiKey,
    SANDBOX: sandbox.url,
    NO_COLOR: '1',
  };
}

/** run(argv, {cwd, env, input}) → {code, signal, output} (stdout and stderr interleaved), killed after the timeout. */
function run(argv, { cwd, env, input = STDIN, timeout = BLOCK_TIMEOUT_MS }) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => {
      output += `\n[docs test: killed after ${timeout} ms]`;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeout);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, output }); });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function describeFailure(file, block, result, why) {
  return `${file}:${block.line} (${block.lang} block) ${why}\n--- the block:\n${block.commands}\n--- exit ${result.code}` +
    `${result.signal ? ` (signal ${result.signal})` : ''}, output:\n${result.output.slice(-4000)}`;
}

async function runShellBlock(file, block, ctx) {
  const result = await run(['bash', '-e', '-o', 'pipefail', '-c', block.commands], ctx);
  assert.equal(result.code, block.exit, describeFailure(file, block, result, `should exit ${block.exit}`));
  for (const e of block.expects) {
    const ok = e.regex ? e.regex.test(result.output) : result.output.includes(e.literal);
    assert.ok(ok, describeFailure(file, block, result, `should print ${e.regex ?? JSON.stringify(e.literal)}`));
  }
}

for (const file of DOC_FILES) {
  const { blocks } = extracted[file];
  const shell = blocks.filter((b) => b.runnable && !b.skip);
  const ts = blocks.filter((b) => b.lang === 'ts' || b.lang === 'typescript');
  if (!shell.length && !ts.length) continue;

  test(`${file}: its examples run against the sandbox and a relay`, async (t) => {
    const { sandbox, relay } = await connectedSetup({ t, providers: ['keap', 'jira'], relayOptions: { apiKey: true } });
    const dir = await scratchDir(t);
    const ctx = { cwd: dir, env: blockEnv({ dir, relay, sandbox }) };

    for (const block of shell) {
      await t.test(`${file}:${block.line} ${block.commands.split('\n')[0].slice(0, 70)}`, () => runShellBlock(file, block, ctx));
    }

    for (const block of ts) {
      await t.test(`${file}:${block.line} the TypeScript example runs (types stripped) and does what it says`, async () => {
        // calling.md's example renames ben.anderson@example.com to Joe Bobertson: start from another name.
        const reset = await apiCall(relay.url, 'PATCH', '/proxy/keap/crm/rest/v1/contacts/4393',
          { apiKey: relay.apiKey, json: { given_name: 'Ben', family_name: 'Anderson' } });
        assert.equal(reset.status, 200, reset.body);
        const script = path.join(dir, `example-${block.line}.mjs`);
        await writeFile(script, stripTypes(block.code));
        const result = await run(['node', script], ctx);
        assert.equal(result.code, 0, describeFailure(file, block, result, 'should run under node'));
        if (/updateContactName\(/.test(block.code)) {
          const after = await apiCall(relay.url, 'GET', '/proxy/keap/crm/rest/v1/contacts/4393', { apiKey: relay.apiKey });
          assert.equal(after.status, 200, after.body);
          assert.deepEqual([after.json.given_name, after.json.family_name], ['Joe', 'Bobertson']);
        }
      });
    }
  });
}

test('the C# example makes the same call as the curl example (no C# compiler here: a consistency check)', () => {
  const { blocks } = extracted['docs/calling.md'];
  const cs = blocks.filter((b) => b.lang === 'csharp');
  assert.ok(cs.length >= 1, 'docs/calling.md has a csharp block');
  const code = cs[0].code;
  for (const needle of ['new HttpMethod("PATCH")', 'crm/rest/v1/contacts/{contactId}', '/proxy/keap/',
    'new AuthenticationHeaderValue("Bearer", apiKey)', 'given_name = givenName', 'family_name = familyName',
    '"application/json"']) {
    assert.ok(code.includes(needle), `the C# example should contain ${needle}`);
  }
  const curl = blocks.find((b) => b.runnable && /-X PATCH "\$RELAY\/proxy\/keap\/crm\/rest\/v1\/contacts\/4393"/.test(b.code));
  assert.ok(curl, 'docs/calling.md has the curl PATCH of contact 4393 that the C# example mirrors');
});

test('the docs name every command-line option they use, as keyrelay --help spells it', async () => {
  const bin = path.join(BIN_DIR, 'keyrelay');
  const help = {};
  for (const cmd of ['serve', 'doctor', 'rotate-key', 'hash-password']) {
    help[cmd] = (await run([bin, cmd, '--help'], { cwd: ROOT, env: process.env, input: '' })).output;
  }
  const unknown = [];
  for (const file of DOC_FILES) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/keyrelay (serve|doctor|rotate-key|hash-password)((?:[ \t]+(?:--[a-z-]+|[^\s`|)]+))*)/g)) {
      for (const opt of m[2].matchAll(/--[a-z][a-z-]*/g)) {
        if (opt[0] !== '--help' && !help[m[1]].includes(opt[0])) unknown.push(`${file}: keyrelay ${m[1]} ${opt[0]}`);
      }
    }
  }
  assert.deepEqual(unknown, [], `options the relay does not have:\n${unknown.join('\n')}`);
  assert.ok(statSync(bin).isFile());
});
