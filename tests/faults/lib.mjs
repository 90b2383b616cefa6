// Helpers of the fault suites (tests/faults) and of scripts/crashtest: a recording tap in front of the sandbox that
// reports every token-endpoint answer as it goes by (so a kill can be aimed at the moment a provider has just rotated a
// token), a reader of the relay's encrypted store (AES-256-GCM, the record id as associated data: relay/src/state/sealed_record.h)
// so a test can see which refresh token the relay really persisted, and /proc readers for memory and thread bounds.
// Everything runs on 127.0.0.1 with OS-chosen ports, through tests/lib/harness.mjs.

import { createDecipheriv } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

import { TIMEOUT_MS, addSecret } from '../lib/harness.mjs';

/** procStatus(pid) → {rssKiB, threads, fds} from /proc/<pid>/status and /proc/<pid>/fd (Linux). */
export async function procStatus(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1]);
  let fds = NaN;
  try { fds = (await readdir(`/proc/${pid}/fd`)).length; } catch { /* not ours to read */ }
  return { rssKiB: field('VmRSS'), threads: field('Threads'), fds };
}

/** Which provider a sandbox token-endpoint path belongs to ('keap', 'jira'), or null for any other path. */
export function tokenEndpointProvider(p) {
  const bare = p.split('?')[0];
  if (bare === '/keap/token') return 'keap';
  if (bare === '/jira/oauth/token') return 'jira';
  return null;
}

/** 'refresh' | 'exchange' | 'other' for a token-endpoint request body (form or JSON, RFC 6749 §4.1.3 / §6). */
function grantOf(body) {
  if (/refresh_token/.test(body) && /grant_type"?\s*[:=]\s*"?refresh_token/.test(body)) return 'refresh';
  if (/authorization_code/.test(body)) return 'exchange';
  return 'other';
}

/**
 * startHookTap({sandbox, t}) → a sandbox handle (same control methods, config rewritten to point at the tap) whose
 * url is an HTTP proxy in front of the sandbox. For the token endpoints it keeps, per provider and in order:
 *   issued[provider]: [{grant, status, refresh_token, access_token, at}] for every answer the sandbox gave
 *   requests[provider]: {refresh: n, exchange: n} requests forwarded so far
 * pending: how many requests are between the tap and the sandbox right now (waitIdle() waits for 0).
 * onTokenAnswer(fn): fn({provider, grant, status}) is called right after an answer was handed to the relay
 * (the relay now holds a rotated token it has not yet persisted); returns a function that removes fn.
 * intercept(fn): a hostile upstream. fn({method, path, headers, body}) may return {status, headers, body} to answer
 *   in the sandbox's place (nothing is forwarded), or undefined to forward as usual; returns a remover.
 * seen: [{method, path, rawHeaders: [name, value, ...], headers (lower-case), body}] of every request the relay sent.
 * Every issued token is registered with addSecret (it must never show up in a relay response or log).
 */
