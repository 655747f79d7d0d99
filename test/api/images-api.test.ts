// The image endpoints over raw HTTP: docker's JSON shapes and field order, the progress stream's
// messages, and errors (status and message) for bad input.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';
import { startRegistry, TEST_PASSWORD, TEST_USER, type TestRegistry } from '../helpers/registry.ts';
import { buildMultiLayerLayout, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';

let d: TestDaemon;
let reg: TestRegistry;
let auth: TestRegistry;
let multi: Layout;

before(async () => {
  reg = await startRegistry();
  auth = await startRegistry({ auth: 'htpasswd' });
  multi = buildMultiLayerLayout(tempLayoutDir());
  await pushLayout(multi, reg.host, 'multi:latest');
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
  await reg?.stop();
  await auth?.stop();
  if (multi) rmSync(multi.dir, { recursive: true, force: true });
});

interface Msg { status?: string; id?: string; progressDetail?: { current?: number; total?: number }; error?: string }
const lines = (body: string): Msg[] => body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Msg);

test('POST /images/create streams docker\'s progress messages', async () => {
  const r = await d.request('POST', `/v1.47/images/create?fromImage=${encodeURIComponent(`${reg.host}/multi`)}&tag=latest`, { timeoutMs: 60_000 });
  assert.equal(r.status, 200, r.text);
  const msgs = lines(r.text);
  assert.deepEqual(msgs[0], { status: 'Pulling from multi', id: 'latest' });
  const ids = multi.images[0]!.layers.map((l) => l.digest.slice(7, 19));
  for (const id of ids) {
    const mine = msgs.filter((m) => m.id === id).map((m) => m.status);
    assert.equal(mine[0], 'Pulling fs layer', `${id}: ${mine.join(', ')}`);
    assert.ok(mine.includes('Download complete'), `${id}: ${mine.join(', ')}`);
    assert.equal(mine[mine.length - 1], 'Pull complete', `${id}: ${mine.join(', ')}`);
    const dl = msgs.find((m) => m.id === id && m.status === 'Downloading');
    if (dl) assert.equal(typeof dl.progressDetail?.total, 'number');
  }
  assert.deepEqual(msgs.at(-2), { status: `Digest: ${multi.descriptor.digest}` });
  assert.deepEqual(msgs.at(-1), { status: `Status: Downloaded newer image for ${reg.host}/multi:latest` });
});

test('GET /images/json, /images/{name}/json, /history: shapes and field order', async () => {
  const list = JSON.parse((await d.request('GET', '/v1.47/images/json')).text) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.deepEqual(Object.keys(list[0]!), ['Containers', 'Created', 'Id', 'Labels', 'ParentId', 'RepoDigests', 'RepoTags', 'SharedSize', 'Size']);
  assert.equal(list[0]!.SharedSize, -1);
  const old = JSON.parse((await d.request('GET', '/v1.41/images/json')).text) as Array<Record<string, unknown>>;
  assert.equal(old[0]!.VirtualSize, old[0]!.Size);
  const dangling = JSON.parse((await d.request('GET', `/images/json?filters=${encodeURIComponent('{"dangling":["true"]}')}`)).text) as unknown[];
  assert.equal(dangling.length, 0);

  const inspect = JSON.parse((await d.request('GET', `/v1.47/images/${reg.host}/multi/json`)).text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(inspect), ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'DockerVersion', 'Author', 'Config',
    'Architecture', 'Os', 'Size', 'GraphDriver', 'RootFS', 'Metadata']);
  const inspect41 = JSON.parse((await d.request('GET', `/v1.41/images/${reg.host}/multi/json`)).text) as Record<string, unknown>;
  assert.ok('ContainerConfig' in inspect41 && 'VirtualSize' in inspect41);

  const history = JSON.parse((await d.request('GET', `/images/${reg.host}/multi/history`)).text) as Array<Record<string, unknown>>;
  assert.deepEqual(Object.keys(history[0]!), ['Comment', 'Created', 'CreatedBy', 'Id', 'Size', 'Tags']);
  assert.equal(history[0]!.Id, multi.images[0]!.configDigest);
  assert.deepEqual(history[0]!.Tags, [`${reg.host}/multi:latest`]);
  assert.equal(history.at(-1)!.Id, '<missing>');
});

