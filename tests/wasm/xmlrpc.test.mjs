// kr.xmlrpc: the JS -> XML-RPC type mapping of encodeCall, and decodeResponse's three outcomes
// (value, fault, error), including the forum's HTML page that broke a .NET XML-RPC client.
import test from 'node:test';
import assert from 'node:assert/strict';
import { kr, isPlain } from './load.mjs';

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';
const param = (value) => `<param><value>${value}</value></param>`;
const call = (method, ...values) =>
  `${HEAD}<methodCall><methodName>${method}</methodName><params>${values.map(param).join('')}</params></methodCall>\n`;
const response = (value) =>
  `<?xml version="1.0"?><methodResponse><params><param><value>${value}</value></param></params></methodResponse>`;

test('encodeCall writes the forum ContactService.update call with an int id and a struct', () => {
  assert.equal(
    kr.xmlrpc.encodeCall('ContactService.update', [4393, { FirstName: 'Joe', LastName: 'Bobertson' }]),
    call('ContactService.update', '<int>4393</int>',
      '<struct><member><name>FirstName</name><value><string>Joe</string></value></member>' +
      '<member><name>LastName</name><value><string>Bobertson</string></value></member></struct>'));
});

test('encodeCall maps each JS type to its XML-RPC type', () => {
  const cases = [
    [7, '<int>7</int>'],
    [-2147483648, '<int>-2147483648</int>'],
    [1.5, '<double>1.5</double>'],
    [true, '<boolean>1</boolean>'],
    [false, '<boolean>0</boolean>'],
    ['text', '<string>text</string>'],
    ['', '<string></string>'],
    [null, '<nil/>'],
    [new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), '<dateTime.iso8601>20260102T03:04:05</dateTime.iso8601>'],
    [new Uint8Array([0, 1, 2, 250, 255]), '<base64>AAEC+v8=</base64>'],
    [[1, 'two'], '<array><data><value><int>1</int></value><value><string>two</string></value></data></array>'],
    [[], '<array><data></data></array>'],
    [{}, '<struct></struct>'],
  ];
  for (const [js, xml] of cases) {
    assert.equal(kr.xmlrpc.encodeCall('m', [js]), call('m', xml), `for ${String(js)}`);
  }
});

test('encodeCall writes integers beyond 32 bits as i8, and non-integers as double', () => {
  assert.match(kr.xmlrpc.encodeCall('m', [2 ** 40]), /<value><i8>1099511627776<\/i8><\/value>/);
  assert.match(kr.xmlrpc.encodeCall('m', [0.1]), /<value><double>0\.1<\/double><\/value>/);
  assert.match(kr.xmlrpc.encodeCall('m', [2 ** 60]), /<double>/, 'past 2^53 a number is no longer an exact integer');
});

test('encodeCall escapes markup in strings and member names', () => {
  const xml = kr.xmlrpc.encodeCall('m', [{ 'a<b': 'x & <y> "z"' }]);
  assert.match(xml, /<name>a&lt;b<\/name>/);
  assert.match(xml, /<string>x &amp; &lt;y&gt; (&quot;|")z(&quot;|")<\/string>/);
  assert.doesNotMatch(xml, /<y>/);
});

test('encodeCall keeps UTF-8 text intact', () => {
  assert.match(kr.xmlrpc.encodeCall('m', ['Zoë Ångström 東京']), /<string>Zoë Ångström 東京<\/string>/);
});

test('encodeCall leaves out struct members that are undefined', () => {
  assert.equal(kr.xmlrpc.encodeCall('m', [{ a: 1, b: undefined }]),
    call('m', '<struct><member><name>a</name><value><int>1</int></value></member></struct>'));
});

test('encodeCall with no params writes an empty params list', () => {
  assert.equal(kr.xmlrpc.encodeCall('DataService.getUserInfo'), call('DataService.getUserInfo'));
  assert.equal(kr.xmlrpc.encodeCall('DataService.getUserInfo', []), call('DataService.getUserInfo'));
});

