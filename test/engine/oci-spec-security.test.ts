// Seccomp, devices, --privileged and --init in the engine's OCI spec (src/engine/oci-spec.ts,
// src/engine/seccomp-default.ts): docker's default seccomp profile and docker's profile format,
// --device / --device-cgroup-rule, and containers run for real under the runtime with a busybox
// rootfs to show each one is enforced.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  buildSpec, DEFAULT_CAPABILITIES, devicesFromPath, INIT_PATH, parseDeviceCgroupRule, parseDeviceSpec, RunOptionsError,
  type RunOptions,
} from '../../src/engine/oci-spec.ts';
import { defaultSeccompProfile, loadSeccompProfile, SeccompProfileError } from '../../src/engine/seccomp-default.ts';
import { CAPABILITIES } from '../../src/runtime/capabilities.ts';
import { compileSeccomp } from '../../src/runtime/seccomp/index.ts';
import type { Seccomp } from '../../src/runtime/spec-types.ts';
import type { ImageConfig } from '../../src/image/types.ts';
import { capsHex, CAP_NUMBERS, parseStatus, REPO_ROOT, withBundle, type Bundle, type Spec as BundleSpec } from '../helpers/bundle.ts';

const ID = 'c0ffee000000'.padEnd(64, '1');
const INIT_BINARY = join(REPO_ROOT, 'dist', 'berth-init');
const image = (config: ImageConfig['config'] = {}): ImageConfig => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config });
const x64 = (capabilities: string[], kernelRelease = '6.1.0-18-amd64') => defaultSeccompProfile({ capabilities, arch: 'x64', kernelRelease });

/** Whether this process's bounding set has a capability. */
function boundingHas(name: string): boolean {
  const bnd = BigInt(`0x${parseStatus(readFileSync('/proc/self/status', 'utf8')).CapBnd}`);
  return ((bnd >> BigInt(CAP_NUMBERS[name])) & 1n) === 1n;
}

/** The rules of a profile that name `syscall`. */
const rulesFor = (p: Seccomp, syscall: string) => (p.syscalls ?? []).filter((r) => r.names.includes(syscall));
/** Whether `syscall` is allowed without conditions. */
const allowed = (p: Seccomp, syscall: string) => rulesFor(p, syscall).some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args?.length);

