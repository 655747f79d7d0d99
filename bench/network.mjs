// What container networking costs per start and stop: NetworkService.prepare/release on the
// default bridge, without and with a published port, against the bare start-up cost of Debian's
// CNI plugins (what src/engine/network/index.ts's choice is weighed against).
//
//   node --import tsx bench/network.mjs [--runs 30]     (as root; uses bridge suffix "bn")
//
// Leaves nothing behind: every object it makes carries the suffix and goes at the end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MetadataDb } from '../src/engine/db.ts';
import { EventBus } from '../src/engine/events.ts';
import { Logger } from '../src/engine/log.ts';
import { NetworkService } from '../src/engine/network/index.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 30;
const dir = mkdtempSync('/tmp/berth-netbench-');
const db = MetadataDb.open(join(dir, 'berth.db'));
db.migrate();
const hooks = [];
const ctx = {
  config: { execRoot: join(dir, 'run'), dataRoot: dir, bridgeSuffix: 'bn' }, db, events: new EventBus(), log: new Logger('error'),
  id: 'bench', startedAt: new Date(), storageDriver: 'vfs', storageDriverStatus: [], services: {}, infoContributors: [],
  diskUsageContributors: [], onShutdown: (f) => hooks.push(f),
};

const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return `median ${s[s.length >> 1].toFixed(1)} ms, p90 ${s[Math.floor(s.length * 0.9)].toFixed(1)} ms`;
};

try {
  const svc = await NetworkService.open(ctx);
  const req = (i, ports) => ({
    containerId: String(i).padStart(64, '0'), containerName: `c${i}`, hostname: 'h',
    hostConfig: ports ? { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } } : {},
    exposedPorts: {}, endpointsConfig: {}, dataDir: join(dir, 'c', String(i)),
  });
  // The first start makes the bridge and the chains: not what a warm daemon pays.
  await svc.prepare(req(0, true));
  await svc.release(req(0, true).containerId);
  let n = 1;
  for (const ports of [false, true]) {
    const prep = [];
    const rel = [];
    const bg = [];
    for (let i = 0; i < runs; i++, n++) {
      let t = performance.now();
      await svc.prepare(req(n, ports));
      prep.push(performance.now() - t);
      t = performance.now();
      await svc.release(req(n, ports).containerId);
      rel.push(performance.now() - t);
      // Port rules are deleted after release() returns; wait for it so the next start is not charged.
      t = performance.now();
      await svc.settled();
      bg.push(performance.now() - t);
    }
    console.log(`${ports ? 'with -p 127.0.0.1::80' : 'no published port   '}: prepare ${stats(prep)}; release ${stats(rel)}; after release ${stats(bg)}`);
  }
  for (const h of hooks) await h();
} finally {
  db.close();
  rmSync(dir, { recursive: true, force: true });
}

if (existsSync('/usr/lib/cni')) {
  for (const p of ['bridge', 'host-local', 'portmap', 'loopback']) {
    const t = [];
    for (let i = 0; i < 10; i++) {
      const s = performance.now();
      spawnSync(`/usr/lib/cni/${p}`, [], { input: '{"cniVersion":"1.0.0"}', env: { CNI_COMMAND: 'VERSION' } });
      t.push(performance.now() - s);
    }
    console.log(`CNI ${p.padEnd(10)} start (VERSION only): ${stats(t)}`);
  }
}
