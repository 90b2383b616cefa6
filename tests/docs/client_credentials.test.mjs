// The docs' Python and C# examples build the token endpoint's Basic credentials exactly as the relay does:
// RFC 6749 §2.3.1 form-urlencodes the client id and secret before base64 (application/x-www-form-urlencoded: a
// space becomes '+', every byte outside A-Z a-z 0-9 - . _ ~ becomes %XX). The sandbox decodes '+' and '%20' alike,
// so running the examples against it cannot tell the two apart: this test compares the bytes.
//
// Python runs for real. C# runs when Mono's compiler is installed (Debian: mono-mcs); without it only the shape of
// the expression is checked, and the test says so.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT } from '../lib/harness.mjs';

const PAGE = path.join(ROOT, 'docs', 'troubleshooting.md');

// What the relay's form_urlencode gives for these (the same rows are in tests/core/test_http.cpp).
const CLIENT_ID = 'client id/1';
const CLIENT_SECRET = "open sesame+/=%:~*!'()é";
const FORM = {
  [CLIENT_ID]: 'client+id%2F1',
  [CLIENT_SECRET]: 'open+sesame%2B%2F%3D%25%3A~%2A%21%27%28%29%C3%A9',
};
const EXPECTED = Buffer.from(`${FORM[CLIENT_ID]}:${FORM[CLIENT_SECRET]}`, 'utf8').toString('base64');

test('the Python example form-urlencodes the client id and secret as the relay does (a space is "+")', async () => {
  const page = await readFile(PAGE, 'utf8');
  const m = /python3 -c '([^']*)'/.exec(page);
  assert.ok(m, `${PAGE} has no python3 -c '...' example`);
  const run = spawnSync('python3', ['-c', m[1]], {
    input: JSON.stringify({ keap: { client_id: CLIENT_ID, client_secret: CLIENT_SECRET } }),
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const printed = run.stdout.trim();
  assert.equal(printed, EXPECTED,
    `the Python example encodes "${CLIENT_ID}:${CLIENT_SECRET}" as ${Buffer.from(printed, 'base64')}, the relay as ${FORM[CLIENT_ID]}:${FORM[CLIENT_SECRET]}`);
});

test('the C# example form-urlencodes the client id and secret as the relay does (a space is "+")', async (t) => {
  const page = await readFile(PAGE, 'utf8');
  const helper = /^static string FormEncode\(string s\) => (.*);$/m.exec(page);
  const credentials = /^string credentials = (.*);$/m.exec(page);
  assert.ok(helper && credentials, `${PAGE}'s C# example lost its FormEncode helper or its credentials line`);
  // Uri.EscapeDataString keeps exactly A-Z a-z 0-9 - . _ ~ and writes %20 for a space (.NET: RFC 3986 unreserved).
  assert.equal(helper[1], 'Uri.EscapeDataString(s).Replace("%20", "+")');
  assert.equal(credentials[1], 'FormEncode(DeveloperAppKey) + ":" + FormEncode(DeveloperAppSecret)');

  const mcs = spawnSync('mcs', ['--version'], { encoding: 'utf8' });
  if (mcs.error || mcs.status !== 0) {
    t.skip('Mono (Debian mono-mcs) is not installed: the C# expression was checked by shape only');
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-cs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const program = [
    'using System;', 'using System.Text;',
    'static class Example {',
    `  ${helper[0]}`,
    '  static void Main(string[] args) {',
    '    string DeveloperAppKey = Encoding.UTF8.GetString(Convert.FromBase64String(args[0]));',
    '    string DeveloperAppSecret = Encoding.UTF8.GetString(Convert.FromBase64String(args[1]));',
    `    ${credentials[0]}`,
    '    Console.Write(Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));',
    '  }', '}',
  ].join('\n');
  await writeFile(path.join(dir, 'Example.cs'), program);
  const build = spawnSync('mcs', ['-nologo', '-out:' + path.join(dir, 'example.exe'), path.join(dir, 'Example.cs')], { encoding: 'utf8' });
  assert.equal(build.status, 0, `mcs: ${build.stdout}${build.stderr}`);
  const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
  const run = spawnSync('mono', [path.join(dir, 'example.exe'), b64(CLIENT_ID), b64(CLIENT_SECRET)], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, EXPECTED,
    `the C# example encodes "${CLIENT_ID}:${CLIENT_SECRET}" as ${Buffer.from(run.stdout, 'base64')}, the relay as ${FORM[CLIENT_ID]}:${FORM[CLIENT_SECRET]}`);
});
