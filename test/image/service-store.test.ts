import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataDb } from '../../src/engine/db.ts';
import { ImageStore, ImageStoreError } from '../../src/image/image-store.ts';
import { parseDockerReference } from '../../src/image/reference.ts';
import { chainIds } from '../../src/image/digest.ts';

const A = 'sha256:' + 'a'.repeat(63) + '1';
const B = 'sha256:' + 'a'.repeat(62) + '22';
const L = 'sha256:' + 'c'.repeat(64);

function store(): { s: ImageStore; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-is-'));
  const db = MetadataDb.open(join(dir, 'berth.db'));
  return { s: ImageStore.open(db), done: () => { db.sqlite.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('image store: put, tag, resolve by name, ID, prefix; untag; delete', () => {
  const { s, done } = store();
  try {
    for (const id of [A, B]) s.put({ id, platform: { os: 'linux', architecture: 'amd64' }, size: 10, diffIds: [L], chainIds: chainIds([L]), created: '2024-01-01T00:00:00Z' });
    s.tag(A, parseDockerReference('busybox'));
    s.tag(A, parseDockerReference('busybox@sha256:' + 'd'.repeat(64)));
    assert.equal(s.resolve('busybox')?.id, A);
    assert.equal(s.resolve('docker.io/library/busybox:latest')?.id, A);
    assert.equal(s.resolve('busybox@sha256:' + 'd'.repeat(64))?.id, A);
    assert.equal(s.resolve(A)?.id, A);
    assert.equal(s.resolve(A.slice(7))?.id, A);
    assert.equal(s.resolve(A.slice(7, 70))?.id, A);
    assert.throws(() => s.resolve('aaaa'), ImageStoreError);
    assert.equal(s.resolve('nothere'), undefined);
    assert.deepEqual(s.references(A).map((r) => r.familiar), ['busybox:latest', 'busybox@sha256:' + 'd'.repeat(64)]);
    assert.deepEqual(s.tag(B, parseDockerReference('busybox')), { previous: A });
    assert.equal(s.untag(parseDockerReference('busybox'))?.imageId, B);
    s.recordLayerBlob({ diffId: L, digest: 'sha256:' + 'e'.repeat(64), mediaType: 'x', size: 3, source: 'localhost:5000/x' });
    assert.equal(s.layersOf(A)[0]!.blobs.length, 1);
    assert.ok(s.usedBlobs().has('sha256:' + 'e'.repeat(64)));
    assert.ok(s.delete(A));
    assert.equal(s.get(A), undefined);
    assert.equal(s.references(A).length, 0);
  } finally { done(); }
});
