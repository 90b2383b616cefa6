// kr.oauth: the token endpoint's client authentication header (RFC 6749 §2.3.1) and token response parsing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { kr, isPlain } from './load.mjs';

const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');

test('basicAuthHeader form-urlencodes a secret with + / = % : before base64 (the forum case)', () => {
  // RFC 6749 §2.3.1 / Appendix B: "+" -> %2B, "/" -> %2F, "=" -> %3D, "%" -> %25, ":" -> %3A.
  const header = kr.oauth.basicAuthHeader('keyrelay-demo', 'a+b/c=d%e:f');
  assert.equal(header, `Basic ${b64('keyrelay-demo:a%2Bb%2Fc%3Dd%25e%3Af')}`);
  assert.equal(header, 'Basic a2V5cmVsYXktZGVtbzphJTJCYiUyRmMlM0RkJTI1ZSUzQWY=');
  assert.notEqual(header, `Basic ${b64('keyrelay-demo:a+b/c=d%e:f')}`, 'the naive header is what servers reject');
});

test('basicAuthHeader encodes a client id with a colon, spaces and non-ASCII text', () => {
  assert.equal(kr.oauth.basicAuthHeader('id:1', 'the secret'), `Basic ${b64('id%3A1:the+secret')}`);
  assert.equal(kr.oauth.basicAuthHeader('cliént', 's~._-'), `Basic ${b64('cli%C3%A9nt:s~._-')}`);
  assert.equal(kr.oauth.basicAuthHeader('', ''), `Basic ${b64(':')}`);
});

test('basicAuthHeader takes strings only', () => {
  assert.throws(() => kr.oauth.basicAuthHeader('id'), TypeError);
  assert.throws(() => kr.oauth.basicAuthHeader(null, 'secret'), TypeError);
});

test('parseTokenResponse reads a Keap token and names the account from its scope', () => {
  const body = '{"access_token":"Kz3qT7wQ1vXbYp9cLmN2rS4t","token_type":"bearer","expires_in":86400,' +
    '"refresh_token":"Rt8vH2kJ5nM1pQ4wE7yU0iO3","scope":"full|ab123.infusionsoft.com"}';
  const r = kr.oauth.parseTokenResponse(200, body);
  assert.deepEqual(r, {
    ok: true,
    token: {
      access_token: 'Kz3qT7wQ1vXbYp9cLmN2rS4t',
      refresh_token: 'Rt8vH2kJ5nM1pQ4wE7yU0iO3',
      expires_in: 86400,
      scope: 'full|ab123.infusionsoft.com',
      account: 'ab123.infusionsoft.com',
    },
  });
  assert.ok(isPlain(r));
});

test('parseTokenResponse reads an Atlassian token without an account, and expires_in given as a string', () => {
  const atlassian = kr.oauth.parseTokenResponse(200, JSON.stringify({
    access_token: 'eyJ.atl', refresh_token: 'rt-atl', expires_in: 3600, token_type: 'Bearer',
    scope: 'read:jira-user offline_access',
  }));
  assert.deepEqual(atlassian, {
    ok: true,
    token: { access_token: 'eyJ.atl', refresh_token: 'rt-atl', expires_in: 3600,
      scope: 'read:jira-user offline_access', account: '' },
  });
  const stringExpiry = kr.oauth.parseTokenResponse(200, '{"access_token":"a","token_type":"bearer","expires_in":"86400"}');
  assert.equal(stringExpiry.ok, true);
  assert.equal(stringExpiry.token.expires_in, 86400);
  assert.equal(stringExpiry.token.refresh_token, '', 'no refresh_token in the answer and no previous one');
});

test('parseTokenResponse gives each token endpoint failure its own error code', () => {
  const cases = [
    [400, '{"error":"invalid_grant","error_description":"Invalid refresh token"}', 'oauth.invalid_grant'],
    [401, '{"error":"invalid_client","error_description":"Unable to authenticate client"}', 'oauth.invalid_client'],
    [400, '{"error":"invalid_request","error_description":"Missing grant_type"}', 'oauth.invalid_request'],
    [401, '', 'oauth.unauthorized'],
    [502, '<html><head><title>502 Bad Gateway</title></head><body></body></html>', 'oauth.not_json'],
    [200, '{"token_type":"bearer","expires_in":3600}', 'oauth.missing_access_token'],
  ];
  for (const [status, body, code] of cases) {
    const r = kr.oauth.parseTokenResponse(status, body);
    assert.equal(r.ok, false, body);
    assert.deepEqual(Object.keys(r), ['ok', 'error']);
    assert.deepEqual(Object.keys(r.error), ['code', 'message', 'hint']);
    assert.equal(r.error.code, code, `HTTP ${status} ${body}`);
    assert.ok(r.error.hint.length > 20, `a hint for a person: ${code}`);
  }
});
