// The Debian package (scripts/package → build/dist/keyrelay_<version>_<arch>.deb), checked as a person who runs
// services on Debian would: lintian, the exact file list with modes, the program and the page from an extracted
// copy, `keyrelay doctor` on the templates, the systemd unit, the maintainer scripts, and, where the machine allows
// it (root, no keyrelay installed, no /etc/keyrelay or /var/lib/keyrelay), a real apt install, remove, reinstall
// and purge. docs/deploy.md describes the layout.
//
// The package: $KEYRELAY_DEB, else the one build/dist/keyrelay_*.deb.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, statSync, writeFileSync, chownSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ROOT, client, spawnServer, startSandbox } from '../lib/harness.mjs';

const DEB = findDeb();
const VERSION = /project\(keyrelay VERSION ([0-9.]+)/.exec(readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8'))[1];
const IS_ROOT = process.getuid?.() === 0;
// A uid no account uses, as systemd's DynamicUser= picks one (61184-65519).
const DYNAMIC_UID = 61234;

function findDeb() {
  if (process.env.KEYRELAY_DEB) return path.resolve(process.env.KEYRELAY_DEB);
  const dist = path.join(ROOT, 'build', 'dist');
  const debs = existsSync(dist) ? readdirSync(dist).filter((f) => /^keyrelay_.*\.deb$/.test(f)) : [];
  if (debs.length !== 1) {
    throw new Error(`expected one build/dist/keyrelay_*.deb, found ${debs.length}: run scripts/package first`);
  }
  return path.join(dist, debs[0]);
}

/** run(cmd, args, opts) → {status, stdout, stderr}; never throws on a non-zero exit. */
function run(cmd, args, { env, input, timeout = 300_000 } = {}) {
  const r = spawnSync(cmd, args, { env: env ?? process.env, input, encoding: 'utf8', timeout });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}${r.stderr}` };
}
const have = (tool) => run('sh', ['-c', `command -v ${tool}`]).status === 0;

/** The environment without any keyrelay setting, so a test sees only what it sets. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(KEAP_|JIRA_|KEYRELAY_|GITHUB_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Parses an EnvironmentFile= the way systemd reads it here: NAME=value lines, # comments. */
function readEnvFile(file) {
  const env = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].trim();
  }
  return env;
}

const hashPassword = (bin, password) => {
  const r = run(bin, ['hash-password', '--iterations', '100000'], { input: `${password}\n` });
  assert.equal(r.status, 0, r.all);
  return r.stdout.trim();
};

/** The files the package must hold, "<mode> <path>" as dpkg-deb -c prints them; docs/ and web/ as in the tree. */
function expectedFiles() {
  const f = '-rw-r--r--';
  const list = [
    ['-rw-------', './etc/keyrelay/keyrelay.env'],
    [f, './etc/keyrelay/keyrelay.json'],
    [f, './lib/systemd/system/keyrelay.service'],
    ['-rwxr-xr-x', './usr/bin/keyrelay'],
    [f, './usr/share/doc/keyrelay/README.md'],
    [f, './usr/share/doc/keyrelay/changelog.gz'],
    [f, './usr/share/doc/keyrelay/copyright'],
    [f, './usr/share/doc/keyrelay/examples/keyrelay.example.json'],
    [f, './usr/share/keyrelay/web/wasm/keyrelay.mjs'],
    [f, './usr/share/keyrelay/web/wasm/keyrelay.wasm'],
    [f, './usr/share/lintian/overrides/keyrelay'],
    [f, './usr/share/man/man1/keyrelay.1.gz'],
  ];
  const walk = (dir, prefix) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      else list.push([f, `${prefix}${e.name}`]);
    }
  };
  walk(path.join(ROOT, 'docs'), './usr/share/doc/keyrelay/docs/');
  walk(path.join(ROOT, 'web'), './usr/share/keyrelay/web/');
  const dirs = new Set();
  for (const [, p] of list) {
    for (let d = path.posix.dirname(p); d !== '.'; d = path.posix.dirname(d)) dirs.add(`${d}/`);
  }
  for (const d of dirs) list.push(['drwxr-xr-x', d]);
  return list.map(([mode, p]) => `${mode} root/root ${p}`).sort();
}

// The package extracted into a temporary root (dpkg -x), readable by any user like a real / is.
let root;
let control;
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-deb-'));
  chmodSync(root, 0o755);
  const x = run('dpkg', ['-x', DEB, root]);
  assert.equal(x.status, 0, `dpkg -x: ${x.all}`);
  control = path.join(root, 'DEBIAN');
  const e = run('dpkg-deb', ['-e', DEB, control]);
  assert.equal(e.status, 0, `dpkg-deb -e: ${e.all}`);
});
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('the package is named keyrelay_<version>_<arch>.deb and its dependencies come from dpkg-shlibdeps', () => {
  const arch = run('dpkg', ['--print-architecture']).stdout.trim();
  assert.equal(path.basename(DEB), `keyrelay_${VERSION}_${arch}.deb`);
  const fields = run('dpkg-deb', ['-f', DEB, 'Package', 'Version', 'Depends']).stdout;
  assert.match(fields, /^Package: keyrelay$/m);
  assert.match(fields, new RegExp(`^Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
  // What the relay links: cpp-httplib, OpenSSL, the C++ runtime, each with the version dpkg-shlibdeps found.
  for (const lib of ['libcpp-httplib', 'libssl3', 'libstdc\\+\\+6', 'libc6']) {
    assert.match(fields, new RegExp(`Depends:.*\\b${lib}[0-9.]* \\(>= `), `Depends has no versioned ${lib}:\n${fields}`);
  }
});

