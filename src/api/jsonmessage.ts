// Docker's JSON-lines progress protocol (pkg/jsonmessage), both ends:
//   - the daemon writes it for pull, push, load, build, import (ProgressStream in progress.ts);
//   - the CLI renders it like the docker CLI (src/cli/format/progress.ts).
// One message per line: {"status","id","progressDetail":{current,total},"progress"} for progress,
// {"stream"} for build output, {"aux"} for side data, {"errorDetail":{"message"},"error"} to fail.
import { humanSize } from './units.ts';

export interface JSONProgress {
  current?: number;
  total?: number;
  /** Unix seconds when the operation started (for the time-left estimate). */
  start?: number;
  hidecounts?: boolean;
  /** Unit name instead of bytes ("" = bytes). */
  units?: string;
}

export interface JSONMessage {
  stream?: string;
  status?: string;
  progressDetail?: JSONProgress;
  /** Pre-rendered progress bar (deprecated by docker, still sent and shown by non-TTY clients). */
  progress?: string;
  id?: string;
  from?: string;
  time?: number;
  timeNano?: number;
  errorDetail?: { code?: number; message?: string };
  /** Deprecated mirror of errorDetail.message, still sent by dockerd. */
  error?: string;
  aux?: unknown;
}

/** Go's time.Duration.String() of whole seconds: "0s", "45s", "3m2s", "1h0m5s". */
function goDurationSeconds(total: number): string {
  if (total <= 0) return '0s';
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * JSONProgress.String(): "[=====>      ]  12.5MB/50MB 3s". The bar needs a terminal wider than
 * 110 columns, the time left one wider than 50; the daemon renders at width 200 as dockerd does.
 */
export function progressString(p: JSONProgress, width: number, nowMs: number = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) {
    return p.units ? `${current} ${p.units}` : humanSize(current).padStart(8);
  }
  let percentage = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (percentage > 50) percentage = 50;
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  let numbers = '';
  if (!p.hidecounts) {
    if (!p.units) {
      const cur = humanSize(current);
      numbers = current > total ? cur.padStart(8) : `${cur.padStart(8)}/${humanSize(total)}`;
    } else {
      numbers = current > total ? `${current} ${p.units}` : `${current}/${total} ${p.units}`;
    }
  }
  let timeLeft = '';
  if (width > 50 && current > 0 && (p.start ?? 0) > 0 && percentage < 50) {
    const elapsedMs = nowMs - (p.start as number) * 1000;
    const leftMs = ((total - current) * elapsedMs) / current;
    timeLeft = ` ${goDurationSeconds(Math.round(leftMs / 1000))}`;
  }
  return bar + numbers + timeLeft;
}

/** The error message a stream ended with, if the line is an error line. */
export function messageError(m: JSONMessage): string | undefined {
  if (m.errorDetail) return m.errorDetail.message ?? m.error ?? 'unknown error';
  if (m.error) return m.error;
  return undefined;
}
