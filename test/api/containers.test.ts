// The real docker CLI against `berth daemon` for containers: run (attached, -d, -i, --rm, exit
// codes), ps, logs (-f, --tail), exec, stop/kill/wait/restart, rm, inspect, rename, pause,
// errors (unknown image, name conflict, bad flags) that leave nothing behind, restart policies,
// and live restore across a kill -9 of the daemon.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { importBusybox } from '../helpers/containers.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-ctr-'));
  d = await TestDaemon.start();
  await importBusybox(d, work);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
async function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return d.docker(args, { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input });
}
async function ok(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${explain(r)}\n${d.log().slice(-3000)}`);
  return r.stdout;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('docker run --rm busybox echo hi: output, exit code, nothing left', { skip }, async () => {
  assert.equal(await ok(['run', '--rm', 'busybox', 'echo', 'hi']), 'hi\n');
  const r = await docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, explain(r));
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  await until('--rm to remove', async () => (await ok(['ps', '-aq'])).trim() === '');
  assert.deepEqual(readdirSync(join(d.execRoot, 'containers')), []);
});

test('docker run -i: stdin reaches the process and closes', { skip }, async () => {
  assert.equal(await ok(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' }), 'line one\nline two\ndone\n');
});

test('docker run -d, ps, logs (--tail, -f), exec, inspect, stop, rm', { skip }, async () => {
  const id = (await ok(['run', '-d', '--name', 'web1', '-e', 'GREETING=hello', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; done; echo $GREETING; trap "echo bye; exit 7" TERM; while true; do sleep 0.1; done'])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  await until('the log lines', async () => (await ok(['logs', 'web1'])).includes('hello'));
  assert.equal(await ok(['logs', 'web1']), 'line1\nline2\nline3\nhello\n');
  assert.equal(await ok(['logs', '--tail', '2', 'web1']), 'line3\nhello\n');
  const ps = await ok(['ps']);
  assert.match(ps, /web1/);
  assert.match(ps, /Up (Less than a second|\d+ seconds?)/);
  assert.equal(await ok(['exec', 'web1', 'sh', '-c', 'echo $GREETING from $(hostname)']), `hello from ${id.slice(0, 12)}\n`);
  const ex = await docker(['exec', 'web1', 'sh', '-c', 'exit 5']);
  assert.equal(ex.code, 5, explain(ex));
  const info = JSON.parse(await ok(['inspect', 'web1']))[0];
  assert.equal(info.Id, id);
  assert.equal(info.Name, '/web1');
  assert.equal(info.State.Status, 'running');
  assert.ok(info.State.Pid > 0);
  assert.equal(info.Config.Image, 'busybox');
  assert.ok(info.Config.Env.includes('GREETING=hello'));
  assert.equal(info.Path, 'sh');
  // logs -f follows until the container stops.
  const follow = d.docker(['logs', '-f', 'web1'], { timeoutMs: 30_000 });
  await sleep(300);
  await ok(['stop', 'web1']);
  const f = await follow;
  assert.equal(f.code, 0, explain(f));
  assert.equal(f.stdout, 'line1\nline2\nline3\nhello\nbye\n');
  const after = JSON.parse(await ok(['inspect', 'web1']))[0];
  assert.equal(after.State.Status, 'exited');
  assert.equal(after.State.ExitCode, 7);
  assert.match(await ok(['ps', '-a']), /Exited \(7\)/);
  assert.equal((await ok(['wait', 'web1'])).trim(), '7');
  await ok(['rm', 'web1']);
  const gone = await docker(['inspect', 'web1']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /No such object: web1|No such container: web1/);
});

test('errors: unknown image, name conflict, running container rm, bad flags; nothing half-created', { skip }, async () => {
  const before = (await ok(['ps', '-aq'])).trim();
  const unknown = await docker(['run', '--rm', '--pull', 'never', 'nosuchimage:1']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /No such image: nosuchimage:1/);
  await ok(['create', '--name', 'dup', 'busybox', 'true']);
  const conflict = await docker(['run', '--name', 'dup', 'busybox', 'true']);
  assert.equal(conflict.code, 125, explain(conflict));
  assert.match(conflict.stderr, /Conflict\. The container name "\/dup" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\./);
  const badRestart = await docker(['create', '--restart', 'sometimes', 'busybox', 'true']);
  assert.notEqual(badRestart.code, 0);
  const rmConflict = await docker(['run', '--rm', '--restart', 'always', 'busybox', 'true']);
  assert.notEqual(rmConflict.code, 0);
  assert.match(rmConflict.stderr, /conflicting options|Conflicting options/);
  const noCmd = await docker(['run', '--rm', 'busybox', '/no/such/binary']);
  assert.equal(noCmd.code, 127, explain(noCmd));
  await ok(['rm', 'dup']);
  assert.equal((await ok(['ps', '-aq'])).trim(), before);
  const id = (await ok(['run', '-d', 'busybox', 'sleep', '100'])).trim();
  const rmRunning = await docker(['rm', id]);
  assert.notEqual(rmRunning.code, 0);
  assert.match(rmRunning.stderr, /container is running: stop the container before removing or force remove/);
  await ok(['rm', '-f', id]);
});

test('kill -s, wait, restart, rename, pause/unpause, top-level state', { skip }, async () => {
  await ok(['run', '-d', '--name', 'k1', 'busybox', 'sh', '-c', 'trap "exit 42" USR1; while true; do sleep 0.1; done']);
  const waiting = d.docker(['wait', 'k1'], { timeoutMs: 30_000 });
  await sleep(300);
  await ok(['kill', '-s', 'USR1', 'k1']);
  assert.equal((await waiting).stdout.trim(), '42');
  await ok(['restart', 'k1']);
  assert.equal(JSON.parse(await ok(['inspect', 'k1']))[0].State.Running, true);
  await ok(['rename', 'k1', 'k2']);
  await ok(['pause', 'k2']);
  assert.equal(JSON.parse(await ok(['inspect', 'k2']))[0].State.Status, 'paused');
  await ok(['unpause', 'k2']);
  await ok(['kill', 'k2']);
  assert.equal(JSON.parse(await ok(['inspect', 'k2']))[0].State.ExitCode, 137);
  await ok(['rm', 'k2']);
});

test('--restart on-failure:2 and always; containers outlive kill -9 of the daemon (live restore)', { skip, timeout: 120_000 }, async () => {
  await ok(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo run; exit 1']);
  await until('two restarts', async () => {
    const s = JSON.parse(await ok(['inspect', 'flaky']))[0];
    return s.RestartCount === 2 && s.State.Status === 'exited';
  }, 30_000);
  assert.equal(await ok(['logs', 'flaky']), 'run\nrun\nrun\n');
  await ok(['rm', 'flaky']);

  await ok(['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']);
  await ok(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sh', '-c', 'echo started; sleep 1; exit 3']);
  const pid = JSON.parse(await ok(['inspect', 'survivor']))[0].State.Pid;
  // A clean stop of the daemon leaves containers running too (live restore).
  await d.restart();
  assert.equal(JSON.parse(await ok(['inspect', 'survivor']))[0].State.Pid, pid);
  await d.restart({ kill9: true });
  const s = JSON.parse(await ok(['inspect', 'survivor']))[0];
  assert.equal(s.State.Running, true);
  assert.equal(s.State.Pid, pid);
  await sleep(500);
  const logs = (await ok(['logs', 'survivor'])).trim().split('\n');
  assert.ok(logs.length >= 3, logs.join('\n'));
  logs.forEach((l, i) => assert.equal(l, `tick ${i + 1}`));
  // berth's own CLI sees the same after the kill -9
  const bps = await d.berth(['ps', '--format', '{{.Names}} {{.State}}']);
  assert.equal(bps.code, 0, bps.stderr);
  assert.match(bps.stdout, /^survivor running$/m);
  const blogs = await d.berth(['logs', 'survivor']);
  assert.equal(blogs.code, 0, blogs.stderr);
  assert.ok(blogs.stdout.startsWith(logs.map((l) => `${l}\n`).join('')), blogs.stdout);
  await until('the always container to restart after the daemon restart', async () => JSON.parse(await ok(['inspect', 'always']))[0].RestartCount >= 1, 20_000);
  // A container that exits while the daemon is down: its exit code is recorded anyway.
  await ok(['run', '-d', '--name', 'shortlived', 'busybox', 'sh', '-c', 'sleep 1; echo finished; exit 9']);
  await d.stop('SIGKILL');
  await sleep(2000);
  await d.restart();
  const sl = JSON.parse(await ok(['inspect', 'shortlived']))[0];
  assert.equal(sl.State.Status, 'exited');
  assert.equal(sl.State.ExitCode, 9);
  assert.equal(await ok(['logs', 'shortlived']), 'finished\n');
  await ok(['rm', '-f', 'survivor', 'always', 'shortlived']);
});

test('docker run -t through a pty; exec -it', { skip: skip || (!existsSync('/usr/bin/script') && 'util-linux script missing') }, async () => {
  const out = await new Promise<string>((resolve, reject) => {
    const inner = `stty rows 33 cols 101; ${DOCKER_BIN} -H ${d.host} run --name tty1 -t busybox sh -c 'tty; stty size'; ${DOCKER_BIN} -H ${d.host} run -dit --name tty2 busybox sh; ${DOCKER_BIN} -H ${d.host} exec -it tty2 sh -c 'stty size; tty'`;
    const child = spawn('script', ['-qec', inner, '/dev/null'], { env: { ...process.env, DOCKER_CONFIG: join(d.dir, 'docker-config') }, stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => { text += c.toString(); });
    child.on('close', () => resolve(text));
    child.on('error', reject);
    setTimeout(() => child.kill(), 30_000);
  });
  assert.match(out, /\/dev\/pts\/0\r\r?\n33 101\r\r?\n/);
  // exec -it: its own pty, the size of the client's terminal
  assert.match(out, /33 101\r\n\/dev\/pts\/1\r\n/);
  assert.equal(await ok(['logs', 'tty1']), '/dev/pts/0\r\n33 101\r\n');
  await ok(['rm', '-f', 'tty1', 'tty2']);
});

test('--runtime runc: an external OCI runtime under the same monitor (run, exec, logs, pause, stop)', { skip: skip || (!existsSync('/usr/sbin/runc') && !existsSync('/usr/bin/runc') && 'runc is not installed') }, async () => {
  const r = await docker(['run', '--rm', '--runtime', 'runc', 'busybox', 'sh', '-c', 'echo via runc; exit 4']);
  assert.equal(r.code, 4, explain(r));
  assert.equal(r.stdout, 'via runc\n');
  await ok(['run', '-d', '--name', 'ext', '--runtime', 'runc', 'busybox', 'sh', '-c', 'echo started; trap "exit 0" TERM; while true; do sleep 0.1; done']);
  assert.equal(JSON.parse(await ok(['inspect', 'ext']))[0].HostConfig.Runtime, 'runc');
  assert.equal(await ok(['exec', 'ext', 'echo', 'exec ok']), 'exec ok\n');
  assert.equal(await ok(['exec', '-i', 'ext', 'cat'], { input: 'stdin ok\n' }), 'stdin ok\n');
  await ok(['pause', 'ext']);
  await ok(['unpause', 'ext']);
  await ok(['stop', 'ext']);
  assert.equal(JSON.parse(await ok(['inspect', 'ext']))[0].State.ExitCode, 0);
  assert.equal(await ok(['logs', 'ext']), 'started\n');
  await ok(['rm', 'ext']);
  const bad = await docker(['run', '--rm', '--runtime', 'nosuchruntime', 'busybox', 'true']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown or invalid runtime name: nosuchruntime/);
});

test('docker attach: output and stdin of a running container; stdin EOF ends it', { skip }, async () => {
  await ok(['run', '-d', '-i', '--name', 'att', 'busybox', 'sh', '-c', 'while read line; do echo got $line; done']);
  const a = await docker(['attach', 'att'], { input: 'one\ntwo\n' });
  // stdin ended: the shell's read loop ends, so does the container
  assert.equal(a.stdout, 'got one\ngot two\n', explain(a));
  assert.equal((await ok(['wait', 'att'])).trim(), '0');
  await ok(['rm', 'att']);
});

test('attach detach keys (ctrl-p ctrl-q): the daemon ends the stream, the container keeps running', { skip }, async () => {
  await ok(['run', '-d', '-i', '--name', 'det', 'busybox', 'sh', '-c', 'while read line; do echo got $line; done']);
  const sock = createConnection(d.socket);
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /v1.47/containers/det/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
  let received = Buffer.alloc(0);
  const ended = new Promise<void>((r) => sock.on('end', () => r()));
  sock.on('data', (c: Buffer) => { received = Buffer.concat([received, c]); });
  await until('the 101', async () => received.includes('\r\n\r\n'));
  assert.match(received.toString('latin1'), /^HTTP\/1.1 101 UPGRADED/);
  sock.write('one\n');
  await until('the echo', async () => received.includes('got one'));
  sock.write('\x10\x11two\n');
  await Promise.race([ended, sleep(5000).then(() => { throw new Error('the daemon did not end the stream after ctrl-p ctrl-q'); })]);
  sock.destroy();
  assert.ok(!received.includes('got two'), received.toString('latin1'));
  assert.equal(JSON.parse(await ok(['inspect', 'det']))[0].State.Running, true);
  await ok(['rm', '-f', 'det']);
});

test('docker rmi of an image a container uses: refused by name without -f; with -f the name goes and the image stays, without an error', { skip }, async () => {
  // An image with one name only (a tag of busybox would leave busybox's name behind).
  await ok(['build', '-q', '-t', 'rmi-probe:1', '-'], { input: 'FROM busybox\nLABEL rmi=probe\n' });
  const id = (await ok(['create', 'rmi-probe:1', 'true'])).trim();
  const refused = await docker(['rmi', 'rmi-probe:1']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`conflict: unable to remove repository reference "rmi-probe:1" \\(must force\\) - container ${id.slice(0, 12)} is using its referenced image`));
  const forced = await docker(['rmi', '-f', 'rmi-probe:1']);
  assert.equal(forced.code, 0, explain(forced));
  assert.equal(forced.stdout, 'Untagged: rmi-probe:1\n');
  assert.equal((await docker(['image', 'inspect', 'rmi-probe:1'])).code, 1);
  const imageId = JSON.parse(await ok(['inspect', id]))[0].Image as string;
  assert.equal((await docker(['image', 'inspect', imageId])).code, 0, 'the image itself stays while the container uses it');
  await ok(['rm', id]);
});
