// `berth -H <socket> <cmd>` against a real reference server (a private dockerd 20.10) must behave
// like `docker -H <socket> <cmd>`: the same output, errors and exit statuses for run (attached,
// -d, -i with piped stdin, -t through a pty, --rm, exit codes, 125/126/127), create + start -a,
// logs (-t, --tail, --since), exec, attach, stop, kill -s, wait, rm -f, and signal proxying.
// Each CLI works on its own containers (names prefixed "d-" / "b-"), so both see the same states.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, PrivateDockerd, privateDockerdSkip } from '../helpers/private-dockerd.ts';
import { buildBusyboxLayout, pushLayout, tempLayoutDir } from '../helpers/images.ts';
import { REGISTRY_BIN, startRegistry } from '../helpers/registry.ts';

const skip = privateDockerdSkip();
const haveBin = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const skipPull = skip || (!haveBin(REGISTRY_BIN) || !haveBin('skopeo') ? 'no docker-registry or skopeo for a local registry' : false);
const REPO = join(import.meta.dirname, '../..');
const BERTH = join(REPO, 'src/cli/berth.ts');

let d: PrivateDockerd;

before(async () => {
  if (skip) return;
  d = await PrivateDockerd.start();
  d.importBusybox();
});
after(async () => {
  await d?.stop();
});

interface Result { code: number; stdout: string; stderr: string }
type Cli = 'docker' | 'berth';
const CLIS: Cli[] = ['docker', 'berth'];

function argv(cli: Cli, args: string[]): string[] {
  return cli === 'docker' ? [DOCKER_BIN, '-H', d.host, ...args] : [process.execPath, '--import', 'tsx', BERTH, '-H', d.host, ...args];
}

