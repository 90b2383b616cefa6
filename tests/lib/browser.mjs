// What the headless-Chromium tests (tests/browser) share: Debian's Chromium and the flags it needs here, and the
// page's folder as scripts/demo serves it (web/ plus the Wasm module under wasm/; build outputs never go into web/).
import fs from 'node:fs';
import path from 'node:path';

import { ROOT } from './harness.mjs';

/** $KEYRELAY_CHROMIUM or Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.KEYRELAY_CHROMIUM || '/usr/bin/chromium';

/** Headless as root on a machine with no network but loopback: no sandbox, no GPU, no background traffic. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** The Wasm build: $KEYRELAY_WASM_DIR or build/wasm. */
export const WASM_DIR = path.resolve(ROOT, process.env.KEYRELAY_WASM_DIR || 'build/wasm');

/** pageFolder(tmp, webDir) → <tmp>/www: a copy of webDir (default web/) with wasm/keyrelay.{mjs,wasm} beside it. */
export function pageFolder(tmp, webDir = path.join(ROOT, 'web')) {
  const www = path.join(tmp, 'www');
  fs.cpSync(webDir, www, { recursive: true });
  fs.mkdirSync(path.join(www, 'wasm'), { recursive: true });
  for (const f of ['keyrelay.mjs', 'keyrelay.wasm']) {
    const src = path.join(WASM_DIR, f);
    if (!fs.existsSync(src)) throw new Error(`${src} is missing: build it (cmake --build --preset wasm) first`);
    fs.copyFileSync(src, path.join(www, 'wasm', f));
  }
  return www;
}
