// The web UI (src/webui/, served by `berth daemon --ui`): browser bundles with content-hashed
// names, so the daemon can let browsers cache them for good. The terminal (xterm.js) is a lazily
// loaded chunk, kept out of the first load. <out>/manifest.json names each page's files.
//
// Called by scripts/build.mjs (out = dist/ui); alone, `node scripts/build-ui.mjs <out>` builds
// into another directory, which a daemon serves when started with BERTH_UI_DIR=<out>.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function buildUi(uiDir) {
  const esbuild = await import('esbuild');
  rmSync(uiDir, { recursive: true, force: true });
  mkdirSync(uiDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(root, 'src/webui/main.tsx'), login: join(root, 'src/webui/login.ts') },
    outdir: join(uiDir, 'assets'),
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome111', 'firefox113', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  const manifest = {};
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    if (!out.entryPoint || !file.endsWith('.js')) continue;
    // Chunks of dynamic import()s (the terminal) carry an entryPoint too: only the two pages count.
    const page = out.entryPoint.endsWith('src/webui/main.tsx') ? 'app' : out.entryPoint.endsWith('src/webui/login.ts') ? 'login' : undefined;
    if (!page) continue;
    manifest[page] = { js: basename(file), css: out.cssBundle ? [basename(out.cssBundle)] : [] };
  }
  writeFileSync(join(uiDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return result.metafile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node scripts/build-ui.mjs <output directory>');
    process.exit(2);
  }
  await buildUi(resolve(out));
}
