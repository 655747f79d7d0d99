// Container stats and top for the Engine API (src/engine/containers/stats.ts, top.ts): a busybox
// container run by the runtime with memory, cpu and pids limits and a veth in its network
// namespace; its cgroup (this host's version: v1 here, v2 in the VM) read through the runtime's
// CgroupManager and turned into docker's stats JSON; `ps` rows cut to its processes. The v2
// field mapping is also checked on a CgroupStats sample, so it is tested on a v1 host too.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadCgroup, type CgroupStats } from '../../src/runtime/cgroups/index.ts';
import {
  dockerStats, emptyDockerStats, parseNetDev, statsFromCgroup, systemCpuUsage, ZERO_TIME, type DockerStats,
} from '../../src/engine/containers/stats.ts';
import { containerTop, ContainerTopError, parsePsOutput, validatePsArgs } from '../../src/engine/containers/top.ts';
import { BUSYBOX, sleep, waitFor, withBundle, type Bundle } from '../helpers/bundle.ts';

const MB = 1024 * 1024;

function cgroupOf(b: Bundle, id: string) {
  const state = JSON.parse(readFileSync(join(b.root, id, 'state.json'), 'utf8')) as { cgroup: Parameters<typeof loadCgroup>[0] };
  return loadCgroup(state.cgroup);
}

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

