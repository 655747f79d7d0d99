// Pieces the image, login and prune commands share: docker's argument-count errors, the y/N
// prompt, image names in API paths, the X-Registry-Auth header from docker's config.json, and
// Go's time formats that docker's tables print.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseTemplate } from '../format/output.ts';
import { ApiResponseError, DaemonConnectionError } from '../client.ts';
import { FilterArgs as FilterArgsClass, type FilterArgs } from '../../engine/filters.ts';
import { CredentialStore, CredentialsError, encodeRegistryAuthHeader } from '../../image/registry/credentials.ts';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { ExitError } from './system.ts';

/**
 * docker's cli.RequiresMinArgs/ExactArgs/MaxArgs/NoArgs: wrong argument counts are exit status
 * 1 (not 125: cobra reports them as command errors), with the usage line, in docker 28's words.
 */
export function checkArgs(
  args: readonly string[],
  spec: { command: string; usage: string; short: string; min?: number; max?: number },
): void {
  const { min = 0, max = Infinity } = spec;
  let what: string | undefined;
  const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;
  if (max === 0 && args.length > 0) what = 'accepts no arguments';
  else if (min === max && args.length !== min) what = `requires ${plural(min)}`;
  else if (args.length < min) what = `requires at least ${plural(min)}`;
  else if (args.length > max) what = `requires at most ${plural(max)}`;
  if (what === undefined) return;
  const hint = what.startsWith('requires at least') ? 'See' : 'Run'; // docker's wording differs so
  throw new ExitError(1,
    `berth: 'berth ${spec.command}' ${what}\n\nUsage:  berth ${spec.command} ${spec.usage}\n\n${hint} 'berth ${spec.command} --help' for more information`);
}

/**
 * The `filters` parameter as the docker CLI encodes it: Go marshals maps with sorted keys, so
 * names and values come out sorted ('' when there are none).
 */
export function encodeFilters(f: FilterArgs): string {
  if (f.size === 0) return '';
  const out: Record<string, Record<string, boolean>> = {};
  for (const k of f.keys().sort()) {
    out[k] = {};
    for (const v of f.get(k).sort()) out[k][v] = true;
  }
  return JSON.stringify(out);
}

/**
 * --filter key=value pairs, refused as docker refuses a malformed flag value: status 125, the
 * flag's name and the command's usage.
 */
export function parseFilterFlags(values: readonly string[], spec: { command: string; usage: string; flag: string }): FilterArgs {
  const f = new FilterArgsClass();
  for (const v of values) {
    if (v.indexOf('=') <= 0) {
      throw new ExitError(125, `invalid argument ${JSON.stringify(v)} for "${spec.flag}" flag: bad format of filter (expected name=value)\n\n` +
        `Usage:  berth ${spec.command} ${spec.usage}\n\nRun 'berth ${spec.command} --help' for more information`);
    }
    f.add(v.slice(0, v.indexOf('=')).trim().toLowerCase(), v.slice(v.indexOf('=') + 1).trim());
  }
  return f;
}

