// Small DOM helpers. Text only: data from Keap, Jira or the relay never becomes HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function show(el, visible = true) { el.hidden = !visible; }

// The one-line status message at the top of the page ("Keap is connected.").
export function notice(text, kind = 'ok') {
  const el = $('#notice');
  el.textContent = text;
  el.dataset.kind = kind;
  show(el, !!text);
}

// A small button that puts `text` on the clipboard and says so for a moment.
export function copyButton(text, what) {
  const b = h('button', { type: 'button', class: 'btn btn-quiet btn-tiny copy', 'aria-label': `Copy ${what}` }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Copy failed';
    }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
  return b;
}

export function fullName(given, family) {
  return [given, family].filter(Boolean).join(' ');
}
