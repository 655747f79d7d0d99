// The build page's pure logic: the classic builder's stream turned into steps (with cache hits),
// and the context archive / query it sends. The fixtures are POST /build answers captured from a
// Berth daemon (FROM busybox:dev, RUN, COPY of a file, CMD; built fresh, again from cache, and a
// failing RUN).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BuildLog, MAX_LINES_PER_STEP } from '../../src/webui/lib/build-log.ts';
import { archiveKind, BuildInputError, buildQuery, contextFromDockerfile, parseBuildArgs, parseTags, splitReference } from '../../src/webui/lib/build-context.ts';
import { encodeQuery } from '../../src/webui/lib/api.ts';
import { JsonStreamDecoder, type JsonMessage } from '../../src/webui/lib/streams.ts';
import { TarReader } from '../../src/webui/lib/tar.ts';

const fixture = (name: string): Uint8Array => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

/** Feeds the captured bytes in chunks of `size` (cutting messages and lines anywhere). */
function replay(bytes: Uint8Array, size: number): BuildLog {
  const log = new BuildLog();
  const dec = new JsonStreamDecoder<JsonMessage>();
  for (let i = 0; i < bytes.length; i += size) for (const m of dec.push(bytes.subarray(i, i + size))) log.apply(m);
  for (const m of dec.end()) log.apply(m);
  log.end();
  return log;
}

test('a build from cache: every step after FROM is marked cached, with its image id; result and tag', () => {
  for (const size of [1, 7, 4096]) {
    const log = replay(fixture('build-cached.jsonl'), size);
    assert.equal(log.steps.length, 4);
    assert.deepEqual(log.steps.map((s) => [s.index, s.total, s.cached]), [[1, 4, false], [2, 4, true], [3, 4, true], [4, 4, true]]);
    assert.deepEqual(log.steps.map((s) => s.instruction), ['FROM busybox:dev', 'RUN echo building > /built', 'COPY hello.txt /hello.txt', 'CMD ["cat","/hello.txt"]']);
    assert.deepEqual(log.steps.map((s) => s.imageId), ['1cef84293552', 'b3091c7401c2', '305fcd7f22a4', 'df10f0ea2de5']);
    assert.equal(log.imageId, 'sha256:df10f0ea2de5ed5a973b50c99b2b33631b190a437f9ba49ab1e88cdc2f36e08a');
    assert.deepEqual(log.tags, ['t2:dev']);
    assert.deepEqual(log.trailer, ['Successfully built df10f0ea2de5', 'Successfully tagged t2:dev']);
    assert.equal(log.error, undefined);
    assert.equal(log.total, 4);
    assert.equal(log.done, 4);
    assert.equal(log.cachedCount, 3);
    assert.deepEqual(log.steps[1].lines, [' ---> Using cache', ' ---> b3091c7401c2']);
  }
});

test('a fresh build: no step cached; the RUN step keeps its container lines; text() is what docker build prints', () => {
  const log = replay(fixture('build-fresh.jsonl'), 13);
  assert.deepEqual(log.steps.map((s) => s.cached), [false, false, false, false]);
  assert.deepEqual(log.steps[1].lines, [' ---> Running in 54841480318d', 'Removing intermediate container 54841480318d', ' ---> f8fb49a23fdb']);
  assert.equal(log.imageId, 'sha256:bddabb6807e19af8a4752b06a102333ae2b080951bce6f4600855cbfbb983b33');
  const expected = new TextDecoder().decode(fixture('build-fresh.jsonl')).split('\n').filter(Boolean)
    .map((l) => (JSON.parse(l) as JsonMessage).stream).filter((s) => s !== undefined).join('');
  assert.equal(log.text(), expected);
});

test('a failing RUN: its output stays on its step, the error is the daemon\'s message, no image', () => {
  const log = replay(fixture('build-fail.jsonl'), 5);
  assert.equal(log.steps.length, 2);
  assert.deepEqual(log.steps[1].lines, [' ---> Running in d848e7832903', 'out', 'err']);
  assert.equal(log.error, "Dockerfile:2: The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3");
  assert.equal(log.imageId, undefined);
  assert.equal(log.done, 1);
  assert.equal(log.steps[1].imageId, undefined);
});

test('output without a trailing newline is pending until the next chunk or the end', () => {
  const log = new BuildLog();
  log.apply({ stream: 'Step 1/2 : RUN x\n' });
  log.apply({ stream: 'progress 10%' });
  assert.equal(log.pending, 'progress 10%');
  assert.deepEqual(log.steps[0].lines, []);
  log.apply({ stream: ' 50%\r\nnext' });
  assert.deepEqual(log.steps[0].lines, ['progress 10% 50%']);
  log.end();
  assert.deepEqual(log.steps[0].lines, ['progress 10% 50%', 'next']);
  assert.equal(log.pending, '');
});

