// docker create's body → the stored container Config (merged with the image's, as dockerd merges
// them) and → oci-spec.ts RunOptions. Pure functions; the service does the I/O.
import type { ContainerConfig } from '../../image/types.ts';
import { RunOptionsError, type RunOptions } from '../oci-spec.ts';
import type { DockerContainerConfig, DockerHostConfig } from './types.ts';

/** A create request docker would refuse (400 unless noted). */
export class ContainerConfigError extends RunOptionsError {
  override name = 'ContainerConfigError';
}

const envKey = (e: string): string => e.split('=', 1)[0]!;

/** dockerd's merge of the user's Config over the image's (daemon/commit.go merge). */
export function mergeImageConfig(user: DockerContainerConfig, image: ContainerConfig): DockerContainerConfig {
  const out: DockerContainerConfig = { ...user };
  if (!out.User) out.User = image.User ?? '';
  if (image.ExposedPorts) out.ExposedPorts = { ...image.ExposedPorts, ...(out.ExposedPorts ?? {}) };
  const userEnv = out.Env ?? [];
  if (userEnv.length === 0) out.Env = [...(image.Env ?? [])];
  else {
    const keys = new Set(userEnv.map(envKey));
    out.Env = [...userEnv, ...(image.Env ?? []).filter((e) => !keys.has(envKey(e)))];
  }
  out.Labels = { ...(image.Labels ?? {}), ...(out.Labels ?? {}) };
  if (!out.Entrypoint || out.Entrypoint.length === 0) {
    if (!out.Cmd || out.Cmd.length === 0) {
      out.Cmd = image.Cmd ?? null;
      out.ArgsEscaped = image.ArgsEscaped;
    }
    if (out.Entrypoint === undefined || out.Entrypoint === null) out.Entrypoint = image.Entrypoint ?? null;
  }
  // `--entrypoint ""` arrives as [""]: no entrypoint at all (and the image's Cmd is not used).
  if (out.Entrypoint && out.Entrypoint.length === 1 && out.Entrypoint[0] === '') out.Entrypoint = null;
  if (!out.WorkingDir) out.WorkingDir = image.WorkingDir ?? '';
  if (image.Volumes) out.Volumes = { ...image.Volumes, ...(out.Volumes ?? {}) };
  if (!out.StopSignal && image.StopSignal) out.StopSignal = image.StopSignal;
  if (!out.Healthcheck && image.Healthcheck) out.Healthcheck = image.Healthcheck;
  if (!out.Shell && image.Shell) out.Shell = image.Shell;
  if (!out.OnBuild && image.OnBuild) out.OnBuild = image.OnBuild;
  return out;
}

/** Path and Args as inspect shows them (dockerd getEntrypointAndArgs). */
export function entrypointAndArgs(config: DockerContainerConfig): { path: string; args: string[] } {
  const ep = config.Entrypoint ?? [];
  const cmd = config.Cmd ?? [];
  if (ep.length > 0) return { path: ep[0]!, args: [...ep.slice(1), ...cmd] };
  if (cmd.length === 0) throw new ContainerConfigError('no command specified');
  return { path: cmd[0]!, args: cmd.slice(1) };
}

const RESTART_POLICIES = new Set(['', 'no', 'always', 'on-failure', 'unless-stopped']);

