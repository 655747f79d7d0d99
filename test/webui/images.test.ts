// The images list's rows and the pull dialog's reference splitting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_REGISTRY_AUTH, filterRows, imageRows, pullQuery, pushableTags, splitRepoTag } from '../../src/webui/lib/images.ts';

test('splitRepoTag: the tag follows the last colon after the last slash', () => {
  assert.deepEqual(splitRepoTag('busybox:dev'), { repo: 'busybox', tag: 'dev' });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/a/b:1.0'), { repo: '127.0.0.1:5000/a/b', tag: '1.0' });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/a/b'), { repo: '127.0.0.1:5000/a/b', tag: '' });
  assert.deepEqual(splitRepoTag('a/b@sha256:abc'), { repo: 'a/b', tag: '' });
});

test('imageRows: one row per tag, untagged images as <none>, newest first', () => {
  const rows = imageRows([
    { Id: 'sha256:aaa', RepoTags: ['busybox:dev', 'reg:5000/busybox:1'], Created: 10, Size: 5 },
    { Id: 'sha256:bbb', RepoTags: [], RepoDigests: ['reg:5000/x@sha256:123'], Created: 30, Size: 6 },
    { Id: 'sha256:ccc', RepoTags: ['<none>:<none>'], RepoDigests: null, Created: 20, Size: 7 },
  ]);
  assert.deepEqual(rows.map((r) => [r.repository, r.tag, r.ref, r.dangling]), [
    ['reg:5000/x', '<none>', 'sha256:bbb', true],
    ['<none>', '<none>', 'sha256:ccc', true],
    ['busybox', 'dev', 'busybox:dev', false],
    ['reg:5000/busybox', '1', 'reg:5000/busybox:1', false],
  ]);
  assert.equal(new Set(rows.map((r) => r.key)).size, rows.length);
  assert.deepEqual(filterRows(rows, 'BUSY').map((r) => r.ref), ['busybox:dev', 'reg:5000/busybox:1']);
  assert.deepEqual(filterRows(rows, 'sha256:cc').map((r) => r.ref), ['sha256:ccc']);
  assert.deepEqual(filterRows(rows, 'dev').map((r) => r.ref), ['busybox:dev']);
  assert.equal(filterRows(rows, '  ').length, 4);
});

test('pullQuery splits as the docker CLI sends POST /images/create', () => {
  assert.deepEqual(pullQuery('busybox'), { fromImage: 'busybox', tag: 'latest' });
  assert.deepEqual(pullQuery(' 127.0.0.1:5000/img:1.2 '), { fromImage: '127.0.0.1:5000/img', tag: '1.2' });
  assert.deepEqual(pullQuery('localhost:5000/img'), { fromImage: 'localhost:5000/img', tag: 'latest' });
  assert.deepEqual(pullQuery('img@sha256:abcd'), { fromImage: 'img', tag: 'sha256:abcd' });
  assert.throws(() => pullQuery(''), /Enter an image reference/);
  assert.throws(() => pullQuery('a b'), /contains spaces/);
  assert.throws(() => pullQuery('Busybox'), /must be lowercase/);
});

test('push helpers', () => {
  assert.equal(atob(EMPTY_REGISTRY_AUTH), '{}');
  assert.deepEqual(pushableTags(['a:1', '<none>:<none>', 'b@sha256:1']), ['a:1']);
  assert.deepEqual(pushableTags(null), []);
});

test("PullProgress reads Berth's own pull and push streams (captured from POST /images/create and /push)", async () => {
  const { JsonStreamDecoder, PullProgress } = await import('../../src/webui/lib/streams.ts');
  const pull = [
    '{"status":"Pulling from other","id":"1"}',
    '{"status":"Pulling fs layer","id":"ca4a08913674"}',
    '{"status":"Download complete","id":"ca4a08913674"}',
    '{"status":"Extracting","progressDetail":{"current":131072,"total":3010560},"progress":"[==\\u003e   ]  131.1kB/3.011MB","id":"ca4a08913674"}',
  ];
  const p = new PullProgress();
  const dec = new JsonStreamDecoder();
  for (const m of dec.push(`${pull.join('\n')}\n`)) p.apply(m as never);
  assert.deepEqual(p.lines, ['1: Pulling from other']);
  const layer = p.layers.get('ca4a08913674');
  assert.deepEqual([layer?.status, layer?.current, layer?.total, layer?.done], ['Extracting', 131072, 3010560, false]);
  for (const m of dec.push('{"status":"Pull complete","id":"ca4a08913674"}\n{"status":"Digest: sha256:6c9a39b62c736e58be3e30f57830bdcbf4e606be55606386937c05cf83a5ae02"}\n{"status":"Status: Downloaded newer image for 127.0.0.1:45731/other:1"}\n')) p.apply(m as never);
  assert.equal(p.fraction, 1);
  assert.equal(p.digest, 'sha256:6c9a39b62c736e58be3e30f57830bdcbf4e606be55606386937c05cf83a5ae02');
  assert.equal(p.lines.at(-1), 'Status: Downloaded newer image for 127.0.0.1:45731/other:1');

  const push = new PullProgress();
  for (const m of new JsonStreamDecoder().push([
    '{"status":"The push refers to repository [127.0.0.1:45731/cap]"}',
    '{"status":"Preparing","id":"6aa1a142a8c4"}',
    '{"status":"Preparing","id":"17108da5723b"}',
    '{"status":"Mounted from layered","id":"17108da5723b"}',
    '{"status":"Mounted from layered","id":"6aa1a142a8c4"}',
    '{"status":"1: digest: sha256:9cb73e0aa3824392ecf7ff5180221eb824d8e7c4ddaa17353addf2f33db5f965 size: 903"}',
    '{"aux":{"Tag":"1","Digest":"sha256:9cb73e0aa3824392ecf7ff5180221eb824d8e7c4ddaa17353addf2f33db5f965","Size":903}}',
  ].join('\n'))) push.apply(m as never);
  assert.deepEqual([...push.layers.values()].map((l) => [l.id, l.done]), [['6aa1a142a8c4', true], ['17108da5723b', true]]);
  assert.equal(push.fraction, 1);
  assert.deepEqual(push.lines, ['The push refers to repository [127.0.0.1:45731/cap]', '1: digest: sha256:9cb73e0aa3824392ecf7ff5180221eb824d8e7c4ddaa17353addf2f33db5f965 size: 903']);
  assert.equal(push.digest, 'sha256:9cb73e0aa3824392ecf7ff5180221eb824d8e7c4ddaa17353addf2f33db5f965');
  assert.equal(push.error, undefined);

  const failed = new PullProgress();
  failed.apply({ errorDetail: { message: 'manifest for 127.0.0.1:45731/nope:1 not found: manifest unknown: manifest unknown' }, error: 'manifest for 127.0.0.1:45731/nope:1 not found: manifest unknown: manifest unknown' });
  assert.match(failed.error ?? '', /manifest unknown/);
});
