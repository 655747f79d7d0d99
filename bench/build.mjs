#!/usr/bin/env node
// Benchmark: building an image from a Dockerfile, Berth against docker (classic builder and
// BuildKit), podman and buildah, in one run.
//
//   sudo node bench/build.mjs [--runs 5] [--files 300] [--engines berth,docker-berth,docker-classic,docker-buildkit,podman,buildah]
//        [--cache /var/tmp/berth-bench] [--tmp /var/tmp] [--verbose]
//
// The Dockerfile: FROM a local busybox, ENV, WORKDIR, COPY of --files small files, three RUN,
// CMD. Two columns, each the median of --runs interleaved rounds (the order rotates per round):
//   cold    `build --no-cache` (every step runs; the base image is local)
//   cached  a rebuild of the unchanged context after one warm build (every step from the cache)
// Engines (all with RUN steps on no network, so the builders are compared, not their networks):
//   berth            `berth build` (dist/berth.cjs) against a warm `berth daemon`
//   docker-berth     the docker CLI 28 with DOCKER_BUILDKIT=0 against the same `berth daemon`
//   docker-classic   the docker CLI 28 with DOCKER_BUILDKIT=0 against a private dockerd 20.10
//   docker-buildkit  Debian's docker CLI 20.10 (/usr/bin/docker, BuildKit built in) with
//                    DOCKER_BUILDKIT=1 against the same dockerd
//   podman           `podman build` (layers cached, as its default)
//   buildah          `buildah bud --layers` (without --layers buildah caches nothing)
// Isolation and images as bench/containers.mjs: private mount and network namespaces, the host's
// hybrid cgroup2 mount dropped inside (crun 1.8 refuses hybrid layouts), busybox built from
// Debian's busybox-static; daemons started by the bench and stopped by PID.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  REPO, Daemons, busyboxLayout, cleanEnv, enterPrivateNamespaces, httpStatus, log, median, podmanSetup, privateRunAndVarLib, sh,
  startDockerd, unmountUnder,
} from './lib/peers.mjs';

const ALL = ['berth', 'docker-berth', 'docker-classic', 'docker-buildkit', 'podman', 'buildah'];
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    files: { type: 'string', default: '300' },
    engines: { type: 'string', default: ALL.join(',') },
    cache: { type: 'string', default: '/var/tmp/berth-bench' },
    tmp: { type: 'string', default: '/var/tmp' },
    verbose: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const nFiles = Number(args.files);
const wanted = args.engines.split(',').map((s) => s.trim()).filter(Boolean);
for (const e of wanted) if (!ALL.includes(e)) throw new Error(`unknown engine ${e} (known: ${ALL.join(', ')})`);
if (process.getuid() !== 0) throw new Error('run as root (the peers need it)');

enterPrivateNamespaces('BERTH_BUILD_BENCH_INNER', { net: true, dropCgroup2: true });

const berthBin = process.env.BERTH_BIN ?? join(REPO, 'dist/berth.cjs');
const CGROUP_PARENT = `berthbench-build-${process.pid}`;
const work = mkdtempSync(join(args.tmp, 'bbuild.'));
const daemons = new Daemons(work, { verbose: args.verbose });
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await daemons.stopAll();
    for (const c of (() => { try { return readdirSync('/sys/fs/cgroup'); } catch { return []; } })()) {
      for (const dir of [join('/sys/fs/cgroup', c, CGROUP_PARENT), join('/sys/fs/cgroup', CGROUP_PARENT)]) {
        if (existsSync(dir)) spawnSync('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
      }
    }
    unmountUnder(work);
    try { rmSync(work, { recursive: true, force: true }); } catch (e) { log(`clean-up: ${e.message}`); }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { log(`${sig}: cleaning up`); cleanup().finally(() => process.exit(130)); });

