// run/create flags → POST /containers/create: Berth's body must equal what the docker CLI (28.x)
// sends for the same flags. The docker CLI is pointed at a small HTTP server on a unix socket that
// answers /_ping and records the create request; Berth's parseRunArgs builds its body in-process.
// Env and Binds are compared as sets: docker builds them from Go maps, so their order is random.
// Error cases: `berth create …` and `docker create …` must print the same message (docker → berth)
// and exit with the same status.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compareVersions } from '../../src/api/version.ts';
import { unsupportedFlag } from '../../src/cli/commands/flags.ts';
import { containerFlagSet, parseRunArgs, proxyConfigFor } from '../../src/cli/commands/run-flags.ts';

const DOCKER = process.env.BERTH_TEST_DOCKER ?? '/usr/local/bin/docker';
const skip = existsSync(DOCKER) ? false : 'no docker CLI';
const BERTH = join(import.meta.dirname, '../../src/cli/berth.ts');

let dir: string;
let server: Server;
let apiVersion = '1.47';
let lastExec: Record<string, unknown> | undefined;
let last = undefined as { url: string; body: Record<string, unknown> } | undefined;

before(async () => {
  if (skip) return;
  dir = mkdtempSync('/tmp/berth-runflags-');
  server = createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => {
      res.setHeader('Api-Version', apiVersion);
      res.setHeader('Ostype', 'linux');
      res.setHeader('Content-Type', 'application/json');
      if (req.url === '/_ping') { res.end('OK'); return; }
      if (/\/containers\/c1\/json$/.test(req.url ?? '')) {
        res.end('{"Id":"c1","Config":{"Tty":false,"OpenStdin":true},"HostConfig":{},"State":{"Running":true}}');
        return;
      }
      if (/\/containers\/c1\/exec$/.test(req.url ?? '')) {
        lastExec = JSON.parse(b) as Record<string, unknown>;
        res.statusCode = 201;
        res.end('{"Id":"e1"}');
        return;
      }
      if (req.url?.includes('/containers/create')) {
        last = { url: req.url, body: JSON.parse(b) as Record<string, unknown> };
        res.statusCode = 201;
        res.end('{"Id":"0123456789abcdef","Warnings":[]}');
        return;
      }
      res.statusCode = 404;
      res.end('{"message":"not in this test"}');
    });
  });
  await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r));
  writeFileSync(join(dir, 'env.list'), '# comment\nFROMFILE=1\n  SPACED=2\nFROMHOST\nMISSING_VAR_XYZ\n');
  writeFileSync(join(dir, 'labels.list'), 'a=1\nb\n');
  writeFileSync(join(dir, 'seccomp.json'), '{ "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [] }\n');
});
after(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ENV = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'cfg'), FROMHOST: 'host-value', BERTH_AUTOSTART: '0' });

const REPO = join(import.meta.dirname, '../..');

function run(cmd: string, args: string[], cwd = dir): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: ENV(), cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function normalise(body: Record<string, unknown>): Record<string, unknown> {
  const b = structuredClone(body);
  if (Array.isArray(b.Env)) b.Env = [...(b.Env as string[])].sort();
  const hc = b.HostConfig as Record<string, unknown>;
  if (Array.isArray(hc.Binds)) hc.Binds = [...(hc.Binds as string[])].sort(); // docker: from a Go map
  if (Array.isArray(hc.Ulimits)) hc.Ulimits = [...(hc.Ulimits as Array<{ Name: string }>)].sort((x, y) => x.Name.localeCompare(y.Name));
  return b;
}

