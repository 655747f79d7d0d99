// Docker's word expansion for Dockerfile instructions (the rules of BuildKit's shell lexer):
// quotes group and are removed ('…' literal; "…" expands, where the escape character escapes only
// ", $ and itself), the escape character escapes the next character outside quotes, and
//   $VAR ${VAR}                     value, or empty
//   ${VAR:-w} ${VAR-w}              w when VAR is unset (or, with ':', empty)
//   ${VAR:+w} ${VAR+w}              w when VAR is set (and, with ':', not empty)
//   ${VAR:?msg} ${VAR?msg}          error when unset (or empty)
//   ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}   remove the shortest/longest prefix/suffix matching p
//   ${VAR/p/r} ${VAR//p/r}          replace the first/every match of p
// A '$' not followed by a name or '{' is literal. Words inside ${…} are expanded themselves.
import { BuildError } from './types.ts';

/** The variables: a map, or "K=V" entries where the last entry of a name wins. */
export type Env = ReadonlyMap<string, string> | ReadonlyArray<string>;

function toMap(env: Env): ReadonlyMap<string, string> {
  if (!Array.isArray(env)) return env as ReadonlyMap<string, string>;
  const m = new Map<string, string>();
  for (const e of env as ReadonlyArray<string>) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

const SPECIAL = '@*#?-$!';
const isNameStart = (c: string): boolean => /[A-Za-z_]/.test(c);
const isNameChar = (c: string): boolean => /[A-Za-z0-9_]/.test(c);
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

/** A shell glob (*, ?, [..]) as a regex body. */
function globToRegex(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        let body = p.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        out += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < p.length) {
      out += p[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return out;
}

interface WordSink {
  /** Text that stays in the current word. */
  lit(s: string): void;
  /** An expanded value: split on whitespace when splitting words. */
  value(s: string): void;
  /** Quotes were seen: the word exists even if empty. */
  quoted(): void;
  /** Unquoted whitespace. */
  space(): void;
}

class Lexer {
  private i = 0;
  readonly used = new Set<string>();
  constructor(private readonly s: string, private readonly env: ReadonlyMap<string, string>, private readonly esc: string) {}

  private fail(msg: string): never {
    throw new BuildError('invalid', msg);
  }

  /** Processes until `stop` (not consumed) or the end. */
  run(sink: WordSink, stop?: string): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (stop !== undefined && c === stop) return;
      if (c === this.esc) {
        this.i++;
        if (this.i < s.length) sink.lit(s[this.i++]!);
        continue;
      }
      if (c === "'") {
        this.i++;
        const end = s.indexOf("'", this.i);
        if (end < 0) this.fail('unexpected end of statement while looking for matching single-quote');
        sink.quoted();
        sink.lit(s.slice(this.i, end));
        this.i = end + 1;
        continue;
      }
      if (c === '"') {
        this.i++;
        sink.quoted();
        this.doubleQuoted(sink);
        continue;
      }
      if (c === '$') {
        this.dollar(sink, false);
        continue;
      }
      if (isSpace(c)) {
        sink.space();
        this.i++;
        continue;
      }
      sink.lit(c);
      this.i++;
    }
  }

  private doubleQuoted(sink: WordSink): void {
    const s = this.s;
    for (;;) {
      if (this.i >= s.length) this.fail('unexpected end of statement while looking for matching double-quote');
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return;
      }
      if (c === '$') {
        this.dollar(sink, true);
        continue;
      }
      if (c === this.esc) {
        const n = s[this.i + 1];
        if (n === undefined) this.fail('unexpected end of statement while looking for matching double-quote');
        if (n !== '"' && n !== '$' && n !== this.esc) sink.lit(c);
        sink.lit(n);
        this.i += 2;
        continue;
      }
      sink.lit(c);
      this.i++;
    }
  }

  /** The text of a nested word up to `stop`, expanded, quotes removed. */
  private nested(stop: string): string {
    let out = '';
    const sink: WordSink = { lit: (t) => { out += t; }, value: (t) => { out += t; }, quoted: () => {}, space: () => { out += this.s[this.i]; } };
    this.run(sink, stop);
    return out;
  }

  private lookup(name: string): string | undefined {
    this.used.add(name);
    return this.env.get(name);
  }

  private dollar(sink: WordSink, inQuotes: boolean): void {
    const s = this.s;
    this.i++; // '$'
    const c = s[this.i];
    if (c === '{') {
      this.i++;
      const start = this.i;
      if (this.i < s.length && SPECIAL.includes(s[this.i]!) && s[this.i + 1] !== undefined && /[}:]/.test(s[this.i + 1]!) ) this.i++;
      else if (/[0-9]/.test(s[this.i] ?? '')) while (this.i < s.length && /[0-9]/.test(s[this.i]!)) this.i++;
      else while (this.i < s.length && isNameChar(s[this.i]!)) this.i++;
      const name = s.slice(start, this.i);
      if (!name) this.fail(`bad substitution: missing variable name in \${${s.slice(start, s.indexOf('}', start) < 0 ? undefined : s.indexOf('}', start))}}`);
      const value = this.lookup(name);
      const emit = (v: string) => (inQuotes ? sink.lit(v) : sink.value(v));
      if (this.i >= s.length) this.fail(`missing '}' in substitution of ${name}`);
      let op = s[this.i]!;
      if (op === '}') {
        this.i++;
        emit(value ?? '');
        return;
      }
      let colon = false;
      if (op === ':') {
        colon = true;
        this.i++;
        op = s[this.i] ?? '';
        if (!['-', '+', '?'].includes(op)) this.fail(`unsupported modifier (:${op}) in substitution of ${name}`);
      }
      this.i++;
      if (op === '-' || op === '+' || op === '?') {
        const word = this.nested('}');
        if (s[this.i] !== '}') this.fail(`missing '}' in substitution of ${name}`);
        this.i++;
        const unset = value === undefined || (colon && value === '');
        if (op === '-') emit(unset ? word : value!);
        else if (op === '+') emit(unset ? '' : word);
        else {
          if (unset) this.fail(`${name}: ${word || (value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty')}`);
          emit(value!);
        }
        return;
      }
      if (op === '#' || op === '%') {
        let longest = false;
        if (s[this.i] === op) {
          longest = true;
          this.i++;
        }
        const pattern = this.nested('}');
        if (s[this.i] !== '}') this.fail(`missing '}' in substitution of ${name}`);
        this.i++;
        const v = value ?? '';
        const whole = new RegExp(`^(?:${globToRegex(pattern)})$`);
        let result = v;
        if (op === '#') {
          // shortest/longest prefix: try lengths in order
          const lengths = [...Array(v.length + 1).keys()];
          if (longest) lengths.reverse();
          for (const n of lengths) if (whole.test(v.slice(0, n))) { result = v.slice(n); break; }
        } else {
          const starts = [...Array(v.length + 1).keys()];
          if (!longest) starts.reverse();
          for (const n of starts) if (whole.test(v.slice(n))) { result = v.slice(0, n); break; }
        }
        emit(result);
        return;
      }
      if (op === '/') {
        let all = false;
        if (s[this.i] === '/') {
          all = true;
          this.i++;
        }
        const pattern = this.nested('/');
        let replacement = '';
        if (s[this.i] === '/') {
          this.i++;
          replacement = this.nested('}');
        }
        if (s[this.i] !== '}') this.fail(`missing '}' in substitution of ${name}`);
        this.i++;
        const re = new RegExp(globToRegex(pattern), all ? 'g' : '');
        emit((value ?? '').replace(re, () => replacement));
        return;
      }
      this.fail(`unsupported modifier (${op}) in substitution of ${name}`);
    }
    if (c !== undefined && /[0-9]/.test(c)) {
      // Positional parameters are never set in a Dockerfile: all their digits go.
      while (this.i < s.length && /[0-9]/.test(s[this.i]!)) this.i++;
      return;
    }
    if (c !== undefined && SPECIAL.includes(c)) {
      // Special parameters ($@, $*, $#, $?, $-, $$, $!) are empty too.
      this.i++;
      return;
    }
    if (c !== undefined && isNameStart(c)) {
      const start = this.i;
      while (this.i < s.length && isNameChar(s[this.i]!)) this.i++;
      const v = this.lookup(s.slice(start, this.i)) ?? '';
      if (inQuotes) sink.lit(v);
      else sink.value(v);
      return;
    }
    sink.lit('$');
  }
}