describe('docker\'s default seccomp profile', () => {
  test('EPERM by default; the x86_64 family; ordinary syscalls allowed, privileged ones not', () => {
    const p = x64([...DEFAULT_CAPABILITIES]);
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    for (const s of ['read', 'write', 'openat', 'execve', 'futex', 'epoll_pwait', 'rseq', 'pidfd_open', 'arch_prctl', 'modify_ldt', 'chroot']) {
      assert.ok(allowed(p, s), `${s} allowed`);
    }
    for (const s of ['mount', 'umount2', 'unshare', 'setns', 'reboot', 'init_module', 'kexec_load', 'keyctl', 'add_key', 'bpf', 'perf_event_open', 'open_by_handle_at', 'iopl', 'settimeofday', 'swapon', 'userfaultfd', 'io_uring_setup']) {
      assert.equal(rulesFor(p, s).length, 0, `${s} not allowed`);
    }
    for (const s of ['cacheflush', 's390_runtime_instr', 'riscv_flush_icache', 'swapcontext']) assert.equal(rulesFor(p, s).length, 0, `${s}: another architecture's`);
  });

  test('argument rules: socket without AF_ALG and AF_VSOCK; five personas; clone without namespace flags; clone3 ENOSYS', () => {
    const p = x64([...DEFAULT_CAPABILITIES]);
    assert.deepEqual(rulesFor(p, 'socket').map((r) => r.args), [
      [{ index: 0, value: 38, op: 'SCMP_CMP_LT' }], [{ index: 0, value: 39, op: 'SCMP_CMP_EQ' }], [{ index: 0, value: 40, op: 'SCMP_CMP_GT' }],
    ]);
    assert.deepEqual(rulesFor(p, 'personality').map((r) => r.args![0].value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
    assert.deepEqual(rulesFor(p, 'clone'), [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    assert.deepEqual(rulesFor(p, 'clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  });

  test('capabilities unlock their syscalls: CAP_SYS_ADMIN gives mount, unshare, clone and clone3 unconditionally', () => {
    const admin = x64([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
    for (const s of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'sethostname', 'fsopen']) assert.ok(allowed(admin, s), s);
    assert.ok(!rulesFor(admin, 'clone3').some((r) => r.action === 'SCMP_ACT_ERRNO'), 'no ENOSYS for clone3');
    assert.ok(!rulesFor(admin, 'clone').some((r) => r.args?.length), 'no masked clone rule');
    const all = x64([...CAPABILITIES]);
    for (const s of ['reboot', 'init_module', 'finit_module', 'acct', 'kcmp', 'iopl', 'ioperm', 'settimeofday', 'clock_settime', 'vhangup', 'mbind', 'syslog', 'bpf', 'perf_event_open', 'open_by_handle_at']) {
      assert.ok(allowed(all, s), s);
    }
    const none = x64([]);
    assert.ok(!allowed(none, 'chroot'), 'chroot needs CAP_SYS_CHROOT');
  });

  test('ptrace and process_vm_* from kernel 4.8 on, or with CAP_SYS_PTRACE', () => {
    assert.ok(allowed(x64([], '4.8.0'), 'ptrace'));
    assert.ok(allowed(x64([], '5.10.0-1-amd64'), 'process_vm_readv'));
    assert.ok(!allowed(x64([], '4.4.0-210-generic'), 'ptrace'));
    assert.ok(allowed(x64(['CAP_SYS_PTRACE'], '4.4.0'), 'ptrace'));
    assert.ok(!allowed(x64([], '4.4.0'), 'kcmp') && allowed(x64(['CAP_SYS_PTRACE'], '6.1.0'), 'kcmp'));
  });

  test('other architectures: aarch64 with arm and its own calls; s390x passes clone flags second; no family for ppc64le', () => {
    const arm = defaultSeccompProfile({ capabilities: [...DEFAULT_CAPABILITIES], arch: 'arm64', kernelRelease: '6.1.0' });
    assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    assert.ok(allowed(arm, 'cacheflush') && allowed(arm, 'set_tls'));
    assert.ok(!allowed(arm, 'arch_prctl') && !allowed(arm, 'modify_ldt'));
    const s390 = defaultSeccompProfile({ capabilities: [...DEFAULT_CAPABILITIES], arch: 's390x', kernelRelease: '6.1.0' });
    assert.deepEqual(s390.architectures, ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390']);
    assert.deepEqual(rulesFor(s390, 'clone').map((r) => r.args![0].index), [1]);
    const ppc = defaultSeccompProfile({ capabilities: [], arch: 'ppc64le', kernelRelease: '6.1.0' });
    assert.equal(ppc.architectures, undefined);
    assert.ok(allowed(ppc, 'swapcontext'));
    assert.deepEqual(defaultSeccompProfile({ capabilities: [], arch: 'amd64', kernelRelease: '6.1.0' }), x64([]), 'Go\'s name for x86_64');
  });

  test('the runtime compiles it for this host', () => {
    for (const caps of [[...DEFAULT_CAPABILITIES], [...CAPABILITIES], []]) {
      const c = compileSeccomp(defaultSeccompProfile({ capabilities: caps }));
      assert.ok(c.filter.length / 8 > 100 && c.filter.length / 8 < 4096);
    }
  });
});

describe('docker\'s seccomp profile format', () => {
  const host = { capabilities: ['CAP_CHOWN', 'CAP_KILL'], arch: 'x64', kernelRelease: '5.15.0' };

  test('archMap picks the native family; includes and excludes filter by arch, capability and kernel', () => {
    const p = loadSeccompProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      archMap: [
        { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
        { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] },
      ],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', comment: 'kept' },
        { name: 'close', action: 'SCMP_ACT_ALLOW' },
        { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
        { names: ['cacheflush'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
        { names: ['chown'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_CHOWN', 'CAP_KILL'] } },
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] } },
        { names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, excludes: { caps: ['CAP_SYS_ADMIN', 'CAP_KILL'] } },
        { names: ['tkill'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN'] }, args: [{ index: 1, value: 9, op: 'SCMP_CMP_NE' }] },
        { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.16' } },
        { names: ['kcmp'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.15' } },
        { names: ['bpf'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.0' } },
      ],
    }), host)!;
    assert.deepEqual(p, {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        { names: ['close'], action: 'SCMP_ACT_ALLOW' },
        { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
        { names: ['chown'], action: 'SCMP_ACT_ALLOW' },
        { names: ['tkill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 9, op: 'SCMP_CMP_NE' }] },
        { names: ['kcmp'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    assert.ok(compileSeccomp(p).filter.length > 0, 'the result is a valid OCI profile');
  });

  test('an OCI profile passes through; an empty one means no filter', () => {
    const oci: Seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    };
    assert.deepEqual(loadSeccompProfile(oci, host), oci);
    assert.equal(loadSeccompProfile('{}', host), undefined);
    assert.equal(loadSeccompProfile({ syscalls: [] } as never, host), undefined);
  });

  test('moby\'s errors', () => {
    assert.throws(() => loadSeccompProfile('{"defaultAction": ', host), (e: Error) => e instanceof SeccompProfileError && /^Decoding seccomp profile failed: /.test(e.message));
    assert.throws(() => loadSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], archMap: [{ architecture: 'SCMP_ARCH_X86_64' }] }, host),
      /both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'/);
    assert.throws(() => loadSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' }] }, host),
      /both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'/);
    assert.throws(() => loadSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4' } }] } as never, host),
      /invalid kernel version: "4", expected "<kernel>.<major>"/);
  });
});

describe('seccomp in the spec', () => {
  const spec = (o: Partial<RunOptions>) => buildSpec(image(), { id: ID, rootfs: '/nonexistent', cmd: ['sh'], ...o });

  test('default: docker\'s profile for the container\'s capabilities; builtin is the same; unconfined and --privileged: none', () => {
    assert.deepEqual(spec({}).linux!.seccomp, defaultSeccompProfile({ capabilities: [...DEFAULT_CAPABILITIES] }));
    assert.deepEqual(spec({ seccomp: 'builtin' }).linux!.seccomp, spec({}).linux!.seccomp);
    assert.ok(allowed(spec({ capAdd: ['SYS_ADMIN'] }).linux!.seccomp!, 'mount'), '--cap-add SYS_ADMIN allows mount');
    assert.ok(!allowed(spec({ capDrop: ['SYS_CHROOT'] }).linux!.seccomp!, 'chroot'), '--cap-drop SYS_CHROOT removes chroot');
    assert.equal(spec({ seccomp: 'unconfined' }).linux!.seccomp, undefined);
    assert.equal(spec({ privileged: true }).linux!.seccomp, undefined);
  });

  test('a profile\'s JSON text, as the docker CLI sends it, is converted; a bad one is a RunOptionsError', () => {
    const s = spec({ seccomp: JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'mkdir', action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_SYS_ADMIN'] } }] }) });
    assert.deepEqual(s.linux!.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    assert.throws(() => spec({ seccomp: 'not json' }), (e: Error) => e instanceof RunOptionsError && /Decoding seccomp profile failed/.test(e.message));
  });
});

describe('devices', () => {
  test('--device forms as the docker CLI parses them', () => {
    assert.deepEqual(parseDeviceSpec('/dev/fuse'), { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' });
    assert.deepEqual(parseDeviceSpec('/dev/fuse:r'), { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'r' });
    assert.deepEqual(parseDeviceSpec('/dev/sda:/dev/xvda'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'rwm' });
    assert.deepEqual(parseDeviceSpec('/dev/sda:/dev/xvda:rw'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'rw' });
    assert.throws(() => parseDeviceSpec('/dev/sda:/dev/xvda:rwx'), /bad mode specified: rwx/);
    assert.throws(() => parseDeviceSpec('/dev/sda:/dev/xvda:rr'), /bad mode specified: rr/);
    assert.throws(() => parseDeviceSpec('/dev/sda:xvda'), /xvda is not an absolute path/);
    assert.throws(() => parseDeviceSpec('a:b:c:d'), /bad format for path: a:b:c:d/);
    assert.throws(() => parseDeviceSpec(':/dev/x'), /bad format for path/);
  });

  test('a host device: its type, numbers, mode and owner from lstat; a symlink to one is followed; docker\'s errors', () => {
    const st = lstatSync('/dev/null');
    assert.deepEqual(devicesFromPath({ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'r' }), {
      devices: [{ type: 'c', path: '/dev/mynull', major: 1, minor: 3, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid }],
      rules: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }],
    });
    assert.throws(() => devicesFromPath({ PathOnHost: '/dev/nope' }),
      (e: Error) => e instanceof RunOptionsError && e.message === 'error gathering device information while adding custom device "/dev/nope": no such file or directory');
    assert.throws(() => devicesFromPath({ PathOnHost: '/etc/hostname' }),
      /error gathering device information while adding custom device "\/etc\/hostname": not a device node/);
  });

  test('a directory adds every device node under it, at the container path', () => {
    const got = devicesFromPath({ PathOnHost: '/dev/pts', PathInContainer: '/dev/hostpts', CgroupPermissions: 'rw' });
    assert.ok(got.devices.some((d) => d.path === '/dev/hostpts/ptmx' && d.type === 'c' && d.major === 5 && d.minor === 2));
    assert.ok(got.rules.every((r) => r.access === 'rw'));
  });

  test('--device-cgroup-rule', () => {
    assert.deepEqual(parseDeviceCgroupRule('c 1:3 rwm'), { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    assert.deepEqual(parseDeviceCgroupRule('b *:* r'), { allow: true, type: 'b', major: null, minor: null, access: 'r' });
    assert.deepEqual(parseDeviceCgroupRule('a 7:* mw'), { allow: true, type: 'a', major: 7, minor: null, access: 'mw' });
    for (const bad of ['c 1:3', 'x 1:3 r', 'c 1:3 rwmx', 'c1:3 r', ' c 1:3 r']) {
      assert.throws(() => parseDeviceCgroupRule(bad), (e: Error) => e.message === `invalid device cgroup rule format: '${bad}'`);
    }
  });

  test('in the spec: linux.devices and rules after docker\'s defaults; --privileged: every host device, allow all', () => {
    const s = buildSpec(image(), {
      id: ID, rootfs: '/nonexistent', cmd: ['sh'],
      devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }], deviceCgroupRules: ['c 42:* rmw'],
    });
    assert.deepEqual(s.linux!.devices!.map((d) => d.path), ['/dev/mynull']);
    const rules = s.linux!.resources!.devices!;
    assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
    assert.deepEqual(rules.slice(-2), [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: true, type: 'c', major: 42, minor: null, access: 'rmw' }]);
    assert.equal(buildSpec(image(), { id: ID, rootfs: '/nonexistent', cmd: ['sh'] }).linux!.devices, undefined);

    const p = buildSpec(image(), { id: ID, rootfs: '/nonexistent', cmd: ['sh'], privileged: true, devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/other' }] });
    const paths = p.linux!.devices!.map((d) => d.path);
    for (const d of ['/dev/null', '/dev/zero', '/dev/full', '/dev/other']) assert.ok(paths.includes(d), d);
    assert.ok(!paths.some((x) => x.startsWith('/dev/pts/') || x === '/dev/console'));
    assert.deepEqual(p.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
    assert.throws(() => buildSpec(image(), { id: ID, rootfs: '/nonexistent', cmd: ['sh'], devices: [{ PathOnHost: '/dev/nope' }] }), /custom device "\/dev\/nope": no such file/);
  });
});

describe('--init', () => {
  test('bind-mounted read-only at /sbin/docker-init, in front of the args with --', () => {
    const s = buildSpec(image({ Entrypoint: ['/entry'], Cmd: ['a'] }), { id: ID, rootfs: '/nonexistent', init: INIT_BINARY });
    assert.deepEqual(s.process!.args, [INIT_PATH, '--', '/entry', 'a']);
    assert.equal(INIT_PATH, '/sbin/docker-init');
    assert.deepEqual(s.mounts!.at(-1), { destination: '/sbin/docker-init', type: 'bind', source: INIT_BINARY, options: ['bind', 'ro'] });
    assert.throws(() => buildSpec(image(), { id: ID, rootfs: '/x', cmd: ['sh'], init: 'dist/berth-init' }), RunOptionsError);
  });
});

// ---------------------------------------------------------------------------------------------
// For real, under the runtime
// ---------------------------------------------------------------------------------------------

async function runSpec(b: Bundle, o: Partial<RunOptions>, script: string): Promise<{ code: number | null; out: string; err: string }> {
  b.spec = buildSpec(image(), { id: ID, rootfs: b.rootfs, cmd: ['sh', '-c', script], ...o }) as unknown as BundleSpec;
  b.writeConfig();
  const r = await b.runContainer(b.newId('ocisec'));
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe('enforced in a container', () => {
  test('default profile: filter on, unshare refused with EPERM, busybox works; unconfined: unshare -U works with the default capabilities', async () => {
    await withBundle({}, async (b) => {
      const def = await runSpec(b, {}, [
        'grep "^Seccomp:" /proc/self/status',
        'unshare -U true 2>&1 && echo userns-ok || echo userns-refused',
        'echo hi > /tmp/f && cat /tmp/f && ls / >/dev/null && ps >/dev/null && echo basics-ok',
        'sh -c "exit 3"; echo "child exit $?"',
      ].join('; '));
      assert.equal(def.code, 0, def.err);
      const lines = def.out.trim().split('\n');
      assert.match(lines[0], /^Seccomp:\s+2$/);
      assert.match(def.out, /Operation not permitted/);
      assert.ok(lines.includes('userns-refused'), def.out);
      assert.ok(lines.includes('hi') && lines.includes('basics-ok') && lines.includes('child exit 3'), def.out);

      const unconfined = await runSpec(b, { seccomp: 'unconfined' }, 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo userns-ok');
      assert.equal(unconfined.code, 0, unconfined.err);
      assert.match(unconfined.out, /^Seccomp:\s+0$/m);
      assert.match(unconfined.out, /^userns-ok$/m);
    });
  });

  test('the default profile follows the capabilities: --cap-add SYS_ADMIN may mount; without it mount is refused', async () => {
    await withBundle({}, async (b) => {
      const plain = await runSpec(b, {}, 'mount -t tmpfs t /mnt 2>&1 && echo mounted || echo refused');
      assert.match(plain.out, /refused/);
      const admin = await runSpec(b, { capAdd: ['SYS_ADMIN'] }, 'grep "^Seccomp:" /proc/self/status; mount -t tmpfs t /mnt && grep -c " /mnt tmpfs" /proc/mounts');
      assert.equal(admin.code, 0, admin.err + admin.out);
      assert.match(admin.out, /^Seccomp:\s+2$/m);
      assert.match(admin.out, /^1$/m);
    });
  });

  test('a profile in docker\'s format: its rules apply (mkdir refused with EACCES) and nothing else is', async () => {
    await withBundle({}, async (b) => {
      const profile = JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
          { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_KILL'] } },
        ],
      });
      const r = await runSpec(b, { seccomp: profile }, 'mkdir /tmp/d 2>&1; touch /tmp/f && rm /tmp/f && echo files-ok');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Permission denied/);
      assert.match(r.out, /^files-ok$/m);
    });
  });

  test('--device with r only: the node exists with the host\'s numbers, opening it to read works, to write is refused by the device cgroup', async () => {
    // A device docker does not allow by default, whose open has no side effects.
    const candidates = ['/dev/fuse', '/dev/loop-control', '/dev/cpu_dma_latency'];
    const host = candidates.find((p) => existsSync(p));
    assert.ok(host, `needs one of ${candidates.join(', ')} on the host`);
    const { rdev } = lstatSync(host, { bigint: true });
    const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
    const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
    const want = `${major.toString(16)}:${minor.toString(16)}`;
    await withBundle({}, async (b) => {
      const script = [
        'stat -c "%t:%T %F" /dev/mydev',
        '(exec 3</dev/mydev) && echo read-open',
        '(exec 3>/dev/mydev) 2>&1 && echo write-open || echo write-refused',
      ].join('; ');
      const r = await runSpec(b, { devices: [parseDeviceSpec(`${host}:/dev/mydev:r`)] }, script);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out.trim().split('\n')[0], `${want} character special file`);
      assert.match(r.out, /^read-open$/m);
      assert.match(r.out, /^write-refused$/m);
      assert.match(r.out, /Operation not permitted/);
      const rw = await runSpec(b, { devices: [parseDeviceSpec(`${host}:/dev/mydev`)] }, script);
      assert.match(rw.out, /^write-open$/m, 'rwm by default');
      const none = await runSpec(b, {}, 'test -e /dev/mydev && echo present || echo absent');
      assert.match(none.out, /^absent$/m);
    });
  });

  test('--privileged: host devices, every capability, no seccomp, no masked paths, writable /sys', async () => {
    await withBundle({}, async (b) => {
      const hostOnly = ['/dev/kmsg', '/dev/mem', '/dev/loop-control', '/dev/fuse'].find((p) => existsSync(p))!;
      assert.ok(hostOnly, 'a host device that docker does not give by default');
      const script = [
        'grep -E "^(Seccomp|CapEff):" /proc/self/status',
        `test -e ${hostOnly} && echo has-host-device || echo no-host-device`,
        'grep " /sys sysfs " /proc/mounts | cut -d" " -f4 | cut -d, -f1',
        'cat /proc/keys >/dev/null 2>&1; wc -c < /proc/keys',
      ].join('; ');
      // This host may have a reduced bounding set (e.g. a sandbox without CAP_SYS_RESOURCE):
      // a container cannot get more than that, so the spec's "every capability" is cut to it.
      const hostCaps = CAPABILITIES.filter(boundingHas);
      b.spec = buildSpec(image(), { id: ID, rootfs: b.rootfs, cmd: ['sh', '-c', script], privileged: true }) as unknown as BundleSpec;
      for (const set of ['bounding', 'effective', 'permitted'] as const) b.spec.process.capabilities![set] = b.spec.process.capabilities![set]!.filter((c) => hostCaps.includes(c));
      b.writeConfig();
      const pr = await b.runContainer(b.newId('ocisec'));
      const p = { code: pr.code, out: pr.stdout, err: pr.stderr };
      assert.equal(p.code, 0, p.err);
      const st = parseStatus(p.out);
      assert.equal(st.Seccomp, '0');
      assert.equal(st.CapEff, capsHex(hostCaps));
      assert.ok(hostCaps.includes('CAP_SYS_ADMIN'));
      assert.match(p.out, /^has-host-device$/m);
      assert.match(p.out, /^rw$/m);
      const n = await runSpec(b, {}, script);
      assert.equal(n.code, 0, n.err);
      assert.equal(parseStatus(n.out).Seccomp, '2');
      assert.match(n.out, /^no-host-device$/m);
      assert.match(n.out, /^ro$/m);
      assert.match(n.out, /^0$/m, '/proc/keys masked');
    });
  });

  test('--init: pid 1 is docker-init, orphans are reaped, signals are forwarded, the exit status is passed on', async (t) => {
    if (!existsSync(INIT_BINARY)) assert.fail(`${INIT_BINARY} is missing: run npm run build`);
    await withBundle({}, async (b) => {
      const ps = await runSpec(b, { init: INIT_BINARY }, [
        '(sleep 2 &)',
        'ps -o pid,ppid,comm',
        'sleep 3',
        'echo ---',
        'ps -o pid,stat,comm',
      ].join('; '));
      assert.equal(ps.code, 0, ps.err);
      const [before, after] = ps.out.split('---\n');
      const rows = before.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      assert.deepEqual(rows.find((r) => r[0] === '1')?.[2], 'docker-init', ps.out);
      // The orphaned sleep (busybox may show it as "exe": an applet re-executed through /proc/self/exe).
      const orphan = rows.filter((r) => !['docker-init', 'sh', 'ps'].includes(r[2]));
      assert.equal(orphan.length, 1, ps.out);
      assert.equal(orphan[0][1], '1', `the orphan was given to the init:\n${ps.out}`);
      const left = after.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      assert.deepEqual(left.map((r) => r[2]).sort(), ['docker-init', 'ps'], `the orphan exited and was reaped (no zombie):\n${after}`);
      assert.ok(!left.some((r) => r[1].startsWith('Z')), after);

      const term = await runSpec(b, { init: INIT_BINARY }, 'trap "echo got-TERM; exit 5" TERM; kill -TERM 1; sleep 1; sleep 1; echo not-signalled');
      assert.equal(term.code, 5, term.out + term.err);
      assert.match(term.out, /^got-TERM$/m);

      const killed = await runSpec(b, { init: INIT_BINARY }, 'kill -KILL $$');
      assert.equal(killed.code, 137);
      const exited = await runSpec(b, { init: INIT_BINARY }, 'exit 42');
      assert.equal(exited.code, 42);
      const missing = await runSpec(b, { init: INIT_BINARY, entrypoint: ['/no/such/prog'] }, '');
      assert.equal(missing.code, 127);
      assert.match(missing.err, /berth-init: exec \/no\/such\/prog failed: No such file or directory/);
      t.diagnostic('init checks done');
    });
  });
});
