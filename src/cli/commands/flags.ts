// A command-line flag parser with pflag's rules (what docker's commands use), for the container
// commands whose flags commander cannot express: `run -h` is --hostname, `rm -v` is --volumes,
// `run IMAGE CMD -x` must leave -x to the command (no interspersed flags), and errors must read
// as docker's: "unknown flag: --foo", "flag needs an argument: 'e' in -e",
// `invalid argument "x" for "-m, --memory" flag: …`.
//
// Rules: "--name=value", "--name value", "-n value", "-nvalue", "-n=value"; bool flags take no
// separate value ("--rm", "--rm=false", "-it" as a group); "--" ends the flags; "-" alone is an
// argument. A value flag's Set runs when it is met, so validation errors come in command-line order.

import { writeStdout } from '../../runtime/output.ts';

export class FlagError extends Error {
  override name = 'FlagError';
}

export type FlagType = 'bool' | 'string' | 'list' | 'int' | 'int64' | 'uint16' | 'uint64' | 'duration' | 'bytes' | 'decimal' | 'map' | 'filter' | 'ulimit' | 'mount' | 'network' | 'signal';

export interface FlagDef {
  long: string;
  short?: string;
  type: FlagType;
  /** Checks or rewrites one value (a Go flag.Value's Set); its message follows "invalid argument … flag: ". */
  validate?: (value: string) => string;
  help?: string;
  hidden?: boolean;
  /** Stored under another flag's name (--net for --network, --dns-opt for --dns-option). */
  alias?: string;
  /** The oldest API version the flag works with (docker's "version" flag annotation). */
  minVersion?: string;
  /** pflag's deprecation notice, printed (on stdout, as docker) when the flag is used. */
  deprecated?: string;
}

export interface ParsedFlags {
  /** Values by long name, in command-line order (bool flags: "true"/"false"). */
  values: Map<string, string[]>;
  args: string[];
  help: boolean;
}