test('an error before any step (a bad Dockerfile) is kept; a program printing "---> abc" is not a result', () => {
  const bad = new BuildLog();
  bad.apply({ errorDetail: { message: 'Dockerfile:1: unknown instruction: FROOM' }, error: 'Dockerfile:1: unknown instruction: FROOM' });
  assert.equal(bad.error, 'Dockerfile:1: unknown instruction: FROOM');
  assert.equal(bad.steps.length, 0);
  const log = new BuildLog();
  log.apply({ stream: 'Step 1/1 : RUN echo " ---> Using cache"\n' });
  log.apply({ stream: ' ---> Running in abc\nsomething ---> Using cache\n' });
  assert.equal(log.steps[0].cached, false);
});

test('pull progress of the FROM image updates one line per layer; a chatty step keeps its last lines', () => {
  const log = new BuildLog();
  log.apply({ stream: 'Step 1/2 : FROM reg/app\n' });
  log.apply({ status: 'Pulling from reg/app', id: 'latest' });
  log.apply({ status: 'Downloading', id: 'aaa', progress: '[=>  ] 1kB/4kB' });
  log.apply({ status: 'Downloading', id: 'aaa', progress: '[===>] 4kB/4kB' });
  log.apply({ status: 'Pull complete', id: 'aaa' });
  assert.deepEqual(log.steps[0].lines, ['latest: Pulling from reg/app', 'aaa: Pull complete']);
  log.apply({ stream: 'Step 2/2 : RUN yes\n' });
  for (let i = 0; i < MAX_LINES_PER_STEP + 10; i++) log.apply({ stream: `y${i}\n` });
  assert.equal(log.steps[1].lines.length, MAX_LINES_PER_STEP);
  assert.equal(log.steps[1].lines.at(-1), `y${MAX_LINES_PER_STEP + 9}`);
});

test('contextFromDockerfile: a tar with Dockerfile and the added files at the root', async () => {
  const tar = contextFromDockerfile('FROM busybox:dev\nCOPY a.txt /\n', [{ name: 'a.txt', data: new TextEncoder().encode('A') }, { name: 'dir/b.bin', data: new Uint8Array([0, 1, 2]) }], 1700000000);
  assert.equal(archiveKind(tar), 'tar');
  const names: Array<[string, number]> = [];
  const r = new TarReader({ onEntry: (e) => { names.push([e.name, e.size]); } });
  r.push(tar);
  assert.deepEqual(names, [['Dockerfile', 30], ['a.txt', 1], ['b.bin', 3]]);
  assert.throws(() => contextFromDockerfile('  \n'), /the Dockerfile is empty/);
  assert.throws(() => contextFromDockerfile('FROM x', [{ name: 'Dockerfile', data: new Uint8Array() }]), BuildInputError);
  assert.throws(() => contextFromDockerfile('FROM x', [{ name: 'a', data: new Uint8Array() }, { name: 'a', data: new Uint8Array() }]), /two added files are named a/);
});

test('archiveKind recognises the compressions the daemon accepts', () => {
  assert.equal(archiveKind(new Uint8Array([0x1f, 0x8b, 8])), 'gzip');
  assert.equal(archiveKind(new TextEncoder().encode('BZh9')), 'bzip2');
  assert.equal(archiveKind(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), 'xz');
  assert.equal(archiveKind(new TextEncoder().encode('FROM busybox')), 'unknown');
});

test('buildQuery: docker build\'s query; build args as JSON; tags checked as docker does', () => {
  const { query, tags } = buildQuery({ tag: 'app:1, registry:5000/app:2', nocache: true, buildArgs: 'A=1\n# c\n\nB=x=y\n', target: ' stage ' });
  assert.deepEqual(tags, ['app:1', 'registry:5000/app:2']);
  assert.equal(encodeQuery(query), `?t=app%3A1&dockerfile=Dockerfile&rm=1&q=0&nocache=1&buildargs=${encodeURIComponent('{"A":"1","B":"x=y"}')}&target=stage`);
  assert.equal(encodeQuery(buildQuery({}).query), '?dockerfile=Dockerfile&rm=1&q=0');
  assert.equal(encodeQuery(buildQuery({ forcerm: true, pull: true }).query), '?dockerfile=Dockerfile&rm=1&q=0&pull=1&forcerm=1');
  assert.throws(() => parseTags('App:1'), /invalid reference format/);
  assert.throws(() => parseBuildArgs('NOVALUE'), /expected KEY=value/);
  assert.deepEqual(splitReference('registry:5000/app:2'), { repo: 'registry:5000/app', tag: '2' });
  assert.deepEqual(splitReference('registry:5000/app'), { repo: 'registry:5000/app', tag: 'latest' });
});
