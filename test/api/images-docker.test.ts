// The real docker CLI against `berth daemon` for the image commands: pull (OCI, schema2,
// multi-arch with --platform, by digest), images, tag, rmi, push (read back by skopeo), image
// inspect, history, login/logout; the unpacked tree of the multi-layer image; kill -9 mid-pull.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { startProxy, startRegistry, skopeoInspect, TEST_PASSWORD, TEST_USER, type TestRegistry } from '../helpers/registry.ts';
import {
  buildBusyboxLayout, buildLayout, buildMultiArchLayout, buildMultiLayerLayout, makeRandomRootfs, MULTI_LAYER_ABSENT, MULTI_LAYER_EXPECTED,
  pushLayout, tempLayoutDir, type Layout,
} from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let reg: TestRegistry;
let busybox: Layout;
let multi: Layout;
let arch: Layout;
const dirs: string[] = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  busybox = buildBusyboxLayout(tempLayoutDir());
  multi = buildMultiLayerLayout(tempLayoutDir());
  arch = buildMultiArchLayout(tempLayoutDir());
  dirs.push(busybox.dir, multi.dir, arch.dir);
  await pushLayout(busybox, reg.host, 'library/busybox:latest');
  await pushLayout(multi, reg.host, 'multi:v2s2', { format: 'v2s2' });
  await pushLayout(arch, reg.host, 'arch:latest');
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
  await reg?.stop();
  for (const x of dirs) rmSync(x, { recursive: true, force: true });
});

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${explain(r)}\n${d.log().slice(-3000)}`);
  return r.stdout;
}

test('docker pull (OCI): docker\'s lines; images, inspect, history', { skip }, async () => {
  const name = `${reg.host}/library/busybox`;
  const out = await ok(['pull', name]);
  const layer = busybox.images[0]!.layers[0]!.digest.slice(7, 19);
  assert.match(out, /^Using default tag: latest$/m);
  assert.match(out, /^latest: Pulling from library\/busybox$/m);
  assert.match(out, new RegExp(`^${layer}: Pull complete$`, 'm'));
  assert.match(out, /^Digest: sha256:[0-9a-f]{64}$/m);
  assert.match(out, new RegExp(`^Status: Downloaded newer image for ${name.replace(/\./g, '\\.')}:latest$`, 'm'));
  assert.match(out, new RegExp(`^${name.replace(/\./g, '\\.')}:latest$`, 'm'));

  const again = await ok(['pull', name]);
  assert.match(again, /^Status: Image is up to date for /m);
  assert.doesNotMatch(again, /Already exists/); // dockerd prints no layer lines for a complete image

  const images = await ok(['images', '--format', '{{.Repository}} {{.Tag}} {{.ID}}']);
  assert.match(images, new RegExp(`^${name.replace(/\./g, '\\.')} latest ${busybox.images[0]!.configDigest.slice(7, 19)}$`, 'm'));
  const digests = await ok(['images', '--digests', '--format', '{{.Digest}}']);
  assert.equal(digests.trim(), busybox.descriptor.digest);

  const inspect = JSON.parse(await ok(['image', 'inspect', name])) as Array<Record<string, any>>;
  assert.equal(inspect[0]!.Id, busybox.images[0]!.configDigest);
  assert.deepEqual(inspect[0]!.RepoTags, [`${name}:latest`]);
  assert.deepEqual(inspect[0]!.RepoDigests, [`${name}@${busybox.descriptor.digest}`]);
  assert.deepEqual(inspect[0]!.RootFS, { Type: 'layers', Layers: busybox.images[0]!.layers.map((l) => l.diffId) });
  assert.equal(inspect[0]!.Os, 'linux');
  assert.ok(inspect[0]!.Size > 500_000);
  const history = await ok(['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}', name]);
  assert.match(history.split('\n')[0]!, new RegExp(`^${busybox.images[0]!.configDigest}\\|`));

  const info = await ok(['info', '--format', '{{.Images}} {{.Driver}}']);
  assert.match(info, /^1 (overlay2|vfs)$/m);
});

test('docker pull of a schema2 multi-layer image: the unpacked tree', { skip }, async () => {
  const name = `${reg.host}/multi:v2s2`;
  const out = await ok(['pull', name]);
  assert.match(out, /Already exists$/m); // busybox's layer is shared
  // Sizes as dockerd 20.10 prints them for this image (file bytes, not tar bytes).
  const sizes = await ok(['history', '--format', '{{.Size}}', name]);
  assert.deepEqual(sizes.trim().split('\n').slice(0, 2), ['14B', '61B']);
  const inspect = JSON.parse(await ok(['image', 'inspect', name])) as Array<Record<string, any>>;
  const g = inspect[0]!.GraphDriver as { Name: string; Data: Record<string, string> | null };
  if (g.Name !== 'overlay2') return;
  const mnt = mkdtempSync(join(tmpdir(), 'berth-merged-'));
  const lower = [g.Data!.UpperDir, ...(g.Data!.LowerDir ?? '').split(':').filter(Boolean)].join(':');
  const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower}`, mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  try {
    for (const [p, e] of Object.entries(MULTI_LAYER_EXPECTED)) {
      const full = join(mnt, p);
      const st = lstatSync(full);
      if (e.type === 'file') {
        assert.ok(st.isFile(), p);
        assert.equal(readFileSync(full, 'utf8'), e.content, p);
        if (e.mode !== undefined) assert.equal(st.mode & 0o7777, e.mode, p);
      } else if (e.type === 'dir') {
        assert.ok(st.isDirectory(), p);
        if (e.mode !== undefined) assert.equal(st.mode & 0o7777, e.mode, p);
      } else {
        assert.equal(readlinkSync(full), e.target, p);
      }
    }
    for (const p of MULTI_LAYER_ABSENT) assert.equal(existsSync(join(mnt, p)), false, p);
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test('docker pull --platform from a multi-arch index', { skip }, async () => {
  const name = `${reg.host}/arch:latest`;
  const arm = arch.images.find((i) => i.platform.architecture === 'arm64')!;
  await ok(['pull', '--platform', 'linux/arm64', name]);
  const inspect = JSON.parse(await ok(['image', 'inspect', name])) as Array<Record<string, any>>;
  assert.equal(inspect[0]!.Id, arm.configDigest);
  assert.equal(inspect[0]!.Architecture, 'arm64');
  assert.deepEqual(inspect[0]!.RepoDigests, [`${name.replace(':latest', '')}@${arch.descriptor.digest}`]);
  const bad = await d.docker(['pull', '--platform', 'linux/mips64', name]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no matching manifest for linux\/mips64/);
});

test('docker tag, rmi (names, multiple repositories, force), errors', { skip }, async () => {
  const name = `${reg.host}/library/busybox:latest`;
  await ok(['tag', name, 'mine:one']);
  await ok(['tag', name, 'other/x:two']);
  let r = await d.docker(['rmi', busybox.images[0]!.configDigest.slice(7, 19)]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /conflict: unable to delete [0-9a-f]{12} \(must be forced\) - image is referenced in multiple repositories/);
  assert.equal((await ok(['rmi', 'mine:one'])).trim(), 'Untagged: mine:one');
  r = await d.docker(['rmi', 'nosuch']);
  assert.match(r.stderr, /No such image: nosuch:latest/);
  r = await d.docker(['image', 'inspect', 'nosuch']);
  assert.match(r.stderr, /No such image: nosuch/);
  const ev = await ok(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--format', '{{.Action}}']);
  for (const a of ['pull', 'tag', 'untag']) assert.match(ev, new RegExp(`^${a}$`, 'm'));
  await ok(['rmi', 'other/x:two']);
});

test('docker push (skopeo reads it back with the same digest), pull again by digest', { skip }, async () => {
  const src = `${reg.host}/library/busybox:latest`;
  const dst = `${reg.host}/pushed/bb:v1`;
  await ok(['tag', src, dst]);
  const out = await ok(['push', dst]);
  assert.match(out, new RegExp(`^The push refers to repository \\[${reg.host.replace(/\./g, '\\.')}/pushed/bb\\]$`, 'm'));
  assert.match(out, /^[0-9a-f]{12}: (Mounted from [a-z/]+|Pushed|Layer already exists)$/m);
  const m = /^v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/m.exec(out);
  assert.ok(m, out);
  assert.equal(m![1], busybox.descriptor.digest); // the original manifest bytes
  const inspected = JSON.parse(await skopeoInspect(reg, 'pushed/bb:v1')) as { Digest: string };
  assert.equal(inspected.Digest, m![1]);
  await ok(['rmi', dst]);
  const byDigest = await ok(['pull', `${reg.host}/pushed/bb@${m![1]}`]);
  assert.match(byDigest, /^Status: (Downloaded newer image|Image is up to date) for /m);
  const r = await d.docker(['push', `${reg.host}/nothere:v9`]);
  assert.match(r.stderr, /An image does not exist locally with the tag: /);
});

test('docker rmi -f by ID: every name untagged, the image and its unshared layers deleted', { skip }, async () => {
  const name = `${reg.host}/arch:latest`;
  await ok(['tag', name, 'second/repo:x']);
  const id = JSON.parse(await ok(['image', 'inspect', '--format', '{{json .Id}}', name])) as string;
  const out = await ok(['rmi', '-f', id.slice(7, 19)]);
  assert.match(out, /^Untagged: second\/repo:x$/m);
  assert.match(out, new RegExp(`^Untagged: ${reg.host.replace(/\./g, '\\.')}/arch:latest$`, 'm'));
  assert.match(out, new RegExp(`^Deleted: ${id}$`, 'm'));
  const r = await d.docker(['image', 'inspect', id]);
  assert.notEqual(r.code, 0);
  const ev = await ok(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--filter', 'event=delete', '--format', '{{.Actor.ID}}']);
  assert.match(ev, new RegExp(`^${id}$`, 'm'));
});

test('docker save | load, then push of the loaded image (its stored layer blobs are sent)', { skip }, async () => {
  const src = `${reg.host}/multi:v2s2`;
  const tar = join(mkdtempSync(join(tmpdir(), 'berth-save-')), 'multi.tar');
  dirs.push(join(tar, '..'));
  await ok(['save', '-o', tar, src]);
  await ok(['rmi', src]);
  const loaded = await ok(['load', '-i', tar]);
  assert.match(loaded, /Loaded image: /);
  const dst = `${reg.host}/loaded/multi:v1`;
  await ok(['tag', src, dst]);
  const out = await ok(['push', dst]);
  const m = /^v1: digest: (sha256:[0-9a-f]{64}) size: \d+$/m.exec(out);
  assert.ok(m, out);
  const inspected = JSON.parse(await skopeoInspect(reg, 'loaded/multi:v1')) as { Digest: string; Layers: string[] };
  assert.equal(inspected.Digest, m![1]);
  await ok(['rmi', dst]);
  const again = await ok(['pull', `${reg.host}/loaded/multi@${m![1]}`]);
  assert.match(again, /^Status: /m);
});