describe('docker stats from a real cgroup', () => {
  test('a running container: memory with its limit, cpu, pids, networks; a second sample carries the first as precpu', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => {
        // 12 MiB written to /dev/shm is charged to the container's memory (shmem/cache).
        s.process.args = ['sh', '-c', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=12 2>/dev/null; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; sleep 3 & sleep 1000'];
        s.linux.resources = { ...(s.linux.resources ?? {}), memory: { limit: 96 * MB }, pids: { limit: 50 }, cpu: { quota: 50000, period: 100000 } };
      });
      const id = b.newId('stats');
      const pid = await b.createAndStart(id);
      const host = `bst${randomBytes(3).toString('hex')}`;
      try {
        // A veth whose container end is eth0, and a few pings to it: traffic only to the netns this test made.
        // TEST-NET-3, which no host should use; the /30 route on the veth is the most specific anyway.
        assert.ok(!ip('-4', 'addr').includes('203.0.113.'), 'the host has an address in 203.0.113.0/24');
        ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid));
        ip('addr', 'add', '203.0.113.1/30', 'dev', host);
        ip('link', 'set', host, 'up');
        const ns = (...a: string[]) => spawnSync('nsenter', ['-t', String(pid), '-n', 'ip', ...a], { encoding: 'utf8' });
        assert.equal(ns('addr', 'add', '203.0.113.2/30', 'dev', 'eth0').status, 0);
        assert.equal(ns('link', 'set', 'eth0', 'up').status, 0);
        const ping = spawnSync(BUSYBOX, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '203.0.113.2'], { encoding: 'utf8' });
        assert.equal(ping.status, 0, ping.stdout + ping.stderr);

        const cg = cgroupOf(b, id);
        await waitFor('the container to fill /dev/shm', () => (cg.stats().memory?.usage.usage ?? 0) > 12 * MB, 20000, 100);
        const pids = cg.pids();
        const name = '/stats-test';
        const first = dockerStats(cg, { id, name, pids, netnsPid: pid, numCpus: cpus().length });
        await sleep(300);
        const second = dockerStats(cg, { id, name, pids, netnsPid: pid, numCpus: cpus().length, previous: first });

        for (const s of [first, second]) {
          assert.equal(s.id, id);
          assert.equal(s.name, name);
          assert.ok(!Number.isNaN(Date.parse(s.read)));
          assert.equal(s.num_procs, 0);
          assert.deepEqual(s.storage_stats, {});
          assert.equal(s.memory_stats.limit, 96 * MB, 'the limit, not the host memory');
          assert.ok(s.memory_stats.usage! > 12 * MB && s.memory_stats.usage! < 96 * MB, String(s.memory_stats.usage));
          assert.equal(s.pids_stats.limit, 50);
          assert.equal(s.pids_stats.current, pids.length);
          assert.ok(s.cpu_stats.cpu_usage.total_usage > 0);
          assert.ok(s.cpu_stats.system_cpu_usage! > s.cpu_stats.cpu_usage.total_usage);
          assert.equal(s.cpu_stats.online_cpus, readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).length);
          assert.ok(s.cpu_stats.throttling_data.periods >= 0);
          const eth0 = s.networks?.eth0;
          assert.ok(eth0, JSON.stringify(s.networks));
          assert.ok(eth0.rx_packets >= 3 && eth0.tx_packets >= 3, JSON.stringify(eth0));
          assert.ok(eth0.rx_bytes >= 3 * 84 && eth0.tx_bytes >= 3 * 84, JSON.stringify(eth0));
          assert.equal(s.networks!.lo, undefined);
          assert.ok(s.blkio_stats && 'io_service_bytes_recursive' in s.blkio_stats);
          if (cg.version === 1) {
            assert.ok(s.cpu_stats.cpu_usage.percpu_usage!.length >= 1);
            assert.ok(s.memory_stats.max_usage! >= s.memory_stats.usage!);
            assert.ok(s.memory_stats.stats!.total_cache! + s.memory_stats.stats!.total_rss! > 12 * MB, JSON.stringify(s.memory_stats.stats));
            assert.equal(s.memory_stats.stats!.hierarchical_memory_limit, 96 * MB);
          } else {
            assert.equal(s.cpu_stats.cpu_usage.percpu_usage, undefined);
            assert.equal(s.memory_stats.max_usage, undefined);
            assert.ok(s.memory_stats.stats!.shmem! >= 12 * MB, JSON.stringify(s.memory_stats.stats));
            assert.ok('inactive_file' in s.memory_stats.stats! && 'anon' in s.memory_stats.stats!);
          }
        }
        assert.equal(first.preread, ZERO_TIME);
        assert.deepEqual(first.precpu_stats.cpu_usage, { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 });
        assert.equal(second.preread, first.read);
        assert.deepEqual(second.precpu_stats, first.cpu_stats);
        assert.ok(second.cpu_stats.system_cpu_usage! > first.cpu_stats.system_cpu_usage!, 'the host\'s CPU time moves on');
        assert.ok(second.cpu_stats.cpu_usage.total_usage >= first.cpu_stats.cpu_usage.total_usage);
        assert.ok(second.read > first.read);
      } finally {
        spawnSync('ip', ['link', 'del', host], { stdio: 'ignore' });
        await b.run(['kill', id, 'KILL']);
        await waitFor('the container to stop', async () => (await b.state(id)).status === 'stopped', 10000);
        await b.delete(id);
      }
    });
  });

  test('without a memory limit, limit is the host\'s memory', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
      const id = b.newId('stats');
      await b.createAndStart(id);
      try {
        const cg = cgroupOf(b, id);
        const s = dockerStats(cg, { id, name: '/x', pids: cg.pids(), numCpus: 1 });
        assert.equal(s.memory_stats.limit, totalmem());
        assert.equal(s.networks, undefined, 'no netnsPid: no networks');
      } finally {
        await b.delete(id, true);
      }
    });
  });
});

