// /dev: the default devices and symlinks, and linux.devices.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ALICE, DEFAULT_CAPS, type Spec, deviation, explain, withBundle } from '../helpers/bundle.ts';

const DEFAULT_CHAR_DEVICES: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** `stat` prints major/minor in hex (%t/%T); this prints them in decimal. */
const STAT = (p: string): string => `stat -c "%n|%F|%t|%T|%a|%u|%g" ${p} | awk -F'|' '{ printf "%s|%s|%d|%d|%s|%s|%s\\n", $1, $2, "0x"$3, "0x"$4, $5, $6, $7 }'`;

function parseStat(line: string): { name: string; type: string; major: number; minor: number; mode: string; uid: number; gid: number } {
  const [name, type, major, minor, mode, uid, gid] = line.split('|');
  return { name, type, major: Number(major), minor: Number(minor), mode, uid: Number(uid), gid: Number(gid) };
}

test('default devices exist with the right numbers and mode 0666', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output(DEFAULT_CHAR_DEVICES.map(([n]) => STAT(`/dev/${n}`)).join('\n'));
    const lines = out.trim().split('\n').map(parseStat);
    for (const [i, [name, major, minor]] of DEFAULT_CHAR_DEVICES.entries()) {
      const st = lines[i];
      assert.equal(st.name, `/dev/${name}`);
      assert.equal(st.type, 'character special file', `${name} is a char device`);
      assert.deepEqual([st.major, st.minor], [major, minor], `${name} is ${major}:${minor}`);
      assert.equal(st.mode, '666', `${name} mode`);
    }
  });
});

test('default /dev symlinks, /dev/pts, /dev/shm and /dev/ptmx', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output([
      'for l in fd stdin stdout stderr; do echo "$l -> $(readlink /dev/$l)"; done',
      'test -d /dev/pts && echo PTS-DIR',
      'test -d /dev/shm && echo SHM-DIR',
      'if [ -L /dev/ptmx ]; then echo "ptmx -> $(readlink /dev/ptmx)"; else stat -c "ptmx %F %t:%T" /dev/ptmx; fi',
      'test -c /dev/pts/ptmx && echo PTS-PTMX',
    ].join('\n'));
    const lines = out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['fd -> /proc/self/fd', 'stdin -> /proc/self/fd/0', 'stdout -> /proc/self/fd/1', 'stderr -> /proc/self/fd/2']);
    assert.equal(lines[4], 'PTS-DIR');
    assert.equal(lines[5], 'SHM-DIR');
    assert.ok(['ptmx -> pts/ptmx', 'ptmx -> /dev/pts/ptmx', 'ptmx character special file 5:2'].includes(lines[6]), lines[6]);
    assert.equal(lines[7], 'PTS-PTMX');
  });
});

test('default devices work for an unprivileged user despite a deny-all device cgroup rule', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output([
      'echo x > /dev/null && echo NULL-OK',
      'head -c 4 /dev/zero | od -An -tx1 | tr -d " \\n"; echo',
      'echo x 2>&1 > /dev/full | grep -q "No space" && echo FULL-ENOSPC',
      'head -c 16 /dev/urandom | wc -c',
      'head -c 16 /dev/random | wc -c',
    ].join('\n'), (s) => { s.process.user = { ...ALICE }; });
    assert.equal(out, 'NULL-OK\n00000000\nFULL-ENOSPC\n16\n16\n');
  });
});

