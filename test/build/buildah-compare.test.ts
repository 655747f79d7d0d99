// The same Dockerfiles built by Berth and by Debian's buildah give the same filesystem tree
// (paths, types, modes, owners, contents, link targets; not times) and the same config fields.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildahAvailable, buildahBuild, readDockerArchive, treeDiff } from '../helpers/buildah.ts';
import { importBusybox } from '../helpers/containers.ts';
import { TestDaemon } from '../helpers/daemon.ts';

const skip = buildahAvailable() ? false : 'buildah is not installed (apt-get install buildah)';
let d: TestDaemon;
let work: string;
let baseArchive: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-vs-buildah-'));
  d = await TestDaemon.start();
  await importBusybox(d, work);
  baseArchive = join(work, 'busybox.tar');
  const r = await d.docker(['save', '-o', baseArchive, 'busybox:latest']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Labels', 'ExposedPorts', 'Volumes', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];
const empty = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

let n = 0;
async function compare(files: Record<string, string | [string, number]>, opts: { buildArgs?: Record<string, string>; target?: string; setup?: (dir: string) => void } = {}): Promise<void> {
  const dir = join(work, `ctx${++n}`);
  mkdirSync(dir);
  for (const [name, v] of Object.entries(files)) {
    const [content, mode] = typeof v === 'string' ? [v, 0o644] : v;
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
    chmodSync(join(dir, name), mode);
  }
  opts.setup?.(dir);
  const tag = `cmp${n}:latest`;
  const args = ['build', '-q', '-t', tag];
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  if (opts.target) args.push('--target', opts.target);
  const r = await d.docker([...args, dir], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 180_000 });
  assert.equal(r.code, 0, `berth build: ${r.stdout}\n${r.stderr}`);
  const saved = join(work, `berth${n}.tar`);
  const s = await d.docker(['save', '-o', saved, tag]);
  assert.equal(s.code, 0, s.stderr);
  const ours = await readDockerArchive(saved);
  const theirs = await buildahBuild(dir, { baseArchive, baseName: 'busybox:latest', buildArgs: opts.buildArgs, target: opts.target, tag });
  // buildah's RUN leaves its own mount points behind (an empty /etc/hostname, an empty /run);
  // docker's builder does not, and neither do we. Only those, only when empty and absent from ours.
  const buildahArtifact = (p: string) => !ours.tree.has(p) && ((p === '/etc/hostname' && theirs.tree.get(p)?.size === 0) || (p === '/run' && theirs.tree.get(p)?.type === 'dir'
    && ![...theirs.tree.keys()].some((k) => k.startsWith('/run/'))));
  const diff = treeDiff(ours.tree, theirs.tree, buildahArtifact);
  assert.deepEqual(diff, [], `filesystem trees differ (Berth first, buildah second):\n${diff.join('\n')}`);
  const a = ours.config.config as Record<string, unknown>;
  const b = theirs.config.config as Record<string, unknown>;
  // buildah stamps its version as a label.
  if (b.Labels) delete (b.Labels as Record<string, string>)['io.buildah.version'];
  for (const f of CONFIG_FIELDS) {
    if (empty(a[f]) && empty(b[f])) continue;
    assert.deepEqual(a[f], b[f], `config.${f}: Berth ${JSON.stringify(a[f])} vs buildah ${JSON.stringify(b[f])}`);
  }
}

test('metadata instructions: ENV, ARG, LABEL, EXPOSE, WORKDIR, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, CMD, ENTRYPOINT, ONBUILD', { skip, timeout: 300_000 }, async () => {
  await compare({
    Dockerfile: [
      'FROM busybox', 'ARG VERSION=1.0', 'ENV APP=/opt/app VERSION=$VERSION', 'ENV PATH=/opt/app/bin:$PATH',
      'LABEL org.example.version=$VERSION description="two words"', 'EXPOSE 8080 53/udp', 'WORKDIR $APP', 'WORKDIR sub',
      'USER 1000:1000', 'VOLUME ["/data"]', 'STOPSIGNAL SIGQUIT', 'HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD wget -q -O- http://localhost/ || exit 1',
      'SHELL ["/bin/sh", "-xc"]', 'ONBUILD RUN echo child', 'ENTRYPOINT ["/bin/sh", "-c"]', 'CMD ["echo $APP"]', '',
    ].join('\n'),
  }, { buildArgs: { VERSION: '2.5' } });
});

test('RUN, COPY (--chown, --chmod, directories, globs, symlinks), ADD of a tar.gz, deletions', { skip, timeout: 300_000 }, async () => {
  await compare({
    'app/main.sh': ['#!/bin/sh\necho main\n', 0o755],
    'app/lib/util.sh': 'util\n',
    'conf/a.conf': 'a\n',
    'conf/b.conf': 'b\n',
    'notes.txt': 'notes\n',
    Dockerfile: [
      'FROM busybox',
      'RUN mkdir -p /srv/data && echo created > /srv/data/file && rm -rf /etc/motd /home && mkdir /var/empty-dir',
      'COPY app /srv/app',
      'COPY conf/*.conf /etc/app/',
      'COPY --chown=1000:1000 --chmod=640 notes.txt /srv/notes.txt',
      'ADD payload.tar.gz /srv/unpacked/',
      'RUN rm /srv/data/file && mkdir -p /usr/local/bin && ln -s /srv/app/main.sh /usr/local/bin/app && chmod 700 /srv/data',
      '',
    ].join('\n'),
  }, {
    setup: (dir) => {
      symlinkSync('main.sh', join(dir, 'app', 'entry'));
      const payload = join(dir, '..', `payload${n}`);
      mkdirSync(join(payload, 'pkg'), { recursive: true });
      writeFileSync(join(payload, 'pkg', 'data.bin'), 'binary\n');
      assert.equal(spawnSync('tar', ['-czf', join(dir, 'payload.tar.gz'), '--owner=0', '--group=0', '-C', payload, 'pkg']).status, 0);
    },
  });
});

test('multi-stage: COPY --from a stage, --target', { skip, timeout: 300_000 }, async () => {
  await compare({
    Dockerfile: [
      'FROM busybox AS build', 'RUN mkdir /out && echo artifact > /out/artifact && chmod 750 /out',
      'FROM busybox AS final', 'COPY --from=build /out /opt/out', 'CMD ["cat", "/opt/out/artifact"]',
      'FROM final AS debug', 'RUN echo debug > /debug', '',
    ].join('\n'),
  }, { target: 'final' });
});
