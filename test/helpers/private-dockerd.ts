// A private dockerd (Debian's docker.io 20.10) as a reference server for CLI tests: its own
// containerd, data root, exec root and socket, in its own mount namespace (a tmpfs over /run
// there), with no bridge, no iptables and no IP forwarding so it creates no host network
// objects, and a per-run cgroup parent so its cgroups can be found and removed. Stopped by PID.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBusyboxRootfs, tarDirectory } from './images.ts';

export const DOCKER_BIN = process.env.BERTH_TEST_DOCKER ?? '/usr/local/bin/docker';

const have = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** Why the private dockerd cannot run here, or false. */
export function privateDockerdSkip(): string | false {
  if (!existsSync(DOCKER_BIN)) return 'no docker CLI';
  if (!have('dockerd') || !have('containerd') || !have('unshare')) return 'dockerd/containerd/unshare not installed';
  if (process.getuid?.() !== 0) return 'needs root';
  return false;
}

const START = `#!/bin/sh
W=$1
mount -t tmpfs tmpfs /run || exit 1
mkdir -p $W/ctd $W/data $W/exec
printf 'version = 2\\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\\n' > $W/ctd.toml
containerd --config $W/ctd.toml --root $W/ctd/root --state $W/ctd/state --address $W/ctd/ctd.sock >$W/ctd.log 2>&1 &
echo $! > $W/ctd.pid
for i in $(seq 1 100); do [ -S $W/ctd/ctd.sock ] && break; sleep 0.1; done
exec dockerd --config-file $W/daemon.json >$W/dockerd.log 2>&1
`;

export class PrivateDockerd {
  private constructor(readonly work: string, readonly pid: number, readonly cgroupParent: string) {}

  get socket(): string { return join(this.work, 'docker.sock'); }
  get host(): string { return `unix://${this.socket}`; }

  static async start(): Promise<PrivateDockerd> {
    const work = mkdtempSync('/var/tmp/berth-pdockerd.');
    const suffix = work.slice(work.lastIndexOf('.') + 1).toLowerCase().replace(/[^a-z0-9]/g, '');
    const cgroupParent = `berthtest-${suffix}`;
    writeFileSync(join(work, 'start.sh'), START, { mode: 0o755 });
    writeFileSync(join(work, 'daemon.json'), JSON.stringify({
      'data-root': join(work, 'data'), 'exec-root': join(work, 'exec'), pidfile: join(work, 'docker.pid'),
      hosts: [`unix://${join(work, 'docker.sock')}`], containerd: join(work, 'ctd', 'ctd.sock'), 'storage-driver': 'overlay2',
      iptables: false, ip6tables: false, 'ip-masq': false, 'ip-forward': false, bridge: 'none', 'cgroup-parent': cgroupParent,
    }));
    const child = spawn('unshare', ['-m', '--propagation', 'private', join(work, 'start.sh'), work], { stdio: 'ignore', detached: true });
    child.unref();
    const d = new PrivateDockerd(work, child.pid!, cgroupParent);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (existsSync(d.socket) && spawnSync(DOCKER_BIN, ['-H', d.host, 'version'], { stdio: 'ignore' }).status === 0) break;
      if (Date.now() > deadline || child.exitCode !== null) {
        const log = existsSync(join(work, 'dockerd.log')) ? readFileSync(join(work, 'dockerd.log'), 'utf8').slice(-2000) : '';
        await d.stop();
        throw new Error(`private dockerd did not start:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return d;
  }

  docker(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(DOCKER_BIN, ['-H', this.host, ...args], { input, encoding: 'utf8', timeout: 120_000, env: { ...process.env, DOCKER_CONFIG: join(this.work, 'cli') } });
    return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  /** A busybox image from the test rootfs, as `busybox:latest` (docker import: no registry, no network). */
  importBusybox(): void {
    const root = mkdtempSync('/tmp/berth-bbroot-');
    try {
      makeBusyboxRootfs(root);
      const tar = join(this.work, 'busybox.tar');
      writeFileSync(tar, tarDirectory(root));
      const r = this.docker(['import', '-c', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '-c', 'CMD ["sh"]', tar, 'busybox:latest']);
      if (r.status !== 0) throw new Error(`docker import: ${r.stderr}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  async stop(): Promise<void> {
    // Containers first (their shims would outlive containerd), then dockerd, then containerd.
    if (existsSync(this.socket)) {
      const ids = this.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length) this.docker(['rm', '-f', ...ids]);
    }
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const stopPid = async (pid: number): Promise<void> => {
      if (!alive(pid)) return;
      try { process.kill(pid, 'SIGTERM'); } catch { return; }
      for (let i = 0; i < 150 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    };
    await stopPid(this.pid);
    const ctdPidFile = join(this.work, 'ctd.pid');
    if (existsSync(ctdPidFile)) await stopPid(Number(readFileSync(ctdPidFile, 'utf8').trim()));
    // The cgroups dockerd made under our parent, deepest first, in every hierarchy.
    for (const base of ['/sys/fs/cgroup', ...(existsSync('/sys/fs/cgroup/memory') ? readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c)) : [])]) {
      const top = join(base, this.cgroupParent);
      if (!existsSync(top)) continue;
      for (const sub of readdirSync(top, { withFileTypes: true })) if (sub.isDirectory()) try { rmdirSync(join(top, sub.name)); } catch { /* busy or gone */ }
      try { rmdirSync(top); } catch { /* busy or gone */ }
    }
    rmSync(this.work, { recursive: true, force: true });
  }
}
