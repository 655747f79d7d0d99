// Berth's builder against dockerd 20.10's classic builder, through the same docker CLI: the same
// Dockerfile gives the same history (created_by of every step, which steps are empty layers), the
// same config, the same step output; and SOURCE_DATE_EPOCH makes Berth's builds reproducible.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from '../helpers/containers.ts';
import { TestDaemon } from '../helpers/daemon.ts';
import { PrivateDockerd, privateDockerdSkip } from '../helpers/private-dockerd.ts';

const skip = privateDockerdSkip();
let d: TestDaemon;
let pd: PrivateDockerd;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-build-vs-dockerd-'));
  d = await TestDaemon.start();
  await importBusybox(d, work);
  pd = await PrivateDockerd.start();
  pd.importBusybox();
});
after(async () => {
  await d?.cleanup();
  await pd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const DOCKERFILE = [
  'FROM busybox',
  'ARG VERSION=1',
  'LABEL version=$VERSION',
  'ENV APP=/app',
  'WORKDIR $APP',
  'COPY data.txt ./',
  'RUN echo "v$VERSION" > version && cat data.txt',
  'EXPOSE 8080',
  'USER nobody',
  'VOLUME /app/state',
  'STOPSIGNAL SIGTERM',
  'ENTRYPOINT ["cat"]',
  'CMD ["version"]',
  '',
].join('\n');

test('history, config and step output match dockerd\'s classic builder', { skip, timeout: 300_000 }, async () => {
  const dir = join(work, 'ctx');
  mkdirSync(dir);
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(dir, 'data.txt'), 'payload\n');
  const env = { DOCKER_BUILDKIT: '0' };
  const ours = await d.docker(['build', '--build-arg', 'VERSION=2', '-t', 'cmp', dir], { env, timeoutMs: 120_000 });
  assert.equal(ours.code, 0, ours.stderr);
  const theirs = pd.docker(['build', '--build-arg', 'VERSION=2', '-t', 'cmp', dir]);
  assert.equal(theirs.status, 0, theirs.stderr);
  // The step lines (ids aside) are the same.
  const steps = (s: string) => s.split('\n').filter((l) => /^Step \d+\/\d+ : /.test(l) || l === 'payload');
  assert.deepEqual(steps(ours.stdout), steps(theirs.stdout));

  const fmt = ['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{if eq .Size "0B"}}empty{{else}}layer{{end}}', 'cmp'];
  const h1 = (await d.docker(fmt)).stdout.trim().split('\n');
  const h2 = pd.docker(fmt).stdout.trim().split('\n');
  // Only the build's own steps (the busybox import's history line differs: another import comment).
  const mine = (h: string[]) => h.slice(0, 12).map((l) => l.replace(/(COPY file:)[0-9a-f]{64}/, '$1<hash>'));
  assert.deepEqual(mine(h1), mine(h2));

  const cfg = async (x: 'ours' | 'theirs') => {
    const out = x === 'ours' ? (await d.docker(['image', 'inspect', 'cmp'])).stdout : pd.docker(['image', 'inspect', 'cmp']).stdout;
    return JSON.parse(out)[0].Config as Record<string, unknown>;
  };
  const [a, b] = [await cfg('ours'), await cfg('theirs')];
  for (const k of ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Labels', 'ExposedPorts', 'Volumes', 'StopSignal', 'OnBuild', 'Shell']) {
    assert.deepEqual(a[k] ?? null, b[k] ?? null, `Config.${k}`);
  }
});

test('SOURCE_DATE_EPOCH: two --no-cache builds give the same image ID and the clamped times', { skip, timeout: 300_000 }, async () => {
  const dir = join(work, 'repro');
  mkdirSync(dir);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY a.txt /a.txt\nRUN echo built > /b.txt && mkdir /c\nENV X=1\n');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await d.docker(['build', '-q', '--no-cache', '--build-arg', 'SOURCE_DATE_EPOCH=1700000000', dir], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    ids.push(r.stdout.trim());
    await new Promise((res) => setTimeout(res, 1100)); // a second later: any unclamped time would differ
  }
  assert.equal(ids[0], ids[1]);
  const info = JSON.parse((await d.docker(['image', 'inspect', ids[0]!])).stdout)[0];
  assert.equal(info.Created, '2023-11-14T22:13:20Z');
  const run = await d.docker(['run', '--rm', '--network', 'none', ids[0]!, 'stat', '-c', '%Y', '/b.txt', '/c']);
  assert.equal(run.stdout, '1700000000\n1700000000\n');
});
