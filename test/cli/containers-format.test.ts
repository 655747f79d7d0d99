// docker's container formatting rules, checked against outputs of the docker CLI 28 (its golden
// files and what it printed against dockerd 20.10 in test/cli/containers-manage.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ContainerRow, containerStatusText, displayablePorts, goQuote, type ContainerSummary,
} from '../../src/cli/format/containers.ts';
import { renderContainers, cpuPercent, memoryUsage, naturalLess, parseNanoCpus, parseRestartPolicy, renderStats, statsEntry, streamFrame } from '../../src/cli/commands/containers-manage.ts';
import { rebaseName, splitCpArg, splitPathDirEntry } from '../../src/cli/commands/cp.ts';

test('ports: published ports in order, IPv6 in brackets, host mappings last', () => {
  assert.equal(displayablePorts([
    { IP: '0.0.0.0', PrivatePort: 81, PublicPort: 8081, Type: 'tcp' },
    { IP: '::', PrivatePort: 81, PublicPort: 8081, Type: 'tcp' },
    { IP: '127.0.0.1', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
  ]), '127.0.0.1:8080->80/tcp, 0.0.0.0:8081->81/tcp, [::]:8081->81/tcp');
  assert.equal(displayablePorts([
    { IP: '127.0.0.1', PrivatePort: 8080, PublicPort: 80, Type: 'tcp' },
    { IP: '::', PrivatePort: 8080, PublicPort: 80, Type: 'tcp' },
  ]), '127.0.0.1:80->8080/tcp, [::]:80->8080/tcp');
});

test('ports: exposed and same-number published ports collapse into ranges (docker golden cases)', () => {
  assert.equal(displayablePorts([{ PrivatePort: 9988, Type: 'tcp' }]), '9988/tcp');
  assert.equal(displayablePorts([{ PrivatePort: 9988, Type: 'udp' }, { PrivatePort: 9988, Type: 'tcp' }]), '9988/tcp, 9988/udp');
  assert.equal(displayablePorts([{ IP: '4.3.2.1', PrivatePort: 9998, PublicPort: 9998, Type: 'udp' }, { IP: '4.3.2.1', PrivatePort: 9999, PublicPort: 9999, Type: 'udp' }]),
    '4.3.2.1:9998-9999->9998-9999/udp');
  assert.equal(displayablePorts([{ IP: '1.2.3.4', PublicPort: 9998, PrivatePort: 9998, Type: 'udp' }, { IP: '1.2.3.4', PublicPort: 9999, PrivatePort: 9999, Type: 'udp' }]),
    '1.2.3.4:9998-9999->9998-9999/udp');
  assert.equal(displayablePorts([{ PrivatePort: 6677, Type: 'tcp' }, { PrivatePort: 6678, Type: 'tcp' }, { PrivatePort: 6679, Type: 'tcp' }, { PrivatePort: 6680, Type: 'udp' }]),
    '6677-6679/tcp, 6680/udp');
  assert.equal(displayablePorts([{ PrivatePort: 80, Type: 'tcp' }, { PrivatePort: 81, Type: 'tcp' }, { PrivatePort: 83, Type: 'tcp' }]), '80-81/tcp, 83/tcp');
  assert.equal(displayablePorts([]), '');
  assert.equal(displayablePorts(null), '');
});

const T0 = Date.parse('2026-11-28T10:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();
const state = (o: Partial<Parameters<typeof containerStatusText>[0]>): Parameters<typeof containerStatusText>[0] => ({
  Running: false, Paused: false, Restarting: false, Dead: false, ExitCode: 0, StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', ...o,
});

test('status: Created, Up, Paused, Exited, Restarting, Dead as moby words them', () => {
  const now = T0 + 600_000;
  assert.equal(containerStatusText(state({}), now), 'Created');
  assert.equal(containerStatusText(state({ Running: true, StartedAt: at(598) }), now), 'Up 2 seconds');
  assert.equal(containerStatusText(state({ Running: true, StartedAt: at(599.5) }), now), 'Up Less than a second');
  assert.equal(containerStatusText(state({ Running: true, Paused: true, StartedAt: at(595) }), now), 'Up 5 seconds (Paused)');
  assert.equal(containerStatusText(state({ ExitCode: 0, StartedAt: at(0), FinishedAt: at(420) }), now), 'Exited (0) 3 minutes ago');
  assert.equal(containerStatusText(state({ ExitCode: 137, StartedAt: at(0), FinishedAt: at(530) }), now), 'Exited (137) About a minute ago');
  assert.equal(containerStatusText(state({ Running: true, Restarting: true, ExitCode: 1, StartedAt: at(0), FinishedAt: at(590) }), now), 'Restarting (1) 10 seconds ago');
  assert.equal(containerStatusText(state({ Dead: true, StartedAt: at(0) }), now), 'Dead');
  assert.equal(containerStatusText(state({ Running: true, StartedAt: at(0), Health: { Status: 'starting' } }), now), 'Up 10 minutes (health: starting)');
  assert.equal(containerStatusText(state({ Running: true, StartedAt: at(0), Health: { Status: 'healthy' } }), now), 'Up 10 minutes (healthy)');
});

const summary = (o: Partial<ContainerSummary>): ContainerSummary => ({
  Id: 'd739c4611ab0b660a3714e0f093e0d8c5c5a419b1168b4cdf342db9eedc3bece', Names: ['/web'], Image: 'busybox',
  ImageID: 'sha256:8370c72f4594fd7f9850cae8b64a6cb38262e3938aa59eda58a172bb31174e8f', Command: 'sleep 1000',
  Created: T0 / 1000, State: 'running', Status: 'Up 13 seconds', ...o,
});

test('command: quoted as Go does, truncated to 20 characters with an ellipsis', () => {
  assert.equal(new ContainerRow(summary({ Command: "sh -c 'echo hi; exit 3'" }), true).Command, '"sh -c \'echo hi; exi…"');
  assert.equal(new ContainerRow(summary({ Command: "sh -c 'echo hi; exit 3'" }), false).Command, '"sh -c \'echo hi; exit 3\'"');
  assert.equal(new ContainerRow(summary({ Command: "echo 'a b'" }), true).Command, '"echo \'a b\'"');
  assert.equal(goQuote('a"b\\c\n\t\x01é'), '"a\\"b\\\\c\\n\\t\\x01é"');
});

test('size, running-for, image and names columns', () => {
  const now = T0 + 14_000;
  const r = new ContainerRow(summary({ SizeRw: 0, SizeRootFs: 1_990_000 }), true, now);
  assert.equal(r.Size, '0B (virtual 1.99MB)');
  assert.equal(new ContainerRow(summary({ SizeRw: 12, SizeRootFs: 0 }), true).Size, '12B');
  assert.equal(r.RunningFor, '14 seconds ago');
  assert.equal(new ContainerRow(summary({}), true, T0 + 90_000).RunningFor, 'About a minute ago');
  assert.equal(new ContainerRow(summary({ Image: 'docker.io/library/busybox:latest' }), true).Image, 'busybox:latest');
  assert.equal(new ContainerRow(summary({ Image: 'busybox@sha256:' + 'a'.repeat(64) }), true).Image, 'busybox');
  assert.equal(new ContainerRow(summary({ Image: 'sha256:8370c72f4594fd7f9850cae8b64a6cb38262e3938aa59eda58a172bb31174e8f' }), true).Image, '8370c72f4594');
  assert.equal(new ContainerRow(summary({ Names: ['/web', '/other/alias'] }), true).Names, 'web');
  assert.equal(new ContainerRow(summary({ Names: ['/web', '/other/alias'] }), false).Names, 'web,other/alias');
  assert.equal(new ContainerRow(summary({ Labels: { b: '2', a: '1' } }), true).Labels, 'a=1,b=2');
});

test('ps table and templates as docker prints them', () => {
  const now = T0 + 14_000;
  const rows = [summary({ Ports: [{ IP: '127.0.0.1', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }], Labels: { a: 'b' } })];
  assert.equal(renderContainers(rows, { now }),
    'CONTAINER ID   IMAGE     COMMAND        CREATED          STATUS          PORTS                    NAMES\n' +
    'd739c4611ab0   busybox   "sleep 1000"   14 seconds ago   Up 13 seconds   127.0.0.1:8080->80/tcp   web\n');
  assert.equal(renderContainers(rows, { format: 'table {{.Label "a"}}\t{{.ID}}', now }), 'a         CONTAINER ID\nb         d739c4611ab0\n');
  assert.equal(renderContainers(rows, { format: '{{.Label "a"}}|{{.Labels}}|{{.State}}', now }), 'b|a=b|running\n');
  assert.equal(renderContainers(rows, { quiet: true }), 'd739c4611ab0\n');
});

test('stats: CPU % from cpu_stats/precpu_stats, memory without inactive file pages', () => {
  const s = {
    id: 'd739c4611ab0b660a3714e0f093e0d8c5c5a419b1168b4cdf342db9eedc3bece', name: '/web',
    cpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 10_000_000_000 },
    memory_stats: { usage: 10 * 1024 * 1024, limit: 1024 * 1024 * 1024, stats: { total_inactive_file: 2 * 1024 * 1024 } },
    networks: { eth0: { rx_bytes: 1530, tx_bytes: 0 } },
    blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 4096 }, { op: 'Write', value: 8192 }, { op: 'Total', value: 12288 }] },
    pids_stats: { current: 1 },
  };
  assert.equal(cpuPercent(s), 20);
  assert.equal(memoryUsage(s.memory_stats), 8 * 1024 * 1024);
  assert.equal(memoryUsage({ usage: 100, stats: { inactive_file: 30 } }), 70);
  assert.equal(memoryUsage({ usage: 100, stats: { inactive_file: 300 } }), 100);
  assert.equal(cpuPercent({ cpu_stats: { cpu_usage: { total_usage: 5, percpu_usage: [1, 2, 3, 4] }, system_cpu_usage: 10 }, precpu_stats: { cpu_usage: { total_usage: 4 }, system_cpu_usage: 9 } }), 400);
  const e = statsEntry('web', s);
  assert.equal(renderStats([e], 'table', true),
    'CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O       BLOCK I/O        PIDS\n' +
    'd739c4611ab0   web       20.00%    8MiB / 1GiB         0.78%     1.53kB / 0B   4.1kB / 8.19kB   1\n');
  assert.equal(renderStats([{ ...e, IsInvalid: true, Name: '' }], '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}', true), '-- -- -- / -- --\n');
  assert.equal(streamFrame('A\nB\n'), '\x1b[HA\nB\n\x1b[HA \x1b[K\nB \x1b[K\n \x1b[K\n\x1b[J');
});

