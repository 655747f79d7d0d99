// Hash routing (#/containers/abc/logs): the server serves one page, so deep links and reloads
// work without a server route per page.
import { useEffect, useMemo, useState } from 'preact/hooks';

export interface Route {
  /** Path segments after '#/' (decoded). */
  parts: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = q < 0 ? h : h.slice(0, q);
  return {
    parts: path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } }),
    query: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)),
  };
}

export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

export function navigate(...parts: string[]): void {
  location.hash = href(...parts);
}

export function useRoute(): Route {
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    // Effects run after the first paint: a hash that changed before this listener existed
    // (a link followed while the page was still starting) is read now.
    on();
    return () => removeEventListener('hashchange', on);
  }, []);
  return useMemo(() => parseHash(hash), [hash]);
}
