// The content store: verify-on-write (digest and size, sha256 and sha512), atomic publication,
// typed errors, resumable ingests across a kill -9, one shared ingest per digest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ContentError, ContentStore, InvalidDigestError, type ContentErrorCode } from '../../src/image/content-store.ts';
import { sha256, withTempDir } from '../helpers/tar.ts';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const isCode = (code: ContentErrorCode) => (e: unknown) => e instanceof ContentError && e.code === code;

describe('writeBuffer and reads', () => {
  test('content-addressed, verified, idempotent', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const data = Buffer.from('{"hello":"world"}');
      const d = sha256(data);
      const info = await store.writeBuffer(data);
      assert.equal(info.digest, d);
      assert.equal(info.size, data.length);
      assert.equal(store.path(d), join(root, 'blobs', 'sha256', d.slice(7)));
      assert.deepEqual(readFileSync(store.path(d)), data);
      assert.equal(await store.has(d), true);
      assert.equal(await store.size(d), data.length);
      assert.deepEqual(await store.readJSON(d), { hello: 'world' });
      assert.deepEqual(await store.writeBuffer(data, { digest: d, size: data.length }).then((i) => i.digest), d);
      const chunks: Buffer[] = [];
      for await (const c of store.createReadStream(d, { start: 2, end: 8 })) chunks.push(c as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), data.subarray(2, 9).toString());
      assert.deepEqual((await store.list()).map((b) => b.digest), [d]);
      assert.equal(await store.delete(d), true);
      assert.equal(await store.delete(d), false);
      assert.equal(await store.has(d), false);
    });
  });

  test('wrong digest or size is refused and leaves nothing behind', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const data = Buffer.from('payload');
      const wrong = sha256('other');
      await assert.rejects(store.writeBuffer(data, wrong), (e: unknown) => isCode('digest-mismatch')(e) && (e as Error).message.includes(`hashes to ${sha256(data)}`));
      await assert.rejects(store.writeBuffer(data, { digest: sha256(data), size: 3 }), isCode('size-mismatch'));
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(readdirSync(join(root, 'ingest')), []);
    });
  });

  test('sha512 digests are verified too', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const data = Buffer.from('sha512 content');
      const d = `sha512:${createHash('sha512').update(data).digest('hex')}`;
      await store.writeBuffer(data, d);
      assert.ok(await store.has(d));
      assert.ok(existsSync(join(root, 'blobs', 'sha512', d.slice(7))));
      await assert.rejects(store.writeBuffer(Buffer.from('x'), d), isCode('digest-mismatch'));
      assert.ok((await store.list()).some((b) => b.digest === d));
    });
  });

  test('invalid digests and missing blobs give typed errors', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      for (const bad of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', `sha256:${'A'.repeat(64)}`, 'nodigest', `sha256:../../${'a'.repeat(58)}`]) {
        assert.throws(() => store.path(bad), InvalidDigestError, bad);
        await assert.rejects(store.has(bad), InvalidDigestError);
        await assert.rejects(store.ingest({ digest: bad, size: 1 }), InvalidDigestError);
      }
      const missing = sha256('missing');
      await assert.rejects(store.readBuffer(missing), (e: unknown) => isCode('not-found')(e) && /not found in the content store/.test((e as Error).message));
      assert.throws(() => store.createReadStream(missing), isCode('not-found'));
      await assert.rejects(store.info(missing), isCode('not-found'));
      const notJson = await store.writeBuffer(Buffer.from('{oops'));
      await assert.rejects(store.readJSON(notJson.digest), isCode('invalid-json'));
    });
  });
});

