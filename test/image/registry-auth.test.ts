// Registry authentication against real registries: htpasswd (HTTP basic) and token auth
// (distribution verifying JWTs from a token server in this process, as Docker Hub works):
// anonymous and credentialed flows, token caching and re-authentication, identity (refresh)
// tokens, registry tokens, login checks, X-Registry-Auth and config.json credentials.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDockerReference } from '../../src/image/reference.ts';
import {
  CredentialStore, decodeRegistryAuthHeader, encodeRegistryAuthHeader, fixedCredentials, RegistryClient, RegistryError,
  type Credentials,
} from '../../src/image/registry/index.ts';
import { buildBusyboxLayout, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';
import { startProxy, startRegistry, TEST_PASSWORD, TEST_USER, type TestRegistry, rejectsWith } from '../helpers/registry.ts';

const CREDS: Credentials = { username: TEST_USER, password: TEST_PASSWORD };
const CREDS_STRING = `${TEST_USER}:${TEST_PASSWORD}`;
let busybox: Layout;
let layoutDir: string;

function withCreds(domain: string, creds: Credentials | undefined): RegistryClient {
  return new RegistryClient({ credentials: fixedCredentials(domain, creds), retryDelayMs: 5 });
}

before(() => {
  layoutDir = tempLayoutDir();
  busybox = buildBusyboxLayout(layoutDir);
});
after(() => rmSync(layoutDir, { recursive: true, force: true }));

describe('htpasswd (basic auth)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    await pushLayout(busybox, reg.host, 'private/busybox:latest', { creds: CREDS_STRING });
  });
  after(async () => reg?.stop());

  test('with credentials: pull and push work', async () => {
    const c = withCreds(reg.host, CREDS);
    const img = await c.resolve(parseDockerReference(`${reg.host}/private/busybox`));
    assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    const r = await c.pushBlob(parseDockerReference(`${reg.host}/private/other`), { digest: img.config.descriptor.digest, size: img.config.bytes.length },
      img.config.bytes, { mountFrom: ['private/busybox'] });
    assert.deepEqual(r, { status: 'mounted', from: 'private/busybox' });
  });

  test('without or with wrong credentials: "unauthorized: authentication required"', async () => {
    const e = await rejectsWith(withCreds(reg.host, undefined).resolve(parseDockerReference(`${reg.host}/private/busybox`)),
      'UNAUTHORIZED', 'unauthorized: authentication required');
    assert.equal(e.status, 401);
    await rejectsWith(withCreds(reg.host, { username: TEST_USER, password: 'wrong' }).resolve(parseDockerReference(`${reg.host}/private/busybox`)),
      'UNAUTHORIZED', 'unauthorized: authentication required');
  });

  test('a blob redirect to another host is followed without the registry\'s credentials', async () => {
    // Like a registry on S3: the blob GET answers 307 to storage elsewhere. Here "elsewhere" is a
    // second, open registry holding the same blob, seen through a recording proxy.
    const storage = await startRegistry();
    const front = await startProxy(reg);
    const storageProxy = await startProxy(storage);
    try {
      await pushLayout(busybox, storage.host, 'private/busybox:latest');
      front.handler = (req) => (req.method === 'GET' && req.url.includes('/blobs/sha256:')
        ? { kind: 'respond', status: 307, headers: { location: `${storageProxy.url}${req.url}` } } : undefined);
      const layer = busybox.images[0]!.layers[0]!;
      const c = withCreds(front.host, CREDS);
      const got = await c.fetchBlob(parseDockerReference(`${front.host}/private/busybox`), layer);
      assert.equal(got.length, layer.size);
      const atFront = front.requests.filter((r) => r.url.includes('/blobs/'));
      assert.match(String(atFront[0]?.headers.authorization), /^Basic /, 'the registry got the credentials');
      const atStorage = storageProxy.requests.filter((r) => r.url.includes('/blobs/'));
      assert.equal(atStorage.length, 1, 'the redirect was followed');
      assert.equal(atStorage[0]!.headers.authorization, undefined, 'no credentials to another host');
    } finally {
      await front.close();
      await storageProxy.close();
      await storage.stop();
    }
  });

  test('login: ok with the right password, docker\'s message with a wrong one', async () => {
    assert.deepEqual(await new RegistryClient().login(reg.host, CREDS), {});
    await rejectsWith(new RegistryClient().login(reg.host, { username: TEST_USER, password: 'nope' }), 'UNAUTHORIZED',
      `login attempt to http://${reg.host}/v2/ failed with status: 401 Unauthorized`);
  });

  test('credentials from a docker config.json (auth = base64 user:password) and from X-Registry-Auth', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-dockercfg-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({
        auths: { [`http://${reg.host}`]: { auth: Buffer.from(CREDS_STRING).toString('base64') } },
      }));
      const store = new CredentialStore({ env: { DOCKER_CONFIG: dir } });
      const c = new RegistryClient({ credentials: store.resolver() });
      assert.equal((await c.resolve(parseDockerReference(`${reg.host}/private/busybox`))).digest, busybox.images[0]!.manifestDigest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // what the docker CLI sends to the daemon with a pull
    const header = Buffer.from(JSON.stringify({ username: TEST_USER, password: TEST_PASSWORD, serveraddress: reg.host })).toString('base64url');
    const decoded = decodeRegistryAuthHeader(header)!;
    const c = new RegistryClient({ credentials: fixedCredentials(decoded.serverAddress!, decoded) });
    assert.equal((await c.resolve(parseDockerReference(`${reg.host}/private/busybox`))).digest, busybox.images[0]!.manifestDigest);
  });
});

