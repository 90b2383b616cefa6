// The last few emails looked up, kept in this browser's localStorage (never sent anywhere), with a way to clear them.
import { $, h, show } from './dom.js';

const KEY = 'keyrelay.recent-lookups';
const KEEP = 8;

export function recentLookups() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || '[]');
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string').slice(0, KEEP) : [];
  } catch {
    return [];   // storage blocked or garbled: no list, nothing breaks
  }
}

export function remember(email) {
  const list = [email, ...recentLookups().filter((e) => e.toLowerCase() !== email.toLowerCase())].slice(0, KEEP);
  try { localStorage.setItem(KEY, JSON.stringify(list)); } catch { /* storage full or blocked */ }
}

export function forget() {
  try { localStorage.removeItem(KEY); } catch { /* nothing to clear */ }
}

export function renderRecent() {
  const box = $('#recent');
  const list = recentLookups();
  box.replaceChildren();
  show(box, list.length > 0);
  if (!list.length) return;
  box.append(
    h('span', { class: 'muted recent-label' }, 'Recent:'),
    ...list.map((e) => h('button', { type: 'button', class: 'chip', 'data-email': e }, e)),
    h('button', { type: 'button', class: 'link recent-clear', 'data-role': 'clear-recent' }, 'Clear'));
}
