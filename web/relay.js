// Talking to the relay that serves the page (docs/api.md). No token or secret ever reaches the page: the relay
// holds them and the browser holds a session cookie.

// Every call carries X-Requested-With: keyrelay (the relay's CSRF check) and the session cookie. `signal` cancels
// it (an AbortController's); the promise then rejects.
export async function call(path, { method = 'GET', json, headers = {}, body, signal } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', signal,
                 headers: { 'X-Requested-With': 'keyrelay', ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body) {
    init.body = body;
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, data };
}

// A request built by the Wasm module ({method, path, headers, body}) sent through fetch.
export function send(req, signal) {
  return call(req.path, { method: req.method, headers: req.headers, body: req.body || undefined, signal });
}

// The relay's own error shape: {"error": {"code", "message", "hint"}}. Provider errors look different
// (Keap's OAuth errors carry a string "error"; Jira's carry "errorMessages").
export function relayError(res) {
  const e = res.data && res.data.error;
  return e && typeof e === 'object' && typeof e.code === 'string' ? e : null;
}
