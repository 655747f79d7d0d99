// The per-container monitor (native/monitor.c, src/engine/monitor.ts) with real containers:
// the engine's flow (Runtime.create with the monitor's launcher, attach, start), output with and
// without a terminal, stdin, resize, exit records, survival of the creating process, log rotation,
// fd hygiene and --hold for exec.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Runtime } from '../../src/runtime/container.ts';
import { execInContainer } from '../../src/runtime/exec.ts';
import { MonitorConnection, monitorLauncher, monitorPath, monitorRunning, readExitRecord, type MonitorOptions } from '../../src/engine/monitor.ts';
import { REPO_ROOT, pidAlive, sleep, waitFor, withBundle, type Bundle } from '../helpers/bundle.ts';

const RFC3339NANO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/;

interface Started {
  id: string;
  dir: string;
  log: string;
  runtime: Runtime;
  monitorPid: number;
  conn: MonitorConnection;
  out: { stream: 'stdout' | 'stderr'; data: Buffer }[];
  text(stream?: 'stdout' | 'stderr'): string;
}

interface LogLine { log: string; stream: string; time: string }

function logLines(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine);
}

/** The engine's flow: create under a new monitor, attach, then start (unless `start` is false). */
async function launch(b: Bundle, args: string[], opts: Partial<MonitorOptions> & { terminal?: boolean; start?: boolean } = {}): Promise<Started> {
  const runtime = new Runtime({ root: b.root });
  const id = b.newId('bm');
  // Short: DIR/attach.sock must fit in sun_path.
  const dir = join(b.base, `m${Math.random().toString(36).slice(2, 8)}`);
  const log = join(dir, 'json.log');
  b.writeConfig((s) => {
    s.process.args = args;
    s.process.terminal = !!opts.terminal;
  });
  const { terminal, start, ...mopts } = opts;
  const { launch: launcher, ready } = monitorLauncher({ dir, logPath: log, tty: terminal, ...mopts });
  await runtime.create(id, { bundle: b.dir, consoleSocket: terminal ? join(dir, 'console.sock') : undefined, launch: launcher });
  const monitorPid = await ready;
  b.trackPid(monitorPid);
  const conn = await MonitorConnection.connect(dir);
  const out: Started['out'] = [];
  conn.onOutput((stream, data) => out.push({ stream, data: Buffer.from(data) }));
  if (start !== false) runtime.start(id);
  return {
    id, dir, log, runtime, monitorPid, conn, out,
    text: (stream) => Buffer.concat(out.filter((o) => !stream || o.stream === stream).map((o) => o.data)).toString(),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))]);
}

/** Waits for the exit, checks that the monitor is gone and cleaned up, removes the container. */
async function finish(s: Started): Promise<number> {
  const code = await withTimeout(s.conn.exited, 20000, 'the exit frame');
  await waitFor('the monitor to exit', () => !pidAlive(s.monitorPid), 5000);
  assert.ok(!existsSync(join(s.dir, 'attach.sock')), 'attach.sock removed at the end');
  assert.ok(!existsSync(join(s.dir, 'console.sock')), 'console.sock removed at the end');
  assert.ok(!existsSync(join(s.dir, 'exit.tmp')));
  s.runtime.delete(s.id, true);
  return code;
}

test('monitor binary is built', () => {
  assert.ok(existsSync(monitorPath()), 'run npm run build');
});

test('pipes: stdout and stderr reach the attached client and the json-file log; the exit code is recorded', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'echo out-1; echo err-1 >&2; echo out-2; exit 3']);
    assert.equal(await finish(s), 3);
    assert.equal(s.text('stdout'), 'out-1\nout-2\n');
    assert.equal(s.text('stderr'), 'err-1\n');
    const rec = readExitRecord(s.dir);
    assert.equal(rec?.exitCode, 3);
    assert.ok(Math.abs(rec!.finishedAt.getTime() - Date.now()) < 60000);
    assert.match(readFileSync(join(s.dir, 'exit'), 'utf8'), /^3 \d{19}\n$/);
    const lines = logLines(s.log);
    assert.deepEqual(lines.filter((l) => l.stream === 'stdout').map((l) => l.log), ['out-1\n', 'out-2\n']);
    assert.deepEqual(lines.filter((l) => l.stream === 'stderr').map((l) => l.log), ['err-1\n']);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ['log', 'stream', 'time']);
      assert.match(l.time, RFC3339NANO_UTC);
    }
  });
});