describe('ingests', () => {
  const data = randomBytes(3 * 1024 * 1024 + 123);
  const expected = { digest: sha256(data), size: data.length };

  test('chunked writes, commit publishes atomically', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const w = await store.ingest(expected);
      assert.equal(w.offset, 0);
      assert.equal(w.complete, false);
      for (let i = 0; i < data.length; i += 65536) await w.write(data.subarray(i, i + 65536));
      assert.equal(await store.has(expected.digest), false, 'not visible before commit');
      const info = await w.commit();
      assert.equal(info.size, data.length);
      assert.deepEqual(readFileSync(store.path(expected.digest)), data);
      assert.deepEqual(readdirSync(join(root, 'ingest')), [], 'the ingest dir is gone');
      const again = await store.ingest(expected);
      assert.equal(again.complete, true);
      assert.equal(again.offset, data.length);
    });
  });

  test('too many bytes, wrong bytes and short data', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const w1 = await store.ingest(expected);
      await assert.rejects(w1.write(Buffer.concat([data, Buffer.from('x')])), isCode('size-mismatch'));
      const corrupt = Buffer.from(data);
      corrupt[1000] ^= 1;
      const w2 = await store.ingest(expected);
      await w2.write(corrupt);
      await assert.rejects(w2.commit(), (e: unknown) => isCode('digest-mismatch')(e) && /hash to sha256:/.test((e as Error).message));
      assert.equal(await store.has(expected.digest), false);
      const w3 = await store.ingest(expected);
      assert.equal(w3.offset, 0, 'corrupt partial data is not resumed');
      await w3.write(data.subarray(0, 1000));
      await assert.rejects(w3.commit(), (e: unknown) => isCode('incomplete')(e) && /only 1000 of/.test((e as Error).message));
      const w4 = await store.ingest(expected);
      assert.equal(w4.offset, 1000, 'short data is kept for resuming');
      await w4.restart();
      assert.equal(w4.written, 0);
      await w4.write(data);
      await w4.commit();
      assert.ok(await store.has(expected.digest));
      await assert.rejects(w4.write(Buffer.from('late')), isCode('closed'));
    });
  });

  test('a Writable: pipeline into stream() commits; a failing source keeps the partial data', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const w = await store.ingest(expected);
      await pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), w.stream());
      assert.ok(await store.has(expected.digest));

      const other = randomBytes(200_000);
      const exp2 = { digest: sha256(other), size: other.length };
      const w2 = await store.ingest(exp2);
      const failing = Readable.from((async function* () {
        yield other.subarray(0, 50_000);
        throw new Error('connection reset');
      })());
      await assert.rejects(pipeline(failing, w2.stream()), /connection reset/);
      const w3 = await store.ingest(exp2);
      assert.equal(w3.offset, 50_000);
      await w3.write(other.subarray(50_000));
      await w3.commit();
      assert.deepEqual(await store.readBuffer(exp2.digest), other);
    });
  });

  test('concurrent ingests of one digest share one writer: the second waits, then finds the blob', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const first = await store.ingest(expected);
      let secondResolved = false;
      const second = store.ingest(expected).then((w) => { secondResolved = true; return w; });
      await first.write(data.subarray(0, 1 << 20));
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(secondResolved, false, 'the second caller waits for the first');
      await first.write(data.subarray(1 << 20));
      await first.commit();
      const w2 = await second;
      assert.equal(w2.complete, true);
      // When the first gives up instead, the next one resumes its data.
      const other = randomBytes(100_000);
      const exp2 = { digest: sha256(other), size: other.length };
      const a = await store.ingest(exp2);
      const b = store.ingest(exp2);
      const c = store.ingest(exp2);
      await a.write(other.subarray(0, 30_000));
      await a.release();
      const wb = await b;
      assert.equal(wb.offset, 30_000);
      await wb.write(other.subarray(30_000));
      await wb.commit();
      assert.equal((await c).complete, true);
    });
  });

  test('kill -9 during an ingest: the next writer resumes from the bytes on disk', async () => {
    await withTempDir(async (root) => {
      const storeDir = join(root, 'store');
      const script = join(root, 'child.mts');
      const half = Math.floor(data.length / 2) + 7;
      writeFileSync(join(root, 'data.bin'), data);
      writeFileSync(script, `
        import { readFileSync } from 'node:fs';
        import { ContentStore } from ${JSON.stringify(join(REPO, 'src/image/content-store.ts'))};
        const data = readFileSync(${JSON.stringify(join(root, 'data.bin'))});
        const store = new ContentStore(${JSON.stringify(storeDir)});
        const w = await store.ingest(${JSON.stringify(expected)});
        for (let i = 0; i < ${half}; i += 100000) await w.write(data.subarray(i, Math.min(i + 100000, ${half})));
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);
      `);
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolveReady, reject) => {
          let out = '';
          child.stdout!.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('ready')) resolveReady(); });
          child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
        });
        const store = new ContentStore(storeDir);
        // While the child lives, its lock holds.
        await assert.rejects(store.ingest(expected), (e: unknown) => isCode('locked')(e) && new RegExp(`pid ${child.pid}`).test((e as Error).message));
        const status = await store.listIngests();
        assert.equal(status.length, 1);
        assert.equal(status[0]!.active, true);
        assert.equal(status[0]!.offset, half);
        assert.deepEqual(await store.removeStaleIngests(), [], 'an active ingest is not stale');
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r).once('error', r));
      }
      const store = new ContentStore(storeDir);
      const w = await store.ingest(expected);
      assert.equal(w.offset, half, 'resumes where the killed writer stopped');
      assert.ok(statSync(join(storeDir, 'ingest', expected.digest.slice(7), 'data')).size === half);
      await w.write(data.subarray(half));
      await w.commit();
      assert.deepEqual(await store.readBuffer(expected.digest), data);
    });
  });

  test('stale ingests are removed; live ones are not', async () => {
    await withTempDir(async (root) => {
      const store = new ContentStore(root);
      const w = await store.ingest(expected);
      await w.write(data.subarray(0, 10));
      await w.release();
      const live = randomBytes(10);
      const lw = await store.ingest({ digest: sha256(live), size: 10 });
      assert.deepEqual(await store.removeStaleIngests(60_000), [], 'younger than the cut-off');
      assert.deepEqual(await store.removeStaleIngests(), [expected.digest.slice(7)]);
      assert.deepEqual((await store.listIngests()).map((s) => s.digest), [sha256(live)]);
      await lw.abort();
      assert.deepEqual(await store.listIngests(), []);
    });
  });
});
