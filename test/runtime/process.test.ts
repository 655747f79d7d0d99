// process: args, env, cwd, user, umask, capabilities, rlimits, noNewPrivileges, oomScoreAdj.
import assert from 'node:assert/strict';
import { chownSync, chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  ALICE, DEFAULT_CAPS, STAFF_GID, type Spec, capsHex, explain, hostHasCap, parseStatus, withBundle,
} from '../helpers/bundle.ts';

const CAP_KEYS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'] as const;

function capsOf(statusText: string): Record<(typeof CAP_KEYS)[number], string> {
  const st = parseStatus(statusText);
  return Object.fromEntries(CAP_KEYS.map((k) => [k, st[k]])) as Record<(typeof CAP_KEYS)[number], string>;
}

test('args are passed verbatim, without a shell', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output(['sh', '-c', 'for a in "$@"; do printf "[%s]" "$a"; done', 'argv0', 'a b', '', 'c"d', '$HOME', '*', "e'f"]);
    assert.equal(out, '[a b][][c"d][$HOME][*][e\'f]');
  });
});

test('args[0] is looked up in the container PATH', async () => {
  await withBundle({}, async (b) => {
    assert.equal(await b.output(['echo', 'found']), 'found\n');
    assert.equal(await b.output(['/bin/echo', 'absolute']), 'absolute\n');
    const missing = await b.exec(['berth-no-such-binary']);
    assert.notEqual(missing.code, 0, 'a missing executable fails');
    assert.ok(missing.stderr.trim().length > 0);
  });
});

test('env is exactly the configured environment (nothing from the runtime\'s)', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec(['env'], (s) => {
      s.process.env = ['PATH=/bin:/usr/bin', 'FOO=bar=baz', 'EMPTY=', 'SPACED=a b  c', 'HOME=/home/test'];
    }, { env: { ...process.env, BERTH_LEAK_CHECK: 'leaked' } });
    assert.equal(r.code, 0, explain(r));
    const lines = r.stdout.trim().split('\n').sort();
    assert.deepEqual(lines, ['EMPTY=', 'FOO=bar=baz', 'HOME=/home/test', 'PATH=/bin:/usr/bin', 'SPACED=a b  c']);
  });
});

test('env: a name given twice is set once, to its last value (as runc); an empty HOME counts as unset', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec(['env'], (s) => {
      s.process.env = ['ONE=two', 'PATH=/bin:/usr/bin', 'ONE=', 'TWO=a', 'HOME=', 'TWO=b'];
    });
    assert.equal(r.code, 0, explain(r));
    // Kept where the name last appears, as runc does.
    assert.deepEqual(r.stdout.trim().split('\n'), ['PATH=/bin:/usr/bin', 'ONE=', 'TWO=b', 'HOME=/root']);
  });
});

test('HOME, when the env lacks it, is the user\'s home from the image\'s /etc/passwd (as runc sets it)', async () => {
  await withBundle({}, async (b) => {
    const home = (user: { uid: number; gid: number }) => b.output(['sh', '-c', 'echo "$HOME"'], (s) => {
      s.process.env = ['PATH=/bin:/usr/bin'];
      s.process.user = user;
    });
    assert.equal(await home({ uid: 0, gid: 0 }), '/root\n');
    assert.equal(await home(ALICE), '/home/alice\n');
    assert.equal(await home({ uid: 4242, gid: 4242 }), '/\n', 'a uid without a passwd entry gets /');
  });
});

test('cwd is the working directory', async () => {
  await withBundle({}, async (b) => {
    assert.equal(await b.output(['pwd'], (s) => { s.process.cwd = '/home/alice'; }), '/home/alice\n');
    assert.equal(await b.output(['pwd'], (s) => { s.process.cwd = '/'; }), '/\n');
  });
});

test('user: uid, gid and additionalGids, exactly', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('grep -E "^(Uid|Gid|Groups):" /proc/self/status; id', (s) => {
      s.process.user = { uid: ALICE.uid, gid: ALICE.gid, additionalGids: [STAFF_GID, 2000] };
    });
    const st = parseStatus(out);
    assert.equal(st.Uid.split(/\s+/).join(' '), '1000 1000 1000 1000', 'real, effective, saved, fs uid');
    assert.equal(st.Gid.split(/\s+/).join(' '), '1000 1000 1000 1000');
    assert.deepEqual(st.Groups.split(/\s+/).filter(Boolean).map(Number).sort((a, c) => a - c), [STAFF_GID, 2000]);
    assert.match(out, /uid=1000\(alice\) gid=1000\(alice\)/);
  });
});

