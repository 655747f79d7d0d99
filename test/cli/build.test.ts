// `berth build` against `berth daemon`: the step view with timings and CACHED, -t, -q,
// --iidfile, -f - (Dockerfile on stdin), `-` (a tar context on stdin), .dockerignore applied by
// the client, failures (exit status 1, the daemon's message naming the line); and the renderer
// over recorded classic streams.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BuildRenderer } from '../../src/cli/commands/build.ts';
import { StreamError } from '../../src/cli/format/progress.ts';
import { importBusybox } from '../helpers/containers.ts';
import { TestDaemon, type RunResult } from '../helpers/daemon.ts';

describe('BuildRenderer', () => {
  const render = (messages: object[]): string => {
    let out = '';
    let t = 0;
    const r = new BuildRenderer((s) => { out += s; }, () => (t += 250));
    for (const m of messages) r.message(m);
    r.finish();
    return out;
  };

  test('steps, output lines, CACHED and DONE with timings, the final image and names', () => {
    const out = render([
      { stream: 'Step 1/3 : FROM busybox\n' }, { stream: ' ---> 0123456789ab\n' },
      { stream: 'Step 2/3 : RUN echo hi' }, { stream: '\n' }, { stream: ' ---> Running in abcdefabcdef\n' },
      { stream: 'hi\npartial ' }, { stream: 'line\n' }, { stream: 'Removing intermediate container abcdefabcdef\n' }, { stream: ' ---> 1111111111aa\n' },
      { stream: 'Step 3/3 : ENV A=1\n' }, { stream: ' ---> Using cache\n' }, { stream: ' ---> 2222222222bb\n' },
      { aux: { ID: 'sha256:2222222222bb' } }, { stream: 'Successfully built 2222222222bb\n' }, { stream: 'Successfully tagged foo:latest\n' },
    ]);
    assert.equal(out, [
      '#1 [1/3] FROM busybox', '#1 DONE 0.3s',
      '#2 [2/3] RUN echo hi', '#2 hi', '#2 partial line', '#2 DONE 0.3s',
      '#3 [3/3] ENV A=1', '#3 CACHED',
      '#4 writing image sha256:2222222222bb done', '#4 naming to docker.io/library/foo:latest done', '',
    ].join('\n'));
  });

  test('an error line ends the step with ERROR and throws the message', () => {
    let out = '';
    const r = new BuildRenderer((s) => { out += s; });
    r.message({ stream: 'Step 1/2 : RUN exit 3\n' });
    assert.throws(() => r.message({ errorDetail: { message: 'Dockerfile:2: boom' }, error: 'Dockerfile:2: boom' }), (e: unknown) => e instanceof StreamError && e.message === 'Dockerfile:2: boom');
    assert.match(out, /#1 ERROR\n$/);
  });
});

describe('berth build', () => {
  let d: TestDaemon;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-cli-build-'));
    d = await TestDaemon.start();
    await importBusybox(d, work);
  });
  after(async () => {
    await d?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });
  const explain = (r: RunResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

  test('step view, cache on the second run, -t, --iidfile, -q, .dockerignore', async () => {
    const dir = join(work, 'ctx');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY . /ctx\nRUN ls /ctx\n');
    writeFileSync(join(dir, 'kept.txt'), 'k\n');
    writeFileSync(join(dir, 'ignored.log'), 'i\n');
    writeFileSync(join(dir, '.dockerignore'), '*.log\n');
    const iid = join(work, 'iid');
    const r1 = await d.berth(['build', '-t', 'clibuild:1', '--iidfile', iid, dir], { timeoutMs: 120_000 });
    assert.equal(r1.code, 0, explain(r1));
    assert.match(r1.stdout, /^#1 \[1\/3\] FROM busybox$/m);
    assert.match(r1.stdout, /^#3 Dockerfile$/m);
    assert.match(r1.stdout, /^#3 kept\.txt$/m);
    assert.doesNotMatch(r1.stdout, /ignored\.log/);
    assert.match(r1.stdout, /^#3 DONE \d+\.\ds$/m);
    assert.match(r1.stdout, /naming to docker\.io\/library\/clibuild:1 done/);
    const id = readFileSync(iid, 'utf8');
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const r2 = await d.berth(['build', '-t', 'clibuild:1', dir], { timeoutMs: 120_000 });
    assert.equal(r2.code, 0, explain(r2));
    assert.match(r2.stdout, /^#2 CACHED$/m);
    assert.match(r2.stdout, /^#3 CACHED$/m);
    const q = await d.berth(['build', '-q', dir], { timeoutMs: 120_000 });
    assert.equal(q.stdout, `${id}\n`);
  });

  test('-f - and a tar context on stdin', async () => {
    const dir = join(work, 'ctx2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'data'), 'payload\n');
    const r = await d.berth(['build', '-f', '-', '-t', 'stdin-df', dir], { input: 'FROM busybox\nCOPY data /data\nRUN cat /data\n', timeoutMs: 120_000 });
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /#3 payload/);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY data /d2\nRUN cat /d2\n');
    const tarFile = join(work, 'ctx.tar');
    assert.equal(spawnSync('tar', ['-cf', tarFile, '-C', dir, '.']).status, 0);
    const res = spawnSync(process.execPath, [process.env.BERTH_BIN ?? join(import.meta.dirname, '..', '..', 'dist', 'berth.cjs'), '-H', d.host, 'build', '-t', 'tar-ctx', '-'], {
      input: readFileSync(tarFile), encoding: 'utf8', env: { ...process.env, BERTH_AUTOSTART: '0' }, timeout: 120_000,
    });
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /#3 payload/);
  });

  test('a failing build exits 1 with the daemon\'s message naming the line', async () => {
    const dir = join(work, 'ctx3');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo about to fail; exit 7\n');
    const r = await d.berth(['build', '-t', 'never', dir], { timeoutMs: 120_000 });
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /Dockerfile:2: The command .* returned a non-zero code: 7/);
    assert.match(r.stdout, /#2 about to fail/);
    assert.match(r.stdout, /#2 ERROR/);
    const inspect = await d.berth(['image', 'inspect', 'never']);
    assert.notEqual(inspect.code, 0);
  });
});
