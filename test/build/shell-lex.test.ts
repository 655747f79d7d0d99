// Docker's word expansion (src/build/shell-lex.ts): the table below is our own, covering the rules
// of BuildKit's shell/lex.go — quoting, the escape token, parameter forms and their errors, word
// splitting, and which names a word references.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expandWord, expandWords, variablesUsed } from '../../src/build/shell-lex.ts';
import { BuildError } from '../../src/build/types.ts';

const env = new Map([
  ['APP', '/srv/app'], ['EMPTY', ''], ['FILE', 'dist/pkg-1.2.3.tar.gz'], ['TWO', 'one  two'], ['Q', '"q"'],
]);

describe('expandWord', () => {
  const table: Array<[string, string]> = [
    // plain references
    ['$APP', '/srv/app'], ['${APP}/bin', '/srv/app/bin'], ['$APP/bin', '/srv/app/bin'], ['x${APP}x', 'x/srv/appx'],
    ['$MISSING', ''], ['pre$MISSING-post', 'pre-post'], ['$Q', '"q"'],
    // a lone or trailing $ stays
    ['$', '$'], ['cost: 5$', 'cost: 5$'], ['$-', ''], ['$1', ''],
    // quotes
    ['"$APP dir"', '/srv/app dir'], ["'$APP'", '$APP'], ['"it\'s"', "it's"], ["'say \"hi\"'", 'say "hi"'],
    ['a"b"c', 'abc'], ["''", ''], ['""', ''],
    // escapes
    ['\\$APP', '$APP'], ['\\\\', '\\'], ['a\\ b', 'a b'], ['"\\$APP"', '$APP'], ['"a\\"b"', 'a"b'], ['"\\n"', '\\n'],
    ["'\\$APP'", '\\$APP'],
    // defaults and alternatives
    ['${MISSING:-fallback}', 'fallback'], ['${EMPTY:-fallback}', 'fallback'], ['${APP:-fallback}', '/srv/app'],
    ['${MISSING-fallback}', 'fallback'], ['${EMPTY-fallback}', ''],
    ['${APP:+set}', 'set'], ['${EMPTY:+set}', ''], ['${MISSING:+set}', ''],
    ['${APP+set}', 'set'], ['${EMPTY+set}', 'set'], ['${MISSING+set}', ''],
    ['${MISSING:-$APP/x}', '/srv/app/x'], ['${MISSING:-${EMPTY:-deep}}', 'deep'], ['${MISSING:-a b}', 'a b'],
    ['${APP:?needed}', '/srv/app'], ['${EMPTY?needed}', ''],
    // prefix and suffix removal
    ['${FILE#*/}', 'pkg-1.2.3.tar.gz'], ['${FILE#*.}', '2.3.tar.gz'], ['${FILE##*.}', 'gz'],
    ['${FILE%.gz}', 'dist/pkg-1.2.3.tar'], ['${FILE%.*}', 'dist/pkg-1.2.3.tar'], ['${FILE%%.*}', 'dist/pkg-1'],
    ['${FILE#nomatch}', 'dist/pkg-1.2.3.tar.gz'], ['${MISSING%x}', ''],
    // substitution
    ['${FILE/./_}', 'dist/pkg-1_2.3.tar.gz'], ['${FILE//./_}', 'dist/pkg-1_2_3_tar_gz'], ['${FILE/tar.gz/zip}', 'dist/pkg-1.2.3.zip'],
    ['${FILE//[0-9]/N}', 'dist/pkg-N.N.N.tar.gz'], ['${FILE/x/y}', 'dist/pkg-1.2.3.tar.gz'],
  ];
  for (const [word, want] of table) {
    test(`${word} → ${JSON.stringify(want)}`, () => assert.equal(expandWord(word, env), want));
  }

  test('errors are BuildErrors with bash-like wording', () => {
    const bad: Array<[string, RegExp]> = [
      ['${MISSING:?must set MISSING}', /^MISSING: must set MISSING$/],
      ['${MISSING?}', /MISSING: is not allowed to be unset/],
      ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
      ['"open', /double-quote/],
      ["'open", /single-quote/],
      ['${APP', /missing '}'/],
      ['${APP:0:2}', /unsupported modifier/],
      ['${}', /bad substitution/],
    ];
    for (const [word, re] of bad) {
      assert.throws(() => expandWord(word, env), (e: unknown) => e instanceof BuildError && e.code === 'invalid' && re.test(e.message), word);
    }
  });

  test('the environment may be a list of K=V where the last definition wins', () => {
    assert.equal(expandWord('$A-$B', ['A=1', 'B=x=y', 'A=2']), '2-x=y');
  });

  test('with the backtick escape token, backslashes are ordinary characters', () => {
    assert.equal(expandWord('C:\\Users\\$APP', env, '`'), 'C:\\Users\\/srv/app');
    assert.equal(expandWord('`$APP and `` and "`""', env, '`'), '$APP and ` and "');
  });
});

describe('expandWords', () => {
  test('splits on unquoted whitespace, including inside unquoted expansions', () => {
    assert.deepEqual(expandWords('a  b\tc', env), ['a', 'b', 'c']);
    assert.deepEqual(expandWords('$TWO', env), ['one', 'two']);
    assert.deepEqual(expandWords('x$TWO', env), ['xone', 'two']);
    assert.deepEqual(expandWords('"$TWO" end', env), ['one  two', 'end']);
    assert.deepEqual(expandWords("'a b' \"c d\" e\\ f", env), ['a b', 'c d', 'e f']);
  });

  test('an empty quoted word is kept; unset or empty unquoted words vanish', () => {
    assert.deepEqual(expandWords('"" $MISSING $EMPTY x', env), ['', 'x']);
    assert.deepEqual(expandWords('   ', env), []);
  });
});

describe('variablesUsed', () => {
  test('names in plain, braced, nested and modifier forms; not in single quotes or escaped', () => {
    assert.deepEqual(variablesUsed('$A "${B}" \'$C\' \\$D ${E:-$F} ${G%%x} ${H/a/$I}').sort(), ['A', 'B', 'E', 'F', 'G', 'H', 'I']);
    assert.deepEqual(variablesUsed('no references here'), []);
  });
});
