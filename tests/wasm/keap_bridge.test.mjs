// kr.keap.bridgePlan: the REST calls the relay's XML-RPC bridge makes for a pasted methodCall.
import test from 'node:test';
import assert from 'node:assert/strict';
import { kr, isPlain } from './load.mjs';

const call = (method, params) => kr.xmlrpc.encodeCall(method, params);

test('keap.bridgePlan shows ContactService.load as one GET of the contact with the REST members asked for', () => {
  const plan = kr.keap.bridgePlan(call('ContactService.load', ['key', 4393, ['Id', 'Email', 'Groups']]));
  assert.deepEqual(plan, {
    ok: true,
    calls: [{ method: 'GET', path: '/crm/rest/v2/contacts/4393?fields=id%2Cemail_addresses%2Ctag_ids', body: '', when: '' }],
  });
  assert.ok(isPlain(plan));
});

test('keap.bridgePlan shows addWithDupCheck as a search, then a create or an update', () => {
  const plan = kr.keap.bridgePlan(call('ContactService.addWithDupCheck',
    ['key', { FirstName: 'Zoë', Email: 'zoe@example.com' }, 'Email']));
  assert.equal(plan.ok, true);
  assert.deepEqual(plan.calls.map((c) => [c.method, c.when]), [
    ['GET', ''], ['POST', 'when no contact has that email'], ['PATCH', 'when contact {id} has that email']]);
  assert.equal(plan.calls[0].path,
    '/crm/rest/v2/contacts?filter=email%3D%3Dzoe%40example.com&fields=id%2Cemail_addresses&page_size=1');
  assert.deepEqual(JSON.parse(plan.calls[1].body),
    { given_name: 'Zoë', email_addresses: [{ email: 'zoe@example.com', field: 'EMAIL1' }] });
  assert.equal(plan.calls[2].path, '/crm/rest/v2/contacts/{id}?update_mask=given_name%2Cemail_addresses');
});

test('keap.bridgePlan answers echo with no call and an untranslatable call with the bridge fault', () => {
  assert.deepEqual(kr.keap.bridgePlan(call('DataService.echo', ['hi'])), { ok: true, calls: [] });
  assert.deepEqual(kr.keap.bridgePlan(call('ContactService.merge', ['key', 1, 2])), {
    ok: false,
    fault: { code: 0, string: 'No such handler: ContactService.merge (the keyrelay bridge does not translate it; use /crm/rest/v2/contacts)' },
  });
  const notXml = kr.keap.bridgePlan('{"method":"ContactService.load"}');
  assert.equal(notXml.ok, false);
  assert.match(notXml.fault.string, /^Failed to parse XML-RPC request: /);
  assert.throws(() => kr.keap.bridgePlan(42), TypeError);
});
