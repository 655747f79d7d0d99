// The run form's fields → a /containers/create body, with docker run's syntax for each field.
// Pure; unit-tested.
import { ramInBytes } from '../../api/units.ts';

export class RunSpecError extends Error {
  override name = 'RunSpecError';
}

export interface RunFields {
  image: string;
  name?: string;
  command?: string;
  /** One per line or comma: "8080:80", "127.0.0.1:8080:80/tcp", "80". */
  ports?: string;
  /** One KEY=VALUE per line. */
  env?: string;
  /** One per line: "/host:/ctr[:ro]" or "volname:/ctr". */
  volumes?: string;
  /** "256m", "1g", bytes. */
  memory?: string;
  /** "0.5", "2". */
  cpus?: string;
  restart?: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  tty?: boolean;
}

/** Splits a command line as a POSIX shell would (quotes and backslashes; no expansion). */
export function splitCommand(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined; else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) cur += text[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c; has = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i]; has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = ''; has = false;
    } else {
      cur += c; has = true;
    }
  }
  if (quote) throw new RunSpecError(`unterminated ${quote === '"' ? 'double' : 'single'} quote in the command`);
  if (has || cur) out.push(cur);
  return out;
}

/** docker's RAMInBytes (512, 512k, 256m, 1g: binary units), with docker run's minimum. */
export function parseMemory(text: string): number {
  let v: number;
  try {
    v = ramInBytes(text);
  } catch {
    throw new RunSpecError(`invalid memory size "${text}" (examples: 256m, 1g)`);
  }
  if (v > 0 && v < 6 * 1024 * 1024) throw new RunSpecError('the memory limit must be at least 6MB');
  return v;
}

function lines(text: string | undefined, commas = false): string[] {
  return (text ?? '').split(commas ? /[\n,]/ : /\n/).map((l) => l.trim()).filter(Boolean);
}

export interface CreateBody {
  Image: string;
  Cmd?: string[];
  Env?: string[];
  Tty?: boolean;
  OpenStdin?: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  HostConfig: {
    PortBindings?: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    Binds?: string[];
    Memory?: number;
    NanoCpus?: number;
    RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  };
}

export function createBody(f: RunFields): CreateBody {
  const image = f.image.trim();
  if (!image) throw new RunSpecError('an image is required');
  if (/\s/.test(image)) throw new RunSpecError(`invalid image reference "${image}"`);
  const body: CreateBody = { Image: image, HostConfig: {} };
  const cmd = f.command?.trim() ? splitCommand(f.command) : [];
  if (cmd.length) body.Cmd = cmd;
  const env = lines(f.env);
  for (const e of env) if (e.startsWith('=')) throw new RunSpecError(`invalid environment variable "${e}"`);
  if (env.length) body.Env = env;
  if (f.tty) { body.Tty = true; body.OpenStdin = true; }
  for (const spec of lines(f.ports, true)) {
    const m = /^(?:(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d*):)?(\d+)(?:\/(tcp|udp|sctp))?$/.exec(spec);
    if (!m) throw new RunSpecError(`invalid port mapping "${spec}" (examples: 8080:80, 127.0.0.1:8080:80/tcp, 80)`);
    const [, ip, hostPort, ctrPort, proto = 'tcp'] = m;
    if (Number(ctrPort) < 1 || Number(ctrPort) > 65535 || (hostPort && Number(hostPort) > 65535)) throw new RunSpecError(`port out of range in "${spec}"`);
    const key = `${ctrPort}/${proto}`;
    (body.ExposedPorts ??= {})[key] = {};
    const binding = { HostIp: (ip ?? '').replace(/^\[|\]$/g, ''), HostPort: hostPort ?? '' };
    if (hostPort !== undefined) ((body.HostConfig.PortBindings ??= {})[key] ??= []).push(binding);
  }
  const binds = lines(f.volumes);
  for (const b of binds) {
    const parts = b.split(':');
    if (parts.length < 2 || parts.length > 3 || !parts[1].startsWith('/')) throw new RunSpecError(`invalid volume "${b}" (examples: /host/dir:/data, myvolume:/data:ro)`);
  }
  if (binds.length) body.HostConfig.Binds = binds;
  if (f.memory?.trim()) body.HostConfig.Memory = parseMemory(f.memory);
  if (f.cpus?.trim()) {
    const c = Number(f.cpus);
    if (!Number.isFinite(c) || c <= 0) throw new RunSpecError(`invalid number of CPUs "${f.cpus}"`);
    body.HostConfig.NanoCpus = Math.round(c * 1e9);
  }
  if (f.restart && f.restart !== 'no') body.HostConfig.RestartPolicy = { Name: f.restart };
  return body;
}
