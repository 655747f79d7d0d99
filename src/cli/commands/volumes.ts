// `berth volume create/ls/inspect/rm/prune` as an Engine API client, with the docker CLI's
// flags, output and exit statuses (docker 28's volume commands and formatter).
import type { Command } from 'commander';
import { humanSize } from '../../api/units.ts';
import { CredentialStore, CredentialsError } from '../../image/registry/credentials.ts';
import { writeStdout } from '../../runtime/output.ts';
import type { EngineClient } from '../client.ts';
import { parseTemplate, renderList } from '../format/output.ts';
import { checkArgs, encodeFilters, errorMessage, parseFilterFlags, promptForConfirmation, inspectTemplate } from './common.ts';
import { goMarshal } from './images.ts';
import { ExitError } from './system.ts';

type Connect = () => Promise<EngineClient>;
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** GET /volumes/{name} and list items, as the daemon sends them. */
export interface VolumeJSON {
  CreatedAt?: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: string;
  Status?: Record<string, unknown>;
  UsageData?: { RefCount: number; Size: number } | null;
}

/** fvbommel/sortorder's NaturalLess (docker sorts `volume ls` with it): digit runs compare as numbers. */
export function naturalLess(x: string, y: string): boolean {
  // Go compares the UTF-8 bytes.
  const a = Buffer.from(x, 'utf8');
  const b = Buffer.from(y, 'utf8');
  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const d1 = isDigit(a[i]);
    const d2 = isDigit(b[j]);
    if (d1 !== d2) return d1;
    if (!d1) {
      if (a[i] !== b[j]) return a[i] < b[j];
      i++;
      j++;
      continue;
    }
    while (i < a.length && a[i] === 0x30) i++;
    while (j < b.length && b[j] === 0x30) j++;
    const s1 = i;
    const s2 = j;
    while (i < a.length && isDigit(a[i])) i++;
    while (j < b.length && isDigit(b[j])) j++;
    if (i - s1 !== j - s2) return i - s1 < j - s2;
    const c = Buffer.compare(a.subarray(s1, i), b.subarray(s2, j));
    if (c !== 0) return c < 0;
    if (s1 !== s2) return s1 < s2;
  }
  return a.length < b.length;
}

/** One row of `docker volume ls` (formatter.volumeContext). */
export class VolumeRow {
  static goType = 'formatter.volumeContext';
  constructor(private readonly v: VolumeJSON) {}
  get Name(): string { return this.v.Name; }
  get Driver(): string { return this.v.Driver; }
  get Scope(): string { return this.v.Scope; }
  get Mountpoint(): string { return this.v.Mountpoint; }
  get Labels(): string {
    if (!this.v.Labels) return '';
    return Object.entries(this.v.Labels).map(([k, x]) => `${k}=${x}`).sort().join(',');
  }
  Label(name: string): string { return this.v.Labels?.[name] ?? ''; }
  get Links(): string { return this.v.UsageData ? String(this.v.UsageData.RefCount) : 'N/A'; }
  get Size(): string { return this.v.UsageData ? humanSize(this.v.UsageData.Size) : 'N/A'; }
  get Group(): string { return 'N/A'; }
  get Availability(): string { return 'N/A'; }
  get Status(): string { return 'N/A'; }
  /** docker marshals a formatter context as a map of its niladic methods: keys sorted. */
  toJSON(): Record<string, string> {
    return {
      Availability: this.Availability, Driver: this.Driver, Group: this.Group, Labels: this.Labels, Links: this.Links,
      Mountpoint: this.Mountpoint, Name: this.Name, Scope: this.Scope, Size: this.Size, Status: this.Status,
    };
  }
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

export const VOLUME_HEADERS: Record<string, string> = {
  ID: 'ID', Name: 'VOLUME NAME', Group: 'GROUP', Driver: 'DRIVER', Scope: 'SCOPE', Availability: 'AVAILABILITY',
  Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE', Status: 'STATUS',
};
const VOLUME_TABLE = 'table {{.Driver}}\t{{.Name}}';

/** docker's NewVolumeFormat plus VolumeWrite, over volumes sorted as `docker volume ls` sorts them. */
export function renderVolumes(volumes: VolumeJSON[], opts: { format?: string; quiet?: boolean }): string {
  let format = opts.format || 'table';
  if (format === 'table') format = opts.quiet ? '{{.Name}}' : VOLUME_TABLE;
  else if (format === 'raw') format = opts.quiet ? 'name: {{.Name}}' : 'name: {{.Name}}\\ndriver: {{.Driver}}\\n';
  const sorted = [...volumes].sort((a, b) => (naturalLess(a.Name, b.Name) ? -1 : naturalLess(b.Name, a.Name) ? 1 : 0));
  return renderList(sorted.map((v) => new VolumeRow(v)), { format, defaultTable: VOLUME_TABLE, headers: VOLUME_HEADERS });
}

/** The daemon's volume as the docker CLI re-encodes it (Go struct order, sorted maps, HTML escapes). */
function goVolume(v: VolumeJSON): Record<string, unknown> {
  const sortMap = (m: Record<string, unknown> | null | undefined): Record<string, unknown> | null => {
    if (!m) return null;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(m).sort()) out[k] = m[k];
    return out;
  };
  const out: Record<string, unknown> = {};
  if (v.CreatedAt) out.CreatedAt = v.CreatedAt;
  out.Driver = v.Driver;
  out.Labels = sortMap(v.Labels);
  out.Mountpoint = v.Mountpoint;
  out.Name = v.Name;
  out.Options = sortMap(v.Options);
  out.Scope = v.Scope;
  if (v.Status && Object.keys(v.Status).length) out.Status = sortMap(v.Status);
  if (v.UsageData) out.UsageData = { RefCount: v.UsageData.RefCount, Size: v.UsageData.Size };
  return out;
}

