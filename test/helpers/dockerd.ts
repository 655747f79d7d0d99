// A private reference dockerd (Debian's docker.io 20.10) for side-by-side CLI tests: its own
// mount namespace (a tmpfs /run, so it never touches the host's /run/docker*), its own network
// namespace (its docker0 bridge and docker-proxy live there; iptables off), its own containerd,
// data root, socket and cgroup parent (`berth-test-dockerd-<suffix>`). The socket is a path in a
// temp dir, reachable from the host because unix socket paths are not per network namespace.
//
//   const r = await ReferenceDockerd.start();   // throws when dockerd/containerd/runc are absent
//   await r.docker(['ps', '-a']);               // the docker CLI against it
//   await r.stop();                              // kills its processes by PID, removes mounts, cgroups, dirs
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DOCKER_BIN, run, type RunResult } from './daemon.ts';

const have = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** Why the reference dockerd cannot run here, or false. */
export function referenceDockerdSkip(): string | false {
  if (!existsSync(DOCKER_BIN)) return 'no docker CLI';
  for (const b of ['dockerd', 'containerd', 'runc', 'unshare']) if (!have(b)) return `${b} not installed`;
  if (process.getuid?.() !== 0) return 'needs root';
  return false;
}

// Runs inside `unshare -m -n`: the namespaces die with this shell's children.
const INNER = `#!/bin/sh
set -u
W=$1
mount --make-rprivate / 2>/dev/null
mount -t tmpfs tmpfs /run
ip link set lo up
printf 'version = 2\\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\\n' > $W/ctd.toml
containerd --config $W/ctd.toml --root $W/ctd/root --state $W/ctd/state --address $W/ctd/ctd.sock >$W/ctd.log 2>&1 &
CPID=$!
for i in $(seq 1 100); do [ -S $W/ctd/ctd.sock ] && break; sleep 0.1; done
dockerd --config-file $W/daemon.json >$W/dockerd.log 2>&1 &
DPID=$!
echo "$CPID $DPID" > $W/pids
trap 'kill $DPID; wait $DPID; kill $CPID; wait $CPID; exit 0' TERM INT
wait $DPID
kill $CPID 2>/dev/null; wait $CPID
`;

export class ReferenceDockerd {
  private constructor(
    readonly work: string,
    readonly socket: string,
    readonly cgroupParent: string,
    private readonly child: ChildProcess,
  ) {}

  get host(): string { return `unix://${this.socket}`; }

  static async start(): Promise<ReferenceDockerd> {
    const skip = referenceDockerdSkip();
    if (skip) throw new Error(`reference dockerd unavailable: ${skip}`);
    const work = mkdtempSync('/var/tmp/berth-refd.');
    for (const sub of ['ctd', 'data', 'exec', 'cli']) mkdirSync(join(work, sub), { recursive: true });
    const cgroupParent = `berth-test-dockerd-${randomBytes(4).toString('hex')}`;
    writeFileSync(join(work, 'daemon.json'), JSON.stringify({
      'data-root': join(work, 'data'), 'exec-root': join(work, 'exec'), pidfile: join(work, 'docker.pid'),
      hosts: [`unix://${join(work, 'docker.sock')}`], containerd: join(work, 'ctd', 'ctd.sock'),
      'storage-driver': 'overlay2', iptables: false, 'ip-masq': false, 'ip-forward': false, ip6tables: false,
      'cgroup-parent': `/${cgroupParent}`, 'exec-opts': ['native.cgroupdriver=cgroupfs'],
      bip: '10.213.0.1/24', 'userland-proxy': true,
    }));
    writeFileSync(join(work, 'inner.sh'), INNER, { mode: 0o755 });
    const child = spawn('unshare', ['-m', '-n', '--propagation', 'private', join(work, 'inner.sh'), work], { stdio: 'ignore' });
    const r = new ReferenceDockerd(work, join(work, 'docker.sock'), cgroupParent, child);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (existsSync(r.socket) && (await r.docker(['version'], { timeoutMs: 10_000 })).code === 0) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        const log = existsSync(join(work, 'dockerd.log')) ? readFileSync(join(work, 'dockerd.log'), 'utf8').slice(-3000) : '';
        await r.stop();
        throw new Error(`reference dockerd did not start:\n${log}`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    return r;
  }

  docker(args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return run(DOCKER_BIN, ['-H', this.host, ...args], {
      env: { ...process.env, DOCKER_CONFIG: join(this.work, 'cli'), DOCKER_HOST: '', ...opts.env },
      input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000,
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.pid) {
      // The shell in the namespaces stops dockerd, then containerd, by their PIDs.
      let pids: number[] = [];
      try { pids = readFileSync(join(this.work, 'pids'), 'utf8').trim().split(/\s+/).map(Number); } catch { /* not started */ }
      const exited = new Promise<void>((res) => this.child.once('exit', () => res()));
      if (pids[1]) { try { process.kill(pids[1], 'SIGTERM'); } catch { /* gone */ } }
      const t = setTimeout(() => { try { this.child.kill('SIGKILL'); } catch { /* gone */ } for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } }, 20_000);
      await exited;
      clearTimeout(t);
      if (pids[0]) { try { process.kill(pids[0], 'SIGTERM'); } catch { /* gone */ } }
    }
    // Container shims outlive containerd by design; ours are found by their -address.
    const ps = spawnSync('sh', ['-c', `ps -eo pid=,args= | grep -F -- '${this.work}/' | grep -v grep | awk '{print $1}'`], { encoding: 'utf8' });
    for (const pid of ps.stdout.split('\n').map(Number).filter((p) => p > 0 && p !== process.pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await new Promise((res) => setTimeout(res, 300));
    for (const ctrl of readdirSync('/sys/fs/cgroup')) removeCgroupTree(join('/sys/fs/cgroup', ctrl, this.cgroupParent));
    spawnSync('sh', ['-c', `grep -o " ${this.work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
    rmSync(this.work, { recursive: true, force: true });
  }
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  try { rmdirSync(dir); } catch { /* busy or gone */ }
}
