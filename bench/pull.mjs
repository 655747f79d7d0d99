#!/usr/bin/env node
// Benchmark: pull + unpack from a local registry, Berth against docker, podman, ctr and
// skopeo+umoci, in the same run, interleaved.
//
//   sudo node bench/pull.mjs [--runs 5] [--only busybox|debian] [--peers docker,podman,ctr,skopeo,berth]
//                            [--mirror URL] [--cache /var/tmp/berth-bench] [--tmp /var/tmp] [--verbose]
// --tmp is where every store (and the registry's) lives: /dev/shm takes the disk file system's
// per-file cost out and leaves the clients' own overheads.
// Berth runs from dist/berth.cjs (`npm run build` first), or $BERTH_BIN as in test/helpers/daemon.ts.
//
// Images (built locally, cached as OCI layouts under --cache so reruns skip this):
//   busybox  Debian busybox-static + applet symlinks, one layer (~1 MB gzip)
//   debian   `debootstrap --variant=minbase bookworm` from the host's Debian mirror, trimmed like
//            distribution base images (no apt lists/caches/logs), one layer (~50 MB gzip)
// (layers are GNU tar + gzip, the layout written here: see packLayout for why not umoci)
// They are pushed with skopeo (OCI manifests) into Debian's `docker-registry` on 127.0.0.1 with
// private storage. Each measured run starts from an empty store (image removed + pruned, or a
// fresh directory) so it really downloads and unpacks; the page cache is NOT dropped: every
// number is warm-cache (registry storage and client binaries in memory), which is what repeated
// CI pulls see and what makes the runs comparable on a shared VM.
//
// The "limit" rows are what no client can beat on this machine: fetching every blob of the image
// over loopback (Node http, all blobs concurrently, bodies discarded) and single-stream gunzip of
// the layers (node:zlib, from the page cache). A streaming client needs at least max(fetch,
// gunzip) plus writing the files; `tar -xzf` of the same layers shows what writing costs.
//
// Isolation: the whole benchmark runs in a private mount namespace in which /run is an empty
// directory of the work dir and /var/lib is an overlay whose upper dir is in the work dir, so the
// peers' hard-wired host paths (/run/containerd, /run/docker, /var/lib/containers/cache, ...)
// never reach the host. Every daemon gets its own root/state/socket under the work dir, is started
// by us and stopped by its PID; mounts under the work dir are unmounted before it is removed.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { createHash } from 'node:crypto';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const berthBin = process.env.BERTH_BIN ?? join(repo, 'dist/berth.cjs');
const ALL_PEERS = ['docker', 'podman', 'ctr', 'skopeo', 'berth'];
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    peers: { type: 'string', default: ALL_PEERS.join(',') },
    mirror: { type: 'string' },
    cache: { type: 'string', default: '/var/tmp/berth-bench' },
    tmp: { type: 'string', default: '/var/tmp' },
    verbose: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const wantedPeers = args.peers.split(',').map((s) => s.trim()).filter(Boolean);
for (const p of wantedPeers) if (!ALL_PEERS.includes(p)) throw new Error(`unknown peer ${p} (known: ${ALL_PEERS.join(', ')})`);
if (args.only && !['busybox', 'debian'].includes(args.only)) throw new Error('--only takes busybox or debian');
if (!(runs >= 1)) throw new Error('--runs takes a positive number');
if (process.getuid() !== 0) throw new Error('run as root (the peers need it)');

// Re-exec inside a private mount namespace (see the header). BERTH_PULL_BENCH_INNER marks the inner run.
if (!process.env.BERTH_PULL_BENCH_INNER) {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, BERTH_PULL_BENCH_INNER: '1' } });
  process.exit(r.status ?? 1);
}