/** dockerd's checks of a HostConfig at create (the ones that do not need other services). */
export function validateHostConfig(hc: DockerHostConfig, config: DockerContainerConfig): void {
  const rp = hc.RestartPolicy ?? {};
  const name = rp.Name ?? '';
  if (!RESTART_POLICIES.has(name)) throw new ContainerConfigError(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  if ((rp.MaximumRetryCount ?? 0) < 0) throw new ContainerConfigError('invalid restart policy: maximum retry count must be a positive integer');
  if (name !== 'on-failure' && (rp.MaximumRetryCount ?? 0) > 0) throw new ContainerConfigError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  if (hc.AutoRemove && name !== '' && name !== 'no') throw new ContainerConfigError(`conflicting options: cannot use auto-remove and restart policy`);
  if (hc.Memory !== undefined && hc.Memory > 0 && hc.Memory < 6 * 1024 * 1024) throw new ContainerConfigError('Minimum memory limit allowed is 6MB');
  if (hc.MemorySwap !== undefined && hc.MemorySwap > 0 && hc.Memory !== undefined && hc.Memory > 0 && hc.MemorySwap < hc.Memory) {
    throw new ContainerConfigError('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (hc.NanoCpus && (hc.CpuQuota || hc.CpuPeriod)) throw new ContainerConfigError('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (hc.NanoCpus !== undefined && hc.NanoCpus < 0) throw new ContainerConfigError('Range of CPUs is from 0.01 to the number of CPUs available');
  if (config.StopTimeout !== undefined && config.StopTimeout !== null && config.StopTimeout < -1) throw new ContainerConfigError('invalid stop timeout');
  const nm = hc.NetworkMode ?? '';
  if ((nm === 'host' || nm.startsWith('container:')) && config.Hostname && nm.startsWith('container:')) {
    throw new ContainerConfigError('conflicting options: hostname and the network mode');
  }
  if (nm.startsWith('container:') && (hc.PortBindings && Object.keys(hc.PortBindings).length > 0 || hc.PublishAllPorts)) {
    throw new ContainerConfigError('conflicting options: port publishing and the container type network mode');
  }
  if (nm.startsWith('container:') && (hc.Dns?.length || hc.ExtraHosts?.length)) {
    throw new ContainerConfigError('conflicting options: dns and the network mode');
  }
  for (const opt of hc.SecurityOpt ?? []) parseSecurityOpt(opt);
}

export interface SecurityOpts { noNewPrivileges?: boolean; seccomp?: string }

/** --security-opt values as the docker CLI sends them (seccomp=<profile JSON>, not a path). */
export function parseSecurityOpt(opt: string, into: SecurityOpts = {}): SecurityOpts {
  if (opt === 'no-new-privileges') { into.noNewPrivileges = true; return into; }
  const sep = opt.search(/[=:]/);
  if (sep < 0) throw new ContainerConfigError(`Invalid --security-opt: "${opt}"`);
  const key = opt.slice(0, sep);
  const value = opt.slice(sep + 1);
  switch (key) {
    case 'no-new-privileges': {
      if (!['true', 'false', '1', '0'].includes(value)) throw new ContainerConfigError(`invalid --security-opt 2: "${opt}"`);
      into.noNewPrivileges = value === 'true' || value === '1';
      return into;
    }
    case 'seccomp': into.seccomp = value; return into;
    // No SELinux or AppArmor on the hosts Berth supports: accepted and ignored, as dockerd does
    // when the LSM is not enabled.
    case 'label': case 'apparmor': case 'systempaths': case 'writable-cgroups': return into;
    default: throw new ContainerConfigError(`invalid --security-opt 2: "${opt}"`);
  }
}

function namespaceMode(mode: string | undefined): 'host' | 'private' {
  return mode === 'host' ? 'host' : 'private';
}

/** The parts of RunOptions that come from the stored Config and HostConfig. */
export function runOptionsFrom(id: string, rootfs: string, config: DockerContainerConfig, hc: DockerHostConfig, cgroupV2: boolean): RunOptions {
  const sec = (hc.SecurityOpt ?? []).reduce<SecurityOpts>((acc, o) => parseSecurityOpt(o, acc), {});
  let seccomp: RunOptions['seccomp'];
  if (sec.seccomp === 'unconfined') seccomp = 'unconfined';
  else if (sec.seccomp !== undefined) {
    try {
      seccomp = JSON.parse(sec.seccomp);
    } catch (err) {
      throw new ContainerConfigError(`Decoding seccomp profile failed: ${(err as Error).message}`);
    }
  }
  const opts: RunOptions = {
    id,
    rootfs,
    env: config.Env ?? [],
    workingDir: config.WorkingDir || undefined,
    user: config.User || undefined,
    groupAdd: hc.GroupAdd ?? undefined,
    hostname: config.Hostname || undefined,
    domainname: config.Domainname || undefined,
    tty: config.Tty === true,
    capAdd: hc.CapAdd ?? undefined,
    capDrop: hc.CapDrop ?? undefined,
    privileged: hc.Privileged === true,
    readOnly: hc.ReadonlyRootfs === true,
    noNewPrivileges: sec.noNewPrivileges,
    seccomp,
    memory: hc.Memory || undefined,
    memorySwap: hc.MemorySwap || undefined,
    cpus: hc.NanoCpus ? hc.NanoCpus / 1e9 : undefined,
    cpuShares: hc.CpuShares || undefined,
    pidsLimit: hc.PidsLimit ?? undefined,
    ulimits: (hc.Ulimits ?? []).map((u) => `${u.Name}=${u.Soft}:${u.Hard}`),
    sysctls: hc.Sysctls ?? undefined,
    tmpfs: hc.Tmpfs ?? undefined,
    shmSize: hc.ShmSize || undefined,
    network: (hc.NetworkMode ?? '') === 'host' ? 'host' : 'private',
    pid: namespaceMode(hc.PidMode),
    ipc: namespaceMode(hc.IpcMode),
    uts: namespaceMode(hc.UTSMode),
    cgroupns: hc.CgroupnsMode === 'host' || hc.CgroupnsMode === 'private' ? hc.CgroupnsMode : undefined,
    cgroupV2,
    devices: hc.Devices ?? undefined,
    deviceCgroupRules: hc.DeviceCgroupRules ?? undefined,
    labels: config.Labels ?? undefined,
    stopSignal: config.StopSignal || undefined,
  };
  return opts;
}
