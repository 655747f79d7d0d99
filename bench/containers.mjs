#!/usr/bin/env node
// Benchmark: running containers from an image, Berth against docker, podman, ctr and bare crun,
// in one run.
//
//   sudo node bench/containers.mjs [--runs 10] [--burst 100] [--memory 20] [--concurrency 8]
//        [--engines berth,docker-berth,docker,podman-runc,podman-crun,ctr,crun]
//        [--skip latency,burst,api,memory] [--network none|bridge] [--cache /var/tmp/berth-bench] [--tmp /var/tmp]
//        [--trace] [--verbose]
//
// 1. latency: `run --rm busybox true`, end to end (the client's own start-up included), median of
//    --runs interleaved rounds (the order rotates each round), after one untimed warm-up each:
//      berth         `berth -H unix://… run --rm` (dist/berth.cjs, or $BERTH_BIN) against a warm `berth daemon`
//      docker-berth  the docker CLI (/usr/local/bin/docker) against the same `berth daemon`
//      docker        the same docker CLI against a private dockerd 20.10 (Debian docker.io: containerd + runc)
//      podman-runc   `podman --runtime runc run --rm`, private --root/--runroot
//      podman-crun   `podman --runtime crun run --rm`
//      ctr           `ctr run --rm` against a private containerd (runc through containerd-shim-runc-v2)
//      crun          bare `crun run` of a prepared bundle (busybox rootfs, `crun spec` with terminal
//                    false): the floor of what starting a container costs here, with no image, no
//                    engine and no client
//    Every engine runs with no network (`--network none`; ctr and crun give the container a fresh
//    network namespace with only lo, which is the same), so the numbers compare the engines, not
//    their bridge set-up. --network bridge: berth, docker-berth and docker use their default
//    bridge network instead (dockerd then with its bridge, iptables and ip-forward on, inside the
//    bench's network namespace); podman, ctr and crun stay without one.
// 2. burst: --burst (100) containers `run -d busybox sleep 1000` one after another through each CLI
//    (berth, docker-berth, docker, podman with crun), containers/second; then all removed with one
//    `rm -f` (also timed). api: the same through the Engine API directly, --concurrency requests
//    in flight (create + start), for `berth daemon` and dockerd.
// 3. memory: --memory (20) running containers per engine, one engine at a time; the RSS (VmRSS) and
//    PSS (smaps_rollup, shared pages split between the processes that map them) of the per-container
//    processes the engine leaves behind: berth-monitor (Berth), containerd-shim-runc-v2 (docker, ctr),
//    conmon (podman); and the daemon's own RSS before and after (podman has none).
// --trace: where the time of one `run --rm` goes, for berth, docker-berth and docker: three more
//    (untimed) runs each with the client talking to its daemon through a logging proxy, which
//    prints when each API request went out and when its answer came back, relative to the
//    client's start; plus the clients' start-up floors (`node -e 0`, `berth --version`,
//    `docker --version`) and, with BERTH_TIMING=1 in the daemon's env, the runtime's phase marks
//    from the daemon log.
// Goals (issue 5): Berth's end-to-end latency at most 1/5 of the best peer's median; at most 1 MB
// per running container.
//
// Image: busybox built from Debian's busybox-static (cached OCI layout, the same as
// bench/pull.mjs's), turned into a docker-archive by skopeo and loaded into every store (`load`,
// `ctr images import`); nothing comes from the network.
// Isolation: everything runs in private mount and network namespaces: /run is an empty directory
// of the work dir and /var/lib an overlay with its upper directory there, so the peers' hard-wired
// paths never reach the host, and any bridge, veth or firewall rule vanishes with the namespace.
// Inside, the host's hybrid cgroup2 mount is unmounted (crun 1.8 refuses hybrid layouts), so every
// tool sees the same cgroup v1 layout. Daemons are started by the bench and stopped by PID.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  REPO, Daemons, WATCHED, busyboxLayout, cleanEnv, enterPrivateNamespaces, has, http, httpStatus, log, median, memoryKiB,
  podmanSetup, privateRunAndVarLib, processes, sh, sleep, sorted, startContainerd, startDockerd, unmountUnder,
} from './lib/peers.mjs';

