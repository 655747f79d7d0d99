// Shared pieces of the benchmarks that run Berth's peers (dockerd, containerd/ctr, podman, crun)
// privately: each with its own root, state and socket under the bench's work dir, started by the
// bench and stopped by PID, inside a private mount namespace whose /run and /var/lib are the
// bench's own, so the peers' hard-wired host paths (/run/containerd, /run/docker,
// /var/lib/containers/cache, ...) never reach the host. The approach is bench/pull.mjs's; the
// pieces are collected here for bench/containers.mjs (pull.mjs keeps its own copies).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const log = (...m) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...m);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A deadline that does not keep the process alive once everything else is done. */
export const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Runs a command to completion; throws with its output on failure unless `check` is false. */
export function sh(cmd, cmdArgs, { env = process.env, check = true, timeoutMs = 600_000, cwd, encoding = 'utf8', maxBuffer = 1 << 26, input } = {}) {
  const r = spawnSync(cmd, cmdArgs, { env, cwd, encoding, input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer, timeout: timeoutMs });
  if (check && r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status ?? r.signal ?? r.error}): ${String(r.stderr || r.stdout || '').trim().slice(-2000)}`);
  return r;
}
export const has = (tool) => sh('sh', ['-c', `command -v ${tool}`], { check: false }).status === 0;

/** Env for every client: no host configs (REGISTRY_* are read by docker-registry as config). */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && !k.startsWith('DOCKER_') && !k.startsWith('CONTAINERS_') && !k.startsWith('CONTAINERD_') && !k.startsWith('BERTH_')));
}

// ------------------------------------------------------------------------------------------------
// namespaces and mounts
// ------------------------------------------------------------------------------------------------

/**
 * Re-executes this script inside private namespaces (once; `marker` in the env marks the inner
 * run) and exits with its status. `net`: also a private network namespace, so bridges, veths and
 * firewall rules the daemons make vanish with it. `dropCgroup2`: unmount the host's hybrid
 * cgroup2 mount inside, because crun 1.8 refuses hybrid layouts (every tool then sees the same v1
 * layout; the host's mounts are untouched).
 */
export function enterPrivateNamespaces(marker, { net = false, dropCgroup2 = false } = {}) {
  if (process.env[marker]) return;
  const pre = [];
  if (dropCgroup2 && existsSync('/sys/fs/cgroup/unified')) pre.push('umount -n /sys/fs/cgroup/unified 2>/dev/null || true');
  // sysfs shows the network devices of the namespace that mounted it, so /sys/class/net would
  // still list the host's links (a daemon that checks for its bridge there would find the host's):
  // a sysfs mounted inside the new namespace is bound over the two net directories.
  if (net) pre.push('ip link set lo up', 't=$(mktemp -d)', 'mount -n -t sysfs sysfs "$t"',
    'mount -n --bind "$t/class/net" /sys/class/net', 'mount -n --bind "$t/devices/virtual/net" /sys/devices/virtual/net',
    'umount -n -l "$t"', 'rmdir "$t"');
  const r = spawnSync('unshare', ['--mount', ...(net ? ['--net'] : []), '--propagation', 'private', 'sh', '-c',
    `${pre.map((c) => `${c} || exit 1`).join('; ')}${pre.length ? '; ' : ''}exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)],
  { stdio: 'inherit', env: { ...process.env, [marker]: '1' } });
  process.exit(r.status ?? 1);
}

/** Points this (private) namespace's /run at an empty dir of `work` and overlays /var/lib. */
export function privateRunAndVarLib(work) {
  for (const d of ['run', 'varlib/upper', 'varlib/work']) mkdirSync(join(work, d), { recursive: true });
  sh('mount', ['-n', '--bind', join(work, 'run'), '/run']);
  sh('mount', ['-n', '-t', 'overlay', 'overlay', '-o', `lowerdir=/var/lib,upperdir=${work}/varlib/upper,workdir=${work}/varlib/work`, '/var/lib']);
}

/** Mount points at or under `dir` in this (private) namespace, deepest first. */
export function mountsUnder(dir) {
  const unescape = (s) => s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => unescape(l.split(' ')[4]))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}
export function unmountUnder(dir) {
  for (const m of mountsUnder(dir)) {
    if (sh('umount', ['-n', m], { check: false }).status !== 0) sh('umount', ['-n', '-l', m], { check: false });
  }
}

/** Host paths peers create when not kept private, outside /run and /var/lib. */
export const WATCHED = ['/etc/docker/key.json', '/opt/containerd', '/root/.docker', '/etc/cni/net.d/cni.lock', '/root/.config/containers', '/root/.local/share/containers', '/var/tmp/containers-user-0'];

// ------------------------------------------------------------------------------------------------
// daemons: started by us, stopped by PID
// ------------------------------------------------------------------------------------------------