test('lintian reports no error and no warning; each kept tag is overridden with its reason', () => {
  const r = run('lintian', ['--fail-on', 'error,warning', DEB]);
  const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
  assert.deepEqual(tags, [], `lintian:\n${r.all}`);
  assert.equal(r.status, 0, `lintian exited ${r.status}:\n${r.all}`);
  const overrides = readFileSync(path.join(root, 'usr/share/lintian/overrides/keyrelay'), 'utf8').split('\n');
  overrides.forEach((line, i) => {
    if (line && !line.startsWith('#')) {
      assert.match(overrides[i - 1] ?? '', /^#/, `the override "${line}" has no comment above it saying why`);
    }
  });
});

test('dpkg-deb -c lists exactly the expected files, owned by root, with their modes', () => {
  const r = run('dpkg-deb', ['-c', DEB]);
  assert.equal(r.status, 0, r.all);
  const got = r.stdout.trim().split('\n').map((line) => {
    const [mode, owner, , , , ...rest] = line.split(/\s+/);
    return `${mode} ${owner} ${rest.join(' ')}`;
  }).filter((l) => !l.endsWith(' ./')).sort();
  assert.deepEqual(got, expectedFiles());
});

test('the config and the env file are conffiles, so an upgrade never overwrites a person\'s edits', () => {
  const conffiles = readFileSync(path.join(control, 'conffiles'), 'utf8').trim().split('\n').sort();
  assert.deepEqual(conffiles, ['/etc/keyrelay/keyrelay.env', '/etc/keyrelay/keyrelay.json']);
});

test('cmake --install --prefix /usr lays out the same files, and keeps a config that is already there', async (t) => {
  const dest = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-install-'));
  t.after(() => rm(dest, { recursive: true, force: true }));
  const install = () => run('cmake', ['--install', path.join(ROOT, 'build/native'), '--prefix', '/usr'], { env: { ...process.env, DESTDIR: dest } });
  let r = install();
  assert.equal(r.status, 0, r.all);
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(`${(statSync(p).mode & 0o777).toString(8)} .${p.slice(dest.length)}`);
    }
  };
  walk(dest);
  const modeOf = { '-rw-------': '600', '-rw-r--r--': '644', '-rwxr-xr-x': '755' };
  const fromDeb = expectedFiles().filter((l) => !l.startsWith('d')).map((l) => {
    const [mode, , p] = l.split(' ');
    return `${modeOf[mode]} ${p}`;
  });
  assert.deepEqual(files.sort(), fromDeb.sort());
  // A second install (an upgrade by hand) keeps the person's config and env file.
  const config = path.join(dest, 'etc/keyrelay/keyrelay.json');
  writeFileSync(config, '{"public_url": "https://relay.keyrelay.test"}\n');
  r = install();
  assert.equal(r.status, 0, r.all);
  assert.match(r.stdout, /Keeping: .*\/etc\/keyrelay\/keyrelay\.json/);
  assert.equal(readFileSync(config, 'utf8'), '{"public_url": "https://relay.keyrelay.test"}\n');
});

