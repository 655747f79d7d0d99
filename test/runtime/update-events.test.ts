// `update` and `events`: changing the limits of a running container (flags, -r FILE, -r -), seen in
// the host's cgroup files, from inside the container and by behaviour (the pids limit stops forks),
// and runc's stats/oom events (--stats once; a stream that ends when the container stops; an oom
// event when the kernel's OOM killer fires in the container).
// Runs on cgroup v1/hybrid here and on cgroup v2 in ../shared/vm/run-in-v2-vm; BERTH_RUNTIME=/usr/sbin/runc
// checks the tests themselves (deviations of runc are marked todo).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeJson, parseDuration, toRuncStats } from '../../src/runtime/events.ts';
import { parseMemorySize, planUpdate, resourcesFromFlags } from '../../src/runtime/update.ts';
import {
  type Bundle, RUNTIME, RUNTIME_NAME, type Spec, cgroupDirsOf, deviation, explain, sleep, waitFor, withBundle,
} from '../helpers/bundle.ts';

const V2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
const MiB = 1024 * 1024;
const live = process.getuid?.() === 0 && existsSync('/sys/fs/cgroup');
const isBerth = RUNTIME_NAME.startsWith('berth');

/** cpu.shares → cpu.weight, as runc (and berth) convert it on cgroup v2. */
const sharesToWeight = (s: number): number => 1 + Math.floor(((s - 2) * 9999) / 262142);

/** The host file of a container cgroup: the first of its cgroup dirs (one per hierarchy) holding it. */
function hostFile(pid: number, file: string): string | undefined {
  const dir = cgroupDirsOf(pid).find((d) => existsSync(join(d, file)));
  return dir && join(dir, file);
}
function readHost(pid: number, file: string): string {
  const p = hostFile(pid, file);
  assert.ok(p, `no cgroup dir of pid ${pid} has ${file} (dirs: ${cgroupDirsOf(pid).join(', ')})`);
  return readFileSync(p, 'utf8').trim();
}

/** What the container reads at /sys/fs/cgroup (a cgroup mount in its cgroup namespace). */
const INSIDE = V2
  ? { memory: '/sys/fs/cgroup/memory.max', pids: '/sys/fs/cgroup/pids.max', cpu: '/sys/fs/cgroup/cpu.max' }
  : { memory: '/sys/fs/cgroup/memory/memory.limit_in_bytes', pids: '/sys/fs/cgroup/pids/pids.max', cpu: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us' };

/** Expected host/inside values for a memory limit, pids limit and cpu quota/period. */
function expected(mem: number, pids: number, quota: number, period: number): { memory: string; pids: string; cpu: string } {
  return { memory: String(mem), pids: String(pids), cpu: V2 ? `${quota} ${period}` : String(quota) };
}
function hostValues(pid: number): { memory: string; pids: string; cpu: string } {
  return V2
    ? { memory: readHost(pid, 'memory.max'), pids: readHost(pid, 'pids.max'), cpu: readHost(pid, 'cpu.max') }
    : { memory: readHost(pid, 'memory.limit_in_bytes'), pids: readHost(pid, 'pids.max'), cpu: readHost(pid, 'cpu.cfs_quota_us') };
}

/** A shared dir bound at /mnt, read-write, for the container to report to and to be told what to do. */
function withShared(b: Bundle, spec: Spec): string {
  const dir = b.scratch('shared');
  spec.mounts.push({ destination: '/mnt', type: 'bind', source: dir, options: ['rbind', 'rw'] });
  return dir;
}

/** sh function `w NAME`: waits until /mnt/NAME exists. */
const WAIT = 'w() { while [ ! -e /mnt/$1 ]; do sleep 0.05; done; }';

async function startContainer(b: Bundle, id: string): Promise<number> {
  return b.createAndStart(id);
}

async function update(b: Bundle, id: string, args: string[], input?: string): Promise<void> {
  const r = await b.run(['update', ...args, id], input !== undefined ? { input } : {});
  assert.equal(r.code, 0, `update ${args.join(' ')}: ${explain(r)}`);
}

// ---- a runtime process we read from while it runs (events) -----------------------------------------

interface Streaming {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
  running: () => boolean;
}
const streams: ChildProcess[] = [];
after(() => {
  for (const c of streams) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function stream(b: Bundle, args: string[]): Streaming {
  const child = spawn(RUNTIME, ['--root', b.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: b.dir, detached: true });
  streams.push(child);
  const lines: string[] = [];
  let buf = '';
  let err = '';
  let done = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      if (buf.slice(0, i).trim()) lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { done = true; resolve(code); }));
  return { child, lines, stderr: () => err, exited, running: () => !done };
}

function parseEvents(lines: string[]): { type: string; id: string; data?: Record<string, any> }[] {
  return lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`not a JSON event: ${l}`);
    }
  });
}

