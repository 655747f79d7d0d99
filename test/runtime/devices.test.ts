// /dev: the default devices and symlinks, and linux.devices.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ALICE, withBundle } from '../helpers/bundle.ts';

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