const log = (...m) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A deadline that does not keep the process alive once everything else is done.
const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Runs a command to completion; throws with its output on failure unless `check` is false. */
function sh(cmd, cmdArgs, { env = process.env, check = true, timeoutMs = 600_000, cwd, encoding = 'utf8', maxBuffer = 1 << 26 } = {}) {
  const r = spawnSync(cmd, cmdArgs, { env, cwd, encoding, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer, timeout: timeoutMs });
  if (check && r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status ?? r.signal ?? r.error}): ${String(r.stderr || r.stdout || '').trim().slice(-2000)}`);
  return r;
}
const has = (tool) => sh('sh', ['-c', `command -v ${tool}`], { check: false }).status === 0;

// ------------------------------------------------------------------------------------------------
// images: built once, cached as OCI layouts
// ------------------------------------------------------------------------------------------------

function debianMirror() {
  if (args.mirror) return args.mirror;
  const texts = [];
  for (const dir of ['/etc/apt/sources.list.d']) {
    try { for (const f of readdirSync(dir)) texts.push(readFileSync(join(dir, f), 'utf8')); } catch { /* none */ }
  }
  for (const t of texts) { const m = t.match(/^URIs:\s*(\S+\/debian)\/?\s*$/m); if (m) return m[1]; }
  try { const m = readFileSync('/etc/apt/sources.list', 'utf8').match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s/m); if (m) return m[1]; } catch { /* none */ }
  return 'http://deb.debian.org/debian';
}

// Bump when the recipe below changes: cached layouts of another recipe are rebuilt.
const RECIPE = 'gnu-tar-1';

/**
 * An OCI layout with one layer holding `rootfs`, written here rather than by `umoci insert`:
 * umoci 0.4.7 ends its layer tars without the two zero blocks that mark the end of a tar archive,
 * which image builders (docker, buildkit, debuerreotype) do write. The layer is GNU tar of the
 * tree (sorted names, numeric owners, no "./" prefix, as Debian's official images), `gzip -6`.
 */
function packLayout(rootfs, layout, tag, cmd) {
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  const sha = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
  const put = (buf) => { const d = sha(buf); writeFileSync(join(layout, 'blobs/sha256', d.slice(7)), buf); return { digest: d, size: buf.length }; };
  const tar = sh('tar', ['--create', '--file', '-', '--directory', rootfs, '--numeric-owner', '--sort=name', '--', ...readdirSync(rootfs).sort()],
    { encoding: 'buffer', maxBuffer: 1 << 30 }).stdout;
  const gz = spawnSync('gzip', ['-6', '-n', '-c'], { input: tar, maxBuffer: 1 << 30 });
  if (gz.status !== 0) throw new Error(`gzip failed: ${gz.stderr}`);
  const layer = put(gz.stdout);
  const created = new Date().toISOString();
  const config = put(Buffer.from(JSON.stringify({
    created, architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: [cmd] },
    rootfs: { type: 'layers', diff_ids: [sha(tar)] },
    history: [{ created, created_by: `berth bench/pull.mjs ${tag}` }],
  })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  })));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'bench-recipe'), RECIPE);
}

function buildBusybox(layout) {
  const bb = '/bin/busybox';
  if (!existsSync(bb)) throw new Error('needs busybox-static (/bin/busybox)');
  const root = mkdtempSync(join(args.cache, 'busybox-rootfs-'));
  try {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'var']) mkdirSync(join(root, d), { recursive: true });
    sh('chmod', ['1777', join(root, 'tmp')]);
    sh('install', ['-m', '0755', bb, join(root, 'bin/busybox')]);
    for (const a of sh(bb, ['--list-full']).stdout.split('\n').filter(Boolean)) {
      if (!existsSync(join(root, a))) sh('ln', ['-s', '/bin/busybox', join(root, a)]);
    }
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    packLayout(root, layout, 'latest', '/bin/sh');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function buildDebian(layout) {
  const mirror = debianMirror();
  const root = join(args.cache, 'debian-rootfs');
  rmSync(root, { recursive: true, force: true });
  log(`debootstrap --variant=minbase bookworm from ${mirror} (a few minutes; .debs cached in ${args.cache}/debs)`);
  mkdirSync(join(args.cache, 'debs'), { recursive: true });
  sh('debootstrap', ['--variant=minbase', `--cache-dir=${join(args.cache, 'debs')}`, 'bookworm', root, mirror], { timeoutMs: 3_600_000 });
  try {
    // Trimmed as distribution base images are: no apt lists/caches, logs, or device nodes.
    sh('sh', ['-c', 'cd "$1" && rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb var/log/* dev/* proc/* sys/* tmp/*', 'sh', root]);
    packLayout(root, layout, 'bookworm', 'bash');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The image's manifest and blobs, read from its OCI layout. */
function layoutInfo(layout) {
  const blob = (d) => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  return {
    layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, file: blob(l.digest) })),
    blobs: [manifest.config, ...manifest.layers].map((d) => d.digest),
    bytes: [manifest.config, ...manifest.layers].reduce((n, d) => n + d.size, 0),
  };
}

// ------------------------------------------------------------------------------------------------
// daemons: started by us, stopped by PID
// ------------------------------------------------------------------------------------------------

const daemons = [];
function startDaemon(name, cmd, cmdArgs, env = process.env) {
  const logFile = join(work, `${name}.log`);
  const fd = openSync(logFile, 'a');
  // detached: its own process group, so a Ctrl-C on the terminal reaches us first and we stop it.
  // setpriv --pdeathsig: should this process die without cleaning up (SIGKILL), the daemon gets
  // SIGTERM, and the private mount namespace, with every mount the daemons made, goes with them.
  const child = spawn('setpriv', ['--pdeathsig', 'TERM', cmd, ...cmdArgs], { env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const d = { name, child, pid: child.pid, logFile, exited: false };
  d.exit = new Promise((resolve) => { child.on('exit', () => { d.exited = true; resolve(); }); child.on('error', () => { d.exited = true; resolve(); }); });
  daemons.push(d);
  return d;
}
const logTail = (d) => { try { return readFileSync(d.logFile, 'utf8').split('\n').slice(-15).join('\n'); } catch { return ''; } };

async function stopDaemon(d, graceMs = 20_000) {
  if (d.exited) return;
  const t0 = performance.now();
  try { process.kill(d.pid, 'SIGTERM'); } catch { /* gone */ }
  if (await Promise.race([d.exit.then(() => true), deadline(graceMs).then(() => false)])) {
    if (args.verbose) log(`${d.name} (pid ${d.pid}) stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return;
  }
  log(`${d.name} (pid ${d.pid}) ignored SIGTERM for ${graceMs / 1000} s: SIGKILL`);
  try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ }
  await Promise.race([d.exit, deadline(5000)]);
}

