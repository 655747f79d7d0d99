// A container's files through /containers/{id}/archive: list a directory (the headers of its
// archive, data skipped), download a file (its data out of the archive) or a directory (the
// archive as is), upload files into the current directory (a tar PUT there).
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, handleSignedOut } from '../lib/client.ts';
import { baseName, breadcrumbs, DirListing, joinPath, modeString, normalizePath, parentPath, type DirEntry } from '../lib/container-files.ts';
import { humanSize } from '../lib/format.ts';
import { TarReader, writeTar } from '../lib/tar.ts';
import { act, Empty, ErrorBox, Loading, notify } from './ui.tsx';

/** Headers read before a listing is cut short (a huge subtree streams everything below it). */
const MAX_ENTRIES = 20000;

interface Listing { path: string; entries: DirEntry[]; partial: boolean; seen: number }

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function listDir(containerId: string, path: string, signal: AbortSignal): Promise<Listing> {
  const listing = new DirListing(path, MAX_ENTRIES);
  const ctrl = new AbortController();
  const stop = (): void => ctrl.abort();
  signal.addEventListener('abort', stop);
  const reader = new TarReader({ onEntry: (e) => { if (!listing.add(e)) ctrl.abort(); } });
  try {
    // A trailing slash makes the daemon follow a symlink to a directory (/lib → usr/lib).
    await api.stream('GET', `/containers/${containerId}/archive`, { query: { path: path === '/' ? '/' : `${path}/` }, signal: ctrl.signal }, (chunk) => {
      if (!ctrl.signal.aborted) reader.push(chunk);
    });
  } finally {
    signal.removeEventListener('abort', stop);
  }
  return { path, entries: listing.sorted(), partial: listing.partial, seen: listing.seen };
}

async function downloadFile(containerId: string, path: string): Promise<void> {
  const parts: Uint8Array[] = [];
  let found = false;
  const reader = new TarReader({
    onEntry: (e) => {
      if (found || e.type !== 'file') return false;
      found = true;
      return true;
    },
    onData: (_e, chunk) => { parts.push(chunk.slice()); },
  });
  await api.stream('GET', `/containers/${containerId}/archive`, { query: { path } }, (c) => reader.push(c));
  if (!found) throw new Error(`${path} is not a regular file`);
  saveBlob(new Blob(parts as BlobPart[], { type: 'application/octet-stream' }), baseName(path));
}

async function downloadDir(containerId: string, path: string): Promise<void> {
  const res = await api.request('GET', `/containers/${containerId}/archive`, { query: { path: path === '/' ? '/' : `${path}/` } });
  saveBlob(await res.blob(), `${path === '/' ? 'root' : baseName(path)}.tar`);
}

