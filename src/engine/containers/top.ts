// GET /containers/{id}/top: the host's `ps` output, cut to the container's processes, as docker
// does it (daemon/top_unix.go, facts only): `ps <args> -q <pids>` (procps's quick pid selection;
// without it, or when it fails, plain `ps <args>`), the header's words are the titles, a row is
// kept when its PID column names one of the container's processes, and the last column takes the
// rest of the line (a command with spaces). Rows whose PID is "-" (threads, with -L/-T) follow
// the process row before them.
import { spawnSync } from 'node:child_process';

export interface TopResponse {
  Titles: string[];
  Processes: string[][];
}

/** ps failed or printed something `top` cannot use; messages are docker's. */
export class ContainerTopError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerTopError';
  }
}

/** docker refuses ps arguments that rename the PID column ("x=PID" with x other than pid): rows could not be matched. */
export function validatePsArgs(psArgs: string): void {
  for (const m of psArgs.matchAll(/\s+(\S*)=\s*(PID\S*)/g)) {
    if (m[1] !== 'pid') throw new ContainerTopError(`specifying "${m[1]}=${m[2]}" is not allowed`);
  }
}

const fields = (line: string): string[] => line.split(/[\t\n\f\r ]+/).filter(Boolean);

/** Keeps the rows of `ps` output whose PID is one of `pids`. */
export function parsePsOutput(output: string, pids: number[]): TopResponse {
  const lines = output.split('\n');
  const titles = fields(lines[0] ?? '');
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new ContainerTopError("Couldn't find PID field in ps output");
  const want = new Set(pids);
  const processes: string[][] = [];
  const row = (f: string[]): string[] => [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
  let previousKept = false;
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const f = fields(line);
    if (f.length === 0) continue;
    const pidText = f[pidIndex];
    if (pidText === '-') {
      if (previousKept) processes.push(row(f));
      continue;
    }
    if (pidText === undefined || !/^-?\d+$/.test(pidText)) throw new ContainerTopError(`Unexpected pid '${pidText ?? ''}': invalid syntax`);
    previousKept = want.has(Number(pidText));
    if (previousKept) processes.push(row(f));
  }
  return { Titles: titles, Processes: processes };
}

/** `docker top`: runs `ps` on the host with `psArgs` (default "-ef") and keeps the container's processes. */
export function containerTop(pids: number[], psArgs = '-ef'): TopResponse {
  const argsText = psArgs === '' ? '-ef' : psArgs;
  validatePsArgs(argsText);
  // docker splits on single spaces (no quoting), so "-o pid,comm" is two arguments.
  const args = argsText.split(' ');
  const run = (extra: string[]) => spawnSync('ps', [...args, ...extra], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  let r = pids.length ? run(['-q', pids.join(',')]) : undefined;
  if (!r || r.status !== 0 || r.error) {
    r = run([]);
    if (r.error) throw new ContainerTopError(`ps: ${r.error.message}`);
    if (r.status !== 0) {
      const first = (r.stderr ?? '').split('\n')[0];
      throw new ContainerTopError(`ps: ${first || `exit status ${r.status ?? r.signal}`}`);
    }
  }
  return parsePsOutput(r.stdout, pids);
}