test('json-file entries are escaped as docker (Go) escapes them; a last line without newline is its own entry', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', "printf 'a\\tb<>&\"\\\\ \\001\\r\\377\\342\\200\\250 é\\n'; printf 'tail-no-newline'"]);
    assert.equal(await finish(s), 0);
    const raw = readFileSync(s.log, 'utf8').split('\n').filter(Boolean);
    assert.equal(raw.length, 2, raw.join('\n'));
    assert.ok(raw[0].startsWith('{"log":"a\\u0009b\\u003c\\u003e\\u0026\\"\\\\ \\u0001\\r\\ufffd\\u2028 é\\n","stream":"stdout","time":"'), raw[0]);
    assert.equal((JSON.parse(raw[1]) as LogLine).log, 'tail-no-newline');
    // The client gets the bytes as they were, invalid UTF-8 included.
    assert.ok(Buffer.concat(s.out.map((o) => o.data)).includes(Buffer.from([0xff, 0xe2, 0x80, 0xa8])));
  });
});

test('a long line is logged in 16 KiB pieces', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" x; echo']);
    assert.equal(await finish(s), 0);
    const lines = logLines(s.log);
    assert.deepEqual(lines.map((l) => l.log.length), [16384, 16384, 40000 - 32768 + 1]);
    assert.equal(s.text().length, 40001);
  });
});

test('tty: output through the pty reaches client and log as stdout; resize is seen inside', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'echo hello-tty; echo err-tty >&2; sleep 0.3; stty size; tty'], { terminal: true, start: false });
    s.conn.resize(33, 101);
    s.runtime.start(s.id);
    assert.equal(await finish(s), 0);
    const text = s.text();
    assert.equal(s.text('stderr'), '');
    // "\r\n" where the pty translates newlines (ONLCR, as docker's ttys do), "\n" where it does not.
    assert.match(text, /hello-tty\r?\n/);
    assert.match(text, /err-tty\r?\n/);
    assert.match(text, /33 101\r?\n/);
    assert.match(text, /\/dev\/pts\/\d+/);
    const lines = logLines(s.log);
    assert.ok(lines.every((l) => l.stream === 'stdout'));
    assert.equal(lines.map((l) => l.log).join(''), text);
  });
});

test('tty: a resize while running reaches the process', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'read x; stty size'], { terminal: true, stdin: true });
    await sleep(200);
    s.conn.resize(12, 34);
    await sleep(100);
    s.conn.writeStdin(Buffer.from('go\n'));
    assert.equal(await finish(s), 0);
    assert.match(s.text(), /12 34/);
  });
});

test('stdin through frames: cat echoes it and ends at the close-stdin frame', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['cat'], { stdin: true });
    s.conn.writeStdin(Buffer.from('line one\n'));
    const big = Buffer.alloc(600 * 1024, 'y');
    s.conn.writeStdin(big);
    s.conn.closeStdin();
    assert.equal(await finish(s), 0);
    assert.equal(s.text('stdout'), `line one\n${big.toString()}`);
  });
});

test('without --stdin the stdin frames are discarded (stdin is /dev/null)', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'cat; echo end']);
    s.conn.writeStdin(Buffer.from('ignored\n'));
    assert.equal(await finish(s), 0);
    assert.equal(s.text(), 'end\n');
  });
});

test('--stdin-once: stdin closes when the client that wrote it disconnects', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'cat; echo cat-done'], { stdin: true, stdinOnce: true });
    const writer = await MonitorConnection.connect(s.dir);
    writer.writeStdin(Buffer.from('from-writer\n'));
    await waitFor('the echo', () => s.text().includes('from-writer'), 10000);
    writer.close();
    assert.equal(await finish(s), 0);
    assert.equal(s.text(), 'from-writer\ncat-done\n');
  });
});

test('tty with stdin: input through the pty', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'read x; echo "got:$x"'], { terminal: true, stdin: true });
    s.conn.writeStdin(Buffer.from('abc\n'));
    assert.equal(await finish(s), 0);
    assert.match(s.text(), /got:abc/);
  });
});

