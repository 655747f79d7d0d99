// The image page: inspect facts, history, and the layer explorer (what each layer adds, changes and
// deletes), read from the image's `docker save` stream so it speaks only the Engine API.
import type { JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Async, ErrorBox, Facts, JsonView, Loading, PageHeader, Tabs } from '../components/ui.tsx';
import { api, handleSignedOut, useApi } from '../lib/client.ts';
import { ago, humanSize, shortId } from '../lib/format.ts';
import { pushableTags } from '../lib/images.ts';
import {
  changeTree, DEFAULT_ENTRY_CAP, diffLayers, layerHistory, readableCreatedBy, SaveArchiveReader,
  type ChangeKind, type ImageConfigHistory, type LayerChange, type LayerDiff, type TreeNode,
} from '../lib/layers.ts';
import { href } from '../lib/router.ts';
import { ImageDialogs, RemoveImageButton, type ImageDialog } from './images.tsx';
import '../styles/images.css';

interface ImageInspect {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Parent?: string;
  Comment?: string;
  Created?: string;
  Author?: string;
  Architecture?: string;
  Variant?: string;
  Os?: string;
  Size?: number;
  Config?: {
    User?: string; Env?: string[] | null; Cmd?: string[] | null; Entrypoint?: string[] | null; WorkingDir?: string;
    ExposedPorts?: Record<string, unknown> | null; Labels?: Record<string, string> | null; Volumes?: Record<string, unknown> | null;
    StopSignal?: string;
  };
  RootFS?: { Type: string; Layers?: string[] };
}

interface HistoryItem { Id: string; Created: number; CreatedBy: string; Tags?: string[] | null; Size: number; Comment: string }

const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'history', label: 'History' },
  { id: 'layers', label: 'Layers' },
];

function List({ items }: { items: string[] | null | undefined }): JSX.Element | string {
  if (!items?.length) return '';
  return <ul class="plain-list">{items.map((x) => <li key={x} class="mono">{x}</li>)}</ul>;
}

function argv(a: string[] | null | undefined): string {
  return a?.length ? JSON.stringify(a) : '';
}

