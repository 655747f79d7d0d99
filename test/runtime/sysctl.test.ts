// linux.sysctl: applied inside the container's namespaces, never to the host's.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { explain, withBundle } from '../helpers/bundle.ts';

const read = (key: string): string => readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();

test('net.* sysctls apply to the new network namespace only', async () => {
  const hostForward = read('net.ipv4.ip_forward');
  const value = hostForward === '1' ? '0' : '1';
  await withBundle({}, async (b) => {
    const out = await b.output('cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/tcp_keepalive_time', (s) => {
      s.linux.sysctl = { 'net.ipv4.ip_forward': value, 'net.ipv4.tcp_keepalive_time': '1234' };
    });
    assert.equal(out, `${value}\n1234\n`);
  });
  assert.equal(read('net.ipv4.ip_forward'), hostForward, 'the host value is unchanged');
});

test('kernel.shm*/msg* sysctls apply to the new ipc namespace only', async () => {
  const hostShmmax = read('kernel.shmmax');
  const hostMsgmax = read('kernel.msgmax');
  await withBundle({}, async (b) => {
    const out = await b.output('cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax', (s) => {
      s.linux.sysctl = { 'kernel.shmmax': '123456789', 'kernel.msgmax': '4321' };
    });
    assert.equal(out, '123456789\n4321\n');
  });
  assert.equal(read('kernel.shmmax'), hostShmmax);
  assert.equal(read('kernel.msgmax'), hostMsgmax);
});

test('a net.* sysctl without a new network namespace fails and leaves the host alone', async () => {
  const hostForward = read('net.ipv4.ip_forward');
  const value = hostForward === '1' ? '0' : '1';
  try {
    await withBundle({}, async (b) => {
      const r = await b.exec('cat /proc/sys/net/ipv4/ip_forward', (s) => {
        s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'network');
        s.mounts = s.mounts.filter((m) => !m.destination.startsWith('/sys'));
        s.linux.maskedPaths = s.linux.maskedPaths?.filter((p) => !p.startsWith('/sys'));
        s.linux.sysctl = { 'net.ipv4.ip_forward': value };
      });
      assert.equal(read('net.ipv4.ip_forward'), hostForward, 'the host value must not change');
      assert.notEqual(r.code, 0, `refused: ${explain(r)}`);
      assert.ok(r.stderr.trim().length > 0);
    });
  } finally {
    if (read('net.ipv4.ip_forward') !== hostForward) writeFileSync('/proc/sys/net/ipv4/ip_forward', hostForward);
  }
});

test('an unknown sysctl fails with a message', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec('true', (s) => { s.linux.sysctl = { 'kernel.berth_no_such_knob': '1' }; });
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.stderr.trim().length > 0);
  });
});
