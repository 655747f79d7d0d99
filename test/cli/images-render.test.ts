// `berth`'s image commands against the docker CLI 28 for the same daemon answers: both CLIs talk
// to a scripted Engine API (images-fake-engine.ts) and must print the same stdout and stderr,
// exit with the same status, and send the same requests (method, path, query, X-Registry-Auth,
// body). The daemon side is tested against `berth daemon` in images-e2e.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { DOCKER_BIN, REPO_ROOT, run } from '../helpers/daemon.ts';
import { asBerth, FakeEngine, requestKey } from './images-fake-engine.ts';
import { renderHistory, renderImages, ellipsis, rewriteHistoryHuman, parseBoolFlag } from '../../src/cli/commands/images.ts';
import { jsonIndent, goTimeString } from '../../src/cli/commands/common.ts';
import { systemPruneMessage } from '../../src/cli/commands/prune.ts';

const H = (c: string): string => `sha256:${c.repeat(64)}`;
const NOW = Math.floor(Date.now() / 1000);

const IMAGES = [
  { Id: H('a'), ParentId: '', RepoTags: ['busybox:latest', 'busybox:1.36'], RepoDigests: [`busybox@${H('b')}`], Created: NOW - 3 * 86400, Size: 4_261_550, SharedSize: -1, Labels: null, Containers: -1 },
  { Id: H('c'), ParentId: '', RepoTags: ['127.0.0.1:5000/team/app:v1'], RepoDigests: [`127.0.0.1:5000/team/app@${H('d')}`, `127.0.0.1:5000/team/app@${H('e')}`], Created: NOW - 7200, Size: 12_345_678, SharedSize: -1, Labels: { a: 'b' }, Containers: -1 },
  { Id: H('f'), ParentId: '', RepoTags: [], RepoDigests: [`alpine@${H('1')}`], Created: NOW - 90, Size: 7_800_000, SharedSize: -1, Labels: null, Containers: -1 },
  { Id: H('2'), ParentId: '', RepoTags: [], RepoDigests: [], Created: NOW - 40 * 86400, Size: 999, SharedSize: -1, Labels: null, Containers: -1 },
  { Id: H('3'), ParentId: '', RepoTags: ['<none>:<none>'], RepoDigests: ['<none>@<none>'], Created: NOW - 400 * 86400, Size: 0, SharedSize: -1, Labels: null, Containers: 2 },
];

const HISTORY = [
  { Id: H('a'), Created: NOW - 3 * 86400, CreatedBy: '/bin/sh -c #(nop)  CMD ["sh"]', Tags: ['busybox:latest'], Size: 0, Comment: '' },
  { Id: '<missing>', Created: NOW - 4 * 86400, CreatedBy: '/bin/sh -c #(nop) ADD file:6f1e5c1fbbd1d4a3b2f0c55e1d2a8b8f9e in /\twith a tab', Tags: null, Size: 4_261_550, Comment: 'buildkit.dockerfile.v0' },
  { Id: '<missing>', Created: 0, CreatedBy: '', Tags: null, Size: 123, Comment: 'imported from -' },
];

const INSPECT = {
  Id: H('a'), RepoTags: ['busybox:latest'], RepoDigests: [`busybox@${H('b')}`], Parent: '', Comment: '', Created: '2024-09-26T21:31:42.123456789Z',
  Config: { Env: ['PATH=/usr/bin'], Cmd: ['sh'], Labels: null, Entrypoint: null, Volumes: {} }, Architecture: 'amd64', Os: 'linux', Size: 4261550,
  GraphDriver: { Data: null, Name: 'overlay2' }, RootFS: { Type: 'layers', Layers: [H('9')] }, Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  Note: 'a <tag> & "quotes" \\ é', Big: 12345678901234567890,
};

let fake: FakeEngine;
const haveDocker = existsSync(DOCKER_BIN);

before(async () => { fake = await FakeEngine.start(); });
after(async () => { await fake?.close(); });
beforeEach(() => fake.reset());

