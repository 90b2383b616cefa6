// Shared setup of the relay's attack tests: a sandbox, the recording and intercepting tap of
// tests/faults/lib.mjs in front of it (so a test sees every request the relay forwards, byte for byte, and can play a
// hostile provider), a relay on the tap, and a logged-in browser with the providers connected.
import { spawn } from 'node:child_process';
import path from 'node:path';

import { BIN_DIR, client, recorded, startRelay, startSandbox } from './harness.mjs';
import { startHookTap } from '../faults/lib.mjs';

/**
 * tappedSetup({t, providers = ['keap'], relayOptions, sandboxOptions}) → {sandbox, tap, relay, browser, page}
 * page: the headers of a same-origin page call (session cookie + X-Requested-With: keyrelay), for rawRequest.
 */
export async function tappedSetup({ t, providers = ['keap'], relayOptions = {}, sandboxOptions = {} } = {}) {
  const sandbox = await startSandbox({ t, autoApprove: true, ...sandboxOptions });
  const tap = await startHookTap({ sandbox, t });
  const relay = await startRelay({ sandbox: tap, t, ...relayOptions });
  const browser = client(relay.url);
  const login = await browser.login();
  if (login.status !== 200) throw new Error(`login → ${login.status} ${login.body}`);
  for (const p of providers) {
    const flow = await browser.connect(p);
    if (flow.final.rawLocation !== `/?connected=${p}`) throw new Error(`connect ${p}:\n  ${flow.trace}`);
  }
  const page = { Cookie: `keyrelay_session=${browser.cookie('keyrelay_session').value}`, 'X-Requested-With': 'keyrelay' };
  return { sandbox, tap, relay, browser, page };
}

/**
 * runRelayOnce(args, env, timeoutMs) → {code, signal, stdout, stderr}: runs `keyrelay <args>` to its end (for start-up
 * refusals). A relay that starts listening instead is killed and reported with code null and its output. Its output
 * lines join recorded.logs, so the suite's leak scan covers them.
 */
export function runRelayOnce(args, env = {}, timeoutMs = 15_000) {
  return new Promise((resolve) => {
    const child = spawn(path.join(BIN_DIR, 'keyrelay'), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (/^listening on /m.test(stdout)) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const [stream, text] of [['stdout', stdout], ['stderr', stderr]]) {
        for (const line of text.split('\n').filter(Boolean)) recorded.logs.push({ name: 'keyrelay (run once)', stream, line });
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}
