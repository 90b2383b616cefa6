// Deterministic inputs for the core-speed bench: the same bytes go to the native decoder, the Wasm
// decoder under node and Python's xmlrpc.client. Shaped like Keap's real answers (tests/fixtures/xmlrpc/
// query_contacts.xml, tests/fixtures/keap/v1_contacts_one.json), with escaped characters, CDATA and absent members.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const FIRST = ['Ada', 'Ben', 'Paul', 'Grace', 'Linus', 'Margaret', 'Alan', 'Barbara', 'Dennis', 'Frances', 'Ken',
  'Radia', 'John', 'Hedy', 'Edsger', 'Katherine', 'Tim', 'Sophie', 'Donald', 'Ida'];
const LAST = ['Lovelace', 'Anderson', 'Grover', 'Hopper', 'Torvalds', 'Hamilton', 'Turing', 'Liskov', 'Ritchie',
  'Allen', 'Thompson', 'Perlman', 'McCarthy', 'Lamarr', 'Dijkstra', 'Johnson', 'Berners-Lee', 'Wilson', 'Knuth',
  "O'Neil"];
const COMPANY = ['Lovelace & Babbage', 'Analytical Engines Ltd', '<Anderson> & Sons', 'Grover "Plumbing"',
  'Hopper Compilers', 'Turing Machines', 'Ritchie & Thompson Unix', 'Knuth TeX Works'];

/** A small LCG (Numerical Recipes constants): the same sequence on every machine. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pad = (n, w = 2) => String(n).padStart(w, '0');

function contacts(n) {
  const r = rng(20260101);
  const pick = (list) => list[Math.floor(r() * list.length)];
  const out = [];
  for (let i = 0; i < n; i++) {
    const given = pick(FIRST);
    const family = pick(LAST);
    const id = 1000 + i * 7;
    const y = 2015 + Math.floor(r() * 11);
    const date = { y, m: 1 + Math.floor(r() * 12), d: 1 + Math.floor(r() * 28), h: Math.floor(r() * 24), mi: Math.floor(r() * 60), s: Math.floor(r() * 60) };
    out.push({
      id, given, family,
      email: `${given}.${family}.${id}@example.com`.toLowerCase().replace(/'/g, ''),
      company: r() < 0.7 ? pick(COMPANY) : null,
      phone: r() < 0.5 ? `+1 555 ${pad(Math.floor(r() * 1000), 3)} ${pad(Math.floor(r() * 10000), 4)}` : null,
      groups: Array.from({ length: Math.floor(r() * 4) }, () => 90 + Math.floor(r() * 20)),
      owner: 1 + Math.floor(r() * 5),
      score: Math.round(r() * 10000) / 100,
      date,
    });
  }
  return out;
}

/** DataService.query's methodResponse for n contacts, in the layout Keap sends (an <array> of <struct>s). */
export function queryXml(n) {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<methodResponse>', '  <params>', '    <param>',
    '      <value>', '        <array>', '          <data>'];
  for (const c of contacts(n)) {
    const d = c.date;
    const member = (name, value) => `              <member><name>${name}</name><value>${value}</value></member>`;
    lines.push('            <value><struct>');
    lines.push(member('Id', `<i4>${c.id}</i4>`));
    lines.push(member('FirstName', esc(c.given)));
    lines.push(member('LastName', `<string>${esc(c.family)}</string>`));
    lines.push(member('Email', esc(c.email)));
    if (c.company !== null) {
      lines.push(member('Company', c.company.includes('<') ? `<![CDATA[${c.company}]]>` : esc(c.company)));
    }
    if (c.phone !== null) lines.push(member('Phone1', esc(c.phone)));
    lines.push(member('OwnerID', `<int>${c.owner}</int>`));
    lines.push(member('LeadSourceScore', `<double>${c.score}</double>`));
    lines.push(member('DateCreated', `<dateTime.iso8601>${d.y}${pad(d.m)}${pad(d.d)}T${pad(d.h)}:${pad(d.mi)}:${pad(d.s)}</dateTime.iso8601>`));
    lines.push(member('Groups', c.groups.join(',')));
    lines.push('            </struct></value>');
  }
  lines.push('          </data>', '        </array>', '      </value>', '    </param>', '  </params>', '</methodResponse>', '');
  return lines.join('\n');
}

/** REST v1 GET /crm/rest/v1/contacts for n contacts, compact as Keap sends it. */
export function contactsJson(n) {
  const list = contacts(n).map((c) => {
    const d = c.date;
    const iso = `${d.y}-${pad(d.m)}-${pad(d.d)}T${pad(d.h)}:${pad(d.mi)}:${pad(d.s)}.000+0000`;
    return {
      id: c.id, given_name: c.given, family_name: c.family,
      email_addresses: [{ email: c.email, field: 'EMAIL1' }],
      email_opted_in: c.id % 3 !== 0, email_status: c.id % 3 !== 0 ? 'SingleOptIn' : 'UnengagedMarketable',
      date_created: iso, last_updated: iso, ScoreValue: null,
      phone_numbers: c.phone ? [{ number: c.phone, field: 'PHONE1' }] : [],
      addresses: [], tag_ids: c.groups, company: c.company ? { id: c.owner, company_name: c.company } : null,
      middle_name: null,
    };
  });
  return JSON.stringify({ contacts: list, count: n, next: `https://api.infusionsoft.com/crm/rest/v1/contacts/?limit=${n}&offset=${n}`, previous: `https://api.infusionsoft.com/crm/rest/v1/contacts/?limit=${n}&offset=0` });
}

/** The one contact the proxy legs ask for: a small JSON answer of GET /crm/rest/v1/contacts?email=... */
export function lookupJson() {
  return JSON.stringify({
    contacts: [{ id: 101, given_name: 'Ada', family_name: 'Lovelace',
      email_addresses: [{ email: 'ada@example.com', field: 'EMAIL1' }], email_opted_in: true,
      email_status: 'SingleOptIn', date_created: '2024-01-15T09:30:00.000+0000',
      last_updated: '2024-02-01T10:11:12.000+0000', ScoreValue: null, phone_numbers: [], addresses: [],
      tag_ids: [91, 93], company: null, middle_name: null }],
    count: 1,
  });
}

/** Writes query-N.xml and contacts-N.json into dir; returns their paths. */
export function writeCoreInputs(dir, n = 1000) {
  mkdirSync(dir, { recursive: true });
  const xml = path.join(dir, `query-${n}.xml`);
  const json = path.join(dir, `contacts-${n}.json`);
  writeFileSync(xml, queryXml(n));
  writeFileSync(json, contactsJson(n));
  return { xml, json };
}