export class Daemons {
  constructor(work, { verbose = false } = {}) { this.work = work; this.verbose = verbose; this.list = []; }

  start(name, cmd, cmdArgs, env = process.env) {
    const logFile = join(this.work, `${name}.log`);
    const fd = openSync(logFile, 'a');
    // detached: its own process group, so a Ctrl-C on the terminal reaches us first and we stop
    // it. setpriv --pdeathsig: should the bench die without cleaning up (SIGKILL), the daemon gets
    // SIGTERM, and the private mount namespace, with every mount the daemons made, goes with them.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', cmd, ...cmdArgs], { env, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    const d = { name, child, pid: child.pid, logFile, exited: false };
    d.exit = new Promise((resolve) => { child.on('exit', () => { d.exited = true; resolve(); }); child.on('error', () => { d.exited = true; resolve(); }); });
    this.list.push(d);
    return d;
  }

  async stop(d, graceMs = 20_000) {
    const i = this.list.indexOf(d);
    if (i >= 0) this.list.splice(i, 1);
    if (d.exited) return;
    const t0 = performance.now();
    try { process.kill(d.pid, 'SIGTERM'); } catch { /* gone */ }
    if (await Promise.race([d.exit.then(() => true), deadline(graceMs).then(() => false)])) {
      if (this.verbose) log(`${d.name} (pid ${d.pid}) stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return;
    }
    log(`${d.name} (pid ${d.pid}) ignored SIGTERM for ${graceMs / 1000} s: SIGKILL`);
    try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([d.exit, deadline(5000)]);
  }

  async stopAll() { for (const d of [...this.list].reverse()) await this.stop(d); }

  /** Polls `probe` (async, true when ready) until it holds, the daemon dies, or 60 s pass. */
  async waitReady(d, probe, timeoutMs = 60_000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (d.exited) throw new Error(`${d.name} exited during start-up:\n${logTail(d)}`);
      if (await probe().catch(() => false)) return;
      await sleep(50);
    }
    throw new Error(`${d.name} not ready after ${timeoutMs / 1000} s:\n${logTail(d)}`);
  }
}
export const logTail = (d, n = 15) => { try { return readFileSync(d.logFile, 'utf8').split('\n').slice(-n).join('\n'); } catch { return ''; } };

/** One HTTP request (unix socket or TCP); resolves with { status, body }. */
export function http(opts, body) {
  return new Promise((resolve, reject) => {
    const req = request({ method: 'GET', agent: false, timeout: 30_000, ...opts, headers: { Host: 'localhost', ...(body ? { 'Content-Type': 'application/json' } : {}), ...(opts.headers ?? {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
export const httpStatus = async (opts) => (await http({ ...opts, timeout: 2000 })).status;

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

// ------------------------------------------------------------------------------------------------
// peers
// ------------------------------------------------------------------------------------------------

/** A private containerd; CRI off, every path (root, state, sockets, opt) in `dir`. Returns its socket. */
export async function startContainerd(daemons, name, dir, env) {
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
  const d = daemons.start(name, 'containerd', ['--config', join(dir, 'config.toml')], env);
  await daemons.waitReady(d, async () => sh('ctr', ['-a', sock, 'version'], { check: false, timeoutMs: 5000 }).status === 0);
  return { sock, daemon: d };
}

/**
 * A private dockerd (Debian's docker.io) with its own containerd, data-root, exec-root, pidfile,
 * socket and key under `dir`; overlay2; no iptables, no default bridge. Returns its socket.
 */
export async function startDockerd(daemons, dir, env, extra = {}) {
  for (const d of ['data', 'exec', 'cli']) mkdirSync(join(dir, d), { recursive: true });
  const ctd = await startContainerd(daemons, 'docker-containerd', join(dir, 'containerd'), env);
  const sock = join(dir, 'docker.sock');
  writeFileSync(join(dir, 'daemon.json'), JSON.stringify({
    'data-root': join(dir, 'data'), 'exec-root': join(dir, 'exec'), pidfile: join(dir, 'docker.pid'),
    hosts: [`unix://${sock}`], containerd: ctd.sock, 'deprecated-key-path': join(dir, 'key.json'),
    'storage-driver': 'overlay2', iptables: false, 'ip-masq': false, 'ip-forward': false, bridge: 'none',
    ...extra,
  }));
  const d = daemons.start('dockerd', 'dockerd', ['--config-file', join(dir, 'daemon.json')], env);
  await daemons.waitReady(d, async () => (await httpStatus({ socketPath: sock, path: '/_ping' })) === 200);
  return { sock, daemon: d, containerd: ctd };
}

/**
 * Private configuration for the containers/* tools (podman, skopeo) under `dir`: own storage
 * (graphroot/runroot), no network by default, cgroupfs, file locks (in tmp_dir) instead of the
 * host-wide /dev/shm/libpod_lock segment every podman shares, events to a file. Returns the env
 * and the podman argument prefix. Short paths: podman 4.3 + conmon stall when the storage runroot
 * path is 51+ characters.
 */
