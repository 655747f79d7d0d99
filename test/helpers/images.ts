// Test images built here, without network: OCI image layouts (oci-layout, index.json,
// blobs/sha256/…) whose layers are GNU tar (`--format=pax`, sorted, owner 0, fixed mtime)
// compressed with gzip, and `skopeo copy` to push them into a test registry (skopeo is an
// independent producer: what Berth pulls was not written by Berth).
//
// Images:
//   buildBusyboxLayout     one layer: busybox-static + applet symlinks, /etc/passwd, /etc/group
//   buildMultiLayerLayout  busybox + two layers with a file and a directory deleted (whiteouts), an
//                          opaque directory, a symlink, a hardlink, a replaced file, modes
//   buildMultiArchLayout   an OCI index over per-platform images (each says its platform in /etc/platform)
//   buildLayout            any layers from rootfs directories (e.g. a large random blob)
// The expected final tree of the multi-layer image is exported (MULTI_LAYER_EXPECTED/ABSENT) for
// pull/unpack tests.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  MediaType, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform,
} from '../../src/image/types.ts';

export const BUSYBOX = process.env.BERTH_TEST_BUSYBOX ?? '/bin/busybox';
const TMP_BASE = process.env.BERTH_TEST_TMPDIR ?? '/tmp';
const FIXED_MTIME = '2024-01-01T00:00:00Z';
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}): Buffer {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env, maxBuffer: opts.maxBuffer ?? 1 << 30 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** An uncompressed layer tar of everything under `root` (entries without a "./" prefix). */
export function tarDirectory(root: string): Buffer {
  const entries = readdirSync(root).sort();
  if (entries.length === 0) throw new Error(`tarDirectory: ${root} is empty`);
  return run('tar', ['--format=pax', '--sort=name', `--mtime=${FIXED_MTIME}`, '--owner=0', '--group=0', '--numeric-owner',
    // pax headers carry atime/ctime by default; drop them so the bytes only depend on the tree
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', root, '-cf', '-', ...entries]);
}

export interface LayerInfo extends Descriptor {
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
}

export interface ImageInfo {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  config: ImageConfig;
  configBytes: Buffer;
  configDigest: string;
  layers: LayerInfo[];
  platform: Platform;
}

export interface Layout {
  dir: string;
  tag: string;
  /** The descriptor in index.json for `tag` (a manifest, or an index for multi-arch). */
  descriptor: Descriptor;
  /** The single image, or each platform's image for a multi-arch layout. */
  images: ImageInfo[];
  index?: { index: ImageIndex; bytes: Buffer; digest: string };
}

class LayoutWriter {
  private readonly manifests: Descriptor[] = [];
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    if (existsSync(join(dir, 'index.json'))) {
      const prev = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
      this.manifests.push(...prev.manifests);
    }
  }

  blob(data: Buffer): string {
    const digest = sha256(data);
    const path = join(this.dir, 'blobs', 'sha256', digest.slice(7));
    if (!existsSync(path)) writeFileSync(path, data);
    return digest;
  }

  tag(desc: Descriptor, tag: string): void {
    const i = this.manifests.findIndex((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
    const entry = { ...desc, annotations: { ...desc.annotations, 'org.opencontainers.image.ref.name': tag } };
    if (i === -1) this.manifests.push(entry);
    else this.manifests[i] = entry;
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: this.manifests };
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify(index));
  }
}

export interface ImageOptions {
  platform?: Platform;
  cmd?: string[];
  env?: string[];
  labels?: Record<string, string>;
  /** Layer compression: gzip (default) or none (plain tar layers). */
  compression?: 'gzip' | 'none';
}

function writeImage(w: LayoutWriter, layerRoots: Array<{ root: string; createdBy: string }>, opts: ImageOptions): ImageInfo {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: LayerInfo[] = [];
  for (const { root } of layerRoots) {
    const tar = tarDirectory(root);
    const diffId = sha256(tar);
    const blob = opts.compression === 'none' ? tar : gzipSync(tar, { level: 6 });
    const digest = w.blob(blob);
    layers.push({ mediaType: opts.compression === 'none' ? MediaType.OciLayer : MediaType.OciLayerGzip, digest, size: blob.length, diffId });
  }
  const config: ImageConfig = {
    created: FIXED_MTIME,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: opts.env ?? [DEFAULT_PATH_ENV],
      Cmd: opts.cmd ?? ['/bin/sh'],
      ...(opts.labels ? { Labels: opts.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layerRoots.map(({ createdBy }) => ({ created: FIXED_MTIME, created_by: createdBy })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = w.blob(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = w.blob(manifestBytes);
  return { manifest, manifestBytes, manifestDigest, config, configBytes, configDigest, layers, platform };
}

function manifestDescriptor(img: ImageInfo, withPlatform: boolean): Descriptor {
  const d: Descriptor = { mediaType: MediaType.OciManifest, digest: img.manifestDigest, size: img.manifestBytes.length };
  if (withPlatform) d.platform = img.platform;
  return d;
}

/** A scratch directory for rootfs trees (removed by the caller's temp-dir cleanup or the OS). */
function scratch(dir: string, name: string): string {
  const p = join(dir, '.rootfs', name);
  mkdirSync(p, { recursive: true });
  return p;
}

/** The busybox rootfs: /bin/busybox, one symlink per applet, /etc/passwd and /etc/group, /tmp 1777. */
export function makeBusyboxRootfs(root: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'var', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'root'), 0o700);
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  const applets = run(BUSYBOX, ['--list-full']).toString('utf8').split('\n').filter(Boolean);
  for (const applet of applets) {
    const p = join(root, applet);
    if (existsSync(p)) continue;
    mkdirSync(dirname(p), { recursive: true });
    symlinkSync('/bin/busybox', p);
  }
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
}

function finish(dir: string, tag: string, w: LayoutWriter, images: ImageInfo[], desc: Descriptor, index?: Layout['index']): Layout {
  w.tag(desc, tag);
  return { dir, tag, descriptor: desc, images, index };
}

/** The busybox image (one layer) as an OCI layout in `dir`, tagged `tag`. */
export function buildBusyboxLayout(dir: string, opts: ImageOptions & { tag?: string } = {}): Layout {
  const w = new LayoutWriter(dir);
  const root = scratch(dir, `busybox-${randomBytes(4).toString('hex')}`);
  makeBusyboxRootfs(root);
  const img = writeImage(w, [{ root, createdBy: 'berth test: busybox-static rootfs' }], opts);
  return finish(dir, opts.tag ?? 'latest', w, [img], manifestDescriptor(img, false));
}

/** What the multi-layer image's final tree must look like (beyond the busybox base). */
export type ExpectedEntry =
  | { type: 'file'; content: string; mode?: number }
  | { type: 'dir'; mode?: number }
  | { type: 'symlink'; target: string };

export const MULTI_LAYER_EXPECTED: Record<string, ExpectedEntry> = {
  'data/keep.txt': { type: 'file', content: 'keep v2\n', mode: 0o644 }, // replaced in layer 3
  // a hardlink to layer 2's keep.txt: replacing keep.txt in layer 3 must not change it
  'data/hard': { type: 'file', content: 'keep v1\n' },
  'data/link': { type: 'symlink', target: 'keep.txt' },
  'data/exec.sh': { type: 'file', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'data/sub/a.txt': { type: 'file', content: 'a\n' },
  'data/sub/b.txt': { type: 'file', content: 'b\n' }, // added in layer 3
  'opaque': { type: 'dir', mode: 0o750 },
  'opaque/new.txt': { type: 'file', content: 'new\n' },
  'private': { type: 'dir', mode: 0o700 },
  'private/secret': { type: 'file', content: 's\n', mode: 0o600 },
};
/** Paths that layer 3 deletes (whiteouts) or hides (opaque dir), and the whiteout files themselves. */
export const MULTI_LAYER_ABSENT = [
  'data/remove-me.txt', 'data/gone-dir', 'data/gone-dir/inner.txt', 'opaque/old1.txt', 'opaque/old-dir', 'opaque/old-dir/x.txt',
  'data/.wh.remove-me.txt', 'data/.wh.gone-dir', 'opaque/.wh..wh..opq',
];

/**
 * Busybox plus two layers: layer 2 creates data/ and opaque/; layer 3 deletes a file and a
 * directory with whiteouts (`.wh.<name>`), makes opaque/ opaque (`.wh..wh..opq`) with one new
 * file, replaces data/keep.txt (which layer 2 hardlinked as data/hard) and adds data/sub/b.txt.
 */
export function buildMultiLayerLayout(dir: string, opts: ImageOptions & { tag?: string } = {}): Layout {
  const w = new LayoutWriter(dir);
  const id = randomBytes(4).toString('hex');
  const base = scratch(dir, `ml-base-${id}`);
  makeBusyboxRootfs(base);

  const l2 = scratch(dir, `ml-2-${id}`);
  mkdirSync(join(l2, 'data', 'sub'), { recursive: true });
  mkdirSync(join(l2, 'data', 'gone-dir'));
  mkdirSync(join(l2, 'opaque', 'old-dir'), { recursive: true });
  mkdirSync(join(l2, 'private'));
  writeFileSync(join(l2, 'data', 'keep.txt'), 'keep v1\n');
  linkSync(join(l2, 'data', 'keep.txt'), join(l2, 'data', 'hard'));
  symlinkSync('keep.txt', join(l2, 'data', 'link'));
  writeFileSync(join(l2, 'data', 'exec.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(l2, 'data', 'exec.sh'), 0o755);
  writeFileSync(join(l2, 'data', 'remove-me.txt'), 'remove me\n');
  writeFileSync(join(l2, 'data', 'gone-dir', 'inner.txt'), 'inner\n');
  writeFileSync(join(l2, 'data', 'sub', 'a.txt'), 'a\n');
  writeFileSync(join(l2, 'opaque', 'old1.txt'), 'old1\n');
  writeFileSync(join(l2, 'opaque', 'old-dir', 'x.txt'), 'x\n');
  writeFileSync(join(l2, 'private', 'secret'), 's\n');
  chmodSync(join(l2, 'private', 'secret'), 0o600);
  chmodSync(join(l2, 'private'), 0o700);
  chmodSync(join(l2, 'opaque'), 0o750);

  const l3 = scratch(dir, `ml-3-${id}`);
  mkdirSync(join(l3, 'data', 'sub'), { recursive: true });
  mkdirSync(join(l3, 'opaque'));
  chmodSync(join(l3, 'opaque'), 0o750);
  writeFileSync(join(l3, 'data', '.wh.remove-me.txt'), '');
  writeFileSync(join(l3, 'data', '.wh.gone-dir'), '');
  writeFileSync(join(l3, 'data', 'keep.txt'), 'keep v2\n');
  writeFileSync(join(l3, 'data', 'sub', 'b.txt'), 'b\n');
  writeFileSync(join(l3, 'opaque', '.wh..wh..opq'), '');
  writeFileSync(join(l3, 'opaque', 'new.txt'), 'new\n');
  // tar records these modes; the umask of whoever runs the tests must not decide them
  for (const f of [join(l2, 'data', 'keep.txt'), join(l2, 'data', 'sub', 'a.txt'), join(l3, 'data', 'keep.txt'),
    join(l3, 'data', 'sub', 'b.txt'), join(l3, 'opaque', 'new.txt')]) chmodSync(f, 0o644);

  const img = writeImage(w, [
    { root: base, createdBy: 'berth test: busybox-static rootfs' },
    { root: l2, createdBy: 'berth test: data, opaque, private' },
    { root: l3, createdBy: 'berth test: whiteouts, opaque dir, replaced file' },
  ], opts);
  return finish(dir, opts.tag ?? 'latest', w, [img], manifestDescriptor(img, false));
}

export const MULTI_ARCH_PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
  { os: 'linux', architecture: 'arm', variant: 'v6' },
  { os: 'linux', architecture: 's390x' },
];

/**
 * An OCI index over one image per platform: a shared busybox layer plus a layer with
 * /etc/platform holding "os/arch[/variant]", so a pull test can tell which one it got. The
 * index also carries an attestation-style entry (unknown/unknown) that must never be chosen.
 */
export function buildMultiArchLayout(dir: string, opts: { tag?: string; platforms?: Platform[] } = {}): Layout {
  const w = new LayoutWriter(dir);
  const id = randomBytes(4).toString('hex');
  const base = scratch(dir, `ma-base-${id}`);
  makeBusyboxRootfs(base);
  const images: ImageInfo[] = [];
  for (const p of opts.platforms ?? MULTI_ARCH_PLATFORMS) {
    const name = p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
    const l = scratch(dir, `ma-${name.replace(/\//g, '-')}-${id}`);
    mkdirSync(join(l, 'etc'));
    writeFileSync(join(l, 'etc', 'platform'), `${name}\n`);
    images.push(writeImage(w, [{ root: base, createdBy: 'busybox' }, { root: l, createdBy: `platform ${name}` }], { platform: p }));
  }
  const manifests = images.map((img) => manifestDescriptor(img, true));
  // An attestation manifest as BuildKit writes them: a real manifest, platform unknown/unknown.
  const att = writeImage(w, [{ root: (() => {
    const l = scratch(dir, `ma-att-${id}`);
    writeFileSync(join(l, 'attestation.json'), '{}');
    return l;
  })(), createdBy: 'attestation' }], { platform: { os: 'unknown', architecture: 'unknown' }, compression: 'none' });
  manifests.push({
    ...manifestDescriptor(att, true),
    annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': images[0]!.manifestDigest },
  });
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
  const bytes = Buffer.from(JSON.stringify(index));
  const digest = w.blob(bytes);
  const desc: Descriptor = { mediaType: MediaType.OciIndex, digest, size: bytes.length };
  return finish(dir, opts.tag ?? 'latest', w, images, desc, { index, bytes, digest });
}

/** An image from arbitrary rootfs directories (one layer each). */
export function buildLayout(dir: string, layerRoots: string[], opts: ImageOptions & { tag?: string } = {}): Layout {
  const w = new LayoutWriter(dir);
  const img = writeImage(w, layerRoots.map((root, i) => ({ root, createdBy: `layer ${i}` })), opts);
  return finish(dir, opts.tag ?? 'latest', w, [img], manifestDescriptor(img, false));
}

/** A rootfs with one file of `size` random (incompressible) bytes, for large-blob tests. */
export function makeRandomRootfs(root: string, size: number, name = 'random.bin'): void {
  mkdirSync(root, { recursive: true });
  const chunk = 1 << 20;
  const parts: Buffer[] = [];
  for (let left = size; left > 0; left -= chunk) parts.push(randomBytes(Math.min(chunk, left)));
  writeFileSync(join(root, name), Buffer.concat(parts));
}

export function tempLayoutDir(prefix = 'berth-layout-'): string {
  return mkdtempSync(join(TMP_BASE, prefix));
}

/**
 * Runs a command without blocking the event loop: skopeo talks to registries whose token server
 * may live in this very process.
 */
export function runAsync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString('utf8')}`));
    });
  });
}

let isolatedAuthFile: string | undefined;
/** skopeo must not see the user's stored credentials: give it an empty auth file of its own. */
export function skopeoEnv(): NodeJS.ProcessEnv {
  if (!isolatedAuthFile) {
    const d = mkdtempSync(join(tmpdir(), 'berth-skopeo-auth-'));
    isolatedAuthFile = join(d, 'auth.json');
    writeFileSync(isolatedAuthFile, '{"auths":{}}');
    process.on('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  return { ...process.env, REGISTRY_AUTH_FILE: isolatedAuthFile };
}

export interface PushOptions {
  /**
   * Manifest format in the registry: oci (as built), v2s2 (Docker schema2) or v2s1 (Docker
   * schema1, signed; the registry must accept it, see RegistryOptions.schema1), converted by skopeo.
   */
  format?: 'oci' | 'v2s2' | 'v2s1';
  /** user:password for an authenticated registry. */
  creds?: string;
}

/**
 * `skopeo copy` of a layout's tag to `registryHost/name` (name may carry its own :tag). Multi-arch
 * layouts are copied whole (`--all`). Returns the digest of what the registry now has under the tag.
 */
export async function pushLayout(layout: Layout, registryHost: string, name: string, opts: PushOptions = {}): Promise<string> {
  const dest = name.includes(':') ? name : `${name}:${layout.tag}`;
  const args = ['copy', '-q', '--dest-tls-verify=false'];
  if (opts.format === 'v2s2' || opts.format === 'v2s1') args.push('--format', opts.format);
  if (opts.creds) args.push('--dest-creds', opts.creds);
  if (layout.index) args.push('--all');
  // as built, byte for byte, so tests can compare digests with the layout's
  if (opts.format === undefined || opts.format === 'oci') args.push('--preserve-digests');
  const digestDir = mkdtempSync(join(tmpdir(), 'berth-skopeo-'));
  const digestFile = join(digestDir, 'digest');
  args.push('--digestfile', digestFile, `oci:${layout.dir}:${layout.tag}`, `docker://${registryHost}/${dest}`);
  try {
    await runAsync('skopeo', args, { env: skopeoEnv() });
    return readFileSync(digestFile, 'utf8').trim();
  } finally {
    rmSync(digestDir, { recursive: true, force: true });
  }
}

/** Pushes the same image bytes again under another name, for mount and 404 tests. */
export async function copyInRegistry(registryHost: string, from: string, to: string, opts: { creds?: string; all?: boolean } = {}): Promise<void> {
  const args = ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false'];
  if (opts.creds) args.push('--src-creds', opts.creds, '--dest-creds', opts.creds);
  if (opts.all) args.push('--all');
  args.push(`docker://${registryHost}/${from}`, `docker://${registryHost}/${to}`);
  await runAsync('skopeo', args, { env: skopeoEnv() });
}