/** A Go struct for templates: a field it lacks is an error, not "<no value>". */
class VolumeStruct {
  static goType = 'volume.Volume';
  constructor(v: VolumeJSON) {
    Object.assign(this, {
      ClusterVolume: null, CreatedAt: v.CreatedAt ?? '', Driver: v.Driver, Labels: v.Labels ?? {}, Mountpoint: v.Mountpoint,
      Name: v.Name, Options: v.Options ?? {}, Scope: v.Scope, Status: v.Status ?? {}, UsageData: v.UsageData ?? null,
    });
    Object.defineProperty(this, 'raw', { value: v, enumerable: false });
  }
  marshalJSON(): string { return goMarshal(goVolume((this as unknown as { raw: VolumeJSON }).raw)); }
}

/** config.json's "volumesFormat" (docker reads it for `volume ls` without --format or -q). */
async function configVolumesFormat(): Promise<string | undefined> {
  try {
    const cfg = await new CredentialStore().read();
    return typeof cfg.volumesFormat === 'string' && cfg.volumesFormat ? cfg.volumesFormat : undefined;
  } catch (e) {
    if (e instanceof CredentialsError) return undefined;
    throw e;
  }
}

/** Go's strings.Cut at the first "=": "k=v" → [k, v], "k" → [k, ""]. */
function kv(s: string): [string, string] {
  const i = s.indexOf('=');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

export interface VolumeCreateOptions { driver?: string; name?: string; opt?: string[]; label?: string[] }

export async function volumeCreateCommand(args: string[], opts: VolumeCreateOptions, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'volume create', usage: '[OPTIONS] [VOLUME]', short: 'Create a volume', max: 1 });
  let name = opts.name ?? '';
  if (args.length === 1) {
    if (name !== '') throw new Error('conflicting options: cannot specify a volume-name through both --name and as a positional arg');
    name = args[0];
  }
  const labels: Record<string, string> = {};
  for (const l of opts.label ?? []) {
    const key = kv(l)[0].replace(/^[ \t\n\v\f\r]+/, '');
    if (key === '') throw usageError('volume create', '[OPTIONS] [VOLUME]', `invalid argument "${l}" for "--label" flag: invalid label '${l}': empty name`);
    if (/[ \t\n\v\f\r]/.test(key)) throw usageError('volume create', '[OPTIONS] [VOLUME]', `invalid argument "${l}" for "--label" flag: label '${key}' contains whitespaces`);
    const [k, x] = kv(l);
    labels[k] = x;
  }
  const driverOpts: Record<string, string> = {};
  for (const o of opts.opt ?? []) {
    const [k, x] = kv(o);
    driverOpts[k] = x;
  }
  const client = await connect();
  const v = await client.json<VolumeJSON>('POST', '/volumes/create', {
    body: JSON.stringify({ Driver: opts.driver ?? 'local', DriverOpts: driverOpts, Labels: labels, Name: name }),
    headers: { 'Content-Type': 'application/json' },
  });
  writeStdout(`${v.Name}\n`);
}

function usageError(command: string, usage: string, msg: string): ExitError {
  return new ExitError(125, `${msg}\n\nUsage:  berth ${command} ${usage}\n\nRun 'berth ${command} --help' for more information`);
}

export async function volumeListCommand(args: string[], opts: { quiet?: boolean; format?: string; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'volume ls', usage: '[OPTIONS]', short: 'List volumes', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'volume ls', usage: '[OPTIONS]', flag: '-f, --filter' });
  let format = opts.format;
  if (!format && !opts.quiet) format = await configVolumesFormat();
  if (format && !['table', 'raw', 'json'].includes(format)) parseTemplate(format.replace(/^table/, '').trim());
  const client = await connect();
  const res = await client.get<{ Volumes: VolumeJSON[] | null; Warnings?: string[] | null }>('/volumes', { filters: encodeFilters(filters) || undefined });
  writeStdout(renderVolumes(res?.Volumes ?? [], { format, quiet: opts.quiet }));
}

