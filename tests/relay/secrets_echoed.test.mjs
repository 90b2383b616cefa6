// A provider (or a gateway in front of it) that echoes the relay's own request back: a token endpoint answering
// 400 {"error":"invalid_grant","error_description":"<its request body>"}, or an API answer whose headers and body
// repeat the Authorization header. The relay knows every secret it sent in that request, so none of them may reach
// the browser, the API's callers or the log, in any form a provider may echo it in: raw, percent-encoded,
// form-encoded, base64 (the Basic header), JSON-escaped.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addSecret, apiCall, checkLeaksAfterAll, recorded, sleep } from '../lib/harness.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

/** Every form in which `secret` can come back in an echo, labelled. */
function formsOf(secret) {
  const forms = new Map();
  forms.set = ((set) => function (k, v) { return this.has(k) ? this : set.call(this, k, v); })(Map.prototype.set);
  forms.set(secret, 'raw');
  forms.set(encodeURIComponent(secret), 'percent-encoded');
  forms.set(encodeURIComponent(secret).replace(/%20/g, '+'), 'form-encoded');
  forms.set(new URLSearchParams({ x: secret }).toString().slice(2), 'form-encoded (URLSearchParams)');
  forms.set(Buffer.from(secret).toString('base64'), 'base64');
  forms.set(JSON.stringify(secret).slice(1, -1), 'JSON string');
  forms.set([...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''), 'JSON \\u-escaped');
  forms.set(JSON.stringify(secret).slice(1, -1).replace(/\//g, '\\/'), 'JSON with escaped slashes');
  return forms;
}

/** [{label, form, where}] for every form of every secret found in `text`. */
function findForms(text, secrets, where) {
  const found = [];
  for (const [label, secret] of secrets) {
    for (const [form, kind] of formsOf(secret)) {
      if (form.length >= 6 && text.includes(form)) found.push(`${label} (${kind}) in ${where}`);
    }
  }
  return found;
}

/** The echo a careless gateway gives: the whole request body and its Authorization header, in the description. */
function echo(req) {
  return {
    status: 400,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ error: 'invalid_grant', error_description: `${req.body} auth=${req.headers.authorization ?? ''}` }),
  };
}

const basic = (id, secret) => Buffer.from(`${id}:${secret}`).toString('base64');

for (const provider of ['keap', 'jira']) {
  test(`${provider}: a token endpoint that echoes the code exchange shows no secret or code on the callback page or in the log`, async (t) => {
    const { sandbox, tap, relay, browser } = await tappedSetup({ t, providers: [] });
    const cfg = sandbox.config[provider];
    const remove = tap.intercept((req) => (/token$/.test(req.path.split('?')[0]) && /authorization_code/.test(req.body) ? echo(req) : undefined));
    const logStart = relay.logs().length;
    const flow = await browser.connect(provider);
    remove();
    assert.ok(flow.final.status >= 400 && flow.final.status < 600, flow.trace);
    assert.match(flow.final.body, /oauth\.[a-z_]+/, `the page still says what went wrong: ${flow.final.body}`);
    const sent = tap.seen.find((r) => /authorization_code/.test(r.body));
    assert.ok(sent, 'the relay made a code exchange');
    const secrets = [['client secret', cfg.client_secret], ['authorization code', flow.code],
      ['Basic credentials', basic(cfg.client_id, cfg.client_secret)]];
    const leaks = [
      ...findForms(flow.final.body, secrets, 'the callback page'),
      ...findForms(relay.logs().slice(logStart).map((l) => l.line).join('\n'), secrets, 'the log'),
    ];
    assert.deepEqual(leaks, []);
  });

  test(`${provider}: a token endpoint that echoes a refresh keeps the secret and refresh token out of the log and the API's error`, async (t) => {
    const { sandbox, tap, relay, browser } = await tappedSetup({ t, providers: [provider], sandboxOptions: { accessTtl: 2 }, relayOptions: { apiKey: true } });
    const cfg = sandbox.config[provider];
    const refreshToken = tap.issued[provider].at(-1).refresh_token;
    assert.ok(refreshToken, 'the connection holds a refresh token');
    tap.intercept((req) => (/token$/.test(req.path.split('?')[0]) && /refresh_token/.test(req.body) ? echo(req) : undefined));
    await sleep(2100);
    const logStart = relay.logs().length;
    const path = provider === 'keap' ? '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com' : '/proxy/jira/rest/api/3/myself';
    const res = await apiCall(relay.url, 'GET', path, { apiKey: relay.apiKey });
    assert.ok(res.status >= 400, `the refresh failed, so the call fails: ${res.status}`);
    assert.ok(tap.seen.some((r) => /refresh_token/.test(r.body)), 'a refresh was attempted');
    await sleep(200);
    const secrets = [['client secret', cfg.client_secret], ['refresh token', refreshToken],
      ['Basic credentials', basic(cfg.client_id, cfg.client_secret)]];
    const leaks = [
      ...findForms(res.body, secrets, 'the API error'),
      ...findForms(JSON.stringify(Object.fromEntries(res.headers)), secrets, 'the API error\'s headers'),
      ...findForms(relay.logs().slice(logStart).map((l) => l.line).join('\n'), secrets, 'the log'),
    ];
    assert.deepEqual(leaks, []);
    // And the page's view of the connection says nothing secret either.
    const conns = await browser.get('/api/connections', { headers: { 'X-Requested-With': 'keyrelay' } });
    assert.deepEqual(findForms(conns.body, secrets, '/api/connections'), []);
  });
}

test('an API answer that echoes the access token in passed-through headers and in encoded forms in its body reaches the caller redacted', async (t) => {
  const { tap, relay } = await tappedSetup({ t, providers: ['keap'], relayOptions: { apiKey: true } });
  const token = tap.issued.keap.at(-1).access_token;
  assert.ok(token);
  addSecret(token, 'the Keap access token');
  tap.intercept((req) => {
    if (!req.path.startsWith('/keap/crm/rest/v1/contacts')) return undefined;
    const auth = req.headers.authorization ?? '';
    const t = auth.replace(/^Bearer /, '');
    return {
      status: 429,
      headers: {
        'Content-Type': 'application/json',
        'Retry-After': `1 ${t}`,
        'x-keap-product-quota-available': auth,
        'x-keap-product-throttle-available': `${encodeURIComponent(t)}`,
        'x-keap-tenant-id': Buffer.from(t).toString('base64'),
      },
      body: JSON.stringify({ message: `quota for ${Buffer.from(t).toString('base64')} / ${[...t].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}` }),
    };
  });
  const res = await apiCall(relay.url, 'GET', '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com', { apiKey: relay.apiKey });
  const secrets = [['access token', token]];
  const headers = JSON.stringify(Object.fromEntries(res.headers));
  assert.deepEqual([...findForms(res.body, secrets, 'the body'), ...findForms(headers, secrets, 'the headers')], [],
    `status ${res.status}, headers ${headers}, body ${res.body.slice(0, 300)}`);
  // Passed-through headers are still passed through, with the token cut out.
  assert.ok(res.headers.get('x-keap-tenant-id') !== null, `x-keap-tenant-id is still passed through: ${headers}`);
  assert.ok(recorded.responses.length > 0);
});