export async function startHookTap({ sandbox, t }) {
  const issued = { keap: [], jira: [] };
  const requests = { keap: { refresh: 0, exchange: 0 }, jira: { refresh: 0, exchange: 0 } };
  const hooks = new Set();
  const interceptors = new Set();
  const seen = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const target = new URL(sandbox.url);
  let tapUrl;
  let pending = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => { /* the relay died mid-request; the sandbox still gets what was read */ });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, host: target.host };
      delete headers['accept-encoding'];
      seen.push({ method: req.method, path: req.url, rawHeaders: [...req.rawHeaders], headers: { ...req.headers }, body: body.toString('utf8') });
      for (const fn of interceptors) {
        const fake = fn({ method: req.method, path: req.url, headers: req.headers, body: body.toString('utf8') });
        if (fake) {
          const payload = Buffer.from(fake.body ?? '');
          res.writeHead(fake.status ?? 200, { 'Content-Length': String(payload.length), ...(fake.headers ?? {}) });
          res.end(payload);
          return;
        }
      }
      const provider = tokenEndpointProvider(req.url);
      const grant = provider ? grantOf(body.toString('utf8')) : null;
      if (provider && grant in requests[provider]) requests[provider][grant] += 1;
      pending += 1;
      let done = false;
      const finish = () => { if (!done) { done = true; pending -= 1; } };
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
        const out = [];
        ur.on('data', (c) => out.push(c));
        ur.on('end', () => {
          let raw = Buffer.concat(out);
          const text = raw.toString('utf8');
          const rh = { ...ur.headers };
          if (req.url.split('?')[0] === '/sandbox/config') {
            raw = Buffer.from(text.split(sandbox.url).join(tapUrl));
            rh['content-length'] = String(raw.length);
          }
          if (provider) {
            let j;
            try { j = JSON.parse(text); } catch { j = undefined; }
            const entry = { grant, status: ur.statusCode, at: Date.now() };
            for (const k of ['access_token', 'refresh_token']) {
              if (typeof j?.[k] === 'string') { entry[k] = j[k]; addSecret(j[k], `sandbox-issued ${k}`); }
            }
            issued[provider].push(entry);
          }
          const loc = ur.headers.location;
          if (loc) {
            const code = new URL(loc, sandbox.url).searchParams.get('code');
            if (code) addSecret(code, 'sandbox-issued OAuth code');
          }
          finish();
          if (res.destroyed) return;
          res.writeHead(ur.statusCode, rh);
          res.end(raw, () => {
            if (provider) for (const fn of hooks) fn({ provider, grant, status: ur.statusCode });
          });
        });
        ur.on('error', () => { finish(); res.destroy(); });
      });
      up.on('error', () => { finish(); res.destroy(); });
      up.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  tapUrl = `http://127.0.0.1:${server.address().port}`;
  const stop = () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); agent.destroy(); });
  if (t && typeof t.after === 'function') t.after(stop);
  const rewrite = (v) => (typeof v === 'string' ? v.split(sandbox.url).join(tapUrl) : Array.isArray(v) ? v.map(rewrite)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)])) : v);
  return {
    ...sandbox,
    url: tapUrl,
    config: rewrite(sandbox.config),
    sandbox,
    issued,
    requests,
    seen,
    intercept(fn) { interceptors.add(fn); return () => interceptors.delete(fn); },
    get pending() { return pending; },
    async waitIdle(timeout = TIMEOUT_MS) {
      const deadline = Date.now() + timeout;
      while (pending > 0) {
        if (Date.now() > deadline) throw new Error(`the tap still has ${pending} request(s) in flight after ${timeout} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    /** The last successful token answer of a provider (its refresh token is the one the provider honours now). */
    latest(provider) {
      const ok = issued[provider].filter((e) => e.status === 200 && e.refresh_token);
      return ok[ok.length - 1];
    },
    onTokenAnswer(fn) { hooks.add(fn); return () => hooks.delete(fn); },
    stop,
  };
}

/**
 * readStore(dataDir, storeKeyHex) → {exists, parses, text, records: {id: connection JSON}, error}
 * Reads <dataDir>/tokens.json exactly as the relay left it and opens every record with the store key:
 * {"format":1,"records":[{"id","key_id","version","sealed": base64(iv[12] || ciphertext || tag[16])}]},
 * AES-256-GCM with the record id as associated data (relay/src/state/sealed_record.h). A record that does not open is an error:
 * that would be a half-written or garbled store.
 */
export async function readStore(dataDir, storeKeyHex) {
  const file = path.join(dataDir, 'tokens.json');
  let text;
  try { text = await readFile(file, 'utf8'); } catch (err) {
    if (err.code === 'ENOENT') return { exists: false, parses: true, text: '', records: {} };
    throw err;
  }
  let doc;
  try { doc = JSON.parse(text); } catch (err) {
    return { exists: true, parses: false, text, records: {}, error: `tokens.json is not JSON: ${err.message}` };
  }
  const key = Buffer.from(storeKeyHex, 'hex');
  const records = {};
  for (const r of doc.records ?? []) {
    try {
      const sealed = Buffer.from(r.sealed, 'base64');
      const iv = sealed.subarray(0, 12);
      const tag = sealed.subarray(sealed.length - 16);
      const ct = sealed.subarray(12, sealed.length - 16);
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAAD(Buffer.from(r.id, 'utf8'));
      d.setAuthTag(tag);
      const plain = Buffer.concat([d.update(ct), d.final()]).toString('utf8');
      records[r.id] = JSON.parse(plain);
    } catch (err) {
      return { exists: true, parses: true, text, records, error: `record ${r.id} does not open: ${err.message}` };
    }
  }
  return { exists: true, parses: true, text, records };
}

/** tempFiles(dir) → names in dir that look like an unfinished atomic write (*.tmp*). */
export async function tempFiles(dir) {
  return (await readdir(dir)).filter((f) => /\.tmp\b|\.tmp\./.test(f)).sort();
}

/** A seeded PRNG (mulberry32) so a campaign can be replayed with --seed. Returns () → [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** quantiles(values, [0.5, 0.9, 1]) → the values at those quantiles (nearest rank), or [] when empty. */
export function quantiles(values, qs) {
  if (!values.length) return [];
  const s = [...values].sort((a, b) => a - b);
  return qs.map((q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]);
}

/**
 * plainCall(url, {method, headers, body, timeout}) → {status, body, json, error}: one HTTP exchange with fetch that
 * never throws (a refused or reset connection gives status 0 and error), not recorded by the harness — for load
 * that is not itself under test. Connection: close.
 */
export async function plainCall(url, { method = 'GET', headers = {}, body, timeout = TIMEOUT_MS } = {}) {
  try {
    const res = await fetch(url, { method, headers: { Connection: 'close', ...headers }, body, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, body: text, json, headers: res.headers };
  } catch (err) {
    return { status: 0, body: '', error: err.cause?.code ?? err.name ?? String(err) };
  }
}
