// The registry client's pure parts: WWW-Authenticate parsing, error rendering, manifest
// parsing, X-Registry-Auth, and docker's config.json with credential helpers (a real helper
// program on PATH, written here, speaking the helper protocol).
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  credentialKey, CredentialsError, CredentialStore, decodeRegistryAuthHeader, encodeRegistryAuthHeader, formatDistributionError,
  parseManifestBytes, parseWWWAuthenticate, RegistryClient, RegistryError,
} from '../../src/image/registry/index.ts';
import { errorFromResponse, redactUrl } from '../../src/image/registry/errors.ts';
import { MediaType } from '../../src/image/types.ts';

describe('WWW-Authenticate', () => {
  test('docker hub style bearer challenge', () => {
    assert.deepEqual(parseWWWAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });

  test('insufficient_scope with escapes, spaces and token values', () => {
    const [c] = parseWWWAuthenticate('Bearer  realm = "https://a/t" , error=insufficient_scope, error_description="say \\"hi\\"", scope="repository:a:pull,push"');
    assert.deepEqual(c, { scheme: 'bearer', params: { realm: 'https://a/t', error: 'insufficient_scope', error_description: 'say "hi"', scope: 'repository:a:pull,push' } });
  });

  test('several challenges in one header or several headers; scheme and names are case-insensitive', () => {
    assert.deepEqual(parseWWWAuthenticate('Basic realm="x", BEARER Realm="https://t",Service="s"'), [
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'https://t', service: 's' } },
    ]);
    assert.deepEqual(parseWWWAuthenticate(['Basic realm="Registry Realm"', 'Bearer realm="r"']).map((c) => c.scheme), ['basic', 'bearer']);
    assert.deepEqual(parseWWWAuthenticate(undefined), []);
    assert.deepEqual(parseWWWAuthenticate('Negotiate'), [{ scheme: 'negotiate', params: {} }]);
  });
});

describe('errors', () => {
  test("docker's rendering of distribution errors", () => {
    assert.equal(formatDistributionError({ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }), 'manifest unknown: manifest unknown');
    assert.equal(formatDistributionError({ code: 'UNAUTHORIZED', message: '' }), 'unauthorized: authentication required');
    assert.equal(formatDistributionError({ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }),
      'toomanyrequests: You have reached your pull rate limit.');
    assert.equal(formatDistributionError({ code: 'SOMETHING_NEW', message: 'hm' }), 'unknown: hm');
  });

  test('responses without a distribution body map by status and subject', () => {
    const mk = (status: number, body: string, subject: 'manifest' | 'blob' | 'token' | 'tags' = 'manifest') =>
      errorFromResponse({ status, body, method: 'GET', url: 'https://r/v2/x/manifests/y', subject });
    assert.equal(mk(404, '').code, 'MANIFEST_UNKNOWN');
    assert.equal(mk(404, 'not found', 'blob').message, 'blob unknown: blob unknown to registry');
    assert.equal(mk(401, '{"details":"incorrect username or password"}', 'token').message, 'unauthorized: incorrect username or password');
    assert.equal(mk(403, '').message, 'denied: requested access to the resource is denied');
    assert.equal(mk(429, '').message, 'toomanyrequests: too many requests');
    const e = mk(500, '<html>oops</html>');
    assert.equal(e.code, 'HTTP_ERROR');
    assert.ok(e.retryable);
    assert.match(e.message, /^unexpected HTTP status 500 from GET https:\/\/r\/v2\/x\/manifests\/y: <html>oops<\/html>$/);
    assert.ok(!mk(400, '').retryable);
  });

  test('a bearer challenge\'s error decides between denied and unauthorized (RFC 6750)', () => {
    const e = errorFromResponse({ status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', method: 'GET', url: 'u',
      subject: 'manifest', bearerError: { error: 'insufficient_scope' } });
    assert.equal(e.code, 'DENIED');
    assert.equal(e.message, 'denied: requested access to the resource is denied');
    assert.equal(e.errors.length, 2, 'the registry\'s own entry is kept');
  });

  test('URLs in messages lose credentials and upload state', () => {
    assert.equal(redactUrl('https://u:p@r/v2/x/blobs/uploads/1?_state=abc&digest=sha256:1'),
      'https://r/v2/x/blobs/uploads/1?_state=REDACTED&digest=sha256%3A1');
    assert.equal(redactUrl('https://s3/b?X-Amz-Signature=zz&ok=1'), 'https://s3/b?X-Amz-Signature=REDACTED&ok=1');
  });
});

