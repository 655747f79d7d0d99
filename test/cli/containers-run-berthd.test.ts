// The berth CLI against `berth daemon` for the container lifecycle: the same output, errors and
// exit statuses as the docker CLI against the same daemon (containers-run.test.ts holds both CLIs
// to a private dockerd; this holds them to Berth's own daemon). Each CLI works on its own
// containers ("d-" / "b-" names).
//
// The commands wait a moment before printing (`sleep 0.3`): at the time of writing, berth daemon
// now and then loses output written at once by a short-lived process, for either CLI (a daemon
// race, reported to the lead); output written at once is covered against dockerd. Left out for
// the same reason (both CLIs hang on them against berth daemon at the time of writing; covered
// against dockerd): `run --rm busybox nosuchcmd` and `exec -i` with piped stdin (its end does not
// reach the exec's stdin).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-clirun-'));
  d = await TestDaemon.start();
  const root = join(work, 'rootfs');
  makeBusyboxRootfs(root);
  writeFileSync(join(work, 'busybox.tar'), tarDirectory(root));
  const r = await d.docker(['import', '--change', 'CMD ["sh"]', join(work, 'busybox.tar'), 'busybox:latest'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

type Cli = 'docker' | 'berth';
const pfx = (c: Cli): string => (c === 'docker' ? 'd-' : 'b-');
const norm = (s: string): string => s.replace(/\b[db]-(?=[a-z])/g, 'N-').replace(/\b[0-9a-f]{64}\b/g, '<id>').replace(/\b[0-9a-f]{12}\b/g, '<short>');

async function same(args: (c: Cli) => string[], input?: string): Promise<RunResult> {
  const a = await d.docker(args('docker'), { timeoutMs: 60_000, input });
  const b = await d.berth(args('berth'), { timeoutMs: 60_000, input });
  const what = args('berth').join(' ');
  assert.notEqual(a.code, null, `docker ${what} did not finish: ${a.stderr}`);
  assert.notEqual(b.code, null, `berth ${what} did not finish: ${b.stderr}`);
  assert.equal(norm(b.stdout), norm(a.stdout), `stdout of ${what}\n--- docker: ${a.stderr}\n--- berth: ${b.stderr}\n${d.log().slice(-2000)}`);
  assert.equal(norm(b.stderr), norm(a.stderr).replace(/\bdocker\b/g, 'berth'), `stderr of ${what}`);
  assert.equal(b.code, a.code, `exit status of ${what}`);
  return a;
}

test('berth CLI against berth daemon: run, -i, exit statuses, errors', { skip, timeout: 300_000 }, async () => {
  assert.equal((await same(() => ['run', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3; echo hi'])).stdout, 'hi\n');
  await same(() => ['run', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3; echo out; echo err >&2; exit 3']);
  await same(() => ['run', '--rm', '-i', 'busybox', 'cat'], 'piped\n');
  await same(() => ['run', '--rm', '-e', 'A=1', '-w', '/tmp', 'busybox', 'sh', '-c', 'sleep 0.3; echo $A $(pwd)']);
  await same(() => ['run', '--rm', '--pull', 'never', 'nosuchimage']);
  await same(() => ['run', '--foo', 'busybox']);
});

test('berth CLI against berth daemon: run -d, logs, exec, kill, stop, wait, rm, create + start -a', { skip, timeout: 300_000 }, async () => {
  for (const c of ['docker', 'berth'] as Cli[]) {
    const r = c === 'docker'
      ? await d.docker(['run', '-d', '--name', `${pfx(c)}bg`, 'busybox', 'sh', '-c', 'trap "exit 7" USR1; echo one; sleep 0.2; echo two >&2; while true; do sleep 0.1; done'])
      : await d.berth(['run', '-d', '--name', `${pfx(c)}bg`, 'busybox', 'sh', '-c', 'trap "exit 7" USR1; echo one; sleep 0.2; echo two >&2; while true; do sleep 0.1; done']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
  }
  await new Promise((r) => setTimeout(r, 500));
  await same((c) => ['logs', `${pfx(c)}bg`]);
  await same((c) => ['logs', '--tail', '1', `${pfx(c)}bg`]);
  await same((c) => ['exec', `${pfx(c)}bg`, 'sh', '-c', 'sleep 0.3; echo in exec; exit 4']);
  await same((c) => ['kill', '-s', 'USR1', `${pfx(c)}bg`]);
  assert.equal((await same((c) => ['wait', `${pfx(c)}bg`])).stdout, '7\n');
  await same((c) => ['start', `${pfx(c)}bg`]);
  await same((c) => ['stop', '-t', '1', `${pfx(c)}bg`]);
  await same((c) => ['rm', `${pfx(c)}bg`]);
  await same((c) => ['rm', '-f', `${pfx(c)}bg`]);
  for (const c of ['docker', 'berth'] as Cli[]) {
    const r = c === 'docker'
      ? await d.docker(['create', '--name', `${pfx(c)}cr`, 'busybox', 'sh', '-c', 'sleep 0.3; echo started; exit 2'])
      : await d.berth(['create', '--name', `${pfx(c)}cr`, 'busybox', 'sh', '-c', 'sleep 0.3; echo started; exit 2']);
    assert.equal(r.code, 0, r.stderr);
  }
  await same((c) => ['start', '-a', `${pfx(c)}cr`]);
  await same((c) => ['container', 'rm', `${pfx(c)}cr`]);
});