function timed(argv, env) {
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, timeout: 600_000, killSignal: 'SIGKILL' });
  return { ms: performance.now() - t0, status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

try {
  privateRunAndVarLib(work);
  const baseEnv = cleanEnv();
  const img = busyboxLayout(args.cache);
  const archive = join(work, 'busybox.tar');
  sh('skopeo', ['copy', '-q', `oci:${img.layout}:${img.tag}`, `docker-archive:${archive}:busybox:latest`], { env: baseEnv });

  // The context.
  const ctx = join(work, 'context');
  mkdirSync(join(ctx, 'src'), { recursive: true });
  for (let i = 0; i < nFiles; i++) writeFileSync(join(ctx, 'src', `file${String(i).padStart(4, '0')}.txt`), `line ${i} ${'x'.repeat(i % 200)}\n`);
  writeFileSync(join(ctx, 'Dockerfile'), [
    'FROM busybox',
    'ENV APP=/app LANG=C.UTF-8',
    'WORKDIR /app',
    'COPY src/ /app/src/',
    'RUN mkdir -p /app/out && cat src/*.txt > /app/out/all.txt',
    'RUN wc -l /app/out/all.txt > /app/out/count && echo built > /app/out/stamp',
    'RUN for i in 1 2 3 4 5; do echo $i; done > /app/out/seq',
    'CMD ["cat", "/app/out/count"]',
    '',
  ].join('\n'));

  const engines = {};
  const berthSock = join(work, 'berth', 'berth.sock');
  let dockerd;
  let podman;
  const need = (e) => wanted.includes(e);
  if (need('berth') || need('docker-berth')) {
    const B = join(work, 'berth');
    mkdirSync(B, { recursive: true });
    // Its own cgroup parent (cgroups are not in the bench's namespaces), removed at the end.
    writeFileSync(join(B, 'daemon.json'), JSON.stringify({ 'cgroup-parent': `/${CGROUP_PARENT}` }));
    const env = { ...baseEnv, BERTH_AUTOSTART: '0' };
    const d = daemons.start('berth', process.execPath, [berthBin, 'daemon', '--host', `unix://${berthSock}`, '--data-root', join(B, 'data'), '--exec-root', join(B, 'exec'), '--config-file', join(B, 'daemon.json')], env);
    await daemons.waitReady(d, async () => (await httpStatus({ socketPath: berthSock, path: '/_ping' })) === 200);
    sh(process.execPath, [berthBin, '-H', `unix://${berthSock}`, 'load', '-q', '-i', archive], { env });
    const cli = (a) => [process.execPath, berthBin, '-H', `unix://${berthSock}`, ...a];
    engines.berth = { env, build: (tag, noCache) => cli(['build', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx]) };
    const denv = { ...baseEnv, DOCKER_HOST: `unix://${berthSock}`, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: join(work, 'docker-cli') };
    engines['docker-berth'] = { env: denv, build: (tag, noCache) => ['/usr/local/bin/docker', 'build', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx] };
  }
  if (need('docker-classic') || need('docker-buildkit')) {
    dockerd = await startDockerd(daemons, join(work, 'docker'), baseEnv);
    const env = { ...baseEnv, DOCKER_HOST: `unix://${dockerd.sock}`, DOCKER_CONFIG: join(work, 'docker-cli') };
    sh('/usr/local/bin/docker', ['load', '-q', '-i', archive], { env });
    engines['docker-classic'] = { env: { ...env, DOCKER_BUILDKIT: '0' }, build: (tag, noCache) => ['/usr/local/bin/docker', 'build', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx] };
    engines['docker-buildkit'] = { env: { ...env, DOCKER_BUILDKIT: '1' }, build: (tag, noCache) => ['/usr/bin/docker', 'build', '--progress', 'plain', '--network', 'none', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx] };
  }
  if (need('podman') || need('buildah')) {
    podman = podmanSetup(join(work, 'podman'), baseEnv);
    sh('podman', [...podman.args, 'load', '-q', '-i', archive], { env: podman.env });
    engines.podman = { env: podman.env, build: (tag, noCache) => ['podman', ...podman.args, 'build', '--network', 'none', '--cgroup-manager', 'cgroupfs', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx] };
    engines.buildah = { env: podman.env, build: (tag, noCache) => ['buildah', ...podman.args, 'bud', '--layers', '--network', 'none', '--cgroup-manager', 'cgroupfs', ...(noCache ? ['--no-cache'] : []), '-t', tag, ctx] };
  }

  const order = wanted.filter((e) => engines[e]);
  const results = Object.fromEntries(order.map((e) => [e, { cold: [], cached: [], error: undefined }]));
  const versions = {};
  for (const e of order) {
    // One warm build each: the image cache is filled, and a broken engine shows before timing.
    const r = timed(engines[e].build(`bench-${e}:warm`, false), engines[e].env);
    if (r.status !== 0) {
      results[e].error = r.out.trim().split('\n').slice(-3).join(' | ');
      log(`${e}: warm-up build failed: ${results[e].error}`);
    } else if (args.verbose) log(`${e}: warm-up ${r.ms.toFixed(0)} ms`);
  }
  versions.berth = '0.1.0';
  for (let round = 0; round < runs; round++) {
    const rotated = order.slice(round % order.length).concat(order.slice(0, round % order.length));
    for (const e of rotated) {
      if (results[e].error) continue;
      const cold = timed(engines[e].build(`bench-${e}:cold${round}`, true), engines[e].env);
      if (cold.status !== 0) { results[e].error = cold.out.trim().split('\n').slice(-3).join(' | '); continue; }
      results[e].cold.push(cold.ms);
      const cached = timed(engines[e].build(`bench-${e}:warm`, false), engines[e].env);
      if (cached.status !== 0) { results[e].error = cached.out.trim().split('\n').slice(-3).join(' | '); continue; }
      results[e].cached.push(cached.ms);
    }
    log(`round ${round + 1}/${runs} done`);
  }

  const base = results.berth && !results.berth.error ? results.berth : undefined;
  const fmt = (xs) => (xs.length ? median(xs).toFixed(0) : '–');
  const ratio = (xs, col) => (base && xs.length && base[col].length ? `${(median(xs) / median(base[col])).toFixed(2)}×` : '');
  console.log(`\nBuild of a ${nFiles}-file COPY + 3 RUN Dockerfile, medians of ${runs} rounds, ms (ratio: peer ÷ berth; above 1 = Berth faster)\n`);
  console.log('| engine | cold (--no-cache) | ratio | cached rebuild | ratio |');
  console.log('|---|---|---|---|---|');
  for (const e of order) {
    const r = results[e];
    if (r.error && !r.cold.length) { console.log(`| ${e} | failed: ${r.error.slice(0, 120)} | | | |`); continue; }
    console.log(`| ${e} | ${fmt(r.cold)} | ${ratio(r.cold, 'cold')} | ${fmt(r.cached)} | ${ratio(r.cached, 'cached')} |`);
  }
  if (args.verbose) console.log(JSON.stringify(results, null, 1));
} finally {
  await cleanup();
}
