// docker save / load / import / image prune / system df with the real docker CLI against
// `berth daemon`. Images come from OCI layouts built here, turned into docker-archives by skopeo
// (an independent writer) and loaded; no registry is needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { buildBusyboxLayout, buildMultiLayerLayout, pushLayout } from '../helpers/images.ts';
import { startRegistry } from '../helpers/registry.ts';
import { gzip, rawTar, sha256 } from '../helpers/tar.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

let d: TestDaemon;
let work: string;
let busyboxId: string;
let multiId: string;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ok(args: string[], opts: { input?: string } = {}): Promise<RunResult> {
  const r = await d.docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}\n${explain(r)}`);
  return r;
}

async function imageIds(daemon: TestDaemon): Promise<string[]> {
  const r = await daemon.docker(['images', '-q', '--no-trunc']);
  assert.equal(r.code, 0, explain(r));
  return [...new Set(r.stdout.trim().split('\n').filter(Boolean))].sort();
}

async function tags(daemon: TestDaemon): Promise<string[]> {
  const r = await daemon.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.equal(r.code, 0, explain(r));
  return r.stdout.trim().split('\n').filter(Boolean).sort();
}

before(async () => {
  if (skip) return;
  work = mkdtempSync('/tmp/berth-archive-');
  d = await TestDaemon.start();
  const bb = buildBusyboxLayout(join(work, 'bb'));
  const ml = buildMultiLayerLayout(join(work, 'ml'), { labels: { purpose: 'test' } });
  busyboxId = bb.images[0]!.configDigest;
  multiId = ml.images[0]!.configDigest;
  // skopeo writes old-style docker-archives (<hex>.tar layers, manifest.json)
  sh('skopeo', ['copy', '-q', `oci:${bb.dir}:latest`, `docker-archive:${join(work, 'bb.tar')}:busybox:latest`]);
  sh('skopeo', ['copy', '-q', `oci:${ml.dir}:latest`, `docker-archive:${join(work, 'ml.tar')}:example.com/multi:v1`]);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('docker save / load / import / prune / df', { skip }, () => {
  test('docker load of skopeo docker-archives: IDs and tags as written', async () => {
    let r = await ok(['load', '-i', join(work, 'bb.tar')]);
    assert.match(r.stdout, /^Loaded image: busybox:latest$/m);
    r = await ok(['load', '-q', '-i', join(work, 'ml.tar')]);
    assert.equal(r.stdout.trim(), 'Loaded image: example.com/multi:v1');
    assert.deepEqual(await imageIds(d), [busyboxId, multiId].sort());
    assert.deepEqual(await tags(d), ['busybox:latest', 'example.com/multi:v1']);
    r = await ok(['image', 'inspect', '--format', '{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}', 'example.com/multi:v1']);
    assert.equal(r.stdout.trim(), 'linux/amd64 3');
  });

  test('docker save of two images → docker load into a fresh daemon: same IDs and tags', async () => {
    await ok(['tag', 'busybox:latest', 'busybox:second']);
    const file = join(work, 'both.tar');
    await ok(['save', '-o', file, 'busybox', 'example.com/multi:v1']);
    const names = sh('tar', ['-tf', file]).trim().split('\n');
    for (const n of ['manifest.json', 'index.json', 'oci-layout', 'repositories']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
    const manifest = JSON.parse(sh('tar', ['-xOf', file, 'manifest.json']));
    assert.equal(manifest.length, 2);
    assert.deepEqual(manifest.flatMap((m: { RepoTags: string[] }) => m.RepoTags).sort(), ['busybox:latest', 'busybox:second', 'example.com/multi:v1']);
    // an independent reader agrees
    const inspected = JSON.parse(sh('skopeo', ['inspect', '--config', `docker-archive:${file}:example.com/multi:v1`]));
    assert.equal(`sha256:${sha256(JSON.stringify(inspected)).slice(7)}`.length, 71);
    const fresh = await TestDaemon.start();
    try {
      const r = await fresh.docker(['load', '-i', file]);
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /Loaded image: busybox:latest/);
      assert.match(r.stdout, /Loaded image: busybox:second/);
      assert.match(r.stdout, /Loaded image: example.com\/multi:v1/);
      assert.deepEqual(await imageIds(fresh), [busyboxId, multiId].sort());
      assert.deepEqual(await tags(fresh), ['busybox:latest', 'busybox:second', 'example.com/multi:v1']);
      // and saving from there gives the same bytes for the layers
      const again = join(work, 'again.tar');
      const s = await fresh.docker(['save', '-o', again, 'example.com/multi:v1']);
      assert.equal(s.code, 0, explain(s));
      const m2 = JSON.parse(sh('tar', ['-xOf', again, 'manifest.json']));
      assert.deepEqual(m2[0].Layers, manifest.find((m: { RepoTags: string[] }) => m.RepoTags.includes('example.com/multi:v1')).Layers);
    } finally {
      await fresh.cleanup();
    }
  });

  test('POST /images/load without quiet: docker\'s progress messages, then the stream lines', async () => {
    const res = await d.request('POST', '/images/load', { body: readFileSync(join(work, 'bb.tar')), headers: { 'Content-Type': 'application/x-tar' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    const lines = res.body.toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines[lines.length - 1], { stream: 'Loaded image: busybox:latest\n' });
    for (const l of lines.slice(0, -1)) assert.ok(l.status === 'Loading layer' && typeof l.id === 'string', JSON.stringify(l));
  });

  test('docker save to stdout, and of an unknown image', async () => {
    const r = await d.docker(['save', 'nosuch:latest', '-o', join(work, 'x.tar')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No such image: nosuch:latest/);
    const res = await d.request('GET', `/images/${busyboxId}/get`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-tar');
  });

  test('docker load of an OCI layout tar with an image name annotation', async () => {
    const dir = join(work, 'oci');
    const bb = buildBusyboxLayout(dir, { cmd: ['/bin/echo', 'oci'] });
    const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    idx.manifests[0].annotations['io.containerd.image.name'] = 'docker.io/library/ocibox:1';
    writeFileSync(join(dir, 'index.json'), JSON.stringify(idx));
    const file = join(work, 'oci.tar');
    sh('tar', ['-C', dir, '--exclude=.rootfs', '-cf', file, '.']);
    const r = await ok(['load', '-i', file]);
    assert.match(r.stdout, /Loaded image: ocibox:1/);
    const id = (await ok(['image', 'inspect', '--format', '{{.Id}}', 'ocibox:1'])).stdout.trim();
    assert.equal(id, bb.images[0]!.configDigest);
  });

  test('hostile archives are refused and leave nothing behind', async () => {
    const before = await imageIds(d);
    const layer = rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hosts', data: 'x' }]);
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } });
    const cases: Array<[string, Buffer, RegExp]> = [
      ['traversal', rawTar([{ name: '../evil', data: 'x' }]), /escapes the archive/],
      ['wrong layer digest', rawTar([
        { name: 'l/layer.tar', data: rawTar([{ name: 'other', data: 'y' }]) }, { name: 'c.json', data: config },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:1'], Layers: ['l/layer.tar'] }]) },
      ]), /diff ID/],
      ['wrong gzip layer', rawTar([
        { name: 'l/layer.tar', data: gzip(rawTar([{ name: 'other', data: 'y' }])) }, { name: 'c.json', data: config },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:2'], Layers: ['l/layer.tar'] }]) },
      ]), /diff/i],
      ['blob not matching its name', rawTar([{ name: `blobs/sha256/${sha256('a').slice(7)}`, data: 'b' }]), /does not match its digest/],
    ];
    const contentDir = join(d.dataRoot, 'image', 'content', 'blobs', 'sha256');
    const blobsBefore = readdirSync(contentDir).sort();
    for (const [what, tar, re] of cases) {
      const file = join(work, `hostile-${what.replace(/ /g, '-')}.tar`);
      writeFileSync(file, tar);
      const r = await d.docker(['load', '-i', file]);
      assert.notEqual(r.code, 0, `${what}: ${explain(r)}`);
      assert.match(r.stderr + r.stdout, re, what);
    }
    assert.deepEqual(await imageIds(d), before);
    assert.deepEqual(readdirSync(contentDir).sort(), blobsBefore);
  });

  test('docker import: rootfs tarball with --change and a message', async () => {
    const root = join(work, 'rootfs');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin', 'hello'), 'hi\n');
    const tarFile = join(work, 'rootfs.tar.gz');
    sh('tar', ['-C', root, '-czf', tarFile, '.']);
    const r = await ok(['import', '--change', 'CMD ["sh"]', '--change', 'ENV FOO=bar', '--change', 'EXPOSE 8080', tarFile, 'imported:v1']);
    const id = r.stdout.trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const insp = JSON.parse((await ok(['image', 'inspect', 'imported:v1'])).stdout)[0];
    assert.equal(insp.Id, id);
    assert.deepEqual(insp.Config.Cmd, ['sh']);
    assert.ok(insp.Config.Env.includes('FOO=bar'));
    assert.ok('8080/tcp' in insp.Config.ExposedPorts);
    assert.equal(insp.RootFS.Layers.length, 1);
    const hist = await ok(['history', '--format', '{{.Comment}}', 'imported:v1']);
    assert.equal(hist.stdout.trim(), 'Imported from -');
    // untagged, with a message; an empty tarball is refused
    const r2 = await ok(['import', '-m', 'my message', tarFile]);
    const hist2 = await ok(['history', '--format', '{{.Comment}}', r2.stdout.trim()]);
    assert.equal(hist2.stdout.trim(), 'my message');
    // from a URL
    const server = createServer((req, res) => { res.end(readFileSync(tarFile)); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rootfs.tar.gz`;
      const r4 = await ok(['import', url, 'fromurl:1']);
      const hist4 = await ok(['history', '--format', '{{.Comment}}', 'fromurl:1']);
      assert.equal(hist4.stdout.trim(), `Imported from ${url}`);
      assert.equal((await ok(['image', 'inspect', '--format', '{{.Id}}', 'fromurl:1'])).stdout.trim(), r4.stdout.trim().split('\n').pop());
    } finally {
      server.close();
    }
    const r3 = await d.docker(['import', '-'], { input: '' });
    assert.notEqual(r3.code, 0, explain(r3));
    assert.match(r3.stderr, /empty/);
  });

  test('docker system df and docker image prune (dangling, then -a)', async () => {
    let r = await ok(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Size}}']);
    const imagesLine = r.stdout.split('\n').find((l) => l.startsWith('Images '));
    assert.ok(imagesLine && !/ 0B$/.test(imagesLine), r.stdout);
    const df = await d.request('GET', '/system/df');
    const body = JSON.parse(df.body.toString());
    assert.ok(body.LayersSize > 0);
    const bbRow = body.Images.find((i: { Id: string }) => i.Id === busyboxId);
    assert.ok(bbRow.Size > 0);
    // busybox's layer is shared with the multi-layer image and the OCI-loaded one
    assert.ok(bbRow.SharedSize > 0, JSON.stringify(bbRow));

    // an untagged import is dangling: prune removes it and keeps the tagged images
    const root = join(work, 'rootfs');
    const tarFile = join(work, 'rootfs2.tar');
    sh('tar', ['-C', root, '-cf', tarFile, '.']);
    const danglingId = (await ok(['import', '--change', 'LABEL x=y', tarFile])).stdout.trim();
    assert.ok((await imageIds(d)).includes(danglingId));
    // a load that moves a tag says so, as dockerd
    const moved = join(work, 'moved.tar');
    await ok(['tag', danglingId, 'busybox:moving']);
    await ok(['save', '-o', moved, 'busybox:moving']);
    await ok(['tag', busyboxId, 'busybox:moving']);
    r = await ok(['load', '-i', moved]);
    assert.match(r.stdout, new RegExp(`^The image busybox:moving already exists, renaming the old one with ID ${busyboxId} to empty string$`, 'm'));
    // back to busybox, then drop the extra name: the imported image is dangling again
    await ok(['tag', busyboxId, 'busybox:moving']);
    await ok(['rmi', 'busybox:moving']);
    const tagsBefore = await tags(d);
    const dangling = join(work, 'dangling.tar');
    await ok(['save', '-o', dangling, busyboxId]);
    r = await ok(['image', 'prune', '-f']);
    assert.match(r.stdout, new RegExp(`deleted: ${danglingId}`));
    assert.match(r.stdout, /Total reclaimed space:/);
    assert.ok(!(await imageIds(d)).includes(danglingId));
    // every untagged image went (the untagged import of the test above too), every tagged one stayed
    assert.deepEqual(await tags(d), tagsBefore.filter((t) => t !== '<none>:<none>'));

    r = await ok(['system', 'df', '-v']);
    assert.match(r.stdout, /^Images space usage:/m);
    assert.match(r.stdout, /^busybox\s+(latest|second)\s+/m);

    // filters: until (all test images are from 2024) and label (only the multi-layer image has purpose=test)
    r = await ok(['image', 'prune', '-a', '-f', '--filter', 'until=2023-06-01T00:00:00Z']);
    assert.match(r.stdout, /Total reclaimed space: 0B/);
    assert.ok((await imageIds(d)).includes(multiId));
    r = await ok(['image', 'prune', '-a', '-f', '--filter', 'label=purpose=test']);
    assert.match(r.stdout, /untagged: example.com\/multi:v1/);
    assert.match(r.stdout, new RegExp(`deleted: ${multiId}`));
    assert.ok((await imageIds(d)).includes(busyboxId));
    const bad = await d.docker(['image', 'prune', '-f', '--filter', 'until=yesterday']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /until/);

    r = await ok(['image', 'prune', '-a', '-f']);
    assert.match(r.stdout, /Deleted Images:/);
    assert.match(r.stdout, /untagged: busybox:latest/);
    assert.match(r.stdout, new RegExp(`deleted: ${busyboxId}`));
    assert.deepEqual(await imageIds(d), []);
    // nothing left in the stores
    assert.deepEqual(readdirSync(join(d.dataRoot, 'image', 'content', 'blobs', 'sha256')), []);
    const snapDir = join(d.dataRoot, 'image', 'snapshots', 'snapshots');
    assert.deepEqual(readdirSync(snapDir), []);
    r = await ok(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Size}}']);
    assert.match(r.stdout, /^Images 0 0B$/m);

    // an untagged image in an archive loads as "Loaded image ID" and is dangling
    r = await ok(['load', '-i', dangling]);
    assert.match(r.stdout, new RegExp(`Loaded image ID: ${busyboxId}`));
    r = await ok(['image', 'prune', '-f']);
    assert.match(r.stdout, new RegExp(`deleted: ${busyboxId}`));
    r = await ok(['builder', 'prune', '-f']);
    assert.match(r.stdout, /Total:\s+0B|Total reclaimed space: 0B/);
  });
});

