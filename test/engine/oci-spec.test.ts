// Image config + run options → OCI spec (src/engine/oci-spec.ts): docker's defaults and merge
// rules, user resolution in a temp rootfs (symlinks out of it are never followed), and one spec
// run for real under the runtime with a busybox rootfs.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  buildSpec, capabilitySet, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_PATH, DEFAULT_READONLY_PATHS,
  parseUlimits, processArgs, resolveUser, RunOptionsError, STOP_SIGNAL_ANNOTATION, type RunOptions,
} from '../../src/engine/oci-spec.ts';
import { CAPABILITIES } from '../../src/runtime/capabilities.ts';
import type { ImageConfig } from '../../src/image/types.ts';
import { capsHex, parseStatus, withBundle, type Spec as BundleSpec } from '../helpers/bundle.ts';

const ID = 'a1b2c3d4e5f6'.padEnd(64, '0');
// "All capabilities" are those in the daemon's bounding set (a host may have dropped some, e.g.
// CAP_SYS_RESOURCE); the daemon and this test run with the same one.
const HOST_BOUNDING = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
const ALL_CAPS = CAPABILITIES.filter((_c, i) => ((HOST_BOUNDING >> BigInt(i)) & 1n) === 1n);
let base: string;
let rootfs: string; // a sane /etc/passwd and /etc/group
let hostile: string; // /etc/passwd and /etc/group are symlinks to files outside the rootfs
let etcLink: string; // /etc itself is a symlink out of the rootfs
let empty: string; // no /etc at all

function image(config: ImageConfig['config'] = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config };
}
function opts(extra: Partial<RunOptions> = {}): RunOptions {
  return { id: ID, rootfs, cmd: ['sh'], ...extra };
}

before(() => {
  base = mkdtempSync(join(tmpdir(), 'berth-oci-spec-'));
  rootfs = join(base, 'rootfs');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc', 'passwd'), [
    'root:x:0:0:root:/root:/bin/sh',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
    'bob:x:1001:1001::/home/bob:/bin/sh',
    '# a comment',
    'broken:x:notanumber:1::/:/bin/sh',
    '',
  ].join('\n'));
  writeFileSync(join(rootfs, 'etc', 'group'), [
    'root:x:0:',
    'daemon:x:1:',
    'tty:x:5:',
    'staff:x:50:alice,bob',
    'audio:x:29:alice',
    'video:x:44:bob',
    'alice:x:1000:',
    'bob:x:1001:',
    '',
  ].join('\n'));

  // Files outside any rootfs that a following implementation would read.
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nmallory:x:4242:4343::/:/bin/sh\n');
  writeFileSync(join(outside, 'group'), 'root:x:0:\nevil:x:4444:mallory\n');
  hostile = join(base, 'hostile');
  mkdirSync(join(hostile, 'etc'), { recursive: true });
  symlinkSync(join(outside, 'passwd'), join(hostile, 'etc', 'passwd'));
  symlinkSync('../../outside/group', join(hostile, 'etc', 'group'));
  etcLink = join(base, 'etclink');
  mkdirSync(etcLink);
  symlinkSync(outside, join(etcLink, 'etc'));
  empty = join(base, 'empty');
  mkdirSync(empty);
});

after(() => rmSync(base, { recursive: true, force: true }));

