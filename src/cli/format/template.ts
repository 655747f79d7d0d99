// A subset of Go's text/template, enough for docker's --format strings:
//   {{.Field}} {{.A.B}} {{.}} {{$}} {{$var}}            fields, dot, variables
//   {{json .}} {{.Field | json}} {{join .Names ", "}}   functions and pipelines, (parentheses)
//   {{if …}} {{else if …}} {{else}} {{end}}             conditionals (Go's truthiness)
//   {{range .List}} / {{range $i, $v := .List}} … {{else}} … {{end}}, {{with …}} … {{end}}
//   {{$x := …}}, {{/* comments */}}, {{- trim markers -}}, "strings", `raw`, numbers, true/false/nil
// Functions: docker's (json split join title lower upper pad truncate) and Go's builtins
// (print printf println index len eq ne lt le gt ge and or not).
//
// Values: a missing key of a plain object prints "<no value>" (Go's map behaviour); a missing
// field of a class instance (a formatter's row context) is an error, as for Go structs, so a typo
// in --format is reported instead of printing blanks. A property holding a function is called
// with no arguments (Go's niladic methods).

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const NO_VALUE = Symbol('no value');

// ---------------------------------------------------------------------------------------------
// Lexing and parsing
// ---------------------------------------------------------------------------------------------

type Tok =
  | { t: 'field'; v: string[]; at: number } // .A.B (v = ['A','B']); '.' alone = []; at: column of the last part
  | { t: 'var'; v: string; fields: string[] } // $x.A
  | { t: 'ident'; v: string }
  | { t: 'string'; v: string }
  | { t: 'number'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
  | { t: 'pipe' } | { t: 'lparen' } | { t: 'rparen' } | { t: 'declare' } | { t: 'assign' } | { t: 'comma' }
  | { t: 'fieldchain'; v: string[] }; // .A after a ')' : (pipe).A

type Arg =
  | { k: 'field'; path: string[]; pos?: string }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'ident'; name: string }
  | { k: 'sub'; pipe: Pipeline; path: string[] };

interface Command { args: Arg[] }
interface Pipeline { decl: string[]; assign: boolean; cmds: Command[] }

type Node =
  | { n: 'text'; v: string }
  | { n: 'action'; pipe: Pipeline }
  | { n: 'if'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'with'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'range'; pipe: Pipeline; then: Node[]; else: Node[] };

function splitFields(s: string): string[] {
  return s.split('.').filter((x) => x !== '');
}