/** An error as the docker CLI prints it: daemon answers get "Error response from daemon: ". */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiResponseError) return `Error response from daemon: ${e.message}`;
  if (e instanceof DaemonConnectionError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * An image name or ID as a path segment, as Go's url.URL escapes a path: names keep their
 * '/', ':' and '@' (the daemon's routes expect "/images/127.0.0.1:5000/app:1/json"), anything
 * else unusual is percent-encoded so it cannot break the request line.
 */
export function imagePath(name: string): string {
  return name.replace(/[^A-Za-z0-9\-._~:/@+!$&'()*,;=]/g, (c) => encodeURIComponent(c));
}

/** One line from stdin (without the newline); '' at end of input. Synchronous: a prompt blocks anyway. */
export function readLineSync(): string {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, one, 0, 1, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A non-blocking stdin (some terminals, inherited O_NONBLOCK pipes): wait and retry.
      if (code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); continue; }
      if (code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    if (one[0] === 0x0a) break;
    bytes.push(one[0]);
  }
  return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
}

/** docker's PromptForConfirmation: the message plus " [y/N] " on stdout; only "y"/"Y" is yes. */
export function promptForConfirmation(message: string): boolean {
  writeStdout(`${message} [y/N] `);
  return readLineSync().trim().toLowerCase() === 'y';
}

/** Reads a line with the terminal's echo off (a password); the echo comes back even on errors. */
export function readPasswordNoEcho(prompt: string): string {
  writeStdout(prompt);
  const tty = Boolean(process.stdin.isTTY);
  if (tty) spawnSync('stty', ['-echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
  try {
    return readLineSync();
  } finally {
    if (tty) spawnSync('stty', ['echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
  }
}

/** docker's PromptUserForCredentials for a known server: "Username (default): ", then the password without echo. */
export function promptUserForCredentials(defaultUsername: string): { username: string; password: string } {
  writeStdout(defaultUsername ? `Username (${defaultUsername}): ` : 'Username: ');
  const username = readLineSync().trim() || defaultUsername;
  if (!username) throw new Error('Error: Non-null Username Required');
  const password = readPasswordNoEcho('Password: ').trim();
  writeStdout('\n');
  if (!password) throw new Error('Error: Password Required');
  return { username, password };
}

/**
 * The daemon refused a pull/push for lack of credentials (401): on a terminal, docker asks for
 * them ("Login prior to pull:") and retries once with them, without storing them.
 */
export async function withLoginRetry<T>(key: string, cmd: string, attempt: (auth: string) => Promise<T>): Promise<T> {
  const auth = await registryAuthHeader(key);
  try {
    return await attempt(auth);
  } catch (e) {
    if (!(e instanceof ApiResponseError && e.statusCode === 401) || !process.stdin.isTTY) throw e;
  }
  writeStdout(`\nLogin prior to ${cmd}:\n`);
  let stored = '';
  try {
    stored = (await new CredentialStore().get(key))?.username ?? '';
  } catch (e) {
    writeStderr(`Unable to retrieve stored credentials for ${key}, error: ${(e as Error).message}.\n`);
  }
  const c = promptUserForCredentials(stored);
  return attempt(encodeRegistryAuthHeader({ ...c, serverAddress: key }));
}

/** Credentials for a registry from docker's config.json ($DOCKER_CONFIG or ~/.docker), as the header docker sends. */
export async function registryAuthHeader(domainOrKey: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const store = new CredentialStore({ env });
  try {
    const c = await store.get(domainOrKey);
    if (!c) return encodeRegistryAuthHeader({});
    return encodeRegistryAuthHeader({ ...c, serverAddress: domainOrKey });
  } catch (e) {
    // docker goes on anonymously when its config file cannot be used, after saying so.
    if (e instanceof CredentialsError) {
      writeStderr(`WARNING: Error loading config file: ${e.message}\n`);
      return encodeRegistryAuthHeader({});
    }
    throw e;
  }
}

const p2 = (n: number): string => String(n).padStart(2, '0');

function zoneOffset(d: Date, withColon: boolean): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${sign}${p2(Math.floor(a / 60))}${withColon ? ':' : ''}${p2(a % 60)}`;
}

function zoneAbbreviation(d: Date): string {
  if (d.getTimezoneOffset() === 0 && /^(UTC|Etc\/UTC|)$/.test(process.env.TZ ?? '')) return 'UTC';
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  return part?.value ?? zoneOffset(d, false);
}

function localDateTime(d: Date, sep: string): string {
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}${sep}${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** Go's time.Unix(s, 0).String() in the local zone: "2025-01-02 15:04:05 +0000 UTC". */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${localDateTime(d, ' ')} ${zoneOffset(d, false)} ${zoneAbbreviation(d)}`;
}

/** Go's time.RFC3339 in the local zone: "2025-01-02T15:04:05Z" or "…+01:00". */
export function goRFC3339(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${localDateTime(d, 'T')}${d.getTimezoneOffset() === 0 ? 'Z' : zoneOffset(d, true)}`;
}

/**
 * Go's json.Indent over the daemon's raw bytes (what `docker image inspect` prints): only
 * whitespace changes, strings and numbers stay byte for byte, empty [] and {} stay closed.
 */
export function jsonIndent(raw: string, indent = '    '): string {
  let out = '';
  let depth = 0;
  let needIndent = false; // an opening bracket was written; its first element still needs a newline
  const newline = (): string => `\n${indent.repeat(depth)}`;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') continue;
    if (needIndent && c !== ']' && c !== '}') {
      needIndent = false;
      depth++;
      out += newline();
    }
    if (c === '"') {
      let j = i + 1;
      while (j < raw.length && raw[j] !== '"') j += raw[j] === '\\' ? 2 : 1;
      out += raw.slice(i, j + 1);
      i = j;
      continue;
    }
    switch (c) {
      case '{':
      case '[':
        out += c;
        needIndent = true;
        break;
      case ',':
        out += c + newline();
        break;
      case ':':
        out += ': ';
        break;
      case '}':
      case ']':
        if (needIndent) needIndent = false; // empty: "[]"
        else { depth--; out += newline(); }
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

/** An inspect-style --format: '' and 'json' print JSON, anything else is a Go template (exit 64 when it does not parse, as docker). */
export function inspectTemplate(format: string): ReturnType<typeof parseTemplate> | undefined {
  if (format === '' || format === 'json') return undefined;
  try {
    return parseTemplate(format);
  } catch (e) {
    throw new ExitError(64, (e as Error).message);
  }
}

/**
 * docker's atomicwriter: `source` goes to a temp file (mode 0600) beside `path`, named by
 * `tmpName(base)`, and is renamed over `path` once complete, so a failure leaves no partial file.
 */
export async function writeAtomically(path: string, source: Readable | AsyncIterable<Buffer>, tmpName: (base: string) => string): Promise<void> {
  const abs = resolve(path);
  const tmp = join(dirname(abs), tmpName(basename(abs)));
  try {
    closeSync(openSync(tmp, 'wx', 0o600));
    await pipeline(source, createWriteStream(tmp));
    renameSync(tmp, abs);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Copies a stream to fd 1 synchronously, chunk by chunk (stdout may be a file, a pipe or /dev/null), waiting when a pipe is full. */
export async function writeStreamToStdout(res: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of res) {
    let off = 0;
    while (off < chunk.length) {
      try {
        off += writeSync(1, chunk, off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') { await new Promise((r) => setTimeout(r, 5)); continue; }
        throw e;
      }
    }
  }
}
