// kr.keap and kr.jira: requests for the relay's /proxy/{keap,jira}/... and the parsers of their answers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { kr, isPlain } from './load.mjs';

const JSON_HEADERS = { 'content-type': 'application/json;charset=UTF-8' };

test('keap.findContactsByEmail builds a GET for the relay with the CSRF header and the email encoded', () => {
  assert.deepEqual(kr.keap.findContactsByEmail('ada@example.com'), {
    method: 'GET',
    path: '/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com&limit=10',
    headers: { Accept: 'application/json', 'X-Requested-With': 'keyrelay' },
    body: '',
  });
  const tricky = kr.keap.findContactsByEmail('a+b&c=d@example.com');
  assert.equal(tricky.path, '/proxy/keap/crm/rest/v1/contacts?email=a%2Bb%26c%3Dd%40example.com&limit=10');
  assert.ok(isPlain(tricky));
});

test('keap.updateContactName builds the forum update (4393 -> Joe Bobertson) as a JSON PATCH', () => {
  const req = kr.keap.updateContactName(4393, 'Joe', 'Bobertson');
  assert.deepEqual(Object.keys(req), ['method', 'path', 'headers', 'body']);
  assert.equal(req.method, 'PATCH');
  assert.equal(req.path, '/proxy/keap/crm/rest/v1/contacts/4393');
  assert.deepEqual(req.headers, {
    Accept: 'application/json', 'Content-Type': 'application/json', 'X-Requested-With': 'keyrelay',
  });
  assert.deepEqual(JSON.parse(req.body), { given_name: 'Joe', family_name: 'Bobertson' });
  assert.equal(kr.keap.updateContactName('4393', 'Joe', 'Bobertson').path, '/proxy/keap/crm/rest/v1/contacts/4393');
  assert.deepEqual(JSON.parse(kr.keap.updateContactName(7, 'Zoë "Z"', '').body),
    { given_name: 'Zoë "Z"', family_name: '' });
});

test('keap.createContact builds the POST a "Create Keap contact" button sends through the relay', () => {
  const req = kr.keap.createContact('Grace', 'Hopper', 'grace@example.com');
  assert.equal(req.method, 'POST');
  assert.equal(req.path, '/proxy/keap/crm/rest/v1/contacts');
  assert.equal(req.headers['Content-Type'], 'application/json');
  assert.equal(req.headers['X-Requested-With'], 'keyrelay');
  assert.deepEqual(JSON.parse(req.body), {
    given_name: 'Grace', family_name: 'Hopper', email_addresses: [{ email: 'grace@example.com', field: 'EMAIL1' }],
  });
  assert.throws(() => kr.keap.createContact('Grace', 'Hopper'), /the email must be a string/);
});

test('keap.updateContactName refuses an id that is not a positive integer', () => {
  for (const id of [0, -1, 1.5, NaN, '12a', '', null, undefined, 2 ** 60]) {
    assert.throws(() => kr.keap.updateContactName(id, 'Joe', 'Bobertson'), TypeError, String(id));
  }
  assert.throws(() => kr.keap.updateContactName(1, 'Joe'), TypeError);
});

test('keap.parseContacts reads Keap v1 contacts into {id, given_name, family_name, emails}', () => {
  const body = JSON.stringify({
    contacts: [
      { id: 4393, given_name: 'Ben', family_name: 'Anderson', email_opted_in: true,
        email_addresses: [{ email: 'ben.anderson@example.com', field: 'EMAIL1' },
          { email: 'ben@work.example.com', field: 'EMAIL2' }] },
      { id: 5, given_name: 'Paul', family_name: 'Grover', email_addresses: [{ email: 'paul@example.com', field: 'EMAIL1' }],
        tag_ids: [91, 93], company: null },
    ],
    count: 2,
    next: 'https://api.infusionsoft.com/crm/rest/v1/contacts/?limit=10&offset=10',
  });
  const r = kr.keap.parseContacts(200, JSON_HEADERS, body);
  assert.deepEqual(r, {
    ok: true,
    contacts: [
      { id: 4393, given_name: 'Ben', family_name: 'Anderson',
        emails: ['ben.anderson@example.com', 'ben@work.example.com'] },
      { id: 5, given_name: 'Paul', family_name: 'Grover', emails: ['paul@example.com'] },
    ],
  });
  assert.ok(isPlain(r));
  assert.deepEqual(kr.keap.parseContacts(200, JSON_HEADERS, '{"contacts":[],"count":0}'), { ok: true, contacts: [] });
});

test('keap.parseContacts turns each failure into its own error code', () => {
  const cases = [
    [401, JSON_HEADERS, '{"fault":{"faultstring":"Access Token expired","detail":{"errorcode":"keymanagement.service.access_token_expired"}}}', 'keap.unauthorized'],
    [403, { 'content-type': 'text/plain' }, 'CORS origin denied', 'keap.forbidden'],
    [404, JSON_HEADERS, '{"message":"Contact not found"}', 'keap.not_found'],
    [429, { ...JSON_HEADERS, 'retry-after': '7' }, '{"code":"429","message":"Quota Exceeded","status":"Request Throttled","details":null}', 'keap.rate_limited'],
    [500, JSON_HEADERS, '{"message":"Internal Server Error"}', 'keap.http_error'],
    [200, { 'content-type': 'text/html' }, '<html><head><title>Maintenance</title></head><body></body></html>', 'keap.not_json'],
    [200, JSON_HEADERS, '{"people":[]}', 'keap.unexpected_shape'],
  ];
  for (const [status, headers, body, code] of cases) {
    const r = kr.keap.parseContacts(status, headers, body);
    assert.equal(r.ok, false, body);
    assert.deepEqual(Object.keys(r), ['ok', 'error']);
    assert.equal(r.error.code, code, `HTTP ${status} ${body}`);
    assert.ok(r.error.message.length > 0 && r.error.hint.length > 0, code);
  }
});