export async function volumeInspectCommand(args: string[], opts: { format?: string }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'volume inspect', usage: '[OPTIONS] VOLUME [VOLUME...]', short: 'Display detailed information on one or more volumes', min: 1 });
  const format = opts.format ?? '';
  const tmpl = inspectTemplate(format);
  const client = await connect();
  const found: VolumeJSON[] = [];
  let templated = '';
  const errors: string[] = [];
  for (const name of args) {
    try {
      const v = await client.get<VolumeJSON>(`/volumes/${encodeURIComponent(name)}`);
      if (!tmpl) { found.push(v); continue; }
      try {
        templated += `${tmpl.execute(new VolumeStruct(v))}\n`;
      } catch (e) {
        errors.push(`template parsing error: ${(e as Error).message}`);
      }
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (tmpl) writeStdout(templated || '\n');
  else if (found.length === 0) writeStdout('[]\n');
  else if (format === 'json') writeStdout(`${goMarshal(found.map(goVolume))}\n`);
  else writeStdout(`${goEscape(JSON.stringify(found.map(goVolume), null, 4))}\n`);
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

/** Go's encoder escapes <, >, & and the line/paragraph separators inside strings. */
function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export async function volumeRemoveCommand(args: string[], opts: { force?: boolean }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'volume rm', usage: '[OPTIONS] VOLUME [VOLUME...]', short: 'Remove one or more volumes', min: 1 });
  const client = await connect();
  const errors: string[] = [];
  for (const name of args) {
    try {
      const res = await client.request('DELETE', `/volumes/${encodeURIComponent(name)}`, { query: { force: opts.force ? '1' : undefined } });
      res.resume();
      writeStdout(`${name}\n`);
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

const ANONYMOUS_WARNING = 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?';
const ALL_WARNING = 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?';

export async function volumePruneCommand(args: string[], opts: { all?: boolean; force?: boolean; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'volume prune', usage: '[OPTIONS]', short: 'Remove unused local volumes', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'volume prune', usage: '[OPTIONS]', flag: '--filter' });
  let warning = ANONYMOUS_WARNING;
  if (opts.all) {
    if (filters.contains('all')) throw new Error('conflicting options: cannot specify both --all and --filter all=1');
    filters.add('all', 'true');
    warning = ALL_WARNING;
  }
  // A declined prompt is not a failure: docker exits 0 without a message.
  if (!opts.force && !promptForConfirmation(warning)) throw new ExitError(0);
  const client = await connect();
  const report = await client.json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/volumes/prune', { query: { filters: encodeFilters(filters) || undefined } });
  const deleted = report?.VolumesDeleted ?? [];
  let space = 0;
  if (deleted.length > 0) {
    writeStdout(`Deleted Volumes:\n${deleted.map((n) => `${n}\n`).join('')}\n`);
    space = report.SpaceReclaimed ?? 0;
  }
  writeStdout(`Total reclaimed space: ${humanSize(space)}\n`);
}

export function registerVolumeCommands(program: Command, connect: Connect): void {
  const volume = program.command('volume').description('manage volumes');
  volume.command('create').description('create a volume')
    .argument('[args...]', 'VOLUME').usage('[options] [VOLUME]')
    .option('-d, --driver <name>', 'specify volume driver name', 'local')
    .option('--name <name>', 'specify volume name')
    .option('-o, --opt <option>', 'set driver specific options (type=, device=, o=); repeatable', collect)
    .option('--label <label>', 'set metadata for a volume; repeatable', collect)
    .action((args: string[], o: VolumeCreateOptions) => volumeCreateCommand(args, o, connect));
  volume.command('ls').alias('list').description('list volumes')
    .argument('[args...]').usage('[options]')
    .option('-q, --quiet', 'only display volume names')
    .option('--format <template>', 'format output using a Go template ("table", "table TEMPLATE", "json", or a template)')
    .option('-f, --filter <filter>', 'provide filter values (dangling=, driver=, label=, name=); repeatable', collect)
    .action((args: string[], o: { quiet?: boolean; format?: string; filter?: string[] }) => volumeListCommand(args, o, connect));
  volume.command('inspect').description('display detailed information on one or more volumes')
    .argument('[args...]', 'VOLUME [VOLUME...]').usage('[options] VOLUME [VOLUME...]')
    .option('-f, --format <template>', 'format output using a Go template ("json" for compact JSON)')
    .action((args: string[], o: { format?: string }) => volumeInspectCommand(args, o, connect));
  volume.command('rm').alias('remove').description('remove one or more volumes (not those in use by a container)')
    .argument('[args...]', 'VOLUME [VOLUME...]').usage('[options] VOLUME [VOLUME...]')
    .option('-f, --force', 'force the removal of one or more volumes')
    .action((args: string[], o: { force?: boolean }) => volumeRemoveCommand(args, o, connect));
  volume.command('prune').description('remove unused local volumes')
    .argument('[args...]').usage('[options]')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "label=<label>"); repeatable', collect)
    .action((args: string[], o: { all?: boolean; force?: boolean; filter?: string[] }) => volumePruneCommand(args, o, connect));
}