export function podmanSetup(dir, env, registries = []) {
  for (const d of ['root', 'run', 'tmp', 'cni', 'conf']) mkdirSync(join(dir, d), { recursive: true });
  const c = join(dir, 'conf');
  writeFileSync(join(c, 'registries.conf'), `unqualified-search-registries = []\nshort-name-mode = "disabled"\n${registries.map((r) => `[[registry]]\nlocation = "${r}"\ninsecure = true\n`).join('')}`);
  writeFileSync(join(c, 'auth.json'), '{}');
  writeFileSync(join(c, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
  // podman asks for RLIMIT_NOFILE 1048576 by default, which fails where root lacks
  // CAP_SYS_RESOURCE (as here): the host's hard limits instead. Logs as k8s-file (no journald).
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = (label) => {
    const v = (limits.split('\n').find((l) => l.startsWith(label)) ?? '').slice(label.length).trim().split(/\s+/)[1];
    return v === undefined || v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v);
  };
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  const nofile = Math.min(hard('Max open files'), 1048576);
  const nproc = Math.min(hard('Max processes'), pidMax);
  writeFileSync(join(c, 'containers.conf'), `[containers]\nnetns = "none"\nlog_driver = "k8s-file"\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]\n[network]\nnetwork_config_dir = "${dir}/cni"\n[engine]\nlock_type = "file"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${dir}/events.log"\ntmp_dir = "${dir}/tmp"\n`);
  return {
    env: {
      ...env,
      CONTAINERS_CONF: join(c, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(c, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: join(c, 'registries.conf'),
      REGISTRY_AUTH_FILE: join(c, 'auth.json'),
    },
    args: ['--root', join(dir, 'root'), '--runroot', join(dir, 'run')],
  };
}

// ------------------------------------------------------------------------------------------------
// the busybox image, built locally (cached as an OCI layout; same recipe and cache as pull.mjs)
// ------------------------------------------------------------------------------------------------

// Bump when the recipe below changes: cached layouts of another recipe are rebuilt.
export const RECIPE = 'gnu-tar-1';

/**
 * An OCI layout with one layer holding `rootfs`: GNU tar of the tree (sorted names, numeric
 * owners, no "./" prefix, as Debian's official images), `gzip -6`. (Not `umoci insert`: umoci
 * 0.4.7 ends its tars without the two zero blocks that close a tar archive.)
 */
export function packLayout(rootfs, layout, tag, cmd, createdBy = `berth bench ${tag}`) {
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
    history: [{ created, created_by: createdBy }],
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

/** The busybox rootfs: Debian's busybox-static, one symlink per applet, /etc/passwd and /etc/group. */
export function makeBusyboxRootfs(root) {
  const bb = '/bin/busybox';
  if (!existsSync(bb)) throw new Error('needs busybox-static (/bin/busybox)');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'var']) mkdirSync(join(root, d), { recursive: true });
  sh('chmod', ['1777', join(root, 'tmp')]);
  sh('install', ['-m', '0755', bb, join(root, 'bin/busybox')]);
  for (const a of sh(bb, ['--list-full']).stdout.split('\n').filter(Boolean)) {
    if (!existsSync(join(root, a))) sh('ln', ['-s', '/bin/busybox', join(root, a)]);
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** The cached busybox OCI layout (tag `latest`) under `cache`, built when missing or stale. */
export function busyboxLayout(cache) {
  const layout = join(cache, 'busybox-oci');
  let recipe = '';
  try { recipe = readFileSync(join(layout, 'bench-recipe'), 'utf8'); } catch { /* not built */ }
  if (recipe !== RECIPE) {
    mkdirSync(cache, { recursive: true });
    log(`building the busybox image → ${layout}`);
    const root = mkdtempSync(join(cache, 'busybox-rootfs-'));
    try {
      makeBusyboxRootfs(root);
      packLayout(root, layout, 'latest', '/bin/sh', 'berth bench/pull.mjs latest');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const blob = (d) => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  return { layout, tag: 'latest', layers: manifest.layers.map((l) => blob(l.digest)) };
}

// ------------------------------------------------------------------------------------------------
// statistics and process memory
// ------------------------------------------------------------------------------------------------

export const sorted = (xs) => [...xs].sort((a, b) => a - b);
export const median = (xs) => { const s = sorted(xs); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** Every process as { pid, ppid, comm, cmdline }. */
export function processes() {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(e), ppid, comm, cmdline });
    } catch { /* gone */ }
  }
  return out;
}

/** VmRSS and PSS (smaps_rollup) of one process in KiB; undefined when it is gone. */
export function memoryKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const rss = Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0);
    const pss = Number(rollup.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0);
    return { rss, pss };
  } catch { return undefined; }
}