test('a non-root user can reopen its own stdout and stderr (as under runc)', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('echo to-stdout >> /dev/stdout && echo to-stderr >> /dev/stderr && echo REOPEN-OK', (s) => {
      s.process.user = { uid: ALICE.uid, gid: ALICE.gid };
    });
    // Only the outcome is checked: when stdout is a file, the reopened description and the
    // original one write at different offsets and may overwrite each other.
    assert.match(out, /REOPEN-OK/);
  });
});

test('user without additionalGids has no supplementary groups (not the runtime\'s)', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('grep -E "^(Uid|Gid|Groups):" /proc/self/status', (s) => {
      s.process.user = { uid: 1234, gid: 4321 };
    });
    const st = parseStatus(out);
    assert.equal(st.Uid.split(/\s+/)[0], '1234');
    assert.equal(st.Gid.split(/\s+/)[0], '4321');
    assert.equal(st.Groups, '', `no supplementary groups, got "${st.Groups}"`);
  });
});

test('umask applies to files the process creates', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d', (s) => {
      s.root.readonly = false;
      s.process.user = { uid: 0, gid: 0, umask: 0o077 };
    });
    assert.equal(out, '0077\n600\n700\n');
  });
});

test('capabilities: the default set, exact masks', async () => {
  await withBundle({}, async (b) => {
    const caps = capsOf(await b.output('cat /proc/self/status'));
    const set = capsHex(DEFAULT_CAPS);
    // Ambient capabilities need the inheritable bit: the default spec has no inheritable set,
    // so the ambient set cannot be raised and stays empty.
    assert.deepEqual(caps, { CapInh: capsHex([]), CapPrm: set, CapEff: set, CapBnd: set, CapAmb: capsHex([]) });
  });
});

test('capabilities: all five sets for root', async () => {
  await withBundle({}, async (b) => {
    const names = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_NET_RAW', 'CAP_SETUID', 'CAP_SYS_CHROOT', 'CAP_MKNOD'];
    const caps = capsOf(await b.output('cat /proc/self/status', (s) => {
      s.process.capabilities = { bounding: names, effective: names, permitted: names, inheritable: names, ambient: names };
    }));
    const set = capsHex(names);
    assert.deepEqual(caps, { CapInh: set, CapPrm: set, CapEff: set, CapBnd: set, CapAmb: set });
  });
});

test('capabilities: distinct sets for a non-root user survive exec through ambient', async () => {
  await withBundle({}, async (b) => {
    const bounding = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_NET_BIND_SERVICE'];
    const kept = ['CAP_KILL', 'CAP_NET_RAW'];
    const caps = capsOf(await b.output('cat /proc/self/status', (s) => {
      s.process.user = { ...ALICE };
      s.process.capabilities = { bounding, effective: kept, permitted: kept, inheritable: kept, ambient: kept };
    }));
    // For a non-root user with no file capabilities, exec keeps exactly the ambient set in
    // permitted and effective (capabilities(7)); bounding and inheritable are kept as given.
    assert.deepEqual(caps, {
      CapInh: capsHex(kept), CapPrm: capsHex(kept), CapEff: capsHex(kept), CapBnd: capsHex(bounding), CapAmb: capsHex(kept),
    });
  });
});

test('capabilities: a non-root user without ambient capabilities has none after exec', async () => {
  await withBundle({}, async (b) => {
    const caps = capsOf(await b.output('cat /proc/self/status', (s) => {
      s.process.user = { ...ALICE };
      s.process.capabilities = { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS };
    }));
    const none = capsHex([]);
    assert.deepEqual(caps, { CapInh: none, CapPrm: none, CapEff: none, CapBnd: capsHex(DEFAULT_CAPS), CapAmb: none });
  });
});

test('capabilities are enforced: root without CAP_DAC_OVERRIDE cannot read another user\'s 0600 file', async () => {
  await withBundle({
    populate: (rootfs) => {
      writeFileSync(join(rootfs, 'secret'), 'alice only\n');
      chownSync(join(rootfs, 'secret'), ALICE.uid, ALICE.gid);
      chmodSync(join(rootfs, 'secret'), 0o600);
    },
  }, async (b) => {
    const denied = await b.exec('cat /secret');
    assert.notEqual(denied.code, 0, `default caps must not override file permissions: ${explain(denied)}`);
    const allowed = await b.output('cat /secret', (s) => {
      const caps = [...DEFAULT_CAPS, 'CAP_DAC_OVERRIDE'];
      s.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
    });
    assert.equal(allowed, 'alice only\n');
  });
});

