// Build: a pasted Dockerfile (with files added beside it) or an uploaded context archive, sent to
// POST /build; the classic builder's log streams in live, step by step, cache hits marked.
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { PageHeader } from '../components/ui.tsx';
import { api, handleSignedOut } from '../lib/client.ts';
import { archiveKind, buildQuery, contextFromDockerfile, splitReference } from '../lib/build-context.ts';
import { BuildLog, type BuildStep } from '../lib/build-log.ts';
import { humanSize, shortId } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { JsonStreamDecoder, type JsonMessage } from '../lib/streams.ts';
import '../styles/build.css';

type Source = 'dockerfile' | 'archive';
type Phase = 'idle' | 'sending' | 'building' | 'done' | 'failed' | 'cancelled';

interface Form {
  source: Source;
  dockerfile: string;
  files: File[];
  archive?: File;
  dockerfilePath: string;
  tag: string;
  buildArgs: string;
  target: string;
  nocache: boolean;
  pull: boolean;
  forcerm: boolean;
}

const EXAMPLE = 'FROM busybox\nRUN echo "hello from the build" > /hello\nCMD ["cat", "/hello"]\n';

// The form and the last build survive leaving the page and coming back (kept for the session's tab).
let savedForm: Form = { source: 'dockerfile', dockerfile: '', files: [], dockerfilePath: 'Dockerfile', tag: '', buildArgs: '', target: '', nocache: false, pull: false, forcerm: true };
type Run = { log: BuildLog; phase: Phase; message?: string; seq: number };
let savedRun: Run | undefined;
let builds = 0;
// A build outlives the page's component (leave and come back while it runs): its progress is
// published here, and whichever BuildPage is mounted draws it.
const runListeners = new Set<(r: Run | undefined, now: boolean) => void>();
function publish(r: Run | undefined, now = true): void {
  savedRun = r;
  for (const l of runListeners) l(r, now);
}
/** The running build's cancel switch (module-wide too, so Cancel works after coming back). */
let buildCtrl: AbortController | undefined;

async function readFile(f: File): Promise<Uint8Array> {
  return new Uint8Array(await f.arrayBuffer());
}

function StepView({ step, failed }: { step: BuildStep; failed: boolean }): JSX.Element {
  return (
    <div class={`build-step${step.cached ? ' build-step-cached' : ''}${failed ? ' build-step-failed' : ''}`} data-step={step.index} data-cached={step.cached ? '' : undefined}>
      <div class="build-step-head">
        <span class="build-step-no">Step {step.index}/{step.total}</span>
        <span class="build-step-instr">{step.instruction}</span>
        {step.cached && <span class="badge badge-cached" title="This step's result came from the build cache">CACHED</span>}
        {failed && <span class="badge badge-exited">FAILED</span>}
      </div>
      {step.lines.length > 0 && <div class="build-step-lines">{step.lines.join('\n')}</div>}
    </div>
  );
}