describe('save of a pulled image', { skip }, () => {
  test('pull (gzip layers) → save → load into a fresh daemon: same ID; format=oci keeps the registry manifest', async () => {
    const reg = await startRegistry();
    const fresh = await TestDaemon.start();
    try {
      const ml = buildMultiLayerLayout(join(work, 'pulled'));
      const digest = await pushLayout(ml, reg.host, 'pulled:1');
      const name = `${reg.host}/pulled:1`;
      await ok(['pull', '-q', name]);
      const file = join(work, 'pulled.tar');
      await ok(['save', '-o', file, name]);
      const manifest = JSON.parse(sh('tar', ['-xOf', file, 'manifest.json']));
      assert.deepEqual(manifest[0].RepoTags, [name]);
      // layers go out uncompressed: each file is its diff ID
      for (const l of manifest[0].Layers as string[]) {
        const bytes = spawnSync('tar', ['-xOf', file, l], { maxBuffer: 1 << 28 }).stdout;
        assert.equal(sha256(bytes).slice(7), l.split('/').pop());
      }
      const r = await fresh.docker(['load', '-i', file]);
      assert.equal(r.code, 0, explain(r));
      assert.equal(r.stdout.trim(), `Loaded image: ${name}`);
      assert.deepEqual(await imageIds(fresh), [ml.images[0]!.configDigest]);

      // the OCI form: the stored manifest and compressed blobs as pulled
      const res = await d.request('GET', `/images/get?names=${encodeURIComponent(name)}&format=oci`);
      assert.equal(res.status, 200);
      const oci = join(work, 'pulled-oci.tar');
      writeFileSync(oci, res.body);
      const raw = sh('skopeo', ['inspect', '--raw', `oci-archive:${oci}`]);
      assert.equal(sha256(raw), digest);

      // a blob corrupted on disk: the save is cut (the CLI fails), the daemon lives on
      const layerBlob = ml.images[0]!.layers[2]!.digest;
      const path = join(d.dataRoot, 'image', 'content', 'blobs', 'sha256', layerBlob.slice(7));
      writeFileSync(path, gzip(Buffer.alloc(4096, 1)));
      const cut = await d.docker(['save', '-o', join(work, 'cut.tar'), name]);
      assert.notEqual(cut.code, 0, explain(cut));
      const alive = await d.docker(['version']);
      assert.equal(alive.code, 0, d.log().split('\n').slice(-15).join('\n'));
      assert.match(d.log(), /corrupt in the content store/);
    } finally {
      await fresh.cleanup();
      await reg.stop();
    }
  });
});