describe('docker stats mapping', () => {
  const ctx = { id: 'abc', name: '/n', read: '2026-01-01T00:00:00.000Z', system: { usage: 5e12, cpus: 4 }, numCpus: 2, hostMemory: 8e9 };

  test('cgroup v2: memory.stat\'s keys, no max_usage or per-CPU usage, oom events as failcnt, read/write io entries, unlimited → host memory', () => {
    const sample: CgroupStats = {
      cpu: { usage: { total: 3e9, user: 2e9, kernel: 1e9 }, throttling: { periods: 10, throttledPeriods: 2, throttledTime: 5e6 } },
      memory: { usage: { usage: 50 * MB, max: 0, limit: 9223372036854771712, failcnt: 7 }, cache: 10 * MB, raw: { anon: 40 * MB, file: 10 * MB, inactive_file: 4 * MB, shmem: MB, workingset_refault_anon: 3 } },
      pids: { current: 3, limit: 0 },
      blkio: {
        ioServiceBytesRecursive: [{ major: 8, minor: 0, op: 'Read', value: 4096 }, { major: 8, minor: 0, op: 'Write', value: 8192 }],
        ioServicedRecursive: [{ major: 8, minor: 0, op: 'Read', value: 1 }],
      },
    };
    const s = statsFromCgroup(2, sample, { ...ctx, oomEvents: 1 });
    assert.deepEqual(s.cpu_stats, {
      cpu_usage: { total_usage: 3e9, usage_in_kernelmode: 1e9, usage_in_usermode: 2e9 },
      throttling_data: { periods: 10, throttled_periods: 2, throttled_time: 5e6 },
      system_cpu_usage: 5e12,
      online_cpus: 4,
    });
    assert.equal(s.memory_stats.usage, 50 * MB);
    assert.equal(s.memory_stats.max_usage, undefined);
    assert.equal(s.memory_stats.failcnt, 1, 'memory.events oom, not max');
    assert.equal(s.memory_stats.limit, 8e9);
    assert.equal(s.memory_stats.stats!.anon, 40 * MB);
    assert.equal(s.memory_stats.stats!.inactive_file, 4 * MB);
    assert.equal(s.memory_stats.stats!.pgfault, 0, 'a key the kernel lacks is 0');
    assert.equal(Object.keys(s.memory_stats.stats!).length, 31);
    assert.ok(!('total_cache' in s.memory_stats.stats!) && !('workingset_refault_anon' in s.memory_stats.stats!));
    assert.deepEqual(s.blkio_stats.io_service_bytes_recursive, [
      { major: 8, minor: 0, op: 'read', value: 4096 }, { major: 8, minor: 0, op: 'write', value: 8192 },
    ]);
    assert.equal(s.blkio_stats.io_serviced_recursive, null);
    assert.deepEqual(s.pids_stats, { current: 3 });
    assert.equal(s.preread, ZERO_TIME);
  });

  test('cgroup v1: per-CPU usage, max_usage, failcnt, v1 keys; a limit above the host\'s memory is capped; online CPUs from /proc/stat, else numCpus', () => {
    const sample: CgroupStats = {
      cpu: { usage: { total: 3e9, user: 2e9, kernel: 1e9, percpu: [1e9, 2e9] } },
      memory: { usage: { usage: 50 * MB, max: 60 * MB, limit: 64 * MB, failcnt: 7 }, raw: { cache: 5 * MB, rss: 45 * MB, total_inactive_file: MB } },
      pids: { current: 2, limit: 100 },
    };
    const s = statsFromCgroup(1, sample, { ...ctx, system: { usage: 5e12, cpus: 0 } });
    assert.deepEqual(s.cpu_stats.cpu_usage.percpu_usage, [1e9, 2e9]);
    assert.equal(s.cpu_stats.online_cpus, 2);
    assert.equal(s.memory_stats.max_usage, 60 * MB);
    assert.equal(s.memory_stats.failcnt, 7);
    assert.equal(s.memory_stats.limit, 64 * MB);
    assert.equal(s.memory_stats.stats!.total_inactive_file, MB);
    assert.equal(Object.keys(s.memory_stats.stats!).length, 32);
    assert.deepEqual(s.pids_stats, { current: 2, limit: 100 });
    assert.equal(s.blkio_stats.io_service_bytes_recursive, null);
    const big = statsFromCgroup(1, { memory: { usage: { usage: 1, max: 1, limit: 1e12, failcnt: 0 } } }, ctx);
    assert.equal(big.memory_stats.limit, 8e9);
  });

  test('/proc/stat as docker reads it: the first seven fields in ns, cpuN lines counted', () => {
    const text = 'cpu  100 0 50 1000 10 0 5 7 0 0\ncpu0 50 0 25 500 5 0 2 3 0 0\ncpu1 50 0 25 500 5 0 3 4 0 0\nintr 1 2 3\ncpu9 1 1 1 1 1 1 1\n';
    assert.deepEqual(systemCpuUsage(text), { usage: 1165 * 1e7, cpus: 2 });
  });

  test('/proc/<pid>/net/dev: every interface but lo', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0',
      '  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0',
    ].join('\n');
    assert.deepEqual(parseNetDev(text), {
      eth0: { rx_bytes: 2000, rx_packets: 20, rx_errors: 1, rx_dropped: 2, tx_bytes: 3000, tx_packets: 30, tx_errors: 3, tx_dropped: 4 },
    });
  });

  test('a stopped container: zero times and empty sections', () => {
    const s: DockerStats = emptyDockerStats('abc', '/n');
    assert.equal(s.read, ZERO_TIME);
    assert.deepEqual(s.memory_stats, {});
    assert.equal(s.cpu_stats.cpu_usage.total_usage, 0);
  });
});