// ---- pure: parsing, merging, the stats shape -------------------------------------------------------

describe('update/events internals', () => {
  test('memory sizes as runc reads them', () => {
    assert.equal(parseMemorySize('-1', '--memory'), -1);
    assert.equal(parseMemorySize('512', '--memory'), 512);
    assert.equal(parseMemorySize('64k', '--memory'), 64 * 1024);
    assert.equal(parseMemorySize('100M', '--memory'), 100 * MiB);
    assert.equal(parseMemorySize('1.5g', '--memory'), 1.5 * 1024 * MiB);
    assert.equal(parseMemorySize('2GiB', '--memory'), 2 * 1024 * MiB);
    assert.equal(parseMemorySize('10 MB', '--memory'), 10 * MiB);
    for (const bad of ['abc', '', '-2', '1x', '1.2.3m']) assert.throws(() => parseMemorySize(bad, '--memory'), /--memory/);
  });

  test('durations as Go reads them', () => {
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1m30s'), 90000);
    assert.equal(parseDuration('1.5h'), 5400000);
    assert.equal(parseDuration('0'), 0);
    for (const bad of ['5', 's', '5x', '']) assert.throws(() => parseDuration(bad), /duration/);
  });

  test('flags to LinuxResources; refused flags', () => {
    assert.deepEqual(resourcesFromFlags({ memory: '1g', memorySwap: '-1', cpuQuota: '-1', cpuPeriod: '100000', cpuShare: '512', cpusetCpus: '0', pidsLimit: '20', blkioWeight: '300' }), {
      blockIO: { weight: 300 }, pids: { limit: 20 }, memory: { limit: 1024 * MiB, swap: -1 }, cpu: { cpus: '0', quota: -1, period: 100000, shares: 512 },
    });
    assert.throws(() => resourcesFromFlags({ kernelMemory: '1m' }), /kernel memory/);
    assert.throws(() => resourcesFromFlags({ kernelMemoryTcp: '1m' }), /kernel memory/);
    assert.throws(() => resourcesFromFlags({ l3CacheSchema: 'L3:0=f' }), /RDT/);
    assert.throws(() => resourcesFromFlags({ cpuShare: '-5' }), /--cpu-share/);
    assert.deepEqual(resourcesFromFlags({ resources: '-', memory: '1m' }, () => '{"pids":{"limit":3}}'), { pids: { limit: 3 } });
    assert.throws(() => resourcesFromFlags({ resources: '-' }, () => '{"cpu":{"quota":"1"}}'), /cpu\.quota must be an integer/);
  });

  test('merging into the stored resources (runc) and what is written', () => {
    const stored = { memory: { limit: 100 * MiB, swap: 100 * MiB, reservation: 10 * MiB }, cpu: { quota: 50000, period: 100000, shares: 512 }, pids: { limit: 10 } };
    let p = planUpdate(stored, { memory: { limit: 50 * MiB } });
    assert.deepEqual(p.apply, { memory: { limit: 50 * MiB, swap: 100 * MiB } });
    assert.deepEqual(p.merged.memory, { limit: 50 * MiB, swap: 100 * MiB, reservation: 10 * MiB });
    assert.deepEqual(p.merged.cpu, stored.cpu);
    p = planUpdate(stored, { memory: { limit: -1 } }); // unlimited memory drops the stored swap limit
    assert.deepEqual(p.apply, { memory: { limit: -1, swap: 0 } });
    assert.deepEqual(p.merged.memory, { limit: -1, reservation: 10 * MiB });
    p = planUpdate(stored, { cpu: { quota: 20000 } });
    assert.deepEqual(p.apply, { cpu: { quota: 20000, period: 100000 } });
    p = planUpdate(stored, { cpu: { cpus: '0-1', shares: 256 } });
    assert.deepEqual(p.apply, { cpu: { cpus: '0-1', shares: 256 } });
    p = planUpdate({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }, { major: 8, minor: 16, rate: 2 }] } },
      { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 16, rate: 5 }] } });
    assert.deepEqual(p.merged.blockIO!.throttleReadBpsDevice, [{ major: 8, minor: 0, rate: 1 }, { major: 8, minor: 16, rate: 5 }]);
    assert.deepEqual(p.apply, { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 16, rate: 5 }] } });
    assert.deepEqual(planUpdate(stored, {}).apply, {});
    assert.deepEqual(stored.memory.limit, 100 * MiB, 'the stored object is not changed');
  });

  test('stats JSON: runc\'s field names, omitempty, exact 64-bit integers', () => {
    const d = toRuncStats({
      cpu: { usage: { total: 5, user: 0, kernel: 0, percpu: [5, 0] }, throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 } },
      memory: { usage: { usage: 100, max: 200, limit: 9223372036854771712, failcnt: 0 }, cache: 0, raw: { rss: 1 } },
      pids: { current: 2, limit: 0 },
      blkio: { ioServiceBytesRecursive: [{ major: 8, minor: 0, op: 'Read', value: 4096 }], ioServicedRecursive: [] },
    });
    assert.deepEqual(d.cpu, { usage: { total: 5, percpu: [5, 0], kernel: 0, user: 0 }, throttling: {} });
    assert.deepEqual(d.pids, { current: 2 });
    assert.deepEqual(d.blkio, { ioServiceBytesRecursive: [{ major: 8, op: 'Read', value: 4096 }] }); // minor 0: omitempty
    assert.deepEqual((d.memory as Record<string, unknown>).swap, { limit: 0, failcnt: 0 });
    assert.match(encodeJson(d), /"limit":9223372036854771712,/);
    assert.equal(encodeJson({ a: [1, 'x', null, true], b: undefined, c: 1.5 }), '{"a":[1,"x",null,true],"c":1.5}');
  });
});