describe('token auth (bearer)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'token' });
    await pushLayout(busybox, reg.host, 'private/busybox:latest', { creds: CREDS_STRING });
    await pushLayout(busybox, reg.host, 'public/busybox:latest', { creds: CREDS_STRING });
  });
  after(async () => reg?.stop());

  const ts = () => reg.tokenServer!;

  test('anonymous: a public repository pulls with an anonymous token for exactly its pull scope', async () => {
    ts().requests.length = 0;
    const img = await withCreds(reg.host, undefined).resolve(parseDockerReference(`${reg.host}/public/busybox`));
    assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    assert.deepEqual(ts().requests, [{ method: 'GET', user: undefined, service: 'berth-test-registry', scopes: ['repository:public/busybox:pull'], status: 200 }]);
  });

  test('anonymous on a private repository: docker\'s "pull access denied"', async () => {
    await rejectsWith(withCreds(reg.host, undefined).resolve(parseDockerReference(`${reg.host}/private/busybox`)), 'DENIED',
      `pull access denied for ${reg.host}/private/busybox, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`);
  });

  test('with credentials: one token per scope, shared by sequential and concurrent requests', async () => {
    ts().requests.length = 0;
    const c = withCreds(reg.host, CREDS);
    const ref = parseDockerReference(`${reg.host}/private/busybox`);
    await c.resolve(ref);
    await c.resolve(ref);
    await Promise.all(Array.from({ length: 6 }, () => c.resolve(ref)));
    const layer = busybox.images[0]!.layers[0]!;
    await Promise.all(Array.from({ length: 4 }, () => c.fetchBlob(ref, layer)));
    assert.equal(ts().requests.length, 1, JSON.stringify(ts().requests));
    assert.deepEqual(ts().requests[0], { method: 'GET', user: TEST_USER, service: 'berth-test-registry', scopes: ['repository:private/busybox:pull'], status: 200 });
  });

  test('a mount asks for push on the target and pull on the source in one token', async () => {
    ts().requests.length = 0;
    const c = withCreds(reg.host, CREDS);
    const layer = busybox.images[0]!.layers[0]!;
    const r = await c.pushBlob(parseDockerReference(`${reg.host}/private/copy`), layer, Buffer.alloc(0), { mountFrom: ['private/busybox'] });
    assert.deepEqual(r, { status: 'mounted', from: 'private/busybox' });
    assert.deepEqual(ts().requests.map((x) => x.scopes), [
      ['repository:private/copy:pull,push'],
      ['repository:private/copy:pull,push', 'repository:private/busybox:pull'],
    ]);
  });

  test('anonymous push: denied', async () => {
    const data = Buffer.from('x');
    await rejectsWith(withCreds(reg.host, undefined).pushBlob(parseDockerReference(`${reg.host}/public/busybox`),
      { digest: 'sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881', size: 1 }, data), 'DENIED',
    'denied: requested access to the resource is denied');
  });

  test('a wrong password: the token server\'s "unauthorized: incorrect username or password"', async () => {
    await rejectsWith(withCreds(reg.host, { username: TEST_USER, password: 'wrong' }).resolve(parseDockerReference(`${reg.host}/private/busybox`)),
      'UNAUTHORIZED', 'unauthorized: incorrect username or password');
  });

  test('login returns an identity token; a client holding only that token pulls (OAuth2 refresh grant)', async () => {
    ts().requests.length = 0;
    const { identityToken } = await new RegistryClient().login(reg.host, CREDS);
    assert.ok(identityToken && ts().refreshTokens.get(identityToken) === TEST_USER, 'a refresh token for the user');
    await rejectsWith(new RegistryClient().login(reg.host, { username: TEST_USER, password: 'nope' }), 'UNAUTHORIZED',
      `Get "http://${reg.host}/v2/": unauthorized: incorrect username or password`);

    ts().requests.length = 0;
    const c = withCreds(reg.host, { username: TEST_USER, identityToken });
    assert.equal((await c.resolve(parseDockerReference(`${reg.host}/private/busybox`))).digest, busybox.images[0]!.manifestDigest);
    assert.deepEqual(ts().requests.map((r) => [r.method, r.grantType, r.user, r.scopes]),
      [['POST', 'refresh_token', TEST_USER, ['repository:private/busybox:pull']]]);
  });

  test('a registry token is sent as it is', async () => {
    // get one the way a client of another tool would, then hand it over
    const res = await fetch(`${ts().url}?service=${ts().service}&scope=repository:private/busybox:pull`,
      { headers: { authorization: `Basic ${Buffer.from(CREDS_STRING).toString('base64')}` } });
    const { token } = await res.json() as { token: string };
    ts().requests.length = 0;
    const img = await withCreds(reg.host, { registryToken: token }).resolve(parseDockerReference(`${reg.host}/private/busybox`));
    assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    assert.equal(ts().requests.length, 0, 'no token fetched');
  });

  test('X-Registry-Auth credentials reach the token server', async () => {
    ts().requests.length = 0;
    const decoded = decodeRegistryAuthHeader(encodeRegistryAuthHeader({ ...CREDS, serverAddress: reg.host }))!;
    const c = new RegistryClient({ credentials: fixedCredentials(decoded.serverAddress!, decoded) });
    await c.resolve(parseDockerReference(`${reg.host}/private/busybox`));
    assert.equal(ts().requests[0]?.user, TEST_USER);
  });
});