test('port sort, update flag values', () => {
  const out = ['81/tcp -> [::]:8081', '80/tcp -> 127.0.0.1:8080', '9000/tcp -> 0.0.0.0:9000', '81/tcp -> 0.0.0.0:8081'];
  out.sort((a, b) => (naturalLess(a, b) ? -1 : naturalLess(b, a) ? 1 : 0));
  assert.deepEqual(out, ['80/tcp -> 127.0.0.1:8080', '81/tcp -> 0.0.0.0:8081', '81/tcp -> [::]:8081', '9000/tcp -> 0.0.0.0:9000']);
  assert.equal(parseNanoCpus('1.5'), 1_500_000_000);
  assert.equal(parseNanoCpus('0.001'), 1_000_000);
  assert.throws(() => parseNanoCpus('x'), /failed to parse x as a rational number/);
  assert.deepEqual(parseRestartPolicy('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.throws(() => parseRestartPolicy(':3'), /no policy provided before colon/);
  assert.throws(() => parseRestartPolicy('always:x'), /maximum retry count must be an integer/);
});

test('cp: argument split and archive renames (trailing "/." copies contents)', () => {
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('/abs:x'), { container: '', path: '/abs:x' });
  assert.deepEqual(splitCpArg('./a:b'), { container: '', path: './a:b' });
  assert.deepEqual(splitCpArg('file'), { container: '', path: 'file' });
  assert.deepEqual(splitPathDirEntry('/d/.'), { dir: '/d', base: '.' });
  assert.deepEqual(splitPathDirEntry('/d/sub/'), { dir: '/d', base: 'sub' });
  assert.equal(rebaseName('d/sub/g', 'd', 'new'), 'new/sub/g');
  assert.equal(rebaseName('d', 'd', 'new'), 'new');
  assert.equal(rebaseName('./sub/g', '.', 'new'), 'new/sub/g');
  assert.equal(rebaseName('dd/x', 'd', 'new'), 'dd/x');
});