// ---- update ------------------------------------------------------------------------------------------

describe('update', { skip: live ? false : 'needs root and /sys/fs/cgroup' }, () => {
  test('memory, pids and cpu of a running container: host files, the view inside, and the pids limit enforced', async () => {
    await withBundle({}, async (b) => {
      let shared = '';
      b.writeConfig((s) => {
        shared = withShared(b, s);
        const files = `${INSIDE.memory} ${INSIDE.pids} ${INSIDE.cpu}`;
        s.process.args = ['sh', '-c', [
          WAIT,
          `w go1; cat ${files} > /mnt/inside1 2>&1; echo > /mnt/done1`,
          // every fork past the pids limit fails; the subshell holds the sleeps' error messages
          'w fork; ( i=0; while [ $i -lt 40 ]; do i=$((i+1)); sleep 60 & done ) 2>/mnt/forkerr; echo > /mnt/forked',
          'exec sleep 600',
        ].join('\n')];
        s.linux.resources = { ...s.linux.resources, memory: { limit: 256 * MiB }, pids: { limit: 64 }, cpu: { shares: 1024, quota: 100000, period: 100000 } };
      });
      const id = b.newId('upd');
      const pid = await startContainer(b, id);
      assert.deepEqual(hostValues(pid), expected(256 * MiB, 64, 100000, 100000));

      await update(b, id, ['--memory', '100m', '--memory-swap', '100M', '--pids-limit', '10', '--cpu-quota', '50000', '--cpu-period', '100000', '--cpu-share', '512']);
      const want = expected(100 * MiB, 10, 50000, 100000);
      assert.deepEqual(hostValues(pid), want);
      if (V2) {
        assert.equal(readHost(pid, 'cpu.weight'), String(sharesToWeight(512)));
        const swap = hostFile(pid, 'memory.swap.max');
        if (swap) assert.equal(readFileSync(swap, 'utf8').trim(), '0'); // memory+swap == memory: no swap
      } else {
        assert.equal(readHost(pid, 'cpu.shares'), '512');
        assert.equal(readHost(pid, 'cpu.cfs_period_us'), '100000');
        const memsw = hostFile(pid, 'memory.memsw.limit_in_bytes');
        if (memsw) assert.equal(readFileSync(memsw, 'utf8').trim(), String(100 * MiB));
      }

      // The container sees the new limits in its own cgroup.
      writeFileSync(join(shared, 'go1'), '');
      await waitFor('the container to report its cgroup files', () => existsSync(join(shared, 'done1')));
      const inside = readFileSync(join(shared, 'inside1'), 'utf8').trim().split('\n');
      assert.deepEqual(inside, [want.memory, want.pids, want.cpu], `inside the container: ${inside.join(' | ')}`);

      // The pids limit is enforced: forks beyond 10 processes fail.
      writeFileSync(join(shared, 'fork'), '');
      await waitFor('the fork loop to finish', () => existsSync(join(shared, 'forked')), 15000);
      const current = Number(readHost(pid, 'pids.current'));
      assert.ok(current <= 10 && current >= 5, `pids.current ${current} with pids.max 10`);
      const events = readHost(pid, 'pids.events');
      assert.match(events, /^max [1-9]\d*$/m, `pids.events: ${events}`);
      assert.match(readFileSync(join(shared, 'forkerr'), 'utf8'), /fork/i);
    });
  });

  test('a later update merges into the stored resources',
    { todo: V2 ? deviation(['runc'], 'runc 1.1 resets the memory fields an update leaves out (runc 1.2 merges them); on v1 the kernel keeps memsw anyway') : undefined },
    async () => {
      await withBundle({}, async (b) => {
        b.writeConfig((s) => {
          s.process.args = ['sleep', '600'];
          s.linux.resources = { ...s.linux.resources, memory: { limit: 256 * MiB }, pids: { limit: 64 }, cpu: { quota: 100000, period: 100000 } };
        });
        const id = b.newId('updm');
        const pid = await startContainer(b, id);
        await update(b, id, ['--memory', '100M', '--memory-swap', '100M', '--pids-limit', '10', '--cpu-quota', '50000']);
        assert.deepEqual(hostValues(pid), expected(100 * MiB, 10, 50000, 100000));
        // Only the limit: the stored memory+swap (100M) still applies, as runc merges it in.
        await update(b, id, ['--memory', '50M']);
        assert.equal(hostValues(pid).memory, String(50 * MiB));
        if (V2) {
          const swap = hostFile(pid, 'memory.swap.max');
          if (swap) assert.equal(readFileSync(swap, 'utf8').trim(), String(50 * MiB)); // 100M memory+swap - 50M
        } else {
          const memsw = hostFile(pid, 'memory.memsw.limit_in_bytes');
          if (memsw) assert.equal(readFileSync(memsw, 'utf8').trim(), String(100 * MiB));
        }
        // ... so a limit above it is refused, and nothing changes.
        const over = await b.run(['update', '--memory', '200M', id]);
        assert.notEqual(over.code, 0, `a limit above the stored memory+swap: ${explain(over)}`);
        assert.equal(hostValues(pid).memory, String(50 * MiB));
        // Only the quota: the period stays.
        await update(b, id, ['--cpu-quota', '30000']);
        assert.equal(hostValues(pid).cpu, expected(0, 0, 30000, 100000).cpu);
        if (!V2) assert.equal(readHost(pid, 'cpu.cfs_period_us'), '100000');
        assert.equal(hostValues(pid).pids, '10');
      });
    });

  test('-r FILE and -r - (stdin): a LinuxResources JSON', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => {
        s.process.args = ['sleep', '600'];
        s.linux.resources = { ...s.linux.resources, memory: { limit: 128 * MiB }, pids: { limit: 64 }, cpu: { quota: 100000, period: 100000 } };
      });
      const id = b.newId('updr');
      const pid = await startContainer(b, id);

      const file = join(b.base, 'resources.json');
      writeFileSync(file, JSON.stringify({ memory: { limit: 64 * MiB, swap: 64 * MiB }, pids: { limit: 20 } }));
      await update(b, id, ['-r', file]);
      assert.deepEqual(hostValues(pid), expected(64 * MiB, 20, 100000, 100000));

      await update(b, id, ['-r', '-'], JSON.stringify({ cpu: { quota: 20000, period: 50000 } }));
      assert.deepEqual(hostValues(pid), expected(64 * MiB, 20, 20000, 50000));
      if (!V2) assert.equal(readHost(pid, 'cpu.cfs_period_us'), '50000');

      // The other flags are ignored when -r is given (runc).
      await update(b, id, ['--resources', '-', '--pids-limit', '7'], JSON.stringify({ pids: { limit: 30 } }));
      assert.equal(hostValues(pid).pids, '30');

      const bad = await b.run(['update', '-r', '-', id], { input: '{"memory": ' });
      assert.notEqual(bad.code, 0, `invalid JSON: ${explain(bad)}`);
      const missing = await b.run(['update', '-r', join(b.base, 'no-such.json'), id]);
      assert.notEqual(missing.code, 0, `a missing file: ${explain(missing)}`);
      assert.deepEqual(hostValues(pid), expected(64 * MiB, 30, 20000, 50000));

      if (isBerth) {
        // Its own device rules repeated (what containerd sends) are fine; new ones are applied (the
        // devices test checks them from inside); invalid ones are refused before anything changes.
        const same = await b.run(['update', '-r', '-', id], { input: JSON.stringify({ devices: b.spec.linux.resources!.devices, pids: { limit: 31 } }) });
        assert.equal(same.code, 0, explain(same));
        assert.equal(hostValues(pid).pids, '31');
        const other = await b.run(['update', '-r', '-', id], { input: JSON.stringify({ devices: [{ allow: true, type: 'x', access: 'rwm' }], pids: { limit: 32 } }) });
        assert.notEqual(other.code, 0, explain(other));
        assert.match(other.stderr, /devices\[0\]\.type/);
        assert.equal(hostValues(pid).pids, '31', 'a refused update changes nothing');
        const types = await b.run(['update', '-r', '-', id], { input: JSON.stringify({ memory: { limit: '64m' } }) });
        assert.notEqual(types.code, 0, explain(types));
        assert.match(types.stderr, /memory\.limit/);
      }
    });
  });

  test('refused: a stopped container, bad values, kernel memory, Intel RDT', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => { s.process.args = ['sleep', '600']; });
      const id = b.newId('upde');
      await startContainer(b, id);
      for (const args of [['--memory', 'abc'], ['--cpu-quota', '1.5'], ['--pids-limit', 'x'], ['--l3-cache-schema', 'L3:0=f'], ['--mem-bw-schema', 'MB:0=50']]) {
        const r = await b.run(['update', ...args, id]);
        assert.notEqual(r.code, 0, `update ${args.join(' ')}: ${explain(r)}`);
      }
      if (isBerth) {
        // runc 1.1 warns and ignores these.
        for (const flag of ['--kernel-memory', '--kernel-memory-tcp']) {
          const r = await b.run(['update', flag, '10M', id]);
          assert.notEqual(r.code, 0, explain(r));
          assert.match(r.stderr, /kernel memory/i);
        }
      }
      const k = await b.run(['kill', id, 'KILL']);
      assert.equal(k.code, 0, explain(k));
      await waitFor('the container to stop', async () => (await b.state(id)).status === 'stopped');
      const r = await b.run(['update', '--memory', '100M', id]);
      assert.notEqual(r.code, 0, explain(r));
      assert.match(r.stderr, /not running/);
      const gone = await b.run(['update', '--memory', '100M', 'no-such-container-x']);
      assert.notEqual(gone.code, 0, explain(gone));
    });
  });
});

