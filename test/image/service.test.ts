// ImageService in-process against a real registry: a layer whose bytes do not match the config's
// diff_id fails the pull and leaves no image and no snapshot (the verified blob may stay); the
// same layers under a correct config then pull, reusing the stored blob; progress events.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MetadataDb } from '../../src/engine/db.ts';
import { sha256Digest } from '../../src/image/digest.ts';
import { RegistryClient } from '../../src/image/registry/index.ts';
import { ImageService } from '../../src/image/service.ts';
import { MediaType, type ImageConfig, type ImageManifest, type ProgressEvent } from '../../src/image/types.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { buildBusyboxLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';
import { readFileSync } from 'node:fs';

let reg: TestRegistry;
let layout: Layout;
let dir: string;
let db: MetadataDb;
let svc: ImageService;

before(async () => {
  reg = await startRegistry();
  layout = buildBusyboxLayout(tempLayoutDir());
  dir = mkdtempSync(join(tmpdir(), 'berth-svc-'));
  db = MetadataDb.open(join(dir, 'berth.db'));
  db.migrate();
  svc = await ImageService.open({ dataRoot: dir, db, insecureRegistries: () => [] });
});
after(async () => {
  db?.sqlite.close();
  await reg?.stop();
  if (layout) rmSync(layout.dir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function pushWithConfig(repo: string, tag: string, config: ImageConfig): Promise<void> {
  const client = new RegistryClient();
  const image = layout.images[0]!;
  const ref = { domain: reg.host, path: repo };
  for (const l of image.layers) {
    const bytes = readFileSync(join(layout.dir, 'blobs', 'sha256', l.digest.slice(7)));
    await client.pushBlob(ref, l, bytes);
  }
  const cfg = Buffer.from(JSON.stringify(config));
  const cfgDigest = sha256Digest(cfg);
  await client.pushBlob(ref, { digest: cfgDigest, size: cfg.length }, cfg);
  const manifest: ImageManifest = {
    schemaVersion: 2, mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfgDigest, size: cfg.length },
    layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  await client.putManifest(ref, tag, Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest);
}

test('a diff_id mismatch fails the pull and leaves nothing half-made', async () => {
  const good = layout.images[0]!.config;
  const bad: ImageConfig = { ...good, rootfs: { type: 'layers', diff_ids: [sha256Digest('not the layer')] } };
  await pushWithConfig('bad', 'latest', bad);
  await assert.rejects(svc.pull(`${reg.host}/bad:latest`), /diff/i);
  assert.equal(svc.store.list().length, 0);
  assert.equal(svc.snapshots.list().length, 0);

  await pushWithConfig('good', 'latest', good);
  const events: ProgressEvent[] = [];
  const [img] = await svc.pull(`${reg.host}/good:latest`, { progress: (e) => events.push(e) });
  assert.equal(img!.diffIds[0], layout.images[0]!.layers[0]!.diffId);
  assert.equal(svc.snapshots.has(img!.chainIds[0]!), true);
  const statuses = events.map((e) => e.status);
  assert.equal(statuses[0], 'Pulling from good');
  assert.ok(statuses.includes('Pull complete'));
  assert.equal(statuses.at(-1), `Status: Downloaded newer image for ${reg.host}/good:latest`);
  assert.equal(svc.store.layersOf(img!.id)[0]!.blobs[0]!.source, `${reg.host}/good`);
});