describe('insecure registries', () => {
  test('loopback and localhost always; others when listed by host, host:port or CIDR', async () => {
    const c = new RegistryClient({ insecureRegistries: ['reg.example:5000', 'plain.example', '10.1.0.0/16', 'fd00:1::/32'] });
    for (const h of ['127.0.0.1:5000', '127.8.9.10', '[::1]:5000', 'localhost', 'localhost:5000', 'x.localhost:1', 'reg.example:5000',
      'plain.example:443', '10.1.2.3:5000', '[fd00:1:2::3]:80']) assert.ok(await c.isInsecure(h), h);
    for (const h of ['reg.example:5001', 'registry-1.docker.io', '10.2.0.1', '[fd00:2::1]:80', '192.0.2.1:5000']) assert.ok(!(await c.isInsecure(h)), h);
    assert.throws(() => new RegistryClient({ insecureRegistries: ['10.0.0.0/99'] }), /invalid insecure registry "10\.0\.0\.0\/99"/);
  });
});

describe('manifest parsing', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  const desc = { mediaType: MediaType.OciLayerGzip, digest: d, size: 1 };
  test('kinds by declared media type, Content-Type, or shape', () => {
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { ...desc, mediaType: MediaType.DockerConfig }, layers: [desc] }));
    assert.equal(parseManifestBytes(m, 'application/json', d, 'x').kind, 'manifest');
    const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [desc] }));
    const idx = parseManifestBytes(bare, MediaType.DockerManifestList, d, 'x');
    assert.equal(idx.kind, 'index');
    assert.equal(idx.mediaType, MediaType.DockerManifestList);
    assert.equal(parseManifestBytes(bare, '', d, 'x').mediaType, MediaType.OciIndex);
  });

  test('schema1, other schema versions, broken descriptors and non-JSON are refused clearly', () => {
    assert.throws(() => parseManifestBytes(Buffer.from('{"schemaVersion":1,"name":"x","fsLayers":[]}'), MediaType.DockerSchema1Signed, d, 'r/x:1'),
      (e: unknown) => e instanceof RegistryError && e.code === 'UNSUPPORTED_MANIFEST' && /schema 1.*re-push/.test(e.message));
    assert.throws(() => parseManifestBytes(Buffer.from('{"schemaVersion":3}'), '', d, 'x'), /schemaVersion 3/);
    assert.throws(() => parseManifestBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { digest: 'nope', size: 1, mediaType: 'x' }, layers: [] })), '', d, 'x'),
      /invalid descriptor/);
    assert.throws(() => parseManifestBytes(Buffer.from('<html>'), 'text/html', d, 'x'), /not valid JSON/);
    assert.throws(() => parseManifestBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example+json' })), '', d, 'x'),
      /unsupported manifest media type application\/vnd\.example\+json/);
  });
});

