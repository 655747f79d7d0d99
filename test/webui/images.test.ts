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
