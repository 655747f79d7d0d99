// `berth` against a real reference server: a private dockerd 20.10 (test/helpers/dockerd.ts, in
// its own mount and network namespaces). Each container inspection or management command runs as
// `docker -H <sock> …` and as `berth -H <sock> …`; stdout, stderr (with the program's name
// swapped) and the exit status must be the same, after normalising only durations that move
// ("14 seconds ago"). Files that cp writes are compared as trees. Skipped without dockerd.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, run, type RunResult } from '../helpers/daemon.ts';
import { ReferenceDockerd, referenceDockerdSkip } from '../helpers/dockerd.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';

const skip = referenceDockerdSkip();
const TSX = pathToFileURL(join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const BERTH_SRC = join(REPO_ROOT, 'src', 'cli', 'berth.ts');

let ref: ReferenceDockerd;
let work: string;

function berth(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<RunResult> {
  return run(process.execPath, ['--import', TSX, BERTH_SRC, '-H', ref.host, ...args], {
    env: { ...process.env, BERTH_AUTOSTART: '0', DOCKER_CONFIG: join(ref.work, 'cli'), BERTH_HOST: '' },
    cwd: opts.cwd, input: opts.input, timeoutMs: 60_000,
  });
}

function docker(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<RunResult> {
  if (!opts.cwd) return ref.docker(args, { input: opts.input });
  return run('/bin/sh', ['-c', 'cd "$0" && exec "$@"', opts.cwd, '/usr/local/bin/docker', '-H', ref.host, ...args], {
    env: { ...process.env, DOCKER_CONFIG: join(ref.work, 'cli'), DOCKER_HOST: '' }, input: opts.input, timeoutMs: 60_000,
  });
}

const DURATION = /(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes|hours))/g;
// A duration that moved also moves the table's column widths, so such output is compared cell
// by cell (alignment itself is covered by test/cli/containers-format.test.ts).
const norm = (s: string): string => {
  const t = s.replace(DURATION, '<t>').replace(/\bdocker\b/g, 'berth');
  return t === s.replace(/\bdocker\b/g, 'berth') ? t : t.replace(/ {2,}/g, '  ');
};

async function same(args: string[], opts: { cwd?: string; input?: string; normalise?: (s: string) => string } = {}): Promise<RunResult> {
  const d = await docker(args, opts);
  const b = await berth(args, opts);
  const n = (s: string): string => (opts.normalise ?? ((x: string) => x))(norm(s));
  const what = `berth ${args.join(' ')}`;
  assert.equal(n(b.stdout), n(d.stdout), `${what}: stdout\n--- docker:\n${d.stdout}\n--- berth:\n${b.stdout}\n--- berth stderr:\n${b.stderr}`);
  assert.equal(n(b.stderr), n(d.stderr), `${what}: stderr`);
  assert.equal(b.code, d.code, `${what}: exit status (stderr: ${b.stderr})`);
  return d;
}

async function ok(args: string[]): Promise<string> {
  const r = await ref.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  if (skip) return;
  work = mkdtempSync('/var/tmp/berth-cm.');
  ref = await ReferenceDockerd.start();
  const root = join(work, 'rootfs');
  mkdirSync(root);
  makeBusyboxRootfs(root);
  writeFileSync(join(work, 'bb.tar'), tarDirectory(root));
  await ok(['import', '-c', 'CMD ["sh"]', join(work, 'bb.tar'), 'busybox:latest']);
  await ok(['run', '-d', '--name', 'web', '-p', '127.0.0.1:8080:80', '-p', '8081:81', '-l', 'a=b', '-l', 'com.example.tier=front', 'busybox', 'sleep', '100000']);
  assert.equal((await ref.docker(['run', '--name', 'done', 'busybox', 'sh', '-c', 'echo hi; exit 3'])).code, 3);
  await ok(['create', '--name', 'cr', 'busybox', 'echo', 'a b']);
  await ok(['exec', 'web', 'sh', '-c', 'mkdir -p /d/sub && echo one > /d/f && echo two > /d/sub/g && ln -s f /d/l && ln -s /d /dl && rm /bin/cat']);
});

after(async () => {
  await ref?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('ps: default table, -a, -q, -n, -l, -s, --no-trunc, --filter, --format (table, json, templates, .Label)', { skip, timeout: 300_000 }, async () => {
  for (const args of [
    ['ps'], ['ps', '-a'], ['ps', '-aq'], ['ps', '-n', '2'], ['ps', '-l'], ['ps', '-a', '-s'], ['ps', '-a', '--no-trunc'],
    ['ps', '-a', '--filter', 'status=exited'], ['ps', '-a', '--filter', 'label=a=b', '--filter', 'status=running'],
    ['ps', '-a', '--format', 'json'], ['ps', '-a', '--format', 'table'], ['ps', '-a', '--format', 'table {{.Names}}\t{{.State}}\t{{.Size}}'],
    ['ps', '-a', '--format', '{{.ID}} {{.Image}} {{.Command}} {{.CreatedAt}} {{.Ports}} {{.State}} {{.Status}} {{.Names}} {{.Labels}} {{.Mounts}} {{.Networks}}'],
    ['ps', '--format', 'table {{.Label "com.example.tier"}}\t{{.Label "a"}}\t{{.Names}}'],
    ['ps', '-q', '--format', '{{.Names}}'], ['ps', 'extra'], ['ps', '--format', '{{.Nope}}'], ['ps', '--format', '{{.Names'],
    ['ps', '-n', 'x'], ['ps', '--filter', 'nonsense'],
    ['container', 'ls', '-a'], ['container', 'list', '-a', '--format', '{{.Names}}'],
  ]) await same(args);
});

test('inspect: containers, the generic form over containers and images, --type, -f, -s, errors', { skip, timeout: 300_000 }, async () => {
  for (const args of [
    ['inspect', 'web'], ['container', 'inspect', 'web', 'done'], ['inspect', '--format', 'json', 'cr'],
    ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{json .Config.Labels}}', 'web', 'done'],
    ['inspect', '-s', '-f', '{{.SizeRw}} {{.SizeRootFs}}', 'web'], ['inspect', '--type', 'image', '-f', '{{.Id}}', 'busybox'],
    ['inspect', '-f', '{{.Id}}', 'busybox'], ['inspect', '-s', '-f', '{{.Id}}', 'busybox'],
    ['inspect', 'nosuch'], ['container', 'inspect', 'nosuch'], ['inspect', 'web', 'nosuch', '-f', '{{.Name}}'],
    ['inspect', '--type', 'foo', 'web'], ['inspect', '-f', '{{.State.Status}}', 'busybox'], ['inspect', '--type', 'container', 'busybox'], ['inspect', '-f', '{{.Name', 'web'],
  ]) await same(args);
});

test('top, port, diff, stats --no-stream', { skip, timeout: 300_000 }, async () => {
  for (const args of [
    ['top', 'web'], ['top', 'web', '-o', 'pid,comm'], ['container', 'top', 'web', 'aux'], ['top', 'done'], ['top'],
    ['port', 'web'], ['port', 'web', '80'], ['port', 'web', '81/tcp'], ['port', 'web', '90'], ['port', 'web', 'abc'], ['port', 'cr'],
    ['diff', 'cr'], ['diff', 'nosuch'],
    ['stats', '--no-stream', 'cr', 'done'], ['stats', '--no-stream', '--format', 'table {{.Name}}\t{{.PIDs}}', 'web'],
    ['stats', '--no-stream', '-a', '--format', '{{.Container}} {{.Name}} {{.PIDs}}'], ['stats', '--no-stream', 'nosuch'],
  ]) await same(args);
  // dockerd 20.10 lists changes in Go map order, different on every call: compared as sets.
  await same(['diff', 'web'], { normalise: (s) => s.split('\n').sort().join('\n') });
});

test('stats streams frames with docker\'s redraw sequences', { skip, timeout: 60_000 }, async () => {
  const b = await run('timeout', ['-s', 'INT', '1.8', process.execPath, '--import', TSX, BERTH_SRC, '-H', ref.host, 'stats', '--format', 'table {{.Name}}\t{{.PIDs}}', 'web'], {
    env: { ...process.env, BERTH_AUTOSTART: '0' }, timeoutMs: 20_000,
  });
  const frame = '\x1b[HNAME      PIDS\nweb       1\n\x1b[HNAME      PIDS \x1b[K\nweb       1 \x1b[K\n \x1b[K\n\x1b[J';
  assert.ok(b.stdout.startsWith(frame + frame), JSON.stringify(b.stdout));
});

test('pause, unpause, rename, update: output, errors and the effect', { skip, timeout: 300_000 }, async () => {
  // Each tool changes the state once, so they are compared step by step.
  const pd = await docker(['pause', 'web']);
  await ok(['unpause', 'web']);
  const pb = await berth(['pause', 'web']);
  assert.deepEqual([pb.stdout, pb.stderr, pb.code], [pd.stdout, pd.stderr, pd.code]);
  assert.match(await ok(['ps', '--format', '{{.Status}}', '--filter', 'name=web']), /^Up .* \(Paused\)$/);
  await same(['ps', '--filter', 'name=web']);
  const ud = await docker(['unpause', 'web']);
  await ok(['pause', 'web']);
  const ub = await berth(['unpause', 'web']);
  assert.deepEqual([ub.stdout, ub.stderr, ub.code], [ud.stdout, ud.stderr, ud.code]);
  assert.equal(await ok(['inspect', '-f', '{{.State.Status}}', 'web']), 'running');
  await same(['pause', 'nosuch', 'cr']);
  await same(['unpause']);
  let r = await docker(['rename', 'done', 'done2']);
  assert.equal(r.code, 0, r.stderr);
  r = await berth(['rename', 'done2', 'done']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, '');
  await same(['rename', 'nosuch', 'x']);
  await same(['rename', 'web', 'cr']);
  await same(['rename', ' ', 'x']);
  await same(['update', '-m', '64m', '--memory-swap', '128m', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '50', '--restart', 'on-failure:2', 'web']);
  assert.equal(await ok(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}', 'web']),
    '67108864 134217728 500000000 512 50 on-failure:2');
  await berth(['update', '--restart', 'no', '-m', '96m', 'web']);
  assert.equal(await ok(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}', 'web']), '100663296 no');
  await same(['update', 'web']);
  await same(['update', '-m', '64m', 'nosuch']);
  await same(['update', '--restart', 'always:x', 'web']);
  await same(['update', '--cpus', 'x', 'web']);
  await same(['update', '-m', '1q', 'web']);
  await same(['update', '-m', 'x', 'web']);
});

test('cp from the container: directory and file sources, "/." contents, new names, links, -L, errors, tar to stdout', { skip, timeout: 300_000 }, async () => {
  const cases: string[][] = [
    ['web:/d', 'out'], ['web:/d/f', 'out'], ['web:/d/.', 'out'], ['web:/d/f', 'newf'], ['web:/d', 'newf'], ['web:/d/', 'newd'],
    ['web:/d/.', 'newd2'], ['web:/d/f', 'missing/'], ['web:/dl', 'link'], ['-L', 'web:/dl', 'followed'], ['web:/nosuch', 'out'],
    ['nosuch:/d', 'out'], ['web:/d', 'web:/x'], ['a', 'b'],
  ];
  const dd = join(work, 'cp-docker');
  const bd = join(work, 'cp-berth');
  for (const d of [dd, bd]) mkdirSync(join(d, 'out'), { recursive: true });
  for (const c of cases) {
    const d = await docker(['cp', ...c], { cwd: dd });
    const b = await berth(['cp', ...c], { cwd: bd });
    const what = `cp ${c.join(' ')}`;
    assert.equal(norm(b.stdout + b.stderr).split(bd).join('<dir>'), norm(d.stdout + d.stderr).split(dd).join('<dir>'), what);
    assert.equal(b.code, d.code, `${what}: ${b.stderr}`);
    assert.equal(tree(bd), tree(dd), `${what}: files`);
  }
  const d = await ref.docker(['cp', 'web:/d', '-']);
  const b = await berth(['cp', 'web:/d', '-']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, d.stdout);
});

test('cp into the container: trees, files, "/." contents, over links, -L, errors, a tar on stdin', { skip, timeout: 300_000 }, async () => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'dir', 'sub'), { recursive: true });
  writeFileSync(join(src, 'dir', 'f'), 'a\n');
  writeFileSync(join(src, 'dir', 'sub', 'g'), 'b\n');
  symlinkSync('f', join(src, 'dir', 'l'));
  writeFileSync(join(src, 'file'), 'c\n');
  symlinkSync('dir', join(src, 'dl'));
  await ok(['exec', 'web', 'sh', '-c', 'for t in /t1 /t2; do mkdir -p $t/ex && echo x > $t/ex/file0 && ln -s ex $t/exl; done']);
  const cases: Array<[string[], string]> = [
    [['dir'], '/T/ex'], [['dir'], '/T/new'], [['dir/.'], '/T/new2'], [['file'], '/T/ex'], [['file'], '/T/newf'], [['file'], '/T/ex/file0'],
    [['dir'], '/T/ex/file0'], [['file'], '/T/nodir/'], [['dl'], '/T/exl'], [['-L', 'dl'], '/T/dl2'], [['file'], '/T/exl'], [['nosuch'], '/T/x'],
    [['file'], '/nodir/x'], [['-a', 'file'], '/T/owned'],
  ];
  for (const [pre, dst] of cases) {
    const d = await docker(['cp', ...pre, `web:${dst.replace('/T', '/t1')}`], { cwd: src });
    const b = await berth(['cp', ...pre, `web:${dst.replace('/T', '/t2')}`], { cwd: src });
    // dockerd's CLI logs its own aborted tar writer (logrus lines) when the copy is refused.
    const n = (s: string): string => norm(s).replace(/\/t2/g, '/t1').split('\n').filter((l) => !l.startsWith('time="')).join('\n');
    assert.equal(n(b.stdout + b.stderr), n(d.stdout + d.stderr), `cp ${pre.join(' ')} ${dst}`);
    assert.equal(b.code, d.code, `cp ${pre.join(' ')} ${dst}: ${b.stderr}`);
    assert.equal(await containerTree('/t2'), await containerTree('/t1'), `cp ${pre.join(' ')} ${dst}: files`);
  }
  const tarball = spawnSync('tar', ['-C', src, '-cf', '-', 'dir', 'file']).stdout;
  writeFileSync(join(work, 'in.tar'), tarball);
  for (const [t, cli] of [['/t1', docker], ['/t2', berth]] as const) {
    const r = await run('/bin/sh', ['-c', `"$@" < ${join(work, 'in.tar')}`, 'sh', ...(cli === docker ? ['/usr/local/bin/docker', '-H', ref.host] : [process.execPath, '--import', TSX, BERTH_SRC, '-H', ref.host]), 'cp', '-', `web:${t}/ex`],
      { env: { ...process.env, BERTH_AUTOSTART: '0' }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(await containerTree('/t2'), await containerTree('/t1'));
  await same(['cp', '-', 'web:/t1/ex/file0'], { input: '' });
});

test('export, commit, container prune', { skip, timeout: 300_000 }, async () => {
  const d = join(work, 'exp-docker.tar');
  const b = join(work, 'exp-berth.tar');
  await ok(['export', '-o', d, 'cr']);
  const r = await berth(['export', '-o', b, 'cr']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(b).equals(readFileSync(d)), true);
  const piped = await run('/bin/sh', ['-c', `"$@" | wc -c`, 'sh', process.execPath, '--import', TSX, BERTH_SRC, '-H', ref.host, 'export', 'cr'], { env: { ...process.env, BERTH_AUTOSTART: '0' } });
  assert.equal(Number(piped.stdout.trim()), readFileSync(d).length);
  await same(['export', 'nosuch']);

  const c = await berth(['commit', '-a', 'Ann <a@example.com>', '-m', 'snap', '-c', 'ENV X=1', '-c', 'LABEL k=v', '-p=false', 'web', 'snap:v1']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(await ok(['inspect', '-f', '{{.Id}} {{.Author}} {{.Comment}} {{index .Config.Labels "k"}} {{.RepoTags}}', 'snap:v1']),
    `${c.stdout.trim()} Ann <a@example.com> snap v [snap:v1]`);
  assert.ok((await ok(['inspect', '-f', '{{json .Config.Env}}', 'snap:v1'])).includes('"X=1"'));
  await same(['commit', 'nosuch']);
  await same(['commit', 'web', 'Bad:Name']);
  await same(['commit', 'web', `x@sha256:${'a'.repeat(64)}`]);

  for (const n of ['p1', 'p2']) await ok(['run', '--name', n, '-l', 'prune=1', 'busybox', 'true']);
  const p1 = await ok(['inspect', '-f', '{{.Id}}', 'p1']);
  const p2 = await ok(['inspect', '-f', '{{.Id}}', 'p2']);
  const viaDocker = await ref.docker(['container', 'prune', '-f', '--filter', 'label=prune=1', '--filter', `until=${Math.floor(Date.now() / 1000) + 10}`]);
  assert.equal(viaDocker.code, 0, viaDocker.stderr);
  await ok(['run', '--name', 'p3', '-l', 'prune=1', 'busybox', 'true']);
  const p3 = await ok(['inspect', '-f', '{{.Id}}', 'p3']);
  const viaBerth = await berth(['container', 'prune', '-f', '--filter', 'label=prune=1']);
  assert.equal(viaBerth.code, 0, viaBerth.stderr);
  const ids = (s: string): string => s.replace(p1, '<a>').replace(p2, '<b>').replace(p3, '<a>');
  assert.equal(ids(viaBerth.stdout).replace('<a>\n', '<a>\n<b>\n'), ids(viaDocker.stdout).replace(/<b>\n<a>\n/, '<a>\n<b>\n'));
  await same(['container', 'prune'], { input: 'n\n' });
  await same(['container', 'prune', '-f', '--filter', 'label=nothing-has-this']);
});

function tree(dir: string): string {
  return spawnSync('sh', ['-c', `cd "${dir}" && find . -printf '%p %y %m %s %l\\n' | sort`], { encoding: 'utf8' }).stdout;
}

async function containerTree(dir: string): Promise<string> {
  const r = await ref.docker(['exec', 'web', 'sh', '-c', `cd ${dir} && find . | sort | while read f; do stat -c '%n %F %a %s %u:%g %N' "$f"; done`]);
  return r.stdout;
}

test('cp on a terminal says what it copied, also before an error (through script(1))', { skip: skip || (spawnSync('sh', ['-c', 'command -v script']).status !== 0 ? 'no script(1)' : false), timeout: 120_000 }, async () => {
  const dir = join(work, 'tty');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'f'), 'x'.repeat(3000));
  const onTty = (cmd: string): string => spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', cwd: dir, env: { ...process.env, BERTH_AUTOSTART: '0', DOCKER_CONFIG: join(ref.work, 'cli') } }).stdout;
  const berthCmd = `${process.execPath} --import ${TSX} ${BERTH_SRC} -H ${ref.host}`;
  for (const args of ['cp f web:/tty1', `cp web:/bin/busybox ${dir}/out`, 'cp f web:/nodir/x', `cp web:/bin ${dir}/f`]) {
    const d = onTty(`/usr/local/bin/docker -H ${ref.host} ${args}`);
    assert.match(d, /Successfully copied/);
    assert.equal(onTty(`${berthCmd} ${args}`), d, args);
  }
});