test('jira.searchUsers builds a GET for the relay\'s Jira Cloud v3 user search', () => {
  assert.deepEqual(kr.jira.searchUsers('grace@example.com'), {
    method: 'GET',
    path: '/proxy/jira/rest/api/3/user/search?query=grace%40example.com&maxResults=50',
    headers: { Accept: 'application/json', 'X-Requested-With': 'keyrelay' },
    body: '',
  });
});

test('jira.parseUsers reads users, with null for an email the user hides, and no caveat when some are found', () => {
  const body = JSON.stringify([
    { accountId: '5b10ac8d82e05b22cc7d4ef5', accountType: 'atlassian', emailAddress: 'ada@example.com',
      displayName: 'Ada Lovelace', active: true, timeZone: 'Europe/London' },
    { accountId: '557058:f58131cb-b67d-43c7-b30d-6b58d40bd077', accountType: 'atlassian',
      displayName: 'Private User', active: true },
    { accountId: 'qm:a1b2:0123', accountType: 'customer', emailAddress: 'customer@example.com',
      displayName: 'Portal Customer', active: false },
  ]);
  const r = kr.jira.parseUsers(200, JSON_HEADERS, body, 'ada@example.com');
  assert.deepEqual(r, {
    ok: true,
    users: [
      { accountId: '5b10ac8d82e05b22cc7d4ef5', displayName: 'Ada Lovelace', emailAddress: 'ada@example.com', active: true,
        accountType: 'atlassian', match: 'exact' },
      { accountId: '557058:f58131cb-b67d-43c7-b30d-6b58d40bd077', displayName: 'Private User', emailAddress: null, active: true,
        accountType: 'atlassian', match: 'email_hidden' },
      { accountId: 'qm:a1b2:0123', displayName: 'Portal Customer', emailAddress: 'customer@example.com', active: false,
        accountType: 'customer', match: 'other_email' },
    ],
  });
  assert.equal('caveat' in r, false);
  assert.ok(isPlain(r));
});

test('jira.parseUsers calls a user exact only for the searched email, ignoring case and surrounding spaces', () => {
  const body = JSON.stringify([{ accountId: 'a1', displayName: 'Ada Lovelace', emailAddress: 'ada@example.com', active: true }]);
  const match = (email) => kr.jira.parseUsers(200, JSON_HEADERS, body, email).users[0].match;
  assert.equal(match('ada@example.com'), 'exact');
  assert.equal(match('  ADA@Example.com '), 'exact');
  assert.equal(match('ada@example.co'), 'other_email', 'Jira matched a prefix');
  assert.equal(match('ada@example'), 'other_email', 'Jira matched a prefix');
  assert.throws(() => kr.jira.parseUsers(200, JSON_HEADERS, body), /the searched email must be a string/);
});

test('jira.parseUsers adds the Browse-users caveat to an empty result', () => {
  const r = kr.jira.parseUsers(200, JSON_HEADERS, '[]', 'ada@example.com');
  assert.deepEqual(Object.keys(r), ['ok', 'users', 'caveat']);
  assert.deepEqual(r.users, []);
  assert.match(r.caveat, /Browse users and groups/);
});

test('jira.parseUsers turns each failure into its own error code', () => {
  const cases = [
    [401, JSON_HEADERS, '{"errorMessages":["You are not authorized to perform this action."],"errors":{}}', 'jira.unauthorized'],
    [403, { 'content-type': 'text/plain' }, 'XSRF check failed', 'jira.forbidden'],
    [404, JSON_HEADERS, '{"errorMessages":["Site not found"],"errors":{}}', 'jira.not_found'],
    [429, { ...JSON_HEADERS, 'retry-after': '30' }, '{"errorMessages":["Rate limit exceeded."]}', 'jira.rate_limited'],
    [500, JSON_HEADERS, '{"errorMessages":["Internal server error"]}', 'jira.http_error'],
    [200, { 'content-type': 'text/html' }, '<html><body>Atlassian Maintenance</body></html>', 'jira.not_json'],
    [200, JSON_HEADERS, '{"users":"nope"}', 'jira.unexpected_shape'],
  ];
  for (const [status, headers, body, code] of cases) {
    const r = kr.jira.parseUsers(status, headers, body, 'ada@example.com');
    assert.equal(r.ok, false, body);
    assert.equal(r.error.code, code, `HTTP ${status} ${body}`);
    assert.ok(r.error.message.length > 0 && r.error.hint.length > 0, code);
  }
  assert.match(kr.jira.parseUsers(401, JSON_HEADERS,
    '{"errorMessages":["You are not authorized to perform this action."],"errors":{}}', 'ada@example.com').error.message,
  /not authorized to perform this action/, 'the message carries Jira\'s errorMessages');
});

test('headers may be given in any case, as arrays, or not at all', () => {
  const body = '{"contacts":[{"id":1,"given_name":"A","family_name":"B","email_addresses":[]}]}';
  for (const headers of [{ 'Content-Type': 'application/json' }, { 'content-type': ['application/json'] }, {}, undefined, null]) {
    assert.deepEqual(kr.keap.parseContacts(200, headers, body),
      { ok: true, contacts: [{ id: 1, given_name: 'A', family_name: 'B', emails: [] }] });
  }
});
