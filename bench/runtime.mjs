#!/usr/bin/env node
// Benchmark: berth-runtime against runc and crun (Debian), in the same run, interleaved.
//   sudo node bench/runtime.mjs [--runs 50]
// Measures `run` of a /bin/true bundle, create+start+delete, exec into a running container and
// pause/resume, plus `node -e 0` as the floor.
// Prints medians (and p10/p90) in ms and ratios to crun. Run on an idle machine; quote medians.
import { spawnSync, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

// crun 1.8 refuses "hybrid" cgroup hosts (v1 controllers plus a cgroup2 mount holding some). Run the
// whole benchmark in a private mount namespace without that cgroup2 mount, so that every runtime
// sees the same plain v1 layout; the host's mounts are untouched.
if (!process.env.BERTH_BENCH_INNER && existsSync('/sys/fs/cgroup/unified')) {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'umount -n /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"', process.execPath, ...process.argv.slice(1)],
  { stdio: 'inherit', env: { ...process.env, BERTH_BENCH_INNER: '1' } });
  process.exit(r.status ?? 1);
}
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 50;

const work = mkdtempSync(join(tmpdir(), 'berth-bench-'));
const bundle = join(work, 'bundle');
execFileSync(join(repo, 'scripts/busybox-bundle.sh'), [bundle, '/bin/true'], { stdio: 'inherit' });
// The same spec for every runtime; crun 1.8 wants a 1.0.x ociVersion and no cgroup mount quirks.
const specPath = join(bundle, 'config.json');
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
spec.ociVersion = '1.0.2';
writeFileSync(specPath, JSON.stringify(spec));

const runtimes = [
  { name: 'berth', cmd: [process.execPath, join(repo, 'dist/berth-runtime.cjs')] },
  { name: 'runc', cmd: ['runc'] },
  { name: 'crun', cmd: ['crun'] },
].filter((r) => r.name === 'berth' || spawnSync('which', [r.cmd[0]]).status === 0);

// stderr goes to a file: a created container holds its caller's stdio until it exits, so a pipe
// would never reach EOF.
const errPath = join(work, 'stderr');
function time(cmd, args) {
  const errFd = openSync(errPath, 'w');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', errFd] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  closeSync(errFd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${readFileSync(errPath, 'utf8')}`);
  return ms;
}

const results = new Map();
const record = (key, ms) => { if (!results.has(key)) results.set(key, []); results.get(key).push(ms); };

for (let i = 0; i < runs; i++) {
  record('node -e 0', time(process.execPath, ['-e', '0']));
  for (const rt of runtimes) {
    const root = join(work, `state-${rt.name}`);
    const [cmd, ...pre] = rt.cmd;
    const base = [...pre, '--root', root];
    const id = `bench-${rt.name}-${i}`;
    record(`${rt.name} run`, time(cmd, [...base, 'run', '--bundle', bundle, id]));
    // runc/crun keep a stopped container after a foreground run; remove it outside the timing.
    spawnSync(cmd, [...base, 'delete', '--force', id]);
    const t0 = process.hrtime.bigint();
    time(cmd, [...base, 'create', '--bundle', bundle, `${id}-c`]);
    time(cmd, [...base, 'start', `${id}-c`]);
    // Wait for /bin/true to exit so delete does not need --force.
    for (let k = 0; k < 200; k++) {
      const s = spawnSync(cmd, [...base, 'state', `${id}-c`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      if (s.stdout.includes('"stopped"')) break;
    }
    const t1 = process.hrtime.bigint();
    time(cmd, [...base, 'delete', `${id}-c`]);
    const t2 = process.hrtime.bigint();
    record(`${rt.name} create+start+delete`, Number((t1 - t0) + (t2 - t1)) / 1e6);
  }
}

// exec and pause/resume: one long-running container per runtime, operated on repeatedly.
const sleeperBundle = join(work, 'sleeper');
execFileSync(join(repo, 'scripts/busybox-bundle.sh'), [sleeperBundle, 'sleep', '100000'], { stdio: 'inherit' });
{
  const specPath2 = join(sleeperBundle, 'config.json');
  const spec2 = JSON.parse(readFileSync(specPath2, 'utf8'));
  spec2.ociVersion = '1.0.2';
  writeFileSync(specPath2, JSON.stringify(spec2));
}
const sleepers = [];
try {
  for (const rt of runtimes) {
    const [cmd, ...pre] = rt.cmd;
    const base = [...pre, '--root', join(work, `state-${rt.name}`)];
    const id = `bench-${rt.name}-sleeper`;
    time(cmd, [...base, 'run', '--detach', '--bundle', sleeperBundle, id]);
    sleepers.push({ rt, cmd, base, id });
  }
  for (let i = 0; i < runs; i++) {
    for (const { rt, cmd, base, id } of sleepers) {
      record(`${rt.name} exec true`, time(cmd, [...base, 'exec', id, '/bin/true']));
      record(`${rt.name} pause`, time(cmd, [...base, 'pause', id]));
      record(`${rt.name} resume`, time(cmd, [...base, 'resume', id]));
    }
  }
} finally {
  for (const { cmd, base, id } of sleepers) spawnSync(cmd, [...base, 'delete', '--force', id], { stdio: 'ignore' });
}

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const median = (xs) => quantile(xs, 0.5);
console.log(`\n${runs} runs each, interleaved; times in ms (median [p10–p90])`);
for (const [key, xs] of results) {
  const crunKey = key.replace(/^\w+/, 'crun');
  const ratio = results.has(crunKey) && !key.startsWith('crun') && key !== 'node -e 0'
    ? `  ×${(median(xs) / median(results.get(crunKey))).toFixed(2)} of crun` : '';
  console.log(`${key.padEnd(30)} ${median(xs).toFixed(1).padStart(8)} [${quantile(xs, 0.1).toFixed(1)}–${quantile(xs, 0.9).toFixed(1)}]${ratio}`);
}
const floor = median(results.get('node -e 0'));
const berthRun = results.get('berth run');
const crunRun = results.get('crun run');
if (berthRun && crunRun) {
  const overhead = median(berthRun) - floor;
  console.log(`\nberth run above node's own start-up: ${overhead.toFixed(1)} ms; crun's whole run: ${median(crunRun).toFixed(1)} ms → goal ${overhead <= median(crunRun) ? 'met' : 'not met'}`);
}
rmSync(work, { recursive: true, force: true });
if (existsSync(work)) console.error(`could not remove ${work}`);
