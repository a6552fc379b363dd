#!/usr/bin/env node
// One-step set-up for a fresh clone: npm dependencies, a WebGPU adapter (Mesa's lavapipe
// Vulkan driver when the machine has no GPU), and the build. Idempotent: each step checks
// first and only acts when something is missing. Uses Node built-ins only, because it runs
// before `npm install`.
//
//   node scripts/setup.mjs            set up, saying what is done
//   node scripts/setup.mjs --quiet    print only the steps that change something
//   node scripts/setup.mjs --no-build skip the final build
//   node scripts/setup.mjs --no-browser do not install Chromium for the browser tests
//   node scripts/setup.mjs --no-torch  do not install PyTorch for the bench's `step` peer
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');
const say = (msg) => console.log(`setup: ${msg}`);
const info = (msg) => quiet || say(msg);

function run(cmd, argv, opts = {}) {
  if (!tryRun(cmd, argv, opts)) process.exit(1);
}

/** Runs a command, saying so; false (with the failure printed) when it fails. */
function tryRun(cmd, argv, opts = {}) {
  say(`$ ${[cmd, ...argv].join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status === 0) return true;
  console.error(`setup: '${cmd} ${argv.join(' ')}' failed (exit ${r.status ?? r.signal})`);
  return false;
}

// Another apt-get (an unattended upgrade, or a second set-up in another clone) holds apt's
// locks, and `apt-get update` fails at once on its lists lock (DPkg::Lock::Timeout covers only
// dpkg's): wait for it, up to 5 minutes, before each apt-get.
const APT_WAIT = ['-o', 'DPkg::Lock::Timeout=300'];
const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
function waitForApt() {
  // unattended-upgrade holds dpkg's lock from Python (its process name is cut to 15 characters).
  // Without pgrep (procps) there is no waiting: apt-get then fails on a held lock as before.
  const busy = () => ['apt-get', 'apt', 'dpkg', 'unattended-upgr'].some((name) => spawnSync('pgrep', ['-x', name], { stdio: 'ignore' }).status === 0);
  let i = 0;
  for (; i < 300 && busy(); i++) {
    if (i === 0) say('waiting for another apt-get or dpkg to finish');
    spawnSync('sleep', ['1']);
  }
  if (i === 300) say('another apt-get or dpkg is still running after 5 minutes; trying anyway');
}
const apt = (argv) => (waitForApt(), run('apt-get', [...APT_WAIT, ...argv], { env: aptEnv }));
const tryApt = (argv) => (waitForApt(), tryRun('apt-get', [...APT_WAIT, ...argv], { env: aptEnv }));

// 1. Node itself.
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  console.error(`setup: Node ${process.versions.node} is too old; Node 20 or newer is needed (the webgpu package is ESM and uses Node 20 APIs).`);
  process.exit(1);
}

// 2. npm dependencies: (re)install when node_modules is missing or older than the lockfile.
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules/.package-lock.json');
const stale = !existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs + 1000);
if (stale) {
  say('installing npm dependencies');
  run('npm', [existsSync(lock) ? 'ci' : 'install', '--no-audit', '--no-fund']);
} else info('npm dependencies are installed');

// 3. A WebGPU adapter. Probed in a child process: a broken Vulkan driver can abort the
// process that loads dawn.node, and the probe must be able to report that.
if (!process.env.XDG_RUNTIME_DIR) {
  // Mesa warns on every start without it.
  const dir = join(tmpdir(), `xdg-${process.getuid?.() ?? 'user'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

function probeAdapter() {
  const r = spawnSync(process.execPath, [join(root, 'scripts/probe-adapter.mjs')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = (r.stdout || '').trim();
  if (r.status === 0 && out.startsWith('adapter:')) return { ok: true, text: out };
  return { ok: false, text: (out + '\n' + (r.stderr || '')).trim() || `exit ${r.status ?? r.signal}` };
}

let probe = probeAdapter();
if (probe.ok) info(probe.text);
else {
  const reason = probe.text.split('\n').find((l) => l.startsWith('no adapter:')) ?? probe.text.split('\n').filter((l) => /error|fail/i.test(l))[0] ?? '';
  say(`no WebGPU adapter yet${reason ? ` (${reason.replace(/^no adapter: /, '')})` : ''}`);
  installLavapipe();
  probe = probeAdapter();
  if (!probe.ok) {
    console.error(`setup: still no WebGPU adapter after installing Mesa's Vulkan driver:\n${probe.text}`);
    process.exit(1);
  }
  say(probe.text);
}

function osRelease() {
  try {
    return Object.fromEntries(
      readFileSync('/etc/os-release', 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/^"|"$/g, '')];
        }),
    );
  } catch {
    return {};
  }
}

// Debian bookworm's own Mesa (22.3) is refused by Dawn; bookworm-backports' (25.x) works.
// Other distributions with Mesa >= 23 need only the plain package.
function installLavapipe() {
  const os = osRelease();
  const isRoot = process.getuid?.() === 0;
  const bookworm = os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm';
  const commands = [];
  let backports = null;
  if (bookworm) {
    let uri = 'http://deb.debian.org/debian';
    for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'utf8');
      const m = text.match(/^URIs:\s*(\S+)/m) || text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m);
      if (m) {
        uri = m[1];
        break;
      }
    }
    backports = `Types: deb\nURIs: ${uri}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
    commands.push(`printf '${backports.replace(/\n/g, '\\n')}' > /etc/apt/sources.list.d/backports.sources`);
    commands.push('apt-get update');
    commands.push('DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1');
  } else if (existsSync('/usr/bin/apt-get')) {
    commands.push('apt-get update', 'DEBIAN_FRONTEND=noninteractive apt-get install -y mesa-vulkan-drivers libvulkan1');
  } else if (existsSync('/usr/bin/dnf')) {
    commands.push('dnf install -y mesa-vulkan-drivers vulkan-loader');
  } else {
    console.error('setup: no WebGPU adapter, and this is not a Debian/Ubuntu/Fedora system: install your GPU vendor\'s Vulkan driver, or Mesa >= 23 with lavapipe (mesa-vulkan-drivers), then run `npm run setup` again.');
    process.exit(1);
  }
  if (!isRoot) {
    console.error('setup: no WebGPU adapter. Installing the Vulkan driver needs root; run these, then `npm run setup` again:');
    for (const c of commands) console.error(`  sudo sh -c "${c.replace(/"/g, '\\"')}"`);
    process.exit(1);
  }
  say("installing Mesa's lavapipe Vulkan driver (software WebGPU for machines without a GPU)");
  if (backports) {
    say('adding bookworm-backports (its Mesa 25 is the first Dawn accepts on Debian 12)');
    writeFileSync('/etc/apt/sources.list.d/backports.sources', backports);
    apt(['update', '-q']);
    apt(['install', '-y', '-q', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1']);
  } else if (existsSync('/usr/bin/apt-get')) {
    apt(['update', '-q']);
    apt(['install', '-y', '-q', 'mesa-vulkan-drivers', 'libvulkan1']);
  } else run('dnf', ['install', '-y', 'mesa-vulkan-drivers', 'vulkan-loader']);
}

// 4. A browser for the browser tests (Debian's chromium; playwright-core drives it). Only
// installed as root on Debian/Ubuntu; elsewhere the browser tests skip with a message.
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!args.has('--no-browser') && !existsSync(chromium)) {
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    say("installing Debian's chromium for the browser tests (--no-browser skips this)");
    apt(['update', '-q']);
    apt(['install', '-y', '-q', '--no-install-recommends', 'chromium']);
  } else info(`no Chromium at ${chromium}: the browser tests will skip (install chromium, or set CHROMIUM)`);
} else if (existsSync(chromium)) info(`browser for the browser tests: ${chromium}`);