describe('token server variants', () => {
  test('a server that answers access_token only (OAuth2 style)', async () => {
    const reg = await startRegistry({ auth: 'token', token: { field: 'access_token' } });
    try {
      await pushLayout(busybox, reg.host, 'private/busybox:latest', { creds: CREDS_STRING });
      const img = await withCreds(reg.host, CREDS).resolve(parseDockerReference(`${reg.host}/private/busybox`));
      assert.equal(img.digest, busybox.images[0]!.manifestDigest);
    } finally {
      await reg.stop();
    }
  });

  test('a token the registry rejects as expired is fetched again once, and the request succeeds', async () => {
    const reg = await startRegistry({ auth: 'token', token: { field: 'token' } });
    try {
      await pushLayout(busybox, reg.host, 'private/busybox:latest', { creds: CREDS_STRING });
      const c = withCreds(reg.host, CREDS);
      const ref = parseDockerReference(`${reg.host}/private/busybox`);
      reg.tokenServer!.requests.length = 0;
      // the next token is already expired, though it says it lives 300 s
      reg.tokenServer!.expireNextTokens(1);
      assert.equal((await c.resolve(ref)).digest, busybox.images[0]!.manifestDigest);
      assert.equal(reg.tokenServer!.requests.length, 2, 'the rejected token was replaced once');

      // a token that keeps being rejected is not retried forever
      reg.tokenServer!.requests.length = 0;
      reg.tokenServer!.expireNextTokens(100);
      const fresh = withCreds(reg.host, CREDS);
      await rejectsWith(fresh.resolve(ref), 'UNAUTHORIZED', /^unauthorized: /);
      assert.equal(reg.tokenServer!.requests.length, 2);
    } finally {
      await reg.stop();
    }
  });
});
