// The real docker CLI against `berth daemon`: docker cp both ways (stopped and running
// containers, directories, stdin/stdout tars), docker diff, docker export, docker commit and a
// docker run of the committed image.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TarReader } from '../../src/image/unpack/index.ts';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let work: string;

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
async function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return d.docker(args, { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input });
}
async function ok(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${explain(r)}\n${d.log().slice(-3000)}`);
  return r.stdout;
}

/** docker run -d, wait, logs, rm: a run's output without an attached stream. */
async function runOutput(args: string[]): Promise<string> {
  const id = (await ok(['run', '-d', '--network', 'none', ...args])).trim();
  assert.equal((await ok(['wait', id])).trim(), '0');
  const out = await ok(['logs', id]);
  await ok(['rm', id]);
  return out;
}

function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  const r = new TarReader({ entry(e) { names.push(e.name); }, data() {}, entryEnd() {} });
  r.push(tar);
  r.end();
  return names;
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-cp-'));
  d = await TestDaemon.start();
  const root = join(work, 'rootfs');
  makeBusyboxRootfs(root);
  writeFileSync(join(root, 'etc', 'motd'), 'from the image\n');
  const tar = join(work, 'busybox.tar');
  writeFileSync(tar, tarDirectory(root));
  await ok(['import', '--change', 'CMD ["sh"]', tar, 'busybox:latest'], { timeoutMs: 120_000 });
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('docker cp into and out of a stopped container; docker diff', { skip }, async () => {
  await ok(['create', '--network', 'none', '--name', 'cp1', 'busybox', 'sh']);
  const src = join(work, 'in');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'sub', 'a.txt'), 'alpha\n');
  writeFileSync(join(work, 'single.txt'), 'single\n');
  await ok(['cp', join(work, 'single.txt'), 'cp1:/tmp/']);
  await ok(['cp', src, 'cp1:/opt']); // a directory copied to a new name
  const out = join(work, 'out');
  mkdirSync(out);
  await ok(['cp', 'cp1:/tmp/single.txt', join(out, 'back.txt')]);
  assert.equal(readFileSync(join(out, 'back.txt'), 'utf8'), 'single\n');
  await ok(['cp', 'cp1:/opt', join(out, 'optcopy')]);
  assert.equal(readFileSync(join(out, 'optcopy', 'sub', 'a.txt'), 'utf8'), 'alpha\n');
  await ok(['cp', 'cp1:/etc/motd', out]);
  assert.equal(readFileSync(join(out, 'motd'), 'utf8'), 'from the image\n');
  // To stdout: a tar named after the base name.
  const piped = spawnSync('sh', ['-c', `"${DOCKER_BIN}" cp cp1:/opt/sub - > "${join(work, 'sub.tar')}"`], { env: d.dockerEnv(), timeout: 60_000 });
  assert.equal(piped.status, 0, piped.stderr?.toString());
  assert.deepEqual(tarNames(readFileSync(join(work, 'sub.tar'))), ['sub/', 'sub/a.txt']);
  // From stdin: a tar extracted into a directory.
  const r = spawnSync('sh', ['-c', `"${DOCKER_BIN}" cp - cp1:/tmp < "${join(work, 'sub.tar')}"`], { env: d.dockerEnv(), timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr?.toString());
  const miss = await docker(['cp', 'cp1:/nope', out]);
  assert.notEqual(miss.code, 0);
  assert.match(miss.stderr, /Could not find the file \/nope in container cp1|No such container:path: cp1:\/nope/);
  const diff = (await ok(['diff', 'cp1'])).trim().split('\n');
  for (const line of ['C /tmp', 'A /tmp/single.txt', 'A /tmp/sub/a.txt', 'A /opt', 'A /opt/sub', 'A /opt/sub/a.txt']) assert.ok(diff.includes(line), `${line} in:\n${diff.join('\n')}`);
  assert.ok(!diff.some((l) => / \/etc\/motd$/.test(l)), diff.join('\n'));
});

test('docker cp with a running container, and docker diff of what it wrote', { skip }, async () => {
  await ok(['run', '-d', '--network', 'none', '--name', 'cp2', 'busybox', 'sh', '-c', 'echo made > /root/made; rm /etc/motd; while true; do sleep 0.2; done']);
  for (let i = 0; i < 50 && !(await ok(['diff', 'cp2'])).includes('/root/made'); i++) await new Promise((r) => setTimeout(r, 100));
  writeFileSync(join(work, 'live.txt'), 'live\n');
  await ok(['cp', join(work, 'live.txt'), 'cp2:/root/live.txt']);
  assert.equal(await ok(['exec', 'cp2', 'cat', '/root/live.txt']), 'live\n');
  await ok(['cp', 'cp2:/root/made', join(work, 'made.txt')]);
  assert.equal(readFileSync(join(work, 'made.txt'), 'utf8'), 'made\n');
  const diff = (await ok(['diff', 'cp2'])).trim().split('\n');
  for (const line of ['C /root', 'A /root/made', 'A /root/live.txt', 'C /etc', 'D /etc/motd']) assert.ok(diff.includes(line), `${line} in:\n${diff.join('\n')}`);
  // The files the engine bind-mounts (docker's init layer) are not the container's changes.
  assert.ok(!diff.some((l) => /\/etc\/(hosts|hostname|resolv\.conf)$/.test(l)), diff.join('\n'));
  await ok(['rm', '-f', 'cp2']);
});

test('docker export: the container\'s whole filesystem as a tar', { skip }, async () => {
  const file = join(work, 'export.tar');
  await ok(['export', '-o', file, 'cp1']);
  const names = tarNames(readFileSync(file));
  for (const n of ['bin/busybox', 'etc/motd', 'tmp/single.txt', 'opt/sub/a.txt']) assert.ok(names.includes(n), `${n} in export`);
});

test('docker commit, then docker run of the committed image', { skip }, async () => {
  const id = (await ok(['commit', '-a', 'tester', '-m', 'add files', '-c', 'ENV COMMITTED=yes', '-c', 'CMD ["cat", "/tmp/single.txt"]', 'cp1', 'mine:v1'])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await runOutput(['mine:v1']), 'single\n');
  assert.equal(await runOutput(['mine:v1', 'sh', '-c', 'echo $COMMITTED; cat /opt/sub/a.txt']), 'yes\nalpha\n');
  const inspect = JSON.parse(await ok(['image', 'inspect', 'mine:v1']))[0];
  assert.equal(inspect.Author, 'tester');
  assert.equal(inspect.Comment, 'add files');
  assert.deepEqual(inspect.Config.Cmd, ['cat', '/tmp/single.txt']);
  const history = await ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', 'mine:v1']);
  assert.equal(history.split('\n')[0], 'sh|add files');
  // docker.io/library naming: the short name and the full name are the same image.
  assert.equal((await ok(['image', 'inspect', '--format', '{{.Id}}', 'docker.io/library/mine:v1'])).trim(), id);
  // A commit of a running container (paused meanwhile by default) works and leaves it running.
  await ok(['run', '-d', '--network', 'none', '--name', 'cp3', 'busybox', 'sh', '-c', 'echo x > /x; while true; do sleep 0.2; done']);
  await new Promise((r) => setTimeout(r, 500));
  await ok(['commit', 'cp3', 'mine:running']);
  assert.equal((await ok(['inspect', '--format', '{{.State.Status}}', 'cp3'])).trim(), 'running');
  assert.equal(await runOutput(['mine:running', 'cat', '/x']), 'x\n');
  await ok(['rm', '-f', 'cp3', 'cp1']);
});