test('rlimits: soft and hard values below the host hard limit', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('ulimit -S -n; ulimit -H -n; cat /proc/self/limits', (s) => {
      s.process.rlimits = [
        { type: 'RLIMIT_NOFILE', soft: 512, hard: 1000 },
        { type: 'RLIMIT_CORE', soft: 0, hard: 4096 },
        { type: 'RLIMIT_NPROC', soft: 5000, hard: 6000 },
      ];
    });
    const [soft, hard] = out.split('\n');
    assert.equal(soft, '512');
    assert.equal(hard, '1000');
    const row = (name: string): string[] => {
      const line = out.split('\n').find((l) => l.startsWith(name)) ?? '';
      return line.slice(name.length).trim().split(/\s+/).slice(0, 2);
    };
    assert.deepEqual(row('Max open files'), ['512', '1000']);
    assert.deepEqual(row('Max core file size'), ['0', '4096']);
    assert.deepEqual(row('Max processes'), ['5000', '6000']);
  });
});

test('rlimits: a hard limit above the runtime\'s own fails when it cannot be raised', {
  skip: hostHasCap('CAP_SYS_RESOURCE') && 'the host can raise hard limits (has CAP_SYS_RESOURCE)',
}, async () => {
  const hostHard = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!.trim().split(/\s+/)[4];
  await withBundle({}, async (b) => {
    const r = await b.exec('true', (s) => {
      s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: Number(hostHard) + 1 }];
    });
    assert.notEqual(r.code, 0, `raising the hard limit above ${hostHard} must fail: ${explain(r)}`);
    assert.ok(r.stderr.trim().length > 0);
  });
});

test('linux.personality: LINUX32 makes uname report a 32-bit machine, for the init and for exec', { skip: process.arch !== 'x64' && 'x86_64 only' }, async () => {
  await withBundle({}, async (b) => {
    const linux32 = (s: Spec) => { s.linux.personality = { domain: 'LINUX32', flags: [] }; };
    assert.equal(await b.output(['uname', '-m']), 'x86_64\n');
    assert.equal(await b.output(['uname', '-m'], linux32), 'i686\n');
    assert.equal(await b.output(['uname', '-m'], (s) => { s.linux.personality = { domain: 'LINUX' }; }), 'x86_64\n');
    // A flag from <linux/personality.h>: the persona value shows in /proc/self/personality (hex).
    assert.equal(await b.output(['cat', '/proc/self/personality'], (s) => { s.linux.personality = { domain: 'LINUX32', flags: ['ADDR_NO_RANDOMIZE'] }; }), '00040008\n');
    b.writeConfig((s) => { linux32(s); s.process.args = ['sleep', '600']; });
    const id = b.newId('pers');
    await b.createAndStart(id);
    const r = await b.run(['exec', id, 'uname', '-m']);
    assert.equal(r.stdout, 'i686\n', explain(r));
    const bad = await b.exec(['true'], (s) => { s.linux.personality = { domain: 'LINUX64' }; });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /linux\.personality\.domain/);
  });
});

test('noNewPrivileges sets NoNewPrivs', async () => {
  await withBundle({}, async (b) => {
    assert.equal(parseStatus(await b.output('cat /proc/self/status', (s) => { s.process.noNewPrivileges = true; })).NoNewPrivs, '1');
    assert.equal(parseStatus(await b.output('cat /proc/self/status', (s) => { s.process.noNewPrivileges = false; })).NoNewPrivs, '0');
  });
});

test('oomScoreAdj is applied to the container process only', async () => {
  const own = readFileSync('/proc/self/oom_score_adj', 'utf8').trim();
  const target = Math.min(1000, Number(own) + 345);
  await withBundle({}, async (b) => {
    const out = await b.output('cat /proc/self/oom_score_adj', (s) => { s.process.oomScoreAdj = target; });
    assert.equal(out.trim(), String(target));
  });
  assert.equal(readFileSync('/proc/self/oom_score_adj', 'utf8').trim(), own, 'the caller\'s score is unchanged');
});

test('the rootfs and files the process writes keep host ownership semantics', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data', 0o777);
    await b.output('touch /data/by-alice', (s) => {
      s.process.user = { ...ALICE };
      s.mounts.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] });
    });
    const st = statSync(join(data, 'by-alice'));
    assert.deepEqual([st.uid, st.gid], [ALICE.uid, ALICE.gid]);
  });
});