test('encodeCall throws a TypeError naming the value that has no XML-RPC type', () => {
  const cyclic = {};
  cyclic.self = cyclic;
  const cases = [
    [[undefined], /params\[0\] is undefined/],
    [[1, { Email: () => 1 }], /params\[1\]\.Email is a function/],
    [[[Symbol('s')]], /params\[0\]\[0\] is a symbol/],
    [[NaN], /params\[0\] is NaN/],
    [[Infinity], /params\[0\] is Infinity/],
    [[new Date('not a date')], /params\[0\] is an invalid Date/],
    [[new Date(Date.UTC(10000, 0, 1))], /params\[0\] is a Date in the year 10000/],
    [[cyclic], /nested more than 64 levels/],
  ];
  for (const [params, message] of cases) {
    assert.throws(() => kr.xmlrpc.encodeCall('m', params), (e) => e instanceof TypeError && message.test(e.message));
  }
  assert.throws(() => kr.xmlrpc.encodeCall('m', { a: 1 }), TypeError);
  assert.throws(() => kr.xmlrpc.encodeCall(42, []), TypeError);
});

test('decodeResponse turns each XML-RPC type into its JS value', () => {
  const r = kr.xmlrpc.decodeResponse(response(
    '<struct>' +
    '<member><name>Id</name><value><i4>4393</i4></value></member>' +
    '<member><name>Big</name><value><i8>1099511627776</i8></value></member>' +
    '<member><name>Name</name><value>untyped is a string</value></member>' +
    '<member><name>Score</name><value><double>2.5</double></value></member>' +
    '<member><name>Active</name><value><boolean>1</boolean></value></member>' +
    '<member><name>When</name><value><dateTime.iso8601>20260102T03:04:05</dateTime.iso8601></value></member>' +
    '<member><name>Blob</name><value><base64>AAEC+v8=</base64></value></member>' +
    '<member><name>Nothing</name><value><nil/></value></member>' +
    '<member><name>List</name><value><array><data><value><int>1</int></value><value><string>b</string></value></data></array></value></member>' +
    '</struct>'));
  assert.deepEqual(r, {
    ok: true,
    value: {
      Id: 4393,
      Big: 1099511627776,
      Name: 'untyped is a string',
      Score: 2.5,
      Active: true,
      When: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
      Blob: new Uint8Array([0, 1, 2, 250, 255]),
      Nothing: null,
      List: [1, 'b'],
    },
  });
  assert.ok(isPlain(r));
});

test('decodeResponse reads every dateTime form the decoder accepts as the instant it names', () => {
  const cases = [
    ['19980717T14:08:55', Date.UTC(1998, 6, 17, 14, 8, 55)],
    ['1998-07-17T14:08:55', Date.UTC(1998, 6, 17, 14, 8, 55)],
    ['19980717T140855', Date.UTC(1998, 6, 17, 14, 8, 55)],
    ['19980717T14:08:55.25Z', Date.UTC(1998, 6, 17, 14, 8, 55, 250)],
    ['19980717T14:08:55-05:00', Date.UTC(1998, 6, 17, 19, 8, 55)],
    ['19980717T14:08:55+0130', Date.UTC(1998, 6, 17, 12, 38, 55)],
    ['00500101T00:00:00', new Date(0).setUTCFullYear(50, 0, 1)],
  ];
  for (const [written, ms] of cases) {
    const r = kr.xmlrpc.decodeResponse(response(`<dateTime.iso8601>${written}</dateTime.iso8601>`));
    assert.equal(r.ok, true, written);
    assert.ok(r.value instanceof Date, written);
    assert.equal(r.value.getTime(), ms, written);
  }
  const y50 = kr.xmlrpc.decodeResponse(response('<dateTime.iso8601>00500101T00:00:00</dateTime.iso8601>'));
  assert.equal(y50.value.getUTCFullYear(), 50, 'a two-digit year is not shifted into the 1900s');
});

test('decodeResponse makes a member named __proto__ an own property, never the prototype', () => {
  const r = kr.xmlrpc.decodeResponse(response(
    '<struct><member><name>__proto__</name><value><struct><member><name>polluted</name>' +
    '<value>yes</value></member></struct></value></member></struct>'));
  assert.equal(r.ok, true);
  assert.equal(Object.getPrototypeOf(r.value), Object.prototype);
  assert.deepEqual(Object.keys(r.value), ['__proto__']);
  assert.equal(r.value.polluted, undefined);
  assert.equal({}.polluted, undefined);
});

