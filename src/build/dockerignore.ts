// .dockerignore, with the rules of moby's patternmatcher: one pattern per line (a UTF-8 BOM on
// the first is dropped); a line starting with '#' is a comment; surrounding whitespace is dropped;
// patterns are cleaned like filepath.Clean and a leading '/' is dropped; '!' makes an exception;
// '*' and '?' never cross '/', '**' crosses any number of directories, '[…]' is a class, '\'
// escapes; the last pattern that matches a path (or one of its parent directories) decides.
import { posix } from 'node:path';
import { BuildError } from './types.ts';

export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  if (lines[0]?.startsWith('\uFEFF')) lines[0] = lines[0].slice(1);
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    // docker tests for a comment before trimming: " # x" is a pattern.
    if (raw.startsWith('#')) continue;
    let p = raw.trim();
    if (!p) continue;
    let invert = false;
    if (p.startsWith('!')) {
      invert = true;
      p = p.slice(1).trim();
    }
    if (p.length > 0) {
      p = clean(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

/** Go's filepath.Clean on '/'-separated paths (posix.normalize keeps a trailing '/'; Clean does not). */
function clean(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * Refuses what Go's filepath.Match calls a malformed pattern (docker checks every pattern up front
 * and fails the build with "syntax error in pattern"): an unclosed or empty class, a range with no
 * end, a trailing '\'.
 */
function checkSyntax(pattern: string): void {
  const bad = () => new BuildError('invalid', `syntax error in pattern: ${JSON.stringify(pattern)}`);
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (++i >= pattern.length) throw bad();
    } else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      let items = 0;
      for (;;) {
        if (i >= pattern.length) throw bad();
        if (pattern[i] === ']' && items > 0) break;
        // one item: a character (maybe escaped), maybe '-' and another
        const char = (): void => {
          const ch = pattern[i];
          if (ch === undefined || ch === '-' || ch === ']') throw bad();
          if (ch === '\\') {
            i++;
            if (i >= pattern.length) throw bad();
          }
          i++;
        };
        char();
        if (pattern[i] === '-') {
          i++;
          char();
        }
        items++;
      }
    }
  }
}

type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Compiled { pattern: string; kind: MatchKind; re?: RegExp; exclusion: boolean }

// Characters a regular expression treats specially but filepath.Match does not ('^' is left out,
// as moby leaves it out: it keeps its regex meaning).
const REGEX_ONLY = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/**
 * Moby turns each pattern into an exact, prefix ("foo/**"), suffix ("**…") or regular-expression
 * match; the kinds are kept because they differ at the edges (a leading "**" followed by plain
 * text is a plain suffix test, so "**foo" matches "barfoo").
 */
function compile(pattern: string, exclusion: boolean): Compiled {
  let re = '^';
  let kind: MatchKind = 'exact';
  let step = 0;
  for (let i = 0; i < pattern.length; i++, step++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        if (i + 1 >= pattern.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '.*';
            kind = 'regexp';
          }
        } else {
          re += '(.*/)?';
          kind = 'regexp';
        }
        if (step === 0) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (c === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (REGEX_ONLY.has(c)) {
      re += `\\${c}`;
    } else if (c === '\\') {
      if (i + 1 < pattern.length) {
        const next = pattern[++i]!;
        // JavaScript gives '\' before a letter or digit its own meanings; the character itself is meant.
        re += /[A-Za-z0-9]/.test(next) ? next : `\\${next}`;
        kind = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (c === '[' || c === ']') {
      re += c;
      kind = 'regexp';
    } else {
      re += c;
    }
  }
  const out: Compiled = { pattern, kind, exclusion };
  if (kind === 'regexp') {
    try {
      out.re = new RegExp(`${re}$`);
    } catch {
      throw new BuildError('invalid', `syntax error in pattern: ${JSON.stringify(pattern)}`);
    }
  }
  return out;
}

function matchOne(p: Compiled, path: string): boolean {
  switch (p.kind) {
    case 'exact':
      return path === p.pattern;
    case 'prefix':
      return path.startsWith(p.pattern.slice(0, -2));
    case 'suffix': {
      const suffix = p.pattern.slice(2);
      if (path.endsWith(suffix)) return true;
      return suffix.startsWith('/') && path === suffix.slice(1);
    }
    default:
      return p.re!.test(path);
  }
}

export class PatternMatcher {
  private readonly patterns: Compiled[];
  readonly hasExclusions: boolean;

  /** Throws BuildError('invalid') for a lone '!' or a malformed pattern, as docker refuses them. */
  constructor(patterns: string[]) {
    this.patterns = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (!p) continue;
      p = clean(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new BuildError('invalid', 'illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      checkSyntax(p);
      this.patterns.push(compile(p, exclusion));
    }
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  /** Whether rel (relative to the context root, '/'-separated) is excluded, a matching parent counting. */
  matches(rel: string): boolean {
    const path = clean(rel).replace(/^\/+/, '');
    const parts = path.split('/');
    const parents: string[] = [];
    for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join('/'));
    let matched = false;
    for (const p of this.patterns) {
      // An exception can only change the verdict when it is in force, and vice versa.
      if (p.exclusion !== matched) continue;
      const hit = matchOne(p, path) || parents.some((d) => matchOne(p, d));
      if (hit) matched = !p.exclusion;
    }
    return matched;
  }
}
