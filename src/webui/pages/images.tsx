// Images: the list (`docker images`), search, intermediate images, and the actions: pull and push
// with live per-layer progress, tag, remove (with the daemon's conflict message and a forced retry),
// and run. The dialogs are exported for the image page.
import type { JSX } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { PullProgressView } from '../components/pull-progress.tsx';
import { RunForm } from '../components/run-form.tsx';
import { Async, ConfirmButton, Empty, Modal, notify, PageHeader } from '../components/ui.tsx';
import { ApiError, type Query } from '../lib/api.ts';
import { api, handleSignedOut, useApi } from '../lib/client.ts';
import { ago, humanSize, shortId } from '../lib/format.ts';
import { EMPTY_REGISTRY_AUTH, filterRows, imageRows, pullQuery, pushableTags, splitRepoTag, type ImageSummary } from '../lib/images.ts';
import { href } from '../lib/router.ts';
import { JsonStreamDecoder, PullProgress, type JsonMessage } from '../lib/streams.ts';
import '../styles/images.css';

interface ProgressRun {
  progress?: PullProgress;
  running: boolean;
  /** The stream's error or the request's (the daemon's message). */
  error?: string;
  /** Set when the stream ended without an error. */
  ok?: boolean;
  start: (path: string, query: Query, headers?: Record<string, string>) => Promise<boolean>;
  cancel: () => void;
}

/** A POST whose answer is docker's JSON progress stream, drawn as it comes (at most once a frame). */
function useProgressStream(): ProgressRun {
  const [, setTick] = useState(0);
  const state = useRef<{ progress?: PullProgress; running: boolean; error?: string; ok?: boolean; ctrl?: AbortController }>({ running: false });
  const frame = useRef(0);
  const redraw = (): void => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => { frame.current = 0; setTick((n) => n + 1); });
  };
  const start = async (path: string, query: Query, headers?: Record<string, string>): Promise<boolean> => {
    const progress = new PullProgress();
    const ctrl = new AbortController();
    state.current = { progress, running: true, ctrl };
    setTick((n) => n + 1);
    const dec = new JsonStreamDecoder<JsonMessage>();
    try {
      await api.stream('POST', path, { query, headers, signal: ctrl.signal }, (chunk) => {
        for (const m of dec.push(chunk)) progress.apply(m);
        redraw();
      });
      for (const m of dec.end()) progress.apply(m);
      if (ctrl.signal.aborted) state.current = { progress, running: false, error: 'Cancelled (the daemon may finish the transfer in the background).' };
      else state.current = { progress, running: false, error: progress.error, ok: !progress.error };
    } catch (e) {
      if (handleSignedOut(e)) return false;
      state.current = { progress, running: false, error: ctrl.signal.aborted ? 'Cancelled.' : (e as Error).message };
    }
    setTick((n) => n + 1);
    return state.current.ok === true;
  };
  const s = state.current;
  return { progress: s.progress, running: s.running, error: s.error, ok: s.ok, start, cancel: () => s.ctrl?.abort() };
}

function ProgressResult({ run, okText }: { run: ProgressRun; okText: string }): JSX.Element | null {
  if (run.running || (!run.ok && !run.error)) return null;
  // The stream's own error is already in the progress view; a request error is not.
  if (run.error && run.error !== run.progress?.error) return <p class="form-error" role="alert">{run.error}</p>;
  if (run.ok) return <p class="result-ok" role="status" data-testid="transfer-result">{okText}</p>;
  return null;
}

export function PullDialog({ onClose, onDone, initial = '' }: { onClose: () => void; onDone: () => void; initial?: string }): JSX.Element {
  const [ref, setRef] = useState(initial);
  const [formError, setFormError] = useState<string>();
  const [pulled, setPulled] = useState('');
  const run = useProgressStream();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setFormError(undefined);
    let q;
    try { q = pullQuery(ref); } catch (err) { setFormError((err as Error).message); return; }
    const name = q.tag.startsWith('sha256:') ? `${q.fromImage}@${q.tag}` : `${q.fromImage}:${q.tag}`;
    setPulled(name);
    if (await run.start('/images/create', q)) onDone();
  };
  const status = run.progress?.lines.filter((l) => l.startsWith('Status:')).pop();
  return (
    <Modal title="Pull an image" onClose={() => { if (run.running) run.cancel(); onClose(); }} wide>
      <form class="form" onSubmit={submit}>
        <label>Image
          <input name="pull-ref" required value={ref} autofocus placeholder="busybox:latest or 127.0.0.1:5000/app:1.0" autoComplete="off" spellcheck={false}
            onInput={(e) => setRef((e.target as HTMLInputElement).value)} disabled={run.running} />
        </label>
        {formError && <p class="form-error" role="alert">{formError}</p>}
        {run.progress && <PullProgressView progress={run.progress} />}
        <ProgressResult run={run} okText={status ? status.replace(/^Status: /, '') : `Pulled ${pulled}`} />
        <div class="form-actions">
          {run.running
            ? <button type="button" class="btn" onClick={run.cancel}>Cancel</button>
            : <button type="button" class="btn" onClick={onClose}>{run.ok ? 'Close' : 'Cancel'}</button>}
          <button type="submit" class="btn btn-primary" disabled={run.running} aria-busy={run.running}>{run.running ? 'Pulling…' : 'Pull'}</button>
        </div>
      </form>
    </Modal>
  );
}

