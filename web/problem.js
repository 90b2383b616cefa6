// A failed call, told to the person who made it: a plain heading that names the provider and what to do, a Try
// again button, and the diagnosis (code, message, hint) behind "Details" for whoever runs the relay.
import { h } from './dom.js';

// Addresses inside messages are the relay's business, never the page's: an upstream URL can be an internal one.
const ADDRESS = /\bhttps?:\/\/[^\s"'<>)\]]+/gi;
export function scrub(text) {
  return String(text || '').replace(ADDRESS, '(address hidden)');
}

function retryAfterSeconds(headers) {
  const v = headers && (headers['retry-after'] || headers['Retry-After']);
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

// The relay wraps an unusable upstream answer (an HTML error page, a gateway fault) as 502 upstream.<diagnosis>;
// the diagnosis summary starts with the provider's own status ("HTTP 503 Service Unavailable with ...").
function providerStatus(p) {
  const code = (p.error && p.error.code) || '';
  const m = /^HTTP (\d{3})\b/.exec((p.error && p.error.message) || '');
  return code.startsWith('upstream.') && m ? Number(m[1]) : p.status;
}

// {kind: 'timeout' | 'network' | 'http', status, headers, error: {code, message, hint}} -> the heading.
export function headline(name, p0) {
  const p = { ...p0, status: providerStatus(p0) };
  const code = (p.error && p.error.code) || '';
  if (p.kind === 'timeout') return `${name} did not answer within ${p.seconds} s. Try again in a minute.`;
  if (p.kind === 'network') return 'The relay did not answer. Check your connection and that the relay is running, then try again.';
  if (code === 'upstream.timeout') return `${name} is not answering. Try again in a minute.`;
  if (['upstream.unreachable', 'upstream.connection_reset', 'upstream.tls', 'upstream.error'].includes(code)) {
    return `The relay could not reach ${name}. Try again in a minute.`;
  }
  if (code === 'connection.refresh_failed') return `The relay could not renew ${name} access. Try again in a minute.`;
  if (p.status === 429 || /rate_limited/.test(code)) {
    const s = retryAfterSeconds(p.headers);
    return `${name} is busy: too many requests. Try again ${s ? `in ${s} s` : 'in a minute'}.`;
  }
  if (code === 'jira.forbidden') {
    return 'Jira refused the search: the connected account lacks the "Browse users and groups" permission. ' +
      'Ask a Jira admin to grant it, then reconnect Jira.';
  }
  if (p.status === 401 || p.status === 403) return `${name} refused the request (HTTP ${p.status}). Try reconnecting ${name}.`;
  if (p.status >= 500) return `${name} is having problems (HTTP ${p.status}). Try again in a minute.`;
  if (p.status >= 200 && p.status < 300) return `${name} sent an answer the page could not read. Try again in a minute.`;
  return `${name} answered with an error (HTTP ${p.status}). Try again; if it persists, see Details.`;
}

// The problem box. onRetry: what Try again does (absent: no button).
export function problemView(name, p, onRetry, diagnosis) {
  const details = h('details', { class: 'problem-more' },
    h('summary', {}, 'Details'),
    p.error && p.error.message ? h('p', {}, scrub(p.error.message)) : null,
    p.error && p.error.hint ? h('p', { class: 'problem-hint' }, scrub(p.error.hint)) : null,
    p.error && p.error.code ? h('p', { class: 'problem-code' }, 'Diagnosis code ', h('code', {}, p.error.code)) : null);
  if (diagnosis && diagnosis.code !== 'ok' && diagnosis.summary && diagnosis.summary !== (p.error && p.error.message)) {
    details.append(
      h('p', {}, scrub(diagnosis.summary)),
      diagnosis.hint ? h('p', { class: 'problem-hint' }, scrub(diagnosis.hint)) : null,
      h('p', { class: 'problem-code' }, 'Response diagnosis ', h('code', {}, diagnosis.code)));
  }
  return h('div', { class: 'problem' },
    h('p', { class: 'problem-title' }, headline(name, p)),
    onRetry ? h('button', { type: 'button', class: 'btn btn-secondary btn-small', onclick: onRetry }, 'Try again') : null,
    details);
}