test('a client that stops reading holds the output back for 5 s, then it is dropped; the others and the log get everything', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'sleep 0.3; head -c 6000000 /dev/zero | tr "\\0" z; echo; echo end'], { start: false });
    const stuck = await MonitorConnection.connect(s.dir);
    let stuckBytes = 0;
    stuck.onOutput((_s, d) => { stuckBytes += d.length; });
    stuck.socket.pause();
    const t0 = Date.now();
    await sleep(100);
    s.runtime.start(s.id);
    assert.equal(await finish(s), 0);
    assert.ok(Date.now() - t0 >= 4500, 'held back while the stuck client might still read');
    assert.equal(s.text().length, 6000000 + 5);
    assert.ok(s.text().endsWith('z\nend\n'));
    // The stuck client's connection was closed long before it could have read 6 MB.
    stuck.socket.resume();
    await stuck.exited.catch(() => undefined);
    assert.ok(stuckBytes < 6000000, `the stuck client got ${stuckBytes} bytes`);
    const lines = logLines(s.log);
    assert.equal(lines.reduce((n, l) => n + l.log.length, 0), 6000000 + 5);
  });
});

test('death by signal is recorded as 128+signal', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sleep', '1000']);
    const pid = s.runtime.state(s.id).pid!;
    await sleep(100);
    process.kill(pid, 'SIGKILL');
    assert.equal(await finish(s), 137);
    assert.equal(readExitRecord(s.dir)?.exitCode, 137);
  });
});

test('the monitor ignores SIGTERM, SIGINT and SIGHUP; a late client reads the exit from DIR/exit', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'sleep 0.5; echo done']);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(s.monitorPid, sig);
    await sleep(100);
    assert.ok(pidAlive(s.monitorPid));
    assert.ok(await monitorRunning(s.dir));
    assert.equal(await finish(s), 0);
    assert.equal(await monitorRunning(s.dir), false);
    await assert.rejects(MonitorConnection.connect(s.dir), /not running/);
    assert.deepEqual(logLines(s.log).map((l) => l.log), ['done\n']);
  });
});

test('only fds 0, 1 and 2 reach the container', async () => {
  await withBundle({}, async (b) => {
    for (const terminal of [false, true]) {
      // ls's own directory fd is the 3 it lists.
      const s = await launch(b, ['ls', '/proc/self/fd'], { terminal });
      assert.equal(await finish(s), 0);
      assert.deepEqual(s.text().trim().split(/\s+/), ['0', '1', '2', '3'], `terminal=${terminal}`);
    }
  });
});

test('log rotation: max-size and max-file', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done'],
      { logMaxSize: 4000, logMaxFile: 3 });
    assert.equal(await finish(s), 0);
    const files = readdirSync(s.dir).filter((f) => f.startsWith('json.log')).sort();
    assert.deepEqual(files, ['json.log', 'json.log.1', 'json.log.2']);
    for (const f of files) assert.ok(statSync(join(s.dir, f)).size <= 4000, `${f} is ${statSync(join(s.dir, f)).size} bytes`);
    const all = [...logLines(`${s.log}.2`), ...logLines(`${s.log}.1`), ...logLines(s.log)].map((l) => Number(/^line-(\d+)-/.exec(l.log)![1]));
    assert.equal(all[all.length - 1], 299);
    all.forEach((n, i) => assert.equal(n, all[0] + i, 'consecutive across the rotated files'));
    assert.ok(all[0] > 0, 'the oldest lines were rotated away');
  });
});

test('log rotation with max-file 1 truncates', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'i=0; while [ $i -lt 100 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done'],
      { logMaxSize: 1000 });
    assert.equal(await finish(s), 0);
    assert.deepEqual(readdirSync(s.dir).filter((f) => f.startsWith('json.log')), ['json.log']);
    assert.ok(statSync(s.log).size <= 1000);
    assert.match(logLines(s.log).pop()!.log, /^line-99-/);
  });
});

