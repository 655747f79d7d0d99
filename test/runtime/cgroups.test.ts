// Cgroup layer tests. The pure tests run anywhere; the rest need root and a writable cgroupfs and
// adapt to the host: cgroup v1/hybrid here, cgroup v2 in ../shared/vm/run-in-v2-vm.
// Every cgroup made here is named berth-test-<pid>-<time>; every one is removed again, and only
// processes this file spawned are killed (by pid).

import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type CgroupLayout, type CgroupManager, DEFAULT_DEVICE_RULES, blkioWeightToIoWeight, cpuSharesToWeight,
  detectLayout, deviceRulesRequested, loadCgroup, openCgroup, swapToV2,
} from '../../src/runtime/cgroups/index.ts';
import { normaliseCgroupsPath, resolveInHierarchy } from '../../src/runtime/cgroups/layout.ts';
import { deviceRuleLines, deviceTransition } from '../../src/runtime/cgroups/v1.ts';
import { ConfigError, StateError } from '../../src/runtime/errors.ts';
import type { LinuxResources } from '../../src/runtime/spec-types.ts';

// ---- pure ------------------------------------------------------------------------------------

const HYBRID_MOUNTINFO = `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 22 0:32 /sub /mnt/my\\040mem rw,relatime - cgroup cgroup rw,memory
`;
const HYBRID_CGROUP = `9:name=systemd:/user.slice
4:memory:/process_api/abc
3:cpuset:/
1:cpu,cpuacct:/a/b
0::/init.scope
`;
const V2_MOUNTINFO = `22 1 254:0 / / rw - ext4 /dev/vda rw
42 23 0:37 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

describe('layout', () => {
  test('hybrid mountinfo and /proc/self/cgroup', () => {
    const l = detectLayout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    assert.equal(l.version, 1);
    const by = (mp: string) => l.hierarchies.find((h) => h.mountpoint === mp);
    assert.deepEqual(by('/sys/fs/cgroup/cpu,cpuacct')?.controllers, ['cpu', 'cpuacct']);
    assert.equal(by('/sys/fs/cgroup/cpu,cpuacct')?.current, '/a/b');
    assert.deepEqual(by('/sys/fs/cgroup/cpuset')?.controllers, ['cpuset']); // clone_children is an option
    assert.deepEqual(by('/sys/fs/cgroup/systemd')?.controllers, ['name=systemd']);
    assert.equal(by('/sys/fs/cgroup/systemd')?.current, '/user.slice');
    assert.equal(by('/sys/fs/cgroup/unified')?.version, 2);
    assert.equal(by('/sys/fs/cgroup/unified')?.current, '/init.scope');
    assert.equal(by('/sys/fs/cgroup/memory')?.current, '/process_api/abc');
    // the second mount of the memory hierarchy is not a second hierarchy
    assert.equal(l.hierarchies.filter((h) => h.controllers.includes('memory')).length, 1);
    assert.equal(l.hierarchies.length, 5);
  });

  test('pure v2', () => {
    const l = detectLayout(V2_MOUNTINFO, '0::/user.slice/x\n');
    assert.equal(l.version, 2);
    assert.deepEqual(l.hierarchies, [{ controllers: [], mountpoint: '/sys/fs/cgroup', root: '/', current: '/user.slice/x', version: 2 }]);
  });

  test('escaped mountpoints and mount roots', () => {
    const l = detectLayout(
      `50 22 0:32 /sub /mnt/my\\040mem rw - cgroup cgroup rw,memory\n`,
      '4:memory:/sub/me\n',
    );
    assert.equal(l.hierarchies[0].mountpoint, '/mnt/my mem');
    assert.equal(l.hierarchies[0].root, '/sub');
    assert.deepEqual(resolveInHierarchy(l.hierarchies[0], 'c'), { cgroup: '/sub/me/c', dir: '/mnt/my mem/me/c' });
    assert.deepEqual(resolveInHierarchy(l.hierarchies[0], '/x/y'), { cgroup: '/x/y', dir: '/mnt/my mem/x/y' });
    const outside = { ...l.hierarchies[0], current: '/other' };
    assert.throws(() => resolveInHierarchy(outside, 'c'), /outside/);
  });

  test('cgroupsPath forms', () => {
    assert.deepEqual(normaliseCgroupsPath(undefined, 'abc'), { path: '/berth/abc', isDefault: true });
    assert.deepEqual(normaliseCgroupsPath('', 'abc', 'pfx'), { path: '/pfx/abc', isDefault: true });
    assert.deepEqual(normaliseCgroupsPath('/a//b/', 'abc'), { path: '/a/b', isDefault: false });
    assert.deepEqual(normaliseCgroupsPath('rel/x', 'abc'), { path: 'rel/x', isDefault: false });
    assert.throws(() => normaliseCgroupsPath('system.slice:docker:abc', 'abc'), (e: unknown) => e instanceof ConfigError && /systemd/.test(e.message));
    assert.throws(() => normaliseCgroupsPath('/a/../../b', 'abc'), ConfigError);
    assert.throws(() => normaliseCgroupsPath('/', 'abc'), /root cgroup/);
  });
});

describe('conversions and rules', () => {
  test('cpu shares → cpu.weight (runc)', () => {
    assert.equal(cpuSharesToWeight(2), 1);
    assert.equal(cpuSharesToWeight(1024), 39);
    assert.equal(cpuSharesToWeight(512), 20);
    assert.equal(cpuSharesToWeight(262144), 10000);
  });
  test('memory.swap → memory.swap.max', () => {
    assert.equal(swapToV2(200, 100), 100);
    assert.equal(swapToV2(100, 100), 0);
    assert.equal(swapToV2(0, -1), -1);
    assert.equal(swapToV2(-1, 100), -1);
    assert.equal(swapToV2(0, 100), 0);
    assert.throws(() => swapToV2(50, 100), ConfigError);
    assert.throws(() => swapToV2(50, 0), /needs a memory limit/);
  });
  test('blkio weight → io.weight', () => {
    assert.equal(blkioWeightToIoWeight(10), 1);
    assert.equal(blkioWeightToIoWeight(500), 4950);
    assert.equal(blkioWeightToIoWeight(1000), 10000);
  });
  test('device rules as devices.allow/deny lines', () => {
    assert.deepEqual(deviceRuleLines({ allow: false, access: 'rwm' }, 0), ['a']);
    assert.deepEqual(deviceRuleLines({ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, 0), ['c 1:3 rw']);
    assert.deepEqual(deviceRuleLines({ allow: true, type: 'c', major: 136, minor: null, access: 'rwm' }, 0), ['c 136:* rwm']);
    assert.deepEqual(deviceRuleLines({ allow: true, type: 'a', access: 'm' }, 0), ['c *:* m', 'b *:* m']);
    assert.throws(() => deviceRuleLines({ allow: true, type: 'x', access: 'r' }, 3), /devices\[3\]\.type/);
    assert.throws(() => deviceRuleLines({ allow: true, type: 'c', access: '' }, 1), /devices\[1\]\.access/);
    assert.equal(deviceRulesRequested({ devices: [] }), false);
    assert.equal(deviceRulesRequested({ devices: [{ allow: false, access: 'rwm' }] }), true);
    assert.equal(DEFAULT_DEVICE_RULES.length, 10);
    assert.deepEqual(deviceRuleLines({ allow: false, type: 'c', major: 1, minor: 11, access: 'rwa' }, 0), ['c 1:11 rw'], 'unknown letters left out (runc)');
  });

  test('device rule updates: the fewest devices.allow/deny writes, a reset only when the default changes', () => {
    const state = (allowAll: boolean, rules: [string, number][]) => ({ allowAll, rules: new Map(rules) });
    const R = 1, W = 2, M = 4;
    // Same rules: nothing is written.
    assert.deepEqual(deviceTransition(state(false, [['c 1:3', R | W | M]]), state(false, [['c 1:3', R | W | M]])), []);
    // Lost access is denied, new access allowed, per exception; never a deny-all in between.
    assert.deepEqual(deviceTransition(
      state(false, [['c 1:3', R | W | M], ['c 1:11', R | W], ['b 7:*', R]]),
      state(false, [['c 1:3', R | W | M], ['c 1:11', R], ['c 10:229', R | W]]),
    ), [['devices.deny', 'b 7:* r'], ['devices.deny', 'c 1:11 w'], ['devices.allow', 'c 10:229 rw']]);
    // From allow-all (whose deny exceptions devices.list cannot show) or to it: reset with "a" first.
    assert.deepEqual(deviceTransition(state(true, []), state(false, [['c 1:3', R]])), [['devices.deny', 'a'], ['devices.allow', 'c 1:3 r']]);
    assert.deepEqual(deviceTransition(state(false, [['c 1:3', R]]), state(true, [['c 1:11', R]])), [['devices.allow', 'a'], ['devices.deny', 'c 1:11 r']]);
  });
  test('openCgroup on a given v1 layout: dirs, mounts, save and load', () => {
    const layout: CgroupLayout = {
      version: 1,
      hierarchies: [
        { controllers: ['cpu', 'cpuacct'], mountpoint: '/sys/fs/cgroup/cpu,cpuacct', root: '/', current: '/me', version: 1 },
        { controllers: ['name=systemd'], mountpoint: '/sys/fs/cgroup/systemd', root: '/', current: '/', version: 1 },
      ],
    };
    const m = openCgroup({ containerId: 'c1', layout });
    assert.deepEqual(m.procsFiles(), ['/sys/fs/cgroup/cpu,cpuacct/berth/c1/cgroup.procs', '/sys/fs/cgroup/systemd/berth/c1/cgroup.procs']);
    const rel = openCgroup({ containerId: 'c1', cgroupsPath: 'x/y', layout });
    assert.deepEqual(rel.procsFiles()[0], '/sys/fs/cgroup/cpu,cpuacct/me/x/y/cgroup.procs');
    const mi = m.mounts();
    assert.equal(mi.version, 1);
    assert.deepEqual(mi.entries.map((e) => [e.name, e.fsOptions]), [['cpu,cpuacct', 'cpu,cpuacct'], ['systemd', 'name=systemd']]);
    assert.deepEqual(mi.symlinks, [{ name: 'cpu', target: 'cpu,cpuacct' }, { name: 'cpuacct', target: 'cpu,cpuacct' }]);
    const saved = JSON.parse(JSON.stringify(m.toJSON()));
    assert.equal(saved.dirs[0].owned, true);
    assert.deepEqual(loadCgroup(saved).toJSON(), m.toJSON());
    assert.throws(() => loadCgroup({ version: 3 } as never), StateError);
    assert.throws(() => loadCgroup({ version: 1, dirs: [{ mountpoint: '/sys/fs/cgroup/cpu', controllers: [], dir: '/etc', created: true }] }), StateError);
    assert.throws(() => openCgroup({ containerId: 'c1', cgroupsPath: 'a:b:c', layout }), /systemd/);
  });
});

// ---- on this host's cgroups ------------------------------------------------------------------

const isRoot = process.getuid?.() === 0;
const live = isRoot && fs.existsSync('/sys/fs/cgroup');
const layout = live ? detectLayout() : undefined;
const v2 = layout?.version === 2;
const TOP = `berth-test-${process.pid}-${Date.now().toString(36)}`;
const hybridUnified = layout?.version === 1 ? layout.hierarchies.find((h) => h.version === 2) : undefined;
let unifiedRootSubtree: string | undefined;

function read(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8').trim();
}

/** Where each controller lives now (hugetlb/net_cls may come and go on this shared host). */
function controllerDir(m: CgroupManager, ctrl: string): { dir: string; mountpoint: string; v2: boolean } | undefined {
  const dirs = m.toJSON().dirs;
  if (m.version === 2) {
    const avail = fs.readFileSync(path.join(dirs[0].mountpoint, 'cgroup.controllers'), 'utf8').split(/\s+/);
    return avail.includes(ctrl) ? { dir: dirs[0].dir, mountpoint: dirs[0].mountpoint, v2: true } : undefined;
  }
  const d = dirs.find((x) => x.controllers.includes(ctrl));
  return d ? { dir: d.dir, mountpoint: d.mountpoint, v2: !!d.unified } : undefined;
}

/** Kills (by pid) and waits for children this file started; thaws first so SIGKILL lands. */
async function killChild(c: ChildProcess, m?: CgroupManager): Promise<void> {
  try {
    if (m?.frozen()) m.thaw();
  } catch {
    /* the cgroup may be gone */
  }
  if (c.exitCode === null && c.signalCode === null) {
    const done = once(c, 'exit');
    process.kill(c.pid!, 'SIGKILL');
    await done;
  }
}

function spawnSleep(t: TestContext, m: CgroupManager): ChildProcess {
  const c = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => killChild(c, m));
  return c;
}

function join(m: CgroupManager, pid: number): void {
  for (const f of m.procsFiles()) fs.writeFileSync(f, String(pid));
}

/** A manager whose cgroup is removed after the test whatever happens. */
function managed(t: TestContext, name: string, extra: Partial<Parameters<typeof openCgroup>[0]> = {}): CgroupManager {
  const m = openCgroup({ containerId: name, cgroupsPath: `/${TOP}/${name}`, ...extra });
  t.after(() => {
    try {
      if (m.frozen()) m.thaw();
    } catch {
      /* ignore */
    }
    for (const d of m.toJSON().dirs) rmTree(d.dir);
  });
  return m;
}

function rmTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(path.join(dir, e.name));
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (i > 20) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

function firstBlockDevice(): { major: number; minor: number } | undefined {
  try {
    for (const b of fs.readdirSync('/sys/block')) {
      const m = /^(\d+):(\d+)$/.exec(fs.readFileSync(`/sys/block/${b}/dev`, 'utf8').trim());
      if (m) return { major: Number(m[1]), minor: Number(m[2]) };
    }
  } catch {
    /* none */
  }
  return undefined;
}

describe('live cgroups', { skip: live ? false : 'needs root and /sys/fs/cgroup' }, () => {
  before(() => {
    if (hybridUnified) unifiedRootSubtree = read(hybridUnified.mountpoint, 'cgroup.subtree_control');
  });
  after(() => {
    // Safety net: remove the whole test tree in every hierarchy (absolute and relative placements).
    for (const h of detectLayout().hierarchies) {
      rmTree(path.join(h.mountpoint, TOP));
      if (h.current !== '/' && (h.root === '/' || h.current.startsWith(h.root))) {
        rmTree(path.join(h.mountpoint, h.root === '/' ? h.current : h.current.slice(h.root.length), TOP));
      }
    }
    // Leave the hybrid host's cgroup2 root as it was: a controller enabled there can no longer be
    // mounted as a v1 hierarchy by anyone else.
    if (hybridUnified && unifiedRootSubtree !== undefined) {
      const before = new Set(unifiedRootSubtree.split(/\s+/).filter(Boolean));
      const now = read(hybridUnified.mountpoint, 'cgroup.subtree_control').split(/\s+/).filter(Boolean);
      for (const c of now) {
        if (before.has(c)) continue;
        try {
          fs.writeFileSync(path.join(hybridUnified.mountpoint, 'cgroup.subtree_control'), `-${c}`);
        } catch (e) {
          // Someone else's cgroup below the root delegates it further: theirs to undo.
          console.error(`# left +${c} in ${hybridUnified.mountpoint}/cgroup.subtree_control: ${(e as Error).message}`);
        }
      }
    }
  });

  test('create applies resources; join, pids, stats, freeze, update, destroy', async (t) => {
    const m = managed(t, 'full', { defaultDeviceRules: true });
    const hugetlbWhere = controllerDir(m, 'hugetlb');
    const blk = firstBlockDevice();
    const res: LinuxResources = {
      memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, ...(v2 ? {} : { swappiness: 10, disableOOMKiller: true }) },
      cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, cpus: '0', mems: '0' },
      pids: { limit: 20 },
      ...(hugetlbWhere ? { hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] } : {}),
      ...(v2 ? {} : { devices: [{ allow: false, access: 'rwm' }] }),
      ...(blk ? { blockIO: { throttleReadBpsDevice: [{ ...blk, rate: 1048576 }], throttleWriteIOPSDevice: [{ ...blk, rate: 300 }] } } : {}),
    };
    m.create(res);
    const saved = m.toJSON();
    assert.equal(saved.version, layout!.version);
    assert.ok(saved.dirs.every((d) => d.created && fs.existsSync(d.dir)), 'every dir was made');
    const dir = (c: string) => controllerDir(m, c)!.dir;

    if (m.version === 1) {
      assert.equal(read(dir('memory'), 'memory.limit_in_bytes'), String(64 << 20));
      assert.equal(read(dir('memory'), 'memory.memsw.limit_in_bytes'), String(128 << 20));
      assert.equal(read(dir('memory'), 'memory.soft_limit_in_bytes'), String(32 << 20));
      assert.equal(read(dir('memory'), 'memory.swappiness'), '10');
      assert.match(read(dir('memory'), 'memory.oom_control'), /^oom_kill_disable 1$/m);
      assert.equal(read(dir('cpu'), 'cpu.shares'), '512');
      assert.equal(read(dir('cpu'), 'cpu.cfs_quota_us'), '50000');
      assert.equal(read(dir('cpu'), 'cpu.cfs_period_us'), '100000');
      assert.equal(read(dir('cpu'), 'cpu.cfs_burst_us'), '1000');
      assert.equal(read(dir('cpuset'), 'cpuset.cpus'), '0');
      assert.equal(read(dir('cpuset'), 'cpuset.mems'), '0');
      // the cpuset parent was initialised from its own parent
      assert.notEqual(read(path.dirname(dir('cpuset')), 'cpuset.cpus'), '');
      assert.equal(read(dir('pids'), 'pids.max'), '20');
      if (blk) {
        assert.match(read(dir('blkio'), 'blkio.throttle.read_bps_device'), new RegExp(`^${blk.major}:${blk.minor} 1048576$`, 'm'));
        assert.match(read(dir('blkio'), 'blkio.throttle.write_iops_device'), new RegExp(`^${blk.major}:${blk.minor} 300$`, 'm'));
      }
      // default deny, then runc's default allow-list
      const list = read(dir('devices'), 'devices.list').split('\n');
      assert.ok(list.includes('c 1:3 rwm') && list.includes('c 136:* rwm') && list.includes('b *:* m'), list.join('|'));
      assert.ok(!list.includes('a *:* rwm'), 'not allow-all');
    } else {
      const d = saved.dirs[0].dir;
      assert.equal(read(d, 'memory.max'), String(64 << 20));
      assert.equal(read(d, 'memory.swap.max'), String(64 << 20)); // swap - limit
      assert.equal(read(d, 'memory.low'), String(32 << 20));
      assert.equal(read(d, 'cpu.weight'), String(cpuSharesToWeight(512)));
      assert.equal(read(d, 'cpu.max'), '50000 100000');
      assert.equal(read(d, 'cpu.max.burst'), '1000');
      assert.equal(read(d, 'cpuset.cpus'), '0');
      assert.equal(read(d, 'cpuset.mems'), '0');
      assert.equal(read(d, 'pids.max'), '20');
      if (blk) assert.match(read(d, 'io.max'), new RegExp(`^${blk.major}:${blk.minor} rbps=1048576 wbps=max riops=max wiops=300$`, 'm'));
      // the parent delegates the controllers
      assert.match(read(path.dirname(d), 'cgroup.subtree_control'), /\bmemory\b.*\bpids\b|\bpids\b.*\bmemory\b/);
    }
    if (res.hugepageLimits) {
      const h = controllerDir(m, 'hugetlb')!;
      assert.equal(read(h.dir, h.v2 ? 'hugetlb.2MB.max' : 'hugetlb.2MB.limit_in_bytes'), '4194304');
    }

    // join a process
    const child = spawnSleep(t, m);
    join(m, child.pid!);
    assert.deepEqual(m.pids(), [child.pid]);
    for (const f of m.procsFiles()) assert.equal(fs.readFileSync(f, 'utf8').trim(), String(child.pid));

    const st = m.stats();
    assert.deepEqual(st.pids, { current: 1, limit: 20 });
    assert.equal(st.memory?.usage.limit, 64 << 20);
    assert.ok(st.cpu && typeof st.cpu.usage.total === 'number');

    // freeze / thaw
    assert.equal(m.frozen(), false);
    m.freeze();
    assert.equal(m.frozen(), true);
    if (m.version === 1) assert.equal(read(dir('freezer'), 'freezer.state'), 'FROZEN');
    else assert.match(read(saved.dirs[0].dir, 'cgroup.events'), /^frozen 1$/m);
    const st2 = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    assert.match(st2, /^State:\s+[SD]/m);
    m.thaw();
    assert.equal(m.frozen(), false);
    if (m.version === 1) assert.equal(read(dir('freezer'), 'freezer.state'), 'THAWED');
    else assert.match(read(saved.dirs[0].dir, 'cgroup.events'), /^frozen 0$/m);

    // update: raise then lower memory (memsw ordering), pids to unlimited
    m.update({ memory: { limit: 96 << 20, swap: 192 << 20 }, pids: { limit: 0 }, cpu: { period: 200000 } });
    if (m.version === 1) assert.equal(read(dir('cpu'), 'cpu.cfs_period_us'), '200000');
    else assert.equal(read(saved.dirs[0].dir, 'cpu.max'), '50000 200000'); // the quota is kept
    m.update({ memory: { limit: 48 << 20, swap: 64 << 20 } });
    if (m.version === 1) {
      assert.equal(read(dir('memory'), 'memory.limit_in_bytes'), String(48 << 20));
      assert.equal(read(dir('memory'), 'memory.memsw.limit_in_bytes'), String(64 << 20));
      assert.equal(read(dir('pids'), 'pids.max'), 'max');
      // update leaves device rules alone when none are given
      assert.ok(!read(dir('devices'), 'devices.list').includes('a *:* rwm'));
    } else {
      const d = saved.dirs[0].dir;
      assert.equal(read(d, 'memory.max'), String(48 << 20));
      assert.equal(read(d, 'memory.swap.max'), String(16 << 20));
      assert.equal(read(d, 'pids.max'), 'max');
    }

    // a later command finds the same cgroup from the saved state
    const again = loadCgroup(JSON.parse(JSON.stringify(saved)));
    assert.deepEqual(again.pids(), [child.pid]);
    again.freeze();
    assert.equal(m.frozen(), true);
    again.thaw();

    // destroy refuses while the process lives, then works
    const alive = fs.existsSync(`/proc/${child.pid}`) ? fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/^State:.*$/m)?.[0] : 'gone';
    assert.throws(() => again.destroy(), /still holds processes/, `destroy must refuse while pid ${child.pid} is in the cgroup (${alive}; pids now ${again.pids().join(',')})`);
    await killChild(child);
    again.destroy();
    for (const d of saved.dirs) assert.equal(fs.existsSync(d.dir), false, `${d.dir} removed`);
    again.destroy(); // missing dirs are fine
  });

  test('a frozen existing cgroup is refused', async (t) => {
    const m = managed(t, 'frozen');
    m.create(undefined);
    const child = spawnSleep(t, m);
    join(m, child.pid!);
    m.freeze();
    const other = openCgroup({ containerId: 'frozen2', cgroupsPath: `/${TOP}/frozen` });
    assert.throws(() => other.create({ pids: { limit: 5 } }), (e: unknown) => e instanceof StateError && /frozen/.test(e.message));
    m.thaw();
    await killChild(child);
    m.destroy();
  });

  test('device rules', (t) => {
    if (v2) {
      const m = managed(t, 'dev2');
      assert.throws(() => m.create({ devices: [{ allow: false, access: 'rwm' }] }), (e: unknown) => e instanceof ConfigError && /eBPF/.test(e.message));
      assert.equal(fs.existsSync(m.toJSON().dirs[0].dir), false, 'nothing left behind');
      return;
    }
    const m = managed(t, 'dev1', { defaultDeviceRules: false });
    m.create({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: true, type: 'b', major: 7, minor: null, access: 'r' }] });
    const d = controllerDir(m, 'devices')!.dir;
    assert.deepEqual(read(d, 'devices.list').split('\n').sort(), ['b 7:* r', 'c 1:3 rw']);
    m.update({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }] });
    assert.deepEqual(read(d, 'devices.list').split('\n'), ['c 1:5 rwm']);
    m.update({ pids: { limit: 3 } });
    assert.deepEqual(read(d, 'devices.list').split('\n'), ['c 1:5 rwm'], 'an update without devices leaves them');
    m.destroy();
    // Without linux.resources.devices the devices cgroup is left as the kernel made it.
    const open = managed(t, 'dev0');
    open.create({ pids: { limit: 3 } });
    assert.equal(read(controllerDir(open, 'devices')!.dir, 'devices.list'), 'a *:* rwm');
    open.destroy();
  });

  test('what the host cannot honour is a ConfigError naming the file, and nothing is left behind', (t) => {
    const cases: [LinuxResources, RegExp][] = [];
    if (v2) {
      cases.push([{ cpu: { realtimeRuntime: 1000 } }, /realtime/]);
      cases.push([{ memory: { swappiness: 10 } }, /memory\.swappiness/]);
      cases.push([{ memory: { disableOOMKiller: true } }, /OOM/]);
      cases.push([{ network: { classID: 1 } }, /net_cls/]);
      cases.push([{ blockIO: { leafWeight: 100 } }, /leaf/]);
      cases.push([{ unified: { 'nosuch.file': '1' } }, /nosuch\.file/]);
      cases.push([{ hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }, /hugetlb\.3MB\.max/]);
    } else {
      cases.push([{ unified: { 'pids.max': '5' } }, /cgroup v2/]);
      const probe = openCgroup({ containerId: 'x', cgroupsPath: `/${TOP}/probe` });
      if (controllerDir(probe, 'blkio')) cases.push([{ blockIO: { leafWeight: 500 } }, /blkio\.leaf_weight/]);
      if (!controllerDir(probe, 'net_cls')) cases.push([{ network: { classID: 0x100001 } }, /net_cls/]);
      if (!controllerDir(probe, 'net_prio')) cases.push([{ network: { priorities: [{ name: 'lo', priority: 1 }] } }, /net_prio/]);
      const hug = controllerDir(probe, 'hugetlb');
      if (!hug) cases.push([{ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }, /hugetlb/]);
      else cases.push([{ hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }, /hugetlb\.3MB/]);
      cases.push([{ memory: { kernel: 64 << 20 } }, /memory\.kmem\.limit_in_bytes/]);
      cases.push([{ memory: { swappiness: 101 } }, /0-100/]);
      cases.push([{ cpu: { shares: 1 << 20 } }, /maximum allowed cpu-shares is 262144/]);
    }
    cases.push([{ memory: { limit: 100 << 20, swap: 50 << 20 } }, /must be >=/]);
    cases.push([{ cpu: { cpus: '999' } }, /cpuset\.cpus/]);
    cases.push([{ pids: { limit: 1.5 } }, /pids\.limit/]);
    for (const [i, [res, re]] of cases.entries()) {
      const m = managed(t, `bad${i}`);
      assert.throws(() => m.create(res), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${JSON.stringify(res)} → ${String(e)}`);
        assert.match((e as Error).message, re);
        return true;
      }, `${JSON.stringify(res)} must be refused`);
      for (const d of m.toJSON().dirs) assert.equal(fs.existsSync(d.dir), false, `${JSON.stringify(res)} left ${d.dir}`);
    }
  });

  test('cpu extras: idle, real-time period/runtime', (t) => {
    const m = managed(t, 'cpux');
    m.create({ cpu: { shares: 512, idle: 1 } });
    const d = controllerDir(m, 'cpu')!.dir;
    assert.equal(read(d, 'cpu.idle'), '1');
    m.update({ cpu: { idle: 0, shares: 256 } });
    assert.equal(read(d, 'cpu.idle'), '0');
    if (v2) {
      assert.equal(read(d, 'cpu.weight'), String(cpuSharesToWeight(256)));
      assert.throws(() => m.update({ cpu: { realtimePeriod: 500000 } }), (e: unknown) => e instanceof ConfigError && /realtime/.test(e.message));
    } else {
      assert.equal(read(d, 'cpu.shares'), '256');
      if (fs.existsSync(path.join(d, 'cpu.rt_period_us'))) {
        m.update({ cpu: { realtimePeriod: 500000 } });
        assert.equal(read(d, 'cpu.rt_period_us'), '500000');
        // The parent (made here) has no real-time budget to hand down.
        assert.throws(() => m.update({ cpu: { realtimeRuntime: 1000 } }), (e: unknown) => e instanceof ConfigError && /cpu\.rt_runtime_us/.test(e.message));
      }
    }
    m.destroy();
  });

  test('network classID/priorities where net_cls/net_prio are mounted', (t) => {
    const m = managed(t, 'net');
    const cls = controllerDir(m, 'net_cls');
    const prio = controllerDir(m, 'net_prio');
    if (v2 || !cls || !prio) {
      assert.throws(() => m.create({ network: { classID: 0x100001, priorities: [{ name: 'lo', priority: 5 }] } }), (e: unknown) => e instanceof ConfigError && /net_(cls|prio)/.test(e.message));
      t.diagnostic('net_cls/net_prio are not mounted here: only the refusal is checked');
      return;
    }
    m.create({ network: { classID: 0x100001, priorities: [{ name: 'lo', priority: 5 }] } });
    assert.equal(read(cls.dir, 'net_cls.classid'), String(0x100001));
    assert.match(read(prio.dir, 'net_prio.ifpriomap'), /^lo 5$/m);
    m.destroy();
  });

  test('blockIO.weight: BFQ or the plain weight file, else a ConfigError naming it', (t) => {
    const m = managed(t, 'weight');
    try {
      m.create({ blockIO: { weight: 500 } });
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, v2 ? /io\.weight/ : /blkio\.weight/);
      assert.ok(m.toJSON().dirs.every((d) => !fs.existsSync(d.dir)));
      t.diagnostic(e.message);
      return;
    }
    const d = controllerDir(m, v2 ? 'io' : 'blkio')!.dir;
    if (fs.existsSync(path.join(d, v2 ? 'io.bfq.weight' : 'blkio.bfq.weight'))) {
      assert.match(read(d, v2 ? 'io.bfq.weight' : 'blkio.bfq.weight'), /^(default )?500$/m);
    } else if (v2) {
      assert.match(read(d, 'io.weight'), new RegExp(`^default ${blkioWeightToIoWeight(500)}$`, 'm'));
    } else {
      assert.equal(read(d, 'blkio.weight'), '500');
    }
    m.destroy();
  });

  test('v2 unified key-values; v1 hybrid hugetlb through the cgroup2 mount', (t) => {
    if (v2) {
      const m = managed(t, 'unified');
      m.create({ pids: { limit: 9 }, unified: { 'pids.max': '7', 'memory.high': '50000000' } });
      const d = m.toJSON().dirs[0].dir;
      assert.equal(read(d, 'pids.max'), '7'); // unified wins
      assert.equal(read(d, 'memory.high'), '49999872'); // page-rounded
      assert.deepEqual(m.mounts(), { version: 2, entries: [{ name: '', hostDir: d, fsOptions: '', fsType: 'cgroup2' }], symlinks: [] });
      m.destroy();
      return;
    }
    const m = managed(t, 'hyb');
    const mi = m.mounts();
    assert.equal(mi.version, 1);
    assert.deepEqual(mi.entries.map((e) => e.hostDir), m.toJSON().dirs.map((d) => d.dir));
    assert.ok(mi.entries.some((e) => e.fsOptions === 'name=systemd'));
    const h = controllerDir(m, 'hugetlb');
    if (!h?.v2) {
      t.diagnostic(`hugetlb is ${h ? 'a v1 hierarchy' : 'not reachable'} on this host right now; the cgroup2 path is not exercised`);
      return;
    }
    m.create({ hugepageLimits: [{ pageSize: '2MB', limit: 2 << 20 }] });
    assert.equal(read(h.dir, 'hugetlb.2MB.max'), String(2 << 20));
    assert.match(read(path.dirname(h.dir), 'cgroup.subtree_control'), /hugetlb/);
    m.destroy();
  });

  test('hybrid dispatch: controllers that only a cgroup2 mount has are set through it', (t) => {
    // The real cgroup2 mount (v2 root, or the hybrid host's unified mount) presented as the only
    // hierarchy of a v1 layout: the v1 manager must route each controller through the v2 files.
    const h = detectLayout().hierarchies.find((x) => x.version === 2);
    const avail = h ? read(h.mountpoint, 'cgroup.controllers').split(/\s+/).filter(Boolean) : [];
    const want = ['pids', 'hugetlb', 'memory'].filter((c) => avail.includes(c));
    if (!h || !want.length) {
      t.diagnostic(`the cgroup2 mount offers none of pids/hugetlb/memory here (${avail.join(' ') || 'nothing'})`);
      return;
    }
    const fake: CgroupLayout = { version: 1, hierarchies: [{ ...h }] };
    const m = managed(t, 'hybdispatch', { layout: fake });
    assert.equal(m.version, 1);
    m.create({
      ...(want.includes('pids') ? { pids: { limit: 11 } } : {}),
      ...(want.includes('hugetlb') ? { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] } : {}),
      ...(want.includes('memory') ? { memory: { limit: 32 << 20 } } : {}),
    });
    const [d] = m.toJSON().dirs;
    assert.equal(d.unified, true);
    if (want.includes('pids')) assert.equal(read(d.dir, 'pids.max'), '11');
    if (want.includes('hugetlb')) assert.equal(read(d.dir, 'hugetlb.2MB.max'), String(4 << 20));
    if (want.includes('memory')) assert.equal(read(d.dir, 'memory.max'), String(32 << 20));
    for (const c of want) assert.match(read(path.dirname(d.dir), 'cgroup.subtree_control'), new RegExp(`\\b${c}\\b`));
    assert.equal(m.mounts().entries[0].fsType, 'cgroup2');
    m.destroy();
    assert.equal(fs.existsSync(d.dir), false);
  });

  test('relative cgroupsPath lands below our own cgroup; pre-existing dirs survive destroy', (t) => {
    const rel = openCgroup({ containerId: 'r', cgroupsPath: `${TOP}/rel` });
    t.after(() => {
      for (const d of rel.toJSON().dirs) rmTree(d.dir);
    });
    for (const d of rel.toJSON().dirs) {
      const h = detectLayout().hierarchies.find((x) => x.mountpoint === d.mountpoint)!;
      const own = h.root === '/' ? h.current : h.current.slice(h.root.length);
      assert.equal(d.dir, path.join(h.mountpoint, own, TOP, 'rel'));
    }
    rel.create(undefined);
    assert.ok(rel.toJSON().dirs.every((d) => fs.existsSync(d.dir)));
    rel.destroy();
    assert.ok(rel.toJSON().dirs.every((d) => !fs.existsSync(d.dir)));

    // A dir that existed before create is not this manager's to remove.
    const pre = managed(t, 'pre');
    const first = pre.toJSON().dirs[0];
    fs.mkdirSync(first.dir, { recursive: true });
    pre.create(undefined);
    const saved = pre.toJSON();
    assert.equal(saved.dirs[0].created, false);
    pre.destroy();
    assert.equal(fs.existsSync(first.dir), true, 'pre-existing dir kept');
    for (const d of saved.dirs.slice(1)) assert.equal(fs.existsSync(d.dir), false, `${d.dir} removed`);

    // The default path belongs to the container even when it already existed.
    const def = openCgroup({ containerId: 'dflt', defaultPrefix: `/${TOP}` });
    t.after(() => {
      for (const d of def.toJSON().dirs) rmTree(d.dir);
    });
    fs.mkdirSync(def.toJSON().dirs[0].dir, { recursive: true });
    def.create(undefined);
    assert.equal(def.toJSON().dirs[0].owned, true);
    assert.ok(def.toJSON().dirs[0].dir.endsWith(`/${TOP}/dflt`));
    def.destroy();
    assert.ok(def.toJSON().dirs.every((d) => !fs.existsSync(d.dir)));
  });
});