const ALL = ['berth', 'docker-berth', 'docker', 'podman-runc', 'podman-crun', 'ctr', 'crun'];
const PHASES = ['latency', 'burst', 'api', 'memory'];
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    burst: { type: 'string', default: '100' },
    memory: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    engines: { type: 'string', default: ALL.join(',') },
    skip: { type: 'string', default: '' },
    cache: { type: 'string', default: '/var/tmp/berth-bench' },
    tmp: { type: 'string', default: '/var/tmp' },
    network: { type: 'string', default: 'none' },
    trace: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const burstN = Number(args.burst);
const memN = Number(args.memory);
const concurrency = Number(args.concurrency);
const wanted = args.engines.split(',').map((s) => s.trim()).filter(Boolean);
for (const e of wanted) if (!ALL.includes(e)) throw new Error(`unknown engine ${e} (known: ${ALL.join(', ')})`);
const skip = new Set(args.skip.split(',').map((s) => s.trim()).filter(Boolean));
for (const s of skip) if (!PHASES.includes(s)) throw new Error(`unknown phase ${s} (known: ${PHASES.join(', ')})`);
if (!['none', 'bridge'].includes(args.network)) throw new Error('--network takes none or bridge');
const netArgs = args.network === 'none' ? ['--network', 'none'] : [];
for (const [k, v] of [['runs', runs], ['burst', burstN], ['memory', memN], ['concurrency', concurrency]]) if (!(v >= 1)) throw new Error(`--${k} takes a positive number`);
if (process.getuid() !== 0) throw new Error('run as root (the peers need it)');

enterPrivateNamespaces('BERTH_CONTAINERS_BENCH_INNER', { net: true, dropCgroup2: true });

const berthBin = process.env.BERTH_BIN ?? join(REPO, 'dist/berth.cjs');
const dockerCli = '/usr/local/bin/docker';
const work = mkdtempSync(join(args.tmp, 'bctr.'));
const daemons = new Daemons(work, { verbose: args.verbose });
const cleanups = []; // run before the daemons stop (containers to remove)
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const f of cleanups.reverse()) { try { await f(); } catch (e) { log(`clean-up: ${e.message}`); } }
    await daemons.stopAll();
    // containerd puts ctr's containers under /<namespace>/<id> and leaves the namespace's cgroup.
    for (const base of ['/sys/fs/cgroup', ...(() => { try { return readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c)); } catch { return []; } })()]) {
      const dir = join(base, 'berthbench');
      if (!existsSync(dir)) continue;
      try { spawnSync('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']); } catch { /* busy: reported by the host checks */ }
    }
    unmountUnder(work);
    try { rmSync(work, { recursive: true, force: true }); } catch (e) { log(`clean-up: ${e.message}`); }
    if (existsSync(work)) log(`could not remove ${work}`);
  })();
  return cleaning;
}
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { log(`${sig}: cleaning up`); cleanup().finally(() => process.exit(130)); });
const watchedBefore = new Set(WATCHED.filter((p) => existsSync(p)));

/**
 * Runs argv to completion; returns { ms, status, stdout, stderr }. SIGKILL on time-out: `run`
 * clients forward SIGTERM to the container (sig-proxy) and stay.
 */