test('the maintainer scripts pass shellcheck', { skip: !have('shellcheck') && 'shellcheck is not installed' }, () => {
  const scripts = ['postinst', 'prerm', 'postrm'].map((s) => path.join(control, s));
  for (const s of scripts) assert.ok(statSync(s).mode & 0o111, `${path.basename(s)} is not executable`);
  const r = run('shellcheck', ['--shell=sh', ...scripts]);
  assert.equal(r.status, 0, r.all);
});

test('the extracted keyrelay prints the package version', () => {
  const r = run(path.join(root, 'usr/bin/keyrelay'), ['--version']);
  assert.equal(r.status, 0, r.all);
  assert.equal(r.stdout.trim(), `keyrelay ${VERSION}`);
});

test('the man page keyrelay(1) documents every command', () => {
  const page = run('sh', ['-c', `gzip -dc '${path.join(root, 'usr/share/man/man1/keyrelay.1.gz')}'`]).stdout;
  assert.match(page, /^\.TH KEYRELAY "1"/m);
  for (const command of ['SERVE', 'DOCTOR', 'HASH-PASSWORD', 'ROTATE-KEY']) assert.match(page, new RegExp(`^\\.SH "COMMAND ${command}"`, 'm'));
});

test('keyrelay doctor fails the package\'s templates: the example hash, the example public_url, the empty env file', () => {
  const bin = path.join(root, 'usr/bin/keyrelay');
  const config = path.join(root, 'etc/keyrelay/keyrelay.json');
  const r = run(bin, ['doctor', '--offline', '--config', config], { env: cleanEnv() });
  assert.equal(r.status, 1, r.all);
  assert.match(r.stdout, /^\[FAIL\] The page user "admin" still has the example password_hash \(REPLACE_WITH_\.\.\.\)/m);
  assert.match(r.stdout, /^\[FAIL\] public_url https:\/\/relay\.example\.com is the example address/m);
  assert.match(r.stdout, /^\[FAIL\] The env file .*\/etc\/keyrelay\/keyrelay\.env sets nothing/m);
  assert.doesNotMatch(r.stdout, /All good/);
});

test('keyrelay doctor fails an env file that holds only the generated store key', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-doctor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(root, 'usr/bin/keyrelay');
  writeFileSync(path.join(dir, 'keyrelay.json'), readFileSync(path.join(root, 'etc/keyrelay/keyrelay.json')));
  const env = path.join(dir, 'keyrelay.env');
  const key = randomBytes(32).toString('hex');
  writeFileSync(env, `${readFileSync(path.join(root, 'etc/keyrelay/keyrelay.env'), 'utf8')}KEYRELAY_STORE_KEY=${key}\n`, { mode: 0o600 });
  const r = run(bin, ['doctor', '--offline', '--config', path.join(dir, 'keyrelay.json')], { env: cleanEnv(readEnvFile(env)) });
  assert.equal(r.status, 1, r.all);
  assert.match(r.stdout, /^\[FAIL\] The env file .* sets no provider credentials/m);
  assert.ok(!r.all.includes(key), 'doctor printed the store key');
});

