// Image references: the grammar and Docker's normalisation. The tables restate the cases of
// distribution/reference's own tests (the facts, in this project's terms) plus Docker CLI behaviour.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  authConfigKey, familiarName, familiarString, isValidTag, manifestReference, parseAnyReference, parseDockerReference,
  parseNormalizedReference, parseReferenceStrict, referenceName, referenceString, registryHost, repositoryName,
  ReferenceError, withDigest, withTag, type ReferenceErrorCode,
} from '../../src/image/reference.ts';

const F64 = 'f'.repeat(64);
const F128 = 'f'.repeat(128);

describe('strict parse (the grammar, no normalisation)', () => {
  // input, expected {name, domain, tag, digest} or an error code
  const ok: Array<[string, { name: string; domain?: string; tag?: string; digest?: string }]> = [
    ['test_com', { name: 'test_com' }],
    ['test.com:tag', { name: 'test.com', tag: 'tag' }],
    ['test.com:5000', { name: 'test.com', tag: '5000' }],
    ['test.com/repo:tag', { name: 'test.com/repo', domain: 'test.com', tag: 'tag' }],
    ['test:5000/repo', { name: 'test:5000/repo', domain: 'test:5000' }],
    ['test:5000/repo:tag', { name: 'test:5000/repo', domain: 'test:5000', tag: 'tag' }],
    [`test:5000/repo@sha256:${F64}`, { name: 'test:5000/repo', domain: 'test:5000', digest: `sha256:${F64}` }],
    [`test:5000/repo:tag@sha256:${F64}`, { name: 'test:5000/repo', domain: 'test:5000', tag: 'tag', digest: `sha256:${F64}` }],
    ['lowercase:Uppercase', { name: 'lowercase', tag: 'Uppercase' }],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, { name: `${'a/'.repeat(127)}a`, domain: 'a', tag: 'tag-puts-this-over-max' }],
    ['sub-dom1.foo.com/bar/baz/quux', { name: 'sub-dom1.foo.com/bar/baz/quux', domain: 'sub-dom1.foo.com' }],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', { name: 'sub-dom1.foo.com/bar/baz/quux', domain: 'sub-dom1.foo.com', tag: 'some-long-tag' }],
    ['b.gcr.io/test.example.com/my-app:test.example.com', { name: 'b.gcr.io/test.example.com/my-app', domain: 'b.gcr.io', tag: 'test.example.com' }],
    ['xn--n3h.com/myimage:xn--n3h.com', { name: 'xn--n3h.com/myimage', domain: 'xn--n3h.com', tag: 'xn--n3h.com' }],
    [`xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, { name: 'xn--7o8h.com/myimage', domain: 'xn--7o8h.com', tag: 'xn--7o8h.com', digest: `sha512:${F128}` }],
    ['foo_bar.com:8080', { name: 'foo_bar.com', tag: '8080' }],
    ['foo/foo_bar.com:8080', { name: 'foo/foo_bar.com', domain: 'foo', tag: '8080' }],
    ['192.168.1.1', { name: '192.168.1.1' }],
    ['192.168.1.1:tag', { name: '192.168.1.1', tag: 'tag' }],
    ['192.168.1.1:5000', { name: '192.168.1.1', tag: '5000' }],
    ['192.168.1.1/repo', { name: '192.168.1.1/repo', domain: '192.168.1.1' }],
    ['192.168.1.1:5000/repo', { name: '192.168.1.1:5000/repo', domain: '192.168.1.1:5000' }],
    ['192.168.1.1:5000/repo:5050', { name: '192.168.1.1:5000/repo', domain: '192.168.1.1:5000', tag: '5050' }],
    ['[2001:db8::1]/repo', { name: '[2001:db8::1]/repo', domain: '[2001:db8::1]' }],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', { name: '[2001:db8:1:2:3:4:5:6]/repo', domain: '[2001:db8:1:2:3:4:5:6]', tag: 'tag' }],
    ['[2001:db8::1]:5000/repo', { name: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000' }],
    ['[2001:db8::1]:5000/repo:tag', { name: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', tag: 'tag' }],
    [`[2001:db8::1]:5000/repo@sha256:${F64}`, { name: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', digest: `sha256:${F64}` }],
    [`[2001:db8::1]:5000/repo:tag@sha256:${F64}`, { name: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', tag: 'tag', digest: `sha256:${F64}` }],
    ['[2001:db8::]:5000/repo', { name: '[2001:db8::]:5000/repo', domain: '[2001:db8::]:5000' }],
    ['[::1]:5000/repo', { name: '[::1]:5000/repo', domain: '[::1]:5000' }],
  ];
  for (const [input, want] of ok) {
    test(`parses ${input.length > 60 ? `${input.slice(0, 57)}…` : input}`, () => {
      const ref = parseReferenceStrict(input);
      assert.equal(referenceName(ref), want.name);
      assert.equal(ref.domain, want.domain ?? '');
      assert.equal(ref.tag, want.tag);
      assert.equal(ref.digest, want.digest);
      assert.equal(referenceString(ref), input, 'round-trips');
    });
  }

  const bad: Array<[string, ReferenceErrorCode, RegExp]> = [
    ['', 'NAME_EMPTY', /at least one component/],
    [':justtag', 'INVALID_FORMAT', /^invalid reference format$/],
    [`@sha256:${F64}`, 'INVALID_FORMAT', /^invalid reference format$/],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'INVALID_DIGEST', /invalid checksum digest length/],
    [`validname@invaliddigest:${F64}`, 'INVALID_DIGEST', /unsupported digest algorithm/],
    ['Uppercase:tag', 'NAME_UPPERCASE', /repository name must be lowercase/],
    ['test:5000/Uppercase/lowercase:tag', 'NAME_UPPERCASE', /repository name must be lowercase/],
    [`${'a/'.repeat(128)}a:tag`, 'NAME_TOO_LONG', /must not be more than 255 characters/],
    ['aa/asdf$$^/aa', 'INVALID_FORMAT', /invalid reference format/],
    ['[2001:db8::1]', 'INVALID_FORMAT', /invalid reference format/],
    ['[2001:db8::1]:5000', 'INVALID_FORMAT', /invalid reference format/],
    ['[2001:db8::1]:tag', 'INVALID_FORMAT', /invalid reference format/],
    ['[fe80::1%eth0]:5000/repo', 'INVALID_FORMAT', /invalid reference format/],
    ['[fe80::1%@invalidzone]:5000/repo', 'INVALID_FORMAT', /invalid reference format/],
    ['a'.repeat(5000), 'INVALID_FORMAT', /invalid reference format/],
  ];
  for (const [input, code, message] of bad) {
    test(`refuses ${JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}…` : input)} (${code})`, () => {
      assert.throws(() => parseReferenceStrict(input), (err: unknown) => {
        assert.ok(err instanceof ReferenceError, `a ReferenceError, got ${String(err)}`);
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('normalised names (what docker pull accepts)', () => {
  const valid = [
    'docker/docker', 'library/debian', 'debian', 'docker.io/docker/docker', 'docker.io/library/debian', 'docker.io/debian',
    'index.docker.io/docker/docker', 'index.docker.io/library/debian', 'index.docker.io/debian',
    '127.0.0.1:5000/docker/docker', '127.0.0.1:5000/library/debian', '127.0.0.1:5000/debian', '192.168.0.1', '192.168.0.1:80',
    '192.168.0.1:8/debian', '192.168.0.2:25000/debian', 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    '[fc00::1]:5000/docker', '[fc00::1]:5000/docker/docker', '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'Docker/docker', 'DOCKER/docker',
    'docker-rules/docker', 'docker---rules/docker', 'doc/docker', 'd/docker', 'jess/t', 'dock__er/docker',
  ];
  for (const name of valid) test(`accepts ${name}`, () => assert.doesNotThrow(() => parseNormalizedReference(name)));

  const invalid = [
    'https://github.com/docker/docker', 'docker/Docker', '-docker', '-docker/docker', '-docker.io/docker/docker', 'docker///docker',
    'docker.io/docker/Docker', 'docker.io/docker///docker', '[fc00::1]', '[fc00::1]:5000', 'fc00::1:5000/debian',
    '[fe80::1%eth0]:5000/debian', '[2001:db8:3:4::192.0.2.33]:5000/debian',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'docker-/docker', '-docker-/docker', '____/____',
    '_docker/_docker', 'dock..er/docker', 'dock_.er/docker', 'dock-.er/docker', 'docker/',
    `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}/docker`,
  ];
  for (const name of invalid) {
    test(`refuses ${name.length > 60 ? `${name.slice(0, 57)}…` : name}`, () => {
      assert.throws(() => parseNormalizedReference(name), ReferenceError);
    });
  }

  // [path the registry sees, familiar name, full name, other spellings, domain]
  const infos: Array<[string, string, string, string[], string]> = [
    ['fooo/bar', 'fooo/bar', 'docker.io/fooo/bar', ['index.docker.io/fooo/bar'], 'docker.io'],
    ['library/ubuntu', 'ubuntu', 'docker.io/library/ubuntu', ['library/ubuntu'], 'docker.io'],
    ['nonlibrary/ubuntu', 'nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu', [], 'docker.io'],
    ['other/library', 'other/library', 'docker.io/other/library', [], 'docker.io'],
    ['private/moonbase', '127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase', [], '127.0.0.1:8000'],
    ['privatebase', '127.0.0.1:8000/privatebase', '127.0.0.1:8000/privatebase', [], '127.0.0.1:8000'],
    ['private/moonbase', 'example.com/private/moonbase', 'example.com/private/moonbase', [], 'example.com'],
    ['privatebase', 'example.com/privatebase', 'example.com/privatebase', [], 'example.com'],
    ['private/moonbase', 'example.com:8000/private/moonbase', 'example.com:8000/private/moonbase', [], 'example.com:8000'],
    ['privatebasee', 'example.com:8000/privatebasee', 'example.com:8000/privatebasee', [], 'example.com:8000'],
    ['library/ubuntu-12.04-base', 'ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', ['index.docker.io/library/ubuntu-12.04-base'], 'docker.io'],
    ['library/foo', 'foo', 'docker.io/library/foo', ['docker.io/foo'], 'docker.io'],
    ['library/foo/bar', 'library/foo/bar', 'docker.io/library/foo/bar', [], 'docker.io'],
    ['store/foo/bar', 'store/foo/bar', 'docker.io/store/foo/bar', [], 'docker.io'],
    ['bar', 'Foo/bar', 'Foo/bar', [], 'Foo'],
    ['bar', 'FOO/bar', 'FOO/bar', [], 'FOO'],
    ['foo', 'localhost/foo', 'localhost/foo', [], 'localhost'],
    ['x', 'localhost:5000/x', 'localhost:5000/x', [], 'localhost:5000'],
    ['test_com/foo', 'test_com/foo', 'docker.io/test_com/foo', [], 'docker.io'],
    ['foo', 'test-com:8080/foo', 'test-com:8080/foo', [], 'test-com:8080'],
    ['foo', 'xn--n3h.com:18080/foo', 'xn--n3h.com:18080/foo', [], 'xn--n3h.com:18080'],
  ];
  for (const [path, familiar, full, others, domain] of infos) {
    for (const spelling of [familiar, full, ...others]) {
      test(`${spelling} → ${full}`, () => {
        const ref = parseNormalizedReference(spelling);
        assert.equal(ref.domain, domain);
        assert.equal(ref.path, path);
        assert.equal(repositoryName(ref), path);
        assert.equal(referenceName(ref), full);
        assert.equal(familiarName(ref), familiar);
      });
    }
  }

  test('docker pull defaults: :latest, tag and digest together, digest only', () => {
    const bb = parseDockerReference('busybox');
    assert.deepEqual(bb, { domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
    assert.equal(referenceString(bb), 'docker.io/library/busybox:latest');
    assert.equal(familiarString(bb), 'busybox:latest');
    assert.equal(manifestReference(bb), 'latest');

    const short = 'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
    const both = parseDockerReference(short);
    assert.equal(referenceString(both), `docker.io/library/${short}`);
    assert.equal(familiarString(both), short);
    assert.equal(both.tag, 'latest');
    assert.equal(manifestReference(both), both.digest, 'the digest pins what is pulled');

    const pinned = parseDockerReference(`localhost:5000/x@sha256:${F64}`);
    assert.equal(pinned.tag, undefined, 'no :latest is added beside a digest');
    assert.equal(familiarString(pinned), `localhost:5000/x@sha256:${F64}`);

    assert.equal(familiarString(parseDockerReference('localhost:5000/x:y')), 'localhost:5000/x:y');
    assert.equal(familiarString(parseDockerReference('me/app')), 'me/app:latest');
    assert.equal(referenceString(parseDockerReference('localhost/x')), 'localhost/x:latest');
  });

  test("docker's messages for upper case and image IDs", () => {
    assert.throws(() => parseDockerReference('Busybox'), {
      code: 'NAME_UPPERCASE', message: 'invalid reference format: repository name (library/Busybox) must be lowercase',
    });
    assert.throws(() => parseDockerReference('localhost:5000/Me/app:Tag'), {
      message: 'invalid reference format: repository name (Me/app) must be lowercase',
    });
    assert.throws(() => parseDockerReference('a b'), { code: 'INVALID_FORMAT', message: 'invalid reference format', input: 'a b' });
    assert.throws(() => parseDockerReference('1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'), {
      code: 'HEX_NAME', message: /cannot specify 64-byte hexadecimal strings/,
    });
    assert.throws(() => parseDockerReference('busybox:-x'), { code: 'INVALID_FORMAT' });
    assert.throws(() => parseDockerReference(`busybox:${'t'.repeat(129)}`), { code: 'INVALID_FORMAT' });
    assert.doesNotThrow(() => parseDockerReference(`busybox:${'t'.repeat(128)}`));
  });
});

describe('helpers', () => {
  test('parseAnyReference: IDs and names', () => {
    const hex = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
    assert.deepEqual(parseAnyReference(hex), { kind: 'id', digest: `sha256:${hex}` });
    assert.deepEqual(parseAnyReference(`sha256:${hex}`), { kind: 'id', digest: `sha256:${hex}` });
    const r = parseAnyReference(hex.slice(0, 63));
    assert.equal(r.kind, 'reference');
    assert.equal(r.kind === 'reference' && referenceName(r.reference), `docker.io/library/${hex.slice(0, 63)}`);
    const short = parseAnyReference('dbcc1');
    assert.equal(short.kind === 'reference' && referenceName(short.reference), 'docker.io/library/dbcc1');
    const red = parseAnyReference(`redis@sha256:${hex}`);
    assert.equal(red.kind === 'reference' && referenceString(red.reference), `docker.io/library/redis@sha256:${hex}`);
  });

  test('registry host and credential key', () => {
    assert.equal(registryHost(parseDockerReference('busybox')), 'registry-1.docker.io');
    assert.equal(registryHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryHost(parseDockerReference('localhost:5000/x')), 'localhost:5000');
    assert.equal(registryHost(parseDockerReference('ghcr.io/o/r')), 'ghcr.io');
    assert.equal(authConfigKey('docker.io'), 'https://index.docker.io/v1/');
    assert.equal(authConfigKey(parseDockerReference('busybox')), 'https://index.docker.io/v1/');
    assert.equal(authConfigKey('127.0.0.1:5000'), '127.0.0.1:5000');
  });

  test('withTag / withDigest validate', () => {
    const ref = parseNormalizedReference('busybox');
    assert.equal(referenceString(withTag(ref, 'TAG5')), 'docker.io/library/busybox:TAG5');
    assert.throws(() => withTag(ref, '-foo'), ReferenceError);
    assert.throws(() => withDigest(ref, 'foo'), ReferenceError);
    assert.equal(referenceString(withDigest(withTag(ref, 't'), `sha256:${F64}`)), `docker.io/library/busybox:t@sha256:${F64}`);
    assert.ok(isValidTag('v1.0_rc-2'));
    assert.ok(!isValidTag('.hidden'));
  });
});