export function BuildPage(): JSX.Element {
  const [f, setF] = useState<Form>(savedForm);
  const [run, setRun] = useState(savedRun);
  const [formError, setFormError] = useState<string>();
  const logBox = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const frame = useRef(0);

  useEffect(() => { savedForm = f; }, [f]);
  useEffect(() => {
    // Chunks mutate the same BuildLog: a new object per frame makes Preact draw it.
    const on = (r: Run | undefined, now: boolean): void => {
      if (now) {
        cancelAnimationFrame(frame.current);
        frame.current = 0;
        setRun(r);
        return;
      }
      if (frame.current) return;
      frame.current = requestAnimationFrame(() => { frame.current = 0; setRun(savedRun && { ...savedRun }); });
    };
    runListeners.add(on);
    return () => { runListeners.delete(on); };
  }, []);
  // Leaving the page does not cancel a build: the daemon keeps building, and the log keeps
  // being read so coming back shows it. Only the Cancel button stops it.
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  useEffect(() => {
    const box = logBox.current;
    if (box && stick.current) box.scrollTop = box.scrollHeight;
  });

  const set = <K extends keyof Form>(k: K, v: Form[K]): void => setF((old) => ({ ...old, [k]: v }));
  const running = run?.phase === 'sending' || run?.phase === 'building';

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (running) return;
    setFormError(undefined);
    // The previous build's output goes at once, so what shows is never stale.
    const log = new BuildLog();
    const state: Run = { log, phase: 'sending', seq: ++builds };
    const c = new AbortController();
    buildCtrl = c;
    stick.current = true;
    publish({ ...state });
    let body: Uint8Array | Blob;
    let query;
    let tags: string[];
    try {
      ({ query, tags } = buildQuery({ tag: f.tag, dockerfile: f.source === 'archive' ? f.dockerfilePath : 'Dockerfile', nocache: f.nocache, pull: f.pull, forcerm: f.forcerm, buildArgs: f.buildArgs, target: f.target }));
      if (f.source === 'dockerfile') {
        const files = await Promise.all(f.files.map(async (file) => ({ name: file.name, data: await readFile(file) })));
        body = contextFromDockerfile(f.dockerfile, files);
      } else {
        if (!f.archive) throw new Error('choose a context archive (.tar, .tar.gz) to upload');
        const kind = archiveKind(new Uint8Array(await f.archive.slice(0, 512).arrayBuffer()));
        if (kind === 'unknown') throw new Error(`${f.archive.name} is not a tar archive (plain, gzip, bzip2, xz or zstd)`);
        body = f.archive;
      }
    } catch (err) {
      buildCtrl = undefined;
      publish(undefined);
      setFormError((err as Error).message);
      return;
    }
    const update = (patch: Partial<Run>): void => { Object.assign(state, patch); publish({ ...state }); };
    const dec = new JsonStreamDecoder<JsonMessage>();
    try {
      await api.stream('POST', '/build', { query, body, headers: { 'Content-Type': 'application/x-tar' }, signal: c.signal }, (chunk) => {
        if (state.phase === 'sending') update({ phase: 'building' });
        for (const m of dec.push(chunk)) log.apply(m);
        publish(savedRun, false);
      });
      for (const m of dec.end()) log.apply(m);
      log.end();
      if (c.signal.aborted) { update({ phase: 'cancelled' }); return; }
      if (log.error) { update({ phase: 'failed' }); return; }
      if (!log.imageId) { update({ phase: 'failed', message: 'the build ended without an image (the connection to the daemon was cut?)' }); return; }
      // The client sends one `t`; further tags are added to the built image, as `docker build -t a -t b` ends up.
      for (const t of tags.slice(1)) {
        const { repo, tag } = splitReference(t);
        await api.post(`/images/${encodeURIComponent(log.imageId)}/tag`, undefined, { repo, tag });
        log.tags.push(t);
        log.trailer.push(`Successfully tagged ${t}`);
      }
      update({ phase: 'done' });
    } catch (err) {
      log.end();
      if (c.signal.aborted || (err as Error).name === 'AbortError') { update({ phase: 'cancelled' }); return; }
      if (handleSignedOut(err)) return;
      update({ phase: 'failed', message: (err as Error).message });
    } finally {
      if (buildCtrl === c) buildCtrl = undefined;
    }
  };

  const log = run?.log;
  const total = log?.total ?? 0;
  const current = log?.current;
  const error = run?.message ?? log?.error;

  return (
    <div class="page build-page">
      <PageHeader title="Build an image" />
      <form class="panel form build-form" onSubmit={submit} aria-label="Build">
        <fieldset class="build-source">
          <legend>Context</legend>
          <label class="check"><input type="radio" name="source" value="dockerfile" checked={f.source === 'dockerfile'} onChange={() => set('source', 'dockerfile')} /> Paste a Dockerfile</label>
          <label class="check"><input type="radio" name="source" value="archive" checked={f.source === 'archive'} onChange={() => set('source', 'archive')} /> Upload a context archive</label>
        </fieldset>
        {f.source === 'dockerfile' ? (
          <>
            <label>Dockerfile
              <textarea name="dockerfile" rows={10} spellcheck={false} value={f.dockerfile} placeholder={EXAMPLE}
                onInput={(e) => set('dockerfile', (e.target as HTMLTextAreaElement).value)} />
            </label>
            <label>Files for the context (placed beside the Dockerfile, for COPY and ADD)
              <input type="file" name="files" multiple onChange={(e) => {
                const input = e.target as HTMLInputElement;
                set('files', [...f.files, ...Array.from(input.files ?? [])].filter((x, i, all) => all.findIndex((y) => y.name === x.name) === i));
                input.value = '';
              }} />
            </label>
            {f.files.length > 0 && (
              <ul class="build-files" aria-label="Files in the context" data-testid="build-files">
                {f.files.map((file) => (
                  <li key={file.name}><span class="mono">{file.name}</span> <span class="muted">{humanSize(file.size)}</span>{' '}
                    <button type="button" class="btn btn-small" aria-label={`Remove ${file.name}`} onClick={() => set('files', f.files.filter((x) => x !== file))}>Remove</button>
                  </li>
                ))}
              </ul>
            )}
          </>
        ) : (
          <div class="form-grid">
            <label>Context archive (.tar, .tar.gz)
              <input type="file" name="context" accept=".tar,.tar.gz,.tgz,.tar.bz2,.tar.xz,.tar.zst,application/x-tar,application/gzip"
                onChange={(e) => set('archive', (e.target as HTMLInputElement).files?.[0])} />
            </label>
            <label>Dockerfile in the archive
              <input name="dockerfile-path" value={f.dockerfilePath} onInput={(e) => set('dockerfilePath', (e.target as HTMLInputElement).value)} />
            </label>
          </div>
        )}
        <div class="form-grid">
          <label>Tag<input name="tag" value={f.tag} placeholder="app:1.0 (several: separate with spaces)" autocomplete="off"
            onInput={(e) => set('tag', (e.target as HTMLInputElement).value)} /></label>
          <label>Target stage<input name="target" value={f.target} placeholder="optional" onInput={(e) => set('target', (e.target as HTMLInputElement).value)} /></label>
          <label class="span-2">Build arguments<textarea name="buildargs" rows={2} value={f.buildArgs} placeholder="KEY=value (one per line)"
            onInput={(e) => set('buildArgs', (e.target as HTMLTextAreaElement).value)} /></label>
          <label class="check"><input type="checkbox" name="nocache" checked={f.nocache} onChange={(e) => set('nocache', (e.target as HTMLInputElement).checked)} /> Do not use the cache</label>
          <label class="check"><input type="checkbox" name="pull" checked={f.pull} onChange={(e) => set('pull', (e.target as HTMLInputElement).checked)} /> Always pull the base images</label>
          <label class="check"><input type="checkbox" name="forcerm" checked={f.forcerm} onChange={(e) => set('forcerm', (e.target as HTMLInputElement).checked)} /> Remove the container of a failed step</label>
        </div>
        {formError && <p class="form-error" role="alert" data-testid="build-form-error">{formError}</p>}
        <div class="form-actions">
          {running && <button type="button" class="btn btn-danger" data-testid="build-cancel" onClick={() => buildCtrl?.abort()}>Cancel build</button>}
          <button type="submit" class="btn btn-primary" data-testid="build-submit" disabled={running}>{running ? 'Building…' : 'Build'}</button>
        </div>
      </form>

      {run && log && (
        <section class="panel build-output" aria-label="Build output">
          <div class="build-status" data-testid="build-status" data-phase={run.phase} data-build={run.seq} role="status" aria-live="polite">
            {run.phase === 'sending' && <><span class="spinner" aria-hidden="true" /> Sending the context…</>}
            {run.phase === 'building' && <><span class="spinner" aria-hidden="true" /> {current ? `Step ${current.index}/${total}` : 'Starting…'}</>}
            {run.phase === 'done' && <span class="build-ok">Built</span>}
            {run.phase === 'failed' && <span class="build-failed">Failed</span>}
            {run.phase === 'cancelled' && <span class="muted">Cancelled</span>}
            {total > 0 && <progress max={total} value={run.phase === 'done' ? total : log.done} aria-label="Build steps done" />}
            {total > 0 && <span class="muted">{log.done}/{total} steps · {log.cachedCount} cached</span>}
          </div>
          {run.phase === 'done' && log.imageId && (
            <div class="build-result" data-testid="build-result">
              Image <a href={href('images', log.imageId)} data-testid="build-image-link" class="mono">{shortId(log.imageId)}</a>
              {log.tags.length > 0 && <> tagged {log.tags.map((t) => <span key={t} class="badge build-tag">{t}</span>)}</>}
            </div>
          )}
          {error && run.phase === 'failed' && (
            <div class="state state-error" role="alert" data-testid="build-error"><strong>Error</strong> <span class="error-message">{error}</span></div>
          )}
          <div class="build-log" data-testid="build-log" ref={logBox} tabIndex={0} aria-label="Build log"
            onScroll={(e) => { const b = e.target as HTMLDivElement; stick.current = b.scrollHeight - b.scrollTop - b.clientHeight < 30; }}>
            {log.preamble.length > 0 && <div class="build-step-lines">{log.preamble.join('\n')}</div>}
            {log.steps.map((s, i) => <StepView key={i} step={s} failed={run.phase === 'failed' && !!log.error && i === log.steps.length - 1 && !s.imageId} />)}
            {log.trailer.length > 0 && <div class="build-trailer">{log.trailer.join('\n')}</div>}
            {log.pending && <div class="build-step-lines">{log.pending}</div>}
            {!log.steps.length && !log.preamble.length && running && <span class="muted">Waiting for the daemon…</span>}
          </div>
        </section>
      )}
    </div>
  );
}
