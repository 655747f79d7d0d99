// Image references as Docker reads them (the grammar of distribution/reference, written from its
// documented grammar):
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component [ "/" path-component ]*      (≤ 255 characters)
//   domain     := host [ ":" port ]        host := domain-name | "[" IPv6 "]"
//   path-comp  := [a-z0-9]+ ( separator [a-z0-9]+ )*   separator := [._] | "__" | "-"+
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex{32,}
//
// Normalisation (what `docker pull busybox` does): the first path component is a registry only
// when it contains "." or ":" or is exactly "localhost" (or has upper case, a quirk kept for
// compatibility: "Foo/bar" names a registry "Foo"); otherwise the registry is docker.io, and a
// single-component name on docker.io lives under "library/". index.docker.io is docker.io.
import { InvalidDigestError, parseDigest } from './digest.ts';
import type { Digest } from './types.ts';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** The host that actually serves Docker Hub's registry API. */
export const DOCKER_HUB_REGISTRY_HOST = 'registry-1.docker.io';
/** The key Docker Hub's credentials live under in docker's config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;
// Longer inputs cannot be valid (name ≤ 255, tag ≤ 128, digest ≤ a few hundred) and the regex
// should never see megabytes of attacker-supplied text.
const INPUT_LENGTH_MAX = 1024;

/**
 * A parsed reference. `domain` is '' only for references parsed without normalisation
 * (parseReferenceStrict); every normalised reference has a domain and a tag or a digest or both.
 */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: Digest;
}

export type ReferenceErrorCode =
  | 'INVALID_FORMAT' // does not match the grammar
  | 'NAME_EMPTY'
  | 'NAME_TOO_LONG'
  | 'NAME_UPPERCASE' // would be valid if it were lower case
  | 'HEX_NAME' // a bare 64-hex string: an image ID, not a repository name
  | 'INVALID_DIGEST'; // the digest part is not one Berth can verify