const explain = (label: string, r: { code: number | null; stdout: string; stderr: string }): string => `${label}: exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** Both CLIs: same exit status, stdout, stderr (docker → berth in messages), same requests. */
async function same(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; stderr?: 'exact' | 'ignore'; requests?: boolean; berthArgs?: string[] } = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const r = await fake.both(args, opts);
  const ctx = `${explain('docker', r.docker)}\n${explain('berth', r.berth)}`;
  assert.equal(r.berth.code, r.docker.code, `exit status of ${args.join(' ')}\n${ctx}`);
  assert.equal(r.berth.stdout, asBerth(r.docker.stdout), `stdout of ${args.join(' ')}\n${ctx}`);
  if (opts.stderr !== 'ignore') assert.equal(r.berth.stderr, asBerth(r.docker.stderr), `stderr of ${args.join(' ')}\n${ctx}`);
  if (opts.requests !== false) assert.deepEqual(r.berthRequests.map(requestKey), r.dockerRequests.map(requestKey), `requests of ${args.join(' ')}`);
  return r.berth;
}

describe('rendering helpers', () => {
  test('Go json.Indent over raw daemon JSON', () => {
    assert.equal(jsonIndent('[{"a":[],"b":{},"c":[1,2],"d":"x\\"}{,"}]'), '[\n    {\n        "a": [],\n        "b": {},\n        "c": [\n            1,\n            2\n        ],\n        "d": "x\\"}{,"\n    }\n]');
    assert.equal(jsonIndent('[]'), '[]');
  });
  test('ellipsis, Go time strings, the system prune prompt', () => {
    assert.equal(ellipsis('abcdef', 4), 'abc…');
    assert.equal(ellipsis('abc', 4), 'abc');
    if ((process.env.TZ ?? 'UTC') === 'UTC' && new Date().getTimezoneOffset() === 0) assert.equal(goTimeString(1700000000), '2023-11-14 22:13:20 +0000 UTC');
    assert.match(systemPruneMessage({ filter: ['label=a=b', 'until=1h'] }), /\n {2}Items to be pruned will be filtered with:\n {2}- label=a=b\n {2}- until=1h\n\nAre you sure you want to continue\?$/);
  });
  test('history\'s -H is --human, the program\'s -H (host) elsewhere', () => {
    assert.deepEqual(rewriteHistoryHuman(['-H', 'unix:///s', 'history', '-H', 'x']), ['-H', 'unix:///s', 'history', '--human', 'x']);
    assert.deepEqual(rewriteHistoryHuman(['--host=unix:///s', '-D', 'image', 'history', '-H=false', 'x']), ['--host=unix:///s', '-D', 'image', 'history', '--human=false', 'x']);
    assert.deepEqual(rewriteHistoryHuman(['-H', 'unix:///s', 'images', '-H']), ['-H', 'unix:///s', 'images', '-H']);
    assert.deepEqual(rewriteHistoryHuman(['history', '--', '-H']), ['history', '--', '-H']);
    assert.equal(parseBoolFlag('F', '-H'), false);
    assert.equal(parseBoolFlag(true, '-H'), true);
    assert.throws(() => parseBoolFlag('maybe', '-H, --human'), /invalid argument "maybe" for "-H, --human" flag: strconv\.ParseBool/);
  });

  test('rows without a daemon: dangling, digests only, several tags', () => {
    const out = renderImages(IMAGES, { now: Date.now() });
    assert.match(out, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n/);
    assert.match(out, /^busybox +1\.36 +aaaaaaaaaaaa +3 days ago +4\.26MB$/m);
    assert.match(out, /^alpine +<none> +ffffffffffff /m);
    assert.equal(renderImages(IMAGES, { quiet: true }).split('\n').filter(Boolean).length, 6, 'one ID per row, as docker (repeats included)');
    assert.match(renderHistory(HISTORY, { human: false }), /^<missing> +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) +\/bin\/sh -c #\(nop\) ADD file:6f1e5c1fbbd1d4a3b… +4261550 +buildkit/m);
  });
});

describe('same output as the docker CLI', { skip: !haveDocker && `no docker CLI at ${DOCKER_BIN}` }, () => {
  test('images: table, -q, --digests, --no-trunc, formats, filters and the reference argument', async () => {
    fake.on('GET', '/images/json', () => ({ json: IMAGES }));
    for (const args of [
      ['images'], ['image', 'ls'], ['image', 'list', '-q'], ['images', '--digests'], ['images', '--no-trunc'], ['images', '-a', '--digests', '-q'],
      ['images', '--format', 'json'], ['images', '--format', 'raw'], ['images', '--format', 'raw', '--digests'], ['images', '--format', 'table'],
      ['images', '--format', 'table {{.Repository}}:{{.Tag}}\\t{{.ID}}', '--digests'],
      ['images', '--format', '{{.ID}} {{.CreatedAt}} {{.Containers}} {{.SharedSize}} {{.UniqueSize}} {{.VirtualSize}} {{.Digest}}'],
      ['images', '--format', '{{json .}}', '--no-trunc'],
      ['images', '-f', 'dangling=true', '--filter', 'label=a=b', '--filter', 'before=busybox', 'busybox'],
      ['images', '--filter', 'reference=busy*', '--filter', 'since=alpine', '-a'],
    ]) await same(args);
    // config.json's imagesFormat is the default format (not with -q or --format).
    const cfgFile = join(fake.dir, 'docker-config', 'config.json');
    writeFileSync(cfgFile, JSON.stringify({ imagesFormat: 'table {{.ID}}\t{{.Repository}}' }));
    try {
      for (const args of [['images'], ['images', '-q'], ['images', '--format', '{{.Tag}}']]) await same(args);
    } finally {
      writeFileSync(cfgFile, '{}');
    }
  });

  test('images: no images, a bad template, too many arguments, unknown flag status', async () => {
    fake.on('GET', '/images/json', () => ({ json: [] }));
    await same(['images']);
    await same(['images', '-q']);
    fake.on('GET', '/images/json', () => ({ json: null }));
    await same(['images']);
    const r = await same(['images', 'a', 'b'], { requests: false, stderr: 'ignore' });
    assert.match(r.stderr, /^berth: 'berth images' requires at most 1 argument\n\nUsage: {2}berth images \[OPTIONS\] \[REPOSITORY\[:TAG\]\]\n/);
    await same(['images', '--filter', 'nofmt'], { requests: false });
    await same(['image', 'prune', '--filter', 'x'], { requests: false });
    await same(['system', 'prune', '-f', '--filter', 'x'], { requests: false });
    fake.on('GET', '/images/json', () => ({ status: 500, json: { message: 'the store is on fire' } }));
    await same(['images']);
  });

  test('pull: progress lines, "Using default tag", -q, -a, --platform, digests, credentials from config.json, errors', async () => {
    const progress = [
      { status: 'Pulling from library/busybox', id: 'latest' },
      { status: 'Pulling fs layer', progressDetail: {}, id: '7b2699543f22' },
      { status: 'Downloading', progressDetail: { current: 1000, total: 2_000_000 }, progress: '[>    ]  1kB/2MB', id: '7b2699543f22' },
      { status: 'Verifying Checksum', progressDetail: {}, id: '7b2699543f22' },
      { status: 'Download complete', progressDetail: {}, id: '7b2699543f22' },
      { status: 'Extracting', progressDetail: { current: 32768, total: 2_000_000 }, progress: '[>   ]  32.77kB/2MB', id: '7b2699543f22' },
      { status: 'Pull complete', progressDetail: {}, id: '7b2699543f22' },
      { status: `Digest: ${H('b')}` },
      { status: 'Status: Downloaded newer image for busybox:latest' },
    ];
    fake.on('POST', '/images/create', () => ({ lines: progress }));
    for (const args of [
      ['pull', 'busybox'], ['pull', '-q', 'busybox'], ['image', 'pull', 'busybox:1.36'], ['pull', '--platform', 'Linux/ARM64/v8', '127.0.0.1:5000/team/app:v1'],
      ['pull', '-a', 'busybox'], ['pull', '--all-tags', '-q', 'localhost:5000/x'], [`pull`, `busybox@${H('b')}`], ['pull', `busybox:1@${H('b')}`],
    ]) await same(args);
    await same(['pull', '-a', 'busybox:1'], { requests: false });
    await same(['pull', 'Busybox'], { requests: false, stderr: 'ignore' }).then((r) => assert.equal(r.code, 1));
    await same(['pull'], { requests: false, stderr: 'ignore' });

    // Stored credentials go in X-Registry-Auth (compared decoded, field by field).
    const cfg = join(fake.dir, 'docker-config');
    writeFileSync(join(cfg, 'config.json'), JSON.stringify({ auths: { '127.0.0.1:5000': { auth: Buffer.from('me:s3cret').toString('base64') }, 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') } } }));
    try {
      await same(['pull', '127.0.0.1:5000/team/app:v1']);
      await same(['pull', '-q', 'busybox']);
      await same(['pull', '-q', '127.0.0.2:5000/other']);
    } finally {
      writeFileSync(join(cfg, 'config.json'), '{}');
    }

    fake.on('POST', '/images/create', () => ({ lines: [{ status: 'Pulling from library/busybox', id: 'latest' }, { errorDetail: { message: 'manifest unknown: manifest unknown' }, error: 'manifest unknown: manifest unknown' }] }));
    await same(['pull', 'busybox']);
    await same(['pull', '-q', 'busybox']);
    fake.on('POST', '/images/create', () => ({ status: 404, json: { message: 'pull access denied for nope, repository does not exist or may require \'docker login\'' } }));
    await same(['pull', 'nope']);
  });

  test('push: progress, -q, -a, digest refused, daemon errors', async () => {
    const progress = [
      { status: 'The push refers to repository [127.0.0.1:5000/team/app]' },
      { status: 'Preparing', progressDetail: {}, id: '3d24ee258efc' },
      { status: 'Pushing', progressDetail: { current: 512, total: 4096 }, progress: '[=>  ] 512B/4.096kB', id: '3d24ee258efc' },
      { status: 'Pushed', progressDetail: {}, id: '3d24ee258efc' },
      { status: `v1: digest: ${H('d')} size: 527`, progressDetail: {} },
      { progressDetail: {}, aux: { Tag: 'v1', Digest: H('d'), Size: 527 } },
    ];
    fake.on('POST', /^\/images\/.+\/push$/, () => ({ lines: progress }));
    for (const args of [['push', '127.0.0.1:5000/team/app:v1'], ['push', '-q', '127.0.0.1:5000/team/app:v1'], ['image', 'push', '127.0.0.1:5000/team/app'], ['push', '-a', '127.0.0.1:5000/team/app'], ['push', '-a', '-q', 'me/app']]) await same(args);
    await same(['push', `127.0.0.1:5000/team/app@${H('d')}`], { requests: false });
    await same(['push', '-a', '127.0.0.1:5000/team/app:v1'], { requests: false });
    fake.on('POST', /^\/images\/.+\/push$/, () => ({ status: 404, json: { message: 'No such image: 127.0.0.1:5000/team/app:v2' } }));
    await same(['push', '127.0.0.1:5000/team/app:v2']);
  });

  test('tag: the request, and refused names', async () => {
    fake.on('POST', /^\/images\/.+\/tag$/, () => ({ status: 201, raw: '' }));
    for (const args of [['tag', 'busybox', 'me/bb'], ['image', 'tag', 'busybox:1.36', '127.0.0.1:5000/x/y:v2'], ['tag', 'aaaaaaaaaaaa', 'z'], ['tag', H('a'), 'z:1']]) await same(args);
    await same(['tag', 'busybox', `x@${H('b')}`], { requests: false });
    await same(['tag', 'busybox', 'Upper'], { requests: false });
    await same(['tag', 'busybox'], { requests: false, stderr: 'ignore' }).then((r) => assert.equal(r.code, 1));
    fake.on('POST', /^\/images\/.+\/tag$/, () => ({ status: 404, json: { message: 'No such image: nope:latest' } }));
    await same(['tag', 'nope', 'x']);
  });

  test('rmi: Untagged/Deleted lines, several images, -f with missing images, conflicts, --no-prune', async () => {
    fake.on('DELETE', /^\/images\//, (r) => {
      if (r.path.includes('nope')) return { status: 404, json: { message: `No such image: ${r.path.slice(8)}` } };
      if (r.path.includes('busy')) return { status: 409, json: { message: 'conflict: unable to delete aaaaaaaaaaaa (must be forced) - image is referenced in multiple repositories' } };
      return { json: [{ Untagged: 'me/app:latest' }, { Untagged: `me/app@${H('d')}` }, { Deleted: H('c') }, { Deleted: H('9') }] };
    });
    for (const args of [['rmi', 'me/app'], ['image', 'rm', '--no-prune', 'me/app'], ['image', 'remove', '-f', 'me/app', 'nope'], ['rmi', 'nope', 'me/app'], ['rmi', '-f', 'nope', 'busybox'], ['rmi', 'nope', 'nope2']]) await same(args);
  });

  test('image inspect: docker\'s indented raw JSON, json, templates, missing images', async () => {
    fake.on('GET', /^\/images\/.+\/json$/, (r) => (r.path.includes('nope') ? { status: 404, json: { message: 'No such image: nope:latest' } } : { raw: JSON.stringify(INSPECT), contentType: 'application/json' }));
    for (const args of [
      ['image', 'inspect', 'busybox'], ['image', 'inspect', 'busybox', 'busybox:1'], ['image', 'inspect', '--format', 'json', 'busybox'],
      ['image', 'inspect', '-f', '{{.Id}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{.Size}} {{.Config.Env}} {{.Note}}', 'busybox'],
      ['image', 'inspect', '-f', '{{range .RepoTags}}{{.}} {{end}}', 'busybox'],
      ['image', 'inspect', 'nope'], ['image', 'inspect', 'busybox', 'nope'], ['image', 'inspect', '-f', '{{.Id}}', 'nope', 'busybox'],
    ]) await same(args);
    // A field the object lacks is an error, as docker's (missingkey=error); docker also names the position.
    const r = await same(['image', 'inspect', '-f', '{{.Id}} {{.Missing}}', 'busybox'], { stderr: 'ignore' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^template parsing error: .*map has no entry for key "Missing"\n$/);
  });

  test('history: human and not (-H=false), --no-trunc, -q, --format', async () => {
    fake.on('GET', /^\/images\/.+\/history$/, () => ({ json: HISTORY }));
    for (const args of [
      ['history', 'busybox'], ['image', 'history', 'busybox'], ['history', '-H=false', 'busybox'], ['history', '--human=false', '--no-trunc', 'busybox'],
      ['history', '-q', 'busybox'], ['history', '--no-trunc', '-q', 'busybox'], ['history', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'busybox'],
      ['history', '--format', 'json', 'busybox'], ['history', '-H', '--format', 'table {{.ID}}\\t{{.CreatedAt}}', 'busybox'],
    ]) await same(args);
    fake.on('GET', /^\/images\/.+\/history$/, () => ({ status: 404, json: { message: 'No such image: nope:latest' } }));
    await same(['history', 'nope']);
  });

  test('save: to a file (-o), to a pipe, several images, bad output paths', async () => {
    const tar = Buffer.alloc(10240, 7);
    fake.on('GET', '/images/get', () => ({ raw: tar, contentType: 'application/x-tar' }));
    const out = join(fake.dir, 'out');
    mkdirSync(out, { recursive: true });
    await same(['save', '-o', join(out, 'a.tar'), 'busybox', 'me/app:v1']);
    assert.deepEqual(readFileSync(join(out, 'a.tar')), tar);
    const r = await same(['image', 'save', 'busybox']);
    assert.equal(r.stdout.length, tar.length);
    await same(['save', '-o', join(out, 'missing', 'a.tar'), 'busybox'], { requests: false });
    await same(['save'], { requests: false, stderr: 'ignore' });
  });

  test('load: -i and stdin, JSON answer rendered, -q', async () => {
    fake.on('POST', '/images/load', () => ({ lines: [{ stream: 'Loaded image: busybox:latest\n' }, { stream: `Loaded image ID: ${H('a')}\n` }] }));
    const file = join(fake.dir, 'in.tar');
    writeFileSync(file, Buffer.alloc(2048, 1));
    await same(['load', '-i', file]);
    await same(['image', 'load', '-q', '--input', file]);
    await same(['load'], { input: 'not really a tar' });
    await same(['load', '-i', join(fake.dir, 'absent.tar')], { requests: false });
    fake.on('POST', '/images/load', () => ({ status: 500, json: { message: 'unexpected EOF' } }));
    await same(['load', '-i', file]);
  });

  test('import: file, stdin, URL, --change/-c, -m, --platform, repository', async () => {
    fake.on('POST', '/images/create', () => ({ lines: [{ status: H('7') }] }));
    const file = join(fake.dir, 'rootfs.tar');
    writeFileSync(file, Buffer.alloc(1024, 2));
    await same(['import', file]);
    await same(['image', 'import', '-c', 'CMD ["sh"]', '--change', 'ENV A=1', '-m', 'hello', '--platform', 'linux/arm64', file, 'me/rootfs:v1']);
    await same(['import', '-', 'me/x'], { input: 'tar bytes' });
    await same(['import', 'http://127.0.0.1:1/rootfs.tar', 'me/y']);
    await same(['import', join(fake.dir, 'absent.tar')], { requests: false });
    await same(['import', file, 'Bad'], { requests: false });
    await same(['import', join(fake.dir, 'absent.tar'), 'a', 'b'], { requests: false });
  });

  test('image prune / system prune: prompts, declined prompt, report, filters', async () => {
    fake.on('POST', '/images/prune', (r) => (r.query.some(([, v]) => v.includes('"dangling":{"false"'))
      ? { json: { ImagesDeleted: [{ Untagged: 'busybox:latest' }, { Untagged: `busybox@${H('b')}` }, { Deleted: H('a') }, { Deleted: H('9') }], SpaceReclaimed: 4_261_550 } }
      : { json: { ImagesDeleted: null, SpaceReclaimed: 0 } }));
    for (const [args, input] of [
      [['image', 'prune'], 'n\n'], [['image', 'prune'], 'y\n'], [['image', 'prune', '-a'], 'Y\n'], [['image', 'prune', '-f', '--filter', 'until=24h', '--filter', 'label=a']], [['image', 'prune', '-a', '-f']],
      [['image', 'prune'], ''], [['system', 'prune'], 'n\n'], [['system', 'prune', '-a', '--volumes'], 'n\n'], [['system', 'prune', '--filter', 'label=x=y', '--filter', 'until=2h'], 'n\n'],
    ] as Array<[string[], string?]>) await same(args, { input: input ?? '', requests: args[0] === 'image' });
    // system prune's own requests differ (docker also prunes containers, networks and build cache); its image part matches.
    for (const kind of ['containers', 'networks']) fake.on('POST', `/${kind}/prune`, () => ({ json: {} }));
    fake.on('POST', '/build/prune', () => ({ json: { CachesDeleted: null, SpaceReclaimed: 0 } }));
    const r = await fake.both(['system', 'prune', '-a', '-f']);
    assert.equal(r.berth.stdout, r.docker.stdout);
    assert.equal(r.berth.code, 0);
    await same(['system', 'prune', '--volumes', '--filter', 'until=1h', '-f'], { requests: false });
  });

  test('login / logout: stored in docker\'s config.json, warnings, --password-stdin, stored credentials, errors', async () => {
    const cfg = (which: 'docker' | 'berth'): string => join(fake.dir, `cfg-${which}`);
    const both = async (args: string[], input = ''): Promise<void> => {
      fake.requests.length = 0;
      const d = await fake.docker(args, { env: { DOCKER_CONFIG: cfg('docker') }, input });
      const dreq = fake.requests.splice(0).map(requestKey);
      const b = await fake.berth(args, { env: { DOCKER_CONFIG: cfg('berth') }, input });
      const breq = fake.requests.splice(0).map(requestKey);
      const ctx = `${explain('docker', d)}\n${explain('berth', b)}`;
      assert.equal(b.code, d.code, `${args.join(' ')}\n${ctx}`);
      assert.equal(b.stdout, asBerth(d.stdout), `${args.join(' ')}\n${ctx}`);
      assert.equal(b.stderr, asBerth(d.stderr).replace(cfg('docker'), cfg('berth')), `${args.join(' ')}\n${ctx}`);
      assert.deepEqual(breq, dreq);
      const read = (w: 'docker' | 'berth'): string => (existsSync(join(cfg(w), 'config.json')) ? readFileSync(join(cfg(w), 'config.json'), 'utf8') : '');
      assert.deepEqual(JSON.parse(read('berth') || '{}'), JSON.parse(read('docker') || '{}'), `config.json after ${args.join(' ')}`);
    };
    fake.on('POST', '/auth', (r) => {
      const b = JSON.parse(r.body.toString()) as { password?: string };
      return b.password === 'pw' ? { json: { Status: 'Login Succeeded', IdentityToken: '' } } : { status: 401, json: { message: 'Get "http://127.0.0.1:5000/v2/": unauthorized: authentication required' } };
    });
    await both(['login', '-u', 'me', '-p', 'pw', '127.0.0.1:5000']);
    await both(['login', '-u', 'me', '-p', 'pw', '127.0.0.1:5000']); // unchanged: no second warning
    await both(['login', '127.0.0.1:5000']); // stored credentials
    await both(['login', '-u', 'me', '--password-stdin', 'http://127.0.0.1:5000/v2/'], 'pw\n');
    await both(['login', '-u', 'me', '--password-stdin', '127.0.0.1:6000'], 'wrong\n');
    // (no input: these exit before reading stdin, and writing to it could fail with EPIPE)
    await both(['login', '-u', 'me', '-p', 'x', '--password-stdin', 'r:1']);
    await both(['login', '--password-stdin', 'r:1']);
    await both(['login', 'r:1']);
    await both(['login', '-u', 'me', 'r:1']);
    await both(['logout', '127.0.0.1:5000']);
    await both(['logout', 'http://127.0.0.1:5000']);
    await both(['logout']);

    // A credential helper (config.json "credsStore"): the secret goes to the helper, the file
    // keeps an empty entry, no warning; stored credentials come back through the helper.
    const bin = join(fake.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'docker-credential-berthtest'), `#!${process.execPath}