const shq = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/** Runs one CLI; `input` is piped to stdin (closed after), `signal` is sent after `signalAfterMs`, `pty` runs it under script(1). */
function cli(which: Cli, args: string[], opts: { input?: string; inputDelayMs?: number; signal?: NodeJS.Signals; signalAfterMs?: number; pty?: boolean; ptyPrefix?: string } = {}): Promise<Result> {
  let cmd = argv(which, args);
  if (opts.pty) cmd = ['script', '-qec', (opts.ptyPrefix ?? '') + cmd.map(shq).join(' '), '/dev/null'];
  return new Promise((resolve) => {
    const child = spawn(cmd[0], cmd.slice(1), { cwd: REPO, env: { ...process.env, DOCKER_CONFIG: join(d.work, 'cli'), BERTH_AUTOSTART: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    if (opts.signal) setTimeout(() => child.kill(opts.signal), opts.signalAfterMs ?? 1000);
    const feed = (): void => {
      if (opts.input !== undefined) child.stdin.end(opts.input);
      else if (!opts.pty) child.stdin.end();
    };
    if (opts.inputDelayMs) setTimeout(feed, opts.inputDelayMs); else feed();
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}

/** docker's words with "docker" → "berth" (the CLI's own name in usage and error lines). */
const asBerth = (s: string): string => s.replace(/\bdocker\b/g, 'berth');

async function same(args: (cli: Cli) => string[], opts: Parameters<typeof cli>[2] = {}, norm: (s: string, c: Cli) => string = (s) => s): Promise<Result[]> {
  const [a, b] = await Promise.all(CLIS.map((c) => cli(c, args(c), opts)));
  const what = args('berth').join(' ');
  // each CLI's own containers
  const names = (s: string): string => s.replace(/\b[db]-(?=[a-z])/g, 'N-').replace(/\b[0-9a-f]{64}\b/g, '<id>');
  const norm0 = norm;
  norm = (s, c) => names(norm0(s, c));
  assert.equal(norm(b.stdout, 'berth'), norm(a.stdout, 'docker'), `stdout of ${what}\n--- docker stderr: ${a.stderr}\n--- berth stderr: ${b.stderr}`);
  assert.equal(norm(b.stderr, 'berth'), asBerth(norm(a.stderr, 'docker')), `stderr of ${what}`);
  assert.equal(b.code, a.code, `exit status of ${what}\n--- docker: ${a.stderr}\n--- berth: ${b.stderr}`);
  return [a, b];
}

const pfx = (c: Cli): string => (c === 'docker' ? 'd-' : 'b-');

test('run --rm: output, stderr and exit status', { skip, timeout: 300_000 }, async () => {
  const [a] = await same(() => ['run', '--rm', 'busybox', 'echo', 'hi']);
  assert.equal(a.stdout, 'hi\n');
  await same(() => ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  await same(() => ['container', 'run', '--rm', '-e', 'X=1', '-w', '/tmp', '-u', '1:2', '--entrypoint', 'sh', 'busybox', '-c', 'echo $X $(pwd) $(id -u):$(id -g); exit 130']);
  await same(() => ['run', '--rm', '-a', 'stderr', 'busybox', 'sh', '-c', 'echo out; echo err >&2']);
});

test('run -i with stdin piped; -t and -it through a pty', { skip, timeout: 300_000 }, async () => {
  const [a] = await same(() => ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'hello\nworld\n' });
  assert.equal(a.stdout, 'hello\nworld\ndone\n');
  // stdin not attached: EOF at once for the container
  await same(() => ['run', '--rm', 'busybox', 'cat'], { input: 'ignored\n' });
  await same(() => ['run', '--rm', '-t', 'busybox', 'sh', '-c', 'tty; echo $TERM; exit 6'], { pty: true });
  await same(() => ['run', '--rm', '-it', 'busybox', 'sh'], { pty: true, input: 'echo hi-$((1+2))\nexit 5\n', inputDelayMs: 3000 });
  // the terminal's size, and its change (the kernel's SIGWINCH → POST /containers/{id}/resize)
  const [r] = await same(() => ['run', '--rm', '-it', 'busybox', 'sh', '-c', 'sleep 1; stty size; sleep 6; stty size'],
    { pty: true, ptyPrefix: 'stty rows 30 cols 100; (sleep 5; stty rows 40 cols 120 </dev/tty) & ' });
  assert.match(r.stdout, /40 120\r\n$/);
  // -t with stdin that is not a terminal
  await same(() => ['run', '--rm', '-it', 'busybox', 'true']);
});

test('run: errors and their exit statuses (125, 126, 127)', { skip, timeout: 300_000 }, async () => {
  await same(() => ['run', '--rm', '--pull', 'never', 'nosuchimage']);
  await same(() => ['run', '--rm', 'busybox', 'nosuchcmd']);
  await same(() => ['run', '--rm', 'busybox', '/etc']);
  await same(() => ['run', '--rm', '--restart', 'always', 'busybox']);
  await same(() => ['run', '-d', '-a', 'stdout', 'busybox']);
  await same(() => ['create', '--pull', 'never', 'nosuchimage']);
  await same(() => ['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']);
});

test('run -d prints the id; logs with -t, --tail, --since; exec; stop; wait; rm', { skip, timeout: 300_000 }, async () => {
  const ids: Record<Cli, string> = { docker: '', berth: '' };
  for (const c of CLIS) {
    const r = await cli(c, ['run', '-d', '--name', `${pfx(c)}logs`, 'busybox', 'sh', '-c', 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; sleep 1000']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    ids[c] = r.stdout.trim();
  }
  await new Promise((r) => setTimeout(r, 1000));
  const noTs = (s: string): string => s.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /gm, 'TS ');
  const [a] = await same((c) => ['logs', `${pfx(c)}logs`]);
  assert.equal(a.stdout, 'one\nthree\n');
  assert.equal(a.stderr, 'two\n');
  const [t] = await same((c) => ['logs', '-t', `${pfx(c)}logs`], {}, noTs);
  assert.match(t.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z one\n/);
  await same((c) => ['logs', '--tail', '1', `${pfx(c)}logs`]);
  await same((c) => ['container', 'logs', '-n', '2', `${pfx(c)}logs`]);
  await same((c) => ['logs', '--since', '2099-01-01T00:00:00Z', `${pfx(c)}logs`]);
  await same((c) => ['logs', '--since', '1h', '--until', '1s', `${pfx(c)}logs`]);
  await same((c) => ['logs', 'nosuch']);
  await same((c) => ['logs', '--since', 'foo', `${pfx(c)}logs`]);
  await same((c) => ['logs', '--details', `${pfx(c)}logs`]);

  // exec
  await same((c) => ['exec', `${pfx(c)}logs`, 'sh', '-c', 'echo in exec; echo e >&2; exit 4']);
  await same((c) => ['exec', '-e', 'A=1', '-w', '/tmp', '-u', '1000', `${pfx(c)}logs`, 'sh', '-c', 'echo $A $(pwd) $(id -u)']);
  await same((c) => ['exec', '-i', `${pfx(c)}logs`, 'cat'], { input: 'via exec\n' });
  await same((c) => ['exec', '-t', `${pfx(c)}logs`, 'sh', '-c', 'tty; exit 2'], { pty: true });
  await same((c) => ['exec', '-d', `${pfx(c)}logs`, 'sleep', '1']);
  await same((c) => ['exec', `${pfx(c)}logs`, 'nosuchcmd']);
  await same(() => ['exec', 'nosuch', 'true']);

  // stop (sh ignores TERM as PID 1: killed after the timeout) and wait
  await same((c) => ['stop', '-t', '1', `${pfx(c)}logs`]);
  const [w] = await same((c) => ['wait', `${pfx(c)}logs`]);
  assert.equal(w.stdout, '137\n');
  await same((c) => ['rm', `${pfx(c)}logs`, 'nosuch']);
  await same(() => ['rm', '-f', 'nosuch']);
  await same(() => ['stop', 'nosuch']);
  await same(() => ['wait', 'nosuch']);
});

test('kill -s, restart, rm -f of a running container', { skip, timeout: 300_000 }, async () => {
  for (const c of CLIS) {
    const r = await cli(c, ['run', '-d', '--name', `${pfx(c)}trap`, 'busybox', 'sh', '-c', 'trap "echo got USR1; exit 7" USR1; while true; do sleep 0.1; done']);
    assert.equal(r.code, 0, r.stderr);
  }
  await new Promise((r) => setTimeout(r, 500));
  await same((c) => ['kill', '-s', 'USR1', `${pfx(c)}trap`]);
  const [w] = await same((c) => ['container', 'wait', `${pfx(c)}trap`]);
  assert.equal(w.stdout, '7\n');
  await same((c) => ['logs', `${pfx(c)}trap`]);
  await same((c) => ['kill', `${pfx(c)}trap`]);
  await same((c) => ['restart', '-t', '0', `${pfx(c)}trap`]);
  await same((c) => ['rm', `${pfx(c)}trap`]);
  await same((c) => ['rm', '-f', `${pfx(c)}trap`]);
  await same(() => ['kill', '-s', 'NOSUCHSIG', 'nosuch']);
});

test('create + start -a; start -ai; attach; signal proxying', { skip, timeout: 300_000 }, async () => {
  for (const c of CLIS) {
    const r = await cli(c, ['create', '--name', `${pfx(c)}created`, 'busybox', 'sh', '-c', 'echo started; echo e >&2; exit 2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
  }
  await same((c) => ['start', '-a', `${pfx(c)}created`]);
  await same((c) => ['start', `${pfx(c)}created`, 'nosuch']);
  await same((c) => ['rm', '-f', `${pfx(c)}created`]);

  for (const c of CLIS) {
    const r = await cli(c, ['create', '-i', '--name', `${pfx(c)}cat`, 'busybox', 'sh', '-c', 'read x; echo got $x']);
    assert.equal(r.code, 0, r.stderr);
  }
  await same((c) => ['start', '-ai', `${pfx(c)}cat`], { input: 'line\n' });

  // attach: the daemon ends the output when the client's stdin ends (the container was not
  // started with stdin-once), so the late echo is not seen, but the exit status is
  for (const c of CLIS) {
    const r = await cli(c, ['run', '-d', '-i', '--name', `${pfx(c)}att`, 'busybox', 'sh', '-c', 'read x; sleep 1; echo got $x; exit 3']);
    assert.equal(r.code, 0, r.stderr);
  }
  await same((c) => ['attach', `${pfx(c)}att`], { input: 'via attach\n' });
  await same((c) => ['attach', `${pfx(c)}att`]);
  for (const c of CLIS) {
    const r = await cli(c, ['run', '-d', '--name', `${pfx(c)}late`, 'busybox', 'sh', '-c', 'sleep 3; echo late; echo err >&2; exit 4']);
    assert.equal(r.code, 0, r.stderr);
  }
  await same((c) => ['attach', '--no-stdin', `${pfx(c)}late`]);
  // a tty container, attached through a pty: typed input, its echo, the exit status
  for (const c of CLIS) {
    const r = await cli(c, ['run', '-dit', '--name', `${pfx(c)}ttyatt`, 'busybox', 'sh', '-c', 'read x; echo got $x; exit 3']);
    assert.equal(r.code, 0, r.stderr);
  }
  await same((c) => ['attach', `${pfx(c)}ttyatt`], { pty: true, input: 'typed\r', inputDelayMs: 3000 });
  await same((c) => ['rm', '-f', `${pfx(c)}ttyatt`]);
  await same((c) => ['rm', '-f', `${pfx(c)}att`, `${pfx(c)}cat`, `${pfx(c)}late`]);

  // the CLI's SIGTERM reaches the container, whose exit status becomes the CLI's
  await same((c) => ['run', '--rm', '--name', `${pfx(c)}sig`, 'busybox', 'sh', '-c', 'trap "echo term; exit 9" TERM; while true; do sleep 0.1; done'],
    { signal: 'SIGTERM', signalAfterMs: 6000 });
});

test('run pulls a missing image ("Unable to find image … locally", progress on stderr); --pull always/never; -q', { skip: skipPull, timeout: 300_000 }, async () => {
  const reg = await startRegistry();
  const layout = buildBusyboxLayout(tempLayoutDir());
  try {
    await pushLayout(layout, reg.host, 'library/pulled:latest');
    const image = `${reg.host}/library/pulled`;
    // What depends on timing is dropped (intermediate progress), and what depends on the daemon's
    // memory of earlier pulls ("Already exists" once it has seen the layer's digest).
    const progress = (s: string): string => s.split('\n')
      .filter((l) => !/: (Downloading|Verifying Checksum|Download complete|Extracting|Waiting|Pulling fs layer)\b/.test(l))
      .map((l) => l.replace(/: Already exists$/, ': Pull complete'))
      .join('\n');
    for (const args of [['run', '--rm', image, 'echo', 'pulled'], ['run', '--rm', '--pull', 'always', image, 'true'], ['run', '--rm', '-q', '--pull', 'always', image, 'true']]) {
      const out: Result[] = [];
      for (const c of CLIS) {
        // each CLI starts from the same state: the image absent (or present, for --pull always)
        if (args[2] !== '--pull') d.docker(['rmi', '-f', image]);
        out.push(await cli(c, args));
      }
      const [a, b] = out;
      assert.equal(b.stdout, a.stdout, `stdout of ${args.join(' ')}`);
      assert.equal(progress(b.stderr), progress(a.stderr), `stderr of ${args.join(' ')}`);
      assert.equal(b.code, a.code);
    }
    const [first] = [await cli('berth', ['run', '--rm', '--pull', 'missing', image, 'true'])];
    assert.equal(first.stderr, '');
  } finally {
    await reg.stop();
    rmSync(layout.dir, { recursive: true, force: true });
  }
});

test('detach keys (ctrl-p ctrl-q, --detach-keys) leave the container running; logs -f follows to the end; --cidfile', { skip, timeout: 300_000 }, async () => {
  await same((c) => ['run', '-it', '--name', `${pfx(c)}det`, 'busybox', 'cat'], { pty: true, input: 'abc\x10\x11', inputDelayMs: 4000 });
  await same((c) => ['run', '-it', '--detach-keys', 'ctrl-x,x', '--name', `${pfx(c)}det2`, 'busybox', 'cat'], { pty: true, input: '\x18x', inputDelayMs: 4000 });
  for (const c of CLIS) {
    for (const n of ['det', 'det2']) assert.equal(d.docker(['inspect', '-f', '{{.State.Running}}', `${pfx(c)}${n}`]).stdout, 'true\n', `${c}: ${n} still running`);
  }
  await same((c) => ['rm', '-f', `${pfx(c)}det`, `${pfx(c)}det2`]);

  for (const c of CLIS) assert.equal((await cli(c, ['run', '-d', '--name', `${pfx(c)}follow`, 'busybox', 'sh', '-c', 'echo a; sleep 2; echo b >&2; sleep 1; echo c'])).code, 0);
  const [f] = await same((c) => ['logs', '-f', `${pfx(c)}follow`]);
  assert.equal(f.stdout, 'a\nc\n');

  const dir = mkdtempSync('/tmp/berth-cid-');
  try {
    await same((c) => ['run', '--rm', '--cidfile', join(dir, `${c}.cid`), 'busybox', 'true']);
    for (const c of CLIS) assert.match(readFileSync(join(dir, `${c}.cid`), 'utf8'), /^[0-9a-f]{64}$/);
    await same((c) => ['run', '--rm', '--cidfile', join(dir, `${c}.cid`), 'busybox', 'true'], {}, (s) => s.replace(/\/tmp\/berth-cid-\w+\/\w+\.cid/, 'CIDFILE'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await same((c) => ['rm', '-f', `${pfx(c)}follow`]);
});
