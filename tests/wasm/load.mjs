// Loads the Wasm module for the node tests: build/wasm/keyrelay.cjs (override the folder with KEYRELAY_WASM_DIR).
// The .cjs embeds its .wasm (-sSINGLE_FILE=1), so plain `node` loads it with no flag.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const wasmDir = path.resolve(root, process.env.KEYRELAY_WASM_DIR || 'build/wasm');
export const repoRoot = root;

const require = createRequire(import.meta.url);
export const createKeyrelay = require(path.join(wasmDir, 'keyrelay.cjs'));
export const kr = await createKeyrelay();

// True when v holds only plain data: objects with Object.prototype, arrays, strings, numbers, booleans, null,
// Dates and Uint8Arrays. A class handle (which would need .delete()) fails this.
export function isPlain(v) {
  if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) return true;
  if (v instanceof Date || v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every(isPlain);
  if (typeof v !== 'object' || Object.getPrototypeOf(v) !== Object.prototype) return false;
  return Object.values(v).every(isPlain);
}