// ---- events ------------------------------------------------------------------------------------------

describe('events', { skip: live ? false : 'needs root and /sys/fs/cgroup' }, () => {
  test('--stats: one event in runc\'s Stats shape', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => {
        s.process.args = ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; exec sleep 600'];
        s.linux.resources = { ...s.linux.resources, memory: { limit: 64 * MiB }, pids: { limit: 30 } };
      });
      const id = b.newId('evs');
      await startContainer(b, id);
      const r = await b.run(['events', '--stats', id]);
      assert.equal(r.code, 0, explain(r));
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 1, r.stdout);
      const [e] = parseEvents(lines);
      assert.equal(e.type, 'stats');
      assert.equal(e.id, id);
      const d = e.data!;
      assert.ok(d.pids.current >= 1, `pids.current ${d.pids.current}`);
      assert.equal(d.pids.limit, 30);
      assert.ok(d.memory.usage.usage > 0, `memory.usage.usage ${d.memory.usage.usage}`);
      assert.equal(d.memory.usage.limit, 64 * MiB);
      assert.equal(typeof d.memory.usage.failcnt, 'number');
      assert.equal(typeof d.memory.raw, 'object');
      assert.ok(d.cpu.usage.total > 0, `cpu.usage.total ${d.cpu.usage.total}`);
      assert.equal(typeof d.cpu.usage.kernel, 'number');
      assert.equal(typeof d.cpu.usage.user, 'number');
      assert.equal(typeof d.cpu.throttling, 'object');
      assert.equal(typeof d.blkio, 'object');
      if (!V2) assert.ok(Array.isArray(d.cpu.usage.percpu) && d.cpu.usage.percpu.length >= 1);
      // The limit `update` sets shows in the next stats.
      await update(b, id, ['--memory', '32M']);
      const again = parseEvents((await b.run(['events', '--stats', id])).stdout.trim().split('\n'))[0];
      assert.equal(again.data!.memory.usage.limit, 32 * MiB);

      const bad = await b.run(['events', '--interval', '0s', id]);
      assert.notEqual(bad.code, 0, explain(bad));
      await b.run(['kill', id, 'KILL']);
      await waitFor('the container to stop', async () => (await b.state(id)).status === 'stopped');
      const stopped = await b.run(['events', '--stats', id]);
      assert.notEqual(stopped.code, 0, explain(stopped));
      assert.match(stopped.stderr, /not running/);
    });
  });

  test('the stream: stats every interval, and it ends (exit 0) when the container stops',
    { todo: V2 ? undefined : deviation(['runc'], 'on cgroup v1 runc\'s stream ends only when the container is deleted (its cgroup removed), not when it stops') },
    async () => {
      await withBundle({}, async (b) => {
        let shared = '';
        b.writeConfig((s) => {
          shared = withShared(b, s);
          s.process.args = ['sh', '-c', `${WAIT}\nw exit`];
        });
        const id = b.newId('evt');
        await startContainer(b, id);
        const ev = stream(b, ['events', '--interval', '200ms', id]);
        await waitFor('three stats events', () => ev.lines.length >= 3 || !ev.running(), 30000);
        assert.ok(ev.running(), `events exited early: ${ev.stderr()}`);
        for (const e of parseEvents(ev.lines)) {
          assert.equal(e.type, 'stats');
          assert.equal(e.id, id);
          assert.ok(e.data!.pids.current >= 1);
        }
        writeFileSync(join(shared, 'exit'), '');
        const code = await Promise.race([ev.exited, sleep(5000).then(() => 'still running' as const)]);
        assert.equal(code, 0, `events after the container stopped: ${code}; stderr: ${ev.stderr()}`);
      });
    });

  test('an oom event when a process exceeds the memory limit', async () => {
    await withBundle({}, async (b) => {
      let shared = '';
      b.writeConfig((s) => {
        shared = withShared(b, s);
        s.process.args = ['sh', '-c', `${WAIT}\nw go; dd if=/dev/zero of=/dev/null bs=32M count=1; echo $? > /mnt/dd\nw exit`];
        // Created with room to start; lowered by update before the allocation.
        s.linux.resources = { ...s.linux.resources, memory: { limit: 64 * MiB, swap: 64 * MiB } };
      });
      const id = b.newId('oom');
      const pid = await startContainer(b, id);
      await update(b, id, ['--memory', '8M', '--memory-swap', '8M']);
      assert.equal(hostValues(pid).memory, String(8 * MiB));
      const ev = stream(b, ['events', '--interval', '300ms', id]);
      // Only OOM kills after `events` started count: wait until it runs (node starts slowly in the VM).
      await waitFor('the first stats event', () => ev.lines.length > 0 || !ev.running(), 30000);
      assert.ok(ev.running(), `events exited early: ${ev.stderr()}`);
      writeFileSync(join(shared, 'go'), '');
      await waitFor('dd to end', () => existsSync(join(shared, 'dd')) && readFileSync(join(shared, 'dd'), 'utf8').trim() !== '', 15000);
      const status = readFileSync(join(shared, 'dd'), 'utf8').trim();
      assert.notEqual(status, '0', 'dd allocated 32 MiB under an 8 MiB limit without being killed');
      const kills = V2 ? /oom_kill (\d+)/.exec(readHost(pid, 'memory.events')) : /oom_kill (\d+)/.exec(readHost(pid, 'memory.oom_control'));
      assert.ok(kills && Number(kills[1]) >= 1, 'the kernel counted no OOM kill');
      await waitFor('an oom event', () => ev.lines.some((l) => JSON.parse(l).type === 'oom'), 5000);
      const oom = parseEvents(ev.lines).find((e) => e.type === 'oom')!;
      assert.deepEqual(oom, { type: 'oom', id });
      writeFileSync(join(shared, 'exit'), '');
      if (isBerth || V2) assert.equal(await Promise.race([ev.exited, sleep(5000).then(() => 'still running' as const)]), 0);
    });
  });
});
