// Platforms: normalisation, --platform parsing, the host's platform, and choosing an index entry
// (exact first, then what the machine can also run; attestation entries never).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compatiblePlatforms, formatPlatform, hostPlatform, normalizePlatform, parsePlatform, platformMatches, PlatformError, selectManifest,
} from '../../src/image/platform.ts';
import type { Descriptor, Platform } from '../../src/image/types.ts';

const P = (s: string): Platform => parsePlatform(s);

describe('normalise and parse', () => {
  const cases: Array<[string, string]> = [
    ['linux/amd64', 'linux/amd64'], ['linux/x86_64', 'linux/amd64'], ['linux/x86-64', 'linux/amd64'], ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'], ['linux/i386', 'linux/386'], ['linux/aarch64', 'linux/arm64'], ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64/8', 'linux/arm64'], ['linux/arm64/v9', 'linux/arm64/v9'], ['linux/armhf', 'linux/arm/v7'], ['linux/armel', 'linux/arm/v6'],
    ['linux/arm', 'linux/arm/v7'], ['linux/arm/7', 'linux/arm/v7'], ['linux/arm/6', 'linux/arm/v6'], ['Linux/ARM64', 'linux/arm64'],
    ['arm64', 'linux/arm64'], ['s390x', 'linux/s390x'], ['windows/amd64', 'windows/amd64'], ['linux/ppc64le', 'linux/ppc64le'],
  ];
  for (const [input, want] of cases) test(`${input} → ${want}`, () => assert.equal(formatPlatform(P(input)), want));

  test('an OS alone takes the host architecture', () => {
    assert.equal(P('linux').architecture, hostPlatform().architecture);
  });

  test('invalid --platform values say what is expected', () => {
    for (const bad of ['', 'linux/', '/amd64', 'linux/amd64/v8/x', 'plan10/amd64', 'linux/vax', 'foo', 'linux/am d64']) {
      assert.throws(() => parsePlatform(bad), PlatformError, bad);
    }
    assert.throws(() => parsePlatform('linux/vax'), /unknown architecture "vax"/);
  });

  test('the host platform is normalised GOOS/GOARCH', () => {
    const h = hostPlatform();
    assert.equal(h.os, 'linux');
    const goarch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    if (goarch[process.arch]) assert.equal(h.architecture, goarch[process.arch]);
    assert.deepEqual(normalizePlatform(h), h);
    if (h.architecture === 'arm') assert.match(h.variant ?? '', /^v[5-8]$/);
    else if (h.architecture !== 'amd64' || h.variant) assert.equal(h.variant, undefined);
  });
});

describe('compatibility', () => {
  test('fallback order', () => {
    const f = (s: string) => compatiblePlatforms(P(s)).map(formatPlatform);
    assert.deepEqual(f('linux/amd64'), ['linux/amd64', 'linux/386']);
    assert.deepEqual(f('linux/amd64/v3'), ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']);
    assert.deepEqual(f('linux/arm64'), ['linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    assert.deepEqual(f('linux/arm/v7'), ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    assert.deepEqual(f('linux/arm/v5'), ['linux/arm/v5']);
    assert.deepEqual(f('linux/s390x'), ['linux/s390x']);
  });

  test('matches', () => {
    assert.ok(platformMatches(P('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
    assert.ok(platformMatches(P('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' }));
    assert.ok(!platformMatches(P('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
    assert.ok(!platformMatches(P('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
  });
});

describe('selectManifest', () => {
  const d = (n: number, platform?: Platform, annotations?: Record<string, string>): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: n,
    ...(platform ? { platform } : {}), ...(annotations ? { annotations } : {}),
  });
  const index = [
    d(1, { os: 'linux', architecture: 'arm', variant: 'v6' }),
    d(2, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    d(3, { os: 'linux', architecture: 'amd64' }),
    d(4, { os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' }),
    d(5),
    d(6, { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    d(7, { os: 'linux', architecture: 'amd64' }),
  ];
  test('the best-ranked platform wins over index order; equal ranks keep index order', () => {
    assert.equal(selectManifest(index, P('linux/arm/v7'))?.size, 2);
    assert.equal(selectManifest(index, P('linux/arm/v6'))?.size, 1);
    assert.equal(selectManifest(index, P('linux/arm64'))?.size, 6);
    assert.equal(selectManifest(index, P('linux/amd64'))?.size, 3);
    assert.equal(selectManifest(index, P('linux/arm/v8'))?.size, 2);
  });
  test('nothing compatible, and entries without a platform or attestations, give undefined', () => {
    assert.equal(selectManifest(index, P('linux/ppc64le')), undefined);
    assert.equal(selectManifest([d(4, { os: 'unknown', architecture: 'unknown' }), d(5)], P('linux/amd64')), undefined);
    assert.equal(selectManifest(index.slice(0, 1), P('linux/arm/v5')), undefined);
  });
  test('arm64 runs 32-bit arm images when there is no arm64 one', () => {
    assert.equal(selectManifest(index.filter((x) => x.size !== 6), P('linux/arm64'))?.size, 2);
  });
});
