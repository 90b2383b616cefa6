// kr.diagnose: what came back, why, and what to do, for the responses that confused the forum's developer.
import test from 'node:test';
import assert from 'node:assert/strict';
import { kr, isPlain } from './load.mjs';

const JSON_HEADERS = { 'content-type': 'application/json' };
const HTML_502 = '<!DOCTYPE html>\n<html>\n<head>\n  <title>502 Bad Gateway</title>\n</head>\n<body>\n' +
  '<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n';

function diagnose(status, headers, body, expect) {
  const d = kr.diagnose({ status, headers, body, expect });
  assert.deepEqual(Object.keys(d), ['code', 'summary', 'hint'], 'exactly {code, summary, hint}');
  assert.ok(isPlain(d));
  return d;
}

test('diagnose names an HTML error page where XML-RPC was expected, with its title', () => {
  const d = diagnose(502, { 'Content-Type': 'text/html' }, HTML_502, 'xmlrpc');
  assert.equal(d.code, 'html_page');
  assert.match(d.summary, /502 Bad Gateway/);
  assert.match(d.summary, /XML-RPC/);
  assert.ok(d.hint.length > 40);
});

test('diagnose explains Keap\'s 403 "CORS origin denied" and points at the relay', () => {
  const d = diagnose(403, { 'Content-Type': 'text/plain' }, 'CORS origin denied', 'json');
  assert.equal(d.code, 'cors_origin_denied');
  assert.match(d.summary, /CORS origin denied/);
  assert.match(d.hint, /\/proxy\//);
});

test('diagnose reads Retry-After on a 429', () => {
  const d = diagnose(429, { ...JSON_HEADERS, 'Retry-After': '7' }, '{"code":"429","message":"Quota Exceeded"}', 'json');
  assert.equal(d.code, 'rate_limited');
  assert.match(d.hint, /7 seconds/);
});

test('diagnose tells token endpoint failures apart', () => {
  assert.equal(diagnose(401, JSON_HEADERS, '{"error":"invalid_client"}', 'token').code, 'token_unauthorized');
  const grant = diagnose(400, JSON_HEADERS, '{"error":"invalid_grant","error_description":"Invalid refresh token"}', 'token');
  assert.equal(grant.code, 'oauth_error');
  assert.match(grant.summary, /invalid_grant/);
  assert.equal(diagnose(200, JSON_HEADERS, '{"access_token":"a","expires_in":5}', 'token').code, 'ok');
});

test('diagnose covers the XML-RPC failure modes', () => {
  const fault = '<?xml version="1.0"?><methodResponse><fault><value><struct>' +
    '<member><name>faultCode</name><value><i4>2</i4></value></member>' +
    '<member><name>faultString</name><value>[InvalidConfig]Invalid key</value></member></struct></value></fault></methodResponse>';
  const xml = { 'content-type': 'text/xml' };
  assert.equal(diagnose(200, xml, fault, 'xmlrpc').code, 'xmlrpc_fault');
  assert.equal(diagnose(200, xml, '', 'xmlrpc').code, 'empty_body');
  assert.equal(diagnose(200, xml, '<?xml version="1.0"?><methodResponse><params><param><value>1</value>', 'xmlrpc').code,
    'truncated_xml');
  assert.equal(diagnose(200, xml,
    '<?xml version="1.0"?><methodResponse><params><param><value>1</value></param></params></methodResponse>', 'xmlrpc').code,
  'ok');
});

test('diagnose recognizes gateway faults, HTTP 596 and server errors', () => {
  assert.equal(diagnose(401, JSON_HEADERS,
    '{"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}}',
    'json').code, 'gateway_fault');
  assert.equal(diagnose(596, {}, '', 'json').code, 'http_596');
  assert.equal(diagnose(500, JSON_HEADERS, '{"message":"boom"}', 'json').code, 'server_error');
  assert.equal(diagnose(200, JSON_HEADERS, '{"contacts":[]}', 'json').code, 'ok');
});

test('diagnose treats a missing or unknown expect as JSON', () => {
  assert.equal(diagnose(200, JSON_HEADERS, 'not json', 'nonsense').code, 'not_json');
  assert.equal(kr.diagnose({ status: 200, headers: JSON_HEADERS, body: 'not json' }).code, 'not_json');
});

test('diagnose takes an object', () => {
  assert.throws(() => kr.diagnose(), TypeError);
  assert.throws(() => kr.diagnose('HTTP/1.1 502'), TypeError);
});
