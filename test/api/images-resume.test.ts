// kill -9 of `berth daemon` in the middle of a pull: the store stays consistent (no image, no
// half-made snapshot), and the next pull continues the download from the bytes already on disk
// (a Range request) instead of starting over.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { startProxy, startRegistry, type RegistryProxy, type TestRegistry } from '../helpers/registry.ts';
import { buildLayout, makeRandomRootfs, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
const SIZE = 24 << 20;
const HOLD_AT = 6 << 20;
let reg: TestRegistry;
let proxy: RegistryProxy;
let layout: Layout;
let rootDir: string;
let d: TestDaemon | undefined;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  rootDir = tempLayoutDir('berth-bigroot-');
  makeRandomRootfs(rootDir, SIZE);
  layout = buildLayout(tempLayoutDir(), [rootDir]);
  await pushLayout(layout, reg.host, 'big:latest');
  proxy = await startProxy(reg);
});
after(async () => {
  await d?.cleanup();
  await proxy?.close();
  await reg?.stop();
  if (layout) rmSync(layout.dir, { recursive: true, force: true });
  if (rootDir) rmSync(rootDir, { recursive: true, force: true });
});

function largestFile(dir: string): number {
  let max = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, largestFile(p));
    else if (e.isFile()) max = Math.max(max, statSync(p).size);
  }
  return max;
}

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

test('kill -9 mid-pull: consistent store, the next pull resumes with a Range request', { skip, timeout: 180_000 }, async () => {
  const layer = layout.images[0]!.layers[0]!;
  proxy.handler = (req) => (req.method === 'GET' && req.url.includes(layer.digest) && !req.headers.range
    ? { kind: 'hold', afterBytes: HOLD_AT } : undefined);
  d = await TestDaemon.start();
  const name = `${proxy.host}/big:latest`;
  const pulling = d.docker(['pull', name], { timeoutMs: 120_000 });
  const content = join(d.dataRoot, 'image', 'content');
  const deadline = Date.now() + 60_000;
  while (largestFile(content) < HOLD_AT && Date.now() < deadline) await sleep(50);
  assert.ok(largestFile(content) >= HOLD_AT, 'the partial download reached the disk');
  await d.stop('SIGKILL');
  const first = await pulling;
  assert.notEqual(first.code, 0);

  proxy.handler = () => undefined;
  const before = proxy.requests.length;
  await d.restart();
  // Nothing half-made is visible: no image yet.
  const images = await d.docker(['images', '-q']);
  assert.equal(images.stdout.trim(), '', explain(images));
  const r = await d.docker(['pull', name], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `${explain(r)}\n${d.log().slice(-3000)}`);
  const ranged = proxy.requests.slice(before).filter((q) => q.url.includes(layer.digest) && q.method === 'GET');
  assert.ok(ranged.length > 0);
  const m = /^bytes=(\d+)-$/.exec(String(ranged[0]!.headers.range ?? ''));
  assert.ok(m && Number(m[1]) >= HOLD_AT, `resumed from the partial data: ${JSON.stringify(ranged.map((q) => q.headers.range))}`);

  const inspect = JSON.parse((await d.docker(['image', 'inspect', name])).stdout) as Array<{ Id: string; GraphDriver: { Name: string; Data: Record<string, string> | null } }>;
  assert.equal(inspect[0]!.Id, layout.images[0]!.configDigest);
  const g = inspect[0]!.GraphDriver;
  const file = g.Name === 'overlay2' ? join(g.Data!.UpperDir!, 'random.bin') : undefined;
  if (file) {
    const want = createHash('sha256').update(readFileSync(join(rootDir, 'random.bin'))).digest('hex');
    assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), want);
  }
});
