// Extracts the examples of the Markdown docs so that tests/docs can run them.
//
// A fenced block (``` or ~~~, CommonMark §4.5) is RUNNABLE when its info string is sh, bash, shell or console, or
// when any of its lines is a curl command (whatever the language). Directives are HTML comments on the lines just
// before the fence (blank lines between are allowed), invisible on GitHub:
//
//   <!-- docs-test: skip (why it cannot run in a test) -->   the reason is required
//   <!-- docs-test: expect "literal text" -->                  the output (stdout + stderr) must contain it
//   <!-- docs-test: expect /regular expression/m -->           ... or match it
//   <!-- docs-test: exit 1 -->                                  the expected exit status (default 0)
//
// An unknown directive, a skip without a reason or a directive that belongs to no block is an error: the test
// reports it rather than silently running (or not running) something.

import { readFileSync } from 'node:fs';

const RUNNABLE_LANGS = new Set(['sh', 'bash', 'shell', 'console']);
const CURL_LINE = /^\s*(\$\s+)?curl\s/;

/**
 * parseDirective(text) → {kind: 'skip', reason} | {kind: 'expect', literal} | {kind: 'expect', regex}
 *   | {kind: 'exit', code} | {kind: 'error', message}
 * `text` is what follows "docs-test:" in the comment.
 */
export function parseDirective(text) {
  const t = text.trim();
  let m;
  if ((m = /^skip\s*\((.*)\)$/s.exec(t))) {
    const reason = m[1].trim();
    return reason ? { kind: 'skip', reason } : { kind: 'error', message: 'skip needs a reason: skip (why)' };
  }
  if (/^skip\b/.test(t)) return { kind: 'error', message: `skip needs a reason in parentheses: "${t}"` };
  if ((m = /^expect\s+("(?:[^"\\]|\\.)*")$/s.exec(t))) {
    try {
      return { kind: 'expect', literal: JSON.parse(m[1]) };
    } catch (err) {
      return { kind: 'error', message: `expect: not a valid quoted string: ${m[1]} (${err.message})` };
    }
  }
  if ((m = /^expect\s+\/(.+)\/([a-z]*)$/s.exec(t))) {
    try {
      return { kind: 'expect', regex: new RegExp(m[1], m[2]) };
    } catch (err) {
      return { kind: 'error', message: `expect: bad regular expression /${m[1]}/${m[2]}: ${err.message}` };
    }
  }
  if ((m = /^exit\s+(\d+)$/.exec(t))) return { kind: 'exit', code: Number(m[1]) };
  return { kind: 'error', message: `unknown docs-test directive "${t}" (known: skip (reason), expect "text", expect /re/, exit N)` };
}

/**
 * extractBlocks(markdown) → {blocks, errors}
 *   blocks: [{line (1-based line of the opening fence), lang, code, runnable, skip (reason or null), expects: [...],
 *             exit, commands (the shell text to run: the code itself, or the `$ ` lines of a console block)}]
 *   errors: [{line, message}] for bad or dangling directives and unclosed fences
 */
export function extractBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  const errors = [];
  let pending = [];      // directives waiting for their block: {line, directive}
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const comment = /^\s*<!--\s*docs-test:(.*?)-->\s*$/.exec(line);
    if (comment) {
      const d = parseDirective(comment[1]);
      if (d.kind === 'error') errors.push({ line: i + 1, message: d.message });
      else pending.push({ line: i + 1, directive: d });
      continue;
    }
    if (/docs-test:/.test(line) && /<!--/.test(line)) {
      errors.push({ line: i + 1, message: 'a docs-test directive must be alone on its line: <!-- docs-test: ... -->' });
      continue;
    }
    const fence = /^(\s{0,3})(`{3,}|~{3,})\s*([^`\s]*)?.*$/.exec(line);
    if (!fence) {
      if (line.trim() !== '' && pending.length) {
        for (const p of pending) errors.push({ line: p.line, message: 'docs-test directive is not followed by a code block' });
        pending = [];
      }
      continue;
    }
    const marker = fence[2];
    const lang = (fence[3] ?? '').toLowerCase();
    const body = [];
    let j = i + 1;
    const closing = new RegExp(`^\\s{0,3}${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
    while (j < lines.length && !closing.test(lines[j])) body.push(lines[j++]);
    if (j >= lines.length) errors.push({ line: i + 1, message: 'code block is never closed' });
    const code = body.join('\n');
    const hasCurl = body.some((l) => CURL_LINE.test(l));
    const runnable = RUNNABLE_LANGS.has(lang) || hasCurl;
    const block = {
      line: i + 1, lang, code, runnable, skip: null, expects: [], exit: 0,
      commands: lang === 'console' ? consoleCommands(body) : code,
    };
    for (const { line: at, directive } of pending) {
      if (directive.kind === 'skip') block.skip = directive.reason;
      else if (directive.kind === 'expect') block.expects.push(directive);
      else if (directive.kind === 'exit') block.exit = directive.code;
      if (!runnable) errors.push({ line: at, message: `docs-test directive on a ${lang || 'plain'} block, which is not run` });
    }
    pending = [];
    blocks.push(block);
    i = j;
  }
  for (const p of pending) errors.push({ line: p.line, message: 'docs-test directive at the end of the file, with no block' });
  return { blocks, errors };
}

// A console block shows a session: lines starting with "$ " are commands (with their "\" continuation lines);
// everything else is output and is not run.
function consoleCommands(body) {
  const out = [];
  let continuing = false;
  for (const l of body) {
    if (continuing) {
      out.push(l);
      continuing = /\\$/.test(l);
    } else if (/^\s*\$\s/.test(l)) {
      const cmd = l.replace(/^\s*\$\s/, '');
      out.push(cmd);
      continuing = /\\$/.test(cmd);
    }
  }
  return out.join('\n');
}

/** extractFile(path) → extractBlocks of the file's text. */
export function extractFile(file) {
  return extractBlocks(readFileSync(file, 'utf8'));
}

/**
 * stripTypes(ts) → JavaScript: removes the TypeScript syntax the docs' examples use, and nothing else:
 * one-line `interface X { ... }` declarations, parameter and return type annotations of `function` declarations,
 * and `as T` casts inside parentheses. Anything else stays, so an example that uses more TypeScript fails loudly
 * (a SyntaxError under node) instead of being half-translated.
 */
export function stripTypes(ts) {
  return ts
    .split('\n')
    .filter((l) => !/^\s*(export\s+)?interface\s+\w+\s*\{.*\}\s*;?\s*$/.test(l))
    .map((l) => {
      const fn = /^(\s*(?:export\s+)?(?:async\s+)?function\s+\w+)\((.*)\)(\s*:\s*[^{]+)?\s*\{\s*$/.exec(l);
      if (!fn) return l;
      const params = fn[2]
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => p.replace(/^(\.\.\.)?(\w+)\??\s*:.*$/, '$1$2'));
      return `${fn[1]}(${params.join(', ')}) {`;
    })
    .join('\n')
    .replace(/\s+as\s+[A-Za-z_][\w<>\[\]]*(\s*\|\s*[A-Za-z_][\w<>\[\]]*)*(?=\s*\))/g, '');
}
