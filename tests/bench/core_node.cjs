// The Wasm side of the core-speed bench: the same decoders compiled to WebAssembly
// (build/wasm/keyrelay.cjs), called through the documented JS API, so the figure includes turning the result into
// plain JS values, which is what a caller of kr.xmlrpc.decodeResponse / kr.keap.parseContacts gets.
// Same method as keyrelay_bench_core: 3 warm-up decodes, 7 batches of about SECONDS/7, median batch (MB = 10^6 bytes).
//
//   node core_node.cjs MODULE.cjs xmlrpc   FILE SECONDS [EXPECTED_ITEMS]
//   node core_node.cjs MODULE.cjs contacts FILE SECONDS [EXPECTED_ITEMS]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const WARMUP = 3;
const BATCHES = 7;

async function main() {
  const [modulePath, what, file, secondsArg, expectArg] = process.argv.slice(2);
  const seconds = Number(secondsArg);
  const expect = expectArg ? Number(expectArg) : 1000;
  if (!modulePath || !['xmlrpc', 'contacts'].includes(what) || !file || !(seconds > 0)) {
    process.stderr.write('usage: node core_node.cjs MODULE.cjs xmlrpc|contacts FILE SECONDS [EXPECTED_ITEMS]\n');
    return 2;
  }
  const createKeyrelay = require(path.resolve(modulePath));
  const kr = await createKeyrelay();
  const body = fs.readFileSync(file, 'utf8');
  const bytes = Buffer.byteLength(body, 'utf8');
  let decode;
  let name;
  if (what === 'xmlrpc') {
    name = 'kr.xmlrpc.decodeResponse';
    decode = () => {
      const r = kr.xmlrpc.decodeResponse(body);
      return r.ok && Array.isArray(r.value) ? r.value.length : -1;
    };
  } else {
    name = 'kr.keap.parseContacts';
    const headers = { 'Content-Type': 'application/json;charset=UTF-8' };
    decode = () => {
      const r = kr.keap.parseContacts(200, headers, body);
      return r.ok ? r.contacts.length : -1;
    };
  }
  for (let i = 0; i < WARMUP; i++) {
    const n = decode();
    if (n !== expect) {
      process.stderr.write(`core_node.cjs: ${name} decoded ${n} items, expected ${expect}\n`);
      return 1;
    }
  }
  const rates = [];
  let iterations = 0;
  const allStart = process.hrtime.bigint();
  for (let b = 0; b < BATCHES; b++) {
    const start = process.hrtime.bigint();
    let iters = 0;
    let elapsed;
    do {
      if (decode() !== expect) return 1;
      iters++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    } while (elapsed < seconds / BATCHES);
    iterations += iters;
    rates.push((bytes * iters) / elapsed / 1e6);
  }
  rates.sort((a, b) => a - b);
  const round = (x) => Math.round(x * 100) / 100;
  process.stdout.write(JSON.stringify({
    runtime: `node ${process.version} (wasm)`, function: name, bytes, items: expect, iterations,
    seconds: round(Number(process.hrtime.bigint() - allStart) / 1e9), mb_per_s: round(rates[rates.length >> 1]),
    mb_per_s_min: round(rates[0]), mb_per_s_max: round(rates[rates.length - 1]),
  }) + '\n');
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err) => { process.stderr.write(`${err.stack}\n`); process.exitCode = 1; });
