// Dockerfile parser (src/build/parser.ts): directives, continuations, comments, JSON and shell
// forms, flags, heredocs, per-instruction argument shapes and the AST dump used by the
// BuildKit conformance runner (scripts/check-buildkit-parser.mjs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dumpNode, parseDockerfile } from '../../src/build/parser.ts';
import { BuildError } from '../../src/build/types.ts';

const nodes = (text: string) => parseDockerfile(text).nodes;
const dumps = (text: string, esc = '\\') => nodes(text).map((n) => dumpNode(n, esc));
const fails = (text: string, re: RegExp, file?: string) =>
  assert.throws(() => parseDockerfile(text, file ? { file } : {}), (e: unknown) => e instanceof BuildError && e.code === 'invalid' && re.test(e.message), text);

describe('directives', () => {
  test('escape=` makes backslashes literal, so Windows paths need no doubling', () => {
    const p = parseDockerfile('# escape=`\nFROM mcr/win\nCOPY app\\bin C:\\app\\\nRUN dir `\n    C:\\app\n');
    assert.equal(p.escapeToken, '`');
    assert.deepEqual(p.nodes[1]!.args, ['app\\bin', 'C:\\app\\']);
    assert.deepEqual(p.nodes[2]!.args, ['dir     C:\\app']);
    assert.deepEqual([p.nodes[2]!.startLine, p.nodes[2]!.endLine], [4, 5]);
  });

  test('directive keys are case-insensitive and spacing around = is allowed', () => {
    assert.equal(parseDockerfile('#ESCAPE = `\nFROM x\n').escapeToken, '`');
    assert.equal(parseDockerfile('#   escape=`\nFROM x\n').escapeToken, '`');
  });

  test('indented directives count; an empty value is a comment and ends the directives; check= is a directive', () => {
    assert.equal(parseDockerfile('  # escape=`\nFROM x\n').escapeToken, '`');
    assert.equal(parseDockerfile('# escape=\n# escape=`\nFROM x\n').escapeToken, '\\');
    assert.equal(parseDockerfile('# check=skip=all\n# escape=`\nFROM x\n').escapeToken, '`');
    assert.equal(parseDockerfile('\n# escape=`\nFROM x\n').escapeToken, '\\');
  });

  test('syntax is recorded and otherwise accepted', () => {
    const p = parseDockerfile('# syntax=docker/dockerfile:1.7\nFROM x\n');
    assert.equal(p.syntax, 'docker/dockerfile:1.7');
    assert.equal(p.escapeToken, '\\');
  });

  test('directives count only at the top: after a blank line, a comment or an instruction they are comments', () => {
    assert.equal(parseDockerfile('FROM x\n# escape=`\n').escapeToken, '\\');
    assert.equal(parseDockerfile('# hello\n# escape=`\nFROM x\n').escapeToken, '\\');
  });

  test('an unknown directive ends the directive block without error', () => {
    const p = parseDockerfile('# mydirective=1\n# escape=`\nFROM x\n');
    assert.equal(p.escapeToken, '\\');
    assert.equal(p.nodes.length, 1);
  });

  test('repeated or invalid directives fail naming the file and line', () => {
    fails('# escape=`\n# escape=`\nFROM x\n', /^build\/Dockerfile\.dev:2: .*only one escape parser directive/, 'build/Dockerfile.dev');
    fails('# escape=$\nFROM x\n', /^Dockerfile:1: invalid escape token/);
  });
});

describe('lines', () => {
  test('keywords are case-insensitive and leading whitespace is ignored', () => {
    assert.deepEqual(nodes('from a\n   Run   b\n\tcMd c\n').map((n) => n.instruction), ['from', 'run', 'cmd']);
  });

  test('continuations join lines; comment and blank lines inside are dropped (blank ones warn)', () => {
    const p = parseDockerfile('FROM x\nRUN apt-get update \\\n# why\n    && apt-get install -y \\\n\n    curl\n');
    const run = p.nodes[1]!;
    assert.deepEqual(run.args, ['apt-get update     && apt-get install -y     curl']);
    assert.deepEqual([run.startLine, run.endLine], [2, 6]);
    assert.equal(p.warnings.length, 1);
    assert.equal(p.warnings[0]!.line, 2);
  });

  test('a comment-only continuation gives no warning', () => {
    assert.equal(parseDockerfile('FROM x\nRUN a \\\n  # note\n  b\n').warnings.length, 0);
  });

  test('trailing whitespace after the escape still continues the line', () => {
    assert.deepEqual(nodes('FROM x\nRUN a \\   \n b\n')[1]!.args, ['a  b']);
  });

  test('an escape on the last line of the file just ends the instruction', () => {
    assert.deepEqual(dumps('FROM x\nRUN true \\'), ['from "x"', 'run "true"']);
    assert.deepEqual(dumps('FROM x\nRUN true \\\n\n'), ['from "x"', 'run "true"']);
  });

  test('CRLF line endings and a UTF-8 BOM are accepted', () => {
    assert.deepEqual(dumps('\uFEFFFROM x\r\nRUN a \\\r\n  b\r\n'), ['from "x"', 'run "a   b"']);
  });

  test('a file without instructions is an error', () => {
    fails('\n\n', /file with no instructions/);
    fails('# syntax=x\n# only\n', /file with no instructions/);
  });
});

