// NetworkService against the real kernel: network namespaces, bridges, veths and iptables rules,
// with busybox servers inside the namespaces. Every host object carries this run's suffix
// ("berth<sfx>…"); after() removes whatever is left by that suffix only.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DaemonContext } from '../../src/api/context.ts';
import type { DaemonConfig } from '../../src/engine/config.ts';
import type { ContainerAccess, ContainerRecord, DockerHostConfig } from '../../src/engine/containers/types.ts';
import { MetadataDb } from '../../src/engine/db.ts';
import { EventBus } from '../../src/engine/events.ts';
import { Logger } from '../../src/engine/log.ts';
import { NetworkService, type SandboxRequest } from '../../src/engine/network/index.ts';
import { hostRoutes, overlaps, parseSubnet, pickSubnet } from '../../src/engine/network/ipv4.ts';

/** Runs a command to completion (stdin closed: the helpers' run() writes stdin, which races fast exits). */
function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const sfx = `t${Math.random().toString(36).slice(2, 6)}`;
const prefix = `berth${sfx}`;
let dir: string;
let db: MetadataDb;
let svc: NetworkService;
const shutdownHooks: Array<() => void | Promise<void>> = [];
const procs: ChildProcess[] = [];
const servers: Server[] = [];

function context(): DaemonContext {
  const config = { execRoot: join(dir, 'run'), dataRoot: join(dir, 'data'), bridgeSuffix: sfx } as unknown as DaemonConfig;
  return {
    config, db, events: new EventBus(), log: new Logger('error'), id: 'test', startedAt: new Date(), storageDriver: 'vfs',
    storageDriverStatus: [], services: {}, infoContributors: [], diskUsageContributors: [],
    onShutdown: (fn) => { shutdownHooks.push(fn); },
    serveApiConnection: (socket) => socket.destroy(),
  };
}

function request(id: string, name: string, hostConfig: DockerHostConfig, extra: Partial<SandboxRequest> = {}): SandboxRequest {
  const cid = id.padEnd(64, '0');
  return {
    containerId: cid, containerName: name, hostname: cid.slice(0, 12), hostConfig, exposedPorts: {}, endpointsConfig: {},
    dataDir: join(dir, 'containers', cid), ...extra,
  };
}

/** A busybox httpd serving `text` inside a namespace. */
async function serve(netns: string, text: string, port = 80): Promise<ChildProcess> {
  const www = mkdtempSync(join(dir, 'www-'));
  writeFileSync(join(www, 'index.html'), text);
  const p = spawn('nsenter', [`--net=${netns}`, 'busybox', 'httpd', '-f', '-p', String(port), '-h', www], { stdio: 'ignore' });
  procs.push(p);
  // Ready when the port answers inside the namespace.
  for (let i = 0; i < 100; i++) {
    const r = await run('nsenter', [`--net=${netns}`, 'curl', '-s', '-m', '1', '-o', '/dev/null', `http://127.0.0.1:${port}/`]);
    if (r.code === 0) return p;
    await new Promise((res) => setTimeout(res, 30));
  }
  throw new Error('httpd did not start');
}

function stop(p: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (p.exitCode !== null || p.signalCode !== null) { res(); return; }
    p.once('exit', () => res());
    p.kill('SIGKILL');
  });
}

/** GET through a namespace that sees `hostsFile` as /etc/hosts (as the container would). */
function fetchAs(netns: string, hostsFile: string, url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run('nsenter', [`--net=${netns}`, 'unshare', '--mount', 'sh', '-c', `mount --bind "$0" /etc/hosts && exec curl -s -m 3 "$1"`, hostsFile, url]);
}

