// Dockerfile text → nodes, by the rules of BuildKit's parser:
//  - parser directives (`# escape=`, `# syntax=`, `# check=`) only in the leading comment block;
//    an unknown directive is an ordinary comment; each at most once;
//  - the escape character (\ or `) at the end of a line continues it; comment lines and empty
//    lines inside a continuation are dropped (an empty one earns a warning);
//  - the keyword is case-insensitive; leading `--name[=value]` words are flags;
//  - RUN, COPY and ADD may carry heredocs (`<<EOF`, `<<-EOF` strips leading tabs, a quoted
//    delimiter turns expansion off), whose bodies follow the instruction line.
// How the rest of the line is split depends on the instruction (see argsFor); nothing is
// variable-expanded here.
import { jsonArray } from '../image/archive.ts';
import { BuildError, type Heredoc } from './types.ts';

export interface DockerfileNode {
  /** Lowercased keyword, e.g. 'run'. */
  instruction: string;
  /** The instruction as written, continuations joined (without heredoc bodies). */
  original: string;
  /** Flags in order, e.g. ['--from=build', '--chown=1:1']. */
  flags: string[];
  args: string[];
  /** args came from a JSON array. */
  json: boolean;
  heredocs: Heredoc[];
  startLine: number;
  endLine: number;
  /** ENV/LABEL: written as `key=value` pairs, or in the legacy `key value` form. */
  legacyForm?: boolean;
}

export interface ParseWarning { message: string; line: number }

export interface ParsedDockerfile {
  nodes: DockerfileNode[];
  escapeToken: string;
  syntax?: string;
  warnings: ParseWarning[];
}

const HEREDOC_INSTRUCTIONS = new Set(['run', 'copy', 'add']);
const DIRECTIVE = /^[ \t]*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['escape', 'syntax', 'check']);

function parseError(file: string, line: number, message: string): BuildError {
  return new BuildError('invalid', `${file}:${line}: ${message}`, { file, line });
}

/** Splits off leading --flags (quotes respected, kept); returns them and the rest. */
function extractFlags(rest: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let s = rest;
  for (;;) {
    s = s.replace(/^[ \t]+/, '');
    if (!s.startsWith('--')) break;
    let i = 0;
    let quote = '';
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === ' ' || c === '\t') {
        break;
      }
    }
    const word = s.slice(0, i);
    s = s.slice(i);
    if (word === '--') break;
    flags.push(word);
  }
  return { flags, rest: s.replace(/^[ \t]+/, '') };
}

/**
 * Splits on whitespace, keeping quotes and escapes in the words (the expander removes them later):
 * BuildKit's parseWords, used for ENV, LABEL and ARG.
 */
export function splitKeepingQuotes(text: string, esc: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (!quote && (c === ' ' || c === '\t' || c === '\n')) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === esc && i + 1 < text.length && quote !== "'") {
      cur += c + text[++i];
      continue;
    }
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    }
    cur += c;
  }
  if (inWord) words.push(cur);
  return words;
}

/** ENV/LABEL: `key=value …` pairs, or the legacy `key value with spaces`. Returns [k, v, k, v…]. */
function nameValArgs(rest: string, esc: string, instruction: string, file: string, line: number): string[] {
  const words = splitKeepingQuotes(rest, esc);
  if (words.length === 0) throw parseError(file, line, `${instruction.toUpperCase()} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    // Legacy form: the first word is the name, the rest of the line the value.
    const name = words[0]!;
    const value = rest.trim().slice(name.length).replace(/^[ \t]+/, '');
    if (instruction === 'env' && value === '') throw parseError(file, line, `ENV must have two arguments`);
    return [name, value];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw parseError(file, line, `Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (i === 0) throw parseError(file, line, `${instruction.toUpperCase()} names can not be blank`);
    out.push(w.slice(0, i), w.slice(i + 1));
  }
  return out;
}