test('keyrelay doctor passes the templates once they are filled in', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-doctor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(root, 'usr/bin/keyrelay');
  const config = JSON.parse(readFileSync(path.join(root, 'etc/keyrelay/keyrelay.json'), 'utf8'));
  config.public_url = 'https://relay.keyrelay.test';   // RFC 2606 .test: reserved, but not an example name
  config.users[0].password_hash = hashPassword(bin, 'a long page password');
  config.data_dir = path.join(dir, 'data');
  writeFileSync(path.join(dir, 'keyrelay.json'), JSON.stringify(config));
  const env = path.join(dir, 'keyrelay.env');
  writeFileSync(env, `${readFileSync(path.join(root, 'etc/keyrelay/keyrelay.env'), 'utf8')}KEAP_API_KEY=keap-pat-test-${randomBytes(8).toString('hex')}\nKEYRELAY_STORE_KEY=${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const r = run(bin, ['doctor', '--offline', '--config', path.join(dir, 'keyrelay.json')], { env: cleanEnv(readEnvFile(env)) });
  assert.equal(r.status, 0, r.all);
  assert.match(r.stdout, /^All good/m);
  // Run without the env file's settings, doctor says so instead of failing silently on "no credentials".
  const bare = run(bin, ['doctor', '--offline', '--config', path.join(dir, 'keyrelay.json')], { env: cleanEnv() });
  assert.match(bare.stdout, /^\[WARN\] This check does not see what .*keyrelay\.env sets \(KEAP_API_KEY, KEYRELAY_STORE_KEY\)/m);
});

test('keyrelay doctor fails the full example config (relay/keyrelay.example.json) for its template values', () => {
  const bin = path.join(root, 'usr/bin/keyrelay');
  const example = path.join(root, 'usr/share/doc/keyrelay/examples/keyrelay.example.json');
  assert.equal(readFileSync(example, 'utf8'), readFileSync(path.join(ROOT, 'relay/keyrelay.example.json'), 'utf8'));
  // Every secret it names is set, so that only the template values are left to find.
  const env = cleanEnv({
    KEAP_CLIENT_ID: 'keap-id', KEAP_CLIENT_SECRET: 'keap-secret-value', JIRA_CLIENT_ID: 'jira-id',
    JIRA_CLIENT_SECRET: 'jira-secret-value', KEYRELAY_STORE_KEY: randomBytes(32).toString('hex'),
  });
  const r = run(bin, ['doctor', '--offline', '--config', example], { env });
  assert.equal(r.status, 1, r.all);
  assert.match(r.stdout, /^\[FAIL\] The page user "admin" still has the example password_hash/m);
  assert.match(r.stdout, /^\[FAIL\] public_url https:\/\/relay\.example\.com is the example address/m);
});

test('the installed relay serves the page, its Wasm module and /healthz from /usr/share/keyrelay/web', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrelay-serve-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(root, 'usr/bin/keyrelay');
  const web = path.join(root, 'usr/share/keyrelay/web');
  // A mark only the extracted copy has: the page must come from there, not from the checkout the binary was built in.
  const mark = `<!-- extracted ${randomBytes(6).toString('hex')} -->`;
  writeFileSync(path.join(web, 'index.html'), `${readFileSync(path.join(web, 'index.html'), 'utf8')}${mark}\n`);
  const config = path.join(dir, 'keyrelay.json');
  writeFileSync(config, JSON.stringify({ users: [{ username: 'admin', password_hash: hashPassword(bin, 'pw-for-the-page') }] }));
  const relay = await spawnServer(bin, ['serve', '--config', config, '--port', '0', '--data-dir', path.join(dir, 'data')], {
    env: cleanEnv({ KEAP_API_KEY: `keap-pat-test-${randomBytes(8).toString('hex')}`, KEYRELAY_STORE_KEY: randomBytes(32).toString('hex') }),
  });
  t.after(() => relay.child.kill('SIGKILL'));
  const page = await fetch(`${relay.url}/`);
  assert.equal(page.status, 200);
  assert.ok((await page.text()).includes(mark), 'GET / is not the installed index.html');
  const wasm = await fetch(`${relay.url}/wasm/keyrelay.wasm`);
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  assert.equal(sha(Buffer.from(await wasm.arrayBuffer())), sha(readFileSync(path.join(web, 'wasm/keyrelay.wasm'))));
  const health = await fetch(`${relay.url}/healthz`);
  assert.equal(health.status, 200);
  // The installed relay keeps its connections in its data dir (no Redis configured).
  assert.deepEqual(await health.json(), { status: 'ok', version: VERSION, store: 'file' });
});

test('the unit runs /usr/bin/keyrelay with /etc/keyrelay and keeps the hardening', () => {
  const unit = readFileSync(path.join(root, 'lib/systemd/system/keyrelay.service'), 'utf8');
  assert.equal(unit, readFileSync(path.join(ROOT, 'relay/keyrelay.service'), 'utf8'));
  const lines = new Set(unit.split('\n'));
  for (const line of [
    'ExecStart=/usr/bin/keyrelay serve --config /etc/keyrelay/keyrelay.json',
    'EnvironmentFile=/etc/keyrelay/keyrelay.env', 'DynamicUser=yes', 'StateDirectory=keyrelay',
    'StateDirectoryMode=0700', 'UMask=0077', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes',
    'PrivateTmp=yes', 'PrivateDevices=yes', 'MemoryDenyWriteExecute=yes', 'SystemCallFilter=@system-service',
    'CapabilityBoundingSet=', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
  ]) {
    assert.ok(lines.has(line), `the unit has no line "${line}"`);
  }
});

test('systemd-analyze verify accepts the unit', (t) => {
  if (!have('systemd-analyze')) {
    t.skip('systemd-analyze is not installed (apt-get install systemd): the unit was not verified');
    return;
  }
  // The unit as packaged, with ExecStart pointing at the extracted program (verify checks that it is executable).
  const unit = readFileSync(path.join(root, 'lib/systemd/system/keyrelay.service'), 'utf8');
  const copy = path.join(root, 'keyrelay.service');
  writeFileSync(copy, unit.replaceAll('/usr/bin/keyrelay', path.join(root, 'usr/bin/keyrelay')));
  const r = run('systemd-analyze', ['verify', '--man=no', copy]);
  assert.equal(r.status, 0, r.all);
  assert.equal(r.all.trim(), '', 'systemd-analyze verify warned');
});

// The modes of /etc/keyrelay, the config and the env file as the unit's comment and docs/deploy.md give them.
function documentedModes() {
  const unit = readFileSync(path.join(ROOT, 'relay/keyrelay.service'), 'utf8');
  const fromUnit = {
    dir: /\/etc\/keyrelay is (0[0-7]{3})/.exec(unit)?.[1],
    config: /keyrelay\.json (0[0-7]{3})/.exec(unit)?.[1],
    env: /keyrelay\.env is (0[0-7]{3})/.exec(unit)?.[1],
  };
  const deploy = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const row = (what) => new RegExp(`^\\| ${what} \\| [^|]+ \\| (0[0-7]{3})`, 'm').exec(deploy)?.[1];
  const fromDeploy = { dir: row('the config directory'), config: row('the config'), env: row('the secrets') };
  return { fromUnit, fromDeploy };
}

test('the unit\'s comment, docs/deploy.md and the package agree on the modes in /etc/keyrelay', () => {
  const { fromUnit, fromDeploy } = documentedModes();
  assert.deepEqual(fromUnit, { dir: '0755', config: '0644', env: '0600' });
  assert.deepEqual(fromDeploy, fromUnit);
  const mode = (p) => `0${(statSync(path.join(root, p)).mode & 0o777).toString(8)}`;
  assert.deepEqual({ dir: mode('etc/keyrelay'), config: mode('etc/keyrelay/keyrelay.json'), env: mode('etc/keyrelay/keyrelay.env') }, fromUnit);
});

test('with the documented modes a dynamic user reads its config and starts; with 0750 or 0640 it cannot', async (t) => {
  if (!IS_ROOT || !have('setpriv')) {
    t.skip('needs root and setpriv to run the relay as an unprivileged user');
    return;
  }
  // What DynamicUser=yes does: systemd (root) reads the env file, the relay runs as an unused uid and gid with no
  // groups, and its state directory (StateDirectory=, 0700) is the only thing it owns.
  const { fromUnit } = documentedModes();
  const etc = path.join(root, 'etc/keyrelay');
  const config = path.join(etc, 'keyrelay.json');
  const env = cleanEnv({ ...readEnvFile(path.join(etc, 'keyrelay.env')), KEAP_API_KEY: `keap-pat-test-${randomBytes(8).toString('hex')}`, KEYRELAY_STORE_KEY: randomBytes(32).toString('hex') });
  const state = path.join(root, 'var-lib-keyrelay');
  mkdirSync(state, { mode: 0o700 });
  chownSync(state, DYNAMIC_UID, DYNAMIC_UID);
  const bin = path.join(root, 'usr/bin/keyrelay');
  const asDynamicUser = ['--reuid', String(DYNAMIC_UID), '--regid', String(DYNAMIC_UID), '--clear-groups', bin, 'serve', '--config', config, '--port', '0', '--data-dir', state];

  const setModes = (dir, file) => { chmodSync(etc, Number.parseInt(dir, 8)); chmodSync(config, Number.parseInt(file, 8)); };
  t.after(() => setModes(fromUnit.dir, fromUnit.config));

  setModes(fromUnit.dir, fromUnit.config);
  const relay = await spawnServer('/usr/bin/setpriv', asDynamicUser, { env, name: 'keyrelay as a dynamic user' });
  const health = await fetch(`${relay.url}/healthz`);
  assert.equal(health.status, 200);
  relay.child.kill('SIGTERM');
  assert.equal((await relay.exited).code, 0);

  for (const [dir, file] of [['0750', fromUnit.config], [fromUnit.dir, '0640']]) {
    setModes(dir, file);
    const r = run('/usr/bin/setpriv', asDynamicUser, { env, timeout: 20_000 });
    assert.equal(r.status, 1, `with /etc/keyrelay ${dir} and keyrelay.json ${file} the relay should not start:\n${r.all}`);
    assert.match(r.stderr, /config\.unreadable/);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// A real install, where the machine allows it: root, apt-get, no keyrelay package and no keyrelay files yet, no
// running keyrelay service. It changes this machine's /usr/bin, /etc and /var/lib, and purges at the end.

function whyNoRealInstall() {
  if (!IS_ROOT) return 'not root';
  if (!have('apt-get')) return 'no apt-get';
  const q = run('dpkg-query', ['-W', '-f=${Status}', 'keyrelay']);
  if (q.status === 0 && /installed|config-files/.test(q.stdout)) return `a keyrelay package is on this machine (${q.stdout})`;
  for (const p of ['/etc/keyrelay', '/var/lib/keyrelay', '/var/lib/private/keyrelay', '/usr/bin/keyrelay']) {
    if (existsSync(p)) return `${p} exists (a keyrelay installed by hand?)`;
  }
  if (existsSync('/run/systemd/system') && run('systemctl', ['is-active', '--quiet', 'keyrelay']).status === 0) return 'a keyrelay service runs';
  return null;
}

const apt = (...args) => run('apt-get', ['-y', '-o', 'DPkg::Lock::Timeout=120', '-o', 'Dpkg::Options::=--force-confold', ...args], {
  env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
});

test('apt install, remove (data and keys stay), install again (reused), purge (says what it deletes)', async (t) => {
  const why = whyNoRealInstall();
  if (why) {
    t.skip(`no real install: ${why}`);
    return;
  }
  t.after(() => {
    if (run('dpkg-query', ['-W', '-f=${Status}', 'keyrelay']).stdout.trim()) apt('purge', 'keyrelay');
    for (const p of ['/etc/keyrelay', '/var/lib/keyrelay', '/var/lib/private/keyrelay']) {
      if (existsSync(p) || lstatSync(p, { throwIfNoEntry: false })) run('rm', ['-rf', p]);
    }
  });
  const ENV_FILE = '/etc/keyrelay/keyrelay.env';
  const DATA = '/var/lib/keyrelay';

  // 1. Install: the store key is generated, never shown, and the service is neither enabled nor started.
  let r = apt('install', DEB);
  assert.equal(r.status, 0, r.all);
  assert.match(r.stdout, /keyrelay: generated a new KEYRELAY_STORE_KEY into \/etc\/keyrelay\/keyrelay\.env/);
  assert.match(r.stdout, /the service is neither enabled nor started/);
  const key = readEnvFile(ENV_FILE).KEYRELAY_STORE_KEY;
  assert.match(key ?? '', /^[0-9a-f]{64}$/);
  assert.ok(!r.all.includes(key), 'the install printed the store key');
  assert.equal(statSync(ENV_FILE).mode & 0o777, 0o600);
  assert.equal(run('/usr/bin/keyrelay', ['--version']).stdout.trim(), `keyrelay ${VERSION}`);
  if (existsSync('/run/systemd/system')) {
    assert.notEqual(run('systemctl', ['is-active', '--quiet', 'keyrelay']).status, 0, 'the install started the service');
    assert.notEqual(run('systemctl', ['is-enabled', '--quiet', 'keyrelay']).status, 0, 'the install enabled the service');
  }
  if (have('systemd-analyze')) {
    const v = run('systemd-analyze', ['verify', '--man=no', '/lib/systemd/system/keyrelay.service']);
    assert.equal(v.status, 0, v.all);
  }

  // 2. The person edits the config (a conffile) and the relay runs once: a Keap connection through the sandbox
  //    lands in /var/lib/keyrelay/tokens.json, sealed with the generated key.
  const config = JSON.parse(readFileSync('/etc/keyrelay/keyrelay.json', 'utf8'));
  delete config.public_url;   // the relay's own 127.0.0.1 address, so that the sandbox's redirects reach it
  config.users[0].password_hash = hashPassword('/usr/bin/keyrelay', 'the admin page password');
  writeFileSync('/etc/keyrelay/keyrelay.json', JSON.stringify(config, null, 2));
  const sandbox = await startSandbox({ autoApprove: true, t });
  const startInstalled = () => spawnServer('/usr/bin/keyrelay', ['serve', '--config', '/etc/keyrelay/keyrelay.json', '--sandbox', sandbox.url, '--port', '0', '--data-dir', DATA], {
    env: cleanEnv(readEnvFile(ENV_FILE)), name: 'installed keyrelay',
  });
  let relay = await startInstalled();
  let browser = client(relay.url, { record: false });
  assert.equal((await browser.login()).status, 200);
  const flow = await browser.connect('keap');
  assert.equal(flow.final.status, 302, flow.trace);
  relay.child.kill('SIGTERM');
  await relay.exited;
  const tokens = readFileSync(path.join(DATA, 'tokens.json'));
  assert.ok(!tokens.includes('sbx_keap_'), 'tokens.json holds a token in the clear');

  // 3. Remove: the program goes; the config, the key and the token store stay.
  r = apt('remove', 'keyrelay');
  assert.equal(r.status, 0, r.all);
  assert.match(r.stdout, /keyrelay: kept \/etc\/keyrelay \(config, KEYRELAY_STORE_KEY\) and \/var\/lib\/keyrelay/);
  assert.ok(!existsSync('/usr/bin/keyrelay'), '/usr/bin/keyrelay is still there after remove');
  assert.equal(readEnvFile(ENV_FILE).KEYRELAY_STORE_KEY, key);
  assert.deepEqual(readFileSync(path.join(DATA, 'tokens.json')), tokens);

  // 4. Install again: the key and the edited config are kept, and the relay opens the old store with them.
  r = apt('install', DEB);
  assert.equal(r.status, 0, r.all);
  assert.doesNotMatch(r.stdout, /generated a new KEYRELAY_STORE_KEY/);
  assert.equal(readEnvFile(ENV_FILE).KEYRELAY_STORE_KEY, key);
  assert.equal(JSON.parse(readFileSync('/etc/keyrelay/keyrelay.json', 'utf8')).users[0].password_hash, config.users[0].password_hash);
  relay = await startInstalled();
  t.after(() => relay.child.kill('SIGKILL'));
  browser = client(relay.url, { record: false });
  assert.equal((await browser.login()).status, 200);
  const connections = JSON.parse((await browser.get('/api/connections', { headers: { 'X-Requested-With': 'keyrelay' } })).body).connections;
  assert.equal(connections.find((c) => c.provider === 'keap')?.connected, true, JSON.stringify(connections));
  relay.child.kill('SIGTERM');
  await relay.exited;

  // 5. Purge: says what it deletes, and deletes it.
  r = apt('purge', 'keyrelay');
  assert.equal(r.status, 0, r.all);
  assert.match(r.stdout, /keyrelay: purge deleted \/etc\/keyrelay\/keyrelay\.json and \/etc\/keyrelay\/keyrelay\.env \(with KEYRELAY_STORE_KEY\)/);
  assert.match(r.stdout, /keyrelay: purge deletes \/var\/lib\/keyrelay \(the token store/);
  for (const p of ['/etc/keyrelay', DATA]) assert.ok(!existsSync(p), `${p} is still there after purge`);
});