const fs = require('fs');
const file = process.env.BERTH_TEST_HELPER_STORE;
const db = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
const input = fs.readFileSync(0, 'utf8').trim();
const op = process.argv[2];
if (op === 'store') { const c = JSON.parse(input); db[c.ServerURL] = c; fs.writeFileSync(file, JSON.stringify(db)); }
else if (op === 'get') { if (!db[input]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); } process.stdout.write(JSON.stringify(db[input])); }
else if (op === 'erase') { delete db[input]; fs.writeFileSync(file, JSON.stringify(db)); }
`, { mode: 0o755 });
    for (const w of ['docker', 'berth'] as const) writeFileSync(join(cfg(w), 'config.json'), JSON.stringify({ credsStore: 'berthtest' }));
    const helperEnv = (w: 'docker' | 'berth'): NodeJS.ProcessEnv => ({ PATH: `${bin}:${process.env.PATH}`, BERTH_TEST_HELPER_STORE: join(fake.dir, `helper-${w}.json`), DOCKER_CONFIG: cfg(w) });
    for (const [args, input] of [[['login', '-u', 'me', '--password-stdin', '127.0.0.1:5000'], 'pw\n'], [['login', '127.0.0.1:5000'], ''], [['logout', '127.0.0.1:5000'], '']] as Array<[string[], string]>) {
      const d = await fake.docker(args, { env: helperEnv('docker'), input });
      const b = await fake.berth(args, { env: helperEnv('berth'), input });
      assert.equal(b.code, d.code, `${args.join(' ')}\n${explain('docker', d)}\n${explain('berth', b)}`);
      assert.equal(b.stdout, d.stdout, args.join(' '));
      assert.equal(b.stderr, d.stderr, args.join(' '));
      assert.deepEqual(JSON.parse(readFileSync(join(cfg('berth'), 'config.json'), 'utf8')), JSON.parse(readFileSync(join(cfg('docker'), 'config.json'), 'utf8')), `config.json after ${args.join(' ')}`);
      assert.deepEqual(JSON.parse(readFileSync(join(fake.dir, 'helper-berth.json'), 'utf8')), JSON.parse(readFileSync(join(fake.dir, 'helper-docker.json'), 'utf8')), `helper store after ${args.join(' ')}`);
    }
  });

  test('on a terminal (script(1)): pull\'s in-place progress, save refusing the terminal, load refusing an empty stdin', { skip: spawnSync('script', ['--version']).status !== 0 && 'script(1) is not installed' }, async () => {
    fake.on('POST', '/images/create', () => ({ lines: [
      { status: 'Pulling from library/busybox', id: 'latest' },
      { status: 'Pulling fs layer', progressDetail: {}, id: '7b2699543f22' },
      { status: 'Pulling fs layer', progressDetail: {}, id: '0a8b3f1c2d4e' },
      { status: 'Downloading', progressDetail: { current: 1000, total: 2_000_000 }, progress: '[>    ]  1kB/2MB', id: '7b2699543f22' },
      { status: 'Download complete', progressDetail: {}, id: '0a8b3f1c2d4e' },
      { status: 'Extracting', progressDetail: { current: 1_000_000, total: 2_000_000 }, id: '7b2699543f22' },
      { status: 'Pull complete', progressDetail: {}, id: '7b2699543f22' },
      { status: 'Pull complete', progressDetail: {}, id: '0a8b3f1c2d4e' },
      { status: `Digest: ${H('b')}` },
      { status: 'Status: Downloaded newer image for busybox:latest' },
    ] }));
    fake.on('GET', '/images/get', () => ({ raw: 'tar' }));
    fake.on('GET', '/images/json', () => ({ json: IMAGES }));
    const env = fake.env();
    const onTerminal = (cmd: string, cols: number): Promise<string> =>
      run('script', ['-qec', `stty cols ${cols}; ${cmd}; echo "exit $?"`, '/dev/null'], { env, cwd: REPO_ROOT, timeoutMs: 60_000 }).then((r) => r.stdout);
    for (const cols of [80, 200]) {
      for (const args of [['pull', 'busybox'], ['save', 'busybox'], ['load'], ['images', '--digests']]) {
        const d = await onTerminal(`${DOCKER_BIN} ${args.join(' ')}`, cols);
        const b = await onTerminal(`${process.execPath} --import tsx src/cli/berth.ts -H ${fake.host} ${args.join(' ')}`, cols);
        assert.equal(b, d, `${args.join(' ')} at ${cols} columns`);
      }
    }
    // Interactive login: "Username: " prompt, password read without echo, then as with -u/-p.
    fake.on('POST', '/auth', () => ({ json: { Status: 'Login Succeeded', IdentityToken: '' } }));
    const typed = async (who: 'docker' | 'berth'): Promise<string> => {
      const cmd = who === 'docker' ? `${DOCKER_BIN} login 127.0.0.1:5000` : `${process.execPath} --import tsx src/cli/berth.ts -H ${fake.host} login 127.0.0.1:5000`;
      const r = await run('sh', ['-c', `(sleep 1.5; printf 'me\\n'; sleep 1; printf 'pw\\n'; sleep 1.5) | script -qec "${cmd}; echo exit \\$?" /dev/null`],
        { env: { ...env, DOCKER_CONFIG: join(fake.dir, `cfg-tty-${who}`) }, cwd: REPO_ROOT, timeoutMs: 60_000 });
      return r.stdout.replace(join(fake.dir, `cfg-tty-${who}`), '<config>');
    };
    const d = await typed('docker');
    assert.match(d, /^Username: me\r\nPassword: \r\n/);
    assert.equal(await typed('berth'), d);

    // A pull the daemon refuses with 401: on a terminal, credentials are asked for and the pull
    // retried once with them (docker 28 does the same, with Docker Hub's sign-up text for any registry).
    fake.on('POST', '/images/create', (r) => (String(r.headers['x-registry-auth']).length > 8
      ? { lines: [{ status: 'Status: Downloaded newer image for 127.0.0.1:5000/x:latest' }] }
      : { status: 401, json: { message: 'unauthorized: authentication required' } }));
    fake.requests.length = 0;
    const pulled = await run('sh', ['-c', `(sleep 1.5; printf 'me\\n'; sleep 1; printf 'pw\\n'; sleep 1.5) | script -qec "${process.execPath} --import tsx src/cli/berth.ts -H ${fake.host} pull 127.0.0.1:5000/x; echo exit \\$?" /dev/null`],
      { env, cwd: REPO_ROOT, timeoutMs: 60_000 });
    assert.equal(pulled.stdout, 'Using default tag: latest\r\n\r\nLogin prior to pull:\r\nUsername: me\r\nPassword: \r\nStatus: Downloaded newer image for 127.0.0.1:5000/x:latest\r\n127.0.0.1:5000/x:latest\r\nexit 0\r\n');
    const auths = fake.requests.map((r) => JSON.parse(Buffer.from(String(r.headers['x-registry-auth']), 'base64url').toString()) as Record<string, string>);
    assert.deepEqual(auths, [{}, { username: 'me', password: 'pw', serveraddress: '127.0.0.1:5000' }]);
  });
});
