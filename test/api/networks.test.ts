// The real docker CLI (and berth's) against `berth daemon` for networks: ls, create, inspect,
// rm, prune, errors in docker's words; with containers: names across a user network, published
// ports from the host's loopback, connect/disconnect on a running container, a port in use.
// The daemon runs with a per-run "bridge-suffix"; after() checks and removes host objects by it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
const sfx = `a${Math.random().toString(36).slice(2, 6)}`;
const prefix = `berth${sfx}`;
let d: TestDaemon;
let work: string;

function sh(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function hostObjects(): Promise<string[]> {
  const links = (await sh('ip', ['-o', 'link', 'show'])).stdout.split('\n').filter((l) => l.includes(prefix)).map((l) => l.split(':')[1]?.trim().split('@')[0] ?? l);
  const fw = (await sh('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(prefix));
  return [...links, ...fw];
}

/** Removes whatever still carries this run's suffix (after a failure). */
async function sweep(): Promise<void> {
  for (const name of (await hostObjects()).filter((o) => o.startsWith(prefix) && !o.includes(' '))) await sh('ip', ['link', 'del', name]);
  for (const table of ['nat', 'filter']) {
    const lines = (await sh('iptables-save', ['-t', table])).stdout.split('\n');
    for (const l of lines.filter((x) => x.startsWith('-A ') && !x.startsWith(`-A ${prefix}`) && x.includes(`-j ${prefix}`))) {
      await sh('iptables', ['-t', table, ...l.replace(/^-A/, '-D').split(' ')]);
    }
    for (const c of lines.filter((x) => x.startsWith(`:${prefix}`)).map((x) => x.slice(1).split(' ')[0])) {
      await sh('iptables', ['-t', table, '-F', c]);
      await sh('iptables', ['-t', table, '-X', c]);
    }
  }
}

/** Polls until fn holds (the kernel frees a stopped container's veths in the background). */
async function eventually(fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * wget inside a container. A successful exec whose output came back empty is tried again: the
 * container service's exec sometimes loses a short-lived process's output (seen at the time of
 * writing; not a networking matter), and this test is about what the network delivers.
 */
async function fetchIn(container: string, url: string): Promise<string> {
  let out = '';
  for (let i = 0; i < 5; i++) {
    const r = await d.docker(['exec', container, 'wget', '-q', '-O', '-', url], { timeoutMs: 30_000 });
    out = r.stdout;
    if (r.code !== 0 || out !== '') break;
  }
  return out;
}

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${explain(r)}\n${d.log().slice(-3000)}`);
  return r.stdout;
}
async function fails(args: string[], message: RegExp): Promise<void> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.notEqual(r.code, 0, `docker ${args.join(' ')} should fail: ${explain(r)}`);
  assert.match(r.stderr, message);
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-netapi-'));
  d = await TestDaemon.start({ config: { 'bridge-suffix': sfx } });
});
after(async () => {
  if (d) {
    await d.docker(['rm', '-f', 'na', 'nb', 'nweb', 'nclash', 'nbase', 'nkeep', 'nkeep2'], { timeoutMs: 60_000 }).catch(() => {});
    await d.cleanup();
  }
  await sweep();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('network commands', { skip }, () => {
  test('ls lists bridge, host and none like docker\'s table; the default bridge is not made until used', async () => {
    const out = await ok(['network', 'ls']);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0], /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(1).join(' ')), ['bridge bridge local', 'host host local', 'none null local']);
    assert.match(lines[1], /^[0-9a-f]{12} /);
    assert.deepEqual(await hostObjects(), []);
    assert.equal(await (await d.berth(['network', 'ls'])).stdout, out, 'berth network ls prints what docker prints');
  });

  test('create, inspect, filters, duplicate and removal errors, rm, prune', async () => {
    const id = (await ok(['network', 'create', '--subnet', '10.234.0.0/24', '--gateway', '10.234.0.1', '--label', 'team=net', `net-${sfx}`])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const [n] = JSON.parse(await ok(['network', 'inspect', `net-${sfx}`]));
    assert.equal(n.Id, id);
    assert.equal(n.Driver, 'bridge');
    assert.deepEqual(n.IPAM.Config, [{ Subnet: '10.234.0.0/24', Gateway: '10.234.0.1' }]);
    assert.deepEqual(n.Labels, { team: 'net' });
    assert.deepEqual(n.Containers, {});
    assert.ok((await hostObjects()).some((o) => o.startsWith(`${prefix}b`)), 'the bridge exists');
    assert.equal(await ok(['network', 'inspect', '-f', '{{.Name}} {{(index .IPAM.Config 0).Subnet}}', id.slice(0, 10)]), `net-${sfx} 10.234.0.0/24\n`);
    assert.equal(await ok(['network', 'ls', '--filter', 'label=team=net', '--format', '{{.Name}}']), `net-${sfx}\n`);
    assert.equal(await ok(['network', 'ls', '-q', '--filter', 'type=custom', '--no-trunc']), `${id}\n`);
    await fails(['network', 'create', `net-${sfx}`], new RegExp(`Error response from daemon: network with name net-${sfx} already exists`));
    await fails(['network', 'create', '--subnet', '10.234.0.0/16', `other-${sfx}`], /Pool overlaps with other one on this address space/);
    await fails(['network', 'create', '-d', 'nosuchdriver', `other-${sfx}`], /plugin "nosuchdriver" not found/);
    await fails(['network', 'rm', 'bridge'], /bridge is a pre-defined network and cannot be removed/);
    await fails(['network', 'inspect', 'nosuchnet'], /network nosuchnet not found/);
    assert.equal(await ok(['network', 'rm', `net-${sfx}`]), `net-${sfx}\n`);
    assert.deepEqual(await hostObjects(), [], 'bridge and chains gone with the network');

    await ok(['network', 'create', `p1-${sfx}`]);
    await ok(['network', 'create', '--internal', `p2-${sfx}`]);
    const pruned = await ok(['network', 'prune', '-f']);
    assert.match(pruned, /^Deleted Networks:\n/);
    assert.deepEqual(pruned.split('\n').slice(1).filter(Boolean).sort(), [`p1-${sfx}`, `p2-${sfx}`]);
    assert.equal((await ok(['network', 'ls', '-q'])).trim().split('\n').length, 3);
    assert.deepEqual(await hostObjects(), []);
  });
});

describe('networks with containers', { skip }, () => {
  let haveContainers = false;
  before(async () => {
    haveContainers = (await d.request('GET', '/v1.47/containers/json')).status === 200;
    if (!haveContainers) return;
    const root = join(work, 'rootfs');
    makeBusyboxRootfs(root);
    writeFileSync(join(work, 'busybox.tar'), tarDirectory(root));
    await ok(['import', '--change', 'CMD ["sh"]', join(work, 'busybox.tar'), 'busybox:latest']);
  });

  test('names across a user network, published ports from loopback, connect/disconnect, port in use', async (t) => {
    if (!haveContainers) { t.skip('the daemon has no container endpoints yet'); return; }
    const net = `app-${sfx}`;
    await ok(['network', 'create', net]);
    await ok(['run', '-d', '--name', 'na', '--network', net, '--network-alias', 'alias-a', 'busybox', 'sh', '-c', 'mkdir -p /www && echo hello-a > /www/index.html && exec httpd -f -p 80 -h /www']);
    await ok(['run', '-d', '--name', 'nb', '--network', net, 'busybox', 'sleep', '300']);
    // The server may still be starting when `run -d` returns.
    await eventually(async () => (await fetchIn('nb', 'http://na/')) === 'hello-a\n', 10_000).catch(() => {});
    for (const host of ['na', 'alias-a']) assert.equal(await fetchIn('nb', `http://${host}/`), 'hello-a\n', host);
    const [n] = JSON.parse(await ok(['network', 'inspect', net]));
    assert.deepEqual(Object.values(n.Containers as Record<string, { Name: string }>).map((c) => c.Name).sort(), ['na', 'nb']);
    await fails(['network', 'rm', net], /has active endpoints/);

    // Published port, reached from the host's loopback.
    const port = await new Promise<number>((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
    await ok(['run', '-d', '--name', 'nweb', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www']);
    let got = '';
    for (let i = 0; i < 50 && got !== 'web\n'; i++) {
      got = (await sh('curl', ['-s', '-m', '2', `http://127.0.0.1:${port}/`])).stdout;
      if (got !== 'web\n') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got, 'web\n');
    assert.equal((await ok(['port', 'nweb'])).trim(), `80/tcp -> 127.0.0.1:${port}`);
    await fails(['run', '-d', '--name', 'nclash', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '1'], new RegExp(`Bind for 127.0.0.1:${port} failed: port is already allocated`));

    // Hot-plug: nweb joins the app network and nb finds it by name; then leaves.
    await ok(['network', 'connect', net, 'nweb']);
    assert.equal(await fetchIn('nb', 'http://nweb/'), 'web\n');
    await ok(['network', 'disconnect', net, 'nweb']);
    const r = await d.docker(['exec', 'nb', 'wget', '-q', '-O', '-', 'http://nweb/'], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0, 'nweb is gone from the network');

    await ok(['rm', '-f', 'na', 'nb', 'nweb']);
    await d.docker(['rm', '-f', 'nclash'], { timeoutMs: 30_000 });
    await ok(['network', 'rm', net]);
    await eventually(async () => (await hostObjects()).every((o) => !o.includes(`${prefix}v`) && !o.includes(`${prefix}b`)))
      .catch(async () => assert.deepEqual((await hostObjects()).filter((o) => o.includes(`${prefix}v`) || o.includes(`${prefix}b`)), [], 'no veth or user bridge left'));
  });

  test('--network host, none and container:<x>', async (t) => {
    if (!haveContainers) { t.skip('the daemon has no container endpoints yet'); return; }
    const hostLinks = (await sh('ip', ['-o', 'link', 'show'])).stdout.split('\n').filter(Boolean).length;
    const inHost = await ok(['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link']);
    assert.ok(inHost.split('\n').filter(Boolean).length >= Math.min(hostLinks, 2), `host mode sees the host's links:\n${inHost}`);
    const inNone = await ok(['run', '--rm', '--network', 'none', 'busybox', 'ip', '-o', 'link']);
    assert.deepEqual(inNone.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim()), ['lo']);
    await ok(['run', '-d', '--name', 'nbase', 'busybox', 'sh', '-c', 'mkdir -p /www && echo base > /www/index.html && exec httpd -f -p 80 -h /www']);
    await eventually(async () => (await d.docker(['run', '--rm', '--network', 'container:nbase', 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1/'], { timeoutMs: 30_000 })).stdout === 'base\n', 10_000)
      .catch(() => {});
    assert.equal(await ok(['run', '--rm', '--network', 'container:nbase', 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1/']), 'base\n');
    await ok(['rm', '-f', 'nbase']);
  });

  test('a published port and names keep working across a kill -9 of the daemon; the stop after it cleans up', async (t) => {
    if (!haveContainers) { t.skip('the daemon has no container endpoints yet'); return; }
    const net = `keep-${sfx}`;
    await ok(['network', 'create', net]);
    const port = await new Promise<number>((res) => { const srv = createServer(); srv.listen(0, '127.0.0.1', () => { const p = (srv.address() as { port: number }).port; srv.close(() => res(p)); }); });
    await ok(['run', '-d', '--name', 'nkeep', '--network', net, '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir -p /www && echo kept > /www/index.html && exec httpd -f -p 80 -h /www']);
    const get = async (): Promise<string> => (await sh('curl', ['-s', '-m', '2', `http://127.0.0.1:${port}/`])).stdout;
    await eventually(async () => (await get()) === 'kept\n', 10_000);
    await d.restart({ kill9: true });
    assert.equal(await get(), 'kept\n', 'still published while the daemon was away and after');
    const [n] = JSON.parse(await ok(['network', 'inspect', net]));
    assert.deepEqual(Object.values(n.Containers as Record<string, { Name: string }>).map((c) => c.Name), ['nkeep']);
    await ok(['run', '-d', '--name', 'nkeep2', '--network', net, 'busybox', 'sleep', '300']);
    await eventually(async () => (await fetchIn('nkeep2', 'http://nkeep/')) === 'kept\n', 10_000).catch(() => {});
    assert.equal(await fetchIn('nkeep2', 'http://nkeep/'), 'kept\n', 'a container started after the restart resolves the kept one');
    await ok(['rm', '-f', 'nkeep', 'nkeep2']);
    await eventually(async () => !(await sh('iptables-save', ['-t', 'nat'])).stdout.includes(`--dport ${port} `));
    await ok(['network', 'rm', net]);
  });

  test('berth network create, inspect, rm and its errors', async () => {
    const c = await d.berth(['network', 'create', '--subnet', '10.237.0.0/24', `bn-${sfx}`]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal((await d.berth(['network', 'inspect', '-f', '{{.Name}} {{.Driver}}', `bn-${sfx}`])).stdout, `bn-${sfx} bridge\n`);
    const missing = await d.berth(['network', 'rm', 'nosuchnet']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error response from daemon: network nosuchnet not found\nexit status 1\n', 'as docker 28 prints it');
    assert.equal((await d.berth(['network', 'rm', `bn-${sfx}`])).stdout, `bn-${sfx}\n`);
    const gw = await d.berth(['network', 'create', '--subnet', '10.238.0.0/24', '--gateway', '10.9.9.9', `bg-${sfx}`]);
    assert.equal(gw.stderr, 'no matching subnet for gateway 10.9.9.9\n', 'checked by the CLI, as docker\'s');
    const json = JSON.parse((await d.berth(['network', 'ls', '--filter', 'name=bridge', '--format', '{{json .}}'])).stdout);
    assert.deepEqual(Object.keys(json), ['CreatedAt', 'Driver', 'ID', 'IPv4', 'IPv6', 'Internal', 'Labels', 'Name', 'Scope']);
    assert.match(json.CreatedAt, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d{4} \S+$/);
  });

  test('after the daemon stops with nothing running, no host object carries its suffix', async () => {
    await d.stop();
    await eventually(async () => (await hostObjects()).length === 0).catch(async () => assert.deepEqual(await hostObjects(), []));
  });
});