test('linux.devices: char, block and fifo nodes with mode, uid and gid', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output([STAT('/dev/berth-null'), STAT('/dev/berth/nested/loop'), 'stat -c "%n|%F|%a" /dev/berth-fifo'].join('\n'), (s) => {
      s.linux.devices = [
        { path: '/dev/berth-null', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 50 },
        { path: '/dev/berth/nested/loop', type: 'b', major: 7, minor: 200, fileMode: 0o600, uid: 0, gid: 0 },
        { path: '/dev/berth-fifo', type: 'p', fileMode: 0o620 },
      ];
    });
    const [c, blk, fifo] = out.trim().split('\n');
    assert.deepEqual(parseStat(c), { name: '/dev/berth-null', type: 'character special file', major: 1, minor: 3, mode: '640', uid: 1000, gid: 50 });
    assert.deepEqual(parseStat(blk), { name: '/dev/berth/nested/loop', type: 'block special file', major: 7, minor: 200, mode: '600', uid: 0, gid: 0 });
    assert.equal(fifo, '/dev/berth-fifo|fifo|620');
  });
  assert.ok(!existsSync('/dev/berth-null') && !existsSync('/dev/berth-fifo'), 'nothing is created in the host /dev');
});

// /dev/kmsg (c 1:11) is not among the default allowed devices: opening it for reading has no side
// effects, and with CAP_SYSLOG only the device cgroup can refuse it ("Operation not permitted").
const KMSG = { path: '/dev/berth-kmsg', type: 'c', major: 1, minor: 11 };
const OPEN_KMSG = 'if exec 3</dev/berth-kmsg; then echo OPEN; fi';
const withSyslog = (s: Spec): void => {
  s.linux.devices = [{ ...KMSG }];
  for (const set of ['bounding', 'effective', 'permitted'] as const) s.process.capabilities![set] = [...DEFAULT_CAPS, 'CAP_SYSLOG'];
};

test('linux.devices creates a node; access to it is what linux.resources.devices allows (as runc and crun)', async () => {
  await withBundle({}, async (b) => {
    const denied = await b.exec(OPEN_KMSG, withSyslog);
    assert.doesNotMatch(denied.stdout, /OPEN/, explain(denied));
    assert.match(denied.stderr, /Operation not permitted/, explain(denied));
    const allowed = await b.output(OPEN_KMSG, (s) => {
      withSyslog(s);
      s.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'r' }] };
    });
    assert.equal(allowed, 'OPEN\n');
    // Letters other than r, w, m are left out, as runc does: "rwa" denies read and write.
    const rwa = await b.exec(OPEN_KMSG, (s) => {
      withSyslog(s);
      s.linux.resources = { devices: [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 11, access: 'rwa' }] };
    });
    assert.match(rwa.stderr, /Operation not permitted/, explain(rwa));
  });
});

test('update -r: new device rules apply to the running container, the default devices never denied meanwhile', {
  todo: deviation(['runc', 'crun'], 'runc\'s update ignores device rules'),
}, async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => {
      withSyslog(s);
      // Anything that fails to write /dev/null while the rules change is logged.
      s.process.args = ['sh', '-c', 'while :; do echo x > /dev/null || echo DENIED >> /dev/shm/log; done'];
    });
    const id = b.newId('devupd');
    await b.createAndStart(id);
    const probe = async (): Promise<string> => {
      const r = await b.run(['exec', id, 'sh', '-c', OPEN_KMSG]);
      return r.stdout.includes('OPEN') ? 'open' : /Operation not permitted/.test(r.stderr) ? 'denied' : `unexpected: ${explain(r)}`;
    };
    const setRules = async (devices: unknown[]): Promise<void> => {
      const r = await b.run(['update', '-r', '-', id], { input: JSON.stringify({ devices }) });
      assert.equal(r.code, 0, explain(r));
    };
    const allowKmsg = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'r' }];
    assert.equal(await probe(), 'denied');
    for (let i = 0; i < 3; i++) {
      await setRules(allowKmsg);
      assert.equal(await probe(), 'open', `round ${i}: allowed after the update`);
      await setRules([{ allow: false, access: 'rwm' }]);
      assert.equal(await probe(), 'denied', `round ${i}: denied again`);
    }
    const log = await b.run(['exec', id, 'sh', '-c', 'cat /dev/shm/log 2>/dev/null; echo END']);
    assert.equal(log.stdout, 'END\n', `writes to /dev/null failed during the updates: ${explain(log)}`);
  });
});