describe('capabilities', () => {
  test('docker\'s default set in bounding, effective and permitted; no inheritable or ambient', () => {
    const caps = buildSpec(image(), opts()).process!.capabilities!;
    assert.deepEqual(DEFAULT_CAPABILITIES, [
      'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
      'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
    ]);
    assert.deepEqual(caps.bounding, DEFAULT_CAPABILITIES);
    assert.deepEqual(caps.effective, DEFAULT_CAPABILITIES);
    assert.deepEqual(caps.permitted, DEFAULT_CAPABILITIES);
    assert.equal(caps.inheritable, undefined);
    assert.equal(caps.ambient, undefined);
  });

  test('cap-add and cap-drop: with or without CAP_, any case', () => {
    const caps = capabilitySet({ capAdd: ['sys_admin', 'CAP_NET_ADMIN', 'Cap_Sys_Ptrace'], capDrop: ['net_raw', 'CAP_MKNOD', 'chown'] });
    for (const c of ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE', 'CAP_KILL']) assert.ok(caps.includes(c), c);
    for (const c of ['CAP_NET_RAW', 'CAP_MKNOD', 'CAP_CHOWN']) assert.ok(!caps.includes(c), c);
    assert.equal(new Set(caps).size, caps.length);
    assert.deepEqual(capabilitySet({ capAdd: ['kill'] }), DEFAULT_CAPABILITIES, 'adding a default cap does not duplicate it');
  });

  test('"ALL": add ALL minus drops; drop ALL keeps only adds', () => {
    const all = capabilitySet({ capAdd: ['all'], capDrop: ['sys_admin'] });
    assert.deepEqual(all, ALL_CAPS.filter((c) => c !== 'CAP_SYS_ADMIN'));
    assert.deepEqual(capabilitySet({ capDrop: ['ALL'], capAdd: ['net_bind_service', 'CAP_CHOWN'] }), ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN']);
    assert.deepEqual(capabilitySet({ capDrop: ['all'] }), []);
    assert.deepEqual(capabilitySet({ capAdd: ['ALL'], capDrop: ['ALL'] }), ALL_CAPS);
  });

  test('an unknown capability is refused', () => {
    assert.throws(() => capabilitySet({ capAdd: ['CAP_NOPE'] }), (e: Error) => e instanceof RunOptionsError && /unknown capability: "CAP_NOPE"/.test(e.message));
    assert.throws(() => capabilitySet({ capDrop: ['bogus'] }), RunOptionsError);
  });
});

describe('privileged, masked and read-only paths', () => {
  test('defaults: moby\'s masked and read-only paths, ro sysfs and cgroup, deny-by-default device rules', () => {
    const s = buildSpec(image(), opts());
    assert.deepEqual(s.linux!.maskedPaths, [
      '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
      '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
    ]);
    assert.deepEqual(s.linux!.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    assert.deepEqual(s.linux!.resources!.devices![0], { allow: false, access: 'rwm' });
    assert.ok(s.linux!.resources!.devices!.some((d) => d.allow && d.type === 'c' && d.major === 1 && d.minor === 3));
    assert.ok(s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.ok(s.mounts!.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
    assert.equal(s.process!.noNewPrivileges, false);
    assert.equal(s.linux!.seccomp!.defaultAction, 'SCMP_ACT_ERRNO', 'docker\'s default seccomp profile');
  });

  test('--privileged: every capability, nothing masked or read-only, no seccomp, rw sysfs, all devices', () => {
    const profile = { defaultAction: 'SCMP_ACT_ERRNO' };
    const s = buildSpec(image(), opts({ privileged: true, capDrop: ['ALL'], seccomp: profile }));
    assert.deepEqual(s.process!.capabilities!.bounding, ALL_CAPS);
    assert.deepEqual(s.process!.capabilities!.effective, ALL_CAPS);
    assert.deepEqual(s.linux!.maskedPaths, []);
    assert.deepEqual(s.linux!.readonlyPaths, []);
    assert.equal(s.linux!.seccomp, undefined);
    assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
    assert.ok(!s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.ok(!s.mounts!.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
    // With a read-only rootfs /sys stays read-only (moby), the cgroup mount does not.
    const ro = buildSpec(image(), opts({ privileged: true, readOnly: true }));
    assert.ok(ro.mounts!.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.ok(!ro.mounts!.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
    // Not privileged: the given profile is used; 'unconfined' means none.
    assert.deepEqual(buildSpec(image(), opts({ seccomp: profile })).linux!.seccomp, profile);
    assert.equal(buildSpec(image(), opts({ seccomp: 'unconfined' })).linux!.seccomp, undefined);
  });

  test('no-new-privileges and --read-only', () => {
    const s = buildSpec(image(), opts({ noNewPrivileges: true, readOnly: true }));
    assert.equal(s.process!.noNewPrivileges, true);
    assert.deepEqual(s.root, { path: rootfs, readonly: true });
    assert.deepEqual(buildSpec(image(), opts()).root, { path: rootfs, readonly: false });
  });

  test('--read-only: default mounts other than /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue get ro; --tmpfs ones do not', () => {
    const s = buildSpec(image(), opts({ readOnly: true, tmpfs: { '/run': '' } }));
    const ro = s.mounts!.filter((m) => m.options!.includes('ro')).map((m) => m.destination);
    assert.deepEqual(ro, ['/sys', '/sys/fs/cgroup']);
    assert.equal(s.mounts!.find((m) => m.destination === '/sys')!.options!.filter((o) => o === 'ro').length, 1, 'ro once');
  });
});

describe('mounts', () => {
  test('docker\'s default mounts, /dev/shm sized by --shm-size (64m by default)', () => {
    const s = buildSpec(image(), opts());
    const byDest = new Map(s.mounts!.map((m) => [m.destination, m]));
    assert.deepEqual([...byDest.keys()], ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
    assert.equal(byDest.get('/proc')!.type, 'proc');
    assert.deepEqual(byDest.get('/dev')!.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
    assert.deepEqual(byDest.get('/dev/pts')!.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    assert.equal(byDest.get('/sys')!.type, 'sysfs');
    assert.equal(byDest.get('/sys/fs/cgroup')!.type, 'cgroup');
    assert.equal(byDest.get('/dev/mqueue')!.type, 'mqueue');
    assert.deepEqual(byDest.get('/dev/shm'), {
      destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'],
    });
    const shm = buildSpec(image(), opts({ shmSize: 128 * 1024 * 1024 })).mounts!.find((m) => m.destination === '/dev/shm')!;
    assert.ok(shm.options!.includes('size=134217728'));
  });

  test('--tmpfs: noexec,nosuid,nodev by default; the user\'s options override their opposites', () => {
    const s = buildSpec(image(), opts({ tmpfs: { '/run': '', '/scratch': 'exec,size=1m,mode=700', '/dev/shm': 'size=2m' } }));
    const m = (d: string) => s.mounts!.find((x) => x.destination === d)!;
    assert.deepEqual(m('/run'), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev'] });
    assert.deepEqual(m('/scratch').options, ['nosuid', 'nodev', 'exec', 'size=1m', 'mode=700']);
    assert.equal(s.mounts!.filter((x) => x.destination === '/dev/shm').length, 1, '--tmpfs /dev/shm replaces the default');
    assert.ok(m('/dev/shm').options!.includes('size=2m'));
    assert.throws(() => buildSpec(image(), opts({ tmpfs: { relative: '' } })), RunOptionsError);
  });
});

describe('command, environment, working directory', () => {
  const img = { Entrypoint: ['/entry.sh'], Cmd: ['serve', '--port', '80'] };

  test('image Entrypoint + Cmd; user args replace Cmd', () => {
    assert.deepEqual(processArgs(img, {}), ['/entry.sh', 'serve', '--port', '80']);
    assert.deepEqual(processArgs(img, { cmd: ['version'] }), ['/entry.sh', 'version']);
    assert.deepEqual(processArgs({ Cmd: ['sh'] }, { cmd: ['echo', 'hi'] }), ['echo', 'hi']);
  });

  test('--entrypoint replaces the image\'s and clears its Cmd; an empty one resets it', () => {
    assert.deepEqual(processArgs(img, { entrypoint: '/bin/sh' }), ['/bin/sh']);
    assert.deepEqual(processArgs(img, { entrypoint: ['/bin/sh', '-c'], cmd: ['id'] }), ['/bin/sh', '-c', 'id']);
    assert.deepEqual(processArgs(img, { entrypoint: '' }), ['serve', '--port', '80']);
    assert.deepEqual(processArgs(img, { entrypoint: [], cmd: ['ls'] }), ['ls']);
    assert.throws(() => processArgs({ Entrypoint: ['/e'] }, { entrypoint: '' }), /No command specified/);
    assert.throws(() => buildSpec(image({}), opts({ cmd: undefined })), /No command specified/);
    assert.deepEqual(buildSpec(image({ Cmd: null, Entrypoint: null }), opts({ cmd: ['true'] })).process!.args, ['true']);
  });

  test('env: PATH default, HOSTNAME, TERM with a tty, image env, then -e by key', () => {
    const s = buildSpec(image({ Env: ['FOO=image', 'BAR=keep'] }), opts({ env: ['FOO=user', 'NEW=1'] }));
    assert.deepEqual(s.process!.env, [DEFAULT_PATH, `HOSTNAME=${ID.slice(0, 12)}`, 'FOO=user', 'BAR=keep', 'NEW=1']);
    const own = buildSpec(image({ Env: ['PATH=/opt/bin'] }), opts({ tty: true, hostname: 'box' }));
    assert.deepEqual(own.process!.env, ['PATH=/opt/bin', 'HOSTNAME=box', 'TERM=xterm']);
    assert.equal(own.process!.terminal, true);
    const userPath = buildSpec(image({ Env: ['PATH=/opt/bin'] }), opts({ env: ['PATH=/x'] }));
    assert.deepEqual(userPath.process!.env!.filter((e) => e.startsWith('PATH=')), ['PATH=/x']);
  });

  test('working directory: -w, else the image\'s, else /; must be absolute', () => {
    assert.equal(buildSpec(image(), opts()).process!.cwd, '/');
    assert.equal(buildSpec(image({ WorkingDir: '/app' }), opts()).process!.cwd, '/app');
    assert.equal(buildSpec(image({ WorkingDir: '/app' }), opts({ workingDir: '/tmp' })).process!.cwd, '/tmp');
    assert.throws(() => buildSpec(image(), opts({ workingDir: 'rel' })), /needs to be an absolute path/);
  });
});

describe('user resolution', () => {
  test('default: root; additionalGids start with the primary gid, as moby\'s now do', () => {
    assert.deepEqual(buildSpec(image(), opts()).process!.user, { uid: 0, gid: 0, additionalGids: [0] });
  });

  test('a name: its uid and gid, and its /etc/group memberships', () => {
    assert.deepEqual(resolveUser(rootfs, 'alice'), { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29] });
    assert.deepEqual(resolveUser(rootfs, 'bob'), { uid: 1001, gid: 1001, additionalGids: [1001, 50, 44] });
    assert.deepEqual(buildSpec(image({ User: 'alice' }), opts()).process!.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29] });
    assert.throws(() => resolveUser(rootfs, 'carol'), /unable to find user carol/);
  });

  test('a uid: the passwd entry when there is one, else gid 0', () => {
    assert.deepEqual(resolveUser(rootfs, '1000'), { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29] });
    assert.deepEqual(resolveUser(rootfs, '4242'), { uid: 4242, gid: 0, additionalGids: [0] });
    assert.throws(() => resolveUser(rootfs, '4294967296'), /unable to find user/, 'out of range: taken as a name');
  });

  test('name:group and uid:gid: the group replaces the primary gid, no memberships added', () => {
    assert.deepEqual(resolveUser(rootfs, 'alice:staff'), { uid: 1000, gid: 50, additionalGids: [50] });
    assert.deepEqual(resolveUser(rootfs, 'alice:7'), { uid: 1000, gid: 7, additionalGids: [7] });
    assert.deepEqual(resolveUser(rootfs, '1234:5678'), { uid: 1234, gid: 5678, additionalGids: [5678] });
    assert.deepEqual(resolveUser(rootfs, '1001:video'), { uid: 1001, gid: 44, additionalGids: [44] });
    assert.throws(() => resolveUser(rootfs, 'alice:nogroup'), /unable to find group nogroup/);
  });

  test('-u overrides the image\'s User', () => {
    assert.deepEqual(buildSpec(image({ User: 'alice' }), opts({ user: 'bob:bob' })).process!.user, { uid: 1001, gid: 1001, additionalGids: [1001] });
  });

  test('--group-add: names resolved in /etc/group, numbers as given, after the memberships', () => {
    assert.deepEqual(resolveUser(rootfs, 'alice', ['video', '777', 'staff']), { uid: 1000, gid: 1000, additionalGids: [1000, 50, 29, 44, 777] });
    assert.deepEqual(buildSpec(image(), opts({ groupAdd: ['tty'] })).process!.user, { uid: 0, gid: 0, additionalGids: [0, 5] });
    assert.throws(() => resolveUser(rootfs, 'alice', ['wheel']), /Unable to find group wheel/);
  });

  test('symlinked /etc/passwd and /etc/group pointing outside the rootfs are not followed', () => {
    assert.throws(() => resolveUser(hostile, 'mallory'), /unable to find user mallory/);
    assert.deepEqual(resolveUser(hostile, '4242'), { uid: 4242, gid: 0, additionalGids: [0] }, 'not 4343 from the outside file');
    assert.throws(() => resolveUser(hostile, 'root'), /unable to find user root/, 'the outside passwd has root, the image has none');
    assert.throws(() => resolveUser(hostile, '0', ['evil']), /Unable to find group evil/);
    assert.throws(() => resolveUser(hostile, '0:evil'), /unable to find group evil/);
  });

  test('a symlinked /etc is not followed either; no /etc at all means numeric ids only', () => {
    assert.throws(() => resolveUser(etcLink, 'mallory'), /unable to find user/);
    assert.deepEqual(resolveUser(etcLink, ''), { uid: 0, gid: 0, additionalGids: [0] });
    assert.deepEqual(resolveUser(empty, '12:34'), { uid: 12, gid: 34, additionalGids: [34] });
    assert.throws(() => resolveUser(empty, 'root'), /unable to find user root/);
  });
});

describe('hostname and namespaces', () => {
  test('hostname: the 12-char id by default, -h otherwise', () => {
    assert.equal(buildSpec(image(), opts()).hostname, ID.slice(0, 12));
    const s = buildSpec(image(), opts({ hostname: 'web', domainname: 'example.test' }));
    assert.equal(s.hostname, 'web');
    assert.equal(s.domainname, 'example.test');
  });

  const types = (o: Partial<RunOptions>) => buildSpec(image(), opts(o)).linux!.namespaces!.map((n) => n.type).sort();

  test('pid, ipc, uts, mount, network; cgroup namespace private on v2, host on v1', () => {
    assert.deepEqual(types({ cgroupV2: true }), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    assert.deepEqual(types({ cgroupV2: false }), ['ipc', 'mount', 'network', 'pid', 'uts']);
    assert.deepEqual(types({ cgroupV2: false, cgroupns: 'private' }), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    assert.deepEqual(types({ cgroupV2: true, cgroupns: 'host' }), ['ipc', 'mount', 'network', 'pid', 'uts']);
  });

  test('host modes leave the namespace out', () => {
    assert.deepEqual(types({ network: 'host' }), ['ipc', 'mount', 'pid', 'uts']);
    assert.deepEqual(types({ pid: 'host', ipc: 'host' }), ['mount', 'network', 'uts']);
    const uts = buildSpec(image(), opts({ uts: 'host' }));
    assert.equal(uts.hostname, undefined, 'no hostname without a UTS namespace');
    assert.throws(() => buildSpec(image(), opts({ uts: 'host', hostname: 'x' })), /Conflicting options/);
  });
});

describe('resources, ulimits, sysctls', () => {
  const res = (o: Partial<RunOptions>) => buildSpec(image(), opts(o)).linux!.resources!;

  test('none asked: no memory, cpu or pids entries, no rlimits (as moby without default-ulimits)', () => {
    const r = res({});
    assert.equal(r.memory, undefined);
    assert.equal(r.cpu, undefined);
    assert.equal(r.pids, undefined);
    assert.equal(buildSpec(image(), opts()).process!.rlimits, undefined);
    assert.equal(buildSpec(image(), opts()).linux!.sysctl, undefined);
  });

  test('-m: swap defaults to twice the memory; --memory-swap -1 is unlimited; refused combinations', () => {
    const mb = 1024 * 1024;
    assert.deepEqual(res({ memory: 64 * mb }).memory, { limit: 64 * mb, swap: 128 * mb });
    assert.deepEqual(res({ memory: 64 * mb, memorySwap: 100 * mb }).memory, { limit: 64 * mb, swap: 100 * mb });
    assert.deepEqual(res({ memory: 64 * mb, memorySwap: -1 }).memory, { limit: 64 * mb, swap: -1 });
    assert.throws(() => res({ memory: 64 * mb, memorySwap: 32 * mb }), /memoryswap limit should be larger/);
    assert.throws(() => res({ memorySwap: 32 * mb }), /always set the Memory limit/);
    assert.throws(() => res({ memory: mb }), /Minimum memory limit allowed is 6MB/);
  });

  test('--cpus as quota over a 100000 period; --cpu-shares', () => {
    assert.deepEqual(res({ cpus: 1.5 }).cpu, { period: 100000, quota: 150000 });
    assert.deepEqual(res({ cpus: 0.25, cpuShares: 512 }).cpu, { shares: 512, period: 100000, quota: 25000 });
    assert.throws(() => res({ cpus: -1 }), RunOptionsError);
  });

  test('--pids-limit: positive as given, 0 or negative unlimited (-1)', () => {
    assert.deepEqual(res({ pidsLimit: 100 }).pids, { limit: 100 });
    assert.deepEqual(res({ pidsLimit: 0 }).pids, { limit: -1 });
    assert.deepEqual(res({ pidsLimit: -1 }).pids, { limit: -1 });
  });

  test('--ulimit name=soft[:hard]', () => {
    assert.deepEqual(buildSpec(image(), opts({ ulimits: ['nofile=1024:2048', 'nproc=50'] })).process!.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
      { type: 'RLIMIT_NPROC', soft: 50, hard: 50 },
    ]);
    assert.deepEqual(parseUlimits(['nofile=1:2', 'nofile=3:4']), [{ type: 'RLIMIT_NOFILE', soft: 3, hard: 4 }], 'the last one wins');
    assert.deepEqual(parseUlimits(['core=-1', 'memlock=64:-1']), [
      { type: 'RLIMIT_CORE', soft: -1, hard: -1 }, { type: 'RLIMIT_MEMLOCK', soft: 64, hard: -1 },
    ], '-1: unlimited');
    assert.throws(() => parseUlimits(['nofile=10:5']), /soft limit/);
    assert.throws(() => parseUlimits(['nofile=-1:5']), /soft limit/);
    assert.throws(() => parseUlimits(['nofile=-2']), /invalid ulimit argument/);
    assert.throws(() => parseUlimits(['bogus=1']), /invalid ulimit type/);
    assert.throws(() => parseUlimits(['nofile']), /invalid ulimit argument/);
  });

  test('--sysctl is carried', () => {
    assert.deepEqual(buildSpec(image(), opts({ sysctls: { 'net.ipv4.ip_forward': '1' } })).linux!.sysctl, { 'net.ipv4.ip_forward': '1' });
  });
});

describe('annotations', () => {
  test('image labels and -l, and the stop signal as org.opencontainers.image.stopSignal', () => {
    const s = buildSpec(image({ Labels: { a: 'image', b: 'image' }, StopSignal: 'SIGQUIT' }), opts({ labels: { b: 'user' } }));
    assert.deepEqual(s.annotations, { a: 'image', b: 'user', [STOP_SIGNAL_ANNOTATION]: 'SIGQUIT' });
    assert.equal(STOP_SIGNAL_ANNOTATION, 'org.opencontainers.image.stopSignal');
    assert.equal(buildSpec(image({ StopSignal: 'SIGQUIT' }), opts({ stopSignal: 'SIGUSR1' })).annotations![STOP_SIGNAL_ANNOTATION], 'SIGUSR1');
    assert.equal(buildSpec(image(), opts()).annotations, undefined);
  });
});

test('end to end: the spec runs under the runtime with a busybox rootfs', async () => {
  await withBundle({}, async (b) => {
    const spec = buildSpec(image({
      Env: ['FROM_IMAGE=1'], WorkingDir: '/home/alice', User: 'alice', Cmd: ['false'], StopSignal: 'SIGQUIT',
    }), {
      id: ID,
      rootfs: b.rootfs,
      cmd: ['sh', '-c', [
        'id -u; id -g; id -G; pwd; hostname; echo "$FROM_IMAGE $FROM_USER $HOSTNAME"',
        'grep -E "^Cap(Bnd|Eff)" /proc/self/status',
        'ulimit -n',
        'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
        'touch /x 2>/dev/null && echo rootfs-writable || echo rootfs-readonly',
        'touch /run/ok && echo tmpfs-writable',
        'cat /proc/keys | wc -c',
        'grep -c " /dev/shm " /proc/mounts',
      ].join('; ')],
      env: ['FROM_USER=2'],
      capDrop: ['net_raw'],
      capAdd: ['sys_ptrace'],
      readOnly: true,
      tmpfs: { '/run': 'mode=1777' },
      pidsLimit: 64,
      ulimits: ['nofile=512:1024'],
      noNewPrivileges: true,
    });
    b.spec = spec as unknown as BundleSpec;
    b.writeConfig();
    const r = await b.runContainer(b.newId('ocispec'));
    assert.equal(r.code, 0, `runtime failed: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '1000');
    assert.equal(lines[1], '1000');
    assert.deepEqual(lines[2].split(' ').sort(), ['1000', '50'], 'primary gid and the staff membership');
    assert.equal(lines[3], '/home/alice');
    assert.equal(lines[4], ID.slice(0, 12));
    assert.equal(lines[5], `1 2 ${ID.slice(0, 12)}`);
    const status = parseStatus(lines.slice(6, 8).join('\n'));
    const want = capsHex([...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_NET_RAW'), 'CAP_SYS_PTRACE']);
    assert.equal(status.CapBnd, want);
    assert.equal(status.CapEff, '0000000000000000', 'a non-root user has no effective capabilities');
    assert.equal(lines[8], '512');
    assert.equal(lines[9], '64');
    assert.equal(lines[10], 'rootfs-readonly');
    assert.equal(lines[11], 'tmpfs-writable');
    assert.equal(lines[12], '0', '/proc/keys is masked (readable by all and not empty on the host)');
    assert.equal(lines[13], '1');
  });
});
