// What the build page sends: the context archive and the /build query. Pure, unit-tested.
import { writeTar, type TarFileInput } from './tar.ts';
import type { Query } from './api.ts';

export class BuildInputError extends Error {
  override name = 'BuildInputError';
}

export interface ContextFile {
  name: string;
  data: Uint8Array;
}

/**
 * A context archive of a pasted Dockerfile (as "Dockerfile") and files added beside it, all in the
 * context root. A file of the same name as another is refused rather than silently replacing it.
 */
export function contextFromDockerfile(dockerfile: string, files: ContextFile[] = [], mtime?: number): Uint8Array {
  if (!dockerfile.trim()) throw new BuildInputError('the Dockerfile is empty');
  const entries: TarFileInput[] = [{ name: 'Dockerfile', data: new TextEncoder().encode(dockerfile), mtime }];
  const seen = new Set(['Dockerfile']);
  for (const f of files) {
    const name = f.name.replace(/^.*[\\/]/, '');
    if (!name || name === '.' || name === '..') throw new BuildInputError(`cannot add a file named ${JSON.stringify(f.name)} to the context`);
    if (seen.has(name)) {
      throw new BuildInputError(name === 'Dockerfile'
        ? 'an added file is named Dockerfile: the pasted Dockerfile takes that name; rename the file or upload a context archive'
        : `two added files are named ${name}`);
    }
    seen.add(name);
    entries.push({ name, data: f.data, mtime });
  }
  return writeTar(entries);
}

/** The compression of an uploaded context, from its first bytes (what the daemon will accept). */
export function archiveKind(head: Uint8Array): 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'tar' | 'unknown' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a) return 'xz';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 263 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar') return 'tar';
  return 'unknown';
}

/** "KEY=value" lines (blank lines and # comments skipped) → build args; a line without "=" is refused. */
export function parseBuildArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new BuildInputError(`build arg ${JSON.stringify(line)}: expected KEY=value (the browser has no environment to take a value from)`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}

export interface BuildOptions {
  /** One or more tags, separated by spaces or commas. */
  tag?: string;
  dockerfile?: string;
  nocache?: boolean;
  pull?: boolean;
  /** Remove the container of a failed RUN too (docker build --force-rm). */
  forcerm?: boolean;
  buildArgs?: string;
  target?: string;
}

/** docker's reference rule, loosely: lower-case repository path, optional tag. */
const TAG_RE = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$/;

export function parseTags(text: string | undefined): string[] {
  const tags = (text ?? '').split(/[\s,]+/).filter(Boolean);
  for (const t of tags) {
    if (!TAG_RE.test(t)) throw new BuildInputError(`invalid reference format: ${JSON.stringify(t)} (repository names must be lowercase)`);
  }
  return tags;
}

/**
 * The /build query. Several tags go as repeated `t` parameters in docker's CLI; the UI's client
 * encodes one value per key, so a second tag is added after the build (see the page).
 */
export function buildQuery(o: BuildOptions): { query: Query; tags: string[] } {
  const tags = parseTags(o.tag);
  const args = parseBuildArgs(o.buildArgs ?? '');
  const query: Query = {
    t: tags[0],
    dockerfile: o.dockerfile?.trim() || 'Dockerfile',
    rm: true,
    q: false,
    nocache: o.nocache ? true : undefined,
    pull: o.pull ? true : undefined,
    forcerm: o.forcerm ? true : undefined,
    buildargs: Object.keys(args).length ? args : undefined,
    target: o.target?.trim() || undefined,
  };
  return { query, tags };
}

/** "registry:5000/app:1" → repo "registry:5000/app", tag "1" (tag "latest" when absent). */
export function splitReference(ref: string): { repo: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: 'latest' };
}
