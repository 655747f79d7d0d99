// Layer unpack speed: Berth's applyLayer against GNU tar on the same layer, both into a fresh
// directory on the same filesystem, median of --runs. Results are checked with `tar --compare`.
//
//   node --import tsx bench/unpack.mjs [--layer FILE.tar.gz|.tar.zst|.tar] [--dir /dev/shm] [--runs 3]
//
// Without --layer it builds one from /usr/include and /usr/lib/python3* (about 50 MB gzip,
// ~180 MB uncompressed, ~15 000 entries): the size of a Debian bookworm base layer.
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyLayer } from '../src/image/unpack/index.ts';

const { values: args } = parseArgs({
  options: { layer: { type: 'string' }, dir: { type: 'string', default: '/tmp' }, runs: { type: 'string', default: '3' } },
});
const runs = Number(args.runs);
const work = mkdtempSync(join(args.dir, 'berth-bench-unpack-'));

function sh(cmd, cmdArgs, opts = {}) {
  const r = spawnSync(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

let layer = args.layer;
try {
  if (!layer) {
    layer = join(work, 'layer.tar.gz');
    const py = readdirSync('/usr/lib').filter((n) => /^python3\.\d+$/.test(n)).map((n) => `usr/lib/${n}`);
    sh('sh', ['-c', `tar --format=pax -C / -cf - usr/include ${py.join(' ')} | gzip -6 > ${layer}`]);
  }
  const codec = layer.endsWith('.zst') ? '--zstd' : layer.endsWith('.gz') || layer.endsWith('.tgz') ? '-z' : '';
  const size = statSync(layer).size;
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const times = { berth: [], tar: [] };
  let info;
  for (let i = 0; i < runs; i++) {
    for (const who of ['berth', 'tar']) {
      const out = join(work, `${who}-${i}`);
      sh('mkdir', [out]);
      sh('sync', []);
      const t0 = performance.now();
      if (who === 'berth') {
        info = await applyLayer(createReadStream(layer, { highWaterMark: 256 * 1024 }), { target: out, mode: 'overlay' });
      } else {
        sh('tar', ['--numeric-owner', '-xp', ...(codec ? [codec] : []), '-f', layer, '-C', out]);
      }
      times[who].push((performance.now() - t0) / 1000);
      if (i === 0 && who === 'berth') {
        sh('tar', ['--compare', '--numeric-owner', ...(codec ? [codec] : []), '-f', layer, '-C', out]);
      }
      rmSync(out, { recursive: true, force: true });
    }
  }
  const mb = (n) => (n / 1e6).toFixed(1);
  console.log(`layer: ${layer} (${mb(size)} MB ${info.compression}, ${mb(info.size)} MB tar, ${info.entries} entries) into ${args.dir}, ${runs} runs`);
  for (const who of ['berth', 'tar']) {
    const t = median(times[who]);
    console.log(`${who.padEnd(6)} ${t.toFixed(2)} s  (${mb(size / t)} MB/s in, ${mb(info.size / t)} MB/s out)  runs: ${times[who].map((x) => x.toFixed(2)).join(' ')}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  if (existsSync(work)) console.error(`could not remove ${work}`);
}
