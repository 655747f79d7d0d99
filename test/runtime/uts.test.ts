// hostname and domainname in a new UTS namespace.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { deviation, withBundle } from '../helpers/bundle.ts';

test('hostname and domainname are set inside, the host keeps its own', {
  todo: deviation(['runc'], 'runc 1.1 ignores "domainname" (supported from runc 1.2)'),
}, async () => {
  const hostName = hostname();
  const hostDomain = readFileSync('/proc/sys/kernel/domainname', 'utf8').trim();
  await withBundle({}, async (b) => {
    const out = await b.output('hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; uname -n', (s) => {
      s.hostname = 'berth-box';
      s.domainname = 'example.test';
    });
    assert.equal(out, 'berth-box\nberth-box\nexample.test\nberth-box\n');
  });
  assert.equal(hostname(), hostName);
  assert.equal(readFileSync('/proc/sys/kernel/domainname', 'utf8').trim(), hostDomain);
});

test('without hostname the container keeps the (new) namespace\'s inherited name', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('cat /proc/sys/kernel/hostname', (s) => { delete s.hostname; });
    assert.equal(out.trim(), hostname());
  });
});

test('hostname without a new UTS namespace is an error', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec('hostname', (s) => {
      s.hostname = 'must-not-change-host';
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'uts');
    });
    assert.notEqual(r.code, 0, 'setting a hostname requires a new UTS namespace');
    assert.ok(r.stderr.trim().length > 0);
  });
  assert.notEqual(hostname(), 'must-not-change-host');
});