describe('X-Registry-Auth', () => {
  test('the docker CLI encoding (base64url, padded) and variants', () => {
    const cli = Buffer.from('{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}').toString('base64')
      .replace(/\+/g, '-').replace(/\//g, '_');
    assert.deepEqual(decodeRegistryAuthHeader(cli), { username: 'u', password: 'p?>', serverAddress: '127.0.0.1:5000' });
    assert.deepEqual(decodeRegistryAuthHeader(Buffer.from('{"Username":"u","Password":"p"}').toString('base64url')), { username: 'u', password: 'p' });
    assert.deepEqual(decodeRegistryAuthHeader(Buffer.from('{"identitytoken":"tok","serveraddress":"https://index.docker.io/v1/"}').toString('base64')),
      { identityToken: 'tok', serverAddress: 'https://index.docker.io/v1/' });
    assert.deepEqual(decodeRegistryAuthHeader(Buffer.from('{"auth":"dTpw"}').toString('base64')), { username: 'u', password: 'p' });
    assert.equal(decodeRegistryAuthHeader('e30='), undefined, '{} is anonymous');
    assert.equal(decodeRegistryAuthHeader(''), undefined);
    assert.equal(decodeRegistryAuthHeader(undefined), undefined);
    assert.throws(() => decodeRegistryAuthHeader('%%%'), CredentialsError);
    assert.throws(() => decodeRegistryAuthHeader(Buffer.from('[1]').toString('base64')), /not a JSON object/);
  });

  test('round trip', () => {
    const a = { username: 'me', password: 'secret', serverAddress: 'r:5000', registryToken: 'rt' };
    assert.deepEqual(decodeRegistryAuthHeader(encodeRegistryAuthHeader(a)), a);
  });
});

describe('docker config.json', () => {
  let dir: string;
  let binDir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-creds-'));
    binDir = join(dir, 'bin');
    env = { ...process.env, DOCKER_CONFIG: join(dir, 'cfg'), PATH: `${binDir}:${process.env.PATH}` };
    // A credential helper speaking docker's protocol, keeping secrets in one file per server URL.
    const helper = join(binDir, 'docker-credential-berthtest');
    mkdirSync(binDir);
    writeFileSync(helper, `#!/bin/sh
store="${join(dir, 'helper-store')}"
mkdir -p "$store"
read_all() { cat; }
case "$1" in
  get)
    url=$(read_all); key=$(printf %s "$url" | od -An -tx1 | tr -d ' \\n')
    if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(read_all); url=$(printf %s "$json" | sed 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/'); key=$(printf %s "$url" | od -An -tx1 | tr -d ' \\n')
    printf %s "$json" > "$store/$key" ;;
  erase)
    url=$(read_all); key=$(printf %s "$url" | od -An -tx1 | tr -d ' \\n'); rm -f "$store/$key" ;;
  *) exit 2 ;;
esac
`);
    chmodSync(helper, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('keys: Docker Hub is https://index.docker.io/v1/, others host[:port]', () => {
    assert.equal(credentialKey('docker.io'), 'https://index.docker.io/v1/');
    assert.equal(credentialKey('registry-1.docker.io'), 'https://index.docker.io/v1/');
    assert.equal(credentialKey('https://index.docker.io/v1/'), 'https://index.docker.io/v1/');
    assert.equal(credentialKey('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
    assert.equal(credentialKey('ghcr.io'), 'ghcr.io');
  });

  test('store, read back in docker\'s format (mode 0600, other fields kept), find by host, erase', async () => {
    const store = new CredentialStore({ env });
    assert.equal(store.path, join(dir, 'cfg', 'config.json'));
    assert.equal(await store.get('docker.io'), undefined, 'no file: no credentials');
    await store.store('docker.io', { username: 'hubuser', password: 'hubpass' });
    await store.store('127.0.0.1:5000', { username: 'u', identityToken: 'refresh-me' });
    const raw = JSON.parse(readFileSync(store.path, 'utf8')) as { auths: Record<string, { auth?: string; identitytoken?: string }> };
    assert.deepEqual(raw.auths['https://index.docker.io/v1/'], { auth: Buffer.from('hubuser:hubpass').toString('base64') });
    assert.deepEqual(raw.auths['127.0.0.1:5000'], { auth: Buffer.from('u:').toString('base64'), identitytoken: 'refresh-me' });
    assert.equal(statSync(store.path).mode & 0o777, 0o600);
    assert.deepEqual(await store.get('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await store.get('127.0.0.1:5000'), { username: 'u', identityToken: 'refresh-me' });

    // entries written by other tools under a URL key are found by host, and other fields survive
    writeFileSync(store.path, JSON.stringify({ ...raw, auths: { ...raw.auths, 'http://reg.example:8080/v2/': { auth: Buffer.from('x:y').toString('base64') } }, proxies: { default: {} } }));
    assert.deepEqual(await store.get('reg.example:8080'), { username: 'x', password: 'y' });
    assert.ok(await store.erase('reg.example:8080'));
    assert.equal(await store.get('reg.example:8080'), undefined);
    assert.deepEqual((JSON.parse(readFileSync(store.path, 'utf8')) as { proxies: unknown }).proxies, { default: {} });
    assert.equal(await store.erase('never.example'), false);
  });

  test('credHelpers and credsStore run docker-credential-<name>', async () => {
    const store = new CredentialStore({ env, path: join(dir, 'helper-config.json') });
    writeFileSync(store.path, JSON.stringify({ credHelpers: { 'helped.example': 'berthtest' } }));
    assert.equal(await store.get('helped.example'), undefined, '"credentials not found" is no credentials');
    await store.store('helped.example', { username: 'hu', password: 'hp' });
    assert.deepEqual(await store.get('helped.example'), { username: 'hu', password: 'hp' });
    const cfg = JSON.parse(readFileSync(store.path, 'utf8')) as { auths: Record<string, unknown> };
    assert.deepEqual(cfg.auths['helped.example'], {}, 'no secret in the file, only the entry');
    await store.store('helped.example', { identityToken: 'idt' });
    assert.deepEqual(await store.get('helped.example'), { identityToken: 'idt' }, 'Username "<token>" means an identity token');
    await store.erase('helped.example');
    assert.equal(await store.get('helped.example'), undefined);

    writeFileSync(store.path, JSON.stringify({ credsStore: 'berthtest' }));
    await store.store('docker.io', { username: 'a', password: 'b' });
    assert.deepEqual(await store.get('index.docker.io'), { username: 'a', password: 'b' });

    writeFileSync(store.path, JSON.stringify({ credsStore: 'not-installed-anywhere' }));
    await assert.rejects(store.get('docker.io'), (e: unknown) => e instanceof CredentialsError
      && /docker-credential-not-installed-anywhere .*not installed: executable file not found in \$PATH/.test(e.message));
  });

  test('a config.json that is not JSON is an error naming the file, and is not overwritten', async () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"auths": {');
    const store = new CredentialStore({ env, path });
    await assert.rejects(store.get('docker.io'), new RegExp(`${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid JSON`));
    await assert.rejects(store.store('docker.io', { username: 'a', password: 'b' }), CredentialsError);
    assert.equal(readFileSync(path, 'utf8'), '{"auths": {');
  });
});

