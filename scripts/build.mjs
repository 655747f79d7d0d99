// Builds what a fresh clone needs: the C stage (native/) and the bundled CLIs (dist/).
// Runs from `npm install` / `npm ci` (the "prepare" script) and from `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });

const cc = process.env.CC ?? 'cc';
const stageSources = ['native/stage.c'];
execFileSync(cc, [
  '-O2', '-g', '-Wall', '-Wextra', '-Werror=implicit-function-declaration',
  '-Wno-unused-parameter', '-D_GNU_SOURCE', '-std=gnu11',
  '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2',
  '-o', join(dist, 'berth-stage'), ...stageSources.map((s) => join(root, s)),
], { stdio: 'inherit', cwd: root });
// The layer unpacker's helper for mknod/xattrs/ns times (src/image/unpack/fsops.ts).
execFileSync(cc, [
  '-O2', '-Wall', '-Wextra', '-D_GNU_SOURCE', '-std=gnu11', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2',
  '-o', join(dist, 'berth-fsops'), join(root, 'native/fsops.c'),
], { stdio: 'inherit', cwd: root });
// Reads xattrs of a whole tree for the layer differ and container archives (src/image/tree-reader.ts).
execFileSync(cc, [
  '-O2', '-Wall', '-Wextra', '-D_GNU_SOURCE', '-std=gnu11', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2',
  '-o', join(dist, 'berth-xattrs'), join(root, 'native/xattrs.c'),
], { stdio: 'inherit', cwd: root });

// The per-container monitor (native/MONITOR.md): one runs for every running container, so it is
// linked statically where the C library allows it (no dynamic loader or libc mappings: less memory).
{
  const monitorArgs = [
    '-O2', '-g', '-Wall', '-Wextra', '-Werror=implicit-function-declaration', '-Wno-unused-parameter',
    '-D_GNU_SOURCE', '-std=gnu11', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2',
    '-o', join(dist, 'berth-monitor'), join(root, 'native/monitor.c'),
  ];
  try {
    execFileSync(cc, ['-static', ...monitorArgs], { stdio: ['ignore', 'ignore', 'pipe'], cwd: root });
  } catch {
    execFileSync(cc, monitorArgs, { stdio: 'inherit', cwd: root });
  }
}

// --init's pid 1 (native/init.c), bind-mounted into containers: static, so it runs in any image.
{
  const initArgs = ['-O2', '-Wall', '-Wextra', '-D_GNU_SOURCE', '-std=gnu11', '-o', join(dist, 'berth-init'), join(root, 'native/init.c')];
  try {
    execFileSync(cc, ['-static', ...initArgs], { stdio: ['ignore', 'ignore', 'pipe'], cwd: root });
  } catch {
    console.warn('build: no static libc; dist/berth-init is linked dynamically (it then needs a libc in the image)');
    execFileSync(cc, initArgs, { stdio: 'inherit', cwd: root });
  }
}

const esbuild = await import('esbuild');
// berth-daemon.cjs is `berth daemon`'s code, loaded by berth.cjs only for that command: client
// commands (`berth run`, `berth ps`) then parse a third of the code at start-up.
const entries = { 'berth-runtime': 'src/runtime/cli.ts', 'berth': 'src/cli/berth.ts', 'berth-daemon': 'src/api/daemon.ts' };
const splitDaemon = {
  name: 'split-daemon',
  setup(build) {
    build.onResolve({ filter: /\/api\/daemon\.ts$/ }, (args) => (args.importer.endsWith(join('src', 'cli', 'berth.ts')) ? { path: './berth-daemon.cjs', external: true } : undefined));
  },
};
// Native addons stay outside the bundle (loaded from node_modules at run time).
const external = ['better-sqlite3', 'zstd-napi'];
// The build's identity for `berth version` and /version (src/api/version.ts).
let gitCommit = 'unknown';
try {
  gitCommit = execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || gitCommit;
} catch { /* not a git checkout */ }
const buildDefines = {
  __BERTH_GIT_COMMIT__: JSON.stringify(gitCommit),
  __BERTH_BUILD_TIME__: JSON.stringify(new Date().toISOString()),
};
for (const [name, entry] of Object.entries(entries)) {
  // CommonJS, not ESM: Node 20 loads a CJS bundle ~4 ms faster (no ESM loader, no async reads),
  // and every `berth-runtime` call pays that start-up.
  const outfile = join(dist, `${name}.cjs`);
  await esbuild.build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Whitespace and syntax only: smaller to parse at every start, identifiers kept for stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    external,
    define: { 'import.meta.url': '__berthModuleUrl', ...buildDefines },
    banner: { js: '#!/usr/bin/env node\nconst __berthModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
    plugins: [splitDaemon],
  });
  chmodSync(outfile, 0o755);
}


// The web UI's browser bundles (scripts/build-ui.mjs).
const { buildUi } = await import('./build-ui.mjs');
await buildUi(join(dist, 'ui'));
