// "Migrate an XML-RPC call", the second mode of the Explain panel: a pasted methodCall shown as the Keap REST
// calls keyrelay's bridge makes for it (kr.keap.bridgePlan, the core's keap::bridge::describe, in this tab).
// Everything pasted is shown as text: nothing from the call ever becomes HTML.
import { $, h, show } from './dom.js';
import { state } from './state.js';

// Paths in a plan are relative to Keap's API host; through the relay they sit under /proxy/keap (docs/api.md).
const KEAP_API = 'https://api.infusionsoft.com';

const methodCall = (name, params) => '<?xml version="1.0"?>\n<methodCall>\n' +
  `  <methodName>${name}</methodName>\n  <params>\n` +
  params.map((p) => `    <param><value>${p}</value></param>\n`).join('') + '  </params>\n</methodCall>\n';
const str = (s) => `<string>${s}</string>`;
const member = (name, value) => `<member><name>${name}</name><value>${value}</value></member>`;

export const EXAMPLES = {
  dupcheck: methodCall('ContactService.addWithDupCheck', [
    str('YOUR_API_KEY'),
    `<struct>${member('FirstName', str('Ben'))}${member('LastName', str('Anderson'))}` +
      `${member('Email', str('ben.anderson@example.com'))}</struct>`,
    str('Email'),
  ]),
  query: methodCall('DataService.query', [
    str('YOUR_API_KEY'), str('Contact'), '<int>100</int>', '<int>0</int>',
    `<struct>${member('Email', str('ben%'))}</struct>`,
    `<array><data>${['Id', 'FirstName', 'LastName', 'Email'].map((f) => `<value>${str(f)}</value>`).join('')}` +
      '</data></array>',
  ]),
  echo: methodCall('DataService.echo', [str('hello')]),
};

// "filter=email%3D%3Dben%40example.com&page_size=1" -> [["filter", "email==ben@example.com"], ["page_size", "1"]]
function queryOf(path) {
  const at = path.indexOf('?');
  return at < 0 ? [] : [...new URLSearchParams(path.slice(at + 1))];
}

function prettyBody(body) {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function callItem(call) {
  const query = queryOf(call.path);
  return h('li', { class: 'migration-call' },
    call.when ? h('p', { class: 'migration-when' }, call.when) : null,
    h('pre', { class: 'migration-request' }, h('code', {}, `${call.method} ${call.path}`)),
    query.length ? h('dl', { class: 'migration-query' },
      query.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, v))])) : null,
    call.body ? [h('p', { class: 'migration-label' }, 'JSON body'),
      h('pre', { class: 'migration-body' }, h('code', {}, prettyBody(call.body)))] : null);
}

function migrate() {
  const out = $('#migrate-result');
  const err = $('#migrate-error');
  const text = $('#migrate-call').value;
  if (!text.trim()) {
    show(out, false);
    err.textContent = 'Paste an XML-RPC call first (the <methodCall> your code sends), or pick an example.';
    show(err);
    $('#migrate-call').focus();
    return;
  }
  const plan = state.kr.keap.bridgePlan(text);
  if (!plan.ok) {
    show(out, false);
    // The fault Keap's XML-RPC API (and the bridge) answers this call with.
    err.textContent = `This call gets an XML-RPC fault, not a REST call: ${plan.fault.string} ` +
      `(faultCode ${plan.fault.code})`;
    show(err);
    return;
  }
  show(err, false);
  if (plan.calls.length === 0) {
    out.replaceChildren(
      h('p', { class: 'migration-summary' }, 'No REST call: this one is answered by the bridge itself.'),
      h('p', { class: 'muted' }, 'DataService.echo sends back what it was given; nothing reaches Keap.'));
  } else {
    out.replaceChildren(
      h('p', { class: 'migration-summary' },
        plan.calls.length === 1 ? 'One REST call:' : `${plan.calls.length} REST calls; the later ones depend on ` +
          'what Keap answers:'),
      h('ol', { class: 'migration-calls' }, plan.calls.map(callItem)),
      h('p', { class: 'muted' }, 'Paths are on ', h('code', {}, KEAP_API), '; through the relay, put ',
        h('code', {}, '/proxy/keap'), ' in front of them. ', h('code', {}, '{id}'), ' and ',
        h('code', {}, '{next_page_token}'), ' come from the answer before.'));
  }
  show(out);
}

function setMode(mode) {
  const migrating = mode === 'migrate';
  show($('#explain-form'), !migrating);
  show($('#migrate-form'), migrating);
  if (migrating) show($('#explain-result'), false);
  else show($('#migrate-result'), false);
}

export function wireMigrate() {
  $('#migrate-call').placeholder = EXAMPLES.dupcheck;
  for (const radio of document.querySelectorAll('input[name="explain-mode"]')) {
    radio.addEventListener('change', () => { if (radio.checked) setMode(radio.value); });
  }
  $('#migrate-form').addEventListener('submit', (e) => { e.preventDefault(); migrate(); });
  $('#migrate-call').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); migrate(); }
  });
  for (const b of document.querySelectorAll('[data-migrate-example]')) {
    b.addEventListener('click', () => {
      $('#migrate-call').value = EXAMPLES[b.dataset.migrateExample];
      migrate();
    });
  }
}
