// `berth`'s image commands end to end: a real `berth daemon`, Debian's docker-registry (plain and
// htpasswd), images built in the test and pushed with skopeo. berth's output is compared with the
// docker CLI's against the same daemon (identical apart from timing), and the results are checked
// through the other CLI (what berth pushed, docker pulls back; what berth saved, berth loads).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BERTH_BIN, DOCKER_BIN, run, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { skopeoInspect, startRegistry, TEST_PASSWORD, TEST_USER, type TestRegistry } from '../helpers/registry.ts';
import { buildBusyboxLayout, buildMultiArchLayout, buildMultiLayerLayout, copyInRegistry, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let reg: TestRegistry;
let authReg: TestRegistry;
let busybox: Layout;
let multi: Layout;
let arch: Layout;
const dirs: string[] = [];

before(async () => {
  if (skip) return;
  [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd' })]);
  busybox = buildBusyboxLayout(tempLayoutDir());
  multi = buildMultiLayerLayout(tempLayoutDir(), { labels: { 'org.example.kind': 'multi' } });
  arch = buildMultiArchLayout(tempLayoutDir());
  dirs.push(busybox.dir, multi.dir, arch.dir);
  await pushLayout(busybox, reg.host, 'library/busybox:latest');
  await pushLayout(arch, reg.host, 'arch:latest');
  await copyInRegistry(reg.host, 'library/busybox:latest', 'tags/busybox:1');
  await copyInRegistry(reg.host, 'library/busybox:latest', 'tags/busybox:2');
  await pushLayout(multi, reg.host, 'team/multi:v2s2', { format: 'v2s2' });
  await pushLayout(busybox, authReg.host, 'private/busybox:1', { creds: `${TEST_USER}:${TEST_PASSWORD}` });
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
  await reg?.stop();
  await authReg?.stop();
  for (const x of dirs) rmSync(x, { recursive: true, force: true });
});

const explain = (label: string, r: RunResult): string => `${label}: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** A private docker config dir per test area, used by both CLIs (they share the format). */
function configEnv(name: string): NodeJS.ProcessEnv {
  return { DOCKER_CONFIG: join(d.dir, `docker-config-${name}`) };
}

async function berth(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; code?: number } = {}): Promise<RunResult> {
  const r = await d.berth(args, { env: { ...configEnv('default'), ...opts.env }, input: opts.input, timeoutMs: 120_000 });
  assert.equal(r.code, opts.code ?? 0, `${explain(`berth ${args.join(' ')}`, r)}\n${d.log().slice(-2000)}`);
  return r;
}

async function docker(args: string[], opts: { env?: NodeJS.ProcessEnv; code?: number } = {}): Promise<RunResult> {
  const r = await d.docker(args, { env: { ...configEnv('default'), ...opts.env }, timeoutMs: 120_000 });
  assert.equal(r.code, opts.code ?? 0, explain(`docker ${args.join(' ')}`, r));
  return r;
}

/**
 * Both CLIs against the daemon: identical output. "N units ago" may tick between the two runs,
 * so a mismatch is retried once; rows are compared sorted when `sorted` (docker orders the
 * repositories of one image by Go map iteration, which varies from run to run).
 */
async function sameAsDocker(args: string[], opts: { sorted?: boolean } = {}): Promise<string> {
  const norm = (s: string): string => (opts.sorted ? s.split('\n').sort().join('\n') : s);
  let b = '';
  let k = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    k = (await docker(args)).stdout;
    b = (await berth(args)).stdout;
    if (norm(b) === norm(k)) return b;
  }
  assert.equal(norm(b), norm(k), `berth ${args.join(' ')} differs from docker`);
  return b;
}

describe('berth image commands against berth daemon', { skip }, () => {
  test('pull: docker\'s progress lines, then the images table, inspect and history as docker prints them', async () => {
    const name = `${reg.host}/library/busybox`;
    const r = await berth(['pull', name]);
    const layer = busybox.images[0]!.layers[0]!.digest.slice(7, 19);
    assert.match(r.stdout, /^Using default tag: latest\nlatest: Pulling from library\/busybox\n/);
    assert.match(r.stdout, new RegExp(`^${layer}: Pull complete$`, 'm'));
    assert.match(r.stdout, /^Digest: sha256:[0-9a-f]{64}$/m);
    assert.match(r.stdout, new RegExp(`^Status: Downloaded newer image for ${name.replace(/\./g, '\\.')}:latest\n${name.replace(/\./g, '\\.')}:latest\n$`, 'm'));
    assert.equal(r.stderr, '');
    const again = await berth(['pull', '-q', name]);
    assert.equal(again.stdout, `${name}:latest\n`);
    await berth(['pull', '-q', `${reg.host}/team/multi:v2s2`]);

    for (const args of [
      ['images'], ['images', '-a'], ['images', '-q'], ['images', '--digests'], ['images', '--no-trunc'], ['images', '--format', 'json'],
      ['image', 'ls', '--filter', 'label=org.example.kind=multi'], ['images', '--filter', 'dangling=false', `${reg.host}/team/*`],
      ['images', '--filter', `reference=${name}`, '--format', 'table {{.Repository}}\\t{{.Digest}}\\t{{.Size}}'],
      ['image', 'inspect', name], ['image', 'inspect', '--format', '{{.Id}} {{.Os}} {{json .RootFS}}', name, `${reg.host}/team/multi:v2s2`],
      ['history', name], ['history', '--no-trunc', `${reg.host}/team/multi:v2s2`], ['image', 'history', '-H=false', name], ['history', '-q', name],
    ]) await sameAsDocker(args);
    const images = await berth(['images']);
    assert.match(images.stdout, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n/);
    assert.match(images.stdout, new RegExp(`^${name.replace(/\./g, '\\.')} +latest +${busybox.images[0]!.configDigest.slice(7, 19)} `, 'm'));

    // Errors as docker prints them, exit status 1.
    const missing = await berth(['image', 'inspect', 'nope:1'], { code: 1 });
    const dmissing = await docker(['image', 'inspect', 'nope:1'], { code: 1 });
    assert.equal(missing.stdout, dmissing.stdout);
    assert.equal(missing.stderr, dmissing.stderr);
    assert.match(missing.stderr, /^Error response from daemon: No such image: nope:1\n$/);
    const bad = await berth(['pull', `${reg.host}/library/absent`], { code: 1 });
    assert.match(bad.stderr, /^Error response from daemon: /);
  });

  test('tag and rmi: Untagged/Deleted lines; the table after each as docker\'s', async () => {
    const name = `${reg.host}/library/busybox`;
    await berth(['pull', '-q', name]);
    await berth(['tag', name, 'mine/busybox:1']);
    await berth(['image', 'tag', busybox.images[0]!.configDigest.slice(7, 19), 'mine/busybox:2']);
    await sameAsDocker(['images'], { sorted: true });
    await sameAsDocker(['images', '--digests'], { sorted: true });
    const rmi = await berth(['rmi', 'mine/busybox:1']);
    assert.equal(rmi.stdout, 'Untagged: mine/busybox:1\n');
    // Referenced in two repositories: deleting by ID is refused (exit 1) until one is untagged.
    const id = busybox.images[0]!.configDigest.slice(7, 19);
    const conflict = await berth(['rmi', id], { code: 1 });
    const dconflict = await docker(['rmi', id], { code: 1 });
    assert.equal(conflict.stderr, dconflict.stderr);
    assert.match(conflict.stderr, /^Error response from daemon: conflict: unable to delete .*\n$/);
    const del = await berth(['rmi', 'mine/busybox:2', id]);
    // (the daemon decides the order of the untag lines; berth prints them as they come)
    const lines = del.stdout.trim().split('\n');
    assert.equal(lines[0], 'Untagged: mine/busybox:2');
    assert.deepEqual(lines.slice(1, 3).sort(), [`Untagged: ${reg.host}/library/busybox:latest`, `Untagged: ${reg.host}/library/busybox@${busybox.descriptor.digest}`].sort());
    assert.equal(lines[3], `Deleted: ${busybox.images[0]!.configDigest}`);
    const gone = await berth(['rmi', '-f', 'never/was:here']);
    assert.match(gone.stderr, /^Error response from daemon: No such image: never\/was:here\n$/);
    await berth(['rmi', 'never/was:here'], { code: 1 });
    await sameAsDocker(['images'], { sorted: true });
  });

  test('push: what berth pushes, skopeo reads back and docker pulls', async () => {
    const src = `${reg.host}/library/busybox`;
    await berth(['pull', '-q', src]);
    const dest = `${reg.host}/pushed/busybox:v1`;
    await berth(['tag', src, dest]);
    const p = await berth(['push', dest]);
    assert.match(p.stdout, new RegExp(`^The push refers to repository \\[${reg.host.replace(/\./g, '\\.')}/pushed/busybox\\]$`, 'm'));
    assert.match(p.stdout, /^v1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    const q = await berth(['image', 'push', '-q', dest]);
    assert.equal(q.stdout, `${dest}\n`);
    const inspected = JSON.parse(await skopeoInspect(reg, 'pushed/busybox:v1')) as { Layers: string[] };
    assert.deepEqual(inspected.Layers, busybox.images[0]!.layers.map((l) => l.digest));
    await berth(['rmi', dest]);
    const back = await docker(['pull', dest]);
    assert.match(back.stdout, /Status: Downloaded newer image for|Status: Image is up to date for/);
    await berth(['rmi', dest]);
  });

  test('save / load round trip (-o, -i, stdin), and save refuses a bad output path', async () => {
    const src = `${reg.host}/library/busybox`;
    await berth(['pull', '-q', src]);
    await berth(['pull', '-q', `${reg.host}/team/multi:v2s2`]);
    const dir = mkdtempSync(join(d.dir, 'save-'));
    const tar = join(dir, 'images.tar');
    await berth(['save', '-o', tar, src, `${reg.host}/team/multi:v2s2`]);
    assert.ok(statSync(tar).size > 500_000);
    const before = (await berth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout;
    await berth(['rmi', src, `${reg.host}/team/multi:v2s2`]);
    const loaded = await berth(['load', '-i', tar]);
    assert.match(loaded.stdout, new RegExp(`^Loaded image: ${src.replace(/\./g, '\\.')}:latest$`, 'm'));
    assert.match(loaded.stdout, new RegExp(`^Loaded image: ${reg.host.replace(/\./g, '\\.')}/team/multi:v2s2$`, 'm'));
    const sorted = (t: string): string => t.split('\n').sort().join('\n');
    assert.equal(sorted((await berth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout), sorted(before));
    // The save stream on stdout and load from stdin, through a shell as users do (`berth save X > file`).
    const sh = async (cmd: string): Promise<RunResult> => {
      const r = await run('sh', ['-c', cmd], { env: { ...process.env, ...configEnv('default'), BERTH_AUTOSTART: '0', BERTH: `${process.execPath} ${BERTH_BIN} -H ${d.host}` }, timeoutMs: 120_000 });
      assert.equal(r.code, 0, explain(cmd, r));
      return r;
    };
    const piped = join(dir, 'piped.tar');
    await sh(`$BERTH save ${src} > ${piped}`);
    assert.deepEqual(readFileSync(piped).subarray(0, 512).length, 512);
    await berth(['rmi', src]);
    const fromStdin = await sh(`$BERTH image load -q < ${piped}`);
    assert.equal(fromStdin.stdout, `Loaded image: ${src}:latest\n`);
    const badPath = await berth(['save', '-o', join(dir, 'no', 'such', 'x.tar'), src], { code: 1 });
    assert.match(badPath.stderr, /^failed to save image: invalid output path: /);
    rmSync(dir, { recursive: true, force: true });
  });

  test('import a rootfs tarball with --change and -m; history shows it', async () => {
    const dir = mkdtempSync(join(d.dir, 'import-'));
    const layer = busybox.images[0]!.layers[0]!;
    const blob = readFileSync(join(busybox.dir, 'blobs', 'sha256', layer.digest.slice(7)));
    const tgz = join(dir, 'rootfs.tar.gz');
    writeFileSync(tgz, blob);
    const r = await berth(['import', '-c', 'CMD ["/bin/sh"]', '--change', 'ENV A=1', '-m', 'from berth', tgz, 'imported/rootfs:v1']);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const cfg = (await berth(['image', 'inspect', '-f', '{{json .Config.Cmd}} {{.Comment}}', 'imported/rootfs:v1'])).stdout;
    assert.match(cfg, /^\["\/bin\/sh"\] from berth\n$/);
    await sameAsDocker(['history', 'imported/rootfs:v1']);
    await berth(['rmi', 'imported/rootfs:v1']);
    rmSync(dir, { recursive: true, force: true });
  });

  test('login / logout against an htpasswd registry: config.json in docker\'s format, then pull with the stored credentials', async () => {
    const env = configEnv('login');
    const wrong = await berth(['login', '-u', TEST_USER, '--password-stdin', authReg.host], { env, input: 'wrong\n', code: 1 });
    assert.match(wrong.stderr, /^Error response from daemon: /);
    const anon = await berth(['pull', `${authReg.host}/private/busybox:1`], { env, code: 1 });
    assert.match(anon.stderr, /^Error response from daemon: /);
    const r = await berth(['login', '-u', TEST_USER, '--password-stdin', authReg.host], { env, input: `${TEST_PASSWORD}\n` });
    assert.equal(r.stdout, 'Login Succeeded\n');
    const cfgFile = join(env.DOCKER_CONFIG!, 'config.json');
    assert.match(r.stderr, new RegExp(`^\\nWARNING! Your credentials are stored unencrypted in '${cfgFile.replace(/\./g, '\\.')}'\\.\\n`));
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(cfg.auths[authReg.host]!.auth, 'base64').toString(), `${TEST_USER}:${TEST_PASSWORD}`);
    assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
    const pulled = await berth(['pull', `${authReg.host}/private/busybox:1`], { env });
    assert.match(pulled.stdout, /Status: (Downloaded newer image|Image is up to date) for /);
    // docker uses what berth stored, and the reverse.
    const dockerStored = await docker(['login', authReg.host], { env });
    assert.equal(dockerStored.stdout, 'Login Succeeded\n');
    const out = await berth(['logout', authReg.host], { env });
    assert.equal(out.stdout, `Removing login credentials for ${authReg.host}\n`);
    assert.equal(JSON.parse(readFileSync(cfgFile, 'utf8')).auths[authReg.host], undefined);
    await berth(['rmi', `${authReg.host}/private/busybox:1`], { env });
    await berth(['pull', `${authReg.host}/private/busybox:1`], { env, code: 1 });
    // On a terminal, the daemon's 401 makes berth ask for credentials and retry (nothing stored).
    const typed = await run('sh', ['-c', `(sleep 1.5; printf '${TEST_USER}\\n'; sleep 1; printf '${TEST_PASSWORD}\\n'; sleep 4) | script -qec "${process.execPath} ${BERTH_BIN} -H ${d.host} pull -q ${authReg.host}/private/busybox:1; echo exit \\$?" /dev/null`],
      { env: { ...process.env, ...env, BERTH_AUTOSTART: '0' }, timeoutMs: 60_000 });
    assert.match(typed.stdout, new RegExp(`^\\r\\nLogin prior to pull:\\r\\nUsername: ${TEST_USER}\\r\\nPassword: \\r\\n${authReg.host.replace(/\./g, '\\.')}/private/busybox:1\\r\\nexit 0\\r\\n$`), typed.stdout);
    assert.equal(JSON.parse(readFileSync(cfgFile, 'utf8')).auths[authReg.host], undefined);
    await berth(['rmi', `${authReg.host}/private/busybox:1`], { env });
  });

  test('image prune and system prune: docker\'s report', async () => {
    const src = `${reg.host}/library/busybox`;
    await berth(['pull', '-q', src]);
    const none = await berth(['image', 'prune', '-f']);
    assert.equal(none.stdout, 'Total reclaimed space: 0B\n');
    const declined = await berth(['image', 'prune', '-a'], { input: 'n\n' });
    assert.equal(declined.stdout, 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] ');
    const all = await berth(['image', 'prune', '-a', '-f']);
    assert.match(all.stdout, /^Deleted Images:\n((untagged: .*|deleted: sha256:[0-9a-f]{64})\n)+\nTotal reclaimed space: \d+(\.\d+)?[kMG]?B\n$/);
    assert.equal((await berth(['images', '-q'])).stdout, '');
    const sys = await berth(['system', 'prune', '-a', '-f', '--volumes']);
    assert.equal(sys.stdout, 'Total reclaimed space: 0B\n');
    await sameAsDocker(['system', 'df']);
  });

  test('pull --platform picks the image of that platform; pull -a gets every tag', async () => {
    const r = await berth(['pull', '--platform', 'linux/arm64', `${reg.host}/arch`]);
    assert.match(r.stdout, new RegExp(`\\n${reg.host.replace(/\./g, '\\.')}/arch:latest\\n$`));
    const a = await berth(['image', 'inspect', '-f', '{{.Os}}/{{.Architecture}}/{{.Variant}}', `${reg.host}/arch`]);
    assert.equal(a.stdout, 'linux/arm64/v8\n');
    const all = await berth(['pull', '-a', `${reg.host}/tags/busybox`]);
    assert.match(all.stdout, new RegExp(`\\n${reg.host.replace(/\./g, '\\.')}/tags/busybox\\n$`));
    assert.doesNotMatch(all.stdout, /Using default tag/);
    const tags = await berth(['images', '--format', '{{.Tag}}', `${reg.host}/tags/busybox`]);
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['1', '2']);
    const refused = await berth(['pull', '-a', `${reg.host}/tags/busybox:1`], { code: 1 });
    assert.equal(refused.stderr, "tag can't be used with --all-tags/-a\n");
    await berth(['rmi', `${reg.host}/arch`, `${reg.host}/tags/busybox:1`, `${reg.host}/tags/busybox:2`]);
  });
});
