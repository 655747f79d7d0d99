// .dockerignore: every rule of moby's ignorefile reader and patternmatcher, as a table of
// patterns → paths → excluded or not, plus the patterns docker refuses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDockerignore, PatternMatcher } from '../../src/build/dockerignore.ts';
import { BuildError } from '../../src/build/types.ts';

describe('parseDockerignore', () => {
  const cases: Array<[string, string, string[]]> = [
    ['comments and blank lines', '# a comment\n\n   \nfoo\n', ['foo']],
    ['a comment only at the start of the line', '  # not a comment\n', ['# not a comment']],
    ['surrounding whitespace', '  foo  \n\tbar\t\n', ['foo', 'bar']],
    ['CRLF line ends', 'foo\r\nbar\r\n', ['foo', 'bar']],
    ['a UTF-8 BOM on the first line', '\uFEFFfoo\n', ['foo']],
    ['cleaned like filepath.Clean', 'a//b/\n./c\nd/../e\na/./b/.\n', ['a/b', 'c', 'e', 'a/b']],
    ['a leading slash dropped', '/foo\n/\n!/bar\n', ['foo', '/', '!bar']],
    ['exceptions trimmed and cleaned', '!  ./keep/  \n', ['!keep']],
    ['a lone ! kept for the matcher to refuse', '!\n', ['!']],
    ['.. kept', '../x\n', ['../x']],
  ];
  for (const [name, text, want] of cases) test(name, () => assert.deepEqual(parseDockerignore(text), want));
});

describe('PatternMatcher', () => {
  // [patterns, path, excluded]
  const table: Array<[string[], string, boolean]> = [
    // exact names and parents
    [['foo'], 'foo', true],
    [['foo'], 'foo/bar/baz', true],
    [['foo'], 'foobar', false],
    [['foo'], 'x/foo', false],
    [['foo/bar'], 'foo/bar/x', true],
    [['foo/bar'], 'foo', false],
    // * and ? stay within a component
    [['*.log'], 'a.log', true],
    [['*.log'], 'dir/a.log', false],
    [['*/*.log'], 'dir/a.log', true],
    [['*'], 'anything/below', true],
    [['a?c'], 'abc', true],
    [['a?c'], 'a/c', false],
    [['a?c'], 'ac', false],
    // ** crosses directories, including none
    [['**/foo'], 'foo', true],
    [['**/foo'], 'a/b/foo', true],
    [['**/foo'], 'a/b/foo/x', true],
    [['**/foo'], 'a/xfoo', false],
    [['**'], 'a/b/c', true],
    [['foo/**'], 'foo/x/y', true],
    [['foo/**'], 'foo', false],
    [['foo/**/bar'], 'foo/bar', true],
    [['foo/**/bar'], 'foo/a/b/bar', true],
    [['foo/**/bar'], 'foo/a/b/baz', false],
    [['**/*.go'], 'a/b/c.go', true],
    [['**/*.go'], 'c.go', true],
    [['a**'], 'abc/d', true],
    // moby's quirk: a leading ** before plain text is a suffix test
    [['**foo'], 'barfoo', true],
    // classes and escapes
    [['file[0-9].txt'], 'file3.txt', true],
    [['file[0-9].txt'], 'filex.txt', false],
    [['file[^0-9].txt'], 'filex.txt', true],
    [['file[^0-9].txt'], 'file3.txt', false],
    [['esc\\*'], 'esc*', true],
    [['esc\\*'], 'escx', false],
    [['a\\?b'], 'a?b', true],
    [['a\\?b'], 'axb', false],
    // regex characters are literal
    [['a.b'], 'axb', false],
    [['a.b'], 'a.b', true],
    [['a+(b)|{c}$'], 'a+(b)|{c}$', true],
    [['*.tar.gz'], 'x.tar.gz', true],
    [['*.tar.gz'], 'x.targz', false],
    // exceptions and order: the last matching pattern wins
    [['*.md', '!README.md'], 'README.md', false],
    [['*.md', '!README.md'], 'CHANGES.md', true],
    [['!README.md', '*.md'], 'README.md', true],
    [['docs', '!docs/keep'], 'docs/keep', false],
    [['docs', '!docs/keep'], 'docs/keep/inner', false],
    [['docs', '!docs/keep'], 'docs/drop', true],
    [['docs', '!docs/keep', 'docs/keep/secret'], 'docs/keep/secret', true],
    [['**/*.go', '!vendor/**', 'vendor/x/**/*.go'], 'vendor/y/a.go', false],
    [['**/*.go', '!vendor/**', 'vendor/x/**/*.go'], 'vendor/x/a/b.go', true],
    // patterns are trimmed and cleaned by the matcher too; paths are cleaned
    [['  foo/  '], 'foo/x', true],
    [['foo'], './foo', true],
    [['foo'], 'foo/', true],
    [['/foo'], 'foo', false], // the reader drops a leading '/', the matcher does not
  ];
  for (const [patterns, path, want] of table) {
    test(`${JSON.stringify(patterns)} ${want ? 'excludes' : 'keeps'} ${path}`, () => {
      assert.equal(new PatternMatcher(patterns).matches(path), want);
    });
  }

  test('hasExclusions says whether a walker must look inside excluded directories', () => {
    assert.equal(new PatternMatcher(['a', 'b']).hasExclusions, false);
    assert.equal(new PatternMatcher(['a', '!a/b']).hasExclusions, true);
    assert.equal(new PatternMatcher([]).hasExclusions, false);
    assert.equal(new PatternMatcher([]).matches('x'), false);
  });

  test('docker refuses a lone ! and malformed patterns', () => {
    for (const bad of [['!'], ['['], ['a[b'], ['[]'], ['[]a]'], ['[a-]'], ['x\\']]) {
      assert.throws(() => new PatternMatcher(bad), (err: unknown) => err instanceof BuildError && err.code === 'invalid' && /illegal exclusion pattern|syntax error in pattern/.test(err.message), JSON.stringify(bad));
    }
    assert.doesNotThrow(() => new PatternMatcher(['[a-z]', '[\\]]']));
  });

  test('a parsed file end to end', () => {
    const m = new PatternMatcher(parseDockerignore('# build output\n/dist/\nnode_modules\n*.log\n!important.log\n**/.git\n'));
    const want: Array<[string, boolean]> = [
      ['dist/a.js', true], ['src/dist/a.js', false], ['node_modules/x/y', true], ['err.log', true],
      ['important.log', false], ['sub/err.log', false], ['.git/HEAD', true], ['vendor/lib/.git/HEAD', true], ['src/main.ts', false],
    ];
    for (const [p, w] of want) assert.equal(m.matches(p), w, p);
  });
});