test('the container survives the process that created it; its exit is recorded later', async () => {
  await withBundle({}, async (b) => {
    const id = b.newId('bm');
    const dir = join(b.base, 'orphan');
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'echo started; sleep 2; echo finished; exit 7']; });
    const script = join(b.base, "create.mts");
    writeFileSync(script, `
import { Runtime } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/container.ts'))};
import { MonitorConnection, monitorLauncher } from ${JSON.stringify(join(REPO_ROOT, 'src/engine/monitor.ts'))};
const runtime = new Runtime({ root: ${JSON.stringify(b.root)} });
const { launch, ready } = monitorLauncher({ dir: ${JSON.stringify(dir)}, logPath: ${JSON.stringify(join(dir, 'json.log'))} });
await runtime.create(${JSON.stringify(id)}, { bundle: ${JSON.stringify(b.dir)}, launch });
const pid = await ready;
const conn = await MonitorConnection.connect(${JSON.stringify(dir)});
runtime.start(${JSON.stringify(id)});
process.stdout.write(String(pid) + '\\n');
conn.close();
`);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await withTimeout(new Promise<number | null>((r) => child.on('exit', (c) => r(c))), 30000, 'the creating process');
    assert.equal(code, 0, err);
    const monitorPid = Number(out.trim());
    b.trackPid(monitorPid);
    const runtime = new Runtime({ root: b.root });
    assert.equal(runtime.state(id).status, 'running');
    assert.ok(pidAlive(monitorPid));
    assert.equal(readExitRecord(dir), undefined);
    // The init's parent is the monitor (its subreaper), not init(1).
    const initPid = runtime.state(id).pid!;
    const ppid = Number(readFileSync(`/proc/${initPid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    assert.equal(ppid, monitorPid);
    // A client that attaches later (a restarted daemon) still gets the rest.
    const conn = await MonitorConnection.connect(dir);
    const got: Buffer[] = [];
    conn.onOutput((_s, d) => got.push(Buffer.from(d)));
    assert.equal(await withTimeout(conn.exited, 20000, 'the exit'), 7);
    assert.equal(Buffer.concat(got).toString(), 'finished\n');
    assert.equal(readExitRecord(dir)?.exitCode, 7);
    assert.deepEqual(logLines(join(dir, 'json.log')).map((l) => l.log), ['started\n', 'finished\n']);
    await waitFor('the monitor to exit', () => !pidAlive(monitorPid), 5000);
    runtime.delete(id, true);
  });
});

test('preserved fds pass through the monitor to the container at the same numbers', async () => {
  await withBundle({}, async (b) => {
    const id = b.newId('bm');
    const dir = join(b.base, 'pres');
    const extra = join(b.base, 'extra.txt');
    writeFileSync(extra, '');
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'echo via-fd-3 >&3; ls /proc/self/fd']; });
    // A process of its own whose fd 3 is the file: the runtime's --preserve-fds takes fds from there.
    const script = join(b.base, 'preserve.mts');
    writeFileSync(script, `
import { Runtime } from ${JSON.stringify(join(REPO_ROOT, 'src/runtime/container.ts'))};
import { MonitorConnection, monitorLauncher } from ${JSON.stringify(join(REPO_ROOT, 'src/engine/monitor.ts'))};
const runtime = new Runtime({ root: ${JSON.stringify(b.root)} });
const { launch, ready } = monitorLauncher({ dir: ${JSON.stringify(dir)} });
await runtime.create(${JSON.stringify(id)}, { bundle: ${JSON.stringify(b.dir)}, launch, preserveFds: 1 });
const pid = await ready;
const conn = await MonitorConnection.connect(${JSON.stringify(dir)});
let out = '';
conn.onOutput((_s, d) => { out += d.toString(); });
runtime.start(${JSON.stringify(id)});
const code = await conn.exited;
runtime.delete(${JSON.stringify(id)}, true);
process.stdout.write(JSON.stringify({ pid, code, out }));
`);
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(extra, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe', fd] });
    closeSync(fd);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    assert.equal(await withTimeout(new Promise<number | null>((r) => child.on('exit', (c) => r(c))), 30000, 'the helper'), 0, err);
    const r = JSON.parse(out) as { pid: number; code: number; out: string };
    b.trackPid(r.pid);
    assert.equal(r.code, 0);
    assert.equal(readFileSync(extra, 'utf8'), 'via-fd-3\n');
    assert.deepEqual(r.out.trim().split(/\s+/), ['0', '1', '2', '3', '4']);
    await waitFor('the monitor to exit', () => !pidAlive(r.pid), 5000);
  });
});

test('--hold: an exec\'d process starts once the first client is attached, and its output and exit reach it', async () => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sleep', '1000']);
    const dir = join(b.base, 'exec1');
    const { launch: launcher, ready } = monitorLauncher({ dir, hold: true, stdin: true });
    const execDone = execInContainer(s.runtime, s.id, { args: ['sh', '-c', 'echo exec-out; read x; echo "in:$x"; echo exec-err >&2; exit 5'], detach: true, launch: launcher });
    const pid = await ready;
    b.trackPid(pid);
    await sleep(300);
    // Nothing has run yet: the stage waits for a client.
    assert.equal(readExitRecord(dir), undefined);
    assert.ok(!readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim(), 'no child before attach');
    const conn = await MonitorConnection.connect(dir);
    const got: { stream: string; data: string }[] = [];
    conn.onOutput((stream, data) => got.push({ stream, data: data.toString() }));
    assert.equal(await withTimeout(execDone, 20000, 'exec'), 0);
    conn.writeStdin(Buffer.from('typed\n'));
    assert.equal(await withTimeout(conn.exited, 20000, 'the exec exit'), 5);
    assert.equal(got.filter((g) => g.stream === 'stdout').map((g) => g.data).join(''), 'exec-out\nin:typed\n');
    assert.equal(got.filter((g) => g.stream === 'stderr').map((g) => g.data).join(''), 'exec-err\n');
    assert.equal(readExitRecord(dir)?.exitCode, 5);
    await waitFor('the exec monitor to exit', () => !pidAlive(pid), 5000);
    // The container itself goes on.
    assert.equal(s.runtime.state(s.id).status, 'running');
    process.kill(s.runtime.state(s.id).pid!, 'SIGKILL');
    assert.equal(await finish(s), 137);
  });
});

test('--hold: the monitor gives up when Node hangs up before any client attached', async () => {
  await withBundle({}, async (b) => {
    const dir = join(b.base, 'hold2');
    const { launch: launcher, ready } = monitorLauncher({ dir, hold: true });
    const child = launcher('/bin/true', 3);
    const pid = await ready;
    b.trackPid(pid);
    (child.stdio[3] as import('node:net').Socket).destroy();
    await waitFor('the monitor to give up', () => !pidAlive(pid), 5000);
    assert.equal(readExitRecord(dir)?.exitCode, -1);
  });
});

test('start-up failure: ERROR rejects ready', async () => {
  await withBundle({}, async (b) => {
    const dir = join(b.base, 'x'.repeat(120));
    const { launch: launcher, ready } = monitorLauncher({ dir });
    launcher('/bin/true', 3);
    await assert.rejects(ready, /container monitor: socket path .*File name too long/);
  });
});

test('a create that fails leaves no monitor behind: the failure is recorded and it exits', async () => {
  await withBundle({}, async (b) => {
    const runtime = new Runtime({ root: b.root });
    const id = b.newId('bm');
    const dir = join(b.base, 'fail');
    b.writeConfig((s) => { s.process.args = ['/no/such/program']; });
    const { launch: launcher, ready } = monitorLauncher({ dir, logPath: join(dir, 'json.log') });
    await assert.rejects(runtime.create(id, { bundle: b.dir, launch: launcher }), /no\/such\/program/);
    const pid = await ready;
    b.trackPid(pid);
    await waitFor('the monitor to exit', () => !pidAlive(pid), 5000);
    const rec = readExitRecord(dir);
    assert.ok(rec && rec.exitCode !== 0, `exit record ${JSON.stringify(rec)}`);
    assert.ok(!existsSync(join(dir, 'attach.sock')));
  });
});

test('an idle monitor stays small (VmRSS)', async (t) => {
  await withBundle({}, async (b) => {
    const s = await launch(b, ['sh', '-c', 'echo hi; sleep 1000']);
    await waitFor('the output', () => s.text().includes('hi'), 10000);
    await sleep(200);
    const status = readFileSync(`/proc/${s.monitorPid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
    t.diagnostic(`berth-monitor VmRSS while idle: ${rss} kB`);
    assert.ok(rss < 1024, `VmRSS ${rss} kB`);
    process.kill(s.runtime.state(s.id).pid!, 'SIGKILL');
    assert.equal(await finish(s), 137);
  });
});
