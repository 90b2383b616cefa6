// Leg (d) of scripts/bench: what a user writes by hand instead of keyrelay — a plain node `http` proxy with a
// keep-alive agent that injects the same credential (X-Keap-API-Key) and forwards GETs to one upstream.
//   node tests/bench/node_proxy.mjs <upstream origin> <api key>     prints "listening on http://127.0.0.1:<port>"
import http from 'node:http';

const [upstream, key] = process.argv.slice(2);
const target = new URL(upstream);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const server = http.createServer((req, res) => {
  const up = http.request({
    host: target.hostname, port: target.port, path: req.url.replace(/^\/proxy\/keap/, ''), method: req.method, agent,
    headers: { Accept: req.headers.accept ?? '*/*', 'X-Keap-API-Key': key },
  }, (answer) => {
    res.writeHead(answer.statusCode, { 'Content-Type': answer.headers['content-type'] ?? 'application/octet-stream' });
    answer.pipe(res);
  });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
