// docker commit's pure rules: the config merge (moby's merge()), the name rules, the child
// image config (history, rootfs, empty layers, key order).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { childImageConfig, commitReference, CommitError, mergeCommitConfig } from '../../src/engine/containers/commit.ts';
import { goFileMode, goTime } from '../../src/engine/containers/archive.ts';
import type { ImageConfig } from '../../src/image/types.ts';

describe('mergeCommitConfig', () => {
  const base = {
    User: 'app', Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Entrypoint: ['/init'], WorkingDir: '/srv', Labels: { a: '1', b: '2' },
    ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} }, StopSignal: 'SIGQUIT', Healthcheck: { Test: ['CMD', 'true'], Interval: 5 },
  };

  test('empty fields come from the container', () => {
    assert.deepEqual(mergeCommitConfig({}, base), { ...base, Labels: { a: '1', b: '2' } });
  });

  test('lists and maps merge key by key; the request wins', () => {
    const m = mergeCommitConfig({ Env: ['A=2', 'C=3'], Labels: { b: 'x' }, ExposedPorts: { '443/tcp': {} }, Volumes: { '/logs': {} } }, base);
    assert.deepEqual(m.Env, ['A=2', 'C=3', 'PATH=/bin']);
    assert.deepEqual(m.Labels, { b: 'x', a: '1' });
    assert.deepEqual(Object.keys(m.ExposedPorts!).sort(), ['443/tcp', '80/tcp']);
    assert.deepEqual(Object.keys(m.Volumes!).sort(), ['/data', '/logs']);
  });

  test('Cmd and Entrypoint: an Entrypoint in the request keeps its own (absent) Cmd', () => {
    assert.deepEqual(mergeCommitConfig({ Cmd: ['echo'] }, base).Entrypoint, ['/init']);
    assert.deepEqual(mergeCommitConfig({ Cmd: ['echo'] }, base).Cmd, ['echo']);
    const m = mergeCommitConfig({ Entrypoint: ['/other'] }, base);
    assert.deepEqual(m.Entrypoint, ['/other']);
    assert.equal(m.Cmd, undefined);
    assert.deepEqual(mergeCommitConfig({ Healthcheck: { Interval: 9 } }, base).Healthcheck, { Test: ['CMD', 'true'], Interval: 9, Timeout: undefined, StartPeriod: undefined, Retries: undefined });
  });
});

describe('commitReference', () => {
  test('docker.io/library normalisation, default tag, explicit tag, refusals', () => {
    assert.equal(commitReference(undefined, 'x'), undefined);
    assert.deepEqual(commitReference('mine', undefined), { domain: 'docker.io', path: 'library/mine', tag: 'latest' });
    assert.deepEqual(commitReference('reg:5000/a/b', 'v2'), { domain: 'reg:5000', path: 'a/b', tag: 'v2' });
    assert.deepEqual(commitReference('mine:1', undefined), { domain: 'docker.io', path: 'library/mine', tag: '1' });
    assert.throws(() => commitReference(`x@sha256:${'a'.repeat(64)}`, undefined), (e: unknown) => e instanceof CommitError && e.message === 'cannot create a tag for a digested reference');
    assert.throws(() => commitReference('UPPER', undefined), CommitError);
    assert.throws(() => commitReference('ok', 'bad tag'), CommitError);
  });
});

describe('childImageConfig', () => {
  const parent: ImageConfig = {
    architecture: 'amd64', os: 'linux', variant: undefined, rootfs: { type: 'layers', diff_ids: ['sha256:' + '1'.repeat(64)] },
    history: [{ created: '2020-01-01T00:00:00Z', created_by: 'base' }], config: { Cmd: ['sh'] },
  };
  test('a layer: appended diff ID, history with the container\'s Cmd, sorted keys', () => {
    const img = childImageConfig(parent, {
      config: { Cmd: ['run'] }, containerId: 'c'.repeat(64), containerConfig: { Cmd: ['sh', '-c', 'make'] }, author: 'me', comment: 'msg',
      diffId: 'sha256:' + '2'.repeat(64), created: '2024-01-01T00:00:00Z',
    });
    assert.deepEqual(img.rootfs.diff_ids, ['sha256:' + '1'.repeat(64), 'sha256:' + '2'.repeat(64)]);
    assert.deepEqual(img.history!.at(-1), { created: '2024-01-01T00:00:00Z', author: 'me', created_by: 'sh -c make', comment: 'msg' });
    assert.deepEqual(Object.keys(img), [...Object.keys(img)].sort());
    assert.equal(img.container, 'c'.repeat(64));
    assert.deepEqual((img.config as Record<string, unknown>).Cmd, ['run']);
    assert.equal((img.config as Record<string, unknown>).Hostname, '', 'Go writes every field of Config');
  });
  test('no layer: rootfs unchanged, history says empty_layer', () => {
    const img = childImageConfig(parent, { config: {}, containerId: 'x', containerConfig: {}, created: '2024-01-01T00:00:00Z' });
    assert.equal(img.rootfs.diff_ids.length, 1);
    assert.equal(img.history!.at(-1)!.empty_layer, true);
    assert.equal(img.author, undefined);
  });
});

describe('archive stat helpers', () => {
  test('Go FileMode bits and RFC 3339 times', () => {
    assert.equal(goFileMode(0o100644), 0o644);
    assert.equal(goFileMode(0o040755), 2 ** 31 + 0o755);
    assert.equal(goFileMode(0o041777), 2 ** 31 + 2 ** 20 + 0o777);
    assert.equal(goFileMode(0o120777), 2 ** 27 + 0o777);
    assert.equal(goFileMode(0o020666), 2 ** 26 + 2 ** 21 + 0o666);
    assert.equal(goFileMode(0o104755), 2 ** 23 + 0o755);
    assert.equal(goTime(1_700_000_000_000_000_000n), '2023-11-14T22:13:20Z');
    assert.equal(goTime(1_700_000_000_120_000_000n), '2023-11-14T22:13:20.12Z');
  });
});
