// The web UI's static files: built by scripts/build.mjs into dist/ui/, loaded into memory once,
// compressed once (gzip and brotli), and served with long-lived caching (their names carry a
// content hash). The two HTML pages are made per response, because each carries its own CSP
// nonce and, for a signed-in user, the session's CSRF token.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';

export class UiAssetsMissingError extends Error {
  override name = 'UiAssetsMissingError';
}

export interface UiAsset {
  type: string;
  raw: Buffer;
  gzip?: Buffer;
  br?: Buffer;
}

/** dist/ui/manifest.json: the hashed file names of each page's entry script and stylesheet. */
export interface UiManifest {
  app: { js: string; css: string[] };
  login: { js: string; css: string[] };
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** dist/ui next to the bundled daemon (dist/), or the checkout's dist/ui when run from sources. */
export function uiDistDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.BERTH_UI_DIR, join(here, 'ui'), join(here, '..', '..', '..', 'dist', 'ui')];
  for (const c of candidates) if (c && existsSync(join(c, 'manifest.json'))) return c;
  throw new UiAssetsMissingError(`the web UI's files are missing; run "npm install" or "npm run build" (looked in ${candidates.filter(Boolean).join(', ')})`);
}

export class UiAssets {
  readonly manifest: UiManifest;
  private readonly files = new Map<string, UiAsset>();

  constructor(dir: string = uiDistDir()) {
    this.manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as UiManifest;
    const assetsDir = join(dir, 'assets');
    for (const name of readdirSync(assetsDir)) {
      if (name.endsWith('.map')) continue;
      const raw = readFileSync(join(assetsDir, name));
      const type = TYPES[extname(name)] ?? 'application/octet-stream';
      const asset: UiAsset = { type, raw };
      if (/^(text|application\/json|image\/svg)/.test(type) && raw.length > 512) {
        asset.gzip = gzipSync(raw, { level: 9 });
        asset.br = brotliCompressSync(raw, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: raw.length } });
      }
      this.files.set(`/assets/${name}`, asset);
    }
  }

  get(path: string): UiAsset | undefined {
    return this.files.get(path);
  }

  /** The app's page; `csrf` goes into a meta tag the API client reads. */
  appPage(nonce: string, csrf: string): string {
    const m = this.manifest.app;
    return page('Berth', nonce, m.css, m.js, `<meta name="berth-csrf" content="${csrf}">`, '<div id="app"></div>');
  }

  /** The sign-in page: a plain form (it works without scripts); its script only adds `#token=` sign-in. */
  loginPage(nonce: string, error?: string): string {
    const m = this.manifest.login;
    const err = error ? `<p class="login-error" role="alert">${escapeHtml(error)}</p>` : '';
    const body = `<main class="login">
<form class="login-card" method="post" action="/login" autocomplete="off">
<h1><span class="logo" aria-hidden="true">⚓</span> Berth</h1>
<p>Enter the UI token. <code>berth ui</code> prints it; it is also in the daemon's <code>&lt;exec-root&gt;/ui/token</code>, readable by root only.</p>
${err}<label for="token">Token</label>
<input id="token" name="token" type="password" required autofocus spellcheck="false">
<button type="submit">Sign in</button>
</form>
</main>`;
    return page('Sign in · Berth', nonce, m.css, m.js, '', body);
  }
}

function page(title: string, nonce: string, css: string[], js: string, meta: string, body: string): string {
  const links = css.map((c) => `<link rel="stylesheet" href="/assets/${c}">`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><meta name="berth-style-nonce" content="${nonce}">${meta}
<title>${escapeHtml(title)}</title><link rel="icon" href="data:,">${links}
<script type="module" src="/assets/${js}"></script></head>
<body>${body}</body></html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string));
}