const parseBool = (flag: string, v: string): string => {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return 'true';
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return 'false';
  throw new FlagError(`invalid argument "${v}" for "${flag}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
};

/** Go's strconv.ParseInt(v, 10, bits) error text, or the number. */
export function goParseInt(v: string, bits = 64, unsigned = false): number {
  const fn = unsigned ? 'ParseUint' : 'ParseInt';
  if (!/^[+-]?\d+$/.test(v) || (unsigned && /^[+-]/.test(v))) throw new Error(`strconv.${fn}: parsing ${JSON.stringify(v)}: invalid syntax`);
  const n = BigInt(v);
  const max = unsigned ? (1n << BigInt(bits)) - 1n : (1n << BigInt(bits - 1)) - 1n;
  const min = unsigned ? 0n : -(1n << BigInt(bits - 1));
  if (n > max || n < min) throw new Error(`strconv.${fn}: parsing ${JSON.stringify(v)}: value out of range`);
  return Number(n);
}

export class FlagSet {
  private readonly byLong = new Map<string, FlagDef>();
  private readonly byShort = new Map<string, FlagDef>();

  constructor(readonly defs: FlagDef[], private readonly opts: { interspersed: boolean }) {
    for (const d of defs) {
      this.byLong.set(d.long, d);
      if (d.short) this.byShort.set(d.short, d);
    }
  }

  /** "-m, --memory" or "--cpus", as pflag names a flag in errors. */
  private label(d: FlagDef): string {
    return d.short ? `-${d.short}, --${d.long}` : `--${d.long}`;
  }

  private set(out: ParsedFlags, d: FlagDef, value: string): void {
    // docker (cobra) prints this on stdout
    if (d.deprecated) writeStdout(`Flag --${d.long} has been deprecated, ${d.deprecated}\n`);
    let v = value;
    if (d.type === 'bool') v = parseBool(this.label(d), value);
    else if (d.validate) {
      try {
        v = d.validate(value);
      } catch (e) {
        throw new FlagError(`invalid argument "${value}" for "${this.label(d)}" flag: ${(e as Error).message}`);
      }
    }
    const key = d.alias ?? d.long;
    out.values.set(key, [...(out.values.get(key) ?? []), v]);
  }

  parse(argv: readonly string[]): ParsedFlags {
    const out: ParsedFlags = { values: new Map(), args: [], help: false };
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--') {
        out.args.push(...argv.slice(i + 1));
        break;
      }
      if (!a.startsWith('-') || a === '-') {
        out.args.push(a);
        if (!this.opts.interspersed) {
          out.args.push(...argv.slice(i + 1));
          break;
        }
        continue;
      }
      if (a.startsWith('--')) {
        const eq = a.indexOf('=');
        const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
        const d = this.byLong.get(name);
        if (!d) {
          if (name === 'help') { out.help = true; continue; }
          throw new FlagError(`unknown flag: --${name}`);
        }
        if (eq >= 0) this.set(out, d, a.slice(eq + 1));
        else if (d.type === 'bool') this.set(out, d, 'true');
        else {
          if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
          this.set(out, d, argv[++i]);
        }
        continue;
      }
      // A group of shorthands: "-it", "-p8080:80", "-e=A=1".
      let s = a.slice(1);
      while (s.length > 0) {
        const c = s[0];
        const d = this.byShort.get(c);
        if (!d) {
          if (c === 'h') { out.help = true; s = s.slice(1); continue; }
          throw new FlagError(`unknown shorthand flag: '${c}' in -${s}`);
        }
        if (s.length > 2 && s[1] === '=') {
          this.set(out, d, s.slice(2));
          s = '';
        } else if (d.type === 'bool') {
          this.set(out, d, 'true');
          s = s.slice(1);
        } else if (s.length > 1) {
          this.set(out, d, s.slice(1));
          s = '';
        } else {
          if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
          this.set(out, d, argv[++i]);
          s = '';
        }
      }
    }
    return out;
  }

  /** The options part of `--help`, one flag a line. */
  usage(): string {
    const rows = this.defs.filter((d) => !d.hidden && !d.alias).map((d) => {
      const type = d.type === 'bool' ? '' : ` ${d.type}`;
      return [d.short ? `  -${d.short}, --${d.long}${type}` : `      --${d.long}${type}`, d.help ?? ''];
    });
    const w = Math.max(...rows.map((r) => r[0].length)) + 3;
    return rows.map(([a, b]) => `${a.padEnd(w)}${b}`).join('\n');
  }
}

/**
 * docker refuses a flag the daemon's API version predates, before sending anything:
 * '"--annotation" requires API version 1.43, but the Docker daemon API version is 1.41'
 * (exit status 1, as a command error).
 */
export function unsupportedFlag(set: FlagSet, parsed: ParsedFlags, apiVersion: string, compare: (a: string, b: string) => number): string | undefined {
  for (const d of set.defs) {
    if (!d.minVersion || !parsed.values.has(d.alias ?? d.long)) continue;
    if (compare(apiVersion, d.minVersion) < 0) return `"--${d.long}" requires API version ${d.minVersion}, but the Docker daemon API version is ${apiVersion}`;
  }
  return undefined;
}

/** Accessors over parsed values with pflag's "last one wins" for scalars. */
export class FlagValues {
  constructor(private readonly p: ParsedFlags) {}
  changed(name: string): boolean { return this.p.values.has(name); }
  list(name: string): string[] { return this.p.values.get(name) ?? []; }
  str(name: string, def = ''): string { const l = this.list(name); return l.length ? l[l.length - 1] : def; }
  bool(name: string, def = false): boolean { const l = this.list(name); return l.length ? l[l.length - 1] === 'true' : def; }
  num(name: string, def = 0): number { const l = this.list(name); return l.length ? Number(l[l.length - 1]) : def; }
}