function Overview({ img }: { img: ImageInspect }): JSX.Element {
  const c = img.Config ?? {};
  const labels = Object.entries(c.Labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const created = img.Created ? Date.parse(img.Created) : NaN;
  return (
    <>
      <section class="panel">
        <Facts rows={[
          ['ID', <span class="mono">{img.Id}</span>],
          ['Tags', <List items={img.RepoTags} />],
          ['Digests', <List items={img.RepoDigests} />],
          ['Created', Number.isNaN(created) ? img.Created ?? '' : <span title={img.Created}>{ago(created / 1000)} ({new Date(created).toLocaleString()})</span>],
          ['Size', img.Size !== undefined ? humanSize(img.Size) : ''],
          ['Platform', [img.Os, img.Architecture, img.Variant].filter(Boolean).join('/')],
          ['Entrypoint', <span class="mono">{argv(c.Entrypoint)}</span>],
          ['Command', <span class="mono">{argv(c.Cmd)}</span>],
          ['Working dir', <span class="mono">{c.WorkingDir ?? ''}</span>],
          ['User', <span class="mono">{c.User ?? ''}</span>],
          ['Environment', <List items={c.Env} />],
          ['Exposed ports', <List items={Object.keys(c.ExposedPorts ?? {})} />],
          ['Volumes', <List items={Object.keys(c.Volumes ?? {})} />],
          ['Labels', <List items={labels} />],
          ['Layers', String(img.RootFS?.Layers?.length ?? 0)],
          ...(img.Comment ? [['Comment', img.Comment] as [string, string]] : []),
          ...(img.Author ? [['Author', img.Author] as [string, string]] : []),
        ]} />
      </section>
      <details class="panel">
        <summary>Inspect JSON</summary>
        <JsonView value={img} />
      </details>
    </>
  );
}

function HistoryTab({ id }: { id: string }): JSX.Element {
  const h = useApi<HistoryItem[]>(`/images/${id}/history`);
  return (
    <Async state={h}>{(items) => (
      <div class="table-wrap">
        <table class="table history-table" aria-label="History" data-testid="history-table">
          <thead><tr><th>Step</th><th>Created</th><th class="num">Size</th><th>Comment</th></tr></thead>
          <tbody>
            {items.map((x, i) => {
              const step = readableCreatedBy(x.CreatedBy);
              return (
                <tr key={`${i}`} class={x.Size === 0 ? 'empty-step' : ''}>
                  <td><code class="step" title={x.CreatedBy}>{step || <span class="muted">(no command)</span>}</code>
                    {x.Tags?.length ? <div class="muted small">{x.Tags.join(', ')}</div> : null}</td>
                  <td class="nowrap" title={new Date(x.Created * 1000).toLocaleString()}>{ago(x.Created)}</td>
                  <td class="num">{humanSize(x.Size)}</td>
                  <td>{x.Comment}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    )}</Async>
  );
}

interface Explored {
  diffs: LayerDiff[];
  names: string[];
  errors: Array<string | undefined>;
  history: Array<ImageConfigHistory | undefined>;
  truncated: boolean;
  entries: number;
  bytes: number;
}

const KIND_SIGN: Record<ChangeKind, string> = { added: '+', changed: '~', deleted: '−' };

function ChangeSize({ c }: { c: LayerChange }): JSX.Element {
  if (c.kind === 'deleted') {
    return <span class="num">{humanSize(c.size)}{c.removed && c.removed > 1 ? <span class="muted"> ({c.removed} paths)</span> : null}</span>;
  }
  if (c.kind === 'changed' && c.type === 'file' && c.prevSize !== undefined && c.prevSize !== c.size) {
    return <span class="num">{humanSize(c.prevSize)} → {humanSize(c.size)}</span>;
  }
  return <span class="num">{c.type === 'file' ? humanSize(c.size) : ''}</span>;
}

function describeType(c: LayerChange): string {
  if (c.type === 'dir') return '/';
  if (c.type === 'symlink') return ` → ${c.link ?? ''}`;
  if (c.type === 'hardlink') return ` ⇒ ${c.link ?? ''}`;
  return '';
}

function ChangeLine({ c, label }: { c: LayerChange; label?: string }): JSX.Element {
  return (
    <div class={`change change-${c.kind}${c.meta ? ' change-meta' : ''}`}>
      <span class="change-kind" title={c.opaque ? 'deleted (opaque directory)' : c.meta ? 'directory listed again' : c.kind}>
        <span aria-hidden="true">{KIND_SIGN[c.kind]}</span><span class="sr-only">{c.kind}</span>
      </span>
      <span class="mono change-path">{label ?? c.path}{describeType(c)}</span>
      <ChangeSize c={c} />
    </div>
  );
}

function TreeItem({ node }: { node: TreeNode }): JSX.Element {
  const [open, setOpen] = useState(false);
  if (!node.children.length) {
    return <li>{node.change ? <ChangeLine c={node.change} label={node.name} /> : <span class="mono">{node.name}</span>}</li>;
  }
  const kind = node.change && !node.change.meta ? node.change.kind : undefined;
  return (
    <li>
      <details onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>
          <span class={`mono tree-dir${kind ? ` change-${kind}` : ''}`}>{kind ? `${KIND_SIGN[kind]} ` : ''}{node.name}/</span>
          <span class="muted"> {node.count} {node.count === 1 ? 'change' : 'changes'}{node.bytes ? `, ${humanSize(node.bytes)}` : ''}</span>
        </summary>
        {/* Children render only once opened: a layer may hold tens of thousands of paths. */}
        {open && <ul class="tree">{node.children.map((c) => <TreeItem key={c.path} node={c} />)}</ul>}
      </details>
    </li>
  );
}

const PAGE = 500;

function LayerChanges({ diff }: { diff: LayerDiff }): JSX.Element {
  const [filter, setFilter] = useState('');
  const [kinds, setKinds] = useState<Record<ChangeKind, boolean>>({ added: true, changed: true, deleted: true });
  const [dirs, setDirs] = useState(false);
  const [view, setView] = useState<'tree' | 'list'>('tree');
  const [limit, setLimit] = useState(PAGE);
  const shown = useMemo(() => {
    const q = filter.trim().toLowerCase();
    return diff.changes.filter((c) => kinds[c.kind] && (dirs || !c.meta) && (!q || c.path.toLowerCase().includes(q)));
  }, [diff, filter, kinds, dirs]);
  const tree = useMemo(() => (view === 'tree' ? changeTree(shown) : undefined), [shown, view]);
  const toggle = (k: ChangeKind) => () => setKinds({ ...kinds, [k]: !kinds[k] });
  return (
    <div class="layer-changes">
      <div class="toolbar">
        <input type="search" aria-label="Filter paths" placeholder="Filter paths" value={filter} onInput={(e) => { setFilter((e.target as HTMLInputElement).value); setLimit(PAGE); }} />
        {(['added', 'changed', 'deleted'] as ChangeKind[]).map((k) => (
          <label key={k} class="check"><input type="checkbox" checked={kinds[k]} onChange={toggle(k)} /> {k}</label>
        ))}
        <label class="check" title="Directories a layer lists again because something inside them changed"><input type="checkbox" checked={dirs} onChange={() => setDirs(!dirs)} /> re-listed directories</label>
        <span class="view-switch" role="group" aria-label="View">
          <button type="button" class={`btn btn-small${view === 'tree' ? ' btn-active' : ''}`} aria-pressed={view === 'tree'} onClick={() => setView('tree')}>Tree</button>
          <button type="button" class={`btn btn-small${view === 'list' ? ' btn-active' : ''}`} aria-pressed={view === 'list'} onClick={() => setView('list')}>List</button>
        </span>
      </div>
      {shown.length === 0 ? <p class="muted">No change matches.</p> : view === 'tree' && tree ? (
        <ul class="tree tree-root">{tree.children.map((c) => <TreeItem key={c.path} node={c} />)}</ul>
      ) : (
        <>
          <div class="change-list">{shown.slice(0, limit).map((c) => <ChangeLine key={c.path} c={c} />)}</div>
          {shown.length > limit && (
            <p><button type="button" class="btn btn-small" onClick={() => setLimit(limit + PAGE)}>Show {Math.min(PAGE, shown.length - limit)} more</button>
              <span class="muted"> ({shown.length - limit} not shown)</span></p>
          )}
        </>
      )}
    </div>
  );
}

function Totals({ d }: { d: LayerDiff }): JSX.Element {
  return (
    <span class="layer-totals">
      {(['added', 'changed', 'deleted'] as ChangeKind[]).map((k) => (
        <span key={k} class={d[k].count ? `change-${k}` : 'zero'} title={`${d[k].count} ${k}, ${humanSize(d[k].bytes)}`}>
          {KIND_SIGN[k]}{d[k].count} <span class="muted">({humanSize(d[k].bytes)})</span><span class="sr-only"> {k}</span>
        </span>
      ))}
    </span>
  );
}

function LayerCard({ i, diff, name, error, history }: { i: number; diff: LayerDiff; name: string; error?: string; history?: ImageConfigHistory }): JSX.Element {
  const [open, setOpen] = useState(false);
  const step = readableCreatedBy(history?.created_by) || history?.comment || '';
  return (
    <details class="panel layer-card" data-testid="layer" onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>
        <span class="layer-index">#{i + 1}</span>
        <span class="layer-step mono" title={history?.created_by ?? ''}>{step || <span class="muted">{shortId(name.replace(/^blobs\/sha256\//, '').replace(/\/layer\.tar$/, ''))}</span>}</span>
        <span class="layer-size">{humanSize(diff.size)}</span>
        <Totals d={diff} />
      </summary>
      {error && <p class="form-error">{error}</p>}
      <p class="muted small mono">{name}</p>
      {open && <LayerChanges diff={diff} />}
    </details>
  );
}

function LayersTab({ id, size }: { id: string; size?: number }): JSX.Element {
  const [bytes, setBytes] = useState(0);
  const [error, setError] = useState<string>();
  const [result, setResult] = useState<Explored>();
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const ctrl = new AbortController();
    const reader = new SaveArchiveReader(DEFAULT_ENTRY_CAP);
    let last = 0;
    setBytes(0);
    setError(undefined);
    setResult(undefined);
    api.stream('GET', `/images/${id}/get`, { signal: ctrl.signal }, (chunk) => {
      reader.push(chunk);
      const now = performance.now();
      if (now - last > 150) { last = now; setBytes(reader.bytes); }
    }).then(() => {
      if (ctrl.signal.aborted) return;
      const saved = reader.finish();
      setResult({
        diffs: diffLayers(saved.layers.map((l) => l.entries)),
        names: saved.layers.map((l) => l.name),
        errors: saved.layers.map((l) => l.error),
        history: layerHistory(saved.config?.history, saved.layers.length),
        truncated: saved.truncated,
        entries: saved.entries,
        bytes: saved.bytes,
      });
    }).catch((e: Error) => {
      if (ctrl.signal.aborted || handleSignedOut(e)) return;
      setError(e.message);
    });
    return () => ctrl.abort();
  }, [id, attempt]);
  if (error) return <ErrorBox error={`Reading the image's layers: ${error}`} onRetry={() => setAttempt(attempt + 1)} />;
  if (!result) {
    return (
      <div class="panel save-progress" data-testid="layers-loading">
        <Loading label={`Reading the image's layers (docker save)… ${humanSize(bytes)} read${size ? ` · the image is ${humanSize(size)} unpacked` : ''}`} />
        {/* The archive is larger than the unpacked size (a header per file), so the bar is an estimate. */}
        {size ? <progress max={size} value={Math.min(bytes, size)} aria-label="bytes read (estimate)" /> : null}
      </div>
    );
  }
  return (
    <div class="layers" data-testid="layers">
      <p class="muted">{result.diffs.length} layers · {result.entries.toLocaleString()} paths · read {humanSize(result.bytes)} from <code>GET /images/…/get</code>. Open a layer to see its files.</p>
      {result.truncated && (
        <p class="state state-error" role="alert">This image holds more than {DEFAULT_ENTRY_CAP.toLocaleString()} paths; the explorer stopped recording there, so the later layers' changes are incomplete.</p>
      )}
      {result.diffs.map((d, i) => (
        <LayerCard key={result.names[i] + i} i={i} diff={d} name={result.names[i]} error={result.errors[i]} history={result.history[i]} />
      ))}
    </div>
  );
}

export function ImagePage({ id, tab }: { id: string; tab: string }): JSX.Element {
  const img = useApi<ImageInspect>(`/images/${id}/json`);
  const [dialog, setDialog] = useState<ImageDialog>();
  const d = img.data;
  const title = d ? (d.RepoTags?.find((t) => t !== '<none>:<none>') ?? shortId(d.Id)) : shortId(id);
  const ref = d?.RepoTags?.find((t) => t !== '<none>:<none>') ?? d?.Id ?? id;
  const active = TABS.some((t) => t.id === tab) ? tab : 'overview';
  return (
    <div class="page image-page">
      <p class="crumbs"><a href="#/images">Images</a> /</p>
      <PageHeader title={<span class="mono">{title}</span>}>
        {d && (
          <>
            <button type="button" class="btn btn-primary" onClick={() => setDialog({ kind: 'run', ref })}>Run</button>
            <button type="button" class="btn" onClick={() => setDialog({ kind: 'tag', ref: d.Id })}>Tag</button>
            <button type="button" class="btn" onClick={() => setDialog({ kind: 'push', tags: pushableTags(d.RepoTags) })}>Push</button>
            <RemoveImageButton name={d.RepoTags?.length === 1 ? d.RepoTags[0] : d.Id} small={false} onDone={() => { location.hash = '#/images'; }} />
          </>
        )}
      </PageHeader>
      <Tabs tabs={TABS} active={active} hrefFor={(t) => href('images', id, t)} />
      <Async state={img}>{(data) => (
        active === 'overview' ? <Overview img={data} /> : active === 'history' ? <HistoryTab id={data.Id} /> : <LayersTab id={data.Id} size={data.Size} />
      )}</Async>
      <ImageDialogs dialog={dialog} close={() => setDialog(undefined)} reload={img.reload} />
    </div>
  );
}
