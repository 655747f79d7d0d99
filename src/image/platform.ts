// Platforms (os/architecture/variant): the host's, `--platform` strings, and the choice of one
// manifest from an index. The rules follow what Docker does through containerd's platform
// matcher: names are normalised first (aarch64 → arm64, armhf → arm/v7, x86_64 → amd64, arm64's
// v8 is its default and is written as no variant), then an index entry is acceptable if it equals
// the wanted platform or one it can also run, best first: arm/v7 also runs v6 and v5, arm64 also
// runs 32-bit arm, amd64/v3 also runs v2 and v1, amd64 also runs 386.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Descriptor, Platform } from './types.ts';

export class PlatformError extends Error {
  override name = 'PlatformError';
}

/** Node's process.arch → Go's GOARCH, which is what image configs and indexes use. */
const NODE_TO_GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: endianness() === 'LE' ? 'ppc64le' : 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux', 'netbsd',
  'openbsd', 'plan9', 'solaris', 'wasip1', 'windows']);
const KNOWN_ARCH = new Set(['386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64',
  'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc',
  'sparc64', 'wasm', 'i386', 'x86_64', 'x86-64', 'aarch64', 'armhf', 'armel']);

/** Canonical names, so that equal platforms compare equal field by field. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (/^\d+(\.\d+)?$/.test(variant)) variant = `v${variant}`;
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version'] !== undefined) out['os.version'] = p['os.version'];
  if (p['os.features'] !== undefined) out['os.features'] = p['os.features'];
  return out;
}

/** "linux/arm/v7": the form docker prints and --platform takes. */
export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

let cachedArmVariant: string | undefined | null = null;

/** The 32-bit ARM architecture level of this machine (v6, v7, v8), as containerd reads it. */
function hostArmVariant(): string | undefined {
  if (cachedArmVariant !== null) return cachedArmVariant;
  let variant: string | undefined;
  const fromNode = (process.config.variables as Record<string, unknown>)['arm_version'];
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^CPU architecture\s*:\s*(\S+)/mi.exec(cpuinfo);
    if (m) {
      const level = m[1]!.toLowerCase();
      if (level === 'aarch64' || level === '8') variant = 'v8';
      else if (level === '7' || level === '6' || level === '5') variant = `v${level}`;
      else if (level.startsWith('armv')) variant = `v${level.slice(4).replace(/[^0-9].*$/, '')}`;
    }
  } catch {
    // no /proc (or not Linux): fall back to what Node was built for
  }
  if (!variant && (typeof fromNode === 'string' || typeof fromNode === 'number')) variant = `v${fromNode}`;
  cachedArmVariant = variant;
  return variant;
}

/** The platform this process runs on, in image terms (GOOS/GOARCH/variant), normalised. */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_GOARCH[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const p: Platform = { os, architecture };
  if (architecture === 'arm') {
    const v = hostArmVariant();
    if (v) p.variant = v;
  }
  return normalizePlatform(p);
}

/**
 * Parses `--platform`: "os/arch[/variant]", or one word that is an OS (the host's architecture)
 * or an architecture (Linux). The result is normalised.
 */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split('/');
  if (parts.some((p) => p === '' || !/^[A-Za-z0-9_.-]+$/.test(p)) || parts.length > 3) {
    throw new PlatformError(`invalid platform ${JSON.stringify(spec)}: expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7`);
  }
  const lower = parts.map((p) => p.toLowerCase());
  if (lower.length === 1) {
    const [word] = lower as [string];
    if (KNOWN_OS.has(word)) return normalizePlatform({ ...hostPlatform(), os: word });
    if (KNOWN_ARCH.has(word)) return normalizePlatform({ os: 'linux', architecture: word });
    throw new PlatformError(`invalid platform ${JSON.stringify(spec)}: unknown operating system or architecture`);
  }
  const [os, architecture, variant] = lower as [string, string, string | undefined];
  if (!KNOWN_OS.has(os)) throw new PlatformError(`invalid platform ${JSON.stringify(spec)}: unknown operating system ${JSON.stringify(os)}`);
  if (!KNOWN_ARCH.has(architecture)) {
    throw new PlatformError(`invalid platform ${JSON.stringify(spec)}: unknown architecture ${JSON.stringify(architecture)}`);
  }
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

/**
 * The platforms an image for `want` may be, best first. The first entry is `want` itself
 * (normalised); the rest are older variants or 32-bit modes the machine also runs.
 */
export function compatiblePlatforms(want: Platform): Platform[] {
  const p = normalizePlatform(want);
  const out: Platform[] = [p];
  const at = (architecture: string, variant?: string): Platform => (variant ? { os: p.os, architecture, variant } : { os: p.os, architecture });
  const armDown = (from: number): void => {
    for (let v = from; v >= 5; v--) out.push(at('arm', `v${v}`));
  };
  const level = (variant: string | undefined): number | undefined => {
    const m = /^v(\d+)/.exec(variant ?? '');
    return m ? Number(m[1]) : undefined;
  };
  switch (p.architecture) {
    case 'amd64': {
      const n = level(p.variant);
      if (n !== undefined && n > 1) {
        for (let v = n - 1; v >= 2; v--) out.push(at('amd64', `v${v}`));
        out.push(at('amd64'));
      }
      out.push(at('386'));
      break;
    }
    case 'arm': {
      const n = level(p.variant);
      if (n !== undefined) {
        out.length = 0;
        armDown(n);
      }
      break;
    }
    case 'arm64': {
      // A newer level (v8.2, v9) also runs plain arm64 (v8) images; then 32-bit arm.
      if (p.variant) out.push(at('arm64'));
      armDown(8);
      break;
    }
  }
  return out;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** Whether an image built for `have` runs where `want` is wanted (including compatible fallbacks). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const h = normalizePlatform(have);
  return compatiblePlatforms(want).some((c) => samePlatform(c, h));
}

/**
 * The index entry to pull for `want`: the best-ranked compatible platform; among entries of
 * equal rank the first in the index wins (as Docker). Entries without a platform (and
 * attestation manifests, which say unknown/unknown) are never chosen. Undefined when none fits.
 */
export function selectManifest(manifests: readonly Descriptor[], want: Platform): Descriptor | undefined {
  const ranked = compatiblePlatforms(want);
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of manifests) {
    if (!d.platform || typeof d.platform.os !== 'string' || typeof d.platform.architecture !== 'string') continue;
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
    const have = normalizePlatform(d.platform);
    const rank = ranked.findIndex((c) => samePlatform(c, have));
    if (rank !== -1 && rank < bestRank) {
      best = d;
      bestRank = rank;
    }
  }
  return best;
}

/** The platforms an index offers, for an error message ("linux/amd64, linux/arm64"). */
export function listPlatforms(manifests: readonly Descriptor[]): string[] {
  return manifests
    .filter((d) => d.platform && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest')
    .map((d) => formatPlatform(normalizePlatform(d.platform!)));
}
