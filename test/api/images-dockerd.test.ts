// Side by side with a real dockerd (Debian's docker.io 20.10, in a private mount namespace with
// its own containerd, data root and sockets): the docker CLI's output for pull, images, history,
// push and rmi against berth daemon must equal its output against dockerd, after removing what
// is timing-dependent (intermediate progress lines) and what differs by design (the registry
// port; push manifest digests: dockerd 20.10 rewrites OCI manifests as schema2, Berth keeps the
// original bytes). Skipped when dockerd or containerd is not installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon } from '../helpers/daemon.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { buildBusyboxLayout, buildMultiLayerLayout, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';

const have = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const skip = !existsSync(DOCKER_BIN) ? 'no docker CLI' : !have('dockerd') || !have('containerd') ? 'dockerd/containerd not installed' : false;

// The session: one docker command per line, output separated by markers.
const STEPS = (r: string): string[][] => [
  ['pull', `${r}/library/busybox`],
  ['pull', `${r}/library/busybox`],
  ['pull', `${r}/multi:v2s2`],
  ['images'],
  ['images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}} {{.Size}}'],
  ['history', `${r}/multi:v2s2`],
  ['tag', `${r}/library/busybox`, `${r}/pushed/bb:v1`],
  ['push', `${r}/pushed/bb:v1`],
  ['rmi', `${r}/pushed/bb:v1`],
  ['rmi', `${r}/multi:v2s2`],
  ['rmi', 'nosuch'],
  ['pull', `${r}/nothere`],
  ['image', 'inspect', '--format', '{{.Id}} {{.RepoTags}} {{.Os}} {{.Architecture}} {{.Size}} {{.RootFS.Layers}}', `${r}/library/busybox`],
];

const INNER = `#!/bin/sh
set -u
W=$1; REG=$2; shift 2
mount -t tmpfs tmpfs /run
printf 'version = 2\\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\\n' > $W/ctd.toml
containerd --config $W/ctd.toml --root $W/ctd/root --state $W/ctd/state --address $W/ctd/ctd.sock >$W/ctd.log 2>&1 &
CPID=$!
for i in $(seq 1 100); do [ -S $W/ctd/ctd.sock ] && break; sleep 0.1; done
cat > $W/daemon.json <<J
{"data-root":"$W/data","exec-root":"$W/exec","pidfile":"$W/docker.pid","hosts":["unix://$W/docker.sock"],"containerd":"$W/ctd/ctd.sock","storage-driver":"overlay2","iptables":false,"ip-masq":false,"ip-forward":false,"bridge":"none","insecure-registries":["$REG"]}
J
dockerd --config-file $W/daemon.json >$W/dockerd.log 2>&1 &
DPID=$!
for i in $(seq 1 200); do [ -S $W/docker.sock ] && $DOCKER -H unix://$W/docker.sock version >/dev/null 2>&1 && break; sleep 0.1; done
export DOCKER_CONFIG=$W/cli
while IFS= read -r line; do
  echo "@@@ $line"
  eval "$DOCKER -H unix://$W/docker.sock $line" 2>&1
done < $W/steps
kill $DPID; wait $DPID 2>/dev/null; kill $CPID; wait $CPID 2>/dev/null
`;

let reg: TestRegistry;
let reg2: TestRegistry; // berth's: pushes change a registry, so each daemon gets its own copy
let d: TestDaemon;
let work: string;
const layouts: Layout[] = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  const bb = buildBusyboxLayout(tempLayoutDir());
  const multi = buildMultiLayerLayout(tempLayoutDir());
  layouts.push(bb, multi);
  await pushLayout(bb, reg.host, 'library/busybox:latest');
  await pushLayout(multi, reg.host, 'multi:v2s2', { format: 'v2s2' });
  reg2 = await startRegistry();
  await pushLayout(bb, reg2.host, 'library/busybox:latest');
  await pushLayout(multi, reg2.host, 'multi:v2s2', { format: 'v2s2' });
  work = mkdtempSync('/var/tmp/bdockerd.');
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
  await reg?.stop();
  await reg2?.stop();
  for (const l of layouts) rmSync(l.dir, { recursive: true, force: true });
  if (work) {
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  }
});

const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/** Output per step, with the registry port and timing-dependent progress lines removed. */
function normalise(text: string, host: string): string[] {
  const parts = text.split(/^@@@ .*$/m).slice(1);
  return parts.map((p) => p.split('\n')
    .filter((l) => !/: (Downloading|Verifying Checksum|Download complete|Extracting|Waiting|Pushing)\b/.test(l))
    .map((l) => l.split(host).join('REGISTRY').replace(/sha256:[0-9a-f]{64} size: \d+/, 'sha256:<manifest> size: <n>')
      .replace(/(pushed\/bb@)sha256:[0-9a-f]{64}/, '$1sha256:<manifest>'))
    .filter((l) => l.trim() !== '')
    .sort((a, b) => (/^REGISTRY/.test(a) && /^REGISTRY/.test(b) ? a.localeCompare(b) : 0))
    .join('\n'));
}

test('the docker CLI prints the same against berth daemon as against dockerd 20.10', { skip, timeout: 300_000 }, async () => {
  const steps = STEPS(reg.host);
  for (const sub of ['ctd', 'data', 'exec', 'cli']) spawnSync('mkdir', ['-p', join(work, sub)]);
  writeFileSync(join(work, 'steps'), steps.map((s) => s.map(quote).join(' ')).join('\n') + '\n');
  writeFileSync(join(work, 'inner.sh'), INNER, { mode: 0o755 });
  const real = spawnSync('unshare', ['-m', '--propagation', 'private', join(work, 'inner.sh'), work, reg.host],
    { encoding: 'utf8', timeout: 240_000, env: { ...process.env, DOCKER: DOCKER_BIN } });
  assert.equal(real.status, 0, real.stderr);
  let mine = '';
  for (const s of STEPS(reg2.host)) {
    const r = await d.docker(s, { timeoutMs: 120_000 });
    mine += `@@@ ${s.join(' ')}\n${r.stdout}${r.stderr}`;
  }
  const a = normalise(real.stdout, reg.host);
  const b = normalise(mine, reg2.host);
  assert.equal(a.length, steps.length, real.stdout);
  for (let i = 0; i < steps.length; i++) {
    assert.equal(b[i], a[i], `docker ${steps[i]!.join(' ')}\n--- dockerd:\n${a[i]}\n--- berth:\n${b[i]}`);
  }
});
