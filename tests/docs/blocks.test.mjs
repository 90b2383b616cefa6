// The extractor that decides what the docs test runs: if it misses a block, a broken example goes unnoticed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { extractBlocks, parseDirective, stripTypes } from './blocks.mjs';

const md = (...lines) => lines.join('\n');

test('sh, bash, shell and console blocks are runnable; json and csharp blocks are not', () => {
  const { blocks, errors } = extractBlocks(md(
    '```sh', 'echo a', '```',
    '```bash', 'echo b', '```',
    '```shell', 'echo c', '```',
    '```console', '$ echo d', 'd', '```',
    '```json', '{"a": 1}', '```',
    '```csharp', 'var x = 1;', '```',
  ));
  assert.deepEqual(errors, []);
  assert.deepEqual(blocks.map((b) => [b.lang, b.runnable]), [
    ['sh', true], ['bash', true], ['shell', true], ['console', true], ['json', false], ['csharp', false],
  ]);
});

test('a curl line makes a block of any language runnable', () => {
  const { blocks } = extractBlocks(md('```text', 'curl -s http://example.invalid/', '```', '```', '$ curl -fsS "$RELAY/healthz"', '```'));
  assert.deepEqual(blocks.map((b) => b.runnable), [true, true]);
});

test('a console block runs only its $ lines, continuation lines included', () => {
  const { blocks } = extractBlocks(md('```console', '$ curl -s \\', '    "$RELAY/healthz"', '{"status":"ok"}', '$ echo done', 'done', '```'));
  assert.equal(blocks[0].commands, 'curl -s \\\n    "$RELAY/healthz"\necho done');
});

test('directives before a block attach to it, blank lines between allowed', () => {
  const { blocks, errors } = extractBlocks(md(
    '<!-- docs-test: expect "ok" -->',
    '<!-- docs-test: expect /^\\[\\]$/m -->',
    '<!-- docs-test: exit 1 -->',
    '',
    '```sh', 'false', '```',
    '<!-- docs-test: skip (needs systemd) -->',
    '```sh', 'systemctl restart keyrelay', '```',
  ));
  assert.deepEqual(errors, []);
  assert.equal(blocks[0].expects[0].literal, 'ok');
  assert.ok(blocks[0].expects[1].regex.test('x\n[]\ny'));
  assert.equal(blocks[0].exit, 1);
  assert.equal(blocks[0].skip, null);
  assert.equal(blocks[1].skip, 'needs systemd');
});

test('a skip without a reason, an unknown directive and a dangling directive are errors', () => {
  assert.equal(parseDirective(' skip ').kind, 'error');
  assert.equal(parseDirective('skip ()').kind, 'error');
  assert.equal(parseDirective('run twice').kind, 'error');
  assert.equal(parseDirective('expect /(/').kind, 'error');
  const { errors } = extractBlocks(md('<!-- docs-test: expect "x" -->', 'Some prose.', '```sh', 'true', '```', '<!-- docs-test: exit 2 -->'));
  assert.deepEqual(errors.map((e) => e.line), [1, 6]);
});

test('a directive on a block that is not run is an error', () => {
  const { errors } = extractBlocks(md('<!-- docs-test: skip (no reason to) -->', '```json', '{}', '```'));
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /json block, which is not run/);
});

test('an unclosed fence is an error, and tildes close only tildes', () => {
  assert.equal(extractBlocks(md('```sh', 'echo a')).errors.length, 1);
  const { blocks, errors } = extractBlocks(md('~~~sh', '```', 'echo a', '~~~'));
  assert.deepEqual(errors, []);
  assert.equal(blocks[0].code, '```\necho a');
});

test('block line numbers point at the opening fence', () => {
  const { blocks } = extractBlocks(md('# title', '', '```sh', 'true', '```', 'text', '```sh', 'true', '```'));
  assert.deepEqual(blocks.map((b) => b.line), [3, 7]);
});

test('stripTypes removes annotations, one-line interfaces and casts, and leaves object literals alone', () => {
  const js = stripTypes(md(
    'interface E { error?: { code: string } }',
    'async function f(a: string, b?: unknown): Promise<number | null> {',
    '  const o = { given_name: a, family: b };',
    '  return (o as E | null) ? 1 : null;',
    '}',
  ));
  assert.equal(js, md(
    'async function f(a, b) {',
    '  const o = { given_name: a, family: b };',
    '  return (o) ? 1 : null;',
    '}',
  ));
});
