// Containers: the list (state, image, ports, uptime, CPU and memory), filters and search,
// lifecycle actions, and the run form.
import type { JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { RunForm } from '../components/run-form.tsx';
import { act, ActionButton, Async, ConfirmButton, Empty, Modal, PageHeader, StateBadge } from '../components/ui.tsx';
import { api, useApi } from '../lib/client.ts';
import { ago, binarySize, formatPorts, percent, shortId } from '../lib/format.ts';
import { href, parseHash } from '../lib/router.ts';
import { cpuPercent, memoryUsage, type StatsSample } from '../lib/stats.ts';

export interface ContainerSummary {
  Id: string; Names: string[]; Image: string; ImageID: string; Command: string; Created: number;
  State: string; Status: string; Ports: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }>;
  Labels: Record<string, string>;
}

interface Usage { cpu: number; mem: number }

/**
 * CPU and memory of running containers, refreshed every few seconds with one-shot stats
 * (no second sample on the daemon side: CPU % comes from this poll and the previous one), a few
 * at a time so the browser's six connections stay free for the page.
 */
function useUsage(ids: string[]): Map<string, Usage> {
  const [usage, setUsage] = useState(new Map<string, Usage>());
  const prev = useRef(new Map<string, StatsSample>());
  const key = ids.join(',');
  useEffect(() => {
    let stopped = false;
    const ctrl = new AbortController();
    const poll = async (): Promise<void> => {
      const next = new Map<string, Usage>();
      const queue = ids.slice(0, 100);
      const worker = async (): Promise<void> => {
        for (let id = queue.shift(); id !== undefined && !stopped; id = queue.shift()) {
          try {
            const s = await api.get<StatsSample>(`/containers/${id}/stats`, { stream: false, 'one-shot': true }, ctrl.signal);
            next.set(id, { cpu: cpuPercent(s, prev.current.get(id)), mem: memoryUsage(s) });
            prev.current.set(id, s);
          } catch { /* stopped meanwhile */ }
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      if (!stopped) setUsage(next);
    };
    void poll();
    const t = setInterval(() => { if (document.visibilityState === 'visible') void poll(); }, 3000);
    return () => { stopped = true; clearInterval(t); ctrl.abort(); };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return usage;
}

export function containerName(c: { Names?: string[]; Name?: string; Id: string }): string {
  const n = c.Names?.[0] ?? c.Name;
  return n ? n.replace(/^\//, '') : shortId(c.Id);
}

/**
 * Lifecycle buttons for one container. `onAskRemove`: the list asks through one shared dialog
 * instead of a dialog component per row (500 rows stay cheap to render).
 */
export function ContainerActions({ c, onDone, small = true, onAskRemove }: { c: { Id: string; State: string | { Status: string } }; onDone: () => void; small?: boolean; onAskRemove?: (id: string, running: boolean) => void }): JSX.Element {
  const state = typeof c.State === 'string' ? c.State : c.State.Status;
  const cls = small ? 'btn btn-small' : 'btn';
  const id = c.Id;
  const run = (what: string, path: string, query?: Record<string, string | number>) => act(what, () => api.post(path, undefined, query)).then(onDone);
  return (
    <div class="row-actions">
      {state !== 'running' && state !== 'paused' && <button type="button" class={cls} onClick={() => run('Start', `/containers/${id}/start`)}>Start</button>}
      {state === 'running' && <button type="button" class={cls} onClick={() => run('Stop', `/containers/${id}/stop`)}>Stop</button>}
      {(state === 'running' || state === 'paused') && <button type="button" class={cls} onClick={() => run('Restart', `/containers/${id}/restart`)}>Restart</button>}
      {state === 'running' && <button type="button" class={cls} onClick={() => run('Pause', `/containers/${id}/pause`)}>Pause</button>}
      {state === 'paused' && <button type="button" class={cls} onClick={() => run('Unpause', `/containers/${id}/unpause`)}>Unpause</button>}
      {onAskRemove ? <button type="button" class={`${cls} btn-danger`} onClick={() => onAskRemove(id, state === 'running' || state === 'paused')}>Remove</button> : (
        <ConfirmButton small={small} label="Remove" confirmLabel="Remove" question={removeQuestion(state === 'running' || state === 'paused')}
          onConfirm={() => act('Remove', () => api.del(`/containers/${id}`, { force: true, v: true })).then(onDone)} />
      )}
    </div>
  );
}

function removeQuestion(running: boolean): string {
  return running ? 'This container is running. Stop it and remove it with its anonymous volumes?' : 'Remove this container and its anonymous volumes?';
}

// toLocaleString builds a formatter per call: one shared formatter keeps 500 rows fast.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** Every row's height (fixed by .table-fixed's CSS), so offscreen rows can be stand-ins. */
const ROW_HEIGHT = 41;
/** Lists up to this size render every row (find-in-page sees them all). */
const WINDOW_FROM = 150;
const OVERSCAN = 15;

/**
 * The rows worth rendering: long lists render what the viewport shows (plus some), with spacer
 * rows standing in for the rest, so 500 or 5000 containers cost the same to draw.
 */
function useRowWindow(count: number, body: { current: HTMLElement | null }): { start: number; end: number } {
  // The index of the first row at the top of the viewport; the window follows from it.
  const [first, setFirst] = useState(0);
  const windowed = count > WINDOW_FROM;
  useEffect(() => {
    if (!windowed) return;
    let frame = 0;
    const update = (): void => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        const top = body.current ? -body.current.getBoundingClientRect().top : 0;
        setFirst(Math.max(0, Math.floor(top / ROW_HEIGHT)));
      });
    };
    update();
    addEventListener('scroll', update, { passive: true, capture: true });
    addEventListener('resize', update);
    return () => { removeEventListener('scroll', update, { capture: true }); removeEventListener('resize', update); cancelAnimationFrame(frame); };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [windowed]);
  if (!windowed) return { start: 0, end: count };
  const visible = Math.ceil(innerHeight / ROW_HEIGHT);
  const start = Math.max(0, Math.min(first - OVERSCAN, count - visible - OVERSCAN));
  return { start, end: Math.min(count, start + visible + 2 * OVERSCAN) };
}

const STATES = ['all', 'running', 'paused', 'exited', 'created', 'restarting', 'dead'];

export function ContainersPage(): JSX.Element {
  const initialState = parseHash(location.hash).query.get('state') ?? 'all';
  const [state, setState] = useState(STATES.includes(initialState) ? initialState : 'all');
  const [search, setSearch] = useState('');
  const [showRun, setShowRun] = useState(false);
  const [removing, setRemoving] = useState<{ id: string; running: boolean }>();
  const list = useApi<ContainerSummary[]>('/containers/json', { all: true, filters: state === 'all' ? undefined : { status: [state] } }, { refreshMs: 3000 });
  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    const rows = list.data ?? [];
    if (!q) return rows;
    return rows.filter((c) => containerName(c).toLowerCase().includes(q) || c.Image.toLowerCase().includes(q) || c.Id.startsWith(q));
  }, [list.data, search]);
  const running = useMemo(() => shown.filter((c) => c.State === 'running').map((c) => c.Id), [shown]);
  const usage = useUsage(running);
  const now = Date.now();
  const bodyRef = useRef<HTMLTableSectionElement>(null);
  const win = useRowWindow(shown.length, bodyRef);
  return (
    <div class="page">
      <PageHeader title="Containers">
        <button type="button" class="btn btn-primary" onClick={() => setShowRun(true)}>Run a container</button>
      </PageHeader>
      <div class="toolbar" role="search">
        <label>State{' '}
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            {STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <input type="search" placeholder="Search name, image or ID" aria-label="Search containers" value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <span class="muted">{list.data ? `${shown.length} of ${list.data.length}` : ''}</span>
      </div>
      <Async state={list}>{() => (shown.length === 0 ? (
        <Empty>{list.data?.length ? 'No container matches.' : <>No containers yet. <button type="button" class="btn btn-small" onClick={() => setShowRun(true)}>Run one</button></>}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table table-fixed" aria-label="Containers" data-testid="containers-table" data-count={shown.length} aria-rowcount={shown.length + 1}>
            <colgroup><col class="w-name" /><col class="w-image" /><col class="w-state" /><col class="w-status" /><col class="w-ports" /><col class="w-created" /><col class="w-num" /><col class="w-num" /><col class="w-actions" /></colgroup>
            <thead><tr><th>Name</th><th>Image</th><th>State</th><th>Status</th><th>Ports</th><th>Created</th><th class="num">CPU</th><th class="num">Memory</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody ref={bodyRef}>
              {win.start > 0 && <tr class="spacer" aria-hidden="true" style={{ height: `${win.start * ROW_HEIGHT}px` }} />}
              {shown.slice(win.start, win.end).map((c, i) => {
                const u = usage.get(c.Id);
                return (
                  <tr key={c.Id} aria-rowindex={win.start + i + 2}>
                    <td class="ellipsis-cell"><a href={href('containers', c.Id)} title={c.Id}>{containerName(c)}</a></td>
                    <td class="mono ellipsis-cell" title={c.Image}>{c.Image.startsWith('sha256:') ? shortId(c.Image) : c.Image}</td>
                    <td><StateBadge state={c.State} /></td>
                    <td class="ellipsis-cell">{c.Status}</td>
                    <td class="mono ellipsis-cell" title={formatPorts(c.Ports)}>{formatPorts(c.Ports)}</td>
                    <td class="ellipsis-cell" title={dateTime.format(c.Created * 1000)}>{ago(c.Created, now)}</td>
                    <td class="num">{c.State === 'running' && u ? percent(u.cpu) : ''}</td>
                    <td class="num">{c.State === 'running' && u ? binarySize(u.mem) : ''}</td>
                    <td><ContainerActions c={c} onDone={list.reload} onAskRemove={(rid, running) => setRemoving({ id: rid, running })} /></td>
                  </tr>
                );
              })}
              {win.end < shown.length && <tr class="spacer" aria-hidden="true" style={{ height: `${(shown.length - win.end) * ROW_HEIGHT}px` }} />}
            </tbody>
          </table>
        </div>
      ))}</Async>
      {removing && (
        <Modal title="Please confirm" onClose={() => setRemoving(undefined)}>
          <p>{removeQuestion(removing.running)}</p>
          <div class="form-actions">
            <button type="button" class="btn" onClick={() => setRemoving(undefined)}>Cancel</button>
            <ActionButton cls="btn-danger" onClick={async () => {
              await act('Remove', () => api.del(`/containers/${removing.id}`, { force: true, v: true }));
              setRemoving(undefined);
              list.reload();
            }}>Remove</ActionButton>
          </div>
        </Modal>
      )}
      {showRun && <RunForm onClose={() => setShowRun(false)} onStarted={(id) => { setShowRun(false); list.reload(); location.hash = href('containers', id); }} />}
    </div>
  );
}
