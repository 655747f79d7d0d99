// The test runner: `npm test` (all test files) or `node scripts/test.mjs <file|dir>…` (a subset).
// Node 20's `--test` does not expand globs, so the files are listed here and handed to
// `node --import tsx --test --test-concurrency=1 <files>`. Type-checking is separate (`npm run typecheck`).
//
// Environment: BERTH_RUNTIME=<binary> runs the runtime suite against another runtime (e.g. /usr/sbin/runc).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_FILE = /\.test\.(ts|mts|js|mjs)$/;

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const entry of readdirSync(path).sort()) {
      if (entry === 'node_modules' || entry.startsWith('.')) continue;
      collect(join(path, entry), out);
    }
  } else if (TEST_FILE.test(path)) {
    out.push(path);
  }
}

const passThrough = [];
const targets = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith('-')) passThrough.push(arg); // e.g. --test-name-pattern=…, --test-reporter=…
  else targets.push(arg);
}

const files = [];
for (const target of targets.length ? targets : [join(root, 'test')]) {
  const p = resolve(target);
  if (!existsSync(p)) {
    console.error(`test.mjs: no such file or directory: ${target}`);
    process.exit(2);
  }
  collect(p, files);
}
if (files.length === 0) {
  console.error('test.mjs: no test files found');
  process.exit(2);
}

// The cgroup v2 suites, run a second time in a throwaway pure-v2 VM when this host is not v2
// (most users run v2; this kind of host boots v1 "hybrid"). Only for the full run (no file
// arguments); BERTH_TEST_V2_VM=0 turns it off, =1 makes a missing VM tool an error.
const V2_FILES = ['test/runtime/cgroups.test.ts', 'test/runtime/devices-bpf.test.ts', 'test/runtime/devices.test.ts', 'test/runtime/lifecycle.test.ts', 'test/runtime/rootless.test.ts', 'test/engine/stats.test.ts', 'test/api/containers.test.ts', 'test/api/build.test.ts'];
const vmTool = resolve(root, '..', 'shared', 'vm', 'run-in-v2-vm');
function hostIsCgroupV2() {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / \/sys\/fs\/cgroup - cgroup2 /.test(l));
  } catch {
    return false;
  }
}

function runNode(nodeArgs) {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: 'inherit' });
    const forward = (sig) => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, forward);
    child.on('exit', (code, signal) => {
      for (const sig of ['SIGINT', 'SIGTERM']) process.off(sig, forward);
      resolveRun(signal ? 128 + 15 : (code ?? 1));
    });
  });
}

function runInV2Vm(testFiles) {
  return new Promise((resolveRun) => {
    const child = spawn(vmTool, ['-q', '--timeout', '1500', '--', process.execPath, '--import', 'tsx', '--test', '--test-concurrency=1', ...testFiles],
      { cwd: root, stdio: 'inherit' });
    child.on('error', (err) => { console.error(`test.mjs: cannot start the cgroup v2 VM: ${err.message}`); resolveRun(1); });
    child.on('exit', (code, signal) => resolveRun(signal ? 1 : (code ?? 1)));
  });
}

const hostCode = await runNode(['--import', 'tsx', '--test', '--test-concurrency=1', ...passThrough, ...files.map((f) => relative(root, f))]);
let vmCode = 0;
const vmWanted = process.env.BERTH_TEST_V2_VM ?? (targets.length === 0 ? 'auto' : '0');
if (vmWanted !== '0' && !process.env.BERTH_IN_VM && !hostIsCgroupV2()) {
  if (existsSync(vmTool)) {
    console.log(`\n# cgroup v2: running ${V2_FILES.join(' ')} in a pure cgroup v2 VM (${relative(root, vmTool)})`);
    vmCode = await runInV2Vm(V2_FILES.filter((f) => existsSync(join(root, f))));
    console.log(`# cgroup v2 VM: ${vmCode === 0 ? 'passed' : `failed (exit ${vmCode})`}`);
  } else if (vmWanted === '1') {
    console.error(`test.mjs: BERTH_TEST_V2_VM=1 but ${vmTool} is missing`);
    vmCode = 1;
  } else {
    console.log(`\n# cgroup v2 suites not run: this host is not cgroup v2 and ${vmTool} is missing`);
  }
}
process.exit(hostCode !== 0 ? hostCode : vmCode);