function timed([cmd, ...a], env, timeoutMs = 120_000) {
  const t0 = performance.now();
  const r = spawnSync(cmd, a, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { ms: performance.now() - t0, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr || String(r.error ?? r.signal ?? '') };
}
const brief = (r) => `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;

const results = { latency: new Map(), burst: new Map(), api: new Map(), memory: new Map(), errors: new Map(), versions: new Map() };

try {
  privateRunAndVarLib(work);
  const baseEnv = cleanEnv();
  const img = busyboxLayout(args.cache);
  const archive = join(work, 'busybox.tar');
  // A docker-archive tagged busybox:latest: every tool resolves it to docker.io/library/busybox:latest.
  sh('skopeo', ['copy', '-q', `oci:${img.layout}:${img.tag}`, `docker-archive:${archive}:busybox:latest`], { env: baseEnv });
  log(`busybox image: ${archive}`);

  // ---- engines ---------------------------------------------------------------------------------
  const B = join(work, 'berth');
  const bEnv = { ...baseEnv, BERTH_AUTOSTART: '0' };
  const bDaemonEnv = args.trace ? { ...bEnv, BERTH_TIMING: '1' } : bEnv;
  const berthSock = join(B, 'berth.sock');
  const D = join(work, 'docker');
  const P = join(work, 'podman');
  const C = join(work, 'ctr');
  const R = join(work, 'crun');
  const ctrNs = ['-n', 'berthbench'];
  let podman;
  let ctrSock;
  let dockerd;

  const dockerEnv = (sock) => ({ ...baseEnv, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(work, 'docker-cli') });
  const berthCli = (a) => [process.execPath, berthBin, '-H', `unix://${berthSock}`, ...a];
  // A docker-CLI-compatible engine: cli(a) is argv, env its environment.
  const dockerLike = (cli, env, extra = {}, net = netArgs) => ({
    cli, env,
    runRm: () => cli(['run', '--rm', ...net, 'busybox', 'true']),
    runD: () => cli(['run', '-d', ...net, 'busybox', 'sleep', '1000']),
    rmF: (ids) => cli(['rm', '-f', ...ids]),
    ...extra,
  });

  const ENGINES = {
    berth: {
      tool: 'node',
      async setup() {
        if (!existsSync(berthBin)) throw new Error(`${berthBin} is missing: npm run build`);
        const newer = sh('find', [join(REPO, 'src'), '-name', '*.ts', '-newer', berthBin]).stdout.trim().split('\n').filter(Boolean);
        if (newer.length && !process.env.BERTH_BIN) log(`WARNING: ${berthBin} is older than ${newer.length} file(s) in src/ (e.g. ${newer[0]}): npm run build`);
        mkdirSync(B, { recursive: true });
        writeFileSync(join(B, 'daemon.json'), '{}');
        this.daemon = daemons.start('berth', process.execPath, [berthBin, 'daemon', '--host', `unix://${berthSock}`,
          '--data-root', join(B, 'data'), '--exec-root', join(B, 'exec'), '--config-file', join(B, 'daemon.json')], bDaemonEnv);
        await daemons.waitReady(this.daemon, async () => (await httpStatus({ socketPath: berthSock, path: '/_ping' })) === 200);
        Object.assign(this, dockerLike(berthCli, bEnv));
        sh(...split(berthCli(['load', '-q', '-i', archive]), bEnv));
        this.version = sh(...split(berthCli(['version', '--format', '{{.Server.Version}}']), bEnv), { check: false }).stdout.trim() || '?';
        this.sock = berthSock;
        this.monitor = (p) => p.comm === 'berth-monitor' && p.cmdline.some((a) => a.startsWith(B));
      },
    },
    'docker-berth': {
      tool: dockerCli,
      needs: ['berth'],
      async setup() {
        Object.assign(this, dockerLike((a) => [dockerCli, ...a], dockerEnv(berthSock)));
        this.version = `CLI ${sh(dockerCli, ['version', '-f', '{{.Client.Version}}'], { env: this.env, check: false }).stdout.trim()}`;
        this.sock = berthSock;
        this.daemon = ENGINES.berth.daemon;
        this.monitor = ENGINES.berth.monitor;
      },
    },
    docker: {
      tool: 'dockerd',
      async setup() {
        dockerd = await startDockerd(daemons, D, baseEnv, args.network === 'bridge' ? { bridge: undefined, iptables: true, 'ip-masq': true, 'ip-forward': true } : {});
        Object.assign(this, dockerLike((a) => [dockerCli, ...a], dockerEnv(dockerd.sock)));
        sh(dockerCli, ['load', '-q', '-i', archive], { env: this.env });
        this.version = sh(dockerCli, ['version', '-f', '{{.Server.Version}}'], { env: this.env }).stdout.trim();
        this.sock = dockerd.sock;
        this.daemon = dockerd.daemon;
        // Its shims are started by dockerd's containerd (their -address is its socket).
        this.monitor = (p) => p.comm.startsWith('containerd-shim') && p.cmdline.includes(dockerd.containerd.sock);
      },
    },
    'podman-runc': {
      tool: 'podman',
      async setup() {
        if (!podman) {
          podman = podmanSetup(P, baseEnv);
          sh('podman', [...podman.args, 'load', '-q', '-i', archive], { env: podman.env });
        }
        // rm -f -t 0: docker's rm -f kills at once; podman's first waits the stop timeout (10 s).
        Object.assign(this, dockerLike((a) => ['podman', ...podman.args, '--runtime', 'runc', ...a], podman.env,
          { rmF: (ids) => ['podman', ...podman.args, 'rm', '-f', '-t', '0', ...ids] }, ['--network', 'none']));
        this.version = sh('podman', ['version', '-f', '{{.Client.Version}}'], { env: podman.env }).stdout.trim();
        this.monitor = (p) => p.comm === 'conmon' && p.cmdline.some((a) => a.startsWith(P));
      },
    },
    'podman-crun': {
      tool: 'podman',
      async setup() {
        await ENGINES['podman-runc'].setup.call(this);
        Object.assign(this, dockerLike((a) => ['podman', ...podman.args, '--runtime', 'crun', ...a], podman.env, { rmF: this.rmF }, ['--network', 'none']));
      },
    },
    ctr: {
      tool: 'containerd',
      async setup() {
        const c = await startContainerd(daemons, 'containerd', C, baseEnv);
        ctrSock = c.sock;
        this.daemon = c.daemon;
        const ctr = (a) => ['ctr', '-a', ctrSock, ...ctrNs, ...a];
        sh(...split(ctr(['images', 'import', archive]), baseEnv));
        const ref = 'docker.io/library/busybox:latest';
        let n = 0;
        this.env = baseEnv;
        this.runRm = () => ctr(['run', '--rm', ref, `bench-rm-${n++}`, 'true']);
        this.runD = () => ctr(['run', '-d', ref, `bench-d-${n++}`, 'sleep', '1000']);
        // `ctr run -d` prints nothing: the ids are the names given above.
        this.idOf = (argv) => argv[argv.length - 3];
        this.rmF = (ids) => ['sh', '-c', 'for id; do ctr -a "$0" -n berthbench task kill -s KILL "$id" >/dev/null 2>&1; done; for id; do ctr -a "$0" -n berthbench task delete -f "$id" >/dev/null 2>&1; ctr -a "$0" -n berthbench container delete "$id" || exit 1; done', ctrSock, ...ids];
        this.version = sh('ctr', ['-a', ctrSock, 'version'], { check: false }).stdout.match(/Version:\s*(\S+)/g)?.pop()?.split(/\s+/)[1] ?? '?';
        this.monitor = (p) => p.comm.startsWith('containerd-shim') && p.cmdline.includes(ctrSock);
      },
    },
    crun: {
      tool: 'crun',
      async setup() {
        const bundle = join(R, 'bundle');
        mkdirSync(join(bundle, 'rootfs'), { recursive: true });
        for (const l of img.layers) sh('tar', ['--numeric-owner', '-xpzf', l, '-C', join(bundle, 'rootfs')]);
        sh('crun', ['spec'], { cwd: bundle });
        const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
        spec.process.terminal = false;
        spec.process.args = ['true'];
        writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
        let n = 0;
        this.env = baseEnv;
        this.runRm = () => ['crun', '--root', join(R, 'state'), 'run', '--bundle', bundle, `bench-${n++}`];
        // A foreground `crun run` deletes the container when it exits (so this is the whole
        // life cycle, like `run --rm`); the delete after it is a safety net, untimed.
        this.after = (argv) => spawnSync('crun', ['--root', join(R, 'state'), 'delete', '--force', argv[argv.length - 1]], { stdio: 'ignore' });
        this.version = sh('crun', ['--version']).stdout.split('\n')[0].replace('crun version ', '');
      },
    },
  };
  function split(argv, env) { return [argv[0], argv.slice(1), { env }]; }

  const engines = [];
  for (const name of wanted) {
    const e = ENGINES[name];
    e.name = name;
    try {
      if (!has(e.tool)) throw new Error(`${e.tool} is not installed`);
      for (const n of e.needs ?? []) if (!engines.includes(ENGINES[n])) throw new Error(`needs ${n}`);
      await e.setup();
      // One untimed run: warms the daemon, the page cache, and proves the engine works.
      const argv = e.runRm();
      const r = timed(argv, e.env, 60_000);
      e.after?.(argv);
      if (r.status !== 0) throw new Error(`run --rm busybox true failed: ${brief(r)}`);
      engines.push(e);
      results.versions.set(name, e.version);
      log(`${name}: ${e.version ?? ''} ready (warm-up run ${r.ms.toFixed(0)} ms)`);
    } catch (err) {
      log(`${name}: set-up failed, skipped: ${err.message}`);
      results.errors.set(name, err.message.split('\n')[0]);
    }
  }
  const tStart = performance.now();

  // ---- 1. latency --------------------------------------------------------------------------------
  if (!skip.has('latency')) {
    const dead = new Set();
    for (let i = 0; i < runs; i++) {
      const order = engines.map((_, k) => engines[(k + i) % engines.length]);
      for (const e of order) {
        if (dead.has(e)) continue;
        const argv = e.runRm();
        const r = timed(argv, e.env);
        e.after?.(argv);
        if (r.status !== 0) {
          results.errors.set(e.name, `run --rm failed in round ${i + 1}: ${brief(r)}`);
          log(`${e.name}: ${results.errors.get(e.name)}`);
          dead.add(e);
          continue;
        }
        if (!results.latency.has(e.name)) results.latency.set(e.name, []);
        results.latency.get(e.name).push(r.ms);
        if (args.verbose) log(`round ${i + 1} ${e.name}: ${r.ms.toFixed(1)} ms`);
      }
      log(`latency round ${i + 1}/${runs} done`);
    }
  }

  // ---- helpers for running containers ----------------------------------------------------------
  /** Starts n detached sleepers one after another through the CLI; returns { ids, ms }. */
  function startDetached(e, n) {
    const ids = [];
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      const argv = e.runD();
      const r = timed(argv, e.env);
      if (r.status !== 0) throw Object.assign(new Error(`run -d failed after ${k} containers: ${brief(r)}`), { ids });
      ids.push(e.idOf ? e.idOf(argv) : r.stdout.trim().split('\n').pop());
    }
    return { ids, ms: performance.now() - t0 };
  }
  function removeAll(e, ids) {
    if (!ids.length) return 0;
    const r = timed(e.rmF(ids), e.env, 600_000);
    if (r.status !== 0) throw new Error(`rm -f of ${ids.length} containers failed: ${brief(r)}`);
    return r.ms;
  }
  /** Remembers ids to remove should the bench stop half-way. */
  function guard(e, ids) {
    const f = () => { if (ids.length) { spawnSync(e.rmF(ids)[0], e.rmF(ids).slice(1), { env: e.env, stdio: 'ignore', timeout: 300_000 }); ids.length = 0; } };
    cleanups.push(f);
    return () => { const i = cleanups.indexOf(f); if (i >= 0) cleanups.splice(i, 1); };
  }

  // ---- 2. burst through the CLIs -----------------------------------------------------------------
  if (!skip.has('burst')) {
    for (const e of engines.filter((x) => ['berth', 'docker-berth', 'docker', 'podman-crun'].includes(x.name))) {
      const live = [];
      const unguard = guard(e, live);
      try {
        const s = startDetached(e, burstN);
        live.push(...s.ids);
        const running = await countRunning(e);
        const rmMs = removeAll(e, live);
        live.length = 0;
        results.burst.set(e.name, { n: burstN, ms: s.ms, rmMs, running });
        log(`burst ${e.name}: ${burstN} in ${(s.ms / 1000).toFixed(1)} s (${running ?? '?'} running), removed in ${(rmMs / 1000).toFixed(1)} s`);
      } catch (err) {
        live.push(...(err.ids ?? []));
        results.burst.set(e.name, { error: err.message.split('\n')[0] });
        log(`burst ${e.name}: ${err.message}`);
        try { removeAll(e, live); live.length = 0; } catch { /* the guard retries at the end */ }
      } finally {
        if (!live.length) unguard();
      }
    }
  }

  /** How many of the engine's containers are running (the API's list, else `ps -q`), or undefined. */
  async function countRunning(e) {
    if (e.sock) {
      const r = await http({ socketPath: e.sock, path: '/v1.41/containers/json' }).catch(() => undefined);
      return r?.status === 200 ? JSON.parse(r.body).length : undefined;
    }
    if (!e.cli) return undefined;
    const r = timed(e.cli(['ps', '-q']), e.env);
    return r.status === 0 ? r.stdout.trim().split('\n').filter(Boolean).length : undefined;
  }

  // ---- 2b. burst through the API -----------------------------------------------------------------
  if (!skip.has('api')) {
    for (const e of engines.filter((x) => ['berth', 'docker'].includes(x.name))) {
      const ids = [];
      const unguard = guard(e, ids);
      try {
        const api = (method, path, body) => http({ socketPath: e.sock, method, path: `/v1.41${path}` }, body);
        let next = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (next < burstN) {
            next++;
            const c = await api('POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '1000'], HostConfig: args.network === 'none' ? { NetworkMode: 'none' } : {} });
            if (c.status !== 201) throw new Error(`create: HTTP ${c.status} ${c.body.slice(0, 300)}`);
            const { Id } = JSON.parse(c.body);
            ids.push(Id);
            const s = await api('POST', `/containers/${Id}/start`);
            if (s.status !== 204) throw new Error(`start: HTTP ${s.status} ${s.body.slice(0, 300)}`);
          }
        }));
        const ms = performance.now() - t0;
        const running = await countRunning(e);
        const t1 = performance.now();
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (ids.length) {
            const id = ids.pop();
            const r = await api('DELETE', `/containers/${id}?force=1`);
            if (r.status !== 204) throw new Error(`delete: HTTP ${r.status} ${r.body.slice(0, 300)}`);
          }
        }));
        const rmMs = performance.now() - t1;
        results.api.set(e.name, { n: burstN, ms, rmMs, running });
        log(`api ${e.name}: ${burstN} in ${(ms / 1000).toFixed(1)} s (${running ?? '?'} running), removed in ${(rmMs / 1000).toFixed(1)} s`);
      } catch (err) {
        results.api.set(e.name, { error: err.message.split('\n')[0] });
        log(`api ${e.name}: ${err.message}`);
        try { removeAll(e, ids); ids.length = 0; } catch { /* the guard retries at the end */ }
      } finally {
        if (!ids.length) unguard();
      }
    }
  }

  // ---- 3. memory -----------------------------------------------------------------------------------
  if (!skip.has('memory')) {
    const daemonRss = (e) => (e.daemon ? memoryKiB(e.daemon.pid)?.rss : undefined);
    for (const e of engines.filter((x) => ['berth', 'docker', 'podman-crun', 'ctr'].includes(x.name))) {
      const live = [];
      const unguard = guard(e, live);
      try {
        const before = daemonRss(e);
        const s = startDetached(e, memN);
        live.push(...s.ids);
        await sleep(2000); // let lazily-touched pages settle
        const procs = processes().filter(e.monitor);
        const mem = procs.map((p) => memoryKiB(p.pid)).filter(Boolean);
        const after = daemonRss(e);
        const sum = (k) => mem.reduce((n, m) => n + m[k], 0);
        results.memory.set(e.name, { n: memN, procs: procs.length, comm: [...new Set(procs.map((p) => p.comm))].join(','), rss: sum('rss'), pss: sum('pss'), daemonBefore: before, daemonAfter: after });
        log(`memory ${e.name}: ${procs.length} processes, RSS ${sum('rss')} KiB, PSS ${sum('pss')} KiB`);
        removeAll(e, live);
        live.length = 0;
      } catch (err) {
        live.push(...(err.ids ?? []));
        results.memory.set(e.name, { error: err.message.split('\n')[0] });
        log(`memory ${e.name}: ${err.message}`);
        try { removeAll(e, live); live.length = 0; } catch { /* the guard retries at the end */ }
      } finally {
        if (!live.length) unguard();
      }
    }
  }

  // ---- trace: where one run's time goes ----------------------------------------------------------
  if (args.trace) {
    /** A unix-socket proxy to `target` that logs each request line and the first answer after it. */
    async function tracingProxy(target, path) {
      const events = [];
      let t0 = 0;
      const at = () => performance.now() - t0;
      let conns = 0;
      const server = createServer((client) => {
        const id = ++conns;
        const up = connect(target);
        let pending = null;
        client.on('data', (c) => {
          const m = c.toString('latin1').match(/^(GET|POST|PUT|DELETE|HEAD) (\S+)/);
          if (m) { pending = { conn: id, req: `${m[1]} ${m[2].replace(/^\/v1\.\d+/, '')}`, sent: at() }; events.push(pending); }
          up.write(c);
        });
        up.on('data', (c) => {
          if (pending && pending.answered === undefined) {
            pending.answered = at();
            pending.status = c.toString('latin1').match(/^HTTP\/1\.1 (\d+)/)?.[1] ?? '';
            // A hijacked or streamed answer (attach, wait) ends when the connection does.
            if (/^(101|200)$/.test(pending.status) && /\/(attach|wait)/.test(pending.req)) { const p = pending; up.on('end', () => { p.ended = at(); }); }
          }
          client.write(c);
        });
        up.on('end', () => client.end());
        client.on('end', () => up.end());
        up.on('error', () => client.destroy());
        client.on('error', () => up.destroy());
      });
      await new Promise((r) => server.listen(path, r));
      return { events, start() { events.length = 0; conns = 0; t0 = performance.now(); }, close: () => new Promise((r) => server.close(r)) };
    }
    const runAsync = ([cmd, ...a], env) => new Promise((resolve) => {
      const t0 = performance.now();
      const ch = spawn(cmd, a, { env, stdio: ['ignore', 'ignore', 'pipe'] });
      const timer = setTimeout(() => ch.kill('SIGKILL'), 60_000);
      ch.on('close', () => clearTimeout(timer));
      let err = '';
      ch.stderr.on('data', (c) => { err += c; });
      ch.on('close', (code) => resolve({ ms: performance.now() - t0, code, err }));
    });
    const floors = [['node -e 0', [process.execPath, '-e', '0']], ['berth --version (CLI load)', [process.execPath, berthBin, '--version']], ['docker --version', [dockerCli, '--version']]];
    const floorMs = new Map();
    for (let k = 0; k < 5; k++) for (const [n, argv] of floors) { if (!floorMs.has(n)) floorMs.set(n, []); floorMs.get(n).push(timed(argv, baseEnv).ms); }
    results.trace = { floors: [...floorMs].map(([n, xs]) => [n, median(xs)]), runs: [] };
    for (const e of engines.filter((x) => ['berth', 'docker-berth', 'docker'].includes(x.name))) {
      const psock = join(work, `trace-${e.name}.sock`);
      const proxy = await tracingProxy(e.sock, psock);
      const viaProxy = e.name === 'berth'
        ? { argv: [process.execPath, berthBin, '-H', `unix://${psock}`, 'run', '--rm', ...netArgs, 'busybox', 'true'], env: e.env }
        : { argv: [dockerCli, 'run', '--rm', ...netArgs, 'busybox', 'true'], env: { ...e.env, DOCKER_HOST: `unix://${psock}` } };
      let last;
      for (let k = 0; k < 3; k++) {
        const logAt = e.daemon ? statSync(e.daemon.logFile).size : 0;
        proxy.start();
        const r = await runAsync(viaProxy.argv, viaProxy.env);
        if (r.code !== 0) { log(`trace ${e.name}: exit ${r.code} ${r.err.trim().slice(-300)}`); break; }
        await sleep(300); // the daemon's auto-remove and log lines after the client has gone
        const marks = e.name !== 'docker' && e.daemon ? readFileSync(e.daemon.logFile, 'utf8').slice(logAt).split('\n').filter((l) => l.startsWith('[timing]')) : [];
        last = { name: e.name, ms: r.ms, events: proxy.events.map((x) => ({ ...x })), marks };
      }
      await proxy.close();
      if (last) results.trace.runs.push(last);
    }
  }
  const total = (performance.now() - tStart) / 1000;

  // ---- report ----------------------------------------------------------------------------------------
  const q = (xs, p) => sorted(xs)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? '?';
  console.log(`\nmachine: ${sh('nproc', []).stdout.trim()} CPUs (${cpu}), load ${load}, kernel ${sh('uname', ['-r']).stdout.trim()}, work dir on ${sh('findmnt', ['-n', '-o', 'FSTYPE', '-T', work], { check: false }).stdout.trim()}; measured ${total.toFixed(0)} s`);
  console.log(`versions: ${[...results.versions].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const [k, v] of results.errors) console.log(`${k}: ${v}`);

  const LABEL = {
    berth: 'berth run --rm', 'docker-berth': 'docker CLI → berth daemon', docker: 'docker run --rm (dockerd)',
    'podman-runc': 'podman --runtime runc run --rm', 'podman-crun': 'podman --runtime crun run --rm', ctr: 'ctr run --rm', crun: 'crun run (bare bundle)',
  };
  const lat = results.latency;
  if (lat.size) {
    console.log(`\n1. run --rm${args.network === 'none' ? ' --network none' : ' (berth, docker: default bridge network)'} busybox true, end to end: ${runs} interleaved rounds; ms, median [p10–p90]; ×: engine ÷ berth`);
    const bm = lat.has('berth') ? median(lat.get('berth')) : undefined;
    for (const [name, xs] of lat) {
      const ratio = bm && name !== 'berth' ? `×${(median(xs) / bm).toFixed(2)}` : '';
      console.log(`${LABEL[name].padEnd(34)} ${median(xs).toFixed(1).padStart(8)} [${q(xs, 0.1).toFixed(1)}–${q(xs, 0.9).toFixed(1)}]`.padEnd(66) + ratio);
    }
    const enginePeers = ['docker', 'podman-runc', 'podman-crun', 'ctr'].filter((n) => lat.has(n));
    const best = (names) => names.reduce((b, n) => (!b || median(lat.get(n)) < median(lat.get(b)) ? n : b), undefined);
    if (bm !== undefined) {
      for (const [what, names] of [['the best engine peer', enginePeers], ['the best peer, bare crun included', [...enginePeers, ...(lat.has('crun') ? ['crun'] : [])]]]) {
        const b = best(names);
        if (!b) continue;
        const goal = median(lat.get(b)) / 5;
        console.log(`goal: berth ≤ 1/5 of ${what} (${b} ${median(lat.get(b)).toFixed(1)} ms → ${goal.toFixed(1)} ms): berth ${bm.toFixed(1)} ms → ${bm <= goal ? 'MET' : `NOT MET (×${(bm / goal).toFixed(1)} too slow)`}`);
      }
    } else console.log('goal: no berth result');
  }
  for (const [key, title] of [['burst', `2. ${burstN} detached containers (run -d busybox sleep 1000), one CLI call after another`], ['api', `2b. ${burstN} detached containers through the Engine API (create + start), ${concurrency} in flight`]]) {
    if (!results[key].size) continue;
    console.log(`\n${title}; then all removed (${key === 'api' ? `DELETE ?force=1, ${concurrency} in flight` : 'one rm -f'})`);
    for (const [name, r] of results[key]) {
      if (r.error) { console.log(`${name.padEnd(14)} ${r.error}`); continue; }
      console.log(`${name.padEnd(14)} ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${(r.n / (r.ms / 1000)).toFixed(1).padStart(6)} containers/s   running: ${r.running ?? '?'}   removed in ${(r.rmMs / 1000).toFixed(1)} s (${(r.n / (r.rmMs / 1000)).toFixed(1)}/s)`);
    }
  }
  if (results.memory.size) {
    console.log(`\n3. memory of the per-container processes, ${memN} running containers per engine (KiB; per container = sum ÷ ${memN})`);
    for (const [name, r] of results.memory) {
      if (r.error) { console.log(`${name.padEnd(14)} ${r.error}`); continue; }
      const per = (k) => (r[k] / r.n).toFixed(0);
      console.log(`${name.padEnd(14)} ${String(r.procs).padStart(3)} × ${r.comm.padEnd(16)} RSS ${String(r.rss).padStart(7)} (${per('rss').padStart(6)}/ctr)  PSS ${String(r.pss).padStart(7)} (${per('pss').padStart(6)}/ctr)` +
        // The daemon's RSS before and after (a garbage-collected daemon can shrink meanwhile).
        (r.daemonBefore && r.daemonAfter ? `  daemon RSS ${(r.daemonBefore / 1024).toFixed(1)} → ${(r.daemonAfter / 1024).toFixed(1)} MiB` : ''));
    }
    const bmem = results.memory.get('berth');
    if (bmem && !bmem.error) {
      const perRss = bmem.rss / bmem.n / 1024;
      const perPss = bmem.pss / bmem.n / 1024;
      console.log(`goal: ≤ 1 MB per running container: berth-monitor RSS ${perRss.toFixed(2)} MiB, PSS ${perPss.toFixed(2)} MiB per container → ${perRss <= 1 ? 'MET (RSS)' : perPss <= 1 ? 'MET by PSS only' : 'NOT MET'}${bmem.procs !== bmem.n ? ` (found ${bmem.procs} monitor processes for ${bmem.n} containers)` : ''}`);
    }
  }

  if (results.trace) {
    console.log('\nwhere the time of one run --rm goes (the last of 3 traced runs; ms from the client\'s start)');
    console.log(`client floors (median of 5): ${results.trace.floors.map(([n, ms]) => `${n} ${ms.toFixed(1)}`).join(', ')}`);
    for (const t of results.trace.runs) {
      console.log(`${LABEL[t.name]}: ${t.ms.toFixed(1)} ms in all`);
      for (const x of t.events) {
        console.log(`  conn ${x.conn}  ${x.sent.toFixed(1).padStart(7)} → ${x.answered === undefined ? '   -   ' : x.answered.toFixed(1).padStart(7)}  ${String(x.status ?? '').padEnd(3)} ${x.req}` +
          (x.answered !== undefined ? `  (${(x.answered - x.sent).toFixed(1)} ms${x.ended !== undefined ? `, stream ended at ${x.ended.toFixed(1)}` : ''})` : ''));
      }
      for (const m of t.marks) console.log(`  daemon ${m}`);
    }
  }
  const created = WATCHED.filter((p) => existsSync(p) && !watchedBefore.has(p));
  if (created.length) console.log(`\nWARNING: host paths appeared during the run (a peer or someone else): ${created.join(', ')}`);
} catch (e) {
  console.error(e.stack ?? e);
  process.exitCode = 1;
} finally {
  await cleanup();
}
