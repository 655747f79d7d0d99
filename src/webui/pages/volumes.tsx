// Volumes: list (with sizes and users from /system/df), search, create, inspect, remove, prune.
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { Async, ConfirmButton, Empty, JsonView, Modal, notify, PageHeader } from '../components/ui.tsx';
import { api, handleSignedOut, useApi } from '../lib/client.ts';
import { ago, humanSize, shortId } from '../lib/format.ts';
import { inUseBy, matches, volumeCreateBody, type VolumeFields } from '../lib/resources.ts';
import { href } from '../lib/router.ts';
import '../styles/build.css';

export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  Scope?: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

function Labels({ labels }: { labels?: Record<string, string> | null }): JSX.Element | null {
  const entries = Object.entries(labels ?? {});
  if (!entries.length) return null;
  return <div class="labels">{entries.map(([k, v]) => <span key={k} class="badge" title={`${k}=${v}`}>{v ? `${k}=${v}` : k}</span>)}</div>;
}

function CreateVolume({ onClose, onCreated }: { onClose: () => void; onCreated: (name: string) => void }): JSX.Element {
  const [f, setF] = useState<VolumeFields>({ driver: 'local' });
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof VolumeFields) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const v = await api.post<Volume>('/volumes/create', volumeCreateBody(f));
      onCreated(v.Name);
    } catch (err) {
      if (!handleSignedOut(err)) setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Create a volume" onClose={onClose}>
      <form class="form" onSubmit={submit} aria-label="Create a volume">
        <label>Name<input name="name" value={f.name ?? ''} onInput={set('name')} placeholder="optional: a random name otherwise" autofocus /></label>
        <label>Driver<input name="driver" value={f.driver ?? ''} onInput={set('driver')} /></label>
        <label>Labels<textarea name="labels" rows={2} value={f.labels ?? ''} onInput={set('labels')} placeholder="key=value (one per line)" /></label>
        <label>Driver options<textarea name="opts" rows={2} value={f.opts ?? ''} onInput={set('opts')} placeholder="key=value (one per line), e.g. type=tmpfs" /></label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>Cancel</button>
          <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? 'Creating…' : 'Create'}</button>
        </div>
      </form>
    </Modal>
  );
}

function PruneVolumes({ onClose, onDone }: { onClose: () => void; onDone: () => void }): JSX.Element {
  const [all, setAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>();
  const [error, setError] = useState<string>();
  const prune = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      // Since API 1.42 prune removes anonymous volumes only unless all=true (docker volume prune --all).
      const r = await api.post<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('/volumes/prune', undefined, { filters: all ? { all: ['true'] } : undefined });
      setResult(r);
      onDone();
    } catch (err) {
      if (!handleSignedOut(err)) setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Prune unused volumes" onClose={onClose}>
      {result ? (
        <div data-testid="prune-result">
          <p>Removed {result.VolumesDeleted?.length ?? 0} volume{result.VolumesDeleted?.length === 1 ? '' : 's'}; reclaimed {humanSize(result.SpaceReclaimed)}.</p>
          {!!result.VolumesDeleted?.length && <ul class="mono">{result.VolumesDeleted.map((v) => <li key={v}>{v}</li>)}</ul>}
          <div class="form-actions"><button type="button" class="btn btn-primary" onClick={onClose} autofocus>Close</button></div>
        </div>
      ) : (
        <div class="form">
          <p>Remove every volume that no container uses? Their data is lost.</p>
          <label class="check"><input type="checkbox" name="all" checked={all} onChange={(e) => setAll((e.target as HTMLInputElement).checked)} /> Named volumes too (otherwise only anonymous ones)</label>
          {error && <p class="form-error" role="alert">{error}</p>}
          <div class="form-actions">
            <button type="button" class="btn" onClick={onClose}>Cancel</button>
            <button type="button" class="btn btn-danger" disabled={busy} onClick={prune}>{busy ? 'Pruning…' : 'Prune'}</button>
          </div>
        </div>
      )}
    </Modal>
  );
}

function Inspect({ name }: { name: string }): JSX.Element {
  const v = useApi<Volume>(`/volumes/${encodeURIComponent(name)}`);
  return <Async state={v}>{(data) => <JsonView value={data} />}</Async>;
}