async function hostObjects(): Promise<string[]> {
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').filter((l) => l.includes(prefix)).map((l) => l.split(':')[1]?.trim() ?? l);
  const fw = (await run('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(prefix));
  return [...links, ...fw];
}

/** Polls until fn holds: the kernel frees a released namespace's veths in the background. */
async function eventually(what: string, fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  dir = mkdtempSync('/tmp/berth-net-');
  db = MetadataDb.open(join(dir, 'data', 'berth.db'));
  db.migrate();
  svc = await NetworkService.open(context());
});

after(async () => {
  for (const p of procs) await stop(p);
  for (const s of servers) s.close();
  for (const s of [...(svc as unknown as { sandboxes: Map<string, unknown> }).sandboxes.keys()]) await svc.release(s).catch(() => {});
  for (const h of shutdownHooks.reverse()) await h();
  // Anything still carrying this run's suffix (a failed test) goes by name.
  for (const name of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter((n) => n?.startsWith(prefix))) {
    await run('ip', ['link', 'del', name]);
  }
  const save = (await run('iptables-save', [])).stdout;
  if (save.includes(prefix)) {
    for (const table of ['nat', 'filter']) {
      const lines = (await run('iptables-save', ['-t', table])).stdout.split('\n');
      for (const l of lines.filter((x) => x.startsWith('-A ') && !x.startsWith(`-A ${prefix}`) && x.includes(`-j ${prefix}`))) {
        await run('iptables', ['-t', table, ...l.replace(/^-A/, '-D').split(' ')]);
      }
      for (const c of lines.filter((x) => x.startsWith(`:${prefix}`)).map((x) => x.slice(1).split(' ')[0])) {
        await run('iptables', ['-t', table, '-F', c]);
        await run('iptables', ['-t', table, '-X', c]);
      }
    }
  }
  await run('sh', ['-c', `for f in "$0"/run/netns/*; do umount "$f" 2>/dev/null; done; true`, dir]);
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('networks and IPAM', () => {
  test('predefined networks are listed like docker\'s; the default subnet avoids the host\'s routes', () => {
    const names = svc.list().map((n) => `${n.Name}/${n.Driver}`);
    assert.deepEqual(names, ['bridge/bridge', 'host/host', 'none/null']);
    const bridge = svc.inspect('bridge');
    const subnet = parseSubnet(bridge.IPAM.Config[0].Subnet)!;
    assert.ok(subnet, 'the default bridge has a subnet');
    for (const r of hostRoutes().filter((x) => !x.iface.startsWith(prefix))) assert.ok(!overlaps(r.subnet, subnet), `${bridge.IPAM.Config[0].Subnet} overlaps a host route on ${r.iface}`);
    assert.equal(bridge.Options['com.docker.network.bridge.name'], `${prefix}0`);
  });

  test('pickSubnet skips taken subnets and host routes', () => {
    const taken = [parseSubnet('172.17.0.0/16')!, parseSubnet('172.18.0.0/16')!];
    const s = pickSubnet(taken)!;
    assert.ok(!taken.some((t) => overlaps(t, s)));
    for (const r of hostRoutes()) assert.ok(!overlaps(r.subnet, s));
  });

  test('create: subnet, gateway, labels; overlap, duplicate and unknown-driver errors in docker\'s words', async () => {
    const { Id } = await svc.create({ Name: `n-${sfx}-a`, IPAM: { Config: [{ Subnet: '10.231.0.0/24', Gateway: '10.231.0.254' }] }, Labels: { a: 'b' } });
    const n = svc.inspect(Id.slice(0, 12));
    assert.equal(n.IPAM.Config[0].Gateway, '10.231.0.254');
    assert.deepEqual(n.Labels, { a: 'b' });
    assert.ok(existsSync(`/sys/class/net/${prefix}b${Id.slice(0, 15 - prefix.length - 1)}`), 'bridge made at create');
    await assert.rejects(svc.create({ Name: `n-${sfx}-a` }), /network with name n-.*-a already exists/);
    await assert.rejects(svc.create({ Name: `n-${sfx}-x`, IPAM: { Config: [{ Subnet: '10.231.0.128/25' }] } }), /Pool overlaps with other one on this address space/);
    await assert.rejects(svc.create({ Name: `n-${sfx}-y`, Driver: 'overlay' }), /plugin "overlay" not found/);
    await assert.rejects(svc.create({ Name: `n-${sfx}-z`, IPAM: { Config: [{ Subnet: '10.232.0.0/24', Gateway: '10.9.9.9' }] } }), /no matching subnet for gateway 10.9.9.9/);
    const auto = await svc.create({ Name: `n-${sfx}-auto` });
    const s1 = parseSubnet(svc.inspect(auto.Id).IPAM.Config[0].Subnet)!;
    assert.ok(!overlaps(s1, parseSubnet(svc.inspect('bridge').IPAM.Config[0].Subnet)!));
    await svc.remove(`n-${sfx}-auto`);
    assert.throws(() => svc.inspect(`n-${sfx}-auto`), /network n-.*-auto not found/);
    await assert.rejects(svc.remove('bridge'), /bridge is a pre-defined network and cannot be removed/);
  });

  test('validate: unknown network, bad port specs, bad add-host', () => {
    assert.throws(() => svc.validate(request('v1', 'v1', { NetworkMode: 'nosuch' })), /network nosuch not found/);
    assert.throws(() => svc.validate(request('v1', 'v1', { PortBindings: { 'abc/tcp': [{ HostPort: '80' }] } })), /invalid containerPort: abc/);
    assert.throws(() => svc.validate(request('v1', 'v1', { PortBindings: { '80/tcp': [{ HostPort: 'x' }] } })), /invalid hostPort: x/);
    assert.throws(() => svc.validate(request('v1', 'v1', { ExtraHosts: ['h:notanip'] })), /invalid IP address in add-host/);
    assert.throws(() => svc.validate(request('v1', 'v1', { NetworkMode: 'container:x', PortBindings: { '80/tcp': [{}] } })), /conflicting options: port publishing/);
    assert.throws(() => svc.validate(request('v1', 'v1', {}, { endpointsConfig: { bridge: { Aliases: ['x'] } } })), /network-scoped alias is supported only/);
  });
});

describe('sandboxes', () => {
  test('containers on a user network reach each other by name, alias and id prefix; hosts files rewritten in place', async () => {
    const net = `n-${sfx}-a`;
    const a = await svc.prepare(request('a1', 'alpha', { NetworkMode: net }, { endpointsConfig: { [net]: { Aliases: ['al'] } } }));
    assert.ok(a.netnsPath && existsSync(a.netnsPath));
    assert.equal(a.networkSettings.Networks[net].IPAddress, '10.231.0.1');
    assert.equal(a.networkSettings.Networks[net].Gateway, '10.231.0.254');
    assert.equal(a.networkSettings.Networks[net].MacAddress, '02:42:0a:e7:00:01');
    const inodeBefore = statSync(a.hostsPath).ino;
    const b = await svc.prepare(request('b1', 'beta', { NetworkMode: net, ExtraHosts: ['gw:host-gateway', 'x.test:10.1.2.3'] }));
    assert.equal(statSync(a.hostsPath).ino, inodeBefore, 'same inode after the rewrite');
    assert.match(readFileSync(a.hostsPath, 'utf8'), /^10\.231\.0\.2\tbeta b10000000000$/m);
    assert.match(readFileSync(b.hostsPath, 'utf8'), /^10\.231\.0\.1\talpha al a10000000000$/m);
    assert.match(readFileSync(b.hostsPath, 'utf8'), /^10\.1\.2\.3\tx\.test$/m);
    assert.match(readFileSync(b.hostnamePath, 'utf8'), /^b10000000000\n$/);
    assert.doesNotMatch(readFileSync(b.resolvConfPath, 'utf8'), /nameserver 127\./);

    const httpd = await serve(a.netnsPath!, 'from alpha');
    for (const host of ['alpha', 'al', 'a10000000000']) {
      const r = await fetchAs(b.netnsPath!, b.hostsPath, `http://${host}/`);
      assert.equal(r.stdout, 'from alpha', `${host}: ${r.stderr}`);
    }
    await stop(httpd);

    const nsInspect = svc.inspect(net);
    assert.deepEqual(Object.values(nsInspect.Containers).map((c) => c.Name).sort(), ['alpha', 'beta']);
    await assert.rejects(svc.remove(net), /error while removing network: network n-.*-a id [0-9a-f]{64} has active endpoints/);

    await svc.release(request('b1', '', {}).containerId);
    assert.doesNotMatch(readFileSync(a.hostsPath, 'utf8'), /beta/, 'peer left: entry gone');
    assert.equal(statSync(a.hostsPath).ino, inodeBefore);
    assert.ok(!existsSync(b.netnsPath!), 'netns file removed');
    await svc.release(request('a1', '', {}).containerId);
    await svc.release(request('a1', '', {}).containerId); // idempotent
    await eventually('no veth is left', async () => (await hostObjects()).every((o) => !o.includes(`${prefix}v`)));
  });

  test('published ports: 127.0.0.1 and all addresses, from the host\'s loopback and its own address; -P', async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    const c = await svc.prepare(request('c1', 'web', {
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(p1) }], '81/tcp': [{ HostPort: String(p2) }] },
      PublishAllPorts: true,
    }, { exposedPorts: { '80/tcp': {}, '90/tcp': {}, '53/udp': {} } }));
    assert.deepEqual(c.networkSettings.Ports['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(p1) }]);
    const random = Number(c.networkSettings.Ports['90/tcp']![0].HostPort);
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    assert.ok(random >= lo && random <= hi, `-P port ${random} in the ephemeral range`);
    assert.ok(c.networkSettings.Ports['53/udp']![0].HostPort);
    assert.ok(c.networkSettings.IPAddress, 'default bridge: top-level IPAddress');
    const h80 = await serve(c.netnsPath!, 'eighty', 80);
    const h81 = await serve(c.netnsPath!, 'eighty-one', 81);
    const h90 = await serve(c.netnsPath!, 'ninety', 90);
    const curl = (url: string) => run('curl', ['-s', '-m', '5', url]);
    assert.equal((await curl(`http://127.0.0.1:${p1}/`)).stdout, 'eighty');
    assert.equal((await curl(`http://127.0.0.1:${p2}/`)).stdout, 'eighty-one');
    assert.equal((await curl(`http://127.0.0.1:${random}/`)).stdout, 'ninety');
    const addr = hostAddress();
    if (addr) {
      assert.equal((await curl(`http://${addr}:${p2}/`)).stdout, 'eighty-one');
      assert.notEqual((await curl(`http://${addr}:${p1}/`)).stdout, 'eighty', '127.0.0.1-only binding is not on other addresses');
    }

    // Already allocated by this daemon, then held by another process on the host.
    await assert.rejects(svc.prepare(request('c2', 'clash', { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(p1) }] } })),
      new RegExp(`driver failed programming external connectivity on endpoint clash \\([0-9a-f]+\\): Bind for 127.0.0.1:${p1} failed: port is already allocated`));
    await assert.rejects(svc.prepare(request('c2', 'clash', { PortBindings: { '80/tcp': [{ HostPort: String(p1) }] } })), /Bind for 0\.0\.0\.0:\d+ failed: port is already allocated/);
    const holder = createServer();
    servers.push(holder);
    const p3 = await freePort();
    await new Promise<void>((r) => holder.listen(p3, '0.0.0.0', () => r()));
    await assert.rejects(svc.prepare(request('c2', 'clash', { PortBindings: { '80/tcp': [{ HostPort: String(p3) }] } })),
      new RegExp(`0\\.0\\.0\\.0:${p3}: bind: address already in use`));
    holder.close();
    assert.ok(!existsSync(join(dir, 'run', 'netns', request('c2', '', {}).containerId)), 'a failed prepare leaves no namespace');
    const veths = (await hostObjects()).filter((o) => o.includes(`${prefix}v`));
    assert.equal(veths.length, 1, `only c1's veth: ${veths.join(', ')}`);

    for (const h of [h80, h81, h90]) await stop(h);
    await svc.release(request('c1', '', {}).containerId);
    await eventually('the DNAT rules are gone', async () => !/--dport (\d+) /.test((await run('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.includes(prefix) && l.includes('DNAT')).join('\n')));
  });

  test('none mode has only loopback; host mode uses the host namespace', async () => {
    const n = await svc.prepare(request('d1', 'lonely', { NetworkMode: 'none' }));
    const links = (await run('nsenter', [`--net=${n.netnsPath}`, 'ip', '-o', 'link'])).stdout.trim().split('\n');
    assert.equal(links.length, 1);
    assert.match(links[0], /lo: <LOOPBACK,UP/);
    assert.deepEqual(Object.keys(n.networkSettings.Networks), ['none']);
    const h = await svc.prepare(request('e1', 'hosty', { NetworkMode: 'host' }));
    assert.equal(h.netnsPath, undefined);
    assert.deepEqual(Object.keys(h.networkSettings.Networks), ['host']);
    await svc.release(request('d1', '', {}).containerId);
    await svc.release(request('e1', '', {}).containerId);
    assert.ok(!existsSync(n.netnsPath!));
  });

  test('networks are isolated from each other; an internal network has no way out', async () => {
    const other = `n-${sfx}-b`;
    const internal = `n-${sfx}-i`;
    await svc.create({ Name: other, IPAM: { Config: [{ Subnet: '10.235.0.0/24' }] } });
    await svc.create({ Name: internal, Internal: true, IPAM: { Config: [{ Subnet: '10.236.0.0/24' }] } });
    const a = await svc.prepare(request('i1', 'srv', { NetworkMode: `n-${sfx}-a` }));
    const b = await svc.prepare(request('i2', 'cli', { NetworkMode: other }));
    const c = await svc.prepare(request('i3', 'sealed', { NetworkMode: internal }));
    const httpd = await serve(a.netnsPath!, 'isolated');
    const ip = a.networkSettings.Networks[`n-${sfx}-a`].IPAddress;
    // The host reaches it (through the bridge), another network's container does not.
    assert.equal((await run('curl', ['-s', '-m', '3', `http://${ip}/`])).stdout, 'isolated');
    const r = await run('nsenter', [`--net=${b.netnsPath}`, 'curl', '-s', '-m', '2', `http://${ip}/`]);
    assert.notEqual(r.stdout, 'isolated', 'traffic between networks is dropped');
    const routes = (await run('nsenter', [`--net=${c.netnsPath}`, 'ip', 'route'])).stdout;
    assert.doesNotMatch(routes, /default/, `internal: ${routes}`);
    assert.match((await run('nsenter', [`--net=${b.netnsPath}`, 'ip', 'route'])).stdout, /^default via 10\.235\.0\.1 dev eth0/m);
    await stop(httpd);
    for (const id of ['i1', 'i2', 'i3']) await svc.release(request(id, '', {}).containerId);
    await svc.remove(other);
    await svc.remove(internal);
  });

  test('resolv.conf from --dns/--dns-search/--dns-option; add-host host-gateway; UDP published', async () => {
    const gw = svc.inspect('bridge').IPAM.Config[0].Gateway;
    const p = await freePort();
    const s = await svc.prepare(request('r1', 'dns', {
      Dns: ['10.9.8.7'], DnsSearch: ['example.test'], DnsOptions: ['ndots:2'], ExtraHosts: ['gw:host-gateway'],
      PortBindings: { '5353/udp': [{ HostIp: '127.0.0.1', HostPort: String(p) }] },
    }, { domainname: 'corp.test' }));
    assert.equal(readFileSync(s.resolvConfPath, 'utf8'), 'search example.test\nnameserver 10.9.8.7\noptions ndots:2\n');
    const hosts = readFileSync(s.hostsPath, 'utf8');
    assert.match(hosts, new RegExp(`^${gw!.replace(/\./g, '\\.')}\\tgw$`, 'm'));
    assert.match(hosts, new RegExp(`^${s.networkSettings.IPAddress!.replace(/\./g, '\\.')}\\tr10000000000\\.corp\\.test r10000000000$`, 'm'));
    // A UDP echo server in the namespace, reached through 127.0.0.1:<p>.
    const echo = spawn('nsenter', [`--net=${s.netnsPath}`, process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong:'+m,r.port,r.address));s.bind(5353,()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(echo);
    await new Promise<void>((res) => echo.stdout!.once('data', () => res()));
    const reply = await new Promise<string>((res, rej) => {
      const sock = createSocket('udp4');
      const timer = setTimeout(() => { sock.close(); rej(new Error('no UDP reply')); }, 3000);
      sock.on('message', (m) => { clearTimeout(timer); sock.close(); res(m.toString()); });
      sock.send('ping', p, '127.0.0.1');
    });
    assert.equal(reply, 'pong:ping');
    await stop(echo);
    await svc.release(request('r1', '', {}).containerId);
  });

  test('container:<x> shares the namespace and files; connect/disconnect hot-plug a running container', async () => {
    const net = `n-${sfx}-a`;
    const records = new Map<string, ContainerRecord>();
    const record = (id: string, name: string, mode: string): ContainerRecord => {
      const r = { Id: request(id, '', {}).containerId, Name: `/${name}`, HostConfig: { NetworkMode: mode }, NetworkSettings: { Networks: {} } } as unknown as ContainerRecord;
      records.set(r.Id, r);
      return r;
    };
    const access = {
      get: (ref: string) => {
        const r = records.get(ref) ?? [...records.values()].find((x) => x.Name === `/${ref}` || x.Id.startsWith(ref));
        if (!r) throw new Error(`No such container: ${ref}`);
        return r;
      },
    } as unknown as ContainerAccess;
    const services = (svc as unknown as { daemon: { services: Record<string, unknown> } }).daemon.services;
    services.containers = access;
    record('k1', 'base', 'bridge');
    record('k2', 'side', 'container:base');
    record('k3', 'peer', net);
    const base = await svc.prepare(request('k1', 'base', { NetworkMode: 'bridge' }));
    const side = await svc.prepare(request('k2', 'side', { NetworkMode: 'container:base' }));
    assert.equal(side.netnsPath, base.netnsPath);
    assert.equal(side.hostsPath, base.hostsPath);
    assert.deepEqual(side.networkSettings.Networks, {});
    await assert.rejects(svc.prepare(request('k9', 'x', { NetworkMode: 'container:nosuch' })), /No such container: nosuch/);

    const peer = await svc.prepare(request('k3', 'peer', { NetworkMode: net }));
    const httpd = await serve(base.netnsPath!, 'from base');
    await svc.connect(net, 'base', { Aliases: ['b-alias'] });
    const links = (await run('nsenter', [`--net=${base.netnsPath}`, 'ip', '-o', 'link'])).stdout;
    assert.match(links, /eth1@/, 'a second interface was plugged in');
    assert.match(readFileSync(peer.hostsPath, 'utf8'), /\tbase b-alias k10000000000$/m);
    assert.equal((await fetchAs(peer.netnsPath!, peer.hostsPath, 'http://b-alias/')).stdout, 'from base');
    assert.ok(svc.settings(request('k1', '', {}).containerId)!.Networks[net], 'settings list the new network');
    await assert.rejects(svc.connect(net, 'base'), /endpoint with name base already exists in network/);
    await svc.disconnect(net, 'base');
    assert.doesNotMatch(readFileSync(peer.hostsPath, 'utf8'), /base/);
    assert.doesNotMatch((await run('nsenter', [`--net=${base.netnsPath}`, 'ip', '-o', 'link'])).stdout, /eth1@/);
    await assert.rejects(svc.disconnect(net, 'base'), /is not connected to network/);
    await stop(httpd);
    for (const id of ['k2', 'k1', 'k3']) await svc.release(request(id, '', {}).containerId);
    delete services.containers;
  });

  test('--link on the default bridge; a host port range takes the first free port', async () => {
    const base = await freePort();
    const db1 = await svc.prepare(request('l1', 'db', { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: `${base}-${base + 5}` }] } }));
    assert.equal(db1.networkSettings.Ports['80/tcp']![0].HostPort, String(base));
    const app = await svc.prepare(request('l2', 'app', { Links: ['db:database'], PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: `${base}-${base + 5}` }] } }));
    assert.notEqual(app.networkSettings.Ports['80/tcp']![0].HostPort, String(base), 'the range skips the taken port');
    assert.match(readFileSync(app.hostsPath, 'utf8'), new RegExp(`^${db1.networkSettings.IPAddress!.replace(/\./g, '\\.')}\\tdatabase db l10000000000$`, 'm'));
    for (const id of ['l2', 'l1']) await svc.release(request(id, '', {}).containerId);
  });

  test('a daemon restart keeps running sandboxes and IPAM; reconcile frees the stopped', async () => {
    const net = `n-${sfx}-a`;
    const f = await svc.prepare(request('f1', 'keep', { NetworkMode: net }));
    const g = await svc.prepare(request('g1', 'gone', { NetworkMode: net }));
    const again = await NetworkService.open(context());
    await again.reconcile(new Set([request('f1', '', {}).containerId]));
    assert.ok(existsSync(f.netnsPath!) && !existsSync(g.netnsPath!));
    const h = await again.prepare(request('h1', 'new', { NetworkMode: net }));
    assert.notEqual(h.networkSettings.Networks[net].IPAddress, f.networkSettings.Networks[net].IPAddress, 'the kept address stays taken');
    await again.release(request('h1', '', {}).containerId);
    await again.release(request('f1', '', {}).containerId);
    svc = again;
    // A veth left behind (its namespace was held when the daemon went away) goes at the next reconcile.
    const stale = svc.names.veth();
    assert.equal((await run('ip', ['link', 'add', stale, 'type', 'veth', 'peer', 'name', `${prefix}xp`])).code, 0);
    await svc.reconcile(new Set());
    assert.ok(!existsSync(`/sys/class/net/${stale}`), 'stale veth removed');
  });

  test('removing the networks and stopping leaves no bridge, veth or rule with this suffix', async () => {
    await svc.remove(`n-${sfx}-a`);
    for (const h of shutdownHooks.splice(0).reverse()) await h();
    await eventually('no host object is left', async () => (await hostObjects()).length === 0).catch(async () => assert.deepEqual(await hostObjects(), []));
  });
});