/** Polls `probe` (async, true when ready) until it holds, the daemon dies, or 60 s pass. */
async function waitReady(d, probe) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (d.exited) throw new Error(`${d.name} exited during start-up:\n${logTail(d)}`);
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${d.name} not ready after 60 s:\n${logTail(d)}`);
}

/** GET over a unix socket or TCP; resolves with the status code. */
function httpStatus(opts) {
  return new Promise((resolve, reject) => {
    const req = request({ method: 'GET', agent: false, timeout: 2000, ...opts }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

/** Mount points at or under `dir` in this (private) namespace, deepest first. */
function mountsUnder(dir) {
  const unescape = (s) => s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => unescape(l.split(' ')[4]))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}
function unmountUnder(dir) {
  for (const m of mountsUnder(dir)) {
    if (sh('umount', ['-n', m], { check: false }).status !== 0) sh('umount', ['-n', '-l', m], { check: false });
  }
}

/** Size in MB of a directory tree (one file system), for the store checks. */
function duMB(dir) {
  if (!existsSync(dir)) return 0;
  const r = sh('du', ['-sx', '--block-size=1M', dir], { check: false });
  return Number(r.stdout.split('\t')[0]) || 0;
}

// ------------------------------------------------------------------------------------------------
// set-up
// ------------------------------------------------------------------------------------------------

mkdirSync(args.cache, { recursive: true });
// Short path: podman 4.3 + conmon stall when the storage runroot path is 51+ characters.
const work = mkdtempSync(join(args.tmp, 'bpull.'));
let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  for (const d of [...daemons].reverse()) await stopDaemon(d);
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
  if (existsSync(work)) log(`could not remove ${work}`);
}
// A closed pipe on our output (`| head`) must not kill us before the daemons are stopped.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { log(`${sig}: cleaning up`); cleanup().finally(() => process.exit(130)); });

// Host paths peers create when not kept private, outside /run and /var/lib (which are private here).
const WATCHED = ['/etc/docker/key.json', '/opt/containerd', '/root/.docker', '/etc/cni/net.d/cni.lock', '/root/.config/containers', '/root/.local/share/containers', '/var/tmp/containers-user-0'];
const watchedBefore = new Set(WATCHED.filter((p) => existsSync(p)));

const images = [
  { name: 'busybox', tag: 'latest', layout: join(args.cache, 'busybox-oci'), build: buildBusybox },
  { name: 'debian', tag: 'bookworm', layout: join(args.cache, 'debian-oci'), build: buildDebian },
].filter((im) => !args.only || im.name === args.only);

const rows = new Map(); // "image\tpeer" → { times: [], error?, notes: [] }
const row = (image, peer) => {
  const k = `${image}\t${peer}`;
  if (!rows.has(k)) rows.set(k, { image, peer, times: [], notes: [] });
  return rows.get(k);
};

try {
  for (const im of images) {
    let recipe = '';
    try { recipe = readFileSync(join(im.layout, 'bench-recipe'), 'utf8'); } catch { /* not built, or by an older recipe */ }
    if (recipe !== RECIPE) {
      log(`building ${im.name} image → ${im.layout}`);
      im.build(im.layout);
    }
    Object.assign(im, layoutInfo(im.layout));
    log(`${im.name}: ${im.layers.length} layer(s), ${(im.bytes / 1e6).toFixed(1)} MB compressed`);
  }

  // The private namespace's /run and /var/lib (see the header).
  for (const d of ['run', 'varlib/upper', 'varlib/work']) mkdirSync(join(work, d), { recursive: true });
  sh('mount', ['-n', '--bind', join(work, 'run'), '/run']);
  sh('mount', ['-n', '-t', 'overlay', 'overlay', '-o', `lowerdir=/var/lib,upperdir=${work}/varlib/upper,workdir=${work}/varlib/work`, '/var/lib']);

  // Env for every client: no host configs, no REGISTRY_* (docker-registry reads them as config).
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && !k.startsWith('DOCKER_') && !k.startsWith('CONTAINERS_') && !k.startsWith('CONTAINERD_') && !k.startsWith('BERTH_')));

  // ---- registry ------------------------------------------------------------------------------
  const port = await freePort();
  const reg = `127.0.0.1:${port}`;
  mkdirSync(join(work, 'registry/data'), { recursive: true });
  writeFileSync(join(work, 'registry/config.yml'), `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${work}/registry/data
  cache:
    blobdescriptor: inmemory