/** Expands one word (ProcessWord): variables substituted, quotes and escapes removed. */
export function expandWord(word: string, env: Env, escapeToken = '\\'): string {
  let out = '';
  const lx = new Lexer(word, toMap(env), escapeToken);
  lx.run({ lit: (t) => { out += t; }, value: (t) => { out += t; }, quoted: () => {}, space: () => { out += word[(lx as unknown as { i: number }).i]; } });
  return out;
}

/** Expands and splits into words on unquoted whitespace, also inside expanded values (ProcessWords). */
export function expandWords(word: string, env: Env, escapeToken = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  const flush = () => {
    if (has) words.push(cur);
    cur = '';
    has = false;
  };
  const lx = new Lexer(word, toMap(env), escapeToken);
  lx.run({
    lit: (t) => { cur += t; has = true; },
    value: (t) => {
      for (const ch of t) {
        if (isSpace(ch)) flush();
        else { cur += ch; has = true; }
      }
    },
    quoted: () => { has = true; },
    space: () => flush(),
  });
  flush();
  return words;
}

/** The variable names a word refers to. */
export function variablesUsed(word: string, escapeToken = '\\'): string[] {
  const lx = new Lexer(word, new Map(), escapeToken);
  try {
    lx.run({ lit: () => {}, value: () => {}, quoted: () => {}, space: () => {} });
  } catch {
    // a malformed word still names what it got to
  }
  return [...lx.used];
}
