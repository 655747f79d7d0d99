// The real docker CLI (28.x) against `berth daemon`: it must negotiate, print what it prints
// against dockerd, and never write an error.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
before(async () => { if (!skip) d = await TestDaemon.start({ config: { 'insecure-registries': ['registry.test:5000'] } }); });
after(async () => { await d?.cleanup(); });

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

test('docker version: negotiates down to 1.47 and prints the server section', { skip }, async () => {
  const r = await d.docker(['version']);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stderr, '', explain(r));
  assert.match(r.stdout, /^ API version:\s+1\.47 \(downgraded from 1\.\d+\)$/m);
  assert.match(r.stdout, /^Server: Berth$/m);
  assert.match(r.stdout, /^ Engine:\n {2}Version:\s+\d+\.\d+\.\d+\n {2}API version:\s+1\.47 \(minimum version 1\.24\)$/m);
  assert.match(r.stdout, /^ {2}OS\/Arch:\s+linux\/\w+$/m);
  assert.match(r.stdout, /^ {2}Experimental:\s+false$/m);
  // BuildTime parsed as RFC 3339 (docker reformats it to ANSIC; an unparsable one prints raw).
  assert.match(r.stdout, /^ {2}Built:\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/m);
});

test('docker version --format reads the server\'s fields', { skip }, async () => {
  const r = await d.docker(['version', '--format', '{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}} {{.Server.KernelVersion}}']);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stdout.trim(), `1.47 1.24 linux ${release()}`);
});

test('docker -H unix://… version (explicit host, negotiation on each call)', { skip }, async () => {
  const r = await d.docker(['-H', d.host, 'version', '--format', '{{.Client.APIVersion}}'], { env: { DOCKER_HOST: '' } });
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stdout.trim(), '1.47');
});

test('DOCKER_API_VERSION: an older pinned version works, a newer one gets the daemon\'s error', { skip }, async () => {
  let r = await d.docker(['version', '--format', '{{.Server.Version}}'], { env: { DOCKER_API_VERSION: '1.40' } });
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['version'], { env: { DOCKER_API_VERSION: '1.49' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /client version 1\.49 is too new\. Maximum supported API version is 1\.47/);
});

test('docker info: the server section as against dockerd, no errors or warnings', { skip }, async () => {
  const r = await d.docker(['info']);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stderr, '', explain(r));
  for (const line of [
    /^ Containers: 0$/m, /^ {2}Running: 0$/m, /^ Images: 0$/m, /^ Server Version: \d+\.\d+\.\d+/m,
    /^ Storage Driver: (overlay2|vfs)$/m, /^ Logging Driver: json-file$/m, /^ Cgroup Driver: cgroupfs$/m,
    /^ Cgroup Version: [12]$/m, /^ Swarm: inactive$/m, /^ Runtimes: (\S+ )*berth( \S+)*$/m, /^ Default Runtime: berth$/m,
    /^ Security Options:\n {2}seccomp\n {3}Profile: builtin$/m, new RegExp(`^ Kernel Version: ${release().replace(/[.+]/g, '\\$&')}$`, 'm'),
    /^ OSType: linux$/m, new RegExp(`^ CPUs: ${availableParallelism()}$`, 'm'), /^ Total Memory: [\d.]+GiB$/m,
    new RegExp(`^ Docker Root Dir: ${d.dataRoot}$`, 'm'),
    /^ Insecure Registries:\n {2}registry\.test:5000\n {2}127\.0\.0\.0\/8$/m, /^ Live Restore Enabled: true$/m,
  ]) {
    assert.match(r.stdout, line);
  }
  assert.doesNotMatch(r.stdout, /ERROR/);
});

test('docker info --format {{json .}} parses as docker\'s Info', { skip }, async () => {
  const r = await d.docker(['info', '--format', '{{json .}}']);
  assert.equal(r.code, 0, explain(r));
  const info = JSON.parse(r.stdout);
  assert.equal(info.OSType, 'linux');
  assert.equal(info.DefaultRuntime, 'berth');
  assert.equal(info.ServerErrors, undefined);
});

test('docker system events --since/--until prints an emitted event', { skip }, async () => {
  const since = String(Math.floor(Date.now() / 1000) - 1);
  d.signal('SIGHUP'); // the daemon reloads its config and emits `daemon reload`
  for (let i = 0; i < 200 && !d.log().includes('Reloaded configuration'); i++) await new Promise((r) => setTimeout(r, 10));
  const until = String(Math.floor(Date.now() / 1000) + 1);
  let r = await d.docker(['system', 'events', '--since', since, '--until', until]);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) daemon reload [\w-]+ \(debug=false, default-runtime=berth, insecure-registries=\["registry\.test:5000"\], .*name=[^,]+, registry-mirrors=\[\], runtimes=\)$/m);
  r = await d.docker(['events', '--since', since, '--until', until, '--filter', 'type=daemon', '--format', '{{.Type}} {{.Action}} {{json .Actor.Attributes.debug}}']);
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /^daemon reload "false"$/m);
  r = await d.docker(['events', '--since', since, '--until', until, '--filter', 'type=container']);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stdout, '');
  // Durations and RFC 3339 times are converted by the CLI; the daemon takes them.
  r = await d.docker(['events', '--since', '1m', '--until', new Date(Date.now() + 1000).toISOString()]);
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /daemon reload/);
});

test('docker system df against the skeleton', { skip }, async () => {
  const r = await d.docker(['system', 'df']);
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+0\s+0\s+0B\s+0B\nContainers\s+0\s+0\s+0B\s+0B\nLocal Volumes\s+0\s+0\s+0B\s+0B\nBuild Cache\s+0\s+0\s+0B\s+0B\n$/);
});

test('an unimplemented endpoint: docker shows the daemon\'s 404 message', { skip }, async () => {
  const r = await d.docker(['plugin', 'ls']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /page not found/);
});
