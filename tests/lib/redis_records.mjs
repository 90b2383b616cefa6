// Reads the relay's connection records out of Redis and opens them with the store key, as the fault suites read
// tokens.json (tests/faults/lib.mjs readStore). docs/api.md has the key layout: keyrelay:conn:<provider> is a hash
// {version, record}, record being the JSON {id, key_id, version, sealed} of the file store, sealed =
// base64(iv[12] || ciphertext || tag[16]), AES-256-GCM with the record id as associated data (NIST SP 800-38D). A
// hash with the record's own fields, or a string holding the JSON object, is read too. A record that does not open
// with the store key is reported, never skipped: that would be a corrupt store.

import { createDecipheriv } from 'node:crypto';

const text = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v == null ? v : String(v));

function open(sealedB64, aad, key) {
  const sealed = Buffer.from(sealedB64, 'base64');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return JSON.parse(Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]).toString('utf8'));
}

/**
 * connectionRecords(redis, storeKeyHex) → {records: {id: {key, version, key_id, connection}}, errors: [string]}
 * for every sealed record under keyrelay:* (connections; any other sealed record, such as an OAuth state, is
 * listed too under its own id). version is a Number.
 */
export async function connectionRecords(redis, storeKeyHex) {
  const key = Buffer.from(storeKeyHex, 'hex');
  const records = {};
  const errors = [];
  for (const k of await redis.keys('keyrelay:*')) {
    const type = await redis.command('TYPE', k);
    let rec;
    if (type === 'hash') {
      const flat = await redis.command('HGETALL', k);
      rec = {};
      for (let i = 0; i + 1 < flat.length; i += 2) rec[text(flat[i])] = text(flat[i + 1]);
      // {version, record: the JSON record}: the version beside the record, for a compare-and-set in one script.
      if (typeof rec.record === 'string' && rec.sealed === undefined) {
        try { rec = { ...JSON.parse(rec.record), hash_version: rec.version }; } catch { /* not a record */ }
      }
    } else if (type === 'string') {
      try { rec = JSON.parse(text(await redis.command('GET', k))); } catch { rec = undefined; }
    }
    if (!rec || typeof rec !== 'object' || typeof rec.sealed !== 'string') continue;
    const id = rec.id ?? k.split(':').pop();
    let connection;
    for (const aad of [id, k]) {
      try { connection = open(rec.sealed, aad, key); break; } catch { /* try the next associated data */ }
    }
    if (connection === undefined) { errors.push(`${k}: the sealed record does not open with the store key`); continue; }
    if (rec.hash_version !== undefined && Number(rec.hash_version) !== Number(rec.version)) {
      errors.push(`${k}: the hash says version ${rec.hash_version}, its record ${rec.version}`);
    }
    records[id] = { key: k, version: Number(rec.version ?? connection.version), key_id: rec.key_id, connection };
  }
  return { records, errors };
}

/** versionOf(redis, storeKeyHex, id) → the stored version of record `id` (a connection: 'keap', 'jira'), or null. */
export async function versionOf(redis, storeKeyHex, id) {
  const { records } = await connectionRecords(redis, storeKeyHex);
  return records[id]?.version ?? null;
}
