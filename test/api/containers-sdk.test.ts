// A Docker SDK against `berth daemon`: docker-py (on the machine image) runs, execs, inspects,
// kills and removes containers, and builds images, through the Engine API, unchanged.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, run, TestDaemon } from '../helpers/daemon.ts';
import { importBusybox } from '../helpers/containers.ts';

const hasSdk = spawnSync('python3', ['-c', 'import docker'], { stdio: 'ignore' }).status === 0;
const skip = !existsSync(DOCKER_BIN) ? 'no docker CLI' : !hasSdk ? 'python3 docker SDK (docker-py) not installed' : false;
let d: TestDaemon;
let work: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-sdk-'));
  d = await TestDaemon.start();
  await importBusybox(d, work);
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

const SCRIPT = `
import docker, json, sys
c = docker.DockerClient(base_url=sys.argv[1])
out = {}
out['run'] = c.containers.run('busybox', ['sh', '-c', 'echo hi from sdk'], remove=True).decode()
ct = c.containers.run('busybox', ['sh', '-c', 'echo started; sleep 30'], detach=True, name='sdk1', labels={'k': 'v'})
out['execs'] = [ct.exec_run(['sh', '-c', 'echo exec $0', str(i)]).output.decode() for i in range(3)]
out['exec_code'] = ct.exec_run(['sh', '-c', 'exit 3']).exit_code
ct.reload()
out['status'] = ct.status
out['labels'] = ct.labels
out['listed'] = [x.name for x in c.containers.list(filters={'label': 'k=v'})]
ct.kill()
out['wait'] = ct.wait()['StatusCode']
out['logs'] = ct.logs().decode()
ct.remove()
out['after'] = [x.name for x in c.containers.list(all=True)]
print(json.dumps(out))
`;

test('docker-py: run, exec_run, reload, list with filters, kill, wait, logs, remove', { skip, timeout: 120_000 }, async () => {
  const r = await run('python3', ['-c', SCRIPT, d.host], { timeoutMs: 100_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.run, 'hi from sdk\n');
  assert.deepEqual(out.execs, ['exec 0\n', 'exec 1\n', 'exec 2\n']);
  assert.equal(out.exec_code, 3);
  assert.equal(out.status, 'running');
  assert.deepEqual(out.labels, { k: 'v' });
  assert.deepEqual(out.listed, ['sdk1']);
  assert.equal(out.wait, 137);
  assert.equal(out.logs, 'started\n');
  assert.deepEqual(out.after, []);
});

const BUILD_SCRIPT = `
import docker, json, sys
c = docker.DockerClient(base_url=sys.argv[1])
image, logs = c.images.build(path=sys.argv[2], tag='sdk-built:1', buildargs={'WHO': 'sdk'}, rm=True)
lines = [l.get('stream', '') for l in logs]
out = {'tags': image.tags, 'id': image.id, 'labels': image.labels, 'output': ''.join(lines)}
out['run'] = c.containers.run('sdk-built:1', remove=True).decode()
try:
    c.images.build(path=sys.argv[3], tag='sdk-bad')
    out['bad'] = 'no error'
except docker.errors.BuildError as e:
    out['bad'] = str(e)
print(json.dumps(out))
`;

test('docker-py: images.build with build args; a failing build raises BuildError', { skip, timeout: 120_000 }, async () => {
  const good = join(work, 'sdk-ctx');
  mkdirSync(good);
  writeFileSync(join(good, 'Dockerfile'), 'FROM busybox\nARG WHO\nLABEL who=$WHO\nRUN echo "built by $WHO" > /msg\nCMD ["cat", "/msg"]\n');
  const bad = join(work, 'sdk-bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'Dockerfile'), 'FROM busybox\nRUN exit 4\n');
  const r = await run('python3', ['-c', BUILD_SCRIPT, d.host, good, bad], { timeoutMs: 100_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.tags, ['sdk-built:1']);
  assert.match(out.id, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(out.labels, { who: 'sdk' });
  assert.match(out.output, /Step 1\/5 : FROM busybox/);
  assert.equal(out.run, 'built by sdk\n');
  assert.match(out.bad, /returned a non-zero code: 4/);
});
