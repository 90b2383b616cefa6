// The "Explain a response" panel: works without signing in, everything runs in this tab (the core's diagnose()).
// It takes the separate fields, or a whole pasted response as `curl -i` prints it: status line, headers, a blank
// line, the body (RFC 9112 §2.1).
import { $, h, show } from './dom.js';
import { state } from './state.js';

const EXAMPLES = {
  html: {
    status: 502, expect: 'xmlrpc', headers: 'Content-Type: text/html; charset=utf-8',
    body: '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>Bad Gateway</h1>\n' +
      '<p>The server returned an invalid or incomplete response.</p>\n</body>\n</html>\n',
  },
  cors: { status: 403, expect: 'json', headers: 'Content-Type: text/plain', body: 'CORS origin denied' },
  grant: {
    status: 400, expect: 'token', headers: 'Content-Type: application/json;charset=UTF-8',
    body: '{"error":"invalid_grant","error_description":"Invalid refresh token"}',
  },
};

function parseHeaderLines(text) {
  const headers = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

const STATUS_LINE = /^HTTP\/\d(?:\.\d)?\s+(\d{3})\b[^\r\n]*/;

// A whole response pasted into the body: {status, headers, body}, or null when the text does not start with a status
// line. curl -i may print interim 1xx responses (100 Continue) first: the final one is the one explained.
export function parseRawResponse(text) {
  let rest = text.replace(/^\s+/, '');
  let m = STATUS_LINE.exec(rest);
  if (!m) return null;
  for (;;) {
    const split = /\r?\n\r?\n/.exec(rest);
    const head = split ? rest.slice(0, split.index) : rest;
    const body = split ? rest.slice(split.index + split[0].length) : '';
    const status = Number(m[1]);
    const next = STATUS_LINE.exec(body);
    if (status >= 100 && status < 200 && next) {
      rest = body;
      m = next;
      continue;
    }
    return { status, headers: parseHeaderLines(head.slice(m[0].length)), body };
  }
}

function validStatus(text) {
  const t = text.trim();
  if (!/^\d{3}$/.test(t)) return null;
  const n = Number(t);
  return n >= 100 && n <= 599 ? n : null;
}

function explain() {
  const out = $('#explain-result');
  const err = $('#explain-error');
  const raw = parseRawResponse($('#explain-body').value);
  let input;
  if (raw) {
    input = raw;
  } else {
    const statusText = $('#explain-status').value;
    const status = validStatus(statusText);
    if (status === null) {
      show(out, false);
      err.textContent = `The status must be a number from 100 to 599, like 502; “${statusText.trim()}” is not one. ` +
        'Or paste the whole response (curl -i output) into the body.';
      show(err);
      $('#explain-status').focus();
      return;
    }
    input = { status, headers: parseHeaderLines($('#explain-headers').value), body: $('#explain-body').value };
  }
  show(err, false);
  const d = state.kr.diagnose({ ...input, expect: $('#explain-expect').value });
  out.dataset.status = d.code === 'ok' ? 'ok' : 'problem';
  out.replaceChildren(
    raw ? h('p', { class: 'diagnosis-source' },
      `Read as a whole response: HTTP ${raw.status}, ${Object.keys(raw.headers).length} header` +
      `${Object.keys(raw.headers).length === 1 ? '' : 's'}, ${raw.body.length} characters of body.`) : null,
    h('p', { class: 'diagnosis-summary' }, d.summary),
    d.hint ? h('p', { class: 'diagnosis-hint' }, d.hint) : null,
    h('p', { class: 'problem-code' }, 'Diagnosis code ', h('code', {}, d.code)));
  show(out);
}

function fillExample(name) {
  const ex = EXAMPLES[name];
  $('#explain-status').value = ex.status;
  $('#explain-expect').value = ex.expect;
  $('#explain-headers').value = ex.headers;
  $('#explain-body').value = ex.body;
  explain();
}

export function wireExplain() {
  $('#explain-form').addEventListener('submit', (e) => { e.preventDefault(); explain(); });
  $('#explain-body').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); explain(); }
  });
  for (const b of document.querySelectorAll('[data-example]')) {
    b.addEventListener('click', () => fillExample(b.dataset.example));
  }
}