describe('forms and flags', () => {
  test('a valid JSON array is the exec form; anything else is the shell form', () => {
    const ns = nodes('FROM x\nRUN ["/bin/echo","a b"]\nCMD [ "x" ]\nCMD [\'x\']\nENTRYPOINT ["x"] y\nCMD ["unterminated\nCMD [1, 2]\n');
    assert.deepEqual(ns.slice(1).map((n) => [n.json, n.args]), [
      [true, ['/bin/echo', 'a b']],
      [true, ['x']],
      [false, ["['x']"]],
      [false, ['["x"] y']],
      [false, ['["unterminated']],
      [false, ['[1, 2]']],
    ]);
  });

  test('JSON strings decode escapes', () => {
    assert.deepEqual(nodes('FROM x\nCMD ["a\\"b", "\\u00e9", "c\\\\d"]\n')[1]!.args, ['a"b', 'é', 'c\\d']);
  });

  test('flags come before the arguments and keep their raw text', () => {
    const n = nodes('FROM x\nRUN --mount=type=cache,target=/root/.cache --network=none pip install .\n')[1]!;
    assert.deepEqual(n.flags, ['--mount=type=cache,target=/root/.cache', '--network=none']);
    assert.deepEqual(n.args, ['pip install .']);
    const f = nodes('FROM --platform=linux/amd64 alpine AS base\n')[0]!;
    assert.deepEqual([f.flags, f.args], [['--platform=linux/amd64'], ['alpine', 'AS', 'base']]);
  });

  test('a flag-looking word after the first argument is an argument', () => {
    const n = nodes('FROM x\nCOPY a --chown=1 /b\n')[1]!;
    assert.deepEqual([n.flags, n.args], [[], ['a', '--chown=1', '/b']]);
  });
});

