// `berth image prune` and `berth system prune` with docker's prompts and report. System prune
// asks about everything docker's does, but only images exist in Berth's engine so far: the other
// kinds have nothing to remove, and docker prints nothing for an empty part either.
import { humanSize } from '../../api/units.ts';
import { FilterArgs } from '../../engine/filters.ts';
import { writeStdout } from '../../runtime/output.ts';
import type { Connect, DeleteItem } from './images.ts';
import { checkArgs, encodeFilters, parseFilterFlags, promptForConfirmation } from './common.ts';
import { ExitError } from './system.ts';

const ALL_IMAGES_WARNING = 'WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?';
const DANGLING_WARNING = 'WARNING! This will remove all dangling images.\nAre you sure you want to continue?';

interface PruneReport { ImagesDeleted?: DeleteItem[] | null; SpaceReclaimed?: number }

/** docker's image.RunPrune after the prompt: the report text and the space it freed. */
async function pruneImages(all: boolean, filters: FilterArgs, connect: Connect): Promise<{ space: number; output: string }> {
  filters.add('dangling', String(!all));
  const client = await connect();
  const report = await client.json<PruneReport>('POST', '/images/prune', { query: { filters: encodeFilters(filters) } });
  const deleted = report?.ImagesDeleted ?? [];
  if (deleted.length === 0) return { space: 0, output: '' };
  let output = 'Deleted Images:\n';
  for (const d of deleted) output += d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted ?? ''}\n`;
  return { space: report.SpaceReclaimed ?? 0, output };
}

/** A declined prompt: docker exits 0 without a message ("cancelled" is not a failure). */
class Cancelled extends ExitError {
  constructor() { super(0); }
}

export async function imagePruneCommand(args: string[], opts: { all?: boolean; force?: boolean; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'image prune', usage: '[OPTIONS]', short: 'Remove unused images', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'image prune', usage: '[OPTIONS]', flag: '--filter' });
  if (!opts.force && !promptForConfirmation(opts.all ? ALL_IMAGES_WARNING : DANGLING_WARNING)) throw new Cancelled();
  const { space, output } = await pruneImages(Boolean(opts.all), filters, connect);
  if (output) writeStdout(`${output}\n`);
  writeStdout(`Total reclaimed space: ${humanSize(space)}\n`);
}

/** docker's confirmationMessage for system prune (build cache included: API ≥ 1.31). */
export function systemPruneMessage(opts: { all?: boolean; volumes?: boolean; filter?: string[] }): string {
  const warnings = ['all stopped containers', 'all networks not used by at least one container'];
  if (opts.volumes) warnings.push('all anonymous volumes not used by at least one container');
  warnings.push(opts.all ? 'all images without at least one container associated to them' : 'all dangling images');
  warnings.push(opts.all ? 'all build cache' : 'unused build cache');
  const f = FilterArgs.fromPairs(opts.filter ?? []);
  const filters: string[] = [];
  for (const name of ['label', 'label!', 'until']) for (const v of f.get(name)) filters.push(`${name}=${v}`);
  filters.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  let s = 'WARNING! This will remove:';
  for (const w of warnings) s += `\n  - ${w}`;
  s += '\n';
  if (filters.length) {
    s += '\n  Items to be pruned will be filtered with:';
    for (const x of filters) s += `\n  - ${x}`;
    s += '\n';
  }
  return `${s}\nAre you sure you want to continue?`;
}

export async function systemPruneCommand(args: string[], opts: { all?: boolean; force?: boolean; volumes?: boolean; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'system prune', usage: '[OPTIONS]', short: 'Remove unused data', max: 0 });
  const f = parseFilterFlags(opts.filter ?? [], { command: 'system prune', usage: '[OPTIONS]', flag: '--filter' });
  if (opts.volumes && f.contains('until')) throw new Error('ERROR: The "until" filter is not supported with "--volumes"');
  if (!opts.force && !promptForConfirmation(systemPruneMessage(opts))) throw new Cancelled();
  const { space, output } = await pruneImages(Boolean(opts.all), f, connect);
  if (output) writeStdout(`${output}\n`);
  writeStdout(`Total reclaimed space: ${humanSize(space)}\n`);
}