http:
  addr: ${reg}
`);
  const registry = startDaemon('registry', 'docker-registry', ['serve', join(work, 'registry/config.yml')], baseEnv);
  await waitReady(registry, async () => (await httpStatus({ host: '127.0.0.1', port, path: '/v2/' })) === 200);

  // containers/image tools (podman, skopeo): private configs; the registry is plain HTTP. File locks
  // (in tmp_dir) instead of the host-wide /dev/shm/libpod_lock segment every podman shares.
  const cdir = join(work, 'containers');
  mkdirSync(cdir, { recursive: true });
  writeFileSync(join(cdir, 'registries.conf'), `unqualified-search-registries = []\nshort-name-mode = "disabled"\n[[registry]]\nlocation = "${reg}"\ninsecure = true\n`);
  writeFileSync(join(cdir, 'auth.json'), '{}');
  writeFileSync(join(cdir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${work}/podman/root"\nrunroot = "${work}/podman/run"\n`);
  writeFileSync(join(cdir, 'containers.conf'), `[containers]\nnetns = "none"\n[network]\nnetwork_config_dir = "${work}/podman/cni"\n[engine]\nlock_type = "file"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${work}/podman/events.log"\ntmp_dir = "${work}/podman/tmp"\n`);
  const cEnv = {
    ...baseEnv,
    CONTAINERS_CONF: join(cdir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(cdir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: join(cdir, 'registries.conf'),
    REGISTRY_AUTH_FILE: join(cdir, 'auth.json'),
  };

  for (const im of images) {
    im.ref = `${reg}/bench/${im.name}:${im.tag}`;
    sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${im.layout}:${im.tag}`, `docker://${im.ref}`], { env: cEnv });
  }
  log(`registry ${reg} (pid ${registry.pid}) holds ${images.map((im) => im.ref).join(', ')}`);

  // ---- peers -----------------------------------------------------------------------------------
  // Each peer: setup() starts what it needs (once), pull(im) is what is timed, reset(ims) empties its
  // store of every bench image (untimed), store is the directory whose size proves the unpack and
  // the reset.

  /** A private containerd; CRI off, every path (root, state, sockets, opt) in `dir`. */
  async function containerd(name, dir) {
    for (const d of ['root', 'state', 'opt']) mkdirSync(join(dir, d), { recursive: true });
    const sock = join(dir, 'containerd.sock');
    writeFileSync(join(dir, 'config.toml'), `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"
`);
    const d = startDaemon(name, 'containerd', ['--config', join(dir, 'config.toml')], baseEnv);
    await waitReady(d, async () => sh('ctr', ['-a', sock, 'version'], { check: false, timeoutMs: 5000 }).status === 0);
    return sock;
  }

  const dockerCli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'; // Debian's, same version as dockerd
  const D = join(work, 'docker');
  const dEnv = { ...baseEnv, DOCKER_HOST: `unix://${D}/docker.sock`, DOCKER_CONFIG: join(D, 'cli') };
  const podman = (a) => ['podman', ['--root', `${work}/podman/root`, '--runroot', `${work}/podman/run`, ...a]];
  const C = join(work, 'ctr');
  const ctrNs = ['-n', 'berthbench'];
  let ctrSock;
  const SK = join(work, 'skopeo');
  const B = join(work, 'berth');
  const bEnv = { ...baseEnv, BERTH_AUTOSTART: '0' };
  const berthCli = (a) => [process.execPath, [berthBin, '-H', `unix://${B}/berth.sock`, ...a]];
  let berthd;
  async function startBerth() {
    mkdirSync(B, { recursive: true });
    writeFileSync(join(B, 'daemon.json'), JSON.stringify({ 'insecure-registries': [reg] }));
    berthd = startDaemon('berth', process.execPath, [berthBin, 'daemon', '--host', `unix://${B}/berth.sock`,
      '--data-root', join(B, 'data'), '--exec-root', join(B, 'exec'), '--config-file', join(B, 'daemon.json')], bEnv);
    await waitReady(berthd, async () => (await httpStatus({ socketPath: join(B, 'berth.sock'), path: '/_ping' })) === 200);
  }
  /** The fallback reset: a fresh daemon over an empty data root. */
  async function restartBerthEmpty() {
    await stopDaemon(berthd);
    daemons.splice(daemons.indexOf(berthd), 1);
    unmountUnder(join(B, 'data'));
    rmSync(join(B, 'data'), { recursive: true, force: true });
    rmSync(join(B, 'exec'), { recursive: true, force: true });
    await startBerth();
  }

  const PEERS = {
    docker: {
      label: 'docker pull',
      store: join(D, 'data'),
      async setup() {
        for (const d of ['data', 'exec', 'cli']) mkdirSync(join(D, d), { recursive: true });
        const sock = await containerd('docker-containerd', join(D, 'containerd'));
        writeFileSync(join(D, 'daemon.json'), JSON.stringify({
          'data-root': join(D, 'data'), 'exec-root': join(D, 'exec'), pidfile: join(D, 'docker.pid'),
          hosts: [`unix://${D}/docker.sock`], containerd: sock, 'deprecated-key-path': join(D, 'key.json'),
          'storage-driver': 'overlay2', iptables: false, 'ip-masq': false, 'ip-forward': false, bridge: 'none',
          'insecure-registries': [reg],
        }));
        const d = startDaemon('dockerd', 'dockerd', ['--config-file', join(D, 'daemon.json')], baseEnv);
        await waitReady(d, async () => (await httpStatus({ socketPath: join(D, 'docker.sock'), path: '/_ping' })) === 200);
        this.version = sh(dockerCli, ['version', '-f', '{{.Server.Version}}'], { env: dEnv }).stdout.trim();
      },
      pull: (im) => [dockerCli, ['pull', '-q', im.ref], dEnv],
      reset(ims) {
        sh(dockerCli, ['rmi', '-f', ...ims.map((im) => im.ref)], { env: dEnv, check: false });
        sh(dockerCli, ['image', 'prune', '-a', '-f'], { env: dEnv, check: false });
      },
    },
    podman: {
      label: 'podman pull',
      store: join(work, 'podman/root'),
      setup() {
        for (const d of ['root', 'run', 'tmp', 'cni']) mkdirSync(join(work, 'podman', d), { recursive: true });
        this.version = sh(...podman(['version', '-f', '{{.Client.Version}}']), { env: cEnv }).stdout.trim();
      },
      pull: (im) => [...podman(['pull', '-q', '--tls-verify=false', im.ref]), cEnv],
      reset(ims) {
        sh(...podman(['rmi', '-f', ...ims.map((im) => im.ref)]), { env: cEnv, check: false });
        sh(...podman(['image', 'prune', '-a', '-f']), { env: cEnv, check: false });
      },
    },
    ctr: {
      label: 'ctr pull (+unpack)',
      store: join(C, 'root'),
      async setup() {
        ctrSock = await containerd('containerd', C);
        this.version = sh('ctr', ['-a', ctrSock, 'version'], { check: false }).stdout.match(/Version:\s*(\S+)/g)?.pop()?.split(/\s+/)[1] ?? '?';
      },
      // `images pull` unpacks into the default (overlayfs) snapshotter after fetching.
      pull: (im) => ['ctr', ['-a', ctrSock, ...ctrNs, 'images', 'pull', '--plain-http', im.ref], baseEnv],
      reset(ims) {
        // --sync waits for containerd's garbage collection: content and snapshots are gone after it.
        sh('ctr', ['-a', ctrSock, ...ctrNs, 'images', 'rm', '--sync', ...ims.map((im) => im.ref)], { check: false });
      },
    },
    skopeo: {
      label: 'skopeo copy + umoci unpack',
      store: SK,
      setup() {
        this.version = `${sh('skopeo', ['--version']).stdout.trim().split(' ').pop()} + umoci ${sh('umoci', ['--version']).stdout.trim().split(' ').pop()}`;
      },
      // Two steps, one row: skopeo does not unpack, umoci unpacks the layout it wrote.
      pull: (im) => ['sh', ['-c', 'skopeo copy -q --src-tls-verify=false "docker://$1" "oci:$2/layout:$3" && umoci unpack --image "$2/layout:$3" "$2/bundle"',
        'sh', im.ref, SK, im.tag], cEnv],
      reset() { rmSync(SK, { recursive: true, force: true }); mkdirSync(SK); },
    },
    berth: {
      label: 'berth pull',
      store: join(B, 'data'),
      async setup() {
        if (!existsSync(berthBin)) throw new Error(`${berthBin} is missing: npm run build`);
        // A stale bundle would measure code that is no longer in src/: say so (a benchmark, unlike
        // the tests, still runs: the numbers may be wanted for exactly that build).
        const newest = sh('find', [join(repo, 'src'), '-name', '*.ts', '-newer', berthBin]).stdout.trim().split('\n').filter(Boolean);
        if (newest.length && !process.env.BERTH_BIN) log(`WARNING: ${berthBin} is older than ${newest.length} file(s) in src/ (e.g. ${newest[0]}): npm run build`);
        await startBerth();
        this.version = sh(...berthCli(['version', '--format', '{{.Server.Version}}']), { env: bEnv, check: false }).stdout.trim() || '?';
      },
      pull: (im) => [...berthCli(['pull', '-q', im.ref]), bEnv],
      async reset(ims, im) {
        // rmi + prune like docker; until those exist (or if they fail), a fresh daemon and data root.
        // (rmi of an image that is not there fails, so only those present are named.)
        const present = ims.filter((x) => sh(...berthCli(['image', 'inspect', x.ref]), { env: bEnv, check: false }).status === 0);
        const rmi = present.length ? sh(...berthCli(['rmi', '-f', ...present.map((x) => x.ref)]), { env: bEnv, check: false }) : { status: 0 };
        const prune = rmi.status === 0 ? sh(...berthCli(['image', 'prune', '-a', '-f']), { env: bEnv, check: false }) : rmi;
        if (prune.status !== 0) {
          if (!this.restartNoted) { row(im.name, 'berth').notes.push(`reset by restarting the daemon over an empty data root (rmi/prune: ${String(prune.stderr || prune.stdout).trim().split('\n')[0]})`); this.restartNoted = true; }
          await restartBerthEmpty();
        }
      },
    },
  };

  const peers = [];
  for (const name of wantedPeers) {
    const p = { name, ...PEERS[name] };
    const tool = { docker: 'dockerd', podman: 'podman', ctr: 'containerd', skopeo: 'umoci', berth: 'node' }[name];
    try {
      if (!has(tool)) throw new Error(`${tool} is not installed`);
      await p.setup();
      peers.push(p);
      log(`${name}: ${p.version ?? ''} ready`);
    } catch (e) {
      log(`${name}: set-up failed, skipped: ${e.message}`);
      for (const im of images) row(im.name, name).error = `set-up failed: ${e.message.split('\n')[0]}`;
    }
  }

  // ---- the limit -------------------------------------------------------------------------------
  /** Every blob of the image over loopback, concurrently, bodies discarded (Node http). */
  function fetchAll(im) {
    return Promise.all(im.blobs.map((digest) => new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `/v2/bench/${im.name}/blobs/${digest}`, agent: false }, (res) => {
        // Filesystem storage serves blobs itself: a 200 with the body (no redirect to follow).
        if (res.statusCode !== 200) reject(new Error(`blob ${digest}: HTTP ${res.statusCode}`));
        let n = 0;
        res.on('data', (c) => { n += c.length; });
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.end();
    })));
  }
  async function gunzipAll(im) {
    for (const l of im.layers) await pipeline(createReadStream(l.file, { highWaterMark: 1 << 20 }), createGunzip(), new Writable({ write(_c, _e, cb) { cb(); } }));
  }
  const timeAsync = async (f) => { const t0 = performance.now(); await f(); return (performance.now() - t0) / 1000; };

  // ---- runs --------------------------------------------------------------------------------------
  const tStart = performance.now();
  for (let i = 0; i < runs; i++) {
    for (const im of images) {
      // The limit first: it also warms the registry's storage into the page cache for everybody.
      sh('sync', []);
      row(im.name, 'limit: fetch blobs').times.push(await timeAsync(() => fetchAll(im)));
      row(im.name, 'limit: gunzip (node:zlib)').times.push(await timeAsync(() => gunzipAll(im)));
      const tx = join(work, 'tar-x');
      mkdirSync(tx);
      sh('sync', []);
      const t0 = performance.now();
      for (const l of im.layers) sh('tar', ['--numeric-owner', '-xpzf', l.file, '-C', tx]);
      row(im.name, 'ref: tar -xzf of the layers').times.push((performance.now() - t0) / 1000);
      rmSync(tx, { recursive: true, force: true });

      // Interleaved, and the order rotates each run so no peer always goes first after the limit.
      const order = peers.map((_, k) => peers[(k + i) % peers.length]);
      for (const p of order) {
        const r = row(im.name, p.name);
        if (r.dead) continue;
        await p.reset(images, im);
        // Flush what earlier runs wrote, so no run pays for another's writeback (the page cache
        // itself is kept: warm-cache numbers).
        sh('sync', []);
        // The store's size after a reset that followed a pull shows the reset really emptied it.
        if (i === Math.min(1, runs - 1)) r.storeEmpty = duMB(p.store);
        const [cmd, cmdArgs, env] = p.pull(im);
        const t1 = performance.now();
        const res = spawnSync(cmd, cmdArgs, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, timeout: 600_000 });
        const secs = (performance.now() - t1) / 1000;
        if (res.status !== 0) {
          r.error = `${p.label} failed (exit ${res.status ?? res.signal}): ${(res.stderr || res.stdout || String(res.error ?? '')).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;
          log(`${im.name} ${p.name}: ${r.error}`);
          // One failure is enough to know; a broken peer is not retried every run.
          r.dead = true;
          continue;
        }
        r.times.push(secs);
        if (i === 0) r.storeFull = duMB(p.store);
        if (args.verbose) log(`run ${i + 1} ${im.name} ${p.name}: ${secs.toFixed(2)} s`);
      }
    }
    log(`run ${i + 1}/${runs} done`);
  }
  const total = (performance.now() - tStart) / 1000;

  // ---- report ------------------------------------------------------------------------------------
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  const median = (xs) => { const s = sorted(xs); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const f = (s) => s.toFixed(2);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\npull + unpack from a loopback registry, ${runs} interleaved runs, warm page cache; seconds: median [min–max]`);
  const fs = sh('findmnt', ['-n', '-o', 'FSTYPE', '-T', args.tmp], { check: false }).stdout.trim().split('\n')[0];
  console.log(`machine: ${sh('nproc', []).stdout.trim()} CPUs, load ${load}, kernel ${sh('uname', ['-r']).stdout.trim()}; stores in ${args.tmp} (${fs}); measured ${total.toFixed(0)} s`);
  console.log(`versions: ${peers.map((p) => `${p.name} ${p.version}`).join(', ')}`);
  for (const im of images) {
    console.log(`\n${im.name} (${im.layers.length} layer(s), ${(im.bytes / 1e6).toFixed(1)} MB compressed)`);
    const berth = rows.get(`${im.name}\tberth`);
    const berthMed = berth?.times.length ? median(berth.times) : undefined;
    console.log(`${''.padEnd(32)} ${'median'.padStart(7)}  ${'[min–max]'.padEnd(15)} ${'÷ berth'.padStart(8)}  store MB after pull / after reset`);
    for (const r of rows.values()) {
      if (r.image !== im.name) continue;
      const label = (PEERS[r.peer]?.label ?? r.peer).padEnd(32);
      if (!r.times.length) { console.log(`${label} ${r.error ?? 'no result'}`); continue; }
      const s = sorted(r.times);
      const ratio = berthMed && r.peer !== 'berth' && PEERS[r.peer] ? `×${(median(r.times) / berthMed).toFixed(2)}` : '';
      const store = r.storeFull !== undefined ? `${r.storeFull} / ${r.storeEmpty}` : '';
      console.log(`${label} ${f(median(r.times)).padStart(7)}  [${f(s[0])}–${f(s.at(-1))}]`.padEnd(57) + `${ratio.padStart(8)}  ${store}${r.error ? `  (later: ${r.error})` : ''}`);
      for (const n of r.notes) console.log(`${''.padEnd(33)}note: ${n}`);
    }
    const fetch = median(row(im.name, 'limit: fetch blobs').times);
    const gz = median(row(im.name, 'limit: gunzip (node:zlib)').times);
    console.log(`limit: fetch ${f(fetch)} s + gunzip ${f(gz)} s = ${f(fetch + gz)} s one after the other, ${f(Math.max(fetch, gz))} s streamed` +
      (berthMed ? `; berth is ${f(berthMed - Math.max(fetch, gz))} s above the streamed limit` : '; berth: no result'));
  }
  const created = WATCHED.filter((p) => existsSync(p) && !watchedBefore.has(p));
  if (created.length) console.log(`\nWARNING: host paths appeared during the run (a peer or someone else): ${created.join(', ')}`);
} catch (e) {
  console.error(e.stack ?? e);
  process.exitCode = 1;
} finally {
  await cleanup();
}
