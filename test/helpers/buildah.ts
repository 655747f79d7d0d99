// Building with Debian's buildah in private storage (its own --root/--runroot in a temp dir, vfs,
// OCI isolation with runc, no network), and a normalised view of an image for comparisons: the
// filesystem tree from a docker-archive's layers (whiteouts applied) without mtimes, and its config.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';

export function buildahAvailable(): boolean {
  return spawnSync('buildah', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface TreeEntry { type: string; mode: number; uid: number; gid: number; size: number; sha256?: string; linkname?: string }
export type Tree = Map<string, TreeEntry>;

export interface SavedImage { config: Record<string, unknown>; tree: Tree }

/** Reads a docker-archive (docker save / buildah push docker-archive:) into config + tree. */
export async function readDockerArchive(file: string): Promise<SavedImage> {
  const members = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => { if (h.type === 'file') members.set(posix.normalize(h.name), Buffer.concat(chunks)); next(); });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(readFileSync(file));
  await done;
  const manifest = JSON.parse(members.get('manifest.json')!.toString())[0] as { Config: string; Layers: string[] };
  const config = JSON.parse(members.get(posix.normalize(manifest.Config))!.toString()) as Record<string, unknown>;
  const tree: Tree = new Map();
  for (const layer of manifest.Layers) {
    let data = members.get(posix.normalize(layer))!;
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    await applyToTree(tree, data);
  }
  return { config, tree };
}

async function applyToTree(tree: Tree, data: Buffer): Promise<void> {
  const extract = tar.extract();
  const added = new Set<string>();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const hash = createHash('sha256');
      let size = 0;
      stream.on('data', (c: unknown) => { hash.update(c as Buffer); size += (c as Buffer).length; });
      stream.on('end', () => {
        const name = posix.normalize(`/${h.name}`).replace(/\/+$/, '') || '/';
        const dir = posix.dirname(name);
        const base = posix.basename(name);
        if (base === '.wh..wh..opq') {
          for (const k of [...tree.keys()]) if (k.startsWith(`${dir}/`) && !added.has(k)) tree.delete(k);
        } else if (base.startsWith('.wh.')) {
          const gone = posix.join(dir, base.slice(4));
          for (const k of [...tree.keys()]) if (k === gone || k.startsWith(`${gone}/`)) tree.delete(k);
        } else {
          const type = h.type === 'directory' ? 'dir' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'file' : h.type === 'file' ? 'file' : String(h.type);
          const e: TreeEntry = { type, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, size };
          if (type === 'file') {
            if (h.type === 'link') {
              const target = tree.get(posix.normalize(`/${h.linkname}`));
              e.size = target?.size ?? 0;
              e.sha256 = target?.sha256;
            } else e.sha256 = hash.digest('hex');
          }
          if (type === 'symlink') e.linkname = h.linkname ?? '';
          if (type === 'dir' && tree.get(name)?.type === 'dir' && name !== '/') {
            tree.set(name, e);
          } else {
            for (const k of [...tree.keys()]) if (k.startsWith(`${name}/`) && type !== 'dir') tree.delete(k);
            tree.set(name, e);
          }
          added.add(name);
        }
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(data);
  await done;
}

/** Builds with buildah in private storage; the base image comes from a docker-archive. Returns the image, saved. */
export async function buildahBuild(contextDir: string, opts: { baseArchive: string; baseName: string; dockerfile?: string; buildArgs?: Record<string, string>; target?: string; tag: string }): Promise<SavedImage> {
  const work = mkdtempSync(join(tmpdir(), 'berth-buildah-'));
  const common = ['--root', join(work, 'root'), '--runroot', join(work, 'runroot'), '--storage-driver', 'vfs'];
  const env = { ...process.env, BUILDAH_ISOLATION: 'oci', STORAGE_DRIVER: 'vfs', HOME: work, XDG_RUNTIME_DIR: join(work, 'xdg'), REGISTRY_AUTH_FILE: join(work, 'auth.json') };
  writeFileSync(join(work, 'auth.json'), '{}');
  const run = (args: string[]) => {
    const r = spawnSync('buildah', [...common, ...args], { env, encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  try {
    const id = run(['pull', '--quiet', `docker-archive:${opts.baseArchive}`]).trim().split('\n').pop()!;
    run(['tag', id, `docker.io/library/${opts.baseName}`, `localhost/${opts.baseName}`]);
    const args = ['bud', '--format', 'docker', '--isolation', 'oci', '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--network', 'none', '--pull-never', '--layers=false', '-t', opts.tag];
    if (opts.dockerfile) args.push('-f', opts.dockerfile);
    for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
    if (opts.target) args.push('--target', opts.target);
    run([...args, contextDir]);
    const out = join(work, 'out.tar');
    run(['push', opts.tag, `docker-archive:${out}:${opts.tag}`]);
    return await readDockerArchive(out);
  } finally {
    spawnSync('sh', ['-c', `grep -F ${JSON.stringify(work)} /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

/** The differences between two trees, as readable lines (empty: equal). */
export function treeDiff(a: Tree, b: Tree, ignore: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const keys = new Set([...a.keys(), ...b.keys()]);
  for (const k of [...keys].sort()) {
    if (ignore(k)) continue;
    const x = a.get(k);
    const y = b.get(k);
    if (!x) out.push(`only in second: ${k} ${JSON.stringify(y)}`);
    else if (!y) out.push(`only in first: ${k} ${JSON.stringify(x)}`);
    else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`differs: ${k} ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  }
  return out;
}