/** How each instruction's arguments are read. */
function argsFor(instruction: string, rest: string, esc: string, file: string, line: number): { args: string[]; json: boolean; legacyForm?: boolean } {
  switch (instruction) {
    case 'env':
    case 'label': {
      const words = splitKeepingQuotes(rest, esc);
      return { args: nameValArgs(rest, esc, instruction, file, line), json: false, legacyForm: words.length > 0 && !words[0]!.includes('=') };
    }
    case 'arg':
      return { args: splitKeepingQuotes(rest, esc), json: false };
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell': {
      const j = jsonArray(rest);
      if (j) return { args: j, json: true };
      return { args: rest.trim() === '' ? [] : [rest.trim()], json: false };
    }
    case 'copy':
    case 'add':
    case 'volume': {
      const j = jsonArray(rest);
      if (j) return { args: j, json: true };
      return { args: rest.trim().split(/[ \t]+/).filter(Boolean), json: false };
    }
    case 'from':
    case 'expose':
      return { args: rest.trim().split(/[ \t]+/).filter(Boolean), json: false };
    case 'healthcheck': {
      const words = rest.trim().split(/[ \t]+/).filter(Boolean);
      if (words.length === 0) return { args: [], json: false };
      const kind = words[0]!;
      const after = rest.trim().slice(kind.length).trim();
      if (kind.toUpperCase() === 'NONE') return { args: [kind, ...words.slice(1)], json: false };
      const j = jsonArray(after);
      if (j) return { args: [kind, ...j], json: true };
      return { args: after ? [kind, after] : [kind], json: false };
    }
    case 'onbuild':
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
    default:
      return { args: rest.trim() === '' ? [] : [rest.trim()], json: false };
  }
}

// BuildKit's heredoc rule: the line is split into words on unquoted whitespace (quotes and
// escapes kept), and a word is a heredoc when it is the whole word `[fd]<<[-]NAME` — so
// `echo "<<EOF"` and `a<<EOF` are not heredocs. NAME has its quotes removed; any quote in it
// turns expansion off.
const HEREDOC_WORD = /^(\d*)<<(-?)\s*([^<]*)$/;

function rawWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let k = 0; k < line.length; k++) {
    const c = line[k]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '\\' && k + 1 < line.length) {
      cur += c + line[++k];
    } else if (c === "'") {
      const close = line.indexOf(c, k + 1);
      const end = close < 0 ? line.length : close + 1;
      cur += line.slice(k, end);
      k = end - 1;
    } else if (c === '"') {
      let j = k + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      const end = Math.min(j + 1, line.length);
      cur += line.slice(k, end);
      k = end - 1;
    } else if (c === '<' && line[k + 1] === '<') {
      // As in BuildKit's lexer, blanks after "<<" belong to it: "<<  EOF" is one heredoc word.
      cur += '<<';
      k++;
      while (line[k + 1] === ' ' || line[k + 1] === '\t') cur += line[++k];
    } else {
      cur += c;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function heredocWords(line: string): Array<{ name: string; strip: boolean; expand: boolean }> {
  const out: Array<{ name: string; strip: boolean; expand: boolean }> = [];
  for (const w of rawWords(line)) {
    const m = HEREDOC_WORD.exec(w);
    if (!m || m[3] === '') continue;
    const parts = rawWords(m[3]!);
    if (parts.length !== 1) continue;
    const raw = parts[0]!;
    // Unquote: quotes removed, backslash escapes resolved outside single quotes.
    let name = '';
    let quoted = false;
    for (let k = 0; k < raw.length; k++) {
      const c = raw[k]!;
      if (c === "'") {
        const close = raw.indexOf("'", k + 1);
        if (close < 0) { name = ''; break; }
        name += raw.slice(k + 1, close);
        quoted = true;
        k = close;
      } else if (c === '"') {
        quoted = true;
        let j = k + 1;
        for (; j < raw.length && raw[j] !== '"'; j++) {
          if (raw[j] === '\\' && j + 1 < raw.length && '"\\$`'.includes(raw[j + 1]!)) j++;
          name += raw[j];
        }
        k = j;
      } else if (c === '\\' && k + 1 < raw.length) {
        name += raw[++k];
      } else {
        name += c;
      }
    }
    if (name !== '') out.push({ name, strip: m[2] === '-', expand: !quoted });
  }
  return out;
}

export function parseDockerfile(text: string, opts: { file?: string } = {}): ParsedDockerfile {
  const file = opts.file ?? 'Dockerfile';
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const warnings: ParseWarning[] = [];
  let escapeToken = '\\';
  let syntax: string | undefined;
  const seen = new Set<string>();
  let i = 0;
  // Directives: only while every line so far is one.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(key)) break;
    if (seen.has(key)) throw parseError(file, i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw parseError(file, i + 1, `invalid escape token '${m[2]}' does not match \` or \\`);
      escapeToken = m[2]!;
    } else if (key === 'syntax') {
      syntax = m[2];
    }
  }
  const esc = escapeToken;
  // An escape at the end of a line continues it, unless it is itself escaped.
  const e = esc === '\\' ? '\\\\' : '`';
  const continuation = new RegExp(`(?<=^|[^${e}])${e}[ \\t]*$`);
  const nodes: DockerfileNode[] = [];
  const isComment = (l: string) => /^[ \t]*#/.test(l);
  const isBlank = (l: string) => /^[ \t]*$/.test(l);

  while (i < lines.length) {
    const raw = lines[i]!;
    if (isBlank(raw) || isComment(raw)) {
      i++;
      continue;
    }
    const startLine = i + 1;
    let logical = '';
    let line = raw.replace(/^[ \t]+/, '');
    i++;
    let emptyContinuation = false;
    for (;;) {
      if (continuation.test(line)) {
        logical += line.replace(continuation, '');
        // next physical line, skipping comments and empty lines
        let next: string | undefined;
        while (i < lines.length) {
          const l = lines[i]!;
          if (isComment(l)) { i++; continue; }
          if (isBlank(l)) { emptyContinuation = true; i++; continue; }
          next = l;
          i++;
          break;
        }
        if (next === undefined) break; // escape at EOF: the instruction ends
        line = next;
        continue;
      }
      logical += line;
      break;
    }
    const endLineBeforeHeredoc = i;
    if (emptyContinuation) warnings.push({ line: startLine, message: 'Empty continuation line found in instruction; empty continuation lines will become errors in a future release' });
    const m = /^([^\s]+)([\s\S]*)$/.exec(logical.replace(/^[ \t]+/, ''));
    if (!m) continue;
    const instruction = m[1]!.toLowerCase();
    const { flags, rest } = extractFlags(m[2]!);
    const heredocs: Heredoc[] = [];
    // ONBUILD's trigger may carry heredocs too (as in BuildKit).
    const inner = instruction === 'onbuild' ? /^\s*(\S+)([\s\S]*)$/.exec(rest) : null;
    const hdInstruction = inner ? inner[1]!.toLowerCase() : instruction;
    const hdRest = inner ? extractFlags(inner[2]!).rest : rest;
    if (HEREDOC_INSTRUCTIONS.has(hdInstruction) && !jsonArray(hdRest) && logical.includes('<<')) {
      for (const hd of heredocWords(logical)) {
        const strip = hd.strip;
        const name = hd.name;
        const body: string[] = [];
        let found = false;
        while (i < lines.length) {
          const l = lines[i++]!;
          const cmp = strip ? l.replace(/^\t+/, '') : l;
          if (cmp === name) {
            found = true;
            break;
          }
          body.push(strip ? l.replace(/^\t+/, '') : l);
        }
        if (!found) throw parseError(file, startLine, `unterminated heredoc ${name}`);
        heredocs.push({ name, content: body.length ? `${body.join('\n')}\n` : '', expand: hd.expand });
      }
    }
    const { args, json, legacyForm } = argsFor(instruction, rest, esc, file, startLine);
    nodes.push({
      instruction, original: logical.trim(), flags, args, json, heredocs, startLine, endLine: Math.max(endLineBeforeHeredoc, i),
      ...(legacyForm !== undefined ? { legacyForm } : {}),
    });
  }
  if (nodes.length === 0) throw new BuildError('invalid', `${file}: file with no instructions`, { file, line: 1 });
  return { nodes, escapeToken, syntax, warnings };
}

/** Go's strconv.Quote, for dumps. */
function goQuote(v: string): string {
  let out = '"';
  for (const ch of v) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (c === 7) out += '\\a';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** BuildKit's Node.Dump format: (instruction ["flags"] "arg" …), for conformance comparisons. */
export function dumpNode(n: DockerfileNode, escapeToken = '\\'): string {
  let str = n.instruction;
  if (n.flags.length) str += ` [${n.flags.map(goQuote).join(' ')}]`;
  let values: string[] = n.args;
  if (n.instruction === 'env' || n.instruction === 'label') {
    values = [];
    for (let i = 0; i + 1 < n.args.length; i += 2) values.push(n.args[i]!, n.args[i + 1]!, n.legacyForm ? '' : '=');
  }
  if (n.instruction === 'onbuild' && n.args.length) {
    const inner = parseDockerfile(`${escapeToken === '`' ? '# escape=`\n' : ''}${n.args[0]}`).nodes[0];
    return `${str} (${inner ? dumpNode(inner, escapeToken) : ''})`.trim();
  }
  for (const v of values) str += ` ${goQuote(v)}`;
  return str.trim();
}
