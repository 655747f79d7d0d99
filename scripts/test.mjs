// The test runner: `npm test` (all test files) or `node scripts/test.mjs <file|dir>…` (a subset).
// Node 20's `--test` does not expand globs, so the files are listed here and handed to
// `node --import tsx --test --test-concurrency=1 <files>`. Type-checking is separate (`npm run typecheck`).
//
// Environment: BERTH_RUNTIME=<binary> runs the runtime suite against another runtime (e.g. /usr/sbin/runc).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

const args = ['--import', 'tsx', '--test', '--test-concurrency=1', ...passThrough, ...files.map((f) => relative(root, f))];
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
