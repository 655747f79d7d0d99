// The daemon's log: logrus-style text lines on stderr, as dockerd writes them
// (`time="…" level=info msg="…" key=value`), so people who grep dockerd logs can grep these.
// When `berth` auto-starts the daemon, stderr is <exec-root>/berth-daemon.log.
import { writeSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };
// logrus prints "warning", not "warn".
const LABEL: Record<LogLevel, string> = { debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'fatal' };

export function isLogLevel(v: string): v is LogLevel {
  return Object.hasOwn(RANK, v);
}

export type LogFields = Record<string, string | number | boolean | undefined>;

function quoteIfNeeded(v: string): string {
  return /^[A-Za-z0-9_.\-/:@+]+$/.test(v) ? v : JSON.stringify(v);
}

export class Logger {
  constructor(
    private level: LogLevel = 'info',
    /** Where lines go; tests and the CLI may swap it. Default: fd 2, never throwing on EPIPE. */
    private sink: (line: string) => void = (line) => {
      try { writeSync(2, line); } catch { /* a closed stderr must not take the daemon down */ }
    },
  ) {}

  setLevel(level: LogLevel): void { this.level = level; }
  getLevel(): LogLevel { return this.level; }
  enabled(level: LogLevel): boolean { return RANK[level] >= RANK[this.level]; }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    let line = `time="${new Date().toISOString()}" level=${LABEL[level]} msg=${JSON.stringify(msg)}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v !== undefined) line += ` ${k}=${quoteIfNeeded(String(v))}`;
      }
    }
    this.sink(`${line}\n`);
  }

  debug(msg: string, fields?: LogFields): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: LogFields): void { this.log('error', msg, fields); }
}