export function TagDialog({ source, onClose, onDone }: { source: string; onClose: () => void; onDone: () => void }): JSX.Element {
  const [target, setTarget] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    const t = target.trim();
    if (!t) { setError('Enter the new name, e.g. 127.0.0.1:5000/app:1.0'); return; }
    const { repo, tag } = splitRepoTag(t);
    setBusy(true);
    try {
      await api.post(`/images/${source}/tag`, undefined, { repo, tag: tag || 'latest' });
      notify('ok', `Tagged ${shortName(source)} as ${repo}:${tag || 'latest'}`);
      onDone();
    } catch (err) {
      if (!handleSignedOut(err)) setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title={`Tag ${shortName(source)}`} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label>New name (repository:tag)
          <input name="tag-target" required value={target} autofocus autoComplete="off" spellcheck={false} placeholder="127.0.0.1:5000/app:1.0"
            onInput={(e) => setTarget((e.target as HTMLInputElement).value)} />
        </label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>Cancel</button>
          <button type="submit" class="btn btn-primary" disabled={busy}>Tag</button>
        </div>
      </form>
    </Modal>
  );
}

export function PushDialog({ tags, initial, onClose }: { tags: string[]; initial?: string; onClose: () => void }): JSX.Element {
  const [choice, setChoice] = useState(initial && tags.includes(initial) ? initial : tags[0] ?? '');
  const run = useProgressStream();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const { repo, tag } = splitRepoTag(choice);
    await run.start(`/images/${repo}/push`, { tag: tag || 'latest' }, { 'X-Registry-Auth': EMPTY_REGISTRY_AUTH });
  };
  const digest = run.progress?.digest;
  return (
    <Modal title="Push an image" onClose={() => { if (run.running) run.cancel(); onClose(); }} wide>
      {tags.length === 0 ? (
        <>
          <p>This image has no repository:tag name to push. Tag it first (e.g. <code>127.0.0.1:5000/app:1.0</code>).</p>
          <div class="form-actions"><button type="button" class="btn" onClick={onClose}>Close</button></div>
        </>
      ) : (
        <form class="form" onSubmit={submit}>
          <label>Tag to push
            <select name="push-tag" value={choice} disabled={run.running} onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}>
              {tags.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          </label>
          <p class="muted small">Pushes to the registry named in the tag (Docker Hub when it names none). The UI sends no registry credentials.</p>
          {run.progress && <PullProgressView progress={run.progress} />}
          <ProgressResult run={run} okText={`Pushed ${choice}${digest ? ` (${digest})` : ''}`} />
          <div class="form-actions">
            {run.running
              ? <button type="button" class="btn" onClick={run.cancel}>Cancel</button>
              : <button type="button" class="btn" onClick={onClose}>{run.ok ? 'Close' : 'Cancel'}</button>}
            <button type="submit" class="btn btn-primary" disabled={run.running || !choice} aria-busy={run.running}>{run.running ? 'Pushing…' : 'Push'}</button>
          </div>
        </form>
      )}
    </Modal>
  );
}

function shortName(ref: string): string {
  return ref.startsWith('sha256:') ? shortId(ref) : ref;
}

/**
 * Remove, asking first; when the daemon refuses (a container uses the image, or the image has
 * several names and was named by ID) its message is shown with an offer to force.
 */
