// Nodes → typed instructions and stages (src/build/instructions.ts): each instruction's shape, flag
// checks, HEALTHCHECK durations, ONBUILD rules, stage grouping and errors naming file and line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Instruction, parseDefinition, parseDuration, parseInstructionText } from '../../src/build/instructions.ts';
import { BuildError } from '../../src/build/types.ts';

/** The instructions of a one-stage Dockerfile after its FROM, without locations. */
const steps = (body: string): Array<Record<string, unknown>> =>
  parseDefinition(`FROM base\n${body}\n`).stages[0]!.instructions.map(({ line: _l, endLine: _e, original: _o, ...rest }) => {
    // undefined optional fields are noise for deepEqual
    return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  });
const one = (body: string): any => steps(body)[0]!; // the tests index fields freely
const fails = (text: string, re: RegExp, file?: string) =>
  assert.throws(() => parseDefinition(text, file ? { file } : {}), (e: unknown) => e instanceof BuildError && e.code === 'invalid' && re.test(e.message), text);

describe('FROM and stages', () => {
  test('image, lowercased stage name, platform; values stay unexpanded', () => {
    const def = parseDefinition('ARG TAG=3.19\nARG REG\nFROM --platform=$BUILDPLATFORM $REG/alpine:${TAG} AS Builder\nRUN x\nFROM scratch\nCOPY --from=builder /o /o\n');
    assert.deepEqual(def.metaArgs.flatMap((a) => a.args), [{ name: 'TAG', value: '3.19' }, { name: 'REG' }]);
    assert.equal(def.stages.length, 2);
    const [a, b] = def.stages;
    assert.deepEqual([a!.index, a!.name, a!.from.image, a!.from.platform], [0, 'builder', '$REG/alpine:${TAG}', '$BUILDPLATFORM']);
    assert.deepEqual([b!.index, b!.name, b!.from.image], [1, undefined, 'scratch']);
    assert.deepEqual(a!.instructions.map((i) => i.kind), ['run']);
    assert.deepEqual([a!.from.line, b!.instructions[0]!.line], [3, 6]);
  });

  test('"as" in any case; bad stage names and shapes are rejected', () => {
    assert.equal(parseDefinition('FROM x as Web-1.2_b\n').stages[0]!.name, 'web-1.2_b');
    fails('FROM x AS 2fast\n', /^Dockerfile:1: invalid name for build stage: "2fast"/);
    fails('FROM x AS a$b\n', /invalid name for build stage/);
    fails('FROM\n', /^Dockerfile:1: FROM requires either one or three arguments/);
    fails('FROM x AS\n', /FROM requires either one or three arguments/);
    fails('FROM x TO y\n', /expected "AS"/);
    fails('FROM x AS dup\nFROM y AS DUP\n', /^Dockerfile:2: duplicate stage name "dup"/);
    fails('FROM --plat=x y\n', /^Dockerfile:1: unknown flag: --plat/);
  });

  test('only ARG may come before the first FROM', () => {
    fails('ARG A\nRUN echo\nFROM x\n', /^Dockerfile:2: no build stage in current context/);
    fails('# comment\nLABEL a=b\n', /^Dockerfile:2: no build stage in current context/);
  });
});

