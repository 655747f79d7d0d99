// The real docker CLI's classic builder (DOCKER_BUILDKIT=0) against `berth daemon`: every
// instruction, -t (several), --build-arg (and the unused warning), --target, -f inside and
// outside the context and from stdin, .dockerignore, the cache (hits, content keys, --no-cache),
// --label, --iidfile, -q, and bad Dockerfiles that fail naming the line and tag nothing.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { importBusybox } from '../helpers/containers.ts';
import { buildBusyboxLayout, pushLayout, tempLayoutDir } from '../helpers/images.ts';
import { startRegistry } from '../helpers/registry.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-build-'));
  d = await TestDaemon.start();
  await importBusybox(d, work);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const CLASSIC = { DOCKER_BUILDKIT: '0' };
async function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return d.docker(args, { timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input, env: CLASSIC });
}
async function ok(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${explain(r)}\n${d.log().slice(-3000)}`);
  return r.stdout;
}

let ctxCount = 0;
/** A fresh context directory with these files (a string value is the content; mode via [content, mode]). */
function context(files: Record<string, string | [string, number]>): string {
  const dir = join(work, `ctx${++ctxCount}`);
  mkdirSync(dir);
  for (const [name, v] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    const [content, mode] = typeof v === 'string' ? [v, 0o644] : v;
    writeFileSync(path, content);
    chmodSync(path, mode);
  }
  return dir;
}

async function inspect(name: string): Promise<{ Id: string; Config: Record<string, unknown>; RootFS: { Layers: string[] } }> {
  return JSON.parse(await ok(['image', 'inspect', name]))[0];
}
async function runIn(image: string, script: string): Promise<string> {
  return ok(['run', '--rm', '--network', 'none', image, 'sh', '-c', script]);
}

test('docker build: every metadata instruction lands in the image config', { skip }, async () => {
  const dir = context({
    Dockerfile: [
      'FROM busybox',
      'MAINTAINER someone@example.com',
      'LABEL org.example.a="one" b=two',
      'ENV A=1 B="two words"',
      'ENV C $A-${B:-x}-${UNSET:-dflt}',
      'EXPOSE 80 53/udp 8000-8001',
      'USER 1000:1000',
      'WORKDIR /srv',
      'WORKDIR app',
      'VOLUME ["/data", "/cache"]',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD echo ok',
      'SHELL ["/bin/sh", "-ec"]',
      'ONBUILD RUN echo triggered > /tmp/onbuild',
      'ENTRYPOINT ["/bin/echo"]',
      'CMD ["hello"]',
      '',
    ].join('\n'),
  });
  const out = await ok(['build', '-t', 'meta:1', '-t', 'meta:2', dir]);
  assert.match(out, /Step 1\/16 : FROM busybox/);
  assert.match(out, /Successfully built [0-9a-f]{12}/);
  assert.match(out, /Successfully tagged meta:1\n/);
  assert.match(out, /Successfully tagged meta:2\n/);
  const img = await inspect('meta:1');
  assert.equal(img.Id, (await inspect('meta:2')).Id);
  const c = img.Config as Record<string, unknown>;
  assert.deepEqual(c.Labels, { 'org.example.a': 'one', b: 'two' });
  const env = c.Env as string[];
  assert.ok(env.includes('A=1'));
  assert.ok(env.includes('B=two words'));
  assert.ok(env.includes('C=1-two words-dflt'), env.join(','));
  assert.ok(env.some((e) => e.startsWith('PATH=')));
  assert.deepEqual(Object.keys(c.ExposedPorts as object).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
  assert.equal(c.User, '1000:1000');
  assert.equal(c.WorkingDir, '/srv/app');
  assert.deepEqual(Object.keys(c.Volumes as object).sort(), ['/cache', '/data']);
  assert.equal(c.StopSignal, 'SIGINT');
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'echo ok'], Interval: 5e9, Timeout: 2e9, Retries: 4 });
  assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
  assert.deepEqual(c.OnBuild, ['RUN echo triggered > /tmp/onbuild']);
  assert.deepEqual(c.Entrypoint, ['/bin/echo']);
  assert.deepEqual(c.Cmd, ['hello']);
  const full = JSON.parse(await ok(['image', 'inspect', 'meta:1']))[0];
  assert.equal(full.Author, 'someone@example.com');
  // The working directory exists in the filesystem.
  assert.equal(await ok(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', 'meta:1', '-c', 'pwd; test -d /srv/app && echo dir']), '/srv/app\ndir\n');
  // history: metadata steps are empty layers, as docker's classic builder writes them.
  const history = await ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}', 'meta:1']);
  assert.match(history, /\/bin\/sh -c #\(nop\)  ENV A=1 B=two words\|0B/);
  assert.match(history, /#\(nop\)  CMD \["hello"\]\|0B/);

  // ONBUILD triggers run in a child build and are not inherited.
  const child = context({ Dockerfile: 'FROM meta:1\nRUN cat /tmp/onbuild\n' });
  const cout = await ok(['build', '-t', 'child', child]);
  assert.match(cout, /triggered/);
  const cimg = await inspect('child');
  assert.equal((cimg.Config as Record<string, unknown>).OnBuild ?? null, null);
  assert.equal(await ok(['run', '--rm', '--network', 'none', '--entrypoint', 'cat', 'child', '/tmp/onbuild']), 'triggered\n');
});

test('docker build: RUN, COPY, ADD produce the filesystem; layers only where files changed', { skip }, async () => {
  const sub: Record<string, string | [string, number]> = {};
  for (let i = 0; i < 20; i++) sub[`src/dir/f${i}.txt`] = `file ${i}\n`;
  const dir = context({
    ...sub,
    'script.sh': ['#!/bin/sh\necho script\n', 0o755],
    'a.txt': 'A\n',
    'b.conf': 'B\n',
    'c.conf': 'C\n',
    Dockerfile: [
      'FROM busybox',
      'RUN mkdir -p /out && echo built > /out/built && rm -rf /etc/motd /home',
      'COPY a.txt /out/',
      'COPY a.txt /out/renamed.txt',
      'COPY *.conf /conf/',
      'COPY src /src-contents',
      'COPY --chown=123:456 --chmod=600 a.txt /owned',
      'COPY script.sh /usr/local/bin/',
      'ADD archive.tar.gz /unpacked/',
      'ADD plain.gz /keep/',
      'RUN <<EOF',
      'echo heredoc > /out/heredoc',
      'EOF',
      'COPY <<EOT /out/inline',
      'inline text',
      'EOT',
      'RUN rm /out/renamed.txt',
      '',
    ].join('\n'),
  });
  symlinkSync('dir/f1.txt', join(dir, 'src', 'link-in-dir'));
  // A tar.gz (extracted by ADD) and a gzip of plain text (copied as is).
  const tarDir = join(work, 'tarsrc');
  mkdirSync(join(tarDir, 'inner'), { recursive: true });
  writeFileSync(join(tarDir, 'inner', 'x'), 'from archive\n');
  const { spawnSync } = await import('node:child_process');
  assert.equal(spawnSync('tar', ['-czf', join(dir, 'archive.tar.gz'), '-C', tarDir, 'inner']).status, 0);
  writeFileSync(join(work, 'plain'), 'not a tar\n');
  assert.equal(spawnSync('sh', ['-c', `gzip -c ${join(work, 'plain')} > ${join(dir, 'plain.gz')}`]).status, 0);

  await ok(['build', '-t', 'files', dir]);
  const listing = await runIn('files', [
    'cat /out/built /out/a.txt /conf/b.conf /conf/c.conf /src-contents/dir/f7.txt /unpacked/inner/x /out/heredoc /out/inline',
    'stat -c "%u:%g %a" /owned',
    'test -x /usr/local/bin/script.sh && echo exec',
    'readlink /src-contents/link-in-dir',
    'test -e /out/renamed.txt || echo gone',
    'test -e /etc/motd || echo motd-gone',
    'test -e /home || echo home-gone',
    'ls /keep',
    'ls /src-contents',
  ].join('; '));
  assert.equal(listing, [
    'built', 'A', 'B', 'C', 'file 7', 'from archive', 'heredoc', 'inline text',
    '123:456 600', 'exec', 'dir/f1.txt', 'gone', 'motd-gone', 'home-gone', 'plain.gz', 'dir\nlink-in-dir', '',
  ].join('\n'));
  const img = await inspect('files');
  const base = await inspect('busybox');
  // 12 filesystem steps, each its own layer.
  assert.equal(img.RootFS.Layers.length, base.RootFS.Layers.length + 12);
});

test('docker build: the cache — hits print "Using cache", content changes and --no-cache miss', { skip }, async () => {
  const dir = context({
    'data.txt': 'one\n',
    Dockerfile: 'FROM busybox\nENV X=1\nRUN echo run-step-executed\nCOPY data.txt /data.txt\nRUN cat /data.txt\n',
  });
  const first = await ok(['build', '-t', 'cached', dir]);
  assert.match(first, /^run-step-executed$/m);
  const id1 = (await inspect('cached')).Id;
  const second = await ok(['build', '-t', 'cached', dir]);
  assert.doesNotMatch(second, /^run-step-executed$/m);
  assert.equal((second.match(/Using cache/g) ?? []).length, 4);
  assert.equal((await inspect('cached')).Id, id1);
  // Touching the file (mtime only) keeps the cache; changing its content does not.
  const { utimesSync } = await import('node:fs');
  utimesSync(join(dir, 'data.txt'), new Date(), new Date(Date.now() - 86_400_000));
  const third = await ok(['build', '-t', 'cached', dir]);
  assert.equal((third.match(/Using cache/g) ?? []).length, 4, third);
  writeFileSync(join(dir, 'data.txt'), 'two\n');
  const fourth = await ok(['build', '-t', 'cached', dir]);
  assert.equal((fourth.match(/Using cache/g) ?? []).length, 2, fourth);
  assert.match(fourth, /\ntwo\n/);
  const fifth = await ok(['build', '--no-cache', '-t', 'cached', dir]);
  assert.doesNotMatch(fifth, /Using cache/);
  assert.match(fifth, /^run-step-executed$/m);
});

test('docker build: --build-arg, ARG scopes, unused warning, --target, multi-stage COPY --from', { skip }, async () => {
  const dir = context({
    Dockerfile: [
      'ARG BASE=busybox',
      'ARG GLOBAL=global-default',
      'FROM ${BASE} AS builder',
      'ARG GLOBAL',
      'ARG LOCAL=local-default',
      'RUN mkdir /out && echo "$GLOBAL $LOCAL" > /out/args',
      'FROM busybox AS unused-stage',
      'RUN exit 1',
      'FROM busybox AS final',
      'COPY --from=builder /out/args /args',
      'RUN echo "[$LOCAL]" > /not-inherited',
      'FROM final AS extra',
      'RUN echo extra > /extra',
      '',
    ].join('\n'),
  });
  const r = await docker(['build', '--build-arg', 'LOCAL=given', '--build-arg', 'NOBODY=x', '--target', 'final', '-t', 'ms', dir]);
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout + r.stderr, /One or more build-args \[NOBODY\] were not consumed/);
  assert.equal(await runIn('ms', 'cat /args /not-inherited; test -e /extra || echo no-extra'), 'global-default given\n[]\nno-extra\n');
  // The stage that fails is never built: the target does not need it.
  assert.doesNotMatch(r.stdout, /exit 1/);
  const bad = await docker(['build', '--target', 'nosuch', dir]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr + bad.stdout, /nosuch/);
});

test('docker build: -f inside and outside the context, from stdin, and .dockerignore', { skip }, async () => {
  const dir = context({
    'keep.txt': 'keep\n',
    'secret.key': 'secret\n',
    'logs/a.log': 'log\n',
    'logs/important.log': 'important\n',
    'node_modules/m/index.js': 'x\n',
    '.dockerignore': '# comment\n*.key\nlogs/*.log\n!logs/important.log\n**/node_modules\n',
    'docker/Custom.Dockerfile': 'FROM busybox\nCOPY . /ctx\nRUN find /ctx -type f | sort\n',
  });
  const out = await ok(['build', '-f', join(dir, 'docker/Custom.Dockerfile'), '-t', 'ignore', dir]);
  assert.match(out, /\/ctx\/keep\.txt/);
  assert.match(out, /\/ctx\/logs\/important\.log/);
  assert.doesNotMatch(out, /secret\.key|a\.log|node_modules/);
  const outside = join(work, 'Outside.Dockerfile');
  writeFileSync(outside, 'FROM busybox\nCOPY keep.txt /k\nRUN cat /k\n');
  assert.match(await ok(['build', '-f', outside, dir]), /\nkeep\n/);
  assert.match(await ok(['build', '-f', '-', dir], { input: 'FROM busybox\nRUN echo from-stdin\n' }), /from-stdin/);
  // A Dockerfile and .dockerignore that .dockerignore excludes are read, but not in the context (dockerd's rule).
  const hidden = context({ Dockerfile: 'FROM busybox\nCOPY . /ctx\nRUN ls -A /ctx\n', '.dockerignore': 'Dockerfile\n.dockerignore\n', 'data.txt': 'x\n' });
  const listed = await ok(['build', hidden]);
  assert.match(listed, /^data\.txt$/m);
  assert.doesNotMatch(listed, /^(Dockerfile|\.dockerignore)$/m);
});

test('POST /build with a bare Dockerfile as the body (no tar), as dockerd accepts', { skip }, async () => {
  const r = await d.request('POST', '/build?t=bare:1', { body: 'FROM busybox\nRUN echo bare-body\n', headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 120_000 });
  assert.equal(r.status, 200);
  assert.match(r.text, /bare-body/);
  assert.match(r.text, /Successfully tagged bare:1/);
});

test('docker build: --label, --iidfile, -q', { skip }, async () => {
  const dir = context({ Dockerfile: 'FROM busybox\nLABEL a=1\n' });
  const iid = join(work, 'iid');
  await ok(['build', '--label', 'extra=yes', '--iidfile', iid, '-t', 'labelled', dir]);
  const img = await inspect('labelled');
  assert.deepEqual((img.Config as Record<string, unknown>).Labels, { a: '1', extra: 'yes' });
  assert.equal(readFileSync(iid, 'utf8'), img.Id);
  const q = await ok(['build', '-q', dir]);
  assert.match(q.trim(), /^sha256:[0-9a-f]{64}$/);
});

test('docker build: bad Dockerfiles fail naming the line and tag nothing', { skip }, async () => {
  const cases: Array<[string, RegExp]> = [
    ['FROM busybox\nFOOBAR x\n', /line 2|:2:|FOOBAR|foobar/i],
    ['FROM busybox\nRUN true\nRUN exit 3\n', /returned a non-zero code: 3/],
    ['FROM busybox\nCOPY ../outside /x\n', /outside the build context|forbidden/i],
    ['FROM busybox\nCOPY missing.txt /x\n', /missing\.txt/],
    ['FROM busybox\nCOPY --from=nostage /a /b\n', /nostage/],
  ];
  for (const [text, want] of cases) {
    const dir = context({ Dockerfile: text });
    const r = await docker(['build', '-t', 'should-not-exist', dir]);
    assert.notEqual(r.code, 0, `${text}\n${explain(r)}`);
    assert.match(r.stderr + r.stdout, want, text);
    const ls = await docker(['image', 'inspect', 'should-not-exist']);
    assert.notEqual(ls.code, 0, 'a failed build must not tag its image');
  }
  // Line numbers are named for parse errors and failing steps.
  const r = await docker(['build', context({ Dockerfile: 'FROM busybox\nRUN true\nRUN exit 3\n' })]);
  assert.match(r.stderr + r.stdout, /Dockerfile:3/);
  // Nothing is left running or half-made.
  assert.equal((await ok(['ps', '-q'])).trim(), '');
});

test('docker images hides intermediate build images; rmi removes them with the image', { skip }, async () => {
  const dir = context({ Dockerfile: 'FROM busybox\nENV ONLY=this\nRUN echo x > /x\nENV AND=that\n' });
  await ok(['build', '--no-cache', '-t', 'layered', dir]);
  const all = (await ok(['images', '-a', '-q', '--no-trunc'])).trim().split('\n');
  const visible = (await ok(['images', '-q', '--no-trunc'])).trim().split('\n');
  assert.ok(all.length > visible.length, `${all.length} vs ${visible.length}`);
  const before = all.length;
  const rmi = await ok(['rmi', 'layered']);
  assert.ok((rmi.match(/Deleted: /g) ?? []).length >= 3, rmi);
  const after = (await ok(['images', '-a', '-q', '--no-trunc'])).trim().split('\n').filter(Boolean);
  assert.ok(after.length <= before - 3, `${before} → ${after.length}`);
});

test('docker build pulls a missing base image from a registry (with --pull too), and the built image pushes and runs after a pull', { skip }, async () => {
  const reg = await startRegistry();
  const layout = buildBusyboxLayout(tempLayoutDir());
  try {
    await pushLayout(layout, reg.host, 'base/busybox:1');
    const dir = context({ Dockerfile: `FROM ${reg.host}/base/busybox:1\nRUN echo pulled-and-built > /msg\nCMD ["cat", "/msg"]\n` });
    const out = await ok(['build', '-t', `${reg.host}/built/app:1`, dir]);
    assert.match(out, /Pull complete|Downloaded newer image/);
    const again = await ok(['build', '--pull', '-t', `${reg.host}/built/app:1`, dir]);
    assert.match(again, /Image is up to date|Using cache/);
    await ok(['push', `${reg.host}/built/app:1`]);
    await ok(['rmi', `${reg.host}/built/app:1`]);
    await ok(['pull', `${reg.host}/built/app:1`]);
    assert.equal(await ok(['run', '--rm', '--network', 'none', `${reg.host}/built/app:1`]), 'pulled-and-built\n');
  } finally {
    await reg.stop();
    rmSync(layout.dir, { recursive: true, force: true });
  }
});

test('a daemon killed mid-build leaves no mounts, scratch files or build snapshots after its restart', { skip }, async () => {
  const { spawn } = await import('node:child_process');
  const { readdirSync } = await import('node:fs');
  const dir = context({ Dockerfile: 'FROM busybox AS a\nRUN echo in-a > /a\nFROM busybox\nRUN --mount=type=bind,from=a,target=/src cat /src/a && sleep 60\n' });
  const child = spawn(DOCKER_BIN, ['build', dir], { env: d.dockerEnv(CLASSIC), stdio: 'ignore' });
  const scratch = join(d.dataRoot, 'build', 'scratch');
  const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => (l.split(' ')[4] ?? '').startsWith(scratch));
  const deadline = Date.now() + 60_000;
  while (mounted().length === 0 || !(await ok(['ps', '-q'])).trim()) {
    assert.ok(Date.now() < deadline, 'the build never reached its RUN step');
    await new Promise((r) => setTimeout(r, 100));
  }
  await d.restart({ kill9: true });
  child.kill('SIGKILL');
  assert.deepEqual(mounted(), []);
  assert.deepEqual(readdirSync(join(d.dataRoot, 'build')).filter((n) => n === 'scratch' && readdirSync(join(d.dataRoot, 'build', n)).length > 0), []);
  const snapshots = readdirSync(join(d.dataRoot, 'image', 'snapshots')).filter((n) => /^\d+$/.test(n))
    .map((n) => { try { return readFileSync(join(d.dataRoot, 'image', 'snapshots', n, 'meta.json'), 'utf8'); } catch { return ''; } });
  assert.deepEqual(snapshots.filter((m) => m.includes('"name":"build-')), []);
  // The RUN step's container is left stopped, as dockerd leaves it; it can be removed, and builds work.
  for (const id of (await ok(['ps', '-aq'])).trim().split('\n').filter(Boolean)) await ok(['rm', '-f', id]);
  assert.match(await ok(['build', '-q', context({ Dockerfile: 'FROM busybox\nRUN true\n' })]), /^sha256:/);
});

test('RUN output is never lost: the step\'s attach client and the daemon connect to the monitor together (25 builds)', { skip }, async () => {
  const dir = context({ Dockerfile: 'FROM busybox\nRUN echo marker-out\nRUN echo marker-err >&2\n' });
  for (let i = 0; i < 25; i++) {
    const r = await docker(['build', '--no-cache', '--network', 'none', dir]);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /^marker-out$/m, `build ${i}: ${r.stdout}`);
    assert.match(r.stdout + r.stderr, /^marker-err$/m, `build ${i}: ${r.stdout}`);
  }
});

test('docker build --platform: the host platform and BuildKit\'s platform ARGs; another platform is refused clearly', { skip }, async () => {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
  const dir = context({ Dockerfile: 'FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo "arch=$TARGETARCH platform=$TARGETPLATFORM"\n' });
  const out = await ok(['build', '--no-cache', '--platform', `linux/${arch}`, dir]);
  assert.match(out, new RegExp(`^arch=${arch} platform=linux/${arch}$`, 'm'));
  const other = arch === 's390x' ? 'ppc64le' : 's390x';
  const r = await docker(['build', '--platform', `linux/${other}`, dir]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, new RegExp(`linux/${other} is not supported`));
});

test('independent stages build at the same time; the output stays in stage order; one failing stops the others', { skip }, async () => {
  // Each stage notes when its RUN began and ended (the kernel's uptime, one clock for both): the
  // intervals overlap only if the stages ran at the same time, however slow the machine is.
  const span = (n: string) => `RUN cut -d' ' -f1 /proc/uptime > /${n}0 && sleep 3 && cut -d' ' -f1 /proc/uptime > /${n}1`;
  const dir = context({
    Dockerfile: [
      'FROM busybox AS a', span('a'),
      'FROM busybox AS b', span('b'),
      'FROM busybox', 'COPY --from=a /a0 /a1 /t/', 'COPY --from=b /b0 /b1 /t/', 'RUN echo times $(cat /t/a0 /t/a1 /t/b0 /t/b1)', '',
    ].join('\n'),
  });
  const out = await ok(['build', '--no-cache', '--network', 'none', dir]);
  const m = /^times (\S+) (\S+) (\S+) (\S+)$/m.exec(out);
  assert.ok(m, out);
  const [a0, a1, b0, b1] = m.slice(1).map(Number) as [number, number, number, number];
  assert.ok(a0 < b1 && b0 < a1, `stage a ran ${a0}–${a1}, stage b ${b0}–${b1}: not at the same time`);
  const steps = [...out.matchAll(/^Step (\d+)\/8 : /gm)].map((x) => Number(x[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);

  const failing = context({
    Dockerfile: ['FROM busybox AS slow', 'RUN sleep 120', 'FROM busybox AS broken', 'RUN exit 9', 'FROM busybox', 'COPY --from=slow / /s', 'COPY --from=broken / /b', ''].join('\n'),
  });
  const t1 = Date.now();
  const r = await docker(['build', '--no-cache', '--network', 'none', failing]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /Dockerfile:4: The command '\/bin\/sh -c exit 9' returned a non-zero code: 9/);
  assert.ok(Date.now() - t1 < 90_000, 'the slow stage was not stopped');
  assert.equal((await ok(['ps', '-q'])).trim(), '');
  for (const id of (await ok(['ps', '-aq'])).trim().split('\n').filter(Boolean)) await ok(['rm', '-f', id]);
});

test('a client that goes away just as a RUN step begins cancels the build: its container is stopped and removed', { skip, timeout: 120_000 }, async () => {
  const { request } = await import('node:http');
  for (let round = 0; round < 3; round++) {
    const tag = `cancel-early-${round}`;
    await new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: d.socket, method: 'POST', path: `/build?t=${tag}&nocache=1`, headers: { 'Content-Type': 'application/x-tar', Host: 'localhost' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          // Gone the moment the step is announced: before its container exists or has started.
          if (/Step 2\/2 : RUN/.test(text)) { req.destroy(); resolve(); }
        });
        res.on('end', () => reject(new Error(`the build ended before its RUN step: ${text}`)));
      });
      req.on('error', () => {});
      req.end(`FROM busybox\nRUN sleep 60 # ${round}\n`);
    });
    const deadline = Date.now() + 20_000;
    let left: Array<{ Id: string; State: string }> = [];
    for (;;) {
      left = (await d.request('GET', '/containers/json?all=1')).json<Array<{ Id: string; State: string }>>();
      if (left.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(left, [], `round ${round}: the RUN container is gone`);
    assert.equal((await d.request('GET', `/images/${tag}/json`)).status, 404, 'nothing is tagged');
  }
});
