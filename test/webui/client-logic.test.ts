// The UI's pure helpers: stats arithmetic (as the docker CLI computes it), the run form's
// docker-run syntax, and display formatting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ago, binarySize, formatPorts, humanDuration, humanSize } from '../../src/webui/lib/format.ts';
import { createBody, parseMemory, RunSpecError, splitCommand } from '../../src/webui/lib/run-spec.ts';
import { blockBytes, cpuPercent, memoryUsage, networkBytes, rate, Series, type StatsSample } from '../../src/webui/lib/stats.ts';

test('CPU %: container time over system time × online CPUs, from the sample or against the previous one', () => {
  const s: StatsSample = {
    cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 10_000_000_000 },
  };
  assert.equal(cpuPercent(s), 20);
  const prev: StatsSample = { cpu_stats: { cpu_usage: { total_usage: 2_500_000_000 }, system_cpu_usage: 15_000_000_000, online_cpus: 2 } };
  assert.equal(cpuPercent(s, prev), 20);
  // one-shot stats have an empty precpu: no figure rather than a wrong one.
  assert.equal(cpuPercent({ cpu_stats: s.cpu_stats, precpu_stats: {} }), 0);
  // v1 without online_cpus: the per-CPU list's length.
  assert.equal(cpuPercent({ cpu_stats: { cpu_usage: { total_usage: 2, percpu_usage: [1, 1, 0, 0] }, system_cpu_usage: 10 }, precpu_stats: { cpu_usage: { total_usage: 1 }, system_cpu_usage: 5 } }), 80);
});

test('memory: usage without inactive file cache (v1 total_inactive_file, v2 inactive_file)', () => {
  assert.equal(memoryUsage({ memory_stats: { usage: 100, stats: { total_inactive_file: 30 } } }), 70);
  assert.equal(memoryUsage({ memory_stats: { usage: 100, stats: { inactive_file: 40 } } }), 60);
  assert.equal(memoryUsage({ memory_stats: { usage: 100, stats: { inactive_file: 400 } } }), 100);
  assert.equal(memoryUsage({ memory_stats: {} }), 0);
});

test('network and block I/O totals; rates never negative', () => {
  assert.deepEqual(networkBytes({ networks: { eth0: { rx_bytes: 10, tx_bytes: 1 }, eth1: { rx_bytes: 5, tx_bytes: 2 } } }), { rx: 15, tx: 3 });
  assert.deepEqual(blockBytes({ blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 7 }, { op: 'write', value: 3 }, { op: 'Total', value: 10 }, { op: 'read', value: 1 }] } }), { read: 8, write: 3 });
  assert.deepEqual(blockBytes({ blkio_stats: { io_service_bytes_recursive: null } }), { read: 0, write: 0 });
  assert.equal(rate(3000, 1000, 2000), 1000);
  assert.equal(rate(10, 20, 1000), 0, 'a counter that went back (restart) gives 0, not a negative rate');
  assert.equal(rate(10, undefined, 1000), 0);
});

test('Series keeps the last N values in a fixed buffer', () => {
  const s = new Series(3);
  assert.equal(s.last(), undefined);
  for (const v of [1, 2, 3, 4, 5]) s.push(v);
  assert.equal(s.length, 3);
  assert.deepEqual([s.at(0), s.at(1), s.at(2)], [3, 4, 5]);
  assert.equal(s.max(), 5);
  assert.equal(s.last(), 5);
});

test('run form: command lines split as a shell would', () => {
  assert.deepEqual(splitCommand(`sh -c 'echo "a b"; exit 3'`), ['sh', '-c', 'echo "a b"; exit 3']);
  assert.deepEqual(splitCommand('echo "x\\"y" a\\ b \'\''), ['echo', 'x"y', 'a b', '']);
  assert.throws(() => splitCommand('echo "oops'), /unterminated double quote/);
});

test('run form: fields become the create body docker run would send', () => {
  const body = createBody({
    image: '127.0.0.1:5000/web:1', name: 'w', command: 'httpd -f -p 80', ports: '8080:80\n127.0.0.1:9090:90/udp, 443',
    env: 'A=1\nB=two words', volumes: 'data:/data\n/srv:/srv:ro', memory: '256m', cpus: '0.5', restart: 'unless-stopped', tty: true,
  });
  assert.deepEqual(body, {
    Image: '127.0.0.1:5000/web:1', Cmd: ['httpd', '-f', '-p', '80'], Env: ['A=1', 'B=two words'], Tty: true, OpenStdin: true,
    ExposedPorts: { '80/tcp': {}, '90/udp': {}, '443/tcp': {} },
    HostConfig: {
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '90/udp': [{ HostIp: '127.0.0.1', HostPort: '9090' }] },
      Binds: ['data:/data', '/srv:/srv:ro'], Memory: 256 * 1024 * 1024, NanoCpus: 500_000_000, RestartPolicy: { Name: 'unless-stopped' },
    },
  });
  assert.deepEqual(createBody({ image: 'busybox' }), { Image: 'busybox', HostConfig: {} });
  for (const [fields, message] of [
    [{ image: '' }, /an image is required/], [{ image: 'a b' }, /invalid image reference/],
    [{ image: 'x', ports: '80:abc' }, /invalid port mapping "80:abc"/], [{ image: 'x', ports: '70000' }, /out of range/],
    [{ image: 'x', volumes: 'relative' }, /invalid volume/], [{ image: 'x', memory: 'lots' }, /invalid memory size/],
    [{ image: 'x', memory: '1k' }, /at least 6MB/], [{ image: 'x', cpus: '-1' }, /invalid number of CPUs/], [{ image: 'x', env: '=v' }, /invalid environment/],
  ] as const) assert.throws(() => createBody(fields), (e: unknown) => e instanceof RunSpecError && message.test((e as Error).message));
  assert.equal(parseMemory('1g'), 1024 ** 3);
  assert.equal(parseMemory('1.5GiB'), 1.5 * 1024 ** 3);
});

test('formatting as docker shows it', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(1_234_567), '1.23MB');
  assert.equal(humanSize(999), '999B');
  assert.equal(binarySize(3 * 1024 * 1024), '3MiB');
  assert.equal(binarySize(1536 * 1024), '1.5MiB');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(60_000), 'About a minute');
  assert.equal(humanDuration(3 * 3600_000), '3 hours');
  assert.equal(humanSize(-1), '—');
  assert.equal(ago(1000, 1000_000 + 5000), '5 seconds ago');
  assert.equal(formatPorts([{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { PrivatePort: 443, Type: 'tcp' }]), '0.0.0.0:8080->80/tcp, 443/tcp');
});
