// The page's one API client, configured from the page (CSRF token from the server's meta tag),
// plus hooks the pages use to load data with loading and error states.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiClient, SignedOutError, type Query } from './api.ts';

function meta(name: string): string {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';
}

export const api = new ApiClient({ base: '/api', csrf: meta('berth-csrf') });

/** The session is gone (daemon restarted): back to the sign-in page. */
export function handleSignedOut(e: unknown): boolean {
  if (e instanceof SignedOutError) {
    location.assign('/login');
    return true;
  }
  return false;
}

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/** GETs `path` (again when `deps` change, or every `refreshMs`); keeps the last data while reloading. */
export function useApi<T>(path: string | null, query?: Query, opts: { refreshMs?: number; deps?: unknown[] } = {}): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: path !== null });
  const [tick, setTick] = useState(0);
  const qs = JSON.stringify(query ?? {});
  const alive = useRef(true);
  useEffect(() => () => { alive.current = false; }, []);
  useEffect(() => {
    if (path === null) return;
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api.get<T>(path, query, ctrl.signal).then(
      (data) => { if (alive.current && !ctrl.signal.aborted) setState({ data, loading: false }); },
      (e: Error) => {
        if (ctrl.signal.aborted || handleSignedOut(e)) return;
        if (alive.current) setState((s) => ({ data: s.data, error: e.message, loading: false }));
      },
    );
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, qs, tick, ...(opts.deps ?? [])]);
  useEffect(() => {
    if (!opts.refreshMs) return;
    const t = setInterval(() => { if (document.visibilityState === 'visible') setTick((n) => n + 1); }, opts.refreshMs);
    return () => clearInterval(t);
  }, [opts.refreshMs]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

/** Runs a streaming GET/POST while mounted; `onChunk` gets raw bytes. Returns the stream's error, if any. */
export function useStream(path: string | null, query: Query | undefined, onChunk: (c: Uint8Array) => void, deps: unknown[] = []): string | undefined {
  const [error, setError] = useState<string>();
  const handler = useRef(onChunk);
  handler.current = onChunk;
  const qs = JSON.stringify(query ?? {});
  useEffect(() => {
    if (path === null) return;
    const ctrl = new AbortController();
    setError(undefined);
    api.stream('GET', path, { query, signal: ctrl.signal }, (c) => handler.current(c)).catch((e: Error) => {
      if (ctrl.signal.aborted || handleSignedOut(e)) return;
      setError(e.message);
    });
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, qs, ...deps]);
  return error;
}