export function RemoveImageButton({ name, onDone, small = true }: { name: string; onDone: () => void; small?: boolean }): JSX.Element {
  const [conflict, setConflict] = useState<string>();
  const [forcing, setForcing] = useState(false);
  const remove = async (force: boolean): Promise<void> => {
    try {
      const out = await api.del<Array<{ Untagged?: string; Deleted?: string }>>(`/images/${name}`, { force });
      const deleted = (out ?? []).filter((x) => x.Deleted).length;
      const untagged = (out ?? []).filter((x) => x.Untagged).length;
      notify('ok', deleted ? `Removed ${shortName(name)} (${deleted} deleted${untagged ? `, ${untagged} untagged` : ''})` : `Untagged ${shortName(name)}`);
      setConflict(undefined);
      onDone();
    } catch (e) {
      if (handleSignedOut(e)) return;
      if (e instanceof ApiError && e.status === 409) {
        if (!force) {
          setConflict(e.message);
        } else {
          // A refused forced removal may still have untagged the image, and this row may go with
          // the reload: the message goes to a toast, which outlives it.
          setConflict(undefined);
          notify('error', `Remove: ${e.message}`);
          onDone();
        }
      } else {
        setConflict(undefined);
        notify('error', `Remove: ${(e as Error).message}`);
      }
    }
  };
  return (
    <>
      <ConfirmButton small={small} label="Remove" confirmLabel="Remove"
        question={name.startsWith('sha256:') ? `Remove image ${shortId(name)}?` : `Remove ${name}? The image is deleted when no other tag names it.`}
        onConfirm={() => remove(false)} />
      {conflict && (
        <Modal title="The daemon refused to remove the image" onClose={() => setConflict(undefined)}>
          <p class="form-error daemon-message" role="alert" data-testid="remove-conflict">{conflict}</p>
          <p>Remove it anyway, as <code>docker rmi --force</code> does?</p>
          <div class="form-actions">
            <button type="button" class="btn" onClick={() => setConflict(undefined)}>Cancel</button>
            <button type="button" class="btn btn-danger" disabled={forcing}
              onClick={async () => { setForcing(true); try { await remove(true); } finally { setForcing(false); } }}>Force remove</button>
          </div>
        </Modal>
      )}
    </>
  );
}

type Dialog = { kind: 'pull' } | { kind: 'tag'; ref: string } | { kind: 'push'; tags: string[]; initial?: string } | { kind: 'run'; ref: string };

export function ImageDialogs({ dialog, close, reload }: { dialog?: Dialog; close: () => void; reload: () => void }): JSX.Element | null {
  if (!dialog) return null;
  switch (dialog.kind) {
    case 'pull': return <PullDialog onClose={() => { close(); reload(); }} onDone={reload} />;
    case 'tag': return <TagDialog source={dialog.ref} onClose={close} onDone={() => { close(); reload(); }} />;
    case 'push': return <PushDialog tags={dialog.tags} initial={dialog.initial} onClose={close} />;
    case 'run': return <RunForm image={dialog.ref} onClose={close} onStarted={(id) => { close(); location.hash = href('containers', id); }} />;
  }
}

export type { Dialog as ImageDialog };

export function ImagesPage(): JSX.Element {
  const [search, setSearch] = useState('');
  const [all, setAll] = useState(false);
  const [dialog, setDialog] = useState<Dialog>();
  const list = useApi<ImageSummary[]>('/images/json', { all }, { refreshMs: 10000 });
  const rows = useMemo(() => imageRows(list.data ?? []), [list.data]);
  const shown = useMemo(() => filterRows(rows, search), [rows, search]);
  const total = useMemo(() => (list.data ?? []).reduce((n, i) => n + (i.Size > 0 ? i.Size : 0), 0), [list.data]);
  const now = Date.now();
  return (
    <div class="page images-page">
      <PageHeader title="Images">
        <button type="button" class="btn btn-primary" onClick={() => setDialog({ kind: 'pull' })}>Pull</button>
      </PageHeader>
      <div class="toolbar" role="search">
        <input type="search" placeholder="Search repository, tag or ID" aria-label="Search images" value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <label class="check"><input type="checkbox" name="all" checked={all} onChange={(e) => setAll((e.target as HTMLInputElement).checked)} /> Show intermediate images</label>
        <span class="muted">{list.data ? `${shown.length} of ${rows.length} · ${humanSize(total)}` : ''}</span>
      </div>
      <Async state={list}>{() => (shown.length === 0 ? (
        <Empty>{rows.length ? 'No image matches.' : <>No images yet. <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: 'pull' })}>Pull one</button></>}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table images-table" aria-label="Images" data-testid="images-table">
            <thead><tr><th>Repository</th><th>Tag</th><th class="hide-sm">Image ID</th><th class="hide-sm">Created</th><th class="num">Size</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.key} data-ref={r.ref}>
                  <td class="ellipsis" title={r.repository}><a href={href('images', r.id)} class={r.dangling ? 'muted' : ''}>{r.repository}</a></td>
                  <td class={r.tag === '<none>' ? 'muted' : ''}>{r.tag}</td>
                  <td class="mono hide-sm">{shortId(r.id)}</td>
                  <td class="hide-sm" title={new Date(r.created * 1000).toLocaleString()}>{ago(r.created, now)}</td>
                  <td class="num">{humanSize(r.size)}</td>
                  <td>
                    <div class="row-actions">
                      <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: 'run', ref: r.ref })}>Run</button>
                      <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: 'tag', ref: r.ref })}>Tag</button>
                      <button type="button" class="btn btn-small" onClick={() => setDialog({ kind: 'push', tags: pushableTags(r.image.RepoTags), initial: r.ref })}>Push</button>
                      <RemoveImageButton name={r.ref} onDone={list.reload} />
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}</Async>
      <ImageDialogs dialog={dialog} close={() => setDialog(undefined)} reload={list.reload} />
    </div>
  );
}