export class ReferenceError extends Error {
  override name = 'ReferenceError';
  constructor(readonly code: ReferenceErrorCode, readonly input: string, message: string) {
    super(message);
  }
}

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
// Only hex digits and colons inside brackets: no zone ("%eth0") and no embedded IPv4, as Docker.
const IPV6 = '\\[[a-fA-F0-9:]+\\]';
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`;
const PATH = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const NAME = `(?:${DOMAIN}/)?${PATH}`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const NAME_SPLIT_RE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH})$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

function invalid(input: string, detail?: string): ReferenceError {
  return new ReferenceError('INVALID_FORMAT', input, detail ? `invalid reference format: ${detail}` : 'invalid reference format');
}

/** Digest errors in the words of go-digest, which is what Docker users see for these. */
function checkDigest(input: string, digest: string): void {
  try {
    parseDigest(digest);
  } catch (err) {
    if (!(err instanceof InvalidDigestError)) throw err;
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const hex = digest.slice(digest.indexOf(':') + 1);
    let message = 'invalid checksum digest format';
    if (algorithm !== 'sha256' && algorithm !== 'sha512') message = 'unsupported digest algorithm';
    else if (hex.length !== (algorithm === 'sha256' ? 64 : 128)) message = 'invalid checksum digest length';
    throw new ReferenceError('INVALID_DIGEST', input, message);
  }
}

/**
 * distribution's `Parse`: the grammar only, no normalisation (domain is '' when the name has no
 * domain part, and "busybox" stays "busybox"). Used for names that must already be complete.
 */
export function parseReferenceStrict(input: string): Reference {
  if (input === '') throw new ReferenceError('NAME_EMPTY', input, 'repository name must have at least one component');
  if (input.length > INPUT_LENGTH_MAX) throw invalid(input.slice(0, 64) + '…');
  const m = REFERENCE_RE.exec(input);
  if (!m) {
    if (REFERENCE_RE.test(input.toLowerCase())) {
      throw new ReferenceError('NAME_UPPERCASE', input, 'repository name must be lowercase');
    }
    throw invalid(input);
  }
  const name = m[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new ReferenceError('NAME_TOO_LONG', input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const split = NAME_SPLIT_RE.exec(name);
  if (!split) throw invalid(input);
  const ref: Reference = { domain: split[1] ?? '', path: split[2]! };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) {
    checkDigest(input, m[3]);
    ref.digest = m[3];
  }
  return ref;
}

/** Splits off the registry part the way Docker decides whether the first component is a host. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * distribution's `ParseNormalizedNamed`: a name as a user types it ("busybox", "me/app:1",
 * "localhost:5000/x@sha256:…") → a fully qualified reference. Adds no tag (see parseDockerReference).
 */
export function parseNormalizedReference(input: string): Reference {
  if (IDENTIFIER_RE.test(input)) {
    throw new ReferenceError('HEX_NAME', input,
      `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`);
  }
  if (input.length > INPUT_LENGTH_MAX) throw invalid(input.slice(0, 64) + '…');
  const { domain, remainder } = splitDockerDomain(input);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) {
    throw new ReferenceError('NAME_UPPERCASE', input,
      `invalid reference format: repository name (${remote}) must be lowercase`);
  }
  try {
    return parseReferenceStrict(`${domain}/${remainder}`);
  } catch (err) {
    // The error is about what the user typed, not the expanded form.
    if (err instanceof ReferenceError) throw new ReferenceError(err.code, input, err.message);
    throw err;
  }
}

/**
 * What `docker pull NAME` resolves: normalised, with ":latest" when neither tag nor digest is
 * given. A reference with both keeps both (the digest decides what is pulled; the tag is kept
 * for display and for tagging the result).
 */
export function parseDockerReference(input: string): Reference {
  const ref = parseNormalizedReference(input);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Either an image ID (a digest, or its 64-hex form) or a reference: distribution's ParseAnyReference. */
export type AnyReference = { kind: 'id'; digest: Digest } | { kind: 'reference'; reference: Reference };

export function parseAnyReference(input: string): AnyReference {
  if (IDENTIFIER_RE.test(input)) return { kind: 'id', digest: `sha256:${input}` };
  if (/^sha256:/.test(input) || /^sha512:/.test(input)) {
    try {
      parseDigest(input);
      return { kind: 'id', digest: input };
    } catch {
      // fall through: "sha256:tag" is a valid name with a tag
    }
  }
  return { kind: 'reference', reference: parseNormalizedReference(input) };
}

/** Validates a tag on its own (e.g. `docker tag SRC NAME:TAG`, `--all-tags` results). */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function withTag(ref: Reference, tag: string): Reference {
  if (!isValidTag(tag)) throw new ReferenceError('INVALID_FORMAT', tag, `invalid tag format: ${JSON.stringify(tag)}`);
  return { ...ref, tag };
}

export function withDigest(ref: Reference, digest: Digest): Reference {
  checkDigest(digest, digest);
  return { ...ref, digest };
}

/** The name without tag or digest: "docker.io/library/busybox". */
export function referenceName(ref: Reference): string {
  return ref.domain ? `${ref.domain}/${ref.path}` : ref.path;
}

/** The full string: "docker.io/library/busybox:latest", "localhost:5000/x:y@sha256:…". */
export function referenceString(ref: Reference): string {
  let s = referenceName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Docker's short name: "busybox", "me/app", "localhost:5000/x". */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return referenceName(ref);
  const path = ref.path;
  if (path.startsWith(OFFICIAL_REPO_PREFIX) && !path.slice(OFFICIAL_REPO_PREFIX.length).includes('/')) {
    return path.slice(OFFICIAL_REPO_PREFIX.length);
  }
  return path;
}

/** Docker's short string with tag and digest: "busybox:latest", "localhost:5000/x:y". */
export function familiarString(ref: Reference): string {
  let s = familiarName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The host[:port] whose /v2/ API serves this domain (docker.io is served by registry-1.docker.io). */
export function registryHost(refOrDomain: Reference | string): string {
  const domain = typeof refOrDomain === 'string' ? refOrDomain : refOrDomain.domain;
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN ? DOCKER_HUB_REGISTRY_HOST : domain;
}

/** The repository name in API paths (/v2/<name>/manifests/…): "library/busybox". */
export function repositoryName(ref: Reference): string {
  return ref.path;
}

/** The key a registry's credentials have in docker's config.json (Docker Hub has its legacy URL). */
export function authConfigKey(refOrDomain: Reference | string): string {
  const domain = typeof refOrDomain === 'string' ? refOrDomain : refOrDomain.domain;
  return domain === DEFAULT_DOMAIN || domain === LEGACY_DEFAULT_DOMAIN || domain === DOCKER_HUB_REGISTRY_HOST
    ? DOCKER_HUB_AUTH_KEY : domain;
}

/** What a manifest request names: the digest when there is one (it pins the content), else the tag. */
export function manifestReference(ref: Reference): string {
  const r = ref.digest ?? ref.tag;
  if (r === undefined) throw new ReferenceError('INVALID_FORMAT', referenceString(ref), `reference ${referenceString(ref)} has neither a tag nor a digest`);
  return r;
}
