// scripts/demo as a person runs it: started from the shell, then opened in Chromium by either address a person types
// or copies, http://127.0.0.1:PORT and http://localhost:PORT (two sites to a browser, with two cookie jars). Either
// way the person signs in, connects Keap on the sandbox's consent page and finds a contact.
//
// The demo reuses the servers and the Wasm module that scripts/test built (KEYRELAY_BIN_DIR, KEYRELAY_WASM_DIR),
// on a free port (PORT).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BIN_DIR, DEMO_PASSWORD, DEMO_USER, ROOT, waitFor } from '../lib/harness.mjs';
import { CHROMIUM, CHROMIUM_ARGS, WASM_DIR } from '../lib/browser.mjs';


let demo;
let output = '';
let port;
let browser;
let tmp;

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyrelay-demo-'));
  port = await freePort();
  demo = spawn(path.join(ROOT, 'scripts', 'demo'), [], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), KEYRELAY_BIN_DIR: BIN_DIR, KEYRELAY_WASM_DIR: WASM_DIR },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,   // its own process group, so the cleanup stops the servers it started too
  });
  for (const s of [demo.stdout, demo.stderr]) s.on('data', (c) => { output += c; });
  await waitFor(() => output.includes('keyrelay is running'), { timeout: 60_000, what: `scripts/demo to start; it printed:\n${output}` });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((resolve) => demo.on('exit', resolve));
    process.kill(-demo.pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(-demo.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the demo prints the address to open and the sign-in', () => {
  assert.match(output, new RegExp(`Open\\s+http://127\\.0\\.0\\.1:${port}`));
  assert.match(output, /Sign in\s+demo \/ demo/);
});

for (const host of ['127.0.0.1', 'localhost']) {
  test(`opened at http://${host}:PORT: sign in, connect Keap with Allow, find ada@example.com`, async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`http://${host}:${port}/`);
    await page.waitForSelector('html[data-ready=true]');
    await page.fill('#login-user', DEMO_USER);
    await page.fill('#login-password', DEMO_PASSWORD);
    await page.press('#login-password', 'Enter');
    await page.waitForSelector('#app-view:not([hidden])');
    await page.locator('#conn-keap').getByRole('link', { name: /^(Connect|Reconnect)/ }).first().click();
    await page.waitForSelector('#allow');
    await page.click('#allow');
    await page.waitForSelector('#conn-keap[data-status=on]');
    await page.fill('#lookup-email', 'ada@example.com');
    await page.press('#lookup-email', 'Enter');
    await page.waitForSelector('#result-keap[data-status=found]');
    assert.match(await page.locator('#result-keap').textContent(), /Ada Lovelace/);
    assert.deepEqual(errors, []);
    await context.close();
  });
}