test('decodeResponse returns a Keap fault as {ok:false, fault} with its code and string', () => {
  const body = '<?xml version="1.0" encoding="UTF-8"?><methodResponse><fault><value><struct>' +
    '<member><name>faultCode</name><value><i4>2</i4></value></member>' +
    '<member><name>faultString</name><value>[FailedLoginAttempt]Invalid username and/or password.</value></member>' +
    '</struct></value></fault></methodResponse>';
  assert.deepEqual(kr.xmlrpc.decodeResponse(body), {
    ok: false,
    fault: { code: 2, string: '[FailedLoginAttempt]Invalid username and/or password.' },
  });
});

test('decodeResponse of the HTML page that broke the forum\'s .NET client is not_method_response naming <html>', () => {
  for (const body of [
    '<!DOCTYPE html>\n<html>\n<head>\n  <title>502 Bad Gateway</title>\n</head>\n<body>\n' +
      '<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n',
    '<html><head><title>Service Unavailable</title></head><body><p>Try later</p></body></html>',
  ]) {
    const r = kr.xmlrpc.decodeResponse(body);
    assert.equal(r.ok, false);
    assert.deepEqual(Object.keys(r), ['ok', 'error']);
    assert.deepEqual(Object.keys(r.error), ['code', 'message', 'hint']);
    assert.equal(r.error.code, 'xmlrpc.not_method_response');
    assert.match(r.error.message, /<html>/);
    assert.match(r.error.hint, /HTML/);
  }
});

test('decodeResponse names each way a body is not XML-RPC with its own error code', () => {
  const cases = [
    ['', 'xmlrpc.empty'],
    ['  \n ', 'xmlrpc.empty'],
    ['<?xml version="1.0"?><!DOCTYPE methodResponse [<!ENTITY a "b">]><methodResponse/>', 'xmlrpc.doctype_refused'],
    ['<?xml version="1.0"?><methodResponse><params><param><value><int>1</int></value></param></params>',
      'xmlrpc.malformed'],
    ['<?xml version="1.0"?><methodCall><methodName>x</methodName></methodCall>', 'xmlrpc.not_method_response'],
    [response('<int>twelve</int>'), 'xmlrpc.invalid'],
    ['{"fault":{"faultstring":"Rate limit quota violation"}}', null],
  ];
  for (const [body, code] of cases) {
    const r = kr.xmlrpc.decodeResponse(body);
    assert.equal(r.ok, false, body);
    assert.ok(r.error, body);
    if (code) assert.equal(r.error.code, code, body);
    else assert.match(r.error.code, /^xmlrpc\./, body);
    assert.ok(r.error.message.length > 0 && r.error.hint.length > 0, body);
  }
});

test('decodeResponse refuses nesting deeper than the decoder limit', () => {
  const deep = '<array><data><value>'.repeat(100) + '<int>1</int>' + '</value></data></array>'.repeat(100);
  const r = kr.xmlrpc.decodeResponse(response(deep));
  assert.equal(r.ok, false);
  assert.equal(r.error.code, 'xmlrpc.too_deep');
});

test('decodeResponse takes only a string body', () => {
  assert.throws(() => kr.xmlrpc.decodeResponse(undefined), TypeError);
  assert.throws(() => kr.xmlrpc.decodeResponse(new Uint8Array([60])), TypeError);
});

test('a Date and bytes survive encodeCall and decodeResponse unchanged', () => {
  const when = new Date(Date.UTC(1998, 6, 17, 14, 8, 55));
  const bytes = new Uint8Array([104, 105, 0, 255]);
  const xml = kr.xmlrpc.encodeCall('m', [when, bytes]);
  const values = [...xml.matchAll(/<param><value>(.*?)<\/value><\/param>/g)].map((m) => m[1]);
  assert.deepEqual(kr.xmlrpc.decodeResponse(response(values[0])), { ok: true, value: when });
  assert.deepEqual(kr.xmlrpc.decodeResponse(response(values[1])), { ok: true, value: bytes });
});