describe('RUN', () => {
  test('shell form and exec form', () => {
    assert.deepEqual(one('RUN make -j4 all'), { kind: 'run', cmd: ['make -j4 all'], prependShell: true, heredocs: [], mounts: [] });
    assert.deepEqual(one('RUN ["make", "all"]'), { kind: 'run', cmd: ['make', 'all'], prependShell: false, heredocs: [], mounts: [] });
  });

  test('a heredoc alone is a command', () => {
    const r = one('RUN <<EOF\necho hi\nEOF') as Extract<Instruction, { kind: 'run' }>;
    assert.deepEqual([r.cmd, r.heredocs.map((h) => h.content)], [['<<EOF'], ['echo hi\n']]);
  });

  test('--mount in its forms, --network and --security', () => {
    const r = one([
      'RUN --mount=type=cache,target=/var/cache/apt,sharing=locked,id=apt,mode=0755,uid=100,gid=101',
      '--mount=type=bind,source=go.sum,target=/src/go.sum,from=deps,rw',
      '--mount=type=tmpfs,dst=/scratch,size=64m',
      '--mount=type=secret,id=npmrc,required,env=NPMRC',
      '--mount=type=ssh,required=False',
      '--mount=target=/ctx,ro=true',
      '--network=host --security=insecure build',
    ].join(' ')) as Extract<Instruction, { kind: 'run' }>;
    assert.deepEqual(r.mounts, [
      { type: 'cache', target: '/var/cache/apt', sharing: 'locked', id: 'apt', mode: 0o755, uid: 100, gid: 101 },
      { type: 'bind', source: 'go.sum', target: '/src/go.sum', from: 'deps', readonly: false },
      { type: 'tmpfs', target: '/scratch', size: 64 * 1024 * 1024 },
      { type: 'secret', id: 'npmrc', required: true, env: 'NPMRC' },
      { type: 'ssh', required: false },
      { type: 'bind', target: '/ctx', readonly: true },
    ]);
    assert.deepEqual([r.network, r.security, r.cmd], ['host', 'insecure', ['build']]);
    assert.deepEqual(one('RUN --device=vendor.com/gpu=all --device=x nvidia-smi').devices, ['vendor.com/gpu=all', 'x']);
  });

  test('bad RUN flags are rejected', () => {
    fails('FROM x\nRUN --mount=type=volume,target=/a x\n', /^Dockerfile:2: unsupported mount type "volume"/);
    fails('FROM x\nRUN --mount=type=cache x\n', /target is required/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,colour=red x\n', /unexpected key 'colour'/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,sharing=sometimes x\n', /sharing/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,uid=root x\n', /invalid value root for uid/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,mode=0999 x\n', /invalid value 0999 for mode/);
    fails('FROM x\nRUN --mount=type=bind,target=/a,mode=0644 x\n', /mode not allowed for "bind" type mounts/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,size=1m x\n', /unexpected key 'size' for mount type 'cache'/);
    fails('FROM x\nRUN --mount=type=cache,target=/a,required x\n', /unexpected key 'required' for mount type 'cache'/);
    fails('FROM x\nRUN --mount=type=tmpfs,target=/a,sharing=shared x\n', /invalid cache sharing set for tmpfs mount/);
    fails('FROM x\nRUN --mount=type=secret,id=a,src=b x\n', /both source and id can't be set/);
    fails('FROM x\nRUN --mount=type=secret,from=st,target=/s x\n', /secret mount should not have a from/);
    fails('FROM x\nRUN --mount=type=secret x\n', /one of source, target required/);
    fails('FROM x\nRUN --mount=type=bind,target=/a,from=$STAGE x\n', /doesn't support variable expansion/);
    fails('FROM x\nRUN --mount=type=bind,target=/a,ro=maybe x\n', /invalid value for ro: maybe/);
    fails('FROM x\nRUN --mount=type=bind,target=/a,nosuid x\n', /invalid field 'nosuid' must be a key=value pair/);
    fails('FROM x\nRUN --network=bridge x\n', /unsupported network mode "bridge"/);
    fails('FROM x\nRUN --network=none --network=host x\n', /duplicate flag specified: --network/);
    fails('FROM x\nRUN --security=privileged x\n', /unsupported security mode/);
    fails('FROM x\nRUN --network x\n', /missing a value on flag: --network/);
    fails('FROM x\nRUN\n', /^Dockerfile:2: RUN requires at least one argument/);
  });
});

describe('metadata instructions', () => {
  test('CMD and ENTRYPOINT, shell or exec form, empty JSON allowed', () => {
    assert.deepEqual(one('CMD node server.js'), { kind: 'cmd', cmd: ['node server.js'], prependShell: true });
    assert.deepEqual(one('ENTRYPOINT ["tini", "--"]'), { kind: 'entrypoint', cmd: ['tini', '--'], prependShell: false });
    assert.deepEqual(one('ENTRYPOINT []'), { kind: 'entrypoint', cmd: [], prependShell: false });
  });

  test('ENV and LABEL pairs keep quotes and $ for the builder to expand', () => {
    assert.deepEqual(one('ENV PATH=/opt/bin:$PATH HOME="/home/a b"'), { kind: 'env', pairs: [['PATH', '/opt/bin:$PATH'], ['HOME', '"/home/a b"']] });
    assert.deepEqual(one('ENV LEGACY value with spaces'), { kind: 'env', pairs: [['LEGACY', 'value with spaces']] });
    assert.deepEqual(one('LABEL org.opencontainers.image.title="My app" version=1'), {
      kind: 'label', pairs: [['org.opencontainers.image.title', '"My app"'], ['version', '1']],
    });
  });

  test('ARG with and without defaults, several per line', () => {
    assert.deepEqual(one('ARG USER=app UID GREETING="a=b"'), { kind: 'arg', args: [{ name: 'USER', value: 'app' }, { name: 'UID' }, { name: 'GREETING', value: '"a=b"' }] });
    fails('FROM x\nARG\n', /ARG requires at least one argument/);
    fails('FROM x\nARG =1\n', /ARG names can not be blank/);
  });

  test('EXPOSE, VOLUME (both forms), WORKDIR, USER, STOPSIGNAL, MAINTAINER, SHELL', () => {
    assert.deepEqual(steps([
      'EXPOSE 8080 53/udp $PORT', 'VOLUME /data /logs', 'VOLUME ["/a b"]', 'WORKDIR $HOME/src', 'USER 1000:1000',
      'STOPSIGNAL SIGQUIT', 'MAINTAINER Ann <ann@example.org>', 'SHELL ["pwsh", "-Command"]',
    ].join('\n')), [
      { kind: 'expose', ports: ['8080', '53/udp', '$PORT'] },
      { kind: 'volume', paths: ['/data', '/logs'] },
      { kind: 'volume', paths: ['/a b'] },
      { kind: 'workdir', path: '$HOME/src' },
      { kind: 'user', user: '1000:1000' },
      { kind: 'stopsignal', signal: 'SIGQUIT' },
      { kind: 'maintainer', name: 'Ann <ann@example.org>' },
      { kind: 'shell', shell: ['pwsh', '-Command'] },
    ]);
    fails('FROM x\nEXPOSE\n', /EXPOSE requires at least one argument/);
    fails('FROM x\nVOLUME\n', /VOLUME requires at least one argument/);
    fails('FROM x\nVOLUME ["/a", " "]\n', /VOLUME specified can not be an empty string/);
    fails('FROM x\nWORKDIR\n', /WORKDIR requires exactly one argument/);
    fails('FROM x\nSTOPSIGNAL\n', /STOPSIGNAL requires exactly one argument/);
    fails('FROM x\nSHELL bash -c\n', /SHELL requires the arguments to be in JSON form/);
    fails('FROM x\nSHELL []\n', /SHELL requires at least one argument/);
  });
});

describe('COPY and ADD', () => {
  test('sources, destination and every flag', () => {
    assert.deepEqual(one('COPY --from=build --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=tmp/ a b* /dst/'), {
      kind: 'copy', sources: ['a', 'b*'], dest: '/dst/', heredocs: [], from: 'build', chown: 'app:app', chmod: '0644',
      link: true, parents: true, exclude: ['*.md', 'tmp/'],
    });
    assert.deepEqual(one('ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://e.org/a.tgz /x'), {
      kind: 'add', sources: ['https://e.org/a.tgz'], dest: '/x', heredocs: [], checksum: 'sha256:abc', keepGitDir: true,
    });
    assert.deepEqual(one('COPY ["with space", "/d/"]'), { kind: 'copy', sources: ['with space'], dest: '/d/', heredocs: [] });
    assert.deepEqual(one('COPY --chown="1:2" a b'), { kind: 'copy', sources: ['a'], dest: 'b', heredocs: [], chown: '1:2' });
  });

  test('COPY <<EOF /dst carries the body', () => {
    const c = one('COPY <<EOF /etc/motd\nhello\nEOF');
    assert.deepEqual([c.sources, c.dest, c.heredocs], [['<<EOF'], '/etc/motd', [{ name: 'EOF', content: 'hello\n', expand: true }]]);
  });

  test('flag and argument errors', () => {
    fails('FROM x\nCOPY onlyone\n', /^Dockerfile:2: COPY requires at least two arguments/);
    fails('FROM x\nADD --from=x a b\n', /unknown flag: --from/);
    fails('FROM x\nCOPY --checksum=sha256:0 a b\n', /unknown flag: --checksum/);
    fails('FROM x\nCOPY --link=maybe a b\n', /expecting boolean value for flag --link, not: maybe/);
    fails('FROM x\nCOPY --link= a b\n', /missing a value on flag: --link/);
    fails('FROM x\nCOPY --FROM=a b c\n', /unknown flag: --FROM/);
    assert.deepEqual([one('ADD --unpack=false https://e.org/a.tgz /x').unpack, one('ADD --unpack x.tgz /x').unpack, one('ADD x.tgz /x').unpack], [false, true, undefined]);
    fails('FROM x\nCOPY --from=a --from=b c d\n', /duplicate flag/);
    fails('FROM x\nCOPY a <<EOF\nbody\nEOF\n', /^Dockerfile:2: COPY cannot accept a heredoc as a destination/);
  });
});

describe('HEALTHCHECK', () => {
  test('NONE, shell CMD, exec CMD and the durations in nanoseconds', () => {
    assert.deepEqual(one('HEALTHCHECK NONE'), { kind: 'healthcheck', test: ['NONE'] });
    assert.deepEqual(one('HEALTHCHECK CMD curl -fs localhost || exit 1'), { kind: 'healthcheck', test: ['CMD-SHELL', 'curl -fs localhost || exit 1'] });
    assert.deepEqual(one('HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=4 CMD ["pg_isready"]'), {
      kind: 'healthcheck', test: ['CMD', 'pg_isready'], interval: 90e9, timeout: 500e6, startPeriod: 2e9, startInterval: 1.5e9, retries: 4,
    });
  });

  test('bad forms and values', () => {
    fails('FROM x\nHEALTHCHECK\n', /HEALTHCHECK requires at least one argument/);
    fails('FROM x\nHEALTHCHECK NONE extra\n', /HEALTHCHECK NONE takes no arguments/);
    fails('FROM x\nHEALTHCHECK --retries=1 NONE\n', /HEALTHCHECK NONE takes no options/);
    fails('FROM x\nHEALTHCHECK RUN true\n', /Unknown type "RUN" in HEALTHCHECK \(try CMD\)/);
    fails('FROM x\nHEALTHCHECK CMD\n', /Missing command after HEALTHCHECK CMD/);
    fails('FROM x\nHEALTHCHECK --interval=10 CMD true\n', /invalid duration "10"/);
    fails('FROM x\nHEALTHCHECK --timeout=10us CMD true\n', /Timeout "10us" cannot be less than 1ms/);
    fails('FROM x\nHEALTHCHECK --retries=-2 CMD true\n', /--retries cannot be negative/);
    fails('FROM x\nHEALTHCHECK --retries=two CMD true\n', /retries/);
    fails('FROM x\nHEALTHCHECK --every=1s CMD true\n', /unknown flag: --every/);
  });

  test('Go duration syntax', () => {
    const ok: Array<[string, number]> = [['0', 0], ['300ms', 300e6], ['2h45m', 9900e9], ['1.5h', 5400e9], ['10us', 10e3], ['10µs', 10e3], ['7ns', 7], ['.5s', 500e6]];
    for (const [t, ns] of ok) assert.equal(parseDuration(t), ns, t);
    for (const t of ['', '5', 's', '1d', '1m 2s', '-']) assert.equal(parseDuration(t), undefined, t);
  });
});

describe('ONBUILD and single instructions', () => {
  test('the trigger is kept as text and checked', () => {
    assert.deepEqual(one('ONBUILD COPY . /app/src'), { kind: 'onbuild', expression: 'COPY . /app/src' });
    fails('FROM x\nONBUILD onbuild RUN x\n', /Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/);
    fails('FROM x\nONBUILD from y\n', /FROM isn't allowed as an ONBUILD trigger/);
    fails('FROM x\nONBUILD MAINTAINER me\n', /MAINTAINER isn't allowed as an ONBUILD trigger/);
    fails('FROM x\nONBUILD BOGUS y\n', /unknown instruction: BOGUS/);
  });

  test('parseInstructionText parses a stored trigger with its own line numbers', () => {
    const i = parseInstructionText('RUN echo "$HOME"');
    assert.deepEqual([i.kind, (i as Extract<Instruction, { kind: 'run' }>).cmd, i.line, i.original], ['run', ['echo "$HOME"'], 1, 'RUN echo "$HOME"']);
    assert.throws(() => parseInstructionText('NOPE x', 'onbuild'), (e: unknown) => e instanceof BuildError && /^onbuild:1: unknown instruction: NOPE$/.test(e.message));
  });

  test('unknown instructions name the file and the line', () => {
    fails('FROM x\n\nRUNN make\n', /^ci\/Dockerfile:3: unknown instruction: RUNN$/, 'ci/Dockerfile');
  });

  test('locations span continuation lines', () => {
    const i = parseDefinition('FROM x\nRUN a \\\n  b \\\n  c\n').stages[0]!.instructions[0]!;
    assert.deepEqual([i.line, i.endLine, i.original], [2, 4, 'RUN a   b   c']);
  });
});

describe('warnings', () => {
  test('empty continuation lines are reported with their instruction line', () => {
    const def = parseDefinition('FROM x\nRUN a \\\n\n  b\n');
    assert.deepEqual(def.warnings.map((w) => w.line), [2]);
    assert.equal(def.escapeToken, '\\');
  });
});