export function FileBrowser({ containerId, initialPath = '/' }: { containerId: string; initialPath?: string }): JSX.Element {
  const [path, setPath] = useState(normalizePath(initialPath));
  const [tick, setTick] = useState(0);
  const [state, setState] = useState<{ listing?: Listing; error?: string; loading: boolean }>({ loading: true });
  const [uploading, setUploading] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ listing: s.listing?.path === path ? s.listing : undefined, loading: true }));
    listDir(containerId, path, ctrl.signal).then(
      (listing) => { if (!ctrl.signal.aborted) setState({ listing, loading: false }); },
      (e: Error) => {
        if (ctrl.signal.aborted || handleSignedOut(e)) return;
        setState({ error: e.message, loading: false });
      },
    );
    return () => ctrl.abort();
  }, [containerId, path, tick]);

  const upload = async (files: FileList | null): Promise<void> => {
    if (!files?.length) return;
    setUploading(true);
    try {
      const entries = await Promise.all([...files].map(async (f) => ({ name: f.name, data: new Uint8Array(await f.arrayBuffer()), mtime: Math.floor(f.lastModified / 1000) })));
      const ok = await act('Upload', () => api.request('PUT', `/containers/${containerId}/archive`, {
        query: { path }, body: writeTar(entries), headers: { 'Content-Type': 'application/x-tar' },
      }), `Uploaded ${entries.length === 1 ? entries[0].name : `${entries.length} files`} to ${path}`);
      if (ok) setTick((n) => n + 1);
    } catch (e) {
      notify('error', `Upload: ${(e as Error).message}`);
    } finally {
      setUploading(false);
      if (fileInput.current) fileInput.current.value = '';
    }
  };

  // A link opens as a directory only if it leads to one (HEAD with a trailing slash follows it).
  const openLink = async (e: DirEntry): Promise<void> => {
    const full = joinPath(path, e.name);
    try {
      await api.request('HEAD', `/containers/${containerId}/archive`, { query: { path: `${full}/` } });
      setPath(full);
    } catch (err) {
      if (handleSignedOut(err)) return;
      const status = (err as { status?: number }).status;
      notify('error', status === 400 ? `${full} → ${e.linkname} is not a directory` : status === 404 ? `${full} → ${e.linkname}: the target does not exist` : `${full}: ${(err as Error).message}`);
    }
  };

  const { listing } = state;
  return (
    <div class="file-browser" data-testid="file-browser">
      <div class="toolbar">
        <nav class="breadcrumb" aria-label="Path" data-testid="file-path">
          {breadcrumbs(path).map((c, i, all) => (
            <span key={c.path}>
              {i > 1 && <span class="crumb-sep" aria-hidden="true">/</span>}
              {i === all.length - 1
                ? <span class="crumb-current" aria-current="location">{c.name}</span>
                : <button type="button" class="crumb" onClick={() => setPath(c.path)}>{c.name}</button>}
            </span>
          ))}
        </nav>
        <span class="toolbar-spacer" />
        <button type="button" class="btn btn-small" onClick={() => setTick((n) => n + 1)}>Refresh</button>
        <button type="button" class="btn btn-small" onClick={() => act('Download', () => downloadDir(containerId, path))}>Download directory</button>
        <label class={`btn btn-small btn-primary file-upload ${uploading ? 'is-busy' : ''}`}>
          {uploading ? 'Uploading…' : 'Upload files'}
          <input ref={fileInput} type="file" multiple class="sr-only" aria-label="Upload files" data-testid="file-upload" disabled={uploading}
            onChange={(e) => void upload((e.target as HTMLInputElement).files)} />
        </label>
      </div>
      {state.error && <ErrorBox error={state.error} onRetry={() => setTick((n) => n + 1)} />}
      {state.error && path !== '/' && <p><button type="button" class="btn btn-small" onClick={() => setPath(parentPath(path))}>Go up</button></p>}
      {!listing && state.loading && <Loading label={`Reading ${path}…`} />}
      {listing && listing.partial && (
        <div class="state state-warn" role="status">Partial listing: the scan stopped after {listing.seen.toLocaleString()} archive entries (this directory's subtree is large). Open a subdirectory to see more.</div>
      )}
      {listing && listing.entries.length === 0 && !state.loading && <Empty>{path} is empty.</Empty>}
      {listing && (listing.entries.length > 0 || path !== '/') && (
        <div class="table-wrap">
          <table class="table files-table" aria-label={`Files in ${path}`} aria-busy={state.loading} data-testid="files-table">
            <thead><tr><th>Name</th><th class="num">Size</th><th>Mode</th><th>Modified</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {path !== '/' && (
                <tr><td colSpan={5}><button type="button" class="link-button" onClick={() => setPath(parentPath(path))}>⬑ ..</button></td></tr>
              )}
              {listing.entries.map((e) => {
                const full = joinPath(path, e.name);
                return (
                  <tr key={e.name} data-name={e.name}>
                    <td class="file-name">
                      <span class={`file-type file-type-${e.type}`} title={e.type}>{e.type === 'dir' ? 'dir' : e.type === 'symlink' ? 'link' : e.type === 'file' ? '' : e.type}</span>
                      {e.type === 'dir' || e.type === 'symlink'
                        ? <button type="button" class="link-button" onClick={() => (e.type === 'symlink' ? void openLink(e) : setPath(full))}
                          title={e.type === 'symlink' ? 'Open (if it points to a directory)' : undefined}>{e.name}</button>
                        : <span>{e.name}</span>}
                      {e.linkname && <span class="muted mono"> → {e.linkname}</span>}
                    </td>
                    <td class="num">{e.type === 'file' ? humanSize(e.size) : ''}</td>
                    <td class="mono">{modeString(e.type, e.mode)}</td>
                    <td title={new Date(e.mtime * 1000).toISOString()}>{new Date(e.mtime * 1000).toLocaleString()}</td>
                    <td><div class="row-actions">
                      {e.type === 'file' && <button type="button" class="btn btn-small" aria-label={`Download ${e.name}`} onClick={() => act('Download', () => downloadFile(containerId, full))}>Download</button>}
                      {e.type === 'dir' && <button type="button" class="btn btn-small" aria-label={`Download ${e.name} as tar`} onClick={() => act('Download', () => downloadDir(containerId, full))}>Download .tar</button>}
                    </div></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
