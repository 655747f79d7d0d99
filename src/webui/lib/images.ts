// The images list's logic: rows as `docker images` prints them, and image references split the
// way the docker CLI sends them to the Engine API. Pure; unit-tested in Node.

export interface ImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  Labels?: Record<string, string> | null;
  Containers?: number;
}

export interface ImageRow {
  /** Unique per row (an image with two tags has two rows). */
  key: string;
  id: string;
  repository: string;
  tag: string;
  /** What to name the image in API calls for this row: repo:tag, or the ID for an untagged one. */
  ref: string;
  created: number;
  size: number;
  dangling: boolean;
  image: ImageSummary;
}

const NONE = '<none>';

/** "host:5000/a/b:tag" → { repo: "host:5000/a/b", tag: "tag" } (the tag follows the last ':' after the last '/'). */
export function splitRepoTag(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repo: ref.slice(0, at), tag: '' };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: '' };
}

/** One row per tag, as `docker images`; untagged images show <none>, with the repository of a digest when they have one. */
export function imageRows(images: ImageSummary[]): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const img of images) {
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const base = { id: img.Id, created: img.Created, size: img.Size, image: img };
    if (tags.length) {
      for (const t of tags) {
        const { repo, tag } = splitRepoTag(t);
        rows.push({ ...base, key: `${img.Id} ${t}`, repository: repo, tag: tag || NONE, ref: t, dangling: false });
      }
      continue;
    }
    const digests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>');
    if (digests.length) {
      for (const d of digests) {
        rows.push({ ...base, key: `${img.Id} ${d}`, repository: d.slice(0, d.indexOf('@')), tag: NONE, ref: img.Id, dangling: true });
      }
      continue;
    }
    rows.push({ ...base, key: img.Id, repository: NONE, tag: NONE, ref: img.Id, dangling: true });
  }
  // Newest first, then by name, as docker sorts.
  rows.sort((a, b) => b.created - a.created || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
  return rows;
}

export function filterRows(rows: ImageRow[], search: string): ImageRow[] {
  const q = search.trim().toLowerCase();
  if (!q) return rows;
  const idq = q.replace(/^sha256:/, '');
  return rows.filter((r) => `${r.repository}:${r.tag}`.toLowerCase().includes(q) || r.id.replace(/^sha256:/, '').startsWith(idq));
}

/**
 * A reference typed into the pull dialog as the docker CLI sends it to POST /images/create:
 * fromImage without the tag, tag (default "latest"), or the digest in `tag` for name@digest.
 */
export function pullQuery(ref: string): { fromImage: string; tag: string } {
  const r = ref.trim();
  if (!r) throw new Error('Enter an image reference, e.g. busybox:latest');
  if (/\s/.test(r)) throw new Error(`invalid reference format: "${r}" contains spaces`);
  if (r !== r.toLowerCase() && /[A-Z]/.test(splitRepoTag(r).repo.replace(/^[^/]*\//, ''))) {
    throw new Error('invalid reference format: repository name must be lowercase');
  }
  const at = r.indexOf('@');
  if (at >= 0) return { fromImage: r.slice(0, at), tag: r.slice(at + 1) };
  const { repo, tag } = splitRepoTag(r);
  return { fromImage: repo, tag: tag || 'latest' };
}

/**
 * X-Registry-Auth for a registry without credentials: base64url of "{}". The Engine API wants the
 * header on push even then (dockerd answers 400 without it on older API versions).
 */
export const EMPTY_REGISTRY_AUTH = 'e30=';

/** The repository:tag names of an image that can be pushed (digest references cannot). */
export function pushableTags(repoTags: string[] | null | undefined): string[] {
  return (repoTags ?? []).filter((t) => t !== '<none>:<none>' && !t.includes('@'));
}
