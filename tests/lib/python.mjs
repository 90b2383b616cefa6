// Runs a Python test script (the XML-RPC bridge's tests drive it with Python's own xmlrpc.client).
import { spawn } from 'node:child_process';

/**
 * runPython(script, env, timeoutMs) → {status, stdout, stderr}. Asynchronous on purpose: the harness reads each
 * server's log from a pipe, and a server whose log pipe is full (spawnSync would stop node from reading it) stops
 * answering after a few hundred requests.
 */
export function runPython(script, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn('python3', [script], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}
