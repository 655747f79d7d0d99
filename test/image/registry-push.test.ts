// Pushing with the registry client into a real registry, read back by independent tools:
// `skopeo inspect` (exact manifest bytes and digest) and `skopeo copy` + `umoci unpack` (the
// layers apply into the expected tree). Also cross-repository mounts, chunked uploads (seen on
// the wire through a recording proxy), tag listing with pagination, and push errors.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parseDockerReference, type Reference } from '../../src/image/reference.ts';
import { RegistryClient, RegistryError } from '../../src/image/registry/index.ts';
import { MediaType } from '../../src/image/types.ts';
import {
  buildBusyboxLayout, buildMultiArchLayout, buildMultiLayerLayout, MULTI_LAYER_ABSENT, MULTI_LAYER_EXPECTED, pushLayout, runAsync,
  skopeoEnv, tempLayoutDir, type Layout,
} from '../helpers/images.ts';
import { skopeoInspect, startProxy, startRegistry, type RegistryProxy, type TestRegistry, rejectsWith } from '../helpers/registry.ts';

let reg: TestRegistry;
let proxy: RegistryProxy;
let multiLayer: Layout;
let multiArch: Layout;
let busybox: Layout;
const dirs: string[] = [];
const client = new RegistryClient({ retryDelayMs: 10 });

function ref(name: string, host = reg.host): Reference {
  return parseDockerReference(`${host}/${name}`);
}

function blob(layout: Layout, digest: string): Buffer {
  return readFileSync(join(layout.dir, 'blobs', 'sha256', digest.slice(7)));
}

