// The real docker CLI against `berth daemon` for `docker volume create/ls/inspect/rm/prune`,
// and `berth volume …` with the same arguments giving the same output; the volumes part of
// /system/df and /info; the raw API's shapes and statuses.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;

before(async () => {
  if (skip) return;
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
});

const explain = (args: string[], r: RunResult): string => `${args.join(' ')}: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${d.log().slice(-2000)}`;

async function docker(args: string[], code = 0): Promise<RunResult> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.equal(r.code, code, explain(['docker', ...args], r));
  return r;
}

/** The same command through docker and berth: the same exit status, stdout and stderr. */
async function both(args: string[], code = 0): Promise<RunResult> {
  const a = await docker(args, code);
  const b = await d.berth(args, { timeoutMs: 60_000 });
  assert.equal(b.code, code, explain(['berth', ...args], b));
  assert.equal(b.stdout, a.stdout, `stdout of ${args.join(' ')}`);
  assert.equal(b.stderr, a.stderr, `stderr of ${args.join(' ')}`);
  return a;
}

test('docker volume create / ls / inspect, and berth volume … printing the same', { skip }, async () => {
  assert.equal((await docker(['volume', 'create', 'data10'])).stdout, 'data10\n');
  assert.equal((await d.berth(['volume', 'create', '--label', 'tier=db', '--label', 'empty', 'data2'])).stdout, 'data2\n');
  assert.equal((await docker(['volume', 'create', '--name', 'tmpvol', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m'])).stdout, 'tmpvol\n');
  // Creating an existing name again is fine and changes nothing.
  assert.equal((await docker(['volume', 'create', 'data10'])).stdout, 'data10\n');

  // docker sorts names naturally: data2 before data10.
  const ls = await both(['volume', 'ls']);
  assert.equal(ls.stdout, 'DRIVER    VOLUME NAME\nlocal     data2\nlocal     data10\nlocal     tmpvol\n');
  const anon = (await docker(['volume', 'create'])).stdout.trim();
  assert.match(anon, /^[0-9a-f]{64}$/);
  await both(['volume', 'create', '0007']);
  await both(['volume', 'create', '07']);
  const q = (await both(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  assert.deepEqual(q.filter((n) => n !== anon), ['07', '0007', 'data2', 'data10', 'tmpvol'], 'equal numbers: fewer leading zeros first');
  await docker(['volume', 'rm', '07', '0007']);
  assert.equal((await both(['volume', 'ls', '-q', '--filter', 'label=tier=db'])).stdout, 'data2\n');
  assert.equal((await both(['volume', 'ls', '-q', '--filter', 'name=data1', '--filter', 'dangling=true'])).stdout, 'data10\n');
  assert.equal((await both(['volume', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}} {{.Label "tier"}} {{.Links}} {{.Size}}', '-f', 'label=tier'])).stdout, 'data2 local local db N/A N/A\n');
  // docker 28 joins labels in Go's map order (random), later versions sorted: berth sorts.
  assert.equal((await d.berth(['volume', 'ls', '--format', '[{{.Labels}}]', '-f', 'label=tier'])).stdout, '[empty=,tier=db]\n');
  await both(['volume', 'ls', '--format', 'table {{.Name}}\t{{.Mountpoint}}']);
  const json = await d.berth(['volume', 'ls', '--format', 'json', '-f', 'name=data2']);
  assert.deepEqual(JSON.parse(json.stdout), {
    Availability: 'N/A', Driver: 'local', Group: 'N/A', Labels: 'empty=,tier=db', Links: 'N/A',
    Mountpoint: join(d.dataRoot, 'volumes', 'data2', '_data'), Name: 'data2', Scope: 'local', Size: 'N/A', Status: 'N/A',
  });
  const bad = await both(['volume', 'ls', '-f', 'bogus=1'], 1);
  assert.equal(bad.stderr, "Error response from daemon: invalid filter 'bogus'\n");

  // inspect: docker re-encodes the daemon's answer; berth must print the same bytes.
  const insp = await both(['volume', 'inspect', 'data2', 'tmpvol']);
  const [v2, tmp] = JSON.parse(insp.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(Object.keys(v2), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  assert.deepEqual(v2.Labels, { empty: '', tier: 'db' });
  assert.deepEqual(v2.Options, {});
  assert.equal(v2.Scope, 'local');
  assert.deepEqual(tmp.Options, { device: 'tmpfs', o: 'size=1m', type: 'tmpfs' });
  assert.match(insp.stdout, /^\[\n {4}\{\n {8}"CreatedAt": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)",\n/);
  assert.ok(existsSync(v2.Mountpoint as string));
  const anonInsp = JSON.parse((await both(['volume', 'inspect', anon])).stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(anonInsp[0].Labels, { 'com.docker.volume.anonymous': '' });
  assert.equal((await both(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Labels}} {{json .Options}}', 'data2'])).stdout, 'data2 local map[empty: tier:db] {}\n');
  await both(['volume', 'inspect', '--format', 'json', 'data2']);
  await both(['volume', 'inspect', '-f', '{{.UsageData}} {{.Status}} {{.ClusterVolume}} {{.CreatedAt}} {{.Mountpoint}} {{.Scope}} {{.Options}} {{json .}}', 'data2']);
  // A missing field is an error naming docker's type (the template engine's position aside).
  for (const r of [await docker(['volume', 'inspect', '-f', '{{.Nope}}', 'data2'], 1), await d.berth(['volume', 'inspect', '-f', '{{.Nope}}', 'data2'])]) {
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^template parsing error: template: .*can't evaluate field Nope in type volume\.Volume\n$/);
  }
  const missing = await both(['volume', 'inspect', 'data2', 'nosuch'], 1);
  assert.equal(missing.stderr, 'Error response from daemon: get nosuch: no such volume\n');
  assert.equal(JSON.parse(missing.stdout).length, 1);
  assert.equal((await both(['volume', 'inspect', 'nosuch'], 1)).stdout, '[]\n');

  // Errors from the daemon, word for word.
  assert.equal((await both(['volume', 'create', 'a'], 1)).stderr, 'Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters\n');
  assert.equal((await both(['volume', 'create', '-o', 'bogus=1', 'vv'], 1)).stderr, 'Error response from daemon: create vv: invalid option: "bogus"\n');
  assert.equal((await both(['volume', 'create', '-d', 'flocker', 'vv'], 1)).stderr, 'Error response from daemon: create vv: error looking up volume plugin flocker: plugin "flocker" not found\n');
  assert.equal((await both(['volume', 'create', '--name', 'x1', 'x2'], 1)).stderr, 'conflicting options: cannot specify a volume-name through both --name and as a positional arg\n');
});

test('volume rm and prune; /system/df and /info', { skip }, async () => {
  for (const n of ['gone1', 'gone2', 'named3']) await docker(['volume', 'create', n]);
  writeFileSync(join(d.dataRoot, 'volumes', 'named3', '_data', 'payload'), Buffer.alloc(2048));

  const rm = await docker(['volume', 'rm', 'gone1', 'nosuch', 'gone2'], 1);
  assert.equal(rm.stdout, 'gone1\ngone2\n');
  assert.equal(rm.stderr, 'Error response from daemon: get nosuch: no such volume\n');
  assert.equal((await both(['volume', 'rm', '-f', 'nosuch'])).stdout, 'nosuch\n');
  const brm = await d.berth(['volume', 'rm', 'nosuch']);
  assert.equal(brm.code, 1);
  assert.equal(brm.stderr, 'Error response from daemon: get nosuch: no such volume\n');

  // df: the volumes with their sizes; docker's summary line counts them.
  const df = (await d.request('GET', '/v1.47/system/df?type=volume')).json<{ Volumes: Array<{ Name: string; UsageData: { Size: number; RefCount: number } }> }>();
  const named3 = df.Volumes.find((v) => v.Name === 'named3');
  assert.deepEqual(named3?.UsageData, { RefCount: 0, Size: 2048 });
  assert.ok(!df.Volumes.some((v) => v.Name === 'tmpvol'), 'volumes with driver options are left out, as dockerd does');
  const sysdf = await docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}']);
  assert.match(sysdf.stdout, new RegExp(`^Local Volumes ${df.Volumes.length} 0$`, 'm'));
  assert.equal((await docker(['info', '--format', '{{.Plugins.Volume}}'])).stdout, '[local]\n');

  // prune: anonymous volumes only by default, all=true for named ones too.
  const anon = (await docker(['volume', 'ls', '-q', '-f', 'label=com.docker.volume.anonymous'])).stdout.trim();
  assert.match(anon, /^[0-9a-f]{64}$/);
  assert.equal((await docker(['volume', 'prune', '-f'])).stdout, `Deleted Volumes:\n${anon}\n\nTotal reclaimed space: 0B\n`);
  assert.equal((await both(['volume', 'prune', '-f'])).stdout, 'Total reclaimed space: 0B\n');
  const declined = await d.berth(['volume', 'prune'], { input: 'n\n' });
  assert.equal(declined.code, 0);
  assert.equal(declined.stdout, 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ');
  const all = await d.berth(['volume', 'prune', '-a', '-f', '--filter', 'label!=tier']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, 'Deleted Volumes:\ndata10\nnamed3\n\nTotal reclaimed space: 2.048kB\n');
  assert.equal((await both(['volume', 'prune', '-f', '--all', '--filter', 'all=1'], 1)).stderr, 'conflicting options: cannot specify both --all and --filter all=1\n');
  // tmpvol has driver options: prune never takes it (dockerd's rule); data2 has the label.
  assert.equal((await both(['volume', 'ls', '-q'])).stdout, 'data2\ntmpvol\n');
  assert.equal((await docker(['volume', 'rm', 'data2', 'tmpvol'])).stdout, 'data2\ntmpvol\n');
  assert.equal((await both(['volume', 'ls'])).stdout, 'DRIVER    VOLUME NAME\n');
  const until = String(Math.ceil(Date.now() / 1000) + 1);
  const ev = (await docker(['events', '--since', '0', '--until', until, '--filter', 'type=volume', '--format', '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}'])).stdout;
  assert.match(ev, /^create gone1 local$/m);
  assert.match(ev, /^destroy gone1 local$/m);
  assert.match(ev, /^prune  <no value>$/m);
});

test('the raw API: statuses and shapes', { skip }, async () => {
  const created = await d.request('POST', '/v1.47/volumes/create', { body: JSON.stringify({ Name: 'raw1' }), headers: { 'Content-Type': 'application/json' } });
  assert.equal(created.status, 201);
  const v = created.json<Record<string, unknown>>();
  assert.equal(v.Labels, null, 'no labels sent: null, as dockerd');
  assert.equal(v.Options, null);
  const list = (await d.request('GET', '/v1.47/volumes')).json<{ Volumes: unknown[]; Warnings: unknown }>();
  assert.equal(list.Warnings, null);
  assert.equal(list.Volumes.length, 1);
  assert.equal((await d.request('GET', '/v1.47/volumes/nosuch')).status, 404);
  assert.equal((await d.request('POST', '/v1.47/volumes/create', { body: JSON.stringify({ Name: 'a' }), headers: { 'Content-Type': 'application/json' } })).status, 400);
  // API < 1.42: prune takes named volumes too.
  const pruned = (await d.request('POST', '/v1.41/volumes/prune')).json<{ VolumesDeleted: string[] }>();
  assert.deepEqual(pruned.VolumesDeleted, ['raw1']);
  assert.equal((await d.request('DELETE', '/v1.47/volumes/raw1')).status, 404);
  assert.equal((await d.request('DELETE', '/v1.47/volumes/raw1?force=1')).status, 204);
  const log = readFileSync(d.logFile, 'utf8');
  assert.doesNotMatch(log, /level=error/);
});

test('with containers: references, "volume is in use", copy-up at start, rm -v', { skip }, async (t) => {
  if ((await d.request('GET', '/v1.47/containers/json')).status === 404) {
    t.skip('this daemon has no container endpoints yet');
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'berth-vol-ctr-'));
  try {
    const root = join(work, 'rootfs');
    makeBusyboxRootfs(root);
    mkdirSync(join(root, 'srv', 'app'), { recursive: true });
    writeFileSync(join(root, 'srv', 'app', 'from-image'), 'image data\n');
    writeFileSync(join(work, 'img.tar'), tarDirectory(root));
    await docker(['import', '--change', 'VOLUME /srv/app', join(work, 'img.tar'), 'bbvol:latest']);
    const create = await d.request('POST', '/v1.47/containers/create?name=voltest', {
      body: JSON.stringify({ Image: 'bbvol', Cmd: ['cat', '/srv/app/from-image'], HostConfig: { Binds: ['shared:/shared'] } }),
      headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(create.status, 201, create.text);
    const id = create.json<{ Id: string }>().Id;
    const mounts = JSON.parse((await docker(['inspect', '--format', '{{json .Mounts}}', 'voltest'])).stdout) as Array<{ Name: string; Destination: string; Type: string }>;
    const anon = mounts.find((m) => m.Destination === '/srv/app')!.Name;
    assert.match(anon, /^[0-9a-f]{64}$/);
    const rm = await both(['volume', 'rm', 'shared'], 1);
    assert.equal(rm.stderr, `Error response from daemon: remove shared: volume is in use - [${id}]\n`);
    assert.equal((await both(['volume', 'ls', '-q', '-f', 'dangling=true'])).stdout, '');
    assert.equal((await both(['volume', 'prune', '-af'])).stdout, 'Total reclaimed space: 0B\n');
    // Start: the image's /srv/app is copied into the fresh anonymous volume.
    assert.equal((await d.request('POST', '/v1.47/containers/voltest/start')).status, 204);
    assert.equal((await d.request('POST', '/v1.47/containers/voltest/wait', { timeoutMs: 30_000 })).json<{ StatusCode: number }>().StatusCode, 0);
    assert.deepEqual(readdirSync(join(d.dataRoot, 'volumes', anon, '_data')), ['from-image']);
    assert.equal((await docker(['logs', 'voltest'])).stdout, 'image data\n');
    await docker(['rm', '-v', 'voltest']);
    assert.equal((await both(['volume', 'ls', '-q'])).stdout, 'shared\n', 'rm -v removed the anonymous volume, not the named one');
    await docker(['volume', 'rm', 'shared']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
