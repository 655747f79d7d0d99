// process.terminal with --console-socket: the pty master is handed over (received by a small
// Python program, since Node cannot receive SCM_RIGHTS), consoleSize, /dev/console, I/O.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PYTHON, REPO_ROOT, explain, waitFor, withBundle, type Bundle } from '../helpers/bundle.ts';

const RECEIVER = join(REPO_ROOT, 'test', 'helpers', 'console-receiver.py');

interface Receiver {
  socket: string;
  outFile: string;
  /** Resolves with the receiver's exit code once the container's pty has hung up. */
  done: Promise<number | null>;
  events(): string;
  kill(): void;
}

async function startReceiver(b: Bundle, extra: string[] = []): Promise<Receiver> {
  const dir = b.scratch('console');
  const socket = join(dir, `c-${Math.random().toString(36).slice(2, 8)}.sock`);
  const outFile = join(dir, 'out');
  let events = '';
  const child = spawn(PYTHON, [RECEIVER, socket, outFile, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => { events += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { events += d.toString(); });
  const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitFor('the console receiver to listen', () => events.includes('listening') || child.exitCode !== null, 10000);
  assert.ok(events.includes('listening'), `receiver failed: ${events}`);
  return { socket, outFile, done, events: () => events, kill: () => child.kill('SIGKILL') };
}

/** Creates and starts a terminal container; returns what it wrote to the pty (CRLF → LF). */
async function runWithTerminal(b: Bundle, script: string, receiverArgs: string[] = [], consoleSize?: { height: number; width: number }, user?: { uid: number; gid: number }): Promise<string> {
  b.writeConfig((s) => {
    s.process.terminal = true;
    s.process.args = ['sh', '-c', script];
    if (consoleSize) s.process.consoleSize = consoleSize;
    if (user) s.process.user = user;
  });
  const rx = await startReceiver(b, receiverArgs);
  try {
    const id = b.newId();
    const c = await b.create(id, ['--console-socket', rx.socket]);
    assert.equal(c.code, 0, explain(c));
    await waitFor('the pty master to arrive', () => rx.events().includes('got-fd'), 5000);
    const s = await b.start(id);
    assert.equal(s.code, 0, explain(s));
    const code = await Promise.race([rx.done, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15000))]);
    assert.equal(code, 0, `receiver: ${rx.events()}`);
    await waitFor('the container to stop', async () => (await b.state(id)).status === 'stopped');
    assert.equal((await b.delete(id)).code, 0);
    return existsSync(rx.outFile) ? readFileSync(rx.outFile, 'utf8').replace(/\r\n/g, '\n') : '';
  } finally {
    rx.kill();
  }
}

test('terminal: stdio is a pty, consoleSize sets the window size, /dev/console is the pty', async () => {
  await withBundle({}, async (b) => {
    const out = await runWithTerminal(b, [
      'stty size',
      'tty',
      '[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo ALL-TTY',
      '[ "$(stat -c %t:%T /dev/console)" = "$(stat -c %t:%T $(tty))" ] && echo CONSOLE-IS-PTY',
      'echo "TERM=$TERM"',
    ].join('; '), [], { height: 37, width: 123 });
    const lines = out.trim().split('\n');
    assert.deepEqual(lines, ['37 123', '/dev/pts/0', 'ALL-TTY', 'CONSOLE-IS-PTY', 'TERM=xterm'], out);
  });
});

test('terminal: input written to the master reaches the process, resizes are seen', async () => {
  await withBundle({}, async (b) => {
    const out = await runWithTerminal(b, [
      'echo WAITING',
      'read line',
      'echo "got:$line"',
      'i=0; while [ "$(stty size)" != "50 160" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
      'echo "size:$(stty size)"',
    ].join('; '), ['--on', 'WAITING', '--winsize', '50', '160', '--send', 'hello pty\\n']);
    assert.match(out, /^got:hello pty$/m, out);
    assert.match(out, /^size:50 160$/m, out);
  });
});

test('terminal for a non-root user: the pty belongs to the user, who can reopen it', async () => {
  await withBundle({}, async (b) => {
    const out = await runWithTerminal(b, [
      'id -u',
      'stat -L -c %u /proc/self/fd/0',
      'echo reopened > "$(tty)" && echo REOPEN-OK',
    ].join('; '), [], undefined, { uid: 1000, gid: 1000 });
    assert.deepEqual(out.trim().split('\n'), ['1000', '1000', 'reopened', 'REOPEN-OK'], out);
  });
});

test('terminal without --console-socket on create fails', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.terminal = true; s.process.args = ['true']; });
    const id = b.newId();
    const r = await b.create(id);
    assert.notEqual(r.code, 0, explain(r));
    assert.ok(r.stderr.trim().length > 0);
    assert.notEqual((await b.run(['state', id])).code, 0, 'no container is left behind');
  });
});