// 5. PyTorch for the bench's `step` section (its peer, bench/peers/radfinder_step.py, runs
// under $PYTHON or /usr/bin/python3). Debian's python3-torch, installed only as root and only
// when torch does not import; the section runs without its peer otherwise. Not for `npm test`
// and `npm start` (pretest / prestart run this script too): nothing there needs it.
const lifecycle = process.env.npm_lifecycle_event ?? '';
if (!args.has('--no-torch') && lifecycle !== 'pretest' && lifecycle !== 'prestart') {
  const python = process.env.PYTHON || '/usr/bin/python3';
  const hasTorch = () => spawnSync(python, ['-c', 'import numpy, torch'], { stdio: 'ignore', timeout: 120_000 }).status === 0;
  // Debian's python3-torch links libblas.so.3, which is the reference BLAS unless an OpenBLAS
  // is installed (python3-torch only recommends one, and --no-install-recommends skips it):
  // PyTorch's 1024^3 matmul then runs at 3.4 GFLOP/s instead of 63 (one thread) on the
  // development VM, and the peer is several times slower than it should be. The OpenMP build of
  // OpenBLAS, because it follows torch.set_num_threads (the bench times PyTorch at 1 thread and
  // at every core); the pthread build keeps its own pool of one thread per core.
  const debianRoot = !process.env.PYTHON && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  const installed = (pkg) => spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed') ?? false;
  const hasOpenBlas = () => ['libopenblas0-openmp', 'libopenblas0-pthread', 'libopenblas0-serial'].some(installed);
  if (hasTorch()) {
    info(`PyTorch for the bench's step peer: ${python}`);
    if (debianRoot && !hasOpenBlas()) {
      // Optional (a faster peer), so a failure here (offline, a broken mirror) only warns.
      say("installing Debian's OpenBLAS for the PyTorch peer (python3-torch otherwise runs on the reference BLAS)");
      const ok = tryApt(['update', '-q']) && tryApt(['install', '-y', '-q', '--no-install-recommends', 'libopenblas0-openmp']);
      if (!ok) say("could not install libopenblas0-openmp: the bench's PyTorch peer runs on the reference BLAS (its step several times slower)");
    } else if (installed('libopenblas0-pthread') && !installed('libopenblas0-openmp'))
      info("OpenBLAS here is the pthread build: PyTorch's '1 thread' matmuls in the bench use every core (libopenblas0-openmp follows torch.set_num_threads)");
  } else if (debianRoot) {
    say("installing Debian's python3-torch and OpenBLAS for the bench's PyTorch peer (--no-torch skips this)");
    // Optional like the OpenBLAS above: only the bench's peer needs it, so a failed install
    // warns and the set-up goes on to the build.
    const ok = tryApt(['update', '-q']) && tryApt(['install', '-y', '-q', '--no-install-recommends', 'python3-torch', 'python3-numpy', 'libopenblas0-openmp']);
    if (!ok) say("could not install python3-torch: the bench's step section will run without its PyTorch peer (run `npm run setup` again to retry)");
    else if (!hasTorch()) say(`python3-torch is installed but ${python} still cannot import torch: the bench's step section will run without its peer`);
  } else
    info(
      `${python} cannot import torch: the bench's step section will run without its PyTorch peer ` +
        `(as root on Debian/Ubuntu: apt-get install python3-torch libopenblas0-openmp; or set PYTHON to a Python with torch)`,
    );
}

// 6. Build (dist/ for the CLI and the browser; tests build their own bundles).
if (!args.has('--no-build')) {
  info('building dist/');
  run(process.execPath, [join(root, 'build.mjs'), '--quiet']);
}
info('ready');