export function VolumesPage(): JSX.Element {
  const list = useApi<{ Volumes: Volume[] | null; Warnings?: string[] | null }>('/volumes', undefined, { refreshMs: 5000 });
  // Sizes are computed by walking the volumes: asked for less often, and optional (a daemon without it still lists).
  const df = useApi<{ Volumes?: Volume[] | null }>('/system/df', { type: 'volume' }, { refreshMs: 30000 });
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [pruning, setPruning] = useState(false);
  const [open, setOpen] = useState<string>();
  const [conflict, setConflict] = useState<{ name: string; message: string }>();
  const usage = useMemo(() => new Map((df.data?.Volumes ?? []).map((v) => [v.Name, v.UsageData])), [df.data]);
  const all = list.data?.Volumes ?? [];
  const shown = useMemo(() => all.filter((v) => matches(search, v.Name, v.Driver, v.Mountpoint, v.Labels)).sort((a, b) => a.Name.localeCompare(b.Name)), [list.data, search]);
  const reload = (): void => { list.reload(); df.reload(); };
  const now = Date.now();

  const remove = async (name: string): Promise<void> => {
    setConflict(undefined);
    try {
      await api.del(`/volumes/${encodeURIComponent(name)}`);
      notify('ok', `Removed volume ${name}`);
      if (open === name) setOpen(undefined);
      reload();
    } catch (err) {
      if (handleSignedOut(err)) return;
      setConflict({ name, message: (err as Error).message });
    }
  };

  return (
    <div class="page">
      <PageHeader title="Volumes">
        <button type="button" class="btn" onClick={() => setPruning(true)}>Prune unused…</button>
        <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>Create volume</button>
      </PageHeader>
      <div class="toolbar" role="search">
        <input type="search" placeholder="Search name, driver, label" aria-label="Search volumes" value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <span class="muted">{list.data ? `${shown.length} of ${all.length}` : ''}</span>
      </div>
      {conflict && (
        <div class="state state-error" role="alert" data-testid="volume-remove-error">
          <strong>Cannot remove {conflict.name}</strong> <span class="error-message">{conflict.message}</span>
          {inUseBy(conflict.message).map((id) => <a key={id} href={href('containers', id)}>container {shortId(id)}</a>)}
          <button type="button" class="btn btn-small" onClick={() => setConflict(undefined)}>Dismiss</button>
        </div>
      )}
      {list.data?.Warnings?.map((w) => <div key={w} class="state state-error" role="status">{w}</div>)}
      <Async state={list}>{() => (shown.length === 0 ? (
        <Empty>{all.length ? 'No volume matches.' : <>No volumes yet. <button type="button" class="btn btn-small" onClick={() => setCreating(true)}>Create one</button></>}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table stack-sm" aria-label="Volumes" data-testid="volumes-table">
            <thead><tr><th>Name</th><th>Driver</th><th class="hide-sm">Mountpoint</th><th class="hide-sm">Created</th><th>Labels</th><th class="num">Size</th><th class="num">Used by</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {shown.map((v) => {
                const u = usage.get(v.Name);
                const isOpen = open === v.Name;
                return [
                  <tr key={v.Name} data-volume={v.Name}>
                    <td class="mono ellipsis" title={v.Name}>{v.Name}</td>
                    <td>{v.Driver}</td>
                    <td class="mono ellipsis hide-sm mountpoint" title={v.Mountpoint}>{v.Mountpoint}</td>
                    <td class="hide-sm nowrap" title={v.CreatedAt ? new Date(v.CreatedAt).toLocaleString() : undefined}>{v.CreatedAt ? ago(Date.parse(v.CreatedAt) / 1000, now) : ''}</td>
                    <td><Labels labels={v.Labels} /></td>
                    <td class="num">{u && u.Size >= 0 ? humanSize(u.Size) : df.loading && !df.data ? '…' : '—'}</td>
                    <td class="num">{u && u.RefCount >= 0 ? u.RefCount : '—'}</td>
                    <td>
                      <div class="row-actions">
                        <button type="button" class="btn btn-small" aria-expanded={isOpen} aria-controls={`vol-${v.Name}`} onClick={() => setOpen(isOpen ? undefined : v.Name)}>{isOpen ? 'Hide' : 'Inspect'}</button>
                        <ConfirmButton small label="Remove" confirmLabel="Remove" question={`Remove the volume ${v.Name}? Its data is lost.`} onConfirm={() => remove(v.Name)} />
                      </div>
                    </td>
                  </tr>,
                  isOpen && (
                    <tr key={`${v.Name}-detail`} class="detail-row" id={`vol-${v.Name}`}>
                      <td colSpan={8}><div class="detail-cell"><Inspect name={v.Name} /></div></td>
                    </tr>
                  ),
                ];
              })}
            </tbody>
          </table>
        </div>
      ))}</Async>
      {df.error && list.data && <p class="muted">Sizes unavailable: {df.error}</p>}
      {creating && <CreateVolume onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); notify('ok', `Created volume ${name}`); reload(); }} />}
      {pruning && <PruneVolumes onClose={() => setPruning(false)} onDone={reload} />}
    </div>
  );
}
