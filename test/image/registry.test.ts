// The registry client against a real registry (Debian's docker-registry on 127.0.0.1) holding
// images that skopeo pushed: resolving (OCI, Docker schema2, indexes with platform selection),
// blobs (verified, from an offset, resumed after a cut connection), and the errors users see.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDockerReference, type Reference } from '../../src/image/reference.ts';
import { RegistryClient, RegistryError, type ResolvedImage } from '../../src/image/registry/index.ts';
import { MediaType } from '../../src/image/types.ts';
import {
  buildBusyboxLayout, buildMultiArchLayout, buildMultiLayerLayout, MULTI_ARCH_PLATFORMS, pushLayout, tempLayoutDir, type Layout,
} from '../helpers/images.ts';
import { freePort, startProxy, startRegistry, type RegistryProxy, type TestRegistry, rejectsWith } from '../helpers/registry.ts';

let reg: TestRegistry;
let layoutDirs: string[] = [];
let busybox: Layout;
let multiLayer: Layout;
let multiArch: Layout;
let arm64Only: Layout;
const client = new RegistryClient({ retryDelayMs: 10 });

function ref(name: string): Reference {
  return parseDockerReference(`${reg.host}/${name}`);
}

function blobFile(layout: Layout, digest: string): Buffer {
  return readFileSync(join(layout.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

before(async () => {
  reg = await startRegistry();
  const dirs = [tempLayoutDir(), tempLayoutDir(), tempLayoutDir()];
  layoutDirs = dirs;
  busybox = buildBusyboxLayout(dirs[0]!);
  arm64Only = buildBusyboxLayout(dirs[0]!, { tag: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  multiLayer = buildMultiLayerLayout(dirs[1]!);
  multiArch = buildMultiArchLayout(dirs[2]!);
  // One at a time: distribution 2.8's filesystem driver answers 500 to concurrent writers of a blob.
  await pushLayout(busybox, reg.host, 'busybox:latest');
  await pushLayout(busybox, reg.host, 'busybox:v2s2', { format: 'v2s2' });
  await pushLayout(arm64Only, reg.host, 'busybox:arm64');
  await pushLayout(multiLayer, reg.host, 'multi-layer:latest');
  await pushLayout(multiArch, reg.host, 'multi-arch:latest');
  await pushLayout(multiArch, reg.host, 'multi-arch:v2s2', { format: 'v2s2' });
});

after(async () => {
  await reg?.stop();
  for (const d of layoutDirs) rmSync(d, { recursive: true, force: true });
});

describe('ping and transport', () => {
  test('a loopback registry without TLS is reached over plain HTTP (https tried first)', async () => {
    const c = new RegistryClient();
    const p = await c.ping(reg.host);
    assert.equal(p.url, `http://${reg.host}`);
    assert.equal(p.status, 200);
    assert.deepEqual(p.challenges, []);
  });

  test('a loopback registry with a self-signed certificate is reached over HTTPS without verification', async () => {
    const tls = await startRegistry({ tls: true });
    try {
      await pushLayout(busybox, tls.host, 'busybox:latest');
      const c = new RegistryClient();
      const p = await c.ping(tls.host);
      assert.equal(p.url, `https://${tls.host}`);
      const img = await c.resolve(parseDockerReference(`${tls.host}/busybox`));
      assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    } finally {
      await tls.stop();
    }
  });

  test('nothing listening: a NETWORK error naming the URL, after bounded retries', async () => {
    const port = await freePort();
    const c = new RegistryClient({ retryDelayMs: 5 });
    const t0 = Date.now();
    await rejectsWith(c.resolve(parseDockerReference(`127.0.0.1:${port}/x`)), 'NETWORK',
      new RegExp(`^Get "http://127\\.0\\.0\\.1:${port}/v2/": connect ECONNREFUSED`));
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('resolve', () => {
  function checkBusybox(img: ResolvedImage, mediaType: string): void {
    assert.equal(img.index, undefined);
    assert.equal(img.manifest.mediaType, mediaType);
    assert.equal(img.manifest.digest, img.digest);
    assert.equal(img.manifest.manifest.layers.length, 1);
    assert.equal(img.manifest.manifest.layers[0]!.digest, busybox.images[0]!.layers[0]!.digest);
    assert.equal(createHash('sha256').update(img.manifest.bytes).digest('hex'), img.digest.slice(7), 'bytes kept as served');
    assert.deepEqual(img.config.config.rootfs.diff_ids, busybox.images[0]!.config.rootfs.diff_ids);
    assert.deepEqual(img.platform, { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(img.warnings, []);
  }

  test('OCI manifest by tag: exact bytes and digest of what skopeo pushed', async () => {
    const img = await client.resolve(ref('busybox'));
    checkBusybox(img, MediaType.OciManifest);
    assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    assert.deepEqual(img.manifest.bytes, busybox.images[0]!.manifestBytes);
    assert.deepEqual(img.config.bytes, busybox.images[0]!.configBytes);
    assert.equal(img.config.descriptor.mediaType, MediaType.OciConfig);
  });

  test('Docker schema2 manifest', async () => {
    const img = await client.resolve(ref('busybox:v2s2'));
    checkBusybox(img, MediaType.DockerManifest);
    assert.equal(img.config.descriptor.mediaType, MediaType.DockerConfig);
    assert.equal(img.manifest.manifest.layers[0]!.mediaType, MediaType.DockerLayerGzip);
  });

  test('by digest, and with both tag and digest (the digest decides)', async () => {
    const d = busybox.images[0]!.manifestDigest;
    const byDigest = await client.resolve(ref(`busybox@${d}`));
    assert.equal(byDigest.digest, d);
    const both = await client.resolve(ref(`busybox:no-such-tag@${d}`));
    assert.equal(both.digest, d);
  });

  test('a multi-layer image keeps its layer order and diff IDs', async () => {
    const img = await client.resolve(ref('multi-layer'));
    assert.equal(img.digest, multiLayer.images[0]!.manifestDigest);
    assert.deepEqual(img.manifest.manifest.layers.map((l) => l.digest), multiLayer.images[0]!.layers.map((l) => l.digest));
    assert.deepEqual(img.config.config.rootfs.diff_ids, multiLayer.images[0]!.layers.map((l) => l.diffId));
  });

  const platformCases: Array<[string, { os: string; architecture: string; variant?: string }, number]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 0],
    ['linux/arm64 (v8 is the default variant)', { os: 'linux', architecture: 'arm64' }, 1],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 1],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, 2],
    ['linux/arm (v7 by default)', { os: 'linux', architecture: 'arm' }, 2],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }, 3],
    ['linux/arm/v8 falls back to v7', { os: 'linux', architecture: 'arm', variant: 'v8' }, 2],
    ['aarch64 is arm64', { os: 'linux', architecture: 'aarch64' }, 1],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }, 4],
  ];
  for (const tag of ['latest', 'v2s2']) {
    for (const [name, platform, i] of platformCases) {
      test(`index (${tag === 'latest' ? 'OCI' : 'Docker manifest list'}): ${name}`, async () => {
        const img = await client.resolve(ref(`multi-arch:${tag}`), { platform });
        assert.ok(img.index, 'resolved through the index');
        assert.equal(img.digest, img.index.digest, 'the reference names the index');
        assert.equal(img.index.mediaType, tag === 'latest' ? MediaType.OciIndex : MediaType.DockerManifestList);
        const want = MULTI_ARCH_PLATFORMS[i]!;
        assert.equal(img.config.config.architecture, want.architecture);
        assert.equal(img.config.config.variant, want.variant);
        if (tag === 'latest') {
          assert.equal(img.digest, multiArch.index!.digest);
          assert.equal(img.manifest.digest, multiArch.images[i]!.manifestDigest);
        }
      });
    }
  }

  test('index: no entry for the platform → docker\'s message, listing what there is', async () => {
    const e = await rejectsWith(client.resolve(ref('multi-arch'), { platform: { os: 'linux', architecture: 'ppc64le' } }),
      'NO_MATCHING_MANIFEST', /^no matching manifest for linux\/ppc64le in the manifest list entries/);
    assert.match(e.message, /linux\/amd64, linux\/arm64, linux\/arm\/v7, linux\/arm\/v6, linux\/s390x/);
    assert.doesNotMatch(e.message, /unknown/, 'the attestation entry is not offered');
    await rejectsWith(client.resolve(ref('multi-arch'), { platform: { os: 'linux', architecture: 'arm', variant: 'v5' } }),
      'NO_MATCHING_MANIFEST', /linux\/arm\/v5/);
  });

  test('a single-platform image of another platform: an error when asked for a platform, else a warning', async () => {
    await rejectsWith(client.resolve(ref('busybox:arm64'), { platform: { os: 'linux', architecture: 'amd64' } }), 'PLATFORM_MISMATCH',
      `image with reference ${reg.host}/busybox:arm64 was found but does not match the specified platform: wanted linux/amd64, actual: linux/arm64`);
    const img = await client.resolve(ref('busybox:arm64'), { platform: { os: 'linux', architecture: 'arm64' } });
    assert.deepEqual(img.warnings, []);
    if (process.arch === 'x64') {
      const other = await client.resolve(ref('busybox:arm64'));
      assert.match(other.warnings.join('\n'), /does not match the detected host platform \(linux\/amd64\)/);
    }
  });

  test('unknown tag and unknown repository: docker\'s "manifest for … not found"', async () => {
    await rejectsWith(client.resolve(ref('busybox:nope')), 'MANIFEST_UNKNOWN',
      `manifest for ${reg.host}/busybox:nope not found: manifest unknown: manifest unknown`);
    const e = await rejectsWith(client.resolve(ref('no/such-repo')), 'MANIFEST_UNKNOWN',
      `manifest for ${reg.host}/no/such-repo:latest not found: manifest unknown: manifest unknown`);
    assert.equal(e.status, 404);
    await rejectsWith(client.resolve(ref(`busybox@sha256:${'0'.repeat(64)}`)), 'MANIFEST_UNKNOWN',
      `manifest for ${reg.host}/busybox@sha256:${'0'.repeat(64)} not found: manifest unknown: manifest unknown`);
  });

  test('HEAD of a manifest: digest, media type and size; undefined when absent', async () => {
    const h = await client.headManifest(ref('busybox'), 'latest');
    assert.deepEqual(h, { digest: busybox.images[0]!.manifestDigest, mediaType: MediaType.OciManifest, size: busybox.images[0]!.manifestBytes.length });
    assert.equal(await client.headManifest(ref('busybox'), 'nope'), undefined);
  });

  test('schema1: a clear error that says to re-push', async () => {
    const s1 = await startRegistry({ schema1: true });
    try {
      await pushLayout(busybox, s1.host, 'old:latest', { format: 'v2s1' });
      await rejectsWith(new RegistryClient().resolve(parseDockerReference(`${s1.host}/old`)), 'UNSUPPORTED_MANIFEST',
        /^unsupported manifest format: .*old:latest is a Docker image manifest version 2, schema 1.*re-push the image with a newer client/);
    } finally {
      await s1.stop();
    }
  });

  test('a manifest whose bytes do not match the digest the registry reports is refused', async () => {
    // Tamper with the registry's own storage: the tag still points at the digest, the bytes differ.
    const c = new RegistryClient();
    const original = busybox.images[0]!;
    const repo = ref('tampered');
    for (const l of original.layers) await c.pushBlob(repo, l, blobFile(busybox, l.digest));
    await c.pushBlob(repo, { digest: original.configDigest, size: original.configBytes.length }, original.configBytes);
    // A manifest of its own: blobs are shared across repositories, and others use busybox's.
    const own = Buffer.from(JSON.stringify({ ...original.manifest, annotations: { 'berth.test': 'tampered' } }));
    const digest = await c.putManifest(repo, 'latest', own, MediaType.OciManifest);
    const dataFile = join(reg.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');
    writeFileSync(dataFile, JSON.stringify(JSON.parse(own.toString()), null, 1));
    await rejectsWith(c.resolve(repo), 'DIGEST_MISMATCH', /does not match the digest the registry reports/);
    await rejectsWith(c.resolve(ref(`tampered@${digest}`)), 'DIGEST_MISMATCH', /does not match its digest/);
  });
});

describe('blobs', () => {
  test('a layer streams whole and verified', async () => {
    const layer = busybox.images[0]!.layers[0]!;
    const dl = await client.openBlob(ref('busybox'), layer);
    assert.equal(dl.offset, 0);
    assert.equal(dl.size, layer.size);
    assert.deepEqual(await readAll(dl.stream), blobFile(busybox, layer.digest));
  });

  test('from an offset (Range): the stream starts there; at the end it is empty', async () => {
    const layer = busybox.images[0]!.layers[0]!;
    const whole = blobFile(busybox, layer.digest);
    for (const offset of [1, 4096, layer.size - 1]) {
      const dl = await client.openBlob(ref('busybox'), layer, { offset });
      assert.equal(dl.offset, offset);
      assert.deepEqual(await readAll(dl.stream), whole.subarray(offset), `offset ${offset}`);
    }
    const end = await client.openBlob(ref('busybox'), layer, { offset: layer.size });
    assert.equal((await readAll(end.stream)).length, 0);
    await rejectsWith(client.openBlob(ref('busybox'), layer, { offset: layer.size + 1 }), 'RANGE_INVALID', /from offset/);
  });

  test('a blob that is not in the repository: BLOB_UNKNOWN with the digest', async () => {
    const d = `sha256:${'a'.repeat(64)}`;
    await rejectsWith(client.openBlob(ref('busybox'), { digest: d, size: 10 }), 'BLOB_UNKNOWN',
      `blob ${d} not found in ${reg.host}/busybox: blob unknown: blob unknown to registry`);
    assert.equal(await client.blobExists(ref('busybox'), d), undefined);
    assert.equal(await client.blobExists(ref('busybox'), busybox.images[0]!.layers[0]!.digest), busybox.images[0]!.layers[0]!.size);
  });

  test('wrong size in the descriptor is refused (too long and too short)', async () => {
    const layer = busybox.images[0]!.layers[0]!;
    await rejectsWith(client.openBlob(ref('busybox'), { digest: layer.digest, size: layer.size + 1 })
      .then((dl) => readAll(dl.stream)), 'SIZE_MISMATCH', /descriptor says/);
    await rejectsWith(client.openBlob(ref('busybox'), { digest: layer.digest, size: layer.size - 1 })
      .then((dl) => readAll(dl.stream)), 'SIZE_MISMATCH', /descriptor says/);
  });

  test('content that does not hash to its digest fails the stream at the end', async () => {
    const c = new RegistryClient();
    const data = Buffer.alloc(300_000, 7);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await c.pushBlob(ref('tamper-blob'), { digest, size: data.length }, data);
    const dataFile = join(reg.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');
    const evil = Buffer.from(data);
    evil[123_456] = 8;
    writeFileSync(dataFile, evil);
    await rejectsWith(c.fetchBlob(ref('tamper-blob'), { digest, size: data.length }), 'DIGEST_MISMATCH',
      new RegExp(`^blob ${reg.host.replace(/\./g, '\\.')}/tamper-blob@${digest} does not match its digest`));
    // From an offset the caller hashes; the client still delivers exactly the bytes.
    const tail = await c.openBlob(ref('tamper-blob'), { digest, size: data.length }, { offset: 100_000 });
    assert.deepEqual(await readAll(tail.stream), evil.subarray(100_000));
  });
});

describe('faults between client and registry', () => {
  let proxy: RegistryProxy;
  before(async () => {
    proxy = await startProxy(reg);
  });
  after(async () => {
    await proxy?.close();
  });

  test('a connection cut mid-blob is resumed with Range, and the blob still verifies', async () => {
    const layer = busybox.images[0]!.layers[0]!;
    proxy.requests.length = 0;
    let cuts = 0;
    proxy.handler = (req) => {
      if (req.method === 'GET' && req.url.includes('/blobs/') && cuts < 2) {
        cuts++;
        return { kind: 'cut', afterBytes: 100_000 * cuts };
      }
      return undefined;
    };
    try {
      const c = new RegistryClient({ retryDelayMs: 5 });
      const got = await c.fetchBlob(parseDockerReference(`${proxy.host}/busybox`), layer);
      assert.deepEqual(got, blobFile(busybox, layer.digest));
      const blobGets = proxy.requests.filter((r) => r.url.includes('/blobs/'));
      assert.equal(blobGets.length, 3, 'two cuts, two resumes');
      assert.equal(blobGets[0]!.headers.range, undefined);
      assert.equal(blobGets[1]!.headers.range, 'bytes=100000-');
      assert.equal(blobGets[2]!.headers.range, 'bytes=300000-');
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('cut more often than maxBlobResumes: the stream fails with the position', async () => {
    const layer = busybox.images[0]!.layers[0]!;
    proxy.handler = (req) => (req.url.includes('/blobs/') ? { kind: 'cut', afterBytes: 10_000 } : undefined);
    try {
      const c = new RegistryClient({ retryDelayMs: 1, maxBlobResumes: 2 });
      await rejectsWith(c.fetchBlob(parseDockerReference(`${proxy.host}/busybox`), layer), 'NETWORK',
        /downloading blob .* failed at byte 30000 of \d+/);
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('a consumer that pauses longer than the idle timeout does not cause a reconnect', async () => {
    const data = randomBytes(16 << 20);
    const desc = { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length };
    await client.pushBlob(ref('slow/blob'), desc, data);
    proxy.requests.length = 0;
    const c = new RegistryClient({ idleTimeoutMs: 300 });
    const { stream } = await c.openBlob(parseDockerReference(`${proxy.host}/slow/blob`), desc);
    const chunks: Buffer[] = [];
    let paused = false;
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      if (!paused) {
        paused = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    assert.ok(Buffer.concat(chunks).equals(data));
    assert.equal(proxy.requests.filter((r) => r.url.includes('/blobs/')).length, 1, 'one GET: the paused connection was kept');
  });

  test('5xx answers are retried with backoff, a bounded number of times', async () => {
    let failures = 2;
    proxy.requests.length = 0;
    proxy.handler = (req) => {
      if (req.url.includes('/manifests/') && failures > 0) {
        failures--;
        return { kind: 'respond', status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}' };
      }
      return undefined;
    };
    try {
      const c = new RegistryClient({ retryDelayMs: 5 });
      const img = await c.resolve(parseDockerReference(`${proxy.host}/busybox`));
      assert.equal(img.digest, busybox.images[0]!.manifestDigest);
      assert.equal(proxy.requests.filter((r) => r.url.includes('/manifests/')).length, 3);

      proxy.requests.length = 0;
      proxy.handler = (req) => (req.url.includes('/manifests/') ? { kind: 'respond', status: 502, body: 'bad gateway' } : undefined);
      await rejectsWith(c.resolve(parseDockerReference(`${proxy.host}/busybox`)), 'HTTP_ERROR', /unexpected HTTP status 502 Bad Gateway .*bad gateway/);
      assert.equal(proxy.requests.filter((r) => r.url.includes('/manifests/')).length, 4, 'attempts: 4 by default');
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('connection resets are retried', async () => {
    let resets = 2;
    proxy.handler = (req) => (req.url.includes('/manifests/') && resets-- > 0 ? { kind: 'reset' } : undefined);
    try {
      const img = await new RegistryClient({ retryDelayMs: 5 }).resolve(parseDockerReference(`${proxy.host}/busybox:v2s2`));
      assert.equal(img.manifest.mediaType, MediaType.DockerManifest);
      assert.ok(resets < 0);
    } finally {
      proxy.handler = () => undefined;
    }
  });

  test('429 is not retried and says so', async () => {
    proxy.requests.length = 0;
    proxy.handler = (req) => (req.url.includes('/manifests/')
      ? { kind: 'respond', status: 429, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}' }
      : undefined);
    try {
      await rejectsWith(new RegistryClient({ retryDelayMs: 5 }).resolve(parseDockerReference(`${proxy.host}/busybox`)), 'TOOMANYREQUESTS',
        'toomanyrequests: You have reached your pull rate limit.');
      assert.equal(proxy.requests.filter((r) => r.url.includes('/manifests/')).length, 1);
    } finally {
      proxy.handler = () => undefined;
    }
  });
});

describe('insecure registries', () => {
  test('plain HTTP to a non-loopback address only when it is listed (host:port or CIDR)', async (t) => {
    const { networkInterfaces } = await import('node:os');
    const addr = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!addr) {
      t.skip('no non-loopback IPv4 address on this machine');
      return;
    }
    const remote = await startRegistry({ address: addr });
    try {
      await pushLayout(busybox, remote.host, 'busybox:latest');
      const strict = new RegistryClient({ retryDelayMs: 1, attempts: 1 });
      const e = await rejectsWith(strict.resolve(parseDockerReference(`${remote.host}/busybox`)), 'NETWORK', new RegExp(`^Get "https://${addr.replace(/\./g, '\\.')}`));
      assert.doesNotMatch(e.message, /http:\/\//, 'never fell back to plain HTTP');
      const listed = new RegistryClient({ insecureRegistries: [remote.host] });
      assert.equal((await listed.resolve(parseDockerReference(`${remote.host}/busybox`))).digest, busybox.images[0]!.manifestDigest);
      const cidr = new RegistryClient({ insecureRegistries: [`${addr.split('.').slice(0, 3).join('.')}.0/24`] });
      assert.equal((await cidr.ping(remote.host)).url, `http://${remote.host}`);
    } finally {
      await remote.stop();
    }
  });
});
