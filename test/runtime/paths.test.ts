// linux.maskedPaths and linux.readonlyPaths, checked from inside.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { explain, mountAt, parseMountInfo, withBundle } from '../helpers/bundle.ts';

const populate = (rootfs: string): void => {
  mkdirSync(join(rootfs, 'masked-dir'));
  writeFileSync(join(rootfs, 'masked-dir', 'secret'), 'top secret\n');
  writeFileSync(join(rootfs, 'masked-file'), 'hidden content\n');
  mkdirSync(join(rootfs, 'ro-dir'));
  writeFileSync(join(rootfs, 'ro-dir', 'file'), 'original\n');
  mkdirSync(join(rootfs, 'rw-dir'));
};

test('masked files read empty and masked directories look empty', async () => {
  await withBundle({ populate }, async (b) => {
    const out = await b.output([
      'echo "file:$(cat /masked-file | wc -c)"',
      'echo "dir:$(ls -A /masked-dir | wc -l)"',
      'cat /masked-dir/secret 2>/dev/null && echo READ-SECRET',
      'echo "timer_list:$(cat /proc/timer_list | wc -c)"',
      'echo "sysfw:$(ls -A /sys/firmware | wc -l)"',
      'echo "kcore:$(cat /proc/kcore 2>/dev/null | head -c 16 | wc -c)"',
      'echo ran',
    ].join('\n'), (s) => {
      s.linux.maskedPaths = [...(s.linux.maskedPaths ?? []), '/masked-file', '/masked-dir', '/does/not/exist'];
    });
    assert.equal(out, 'file:0\ndir:0\ntimer_list:0\nsysfw:0\nkcore:0\nran\n');
    // The rootfs itself is untouched.
    assert.equal(readFileSync(join(b.rootfs, 'masked-dir', 'secret'), 'utf8'), 'top secret\n');
    assert.equal(readFileSync(join(b.rootfs, 'masked-file'), 'utf8'), 'hidden content\n');
  });
  // Sanity: on the host these are not empty, so the check above can fail.
  assert.ok(readFileSync('/proc/timer_list').length > 0);
  assert.ok(readdirSync('/sys/firmware').length > 0);
});

test('without masking the same paths are readable (control)', async () => {
  await withBundle({ populate }, async (b) => {
    const out = await b.output('cat /masked-file; ls /masked-dir; [ -n "$(head -c 1 /proc/timer_list)" ] && echo TIMERS', (s) => { s.linux.maskedPaths = []; });
    assert.equal(out, 'hidden content\nsecret\nTIMERS\n');
  });
});

test('masked paths cannot be unmasked by writing through them', async () => {
  await withBundle({ populate }, async (b) => {
    const r = await b.exec('echo evil > /masked-file; touch /masked-dir/new; true', (s) => {
      s.root.readonly = false;
      s.linux.maskedPaths = ['/masked-file', '/masked-dir'];
    });
    assert.equal(r.code, 0, explain(r));
    assert.equal(readFileSync(join(b.rootfs, 'masked-file'), 'utf8'), 'hidden content\n', 'the masked file is not written');
    assert.ok(!existsSync(join(b.rootfs, 'masked-dir', 'new')), 'nothing lands in the masked dir');
  });
});

test('/proc/kcore is masked when the kernel has it', { skip: !existsSync('/proc/kcore') && 'this kernel has no /proc/kcore' }, async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('stat -c %s /proc/kcore');
    assert.equal(out.trim(), '0', 'masked /proc/kcore has size 0 (host size is huge)');
    assert.ok(statSync('/proc/kcore').size > 0);
  });
});

test('readonly paths reject writes with EROFS, the rest of the rootfs stays writable', async () => {
  await withBundle({ populate }, async (b) => {
    const r = await b.exec([
      'echo x 2>&1 > /ro-dir/file | grep -q "Read-only" && echo RO-FILE',
      'touch /ro-dir/new 2>&1 | grep -q "Read-only" && echo RO-NEW',
      'cat /ro-dir/file',
      'echo x > /rw-dir/new && echo RW',
      'echo 1 2>&1 > /proc/sys/kernel/domainname | grep -q "Read-only" && echo RO-PROCSYS',
      'echo ===; cat /proc/self/mountinfo',
    ].join('\n'), (s) => {
      s.root.readonly = false;
      s.linux.readonlyPaths = [...(s.linux.readonlyPaths ?? []), '/ro-dir', '/does/not/exist'];
    });
    assert.equal(r.code, 0, explain(r));
    const [out, mi] = r.stdout.split('===\n');
    assert.equal(out, 'RO-FILE\nRO-NEW\noriginal\nRW\nRO-PROCSYS\n');
    const mounts = parseMountInfo(mi);
    for (const p of ['/ro-dir', '/proc/sys', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sysrq-trigger']) {
      const m = mountAt(mounts, p);
      if (p !== '/ro-dir' && !existsSync(p)) continue;
      assert.ok(m, `${p} is a mount point`);
      assert.ok(m.options.includes('ro'), `${p} is ro: ${m.options}`);
    }
    assert.equal(readFileSync(join(b.rootfs, 'ro-dir', 'file'), 'utf8'), 'original\n');
    assert.equal(readFileSync(join(b.rootfs, 'rw-dir', 'new'), 'utf8'), 'x\n');
  });
});