function lexAction(src: string, pos: string, col0 = 0): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const err = (m: string): never => { throw new TemplateError(`template: ${pos}: ${m}`); };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '|') { toks.push({ t: 'pipe' }); i++; continue; }
    if (c === '(') { toks.push({ t: 'lparen' }); i++; continue; }
    if (c === ')') {
      toks.push({ t: 'rparen' }); i++;
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(src.slice(i));
      if (m) { toks.push({ t: 'fieldchain', v: splitFields(m[0]) }); i += m[0].length; }
      continue;
    }
    if (c === ',') { toks.push({ t: 'comma' }); i++; continue; }
    if (src.startsWith(':=', i)) { toks.push({ t: 'declare' }); i += 2; continue; }
    if (c === '=') { toks.push({ t: 'assign' }); i++; continue; }
    if (c === '"') {
      let j = i + 1;
      let out = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '0': '\0' };
          if (e in map) { out += map[e]; j += 2; continue; }
          if (e === 'x' || e === 'u') {
            const len = e === 'x' ? 2 : 4;
            out += String.fromCharCode(parseInt(src.slice(j + 2, j + 2 + len), 16));
            j += 2 + len;
            continue;
          }
          err(`invalid escape \\${e} in string`);
        }
        out += src[j++];
      }
      if (j >= src.length) err('unterminated quoted string');
      toks.push({ t: 'string', v: out });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) err('unterminated raw quoted string');
      toks.push({ t: 'string', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === '.') {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+|^\./.exec(src.slice(i)) as RegExpExecArray;
      toks.push({ t: 'field', v: m[0] === '.' ? [] : splitFields(m[0]), at: col0 + i + m[0].lastIndexOf('.') });
      i += m[0].length;
      continue;
    }
    if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*((\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(src.slice(i)) as RegExpExecArray;
      const name = m[0].slice(0, m[0].length - m[1].length);
      toks.push({ t: 'var', v: name, fields: splitFields(m[1]) });
      i += m[0].length;
      continue;
    }
    const num = /^[+-]?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(src.slice(i));
    if (num && (c !== '+' && c !== '-' || /\d/.test(src[i + 1] ?? ''))) {
      toks.push({ t: 'number', v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      const w = id[0];
      if (w === 'true' || w === 'false') toks.push({ t: 'bool', v: w === 'true' });
      else if (w === 'nil') toks.push({ t: 'nil' });
      else toks.push({ t: 'ident', v: w });
      i += w.length;
      continue;
    }
    err(`unexpected "${c}" in command`);
  }
  return toks;
}

class Parser {
  private toks: Tok[] = [];
  private p = 0;
  constructor(private readonly pos: string) {}

  pipeline(toks: Tok[]): Pipeline {
    this.toks = toks;
    this.p = 0;
    const pipe = this.parsePipe(false);
    if (this.p < this.toks.length) this.fail(`unexpected ${this.describe(this.toks[this.p])} in operand`);
    return pipe;
  }

  private fail(m: string): never { throw new TemplateError(`template: ${this.pos}: ${m}`); }
  private describe(t: Tok): string { return t.t === 'rparen' ? '")"' : t.t === 'comma' ? '","' : `<${t.t}>`; }

  private parsePipe(inParens: boolean): Pipeline {
    const decl: string[] = [];
    let assign = false;
    // $x := …  or  $i, $v := …
    const save = this.p;
    const vars: string[] = [];
    while (this.toks[this.p]?.t === 'var' && (this.toks[this.p] as { fields: string[] }).fields.length === 0) {
      vars.push((this.toks[this.p] as { v: string }).v);
      this.p++;
      if (this.toks[this.p]?.t === 'comma') { this.p++; continue; }
      break;
    }
    const op = this.toks[this.p]?.t;
    if (vars.length && (op === 'declare' || op === 'assign')) {
      decl.push(...vars);
      assign = op === 'assign';
      this.p++;
    } else {
      this.p = save;
    }
    const cmds: Command[] = [];
    for (;;) {
      const args: Arg[] = [];
      while (this.p < this.toks.length) {
        const t = this.toks[this.p];
        if (t.t === 'pipe' || t.t === 'rparen') break;
        args.push(this.operand());
      }
      if (args.length === 0) this.fail('missing value for command');
      cmds.push({ args });
      const t = this.toks[this.p];
      if (t?.t === 'pipe') { this.p++; continue; }
      if (t?.t === 'rparen') {
        if (!inParens) this.fail('unexpected ")" in operand');
        break;
      }
      break;
    }
    return { decl, assign, cmds };
  }

  private operand(): Arg {
    const t = this.toks[this.p++];
    switch (t.t) {
      case 'field': return { k: 'field', path: t.v, pos: `${this.pos}:${t.at}` };
      case 'var': return { k: 'var', name: t.v, path: t.fields };
      case 'string': return { k: 'lit', v: t.v };
      case 'number': return { k: 'lit', v: t.v };
      case 'bool': return { k: 'lit', v: t.v };
      case 'nil': return { k: 'lit', v: null };
      case 'ident': return { k: 'ident', name: t.v };
      case 'lparen': {
        const pipe = this.parsePipe(true);
        if (this.toks[this.p]?.t !== 'rparen') this.fail('unclosed left paren');
        this.p++;
        let path: string[] = [];
        if (this.toks[this.p]?.t === 'fieldchain') path = (this.toks[this.p++] as { v: string[] }).v;
        return { k: 'sub', pipe, path };
      }
      default: return this.fail(`unexpected ${this.describe(t)} in operand`);
    }
  }
}

export class Template {
  private constructor(private readonly nodes: Node[]) {}

  static parse(source: string): Template {
    // Split into text and actions, honouring trim markers.
    type Piece = { text: string } | { action: string; line: number; col: number };
    const pieces: Piece[] = [];
    let i = 0;
    let line = 1;
    while (i < source.length) {
      const open = source.indexOf('{{', i);
      if (open < 0) { pieces.push({ text: source.slice(i) }); break; }
      let text = source.slice(i, open);
      let start = open + 2;
      if (source[start] === '-' && /\s/.test(source[start + 1] ?? '')) {
        text = text.replace(/\s+$/, '');
        start += 1;
      }
      pieces.push({ text });
      line += (source.slice(i, open).match(/\n/g) ?? []).length;
      // Find the closing }} outside quotes.
      let j = start;
      let quote = '';
      for (; j < source.length; j++) {
        const c = source[j];
        if (quote) {
          if (c === '\\' && quote === '"') { j++; continue; }
          if (c === quote) quote = '';
          continue;
        }
        if (c === '"' || c === '`') { quote = c; continue; }
        if (source.startsWith('}}', j)) break;
      }
      if (j >= source.length) throw new TemplateError(`template: :${line}: unclosed action`);
      let body = source.slice(start, j);
      let next = j + 2;
      if (/\s-$/.test(body)) {
        body = body.slice(0, -1);
        const m = /^\s+/.exec(source.slice(next));
        if (m) next += m[0].length;
      }
      pieces.push({ action: body, line, col: start - (source.lastIndexOf('\n', start - 1) + 1) });
      line += (source.slice(open, next).match(/\n/g) ?? []).length;
      i = next;
    }

    let k = 0;
    const parseList = (stopAt: string[]): { nodes: Node[]; stop: string; rest?: string } => {
      const nodes: Node[] = [];
      while (k < pieces.length) {
        const piece = pieces[k++];
        if ('text' in piece) { if (piece.text) nodes.push({ n: 'text', v: piece.text }); continue; }
        const body = piece.action.trim();
        const pos = `:${piece.line}`;
        if (body.startsWith('/*')) {
          if (!body.endsWith('*/')) throw new TemplateError(`template: ${pos}: unclosed comment`);
          continue;
        }
        const kw = /^(if|else|end|range|with|define|template|block)\b\s*([\s\S]*)$/.exec(body);
        if (kw) {
          const [, word, rest] = kw;
          if (word === 'end' || word === 'else') {
            if (!stopAt.includes(word)) throw new TemplateError(`template: ${pos}: unexpected {{${word}}}`);
            return { nodes, stop: word, rest };
          }
          if (word === 'define' || word === 'template' || word === 'block') {
            throw new TemplateError(`template: ${pos}: {{${word}}} is not supported`);
          }
          nodes.push(parseBlock(word as 'if' | 'range' | 'with', rest, pos, piece.col + Math.max(0, piece.action.indexOf(rest))));
          continue;
        }
        nodes.push({ n: 'action', pipe: new Parser(pos).pipeline(lexAction(piece.action, pos, piece.col)) });
      }
      if (stopAt.length) throw new TemplateError(`template: :${line}: unexpected EOF`);
      return { nodes, stop: '' };
    };
    const parseBlock = (word: 'if' | 'range' | 'with', cond: string, pos: string, col = 0): Node => {
      if (!cond.trim()) throw new TemplateError(`template: ${pos}: missing value for ${word}`);
      const pipe = new Parser(pos).pipeline(lexAction(cond, pos, col));
      const body = parseList(['else', 'end']);
      let elseNodes: Node[] = [];
      if (body.stop === 'else') {
        const rest = (body.rest ?? '').trim();
        if (rest.startsWith('if') && word === 'if') {
          // {{else if x}} … is an if nested in the else branch that shares the {{end}}.
          elseNodes = [parseBlock('if', rest.slice(2), pos)];
        } else {
          if (rest) throw new TemplateError(`template: ${pos}: unexpected "${rest}" after else`);
          elseNodes = parseList(['end']).nodes;
        }
      }
      return { n: word, pipe, then: body.nodes, else: elseNodes };
    };
    return new Template(parseList([]).nodes);
  }

  /** Renders the template with `data` as dot. `header` swaps in docker's HeaderFunctions. */
  execute(data: unknown, opts: { header?: boolean } = {}): string {
    const ex = new Executor(data, opts.header ?? false);
    try {
      return ex.run(this.nodes, data, [{ $: data }]);
    } catch (e) {
      if (e instanceof TemplateError && !e.message.startsWith('template:')) throw new TemplateError(`template: ${e.message}`);
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

type Scope = Array<Record<string, unknown>>;

function isStruct(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto !== Object.prototype && proto !== null && !(v instanceof Map);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (Array.isArray(v)) return '[]interface {}';
  // A class may name itself as its docker counterpart (`static goType = 'events.Message'`):
  // bundling renames classes, and the Go name is what docker's messages show.
  if (typeof v === 'object') return isStruct(v) ? ((v as object).constructor as { goType?: string }).goType ?? (v as object).constructor.name : 'map[string]interface {}';
  return typeof v;
}

/** Go's fmt %v of a value. */
export function goString(v: unknown): string {
  if (v === NO_VALUE) return '<no value>';
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (v instanceof Map) return `map[${[...v.keys()].map(String).sort().map((k) => `${k}:${goString(v.get(k))}`).join(' ')}]`;
  if (typeof v === 'object') {
    if (isStruct(v) && typeof (v as { toString?: unknown }).toString === 'function' && (v as object).toString !== Object.prototype.toString) return String(v);
    const o = v as Record<string, unknown>;
    if (isStruct(v)) return `{${Object.keys(o).map((k) => goString(o[k])).join(' ')}}`;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goString(o[k])}`).join(' ')}]`;
  }
  return String(v);
}

/** JSON as docker's `json` function writes it: no HTML escaping; bigints exact; undefined dropped. */
export function goJSON(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return 'null';
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  if (Array.isArray(v)) return `[${v.map(goJSON).join(',')}]`;
  if (v instanceof Map) return goJSON(Object.fromEntries(v));
  if (typeof v === 'object') {
    const maybe = v as { toJSON?: () => unknown; marshalJSON?: () => string };
    // Go's json.Marshaler: the value's own JSON text, used as is (docker's formatter contexts
    // marshal with HTML escaping, which the json function itself does not add).
    if (typeof maybe.marshalJSON === 'function') return maybe.marshalJSON();
    if (typeof maybe.toJSON === 'function') return goJSON(maybe.toJSON());
    const parts: string[] = [];
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (val === undefined || typeof val === 'function') continue;
      parts.push(`${JSON.stringify(k)}:${goJSON(val)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return 'null';
}

function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === null || v === undefined || v === false || v === 0 || v === 0n || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object' && !isStruct(v)) return Object.keys(v as object).length > 0;
  return true;
}

function toStr(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  if (v === NO_VALUE || v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  throw new TemplateError(`wrong type for value; expected string; got ${typeName(v)} (in ${fn})`);
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`incompatible types for comparison`);
}

function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqfgtx%])/g, (_all, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s: string;
    switch (verb) {
      case 'd': s = String(Math.trunc(Number(a))); break;
      case 'f': s = Number(a).toFixed(prec !== undefined ? Number(prec) : 6); break;
      case 'q': s = JSON.stringify(goString(a)); break;
      case 'x': s = typeof a === 'number' ? a.toString(16) : Buffer.from(goString(a)).toString('hex'); break;
      case 't': s = String(Boolean(a)); break;
      default: s = goString(a);
    }
    if (prec !== undefined && verb === 's') s = s.slice(0, Number(prec));
    if (width) s = flags.includes('-') ? s.padEnd(Number(width)) : s.padStart(Number(width), flags.includes('0') ? '0' : ' ');
    return s;
  });
}

type Fn = (...args: unknown[]) => unknown;

const FUNCS: Record<string, Fn> = {
  json: (v) => goJSON(v),
  split: (s, sep) => toStr(s, 'split').split(toStr(sep, 'split')),
  join: (list, sep) => {
    if (!Array.isArray(list)) throw new TemplateError(`wrong type for value; expected []string; got ${typeName(list)}`);
    return list.map((x) => goString(x)).join(toStr(sep, 'join'));
  },
  title: (s) => toStr(s, 'title').replace(/(^|[^A-Za-z0-9_'])([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase()),
  lower: (s) => toStr(s, 'lower').toLowerCase(),
  upper: (s) => toStr(s, 'upper').toUpperCase(),
  pad: (s, prefix, suffix) => {
    const str = toStr(s, 'pad');
    return str === '' ? '' : ' '.repeat(Number(prefix)) + str + ' '.repeat(Number(suffix));
  },
  truncate: (s, n) => {
    const str = toStr(s, 'truncate');
    return str.length < Number(n) ? str : str.slice(0, Number(n));
  },
  print: (...a) => a.map((x, i) => (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + goString(x)).join(''),
  println: (...a) => `${a.map(goString).join(' ')}\n`,
  printf: (f, ...a) => sprintf(toStr(f, 'printf'), a),
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v instanceof Map) return v.size;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`len of type ${typeName(v)}`);
  },
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined || cur === NO_VALUE) throw new TemplateError('index of untyped nil');
      if (Array.isArray(cur)) {
        const n = Number(k);
        if (!Number.isInteger(n) || n < 0 || n >= cur.length) throw new TemplateError(`error calling index: index out of range: ${goString(k)}`);
        cur = cur[n];
      } else if (cur instanceof Map) {
        cur = cur.has(k) ? cur.get(k) : NO_VALUE;
      } else if (typeof cur === 'object') {
        const o = cur as Record<string, unknown>;
        cur = Object.hasOwn(o, String(k)) ? o[String(k)] : NO_VALUE;
      } else {
        throw new TemplateError(`can't index item of type ${typeName(cur)}`);
      }
    }
    return cur;
  },
  eq: (a, ...bs) => bs.some((b) => a === b || (a === NO_VALUE && b === null)),
  ne: (a, b) => a !== b,
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  not: (a) => !truthy(a),
};

// docker's HeaderFunctions: headers pass through the string-transforming functions unchanged.
const identity: Fn = (v) => v;
const HEADER_FUNCS: Record<string, Fn> = { ...FUNCS, json: identity, split: identity, join: identity, title: identity, lower: identity, upper: identity, truncate: identity };

class Executor {
  constructor(private readonly root: unknown, private readonly header: boolean) {}

  run(nodes: Node[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      switch (node.n) {
        case 'text': out += node.v; break;
        case 'action': {
          const v = this.pipe(node.pipe, dot, scope);
          if (node.pipe.decl.length === 0) out += goString(v);
          break;
        }
        case 'if': {
          const inner: Scope = [...scope, {}];
          const v = this.pipe(node.pipe, dot, inner);
          out += truthy(v) ? this.run(node.then, dot, inner) : this.run(node.else, dot, inner);
          break;
        }
        case 'with': {
          const inner: Scope = [...scope, {}];
          const v = this.pipe(node.pipe, dot, inner);
          out += truthy(v) ? this.run(node.then, v, inner) : this.run(node.else, dot, inner);
          break;
        }
        case 'range': {
          const decl = node.pipe.decl;
          const v = this.pipe({ ...node.pipe, decl: [] }, dot, scope);
          const entries: Array<[unknown, unknown]> = [];
          if (Array.isArray(v)) v.forEach((x, i) => entries.push([i, x]));
          else if (v instanceof Map) [...v.keys()].sort().forEach((k) => entries.push([k, v.get(k)]));
          else if (v && typeof v === 'object') Object.keys(v).sort().forEach((k) => entries.push([k, (v as Record<string, unknown>)[k]]));
          else if (typeof v === 'number') for (let i = 0; i < v; i++) entries.push([i, i]);
          else if (v !== null && v !== undefined && v !== NO_VALUE) throw new TemplateError(`range can't iterate over ${goString(v)}`);
          if (entries.length === 0) { out += this.run(node.else, dot, scope); break; }
          for (const [k, x] of entries) {
            const vars: Record<string, unknown> = {};
            if (decl.length === 1) vars[decl[0]] = x;
            else if (decl.length >= 2) { vars[decl[0]] = k; vars[decl[1]] = x; }
            out += this.run(node.then, x, [...scope, vars]);
          }
          break;
        }
      }
    }
    return out;
  }

  private lookupVar(name: string, scope: Scope): unknown {
    if (name === '$') return this.root;
    for (let i = scope.length - 1; i >= 0; i--) if (Object.hasOwn(scope[i], name)) return scope[i][name];
    throw new TemplateError(`undefined variable "${name}"`);
  }

  private pipe(p: Pipeline, dot: unknown, scope: Scope): unknown {
    let prev: unknown = undefined;
    let first = true;
    for (const c of p.cmds) {
      prev = this.command(c, dot, scope, first ? undefined : { v: prev });
      first = false;
    }
    if (p.decl.length) {
      if (p.assign) {
        for (let i = scope.length - 1; i >= 0; i--) {
          if (Object.hasOwn(scope[i], p.decl[0])) { scope[i][p.decl[0]] = prev; return prev; }
        }
        throw new TemplateError(`undefined variable "${p.decl[0]}"`);
      }
      scope[scope.length - 1][p.decl[0]] = prev;
    }
    return prev;
  }

  private command(c: Command, dot: unknown, scope: Scope, piped: { v: unknown } | undefined): unknown {
    const [head, ...rest] = c.args;
    if (head.k === 'ident') {
      const fns = this.header ? HEADER_FUNCS : FUNCS;
      if (head.name === 'and' || head.name === 'or') {
        const vals = rest.map((a) => this.arg(a, dot, scope));
        if (piped) vals.push(piped.v);
        if (head.name === 'and') { for (const v of vals) if (!truthy(v)) return v; return vals[vals.length - 1]; }
        for (const v of vals) if (truthy(v)) return v;
        return vals[vals.length - 1];
      }
      const fn = fns[head.name];
      if (!fn) throw new TemplateError(`function "${head.name}" not defined`);
      const args = rest.map((a) => this.arg(a, dot, scope));
      if (piped) args.push(piped.v);
      return fn(...args);
    }
    if (rest.length > 0 || piped) {
      // A method with arguments ({{.Label "com.example.x"}}): the last field names a function
      // on the value before it, called with the arguments (a piped value last, as Go does).
      if ((head.k === 'field' || head.k === 'var') && head.path.length > 0) {
        const base = head.k === 'field' ? dot : this.lookupVar(head.name, scope);
        const recv = this.walk(base, head.path.slice(0, -1), this.describe(head));
        const name = head.path[head.path.length - 1];
        const m = recv !== null && typeof recv === 'object' ? (recv as Record<string, unknown>)[name] : undefined;
        if (typeof m === 'function') {
          const args = rest.map((a) => this.arg(a, dot, scope));
          if (piped) args.push(piped.v);
          return (m as Fn).apply(recv, args);
        }
      }
      // Only functions and methods take arguments.
      throw new TemplateError(`can't give argument to non-function ${this.describe(head)}`);
    }
    return this.arg(head, dot, scope);
  }

  private describe(a: Arg): string {
    if (a.k === 'field') return `.${a.path.join('.')}`;
    if (a.k === 'var') return a.name + (a.path.length ? `.${a.path.join('.')}` : '');
    if (a.k === 'lit') return goString(a.v);
    return '(…)';
  }

  private arg(a: Arg, dot: unknown, scope: Scope): unknown {
    switch (a.k) {
      case 'lit': return a.v;
      case 'field': return this.walk(dot, a.path, `.${a.path.join('.')}`, a.pos);
      case 'var': return this.walk(this.lookupVar(a.name, scope), a.path, a.name);
      case 'sub': return this.walk(this.pipe(a.pipe, dot, scope), a.path, '(…)');
      case 'ident': {
        const fn = (this.header ? HEADER_FUNCS : FUNCS)[a.name];
        if (!fn) throw new TemplateError(`function "${a.name}" not defined`);
        return fn();
      }
    }
  }

  private walk(v: unknown, path: string[], at: string, pos?: string): unknown {
    // Go prefixes execution errors with the node's ":line:column" when it knows it.
    const where = pos ? `${pos}: ` : '';
    let cur = v;
    for (const f of path) {
      if (cur === NO_VALUE) return NO_VALUE;
      if (cur === null || cur === undefined) throw new TemplateError(`${where}executing "" at <${at}>: nil pointer evaluating interface {}.${f}`);
      if (cur instanceof Map) { cur = cur.has(f) ? cur.get(f) : NO_VALUE; continue; }
      if (typeof cur !== 'object') throw new TemplateError(`${where}executing "" at <${at}>: can't evaluate field ${f} in type ${typeName(cur)}`);
      const o = cur as Record<string, unknown>;
      try {
        if (isStruct(cur)) {
          if (!(f in o)) throw new TemplateError(`${where}executing "" at <${at}>: can't evaluate field ${f} in type ${typeName(cur)}`);
          const val = o[f];
          cur = typeof val === 'function' ? (val as () => unknown).call(o) : val;
        } else {
          cur = Object.hasOwn(o, f) ? o[f] : NO_VALUE;
          if (typeof cur === 'function') cur = (cur as () => unknown).call(o);
        }
      } catch (e) {
        // A strict map's "map has no entry for key" (inspect templates) is an execution error too.
        if (e instanceof TemplateError) throw e;
        throw new TemplateError(`${where}executing "" at <${at}>: ${(e as Error).message}`);
      }
    }
    return cur;
  }
}