function digestOf(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Pushes every blob and the manifest of a layout's single image with the client. */
async function pushImage(layout: Layout, target: Reference, tag: string, opts: { mountFrom?: string[]; index?: number } = {}) {
  const img = layout.images[opts.index ?? 0]!;
  const results = [];
  for (const l of img.layers) results.push(await client.pushBlob(target, l, blob(layout, l.digest), { mountFrom: opts.mountFrom }));
  results.push(await client.pushBlob(target, { digest: img.configDigest, size: img.configBytes.length }, img.configBytes, { mountFrom: opts.mountFrom }));
  const digest = await client.putManifest(target, tag, img.manifestBytes, MediaType.OciManifest);
  return { results, digest };
}

before(async () => {
  reg = await startRegistry();
  proxy = await startProxy(reg);
  dirs.push(tempLayoutDir(), tempLayoutDir(), tempLayoutDir());
  multiLayer = buildMultiLayerLayout(dirs[0]!);
  multiArch = buildMultiArchLayout(dirs[1]!);
  busybox = buildBusyboxLayout(dirs[2]!);
  await pushLayout(busybox, reg.host, 'skopeo/busybox:latest');
});

after(async () => {
  await proxy?.close();
  await reg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('push an image', () => {
  test('monolithic uploads + manifest by tag; skopeo sees the same bytes and umoci unpacks the expected tree', async () => {
    const target = ref('pushed/multi');
    const { results, digest } = await pushImage(multiLayer, target, 'v1');
    assert.deepEqual(results.map((r) => r.status), ['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    const img = multiLayer.images[0]!;
    assert.equal(digest, img.manifestDigest);

    const raw = await skopeoInspect(reg, 'pushed/multi:v1', { raw: true });
    assert.equal(raw, img.manifestBytes.toString('utf8'), 'skopeo reads back the exact manifest bytes');
    const inspected = JSON.parse(await skopeoInspect(reg, 'pushed/multi:v1')) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, digest);
    assert.deepEqual(inspected.Layers, img.layers.map((l) => l.digest));

    const work = mkdtempSync(join(dirs[0]!, 'umoci-'));
    await runAsync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/pushed/multi:v1`, `oci:${join(work, 'layout')}:v1`], { env: skopeoEnv() });
    await runAsync('umoci', ['unpack', '--image', `${join(work, 'layout')}:v1`, join(work, 'bundle')]);
    const rootfs = join(work, 'bundle', 'rootfs');
    for (const [path, want] of Object.entries(MULTI_LAYER_EXPECTED)) {
      const p = join(rootfs, path);
      const st = lstatSync(p);
      if (want.type === 'file') {
        assert.ok(st.isFile(), `${path} is a file`);
        assert.equal(readFileSync(p, 'utf8'), want.content, path);
        if (want.mode !== undefined) assert.equal(st.mode & 0o7777, want.mode, `${path} mode`);
      } else if (want.type === 'dir') {
        assert.ok(st.isDirectory(), `${path} is a directory`);
        if (want.mode !== undefined) assert.equal(st.mode & 0o7777, want.mode, `${path} mode`);
      } else {
        assert.ok(st.isSymbolicLink(), `${path} is a symlink`);
        assert.equal(readlinkSync(p), want.target);
      }
    }
    for (const path of MULTI_LAYER_ABSENT) assert.ok(!existsSync(join(rootfs, path)), `${path} is gone`);
    assert.ok(statSync(join(rootfs, 'bin', 'busybox')).isFile());
  });

  test('pushing again finds every blob present (HEAD), and a manifest can be put by digest', async () => {
    const target = ref('pushed/multi');
    const { results } = await pushImage(multiLayer, target, 'v1');
    assert.deepEqual(results.map((r) => r.status), ['exists', 'exists', 'exists', 'exists']);
    const img = multiLayer.images[0]!;
    const byDigest = await client.putManifest(ref('pushed/by-digest'), img.manifestDigest, img.manifestBytes, MediaType.OciManifest)
      .catch((e: unknown) => e);
    // the blobs are not in that repository yet: the registry refuses, naming the missing blob
    assert.ok(byDigest instanceof RegistryError);
    assert.equal(byDigest.code, 'MANIFEST_BLOB_UNKNOWN');
    assert.match(byDigest.message, /^manifest blob unknown: blob unknown to registry/);
    await pushImage(multiLayer, ref('pushed/by-digest'), img.manifestDigest, { mountFrom: ['pushed/multi'] });
    const head = await client.headManifest(ref('pushed/by-digest'), img.manifestDigest);
    assert.equal(head?.digest, img.manifestDigest);
    // no tag was created (distribution 2.8 calls a repository without tags unknown to tag listing)
    await rejectsWith(client.listTags(ref('pushed/by-digest')), 'NAME_UNKNOWN', /repository name not known/);
  });

  test('a manifest whose digest is not the one named is refused before sending', async () => {
    const img = multiLayer.images[0]!;
    await rejectsWith(client.putManifest(ref('pushed/multi'), `sha256:${'1'.repeat(64)}`, img.manifestBytes, MediaType.OciManifest),
      'DIGEST_MISMATCH', /its bytes have digest sha256:/);
  });

  test('an index: the platform manifests by digest, then the index by tag', async () => {
    const target = ref('pushed/multi-arch');
    for (let i = 0; i < multiArch.images.length; i++) await pushImage(multiArch, target, multiArch.images[i]!.manifestDigest, { index: i });
    const att = multiArch.index!.index.manifests.find((m) => m.platform?.architecture === 'unknown')!;
    const attManifest = JSON.parse(blob(multiArch, att.digest).toString()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
    for (const d of [attManifest.config, ...attManifest.layers]) await client.pushBlob(target, d, blob(multiArch, d.digest));
    await client.putManifest(target, att.digest, blob(multiArch, att.digest), MediaType.OciManifest);
    const digest = await client.putManifest(target, 'latest', multiArch.index!.bytes, MediaType.OciIndex);
    assert.equal(digest, multiArch.index!.digest);
    assert.equal(await skopeoInspect(reg, 'pushed/multi-arch:latest', { raw: true }), multiArch.index!.bytes.toString());
    const img = await client.resolve(target, { platform: { os: 'linux', architecture: 'arm', variant: 'v6' } });
    assert.equal(img.manifest.digest, multiArch.images[3]!.manifestDigest);
  });
});

describe('cross-repository mount', () => {
  test('an image pulled from one repository is pushed to another by mounting every blob', async () => {
    proxy.requests.length = 0;
    const src = ref('skopeo/busybox', proxy.host);
    const dst = ref('mounted/busybox', proxy.host);
    const pulled = await client.resolve(src);
    const results = [];
    for (const l of pulled.manifest.manifest.layers) results.push(await client.pushBlob(dst, l, Buffer.alloc(0), { mountFrom: [src.path] }));
    results.push(await client.pushBlob(dst, pulled.config.descriptor, pulled.config.bytes, { mountFrom: [src.path] }));
    assert.deepEqual(results, [{ status: 'mounted', from: 'skopeo/busybox' }, { status: 'mounted', from: 'skopeo/busybox' }]);
    await client.putManifest(dst, 'latest', pulled.manifest.bytes, pulled.manifest.mediaType);
    const posts = proxy.requests.filter((r) => r.method === 'POST');
    assert.equal(posts.length, 2);
    for (const p of posts) assert.match(p.url, /^\/v2\/mounted\/busybox\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=skopeo%2Fbusybox$/);
    assert.ok(!proxy.requests.some((r) => r.method === 'PUT' && r.url.includes('/blobs/')), 'no blob bytes were sent');
    assert.equal((await client.resolve(ref('mounted/busybox'))).digest, pulled.digest);
  });

  test('when the source repository lacks the blob, the upload the registry opened instead is used', async () => {
    proxy.requests.length = 0;
    const data = randomBytes(5000);
    const desc = { digest: digestOf(data), size: data.length };
    const r = await client.pushBlob(ref('mounted/fallback', proxy.host), desc, data, { mountFrom: ['skopeo/busybox'] });
    assert.deepEqual(r, { status: 'uploaded' });
    const posts = proxy.requests.filter((x) => x.method === 'POST');
    assert.equal(posts.length, 1, 'one POST: the mount attempt, whose 202 upload was reused');
    assert.equal(proxy.requests.filter((x) => x.method === 'PUT').length, 1);
    assert.deepEqual(await client.fetchBlob(ref('mounted/fallback'), desc), data);
  });
});

describe('uploads', () => {
  test('chunked above the threshold: PATCH with Content-Range per chunk, then PUT with the digest', async () => {
    proxy.requests.length = 0;
    const data = randomBytes(1_100_000);
    const desc = { digest: digestOf(data), size: data.length };
    const c = new RegistryClient({ chunkThreshold: 256 << 10, chunkSize: 300_000 });
    const progress: number[] = [];
    // a stream source in odd-sized pieces, so chunks are assembled across reads
    const source = { open: () => Readable.from((function* () { for (let i = 0; i < data.length; i += 77_777) yield data.subarray(i, i + 77_777); })()) };
    const r = await c.pushBlob(ref('chunked/blob', proxy.host), desc, source, { onProgress: (n) => progress.push(n) });
    assert.deepEqual(r, { status: 'uploaded' });
    const patches = proxy.requests.filter((x) => x.method === 'PATCH');
    assert.deepEqual(patches.map((p) => p.headers['content-range']), ['0-299999', '300000-599999', '600000-899999', '900000-1099999']);
    assert.deepEqual(progress, [300_000, 600_000, 900_000, 1_100_000]);
    const put = proxy.requests.filter((x) => x.method === 'PUT');
    assert.equal(put.length, 1);
    assert.match(put[0]!.url, new RegExp(`digest=${encodeURIComponent(desc.digest)}`));
    assert.deepEqual(await client.fetchBlob(ref('chunked/blob'), desc), data);
  });

  test('monolithic from a stream source (POST, then one PUT with the bytes)', async () => {
    proxy.requests.length = 0;
    const data = randomBytes(200_000);
    const desc = { digest: digestOf(data), size: data.length };
    const r = await client.pushBlob(ref('mono/blob', proxy.host), desc, { open: () => Readable.from([data.subarray(0, 1000), data.subarray(1000)]) });
    assert.deepEqual(r, { status: 'uploaded' });
    const calls = proxy.requests.filter((x) => x.url !== '/v2/').map((x) => `${x.method} ${x.url.replace(/\?.*/, '').replace(/uploads\/.+/, 'uploads/…')}`);
    assert.deepEqual(calls, [`HEAD /v2/mono/blob/blobs/${desc.digest}`, 'POST /v2/mono/blob/blobs/uploads/', 'PUT /v2/mono/blob/blobs/uploads/…']);
    assert.equal(proxy.requests.at(-1)!.headers['content-length'], '200000');
    assert.deepEqual(await client.fetchBlob(ref('mono/blob'), desc), data);
  });

  test('content that does not match the digest: the registry refuses (DIGEST_INVALID), nothing is stored', async () => {
    const data = randomBytes(1000);
    const wrong = { digest: digestOf(randomBytes(1000)), size: 1000 };
    await rejectsWith(client.pushBlob(ref('bad/blob'), wrong, data), 'DIGEST_INVALID',
      /^uploading blob sha256:[0-9a-f]{64} to .*bad\/blob failed: digest invalid: .*\(the source does not have the expected content\)$/);
    assert.equal(await client.blobExists(ref('bad/blob'), wrong.digest), undefined);
    const c = new RegistryClient({ chunkThreshold: 100, chunkSize: 300 });
    await rejectsWith(c.pushBlob(ref('bad/blob'), wrong, data), 'DIGEST_INVALID', /digest invalid/);
  });

  test('a source of the wrong length fails fast (buffer, short stream, long stream)', async () => {
    const data = randomBytes(1000);
    const desc = { digest: digestOf(data), size: 1000 };
    await rejectsWith(client.pushBlob(ref('bad/len'), { ...desc, size: 999 }, data), 'SIZE_MISMATCH', /is 1000 bytes, but its descriptor says 999/);
    const t0 = Date.now();
    await rejectsWith(client.pushBlob(ref('bad/len'), desc, { open: () => Readable.from([data.subarray(0, 900)]) }), 'SIZE_MISMATCH',
      /had 900 bytes, but its descriptor says 1000/);
    // Too long: in a monolithic PUT the registry may already have taken the first 1000 bytes (the
    // right blob) before the extra bytes are read, so the refusal is checked where it is certain:
    // chunked, before the chunk that would overflow is sent.
    const chunked = new RegistryClient({ chunkThreshold: 100, chunkSize: 256 });
    await rejectsWith(chunked.pushBlob(ref('bad/len-long'), desc, { open: () => Readable.from([data, data]) }), 'SIZE_MISMATCH',
      /more than the 1000 bytes/);
    await rejectsWith(chunked.pushBlob(ref('bad/len-short'), desc, { open: () => Readable.from([data.subarray(0, 900)]) }), 'SIZE_MISMATCH', /900 bytes/);
    assert.ok(Date.now() - t0 < 5000, 'no waiting for bytes that never come');
  });

  test('a failed upload is retried from the start when the registry drops the connection', async () => {
    proxy.requests.length = 0;
    let resets = 1;
    proxy.handler = (req) => (req.method === 'PUT' && resets-- > 0 ? { kind: 'reset' } : undefined);
    try {
      const data = randomBytes(50_000);
      const desc = { digest: digestOf(data), size: data.length };
      const r = await new RegistryClient({ retryDelayMs: 5 }).pushBlob(ref('retry/blob', proxy.host), desc, data);
      assert.deepEqual(r, { status: 'uploaded' });
      assert.equal(proxy.requests.filter((x) => x.method === 'POST').length, 2, 'a new upload session');
      assert.deepEqual(await client.fetchBlob(ref('retry/blob'), desc), data);
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('concurrent pushes and pulls through one client', async () => {
    const blobs = Array.from({ length: 8 }, (_, i) => randomBytes(10_000 + i * 3000));
    const target = ref('concurrent/blobs');
    const results = await Promise.all(blobs.map((b) => client.pushBlob(target, { digest: digestOf(b), size: b.length }, b)));
    assert.ok(results.every((r) => r.status === 'uploaded'));
    const back = await Promise.all(blobs.map((b) => client.fetchBlob(target, { digest: digestOf(b), size: b.length })));
    back.forEach((b, i) => assert.deepEqual(b, blobs[i]));
  });
});

describe('tags', () => {
  test('listing follows the Link header across pages', async () => {
    const target = ref('tagged/img', proxy.host);
    const img = busybox.images[0]!;
    await pushImage(busybox, ref('tagged/img'), 'base', { mountFrom: ['skopeo/busybox'] });
    const tags = ['a', 'b', 'c', 'd', 'e'];
    for (const t of tags) await client.putManifest(ref('tagged/img'), t, img.manifestBytes, MediaType.OciManifest);
    const all = (await client.listTags(ref('tagged/img'))).sort();
    assert.deepEqual(all, ['a', 'b', 'base', 'c', 'd', 'e']);
    // distribution 2.8 does not paginate tag lists (its catalog only), so the proxy pages the
    // registry's real list the way the spec describes: ?n=&last=, and a Link header to the next page.
    proxy.requests.length = 0;
    proxy.handler = (req) => {
      if (!req.url.includes('/tags/list')) return undefined;
      const u = new URL(req.url, 'http://x');
      const n = Number(u.searchParams.get('n') ?? all.length);
      const last = u.searchParams.get('last');
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = {};
      if (start + n < all.length) headers.link = `</v2/tagged/img/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`;
      return { kind: 'respond', status: 200, headers, body: JSON.stringify({ name: 'tagged/img', tags: page }) };
    };
    try {
      const listed = await client.listTags(target, { pageSize: 2 });
      assert.deepEqual(listed, all);
      const gets = proxy.requests.filter((r) => r.url.includes('/tags/list'));
      assert.deepEqual(gets.map((r) => r.url), [
        '/v2/tagged/img/tags/list?n=2', '/v2/tagged/img/tags/list?n=2&last=b', '/v2/tagged/img/tags/list?n=2&last=c',
      ]);
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('tags of an unknown repository: NAME_UNKNOWN', async () => {
    await rejectsWith(client.listTags(ref('no/such/repo')), 'NAME_UNKNOWN', /^name unknown: repository name not known to registry/);
  });
});
