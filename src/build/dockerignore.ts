// .dockerignore, with the rules of moby's patternmatcher: one pattern per line; '#' starts a
// comment line; surrounding whitespace is dropped; patterns are cleaned like filepath.Clean and a
// leading '/' is dropped; '!' makes an exception; '*' and '?' never cross '/', '**' crosses any
// number of directories, '[…]' is a class, '\' escapes; the last pattern that matches a path (or
// one of its parent directories) decides.
import { posix } from 'node:path';

export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith('#')) continue;
    let p = raw.trim();
    if (!p) continue;
    let invert = false;
    if (p.startsWith('!')) {
      invert = true;
      p = p.slice(1).trim();
    }
    if (p.length > 0) {
      p = posix.normalize(p.replace(/\\(?=[^*?[\]\\])/g, '\\'));
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
      if (p.endsWith('/') && p.length > 1) p = p.slice(0, -1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

interface Compiled { re: RegExp; exclusion: boolean }

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
      } else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`${re}$`);
}

export class PatternMatcher {
  private readonly patterns: Compiled[];
  readonly hasExclusions: boolean;

  constructor(patterns: string[]) {
    this.patterns = patterns.filter((p) => p !== '' && p !== '!').map((p) => {
      const exclusion = p.startsWith('!');
      return { re: compile(exclusion ? p.slice(1) : p), exclusion };
    });
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  /** Whether rel (relative to the context root, '/'-separated) is excluded, a matching parent counting. */
  matches(rel: string): boolean {
    const path = posix.normalize(rel).replace(/^\/+/, '').replace(/\/+$/, '');
    const parents: string[] = [];
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join('/'));
    let matched = false;
    for (const p of this.patterns) {
      // An exception can only change the verdict when it is in force, and vice versa.
      if (p.exclusion !== matched) continue;
      let hit = p.re.test(path);
      if (!hit) hit = parents.some((d) => p.re.test(d));
      if (hit) matched = !p.exclusion;
    }
    return matched;
  }
}
