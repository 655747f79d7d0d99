// What this daemon says about itself: API versions for negotiation and the build's identity.
//
// API 1.47 (Docker 27) is the newest version whose request and response fields Berth implements;
// docker CLIs up to 28.x negotiate down to it, and docker-py (default 1.44) fits under it.
// 1.24 is the oldest a current dockerd still accepts.

export const API_VERSION = '1.47';
export const MIN_API_VERSION = '1.24';
export const BERTH_VERSION = '0.1.0';

// Set by scripts/build.mjs (esbuild `define`); absent when running from source with tsx.
declare const __BERTH_GIT_COMMIT__: string | undefined;
declare const __BERTH_BUILD_TIME__: string | undefined;

export const GIT_COMMIT: string = typeof __BERTH_GIT_COMMIT__ === 'string' ? __BERTH_GIT_COMMIT__ : 'unknown';
/** RFC 3339, as dockerd reports BuildTime; '' when unknown. */
export const BUILD_TIME: string = typeof __BERTH_BUILD_TIME__ === 'string' ? __BERTH_BUILD_TIME__ : '';

/** Docker's versions.Compare on "major.minor[.patch]" strings: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = i < pa.length ? parseInt(pa[i], 10) || 0 : 0;
    const y = i < pb.length ? parseInt(pb[i], 10) || 0 : 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0;
