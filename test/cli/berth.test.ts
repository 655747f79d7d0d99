// The `berth` CLI: version/info/events against a daemon, host selection, and auto-starting the
// daemon when its socket is absent.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BERTH_BIN, checkBundleFresh, run, stopDaemonByPidFile, TestDaemon, type RunResult } from '../helpers/daemon.ts';

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('against a running daemon', () => {
  let d: TestDaemon;
  before(async () => { d = await TestDaemon.start(); });
  after(async () => { await d?.cleanup(); });

  test('berth version: client and server sections', async () => {
    const r = await d.berth(['version']);
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Client: Berth\n Version:\s+\d+\.\d+\.\d+\n API version:\s+1\.47\n/);
    assert.match(r.stdout, new RegExp(`^ Host:\\s+${d.host}$`, 'm'));
    assert.match(r.stdout, /^Server: Berth\n Engine:\n {2}Version:\s+\d+\.\d+\.\d+\n {2}API version:\s+1\.47 \(minimum version 1\.24\)$/m);
    const f = await d.berth(['version', '--format', '{{.Server.ApiVersion}} {{.Client.ApiVersion}}']);
    assert.equal(f.stdout, '1.47 1.47\n');
    const j = await d.berth(['version', '--format', 'json']);
    assert.equal(JSON.parse(j.stdout).Server.MinAPIVersion, '1.24');
  });

  test('berth info: the server\'s facts, --format', async () => {
    const r = await d.berth(['info']);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /^Server:\n Containers: 0\n {2}Running: 0\n/m);
    assert.match(r.stdout, new RegExp(`^ CPUs: ${availableParallelism()}$`, 'm'));
    assert.match(r.stdout, /^ Default Runtime: berth$/m);
    assert.match(r.stdout, new RegExp(`^ Berth Root Dir: ${d.dataRoot}$`, 'm'));
    const f = await d.berth(['system', 'info', '--format', '{{.OSType}}/{{.Driver}} {{.ClientInfo.Host}}']);
    assert.match(f.stdout, new RegExp(`^linux/(overlay2|vfs) ${d.host}\n$`));
  });

  test('berth events: replay with --since/--until, filters, formats', async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    d.signal('SIGHUP');
    for (let i = 0; i < 200 && !d.log().includes('Reloaded configuration'); i++) await new Promise((r) => setTimeout(r, 10));
    const until = String(Math.floor(Date.now() / 1000) + 1);
    let r = await d.berth(['events', '--since', since, '--until', until]);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) daemon reload [\w-]+ \(debug=false, /m);
    r = await d.berth(['events', '--since', since, '--until', until, '--filter', 'type=container']);
    assert.equal(r.stdout, '');
    r = await d.berth(['system', 'events', '--since', '1m', '--until', until, '--format', 'json']);
    const ev = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(ev.Action, 'reload');
    assert.match(r.stdout, /"timeNano":\d{19}\}/, 'nanoseconds kept exactly');
    r = await d.berth(['events', '--since', since, '--until', until, '--format', '{{.Bogus}}']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /^Error parsing format: .*can't evaluate field Bogus in type events\.Message/);
  });

  test('BERTH_HOST selects the daemon; DOCKER_HOST is ignored', async () => {
    const empty = mkdtempSync('/tmp/berth-cli-');
    try {
      let r = await run(process.execPath, [BERTH_BIN, 'version', '--format', '{{.Server.Version}}'], { env: { ...process.env, BERTH_HOST: d.host, BERTH_AUTOSTART: '0' } });
      assert.equal(r.code, 0, explain(r));
      r = await run(process.execPath, [BERTH_BIN, '--exec-root', empty, 'info'], { env: { ...process.env, BERTH_HOST: '', DOCKER_HOST: d.host, BERTH_AUTOSTART: '0' } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`Cannot connect to the Berth daemon at unix://${empty}/berth.sock\\. Is the berth daemon running\\?`));
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('daemon errors are printed as docker prints them', async () => {
    const r = await d.berth(['events', '--since', '10', '--until', '5']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error response from daemon: `since` time (10) cannot be after `until` time (5)\n');
  });
});

test('usage errors exit 125; -v prints the version', async () => {
  checkBundleFresh();
  let r = await run(process.execPath, [BERTH_BIN, 'version', '--bogus']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /unknown option '--bogus'/);
  r = await run(process.execPath, [BERTH_BIN, 'nope']);
  assert.equal(r.code, 125);
  r = await run(process.execPath, [BERTH_BIN, '-v']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Berth version \d+\.\d+\.\d+, build \w+\n$/);
  r = await run(process.execPath, [BERTH_BIN, '-H', 'tcp://127.0.0.1:2375', 'version']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unsupported host "tcp:\/\/127\.0\.0\.1:2375": berth connects to unix sockets only/);
});

describe('auto-start', () => {
  test('a missing socket starts `berth daemon` in the background, in its own session; later commands reuse it', async () => {
    checkBundleFresh();
    const dir = mkdtempSync('/tmp/berth-auto-');
    const execRoot = join(dir, 'run');
    const cfg = join(dir, 'daemon.json');
    writeFileSync(cfg, '{}');
    const args = ['--exec-root', execRoot, '--data-root', join(dir, 'data'), '--config-file', cfg];
    const env = { ...process.env, BERTH_HOST: '' };
    try {
      let r = await run(process.execPath, [BERTH_BIN, ...args, 'version'], { env });
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /^Server: Berth$/m);
      assert.ok(existsSync(join(execRoot, 'berth.sock')));
      const pid = Number(readFileSync(join(execRoot, 'berth.pid'), 'utf8'));
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      assert.equal(Number(fields[3]), pid, 'the daemon leads its own session (setsid)');
      assert.match(readFileSync(join(execRoot, 'berth-daemon.log'), 'utf8'), /Daemon has completed initialization/);
      r = await run(process.execPath, [BERTH_BIN, ...args, 'info', '--format', '{{.DockerRootDir}}'], { env });
      assert.equal(r.stdout, `${join(dir, 'data')}\n`);
      assert.equal(Number(readFileSync(join(execRoot, 'berth.pid'), 'utf8')), pid, 'the same daemon serves');
    } finally {
      await stopDaemonByPidFile(execRoot);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('two commands racing to start the daemon both succeed with one daemon', async () => {
    const dir = mkdtempSync('/tmp/berth-race-');
    const execRoot = join(dir, 'run');
    writeFileSync(join(dir, 'daemon.json'), '{}');
    const args = ['--exec-root', execRoot, '--data-root', join(dir, 'data'), '--config-file', join(dir, 'daemon.json')];
    try {
      const rs = await Promise.all([0, 1, 2].map(() => run(process.execPath, [BERTH_BIN, ...args, 'version', '--format', '{{.Server.Version}}'], { env: { ...process.env, BERTH_HOST: '' } })));
      for (const r of rs) assert.equal(r.code, 0, explain(r));
      const log = readFileSync(join(execRoot, 'berth-daemon.log'), 'utf8');
      assert.equal(log.split('Daemon has completed initialization').length - 1, 1, log);
    } finally {
      await stopDaemonByPidFile(execRoot);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a daemon that cannot start: the error shows its log', async () => {
    const dir = mkdtempSync('/tmp/berth-autofail-');
    const cfg = join(dir, 'daemon.json');
    writeFileSync(cfg, '{"log-driver": "journald"}');
    try {
      const r = await run(process.execPath, [BERTH_BIN, '--exec-root', join(dir, 'run'), '--data-root', join(dir, 'data'), '--config-file', cfg, 'info'], { env: { ...process.env, BERTH_HOST: '' } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /could not start the Berth daemon for unix:\/\/.*\/run\/berth\.sock: it exited with status 1\. Log \(.*berth-daemon\.log\):\nberth daemon: failed to start: the following directives in .* are not supported by Berth: log-driver/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('BERTH_AUTOSTART=0: no daemon is started', async () => {
    const dir = mkdtempSync('/tmp/berth-noauto-');
    try {
      const r = await run(process.execPath, [BERTH_BIN, '--exec-root', dir, 'version'], { env: { ...process.env, BERTH_HOST: '', BERTH_AUTOSTART: '0' } });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^Client: Berth$/m, 'the client section still prints');
      assert.match(r.stderr, /Cannot connect to the Berth daemon/);
      assert.ok(!existsSync(join(dir, 'berth.pid')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