test('errors: status codes and docker\'s messages', async () => {
  let r = await d.request('GET', '/images/nosuch/json');
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.text).message, 'No such image: nosuch:latest');
  r = await d.request('POST', '/images/create?fromImage=Bad%20Name');
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).message, /invalid reference format/);
  r = await d.request('POST', `/images/create?fromImage=${reg.host}/nothere&tag=latest`);
  assert.equal(r.status, 404, r.text);
  assert.match(JSON.parse(r.text).message, /nothere/);
  r = await d.request('POST', `/images/create?fromImage=${reg.host}/multi&tag=latest`, { headers: { 'X-Registry-Auth': '!!!' } });
  assert.equal(r.status, 400);
  r = await d.request('POST', `/images/${reg.host}/multi/tag?repo=${encodeURIComponent('Bad Repo')}`);
  assert.equal(r.status, 400);
  r = await d.request('POST', `/images/${reg.host}/multi/tag?repo=fine&tag=${encodeURIComponent('bad tag')}`);
  assert.equal(r.status, 400);
  r = await d.request('DELETE', '/images/nosuch');
  assert.equal(r.status, 404);
  r = await d.request('POST', '/auth', { body: JSON.stringify({ username: TEST_USER, password: 'wrong', serveraddress: auth.host }), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 401, r.text);
  r = await d.request('POST', '/auth', { body: JSON.stringify({ username: TEST_USER, password: TEST_PASSWORD, serveraddress: `http://${auth.host}/` }), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(JSON.parse(r.text), { IdentityToken: '', Status: 'Login Succeeded' });
});

test('POST /images/{name}/push: progress lines and the aux message with the digest', async () => {
  let r = await d.request('POST', `/images/${reg.host}/multi/tag?repo=${encodeURIComponent(`${reg.host}/pushed/multi`)}&tag=v1`);
  assert.equal(r.status, 201);
  r = await d.request('POST', `/images/${reg.host}/pushed/multi/push?tag=v1`, { headers: { 'X-Registry-Auth': 'e30=' }, timeoutMs: 60_000 });
  assert.equal(r.status, 200, r.text);
  const msgs = r.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(msgs[0], { status: `The push refers to repository [${reg.host}/pushed/multi]` });
  const aux = msgs.find((m) => 'aux' in m)?.aux as { Tag: string; Digest: string; Size: number };
  assert.equal(aux.Tag, 'v1');
  assert.equal(aux.Digest, multi.descriptor.digest);
  assert.ok(msgs.some((m) => m.status === `v1: digest: ${multi.descriptor.digest} size: ${aux.Size}`));
  r = await d.request('DELETE', `/images/${reg.host}/pushed/multi:v1`);
  assert.equal(r.status, 200, r.text);
});

test('POST /images/{name}/tag then DELETE: Untagged and Deleted lists', async () => {
  let r = await d.request('POST', `/images/${reg.host}/multi/tag?repo=local/copy&tag=t1`);
  assert.equal(r.status, 201);
  r = await d.request('DELETE', '/images/local/copy:t1');
  assert.deepEqual(JSON.parse(r.text), [{ Untagged: 'local/copy:t1' }]);
  r = await d.request('DELETE', `/images/${reg.host}/multi`);
  const out = JSON.parse(r.text) as Array<Record<string, string>>;
  assert.deepEqual(out.slice(0, 3), [
    { Untagged: `${reg.host}/multi:latest` }, { Untagged: `${reg.host}/multi@${multi.descriptor.digest}` }, { Deleted: multi.images[0]!.configDigest },
  ]);
  assert.equal(out.length, 3 + multi.images[0]!.layers.length); // and each layer
  const list = JSON.parse((await d.request('GET', '/images/json')).text) as unknown[];
  assert.equal(list.length, 0);
});
