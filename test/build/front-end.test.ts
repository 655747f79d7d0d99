// The Dockerfile front end: parser (directives, continuations, comments, heredocs, JSON and shell
// forms, flags), instruction checks with the line named, and docker's word expansion.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDefinition, parseDuration, parseInstructionText } from '../../src/build/instructions.ts';
import { dumpNode, parseDockerfile } from '../../src/build/parser.ts';
import { expandWord, expandWords, variablesUsed } from '../../src/build/shell-lex.ts';
import { BuildError } from '../../src/build/types.ts';

const dump = (text: string): string[] => parseDockerfile(text).nodes.map((n) => dumpNode(n));

describe('parser', () => {
  test('continuations, comments and empty lines inside them, keyword case, line numbers', () => {
    const p = parseDockerfile('# a comment\n\nfrom busybox\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD ["x"]\n');
    assert.deepEqual(p.nodes.map((n) => dumpNode(n)), ['from "busybox"', 'run "echo a   && echo b"', 'cmd "x"']);
    assert.deepEqual(p.nodes.map((n) => [n.startLine, n.endLine]), [[3, 3], [4, 7], [8, 8]]);
    assert.equal(p.warnings.length, 1);
    assert.match(p.warnings[0]!.message, /Empty continuation line/);
  });

  test('directives: escape=` (Windows paths), syntax accepted, only at the top, each once', () => {
    const p = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n');
    assert.equal(p.escapeToken, '`');
    assert.equal(p.syntax, 'docker/dockerfile:1');
    assert.deepEqual(dump('# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n'), ['from "x"', 'run "dir c:\\\\   && echo"']);
    // After an instruction, "# escape=" is a comment.
    assert.equal(parseDockerfile('FROM x\n# escape=`\nRUN a `\n').nodes.length, 2);
    assert.throws(() => parseDockerfile('# escape=\\\n# escape=`\nFROM x\n'), /only one escape parser directive/);
    assert.throws(() => parseDockerfile('# escape=x\nFROM x\n'), /invalid escape token/);
  });

  test('an escaped escape at the end of a line does not continue it; an escape at EOF ends the file', () => {
    assert.deepEqual(dump('FROM x\nENV A b\\\\\nENV C d\n'), ['from "x"', 'env "A" "b\\\\\\\\" ""', 'env "C" "d" ""']);
    assert.deepEqual(dump('FROM x\nRUN a \\'), ['from "x"', 'run "a"']);
  });

  test('JSON and shell forms; invalid JSON falls back to the shell form', () => {
    const nodes = parseDockerfile('FROM x\nCMD ["a", "b c"]\nCMD [a, b]\nENTRYPOINT echo hi\nRUN ["sh", "-c", "x"]\n').nodes;
    assert.deepEqual(nodes.slice(1).map((n) => [n.json, n.args]), [[true, ['a', 'b c']], [false, ['[a, b]']], [false, ['echo hi']], [true, ['sh', '-c', 'x']]]);
  });

  test('flags before the arguments, with quotes and the -- end marker', () => {
    const n = parseDockerfile('FROM x\nCOPY --from=build --chown="1:1" -- a b /dst/\n').nodes[1]!;
    assert.deepEqual(n.flags, ['--from=build', '--chown="1:1"']);
    assert.deepEqual(n.args, ['a', 'b', '/dst/']);
  });

  test('heredocs: RUN and COPY, several, <<- strips tabs, quoted delimiters do not expand', () => {
    const p = parseDockerfile('FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-"A" <<B /dst/\n\tkeep $X\n\tA\nb body\nB\nCMD x\n');
    const run = p.nodes[1]!;
    assert.deepEqual(run.heredocs, [{ name: 'EOF', content: 'echo one\necho two\n', expand: true }]);
    assert.deepEqual([run.startLine, run.endLine], [2, 5]);
    const copy = p.nodes[2]!;
    assert.deepEqual(copy.heredocs, [{ name: 'A', content: 'keep $X\n', expand: false }, { name: 'B', content: 'b body\n', expand: true }]);
    assert.equal(p.nodes[3]!.instruction, 'cmd');
    assert.throws(() => parseDockerfile('FROM x\nRUN <<EOF\nno end\n'), /Dockerfile:2: unterminated heredoc EOF/);
  });

  test('ENV and LABEL: pairs keep their quotes for the expander; the legacy form takes the rest of the line', () => {
    assert.deepEqual(parseDockerfile('FROM x\nENV A="b c" D=e\\ f\n').nodes[1]!.args, ['A', '"b c"', 'D', 'e\\ f']);
    assert.deepEqual(parseDockerfile('FROM x\nENV NAME some value\n').nodes[1]!.args, ['NAME', 'some value']);
    assert.throws(() => parseDockerfile('FROM x\nLABEL a=b c\n'), /Dockerfile:2: Syntax error - can't find = in "c"/);
  });

  test('an empty file or only comments is an error', () => {
    assert.throws(() => parseDockerfile(''), /file with no instructions/);
    assert.throws(() => parseDockerfile('# just\n# comments\n'), /file with no instructions/);
  });
});

describe('instructions', () => {
  test('stages, global ARGs, FROM … AS, and every instruction typed', () => {
    const def = parseDefinition([
      'ARG V=1', 'FROM --platform=$BUILDPLATFORM busybox:$V AS Build', 'RUN --mount=type=cache,target=/c --network=none make',
      'COPY --chmod=755 --chown=a:b src/ /dst/', 'ADD --checksum=sha256:00 http://x/y /y', 'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
      'ONBUILD RUN echo', 'SHELL ["/bin/bash", "-c"]', 'EXPOSE 80/tcp 53/udp', 'VOLUME /a /b', 'STOPSIGNAL SIGTERM', 'USER 1:2', 'WORKDIR /w',
      'FROM build', 'COPY --from=build /x /y', '',
    ].join('\n'));
    assert.deepEqual(def.metaArgs.map((a) => a.args), [[{ name: 'V', value: '1' }]]);
    assert.equal(def.stages.length, 2);
    const [s0, s1] = def.stages as [typeof def.stages[0], typeof def.stages[0]];
    assert.deepEqual([s0.name, s0.from.image, s0.from.platform], ['build', 'busybox:$V', '$BUILDPLATFORM']);
    const kinds = s0.instructions.map((i) => i.kind);
    assert.deepEqual(kinds, ['run', 'copy', 'add', 'healthcheck', 'onbuild', 'shell', 'expose', 'volume', 'stopsignal', 'user', 'workdir']);
    const run = s0.instructions[0] as Extract<typeof s0.instructions[0], { kind: 'run' }>;
    assert.deepEqual(run.mounts, [{ type: 'cache', target: '/c' }]);
    assert.equal(run.network, 'none');
    const hc = s0.instructions[3] as Extract<typeof s0.instructions[0], { kind: 'healthcheck' }>;
    assert.deepEqual([hc.test, hc.interval, hc.retries], [['CMD', 'true'], 5e9, 2]);
    assert.equal((s1.instructions[0] as { from?: string }).from, 'build');
  });

  test('errors name the file and the line', () => {
    const cases: Array<[string, RegExp]> = [
      ['FROM x\nFOO bar\n', /^Dockerfile:2: unknown instruction: FOO$/],
      ['RUN x\n', /^Dockerfile:1: no build stage in current context/],
      ['FROM x\nCOPY --nope=1 a b\n', /^Dockerfile:2: unknown flag: --nope/],
      ['FROM x\nCOPY a\n', /^Dockerfile:2: COPY requires at least two arguments/],
      ['FROM x y\n', /^Dockerfile:1: FROM requires either one or three arguments/],
      ['FROM x AS 1bad\n', /invalid name for build stage/],
      ['FROM x\nONBUILD ONBUILD RUN x\n', /Chaining ONBUILD/],
      ['FROM x\nONBUILD FROM y\n', /FROM isn't allowed as an ONBUILD trigger/],
      ['FROM x\nHEALTHCHECK --interval=xx CMD true\n', /Dockerfile:2: time: invalid duration "xx"/],
      ['FROM x\nSHELL /bin/sh\n', /SHELL requires the arguments to be in JSON form/],
      ['FROM x AS a\nFROM y AS a\n', /duplicate stage name "a"/],
    ];
    for (const [text, want] of cases) {
      assert.throws(() => parseDefinition(text), (e: unknown) => e instanceof BuildError && want.test(e.message), text);
    }
  });

  test('one-line instructions (ONBUILD triggers) and Go durations', () => {
    assert.equal(parseInstructionText('RUN echo hi').kind, 'run');
    assert.equal(parseDuration('1m30s'), 90e9);
    assert.equal(parseDuration('250ms'), 250e6);
    assert.equal(parseDuration('5'), undefined);
  });
});

describe('word expansion', () => {
  const env = ['A=1', 'B=two words', 'E=', 'P=archive.tar.gz', 'A=override'];
  test('docker\'s forms, quotes and escapes; the last definition of a name wins', () => {
    const table: Array<[string, string]> = [
      ['$A', 'override'], ['${A}x', 'overridex'], ['"$B"', 'two words'], ["'$A'", '$A'], ['\\$A', '$A'],
      ['${U:-d}', 'd'], ['${E:-d}', 'd'], ['${E-d}', ''], ['${A:+s}', 's'], ['${E:+s}', ''], ['${E+s}', 's'],
      ['${P%.*}', 'archive.tar'], ['${P%%.*}', 'archive'], ['${P#*.}', 'tar.gz'], ['${P##*.}', 'gz'],
      ['${P/a/A}', 'Archive.tar.gz'], ['${P//a/A}', 'Archive.tAr.gz'], ['$1x', 'x'], ['a$', 'a$'], ['"a\\"b"', 'a"b'],
      ['${U:-${A}-z}', 'override-z'],
    ];
    for (const [word, want] of table) assert.equal(expandWord(word, env), want, word);
    assert.throws(() => expandWord('${U:?must be set}', env), /U: must be set/);
    assert.throws(() => expandWord('"unterminated', env), /double-quote/);
    assert.throws(() => expandWord('${A', env), /missing '}'/);
  });

  test('word splitting splits unquoted values too; the escape token is configurable', () => {
    assert.deepEqual(expandWords('a $B "c d" \'\'', env), ['a', 'two', 'words', 'c d', '']);
    assert.equal(expandWord('c:\\dir `$A', env, '`'), 'c:\\dir $A');
    assert.deepEqual(variablesUsed('$A ${B:-$C}'), ['A', 'B', 'C']);
  });
});