describe('top', () => {
  test('ps output cut to the given pids; the last column keeps its spaces; thread rows follow their process', () => {
    const out = [
      'UID          PID    PPID  C STIME TTY          TIME CMD',
      'root           1       0  0 10:00 ?        00:00:01 /sbin/init splash',
      'root         100       1  0 10:00 ?        00:00:00 sleep 1000 --with  two',
      'root         101       1  0 10:00 ?        00:00:00 other',
      '',
    ].join('\n');
    assert.deepEqual(parsePsOutput(out, [100]), {
      Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
      Processes: [['root', '100', '1', '0', '10:00', '?', '00:00:00', 'sleep 1000 --with two']],
    });
    const threads = 'PID LWP CMD\n100 - a\n- 100 a\n- 101 a\n200 - b\n- 200 b\n';
    assert.deepEqual(parsePsOutput(threads, [100]).Processes, [['100', '-', 'a'], ['-', '100', 'a'], ['-', '101', 'a']]);
    assert.throws(() => parsePsOutput('USER CMD\nroot x\n', [1]), (e: Error) => e instanceof ContainerTopError && e.message === "Couldn't find PID field in ps output");
    assert.throws(() => parsePsOutput('PID CMD\nabc x\n', [1]), /Unexpected pid 'abc'/);
  });

  test('docker refuses ps arguments that rename the PID column', () => {
    assert.throws(() => validatePsArgs('-o user= PID'), /not allowed/);
    assert.throws(() => validatePsArgs('-o pid,comm -o foo=PID'), (e: Error) => e.message === 'specifying "foo=PID" is not allowed');
    assert.doesNotThrow(() => validatePsArgs('-o pid=PID'));
    assert.doesNotThrow(() => validatePsArgs('aux'));
  });

  test('a running container: its processes only, with -ef by default and custom args; bad args give ps\'s error', async () => {
    await withBundle({}, async (b) => {
      b.writeConfig((s) => { s.process.args = ['sh', '-c', 'sleep 1001 & sleep 1002; true']; });
      const id = b.newId('top');
      await b.createAndStart(id);
      try {
        const cg = cgroupOf(b, id);
        await waitFor('both sleeps', () => cg.pids().length === 3, 10000);
        const pids = cg.pids();
        const top = containerTop(pids);
        assert.deepEqual(top.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
        assert.deepEqual(top.Processes.map((p) => Number(p[1])).sort((x, y) => x - y), [...pids].sort((x, y) => x - y));
        const cmds = top.Processes.map((p) => p[7]).sort();
        assert.deepEqual(cmds, ['sh -c sleep 1001 & sleep 1002; true', 'sleep 1001', 'sleep 1002']);
        const custom = containerTop(pids, '-o pid,comm');
        assert.deepEqual(custom.Titles, ['PID', 'COMMAND']);
        assert.deepEqual(custom.Processes.map((p) => p[1]).sort(), ['sh', 'sleep', 'sleep']);
        assert.throws(() => containerTop(pids, '--no-such-option'), (e: Error) => e instanceof ContainerTopError && /^ps: /.test(e.message));
        assert.throws(() => containerTop(pids, '-o comm'), /Couldn't find PID field in ps output/);
      } finally {
        await b.delete(id, true);
      }
    });
  });
});