describe('arguments per instruction', () => {
  test('FROM, COPY, ADD, EXPOSE, VOLUME, ARG split into words', () => {
    assert.deepEqual(nodes('FROM img:1 as b\n')[0]!.args, ['img:1', 'as', 'b']);
    const ns = nodes('FROM x\nCOPY  a   b  /c/\nADD ["s p", "/d"]\nEXPOSE 80/tcp 9000-9010\nVOLUME /v1 /v2\nARG A B=1\n');
    assert.deepEqual(ns.slice(1).map((n) => n.args), [['a', 'b', '/c/'], ['s p', '/d'], ['80/tcp', '9000-9010'], ['/v1', '/v2'], ['A', 'B=1']]);
  });

  test('ENV and LABEL give key/value pairs; the old "ENV key value" form keeps the whole value', () => {
    assert.deepEqual(nodes('FROM x\nENV PATH=/a:$PATH  LANG=C.UTF-8\n')[1]!.args, ['PATH', '/a:$PATH', 'LANG', 'C.UTF-8']);
    assert.deepEqual(nodes('FROM x\nENV GREETING hello   world\n')[1]!.args, ['GREETING', 'hello   world']);
    assert.deepEqual(nodes('FROM x\nLABEL "com.example.a"="v 1" b=\'2\'\n')[1]!.args, ['"com.example.a"', '"v 1"', 'b', "'2'"]);
    assert.deepEqual(nodes('FROM x\nENV EMPTY=\n')[1]!.args, ['EMPTY', '']);
    fails('FROM x\nENV A=1 justaname\n', /^Dockerfile:2: Syntax error - can't find = in "justaname"/);
    fails('FROM x\nENV\n', /^Dockerfile:2: ENV/);
  });

  test('RUN, CMD, ENTRYPOINT, WORKDIR, USER, MAINTAINER, STOPSIGNAL take the rest of the line as one string', () => {
    const ns = nodes('FROM x\nRUN a  &&  b\nCMD echo "hi there"\nWORKDIR /a b\nUSER app:app\nMAINTAINER Jo <jo@x>\nSTOPSIGNAL SIGKILL\n');
    assert.deepEqual(ns.slice(1).map((n) => n.args), [['a  &&  b'], ['echo "hi there"'], ['/a b'], ['app:app'], ['Jo <jo@x>'], ['SIGKILL']]);
  });

  test('ONBUILD holds its trigger as a nested instruction', () => {
    assert.deepEqual(dumps('FROM x\nONBUILD COPY --chown=1 . /src\n'), ['from "x"', 'onbuild (copy ["--chown=1"] "." "/src")']);
  });

  test('HEALTHCHECK keeps its type word first', () => {
    assert.deepEqual(nodes('FROM x\nHEALTHCHECK --retries=3 CMD wget -q localhost\n')[1]!.args, ['CMD', 'wget -q localhost']);
    assert.deepEqual(nodes('FROM x\nHEALTHCHECK CMD ["true"]\n')[1]!.args, ['CMD', 'true']);
    assert.deepEqual(nodes('FROM x\nHEALTHCHECK none\n')[1]!.args, ['none']);
  });

  test('original keeps the instruction text with continuations joined', () => {
    assert.equal(nodes('FROM x\nRUN one \\\n  two\n')[1]!.original, 'RUN one   two');
  });
});

describe('heredocs', () => {
  test('RUN <<EOF collects the body up to the delimiter line', () => {
    const [, run, cmd] = nodes('FROM x\nRUN <<EOF\nset -e\necho $HOME\nEOF\nCMD ["sh"]\n');
    assert.deepEqual(run!.heredocs, [{ name: 'EOF', content: 'set -e\necho $HOME\n', expand: true }]);
    assert.deepEqual([run!.startLine, run!.endLine], [2, 5]);
    assert.deepEqual([cmd!.instruction, cmd!.startLine], ['cmd', 6]);
  });

  test('several heredocs on one line are read one after the other', () => {
    const run = nodes('FROM x\nRUN python3 - <<PY && sh <<SH\nprint(1)\nPY\necho 2\nSH\n')[1]!;
    assert.deepEqual(run.heredocs.map((h) => [h.name, h.content]), [['PY', 'print(1)\n'], ['SH', 'echo 2\n']]);
    assert.equal(run.endLine, 6);
  });

  test('<<- strips leading tabs from the body and from the delimiter line', () => {
    const run = nodes('FROM x\nRUN <<-END\n\t\tindented\n  spaces stay\n\tEND\n')[1]!;
    assert.deepEqual(run.heredocs, [{ name: 'END', content: 'indented\n  spaces stay\n', expand: true }]);
  });

  test('a quoted delimiter turns expansion off', () => {
    const hd = nodes('FROM x\nRUN cat <<"A" <<\'B\' <<C\n1\nA\n2\nB\n3\nC\n')[1]!.heredocs;
    assert.deepEqual(hd.map((h) => [h.name, h.expand]), [['A', false], ['B', false], ['C', true]]);
  });

  test('COPY <<EOF /dst and a file descriptor prefix', () => {
    const copy = nodes('FROM x\nCOPY <<conf.ini /etc/app/\n[a]\nb=1\nconf.ini\n')[1]!;
    assert.deepEqual(copy.args, ['<<conf.ini', '/etc/app/']);
    assert.deepEqual(copy.heredocs, [{ name: 'conf.ini', content: '[a]\nb=1\n', expand: true }]);
    assert.equal(nodes('FROM x\nRUN cat 3<<X\nx\nX\n')[1]!.heredocs[0]!.name, 'X');
  });

  test('an empty body, and "<<" inside quotes or mid-word is not a heredoc', () => {
    assert.deepEqual(nodes('FROM x\nRUN cat <<E\nE\n')[1]!.heredocs, [{ name: 'E', content: '', expand: true }]);
    assert.deepEqual(nodes('FROM x\nRUN echo "<<E" a<<F\nCMD x\n')[1]!.heredocs, []);
  });

  test('only RUN, COPY, ADD (also as ONBUILD triggers) in shell form read heredocs', () => {
    assert.equal(nodes('FROM x\nCMD cat <<E\nRUN x\n').length, 3);
    assert.equal(nodes('FROM x\nRUN ["cat", "<<E"]\nRUN y\n').length, 3);
    assert.deepEqual(nodes('FROM x\nONBUILD RUN <<E\nhi\nE\n')[1]!.heredocs.map((h) => h.content), ['hi\n']);
  });

  test('delimiter words: blanks after <<, partial quoting, escapes, $ kept literally', () => {
    const hd = (line: string, end: string) => nodes(`FROM x\nRUN ${line}\n${end}\n`)[1]!.heredocs.map((h) => [h.name, h.expand]);
    assert.deepEqual(hd('cat <<   END > out', 'END'), [['END', true]]);
    assert.deepEqual(hd('cat <<E"N"D', 'END'), [['END', false]]);
    assert.deepEqual(hd("cat <<it\\'s", "it's"), [["it's", true]]);
    assert.deepEqual(hd("cat <<'two words'", 'two words'), [['two words', false]]);
    assert.deepEqual(hd('cat <<$TERM', '$TERM'), [['$TERM', true]]);
    assert.deepEqual(hd('cat <<<here', 'here'), []);
  });

  test('a heredoc without its delimiter fails naming the line', () => {
    fails('FROM x\n\nRUN <<EOF\necho\n', /^Dockerfile:3: unterminated heredoc/);
  });
});

describe('dump', () => {
  test('Go-quoted arguments, flags in brackets, nested ONBUILD', () => {
    assert.deepEqual(dumps('FROM x\nCOPY --from=a ["x\\ty", "/d"]\nONBUILD RUN echo "q"\n'), [
      'from "x"', 'copy ["--from=a"] "x\\ty" "/d"', 'onbuild (run "echo \\"q\\"")',
    ]);
  });
});