const CASES: string[][] = [
  ['busybox'],
  ['busybox', 'echo', 'hi', '-x'],
  ['-it', '--rm', 'busybox', 'sh'],
  ['--name', 'web', '-e', 'A=1', '-e', 'B', '-e', 'FROMHOST', '-e', 'A=2', '--env-file', 'env.list', 'busybox'],
  ['-w', '/tmp', '-u', '1000:1000', '--entrypoint', '/bin/sh', '--hostname', 'h1', '--domainname', 'example.org', 'busybox'],
  ['--entrypoint=', 'busybox'],
  ['-v', '/srv:/srv:ro', '-v', '/anon', '-v', 'named:/data', '-v', './rel:/rel', '--tmpfs', '/run:size=64m', '--tmpfs', '/t', 'busybox'],
  ['--mount', 'type=bind,src=/srv,dst=/srv,readonly', '--mount', 'type=volume,source=v1,target=/v,volume-label=a=b,volume-opt=o=1', '--mount', 'type=tmpfs,dst=/tm,tmpfs-size=1m,tmpfs-mode=1770', 'busybox'],
  ['-p', '8080:80', '-p', '127.0.0.1:8081:81/udp', '-p', '90', '-p', '[::1]:9000:9000', '-p', '7000-7001:7000-7001', '-p', '6000-6010:6000', '--expose', '5000-5002', '--expose', '80', '-P', 'busybox'],
  ['--network', 'none', 'busybox'],
  ['--network', 'mynet', '--network-alias', 'a1', '--ip', '10.1.2.3', 'busybox'],
  ['--network', 'name=mynet,alias=x,driver-opt=k=v', 'busybox'],
  ['--add-host', 'db:10.0.0.2', '--add-host', 'v6=[::1]', '--add-host', 'gw:host-gateway', '--dns', '1.1.1.1', '--dns', '::1', '--dns-search', 'example.com', '--dns-option', 'ndots:2', 'busybox'],
  ['-m', '64m', '--memory-swap', '-1', '--memory-reservation', '32m', '--cpus', '1.5', '--cpu-shares', '512', '--cpuset-cpus', '0', '--pids-limit', '100', '--shm-size', '128m', '--oom-score-adj', '100', '--memory-swappiness', '10', 'busybox'],
  ['--cap-add', 'net_admin', '--cap-add', 'CAP_SYS_TIME', '--cap-drop', 'all', '--privileged', '--read-only', '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=seccomp.json', '--security-opt', 'systempaths=unconfined', 'busybox'],
  ['--restart', 'on-failure:3', '--init', '-l', 'x=y', '-l', 'z', '--label-file', 'labels.list', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=10', 'busybox'],
  ['--init=false', '--restart', 'unless-stopped', 'busybox'],
  ['--device', '/dev/null', '--device', '/dev/zero:/dev/z:r', '--device', '/dev/full:rw', '--stop-signal', 'SIGUSR1', '--stop-timeout', '5', '--sysctl', 'net.ipv4.ip_forward=1', 'busybox'],
  ['--group-add', 'audio', '--ipc', 'private', '--pid', 'host', '--uts', 'host', '--cgroupns', 'private', '--log-driver', 'json-file', '--log-opt', 'max-size=1m', '--runtime', 'crun', 'busybox'],
  ['--health-cmd', 'true', '--health-interval', '5s', '--health-retries', '3', '--health-timeout', '1s', '--health-start-period', '1m', 'busybox'],
  ['--no-healthcheck', '--platform', 'linux/amd64', '--pull', 'never', '-q', 'busybox'],
  ['-a', 'stdout', '-a', 'STDERR', '-i', 'busybox'],
  ['--annotation', 'a=b', '--cgroup-parent', 'p', '--cpu-period', '100000', '--cpu-quota', '50000', '--volumes-from', 'other', '--link', 'c1:alias', '--userns', 'host', '--oom-kill-disable', 'busybox'],
  ['--device-read-bps', '/dev/sda:1mb', '--blkio-weight', '300', '--device-cgroup-rule', 'c 1:3 mr', 'busybox'],
];

for (const version of ['1.47', '1.41']) {
  test(`docker create's request body equals Berth's for the same flags (API ${version})`, { skip, timeout: 300_000 }, async () => {
    apiVersion = version;
    for (const args of CASES) {
      last = undefined;
      const r = await run(DOCKER, ['-H', `unix://${join(dir, 's.sock')}`, 'create', ...args]);
      const set = containerFlagSet('create');
      const refused = unsupportedFlag(set, set.parse(args), version, compareVersions);
      if (refused !== undefined || r.code !== 0) {
        // a flag newer than the API: both refuse it, with the same words
        assert.equal(r.stderr.trim(), refused, `docker create ${args.join(' ')}: ${r.stderr}`);
        assert.equal(last, undefined);
        continue;
      }
      const got = last as { url: string; body: Record<string, unknown> } | undefined;
      assert.ok(got, 'docker sent no create request');
      const cwd = process.cwd();
      process.chdir(dir); // relative -v sources and --env-file paths, as docker saw them
      let mine;
      try {
        mine = parseRunArgs('create', containerFlagSet('create').parse(args), { apiVersion: version, env: ENV(), consoleSize: [0, 0] });
      } finally {
        process.chdir(cwd);
      }
      assert.deepEqual(normalise(mine.request.body), normalise(got.body), `create ${args.join(' ')}`);
      const q = new URL(got.url, 'http://x').searchParams;
      assert.equal(mine.request.name, q.get('name') ?? undefined, `name for ${args.join(' ')}`);
      assert.equal(mine.request.platform, q.get('platform') ?? undefined, `platform for ${args.join(' ')}`);
    }
  });
}

const ERRORS: string[][] = [
  ['--foo', 'busybox'],
  ['-Z', 'busybox'],
  ['-e'],
  ['--name'],
  ['-m', 'abc', 'busybox'],
  ['--cpus', 'x', 'busybox'],
  ['--cpus', '0.0000000001', 'busybox'],
  [],
  ['--restart', 'always', '--rm', 'busybox'],
  ['-p', '99999', 'busybox'],
  ['--pull', 'foo', 'busybox'],
  // (--env-file errors are not tried through the CLI: Node 20 itself claims --env-file anywhere on its command line)
  ['-l', ' =x', 'busybox'],
  ['--add-host', 'foo', 'busybox'],
  ['--dns', '1.2', 'busybox'],
  ['--ulimit', 'nofile=a', 'busybox'],
  ['--ulimit', 'nofile=10:5', 'busybox'],
  ['--mount', 'type=bind', 'busybox'],
  ['--mount', 'type=bind,dst=/x,volume-nocopy', 'busybox'],
  ['--health-interval=-1s', 'busybox'],
  ['--sysctl', 'foo=1', 'busybox'],
  ['--stop-timeout', 'x', 'busybox'],
  ['--privileged=maybe', 'busybox'],
  ['--pid', 'bad', 'busybox'],
  ['--security-opt', 'foo', 'busybox'],
  ['--network', 'none', '--network-alias', 'x', 'busybox'],
  ['--expose', '1:2', 'busybox'],
  ['--no-healthcheck', '--health-cmd', 'x', 'busybox'],
  ['-a', 'foo', 'busybox'],
  ['--memory-swappiness', '200', 'busybox'],
  ['--mac-address', 'zz', 'busybox'],
  ['--restart', ':3', 'busybox'],
  ['--device', 'rel', 'busybox'],
  ['--log-driver', 'none', '--log-opt', 'a=b', 'busybox'],
];

test('run/create flag errors: the same message and exit status as docker', { skip, timeout: 600_000 }, async () => {
  apiVersion = '1.47';
  const sock = `unix://${join(dir, 's.sock')}`;
  for (const cmd of ['create', 'run']) {
    for (const args of ERRORS) {
      const d = await run(DOCKER, ['-H', sock, cmd, ...args]);
      const b = await run(process.execPath, ['--import', 'tsx', BERTH, '-H', sock, cmd, ...args], REPO);
      const expected = d.stderr.replace(/docker/g, 'berth');
      assert.equal(b.stderr, expected, `${cmd} ${args.join(' ')}`);
      assert.equal(b.code, d.code, `${cmd} ${args.join(' ')}: exit status`);
    }
  }
});

test('run: the body of docker run (-d, -i, -a) equals Berth\'s', { skip, timeout: 300_000 }, async () => {
  apiVersion = '1.47';
  const cases = [['-d', 'busybox'], ['-d', '-it', '--rm', 'busybox', 'sh'], ['-i', 'busybox', 'cat'], ['-a', 'stdin', '-a', 'stdout', 'busybox'], ['--sig-proxy=false', '--detach-keys', 'ctrl-a', 'busybox']];
  for (const args of cases) {
    last = undefined;
    // docker goes on to attach or start, which this server refuses: only the create request matters
    await run(DOCKER, ['-H', `unix://${join(dir, 's.sock')}`, 'run', ...args]);
    const got = last as { url: string; body: Record<string, unknown> } | undefined;
    assert.ok(got, `docker run ${args.join(' ')} sent no create request`);
    const mine = parseRunArgs('run', containerFlagSet('run').parse(args), { apiVersion: '1.47', env: ENV(), consoleSize: [0, 0] });
    assert.deepEqual(normalise(mine.request.body), normalise(got.body), `run ${args.join(' ')}`);
  }
});

test('exec: the exec-create body equals docker\'s', { skip, timeout: 300_000 }, async () => {
  apiVersion = '1.47';
  const sock = `unix://${join(dir, 's.sock')}`;
  const cases = [['c1', 'ls', '-l'], ['-d', 'c1', 'sleep', '1'], ['-i', '-e', 'A=1', '-e', 'FROMHOST', '--env-file', join(dir, 'env.list'), '-u', 'nobody', '-w', '/tmp', '--privileged', '--detach-keys', 'ctrl-x', 'c1', 'sh']];
  for (const args of cases) {
    lastExec = undefined;
    await run(DOCKER, ['-H', sock, 'exec', ...args]);
    const theirs = lastExec;
    assert.ok(theirs, `docker exec ${args.join(' ')} sent no exec request`);
    lastExec = undefined;
    await run(process.execPath, ['--import', 'tsx', BERTH, '-H', sock, 'exec', ...args], REPO);
    assert.deepEqual(lastExec, theirs, `exec ${args.join(' ')}`);
  }
});

test('config.json proxies reach the container env as docker sends them (-e wins)', { skip, timeout: 300_000 }, async () => {
  apiVersion = '1.47';
  const sock = `unix://${join(dir, 's.sock')}`;
  const cfg = { proxies: { [sock]: { httpProxy: 'http://p:3128', noProxy: 'localhost' }, default: { httpsProxy: 'http://unused:1' } } };
  mkdirSync(join(dir, 'cfg'), { recursive: true });
  writeFileSync(join(dir, 'cfg', 'config.json'), JSON.stringify(cfg));
  try {
    const args = ['-e', 'http_proxy=mine', 'busybox'];
    last = undefined;
    await run(DOCKER, ['-H', sock, 'create', ...args]);
    const got = last as { url: string; body: Record<string, unknown> } | undefined;
    assert.ok(got);
    const mine = parseRunArgs('create', containerFlagSet('create').parse(args), {
      apiVersion: '1.47', env: ENV(), consoleSize: [0, 0], proxies: proxyConfigFor(cfg, sock),
    });
    assert.deepEqual(normalise(mine.request.body), normalise(got.body));
    assert.deepEqual((normalise(got.body).Env as string[]), ['HTTP_PROXY=http://p:3128', 'NO_PROXY=localhost', 'http_proxy=mine', 'no_proxy=localhost']);
  } finally {
    rmSync(join(dir, 'cfg'), { recursive: true, force: true });
  }
});

test('--help of every lifecycle command prints its usage without contacting a daemon', { timeout: 300_000 }, async () => {
  const cmds = ['run', 'create', 'start', 'attach', 'exec', 'logs', 'wait', 'stop', 'kill', 'restart', 'rm'];
  for (const c of cmds) {
    // an unreachable host: any connection attempt would fail the command
    const r = await run(process.execPath, ['--import', 'tsx', BERTH, '-H', 'unix:///nonexistent/berth.sock', 'container', c, '--help'], REPO);
    assert.equal(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^\\nUsage:  berth container ${c} `), c);
  }
});
