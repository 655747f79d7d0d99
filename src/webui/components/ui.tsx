// Building blocks every page uses: loading/empty/error states, buttons with confirmation,
// dialogs, tabs, toasts. Keyboard reachable: real buttons and links, dialogs with focus and Escape.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { handleSignedOut } from '../lib/client.ts';

export function Loading({ label = 'Loading…' }: { label?: string }): JSX.Element {
  return <div class="state state-loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true" />{label}</div>;
}

export function ErrorBox({ error, onRetry }: { error: string; onRetry?: () => void }): JSX.Element {
  return (
    <div class="state state-error" role="alert">
      <strong>Error</strong> <span class="error-message">{error}</span>
      {onRetry && <button type="button" class="btn btn-small" onClick={onRetry}>Retry</button>}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }): JSX.Element {
  return <div class="state state-empty">{children}</div>;
}

/** Data, or its loading / error state. */
export function Async<T>({ state, children }: { state: { data?: T; error?: string; loading: boolean; reload: () => void }; children: (data: T) => ComponentChildren }): JSX.Element {
  if (state.data !== undefined) {
    return <>{state.error && <ErrorBox error={state.error} onRetry={state.reload} />}{children(state.data)}</>;
  }
  if (state.error) return <ErrorBox error={state.error} onRetry={state.reload} />;
  return <Loading />;
}

export function PageHeader({ title, children }: { title: ComponentChildren; children?: ComponentChildren }): JSX.Element {
  return (
    <header class="page-header">
      <h1>{title}</h1>
      <div class="page-actions">{children}</div>
    </header>
  );
}

type Listener = (t: Toast[]) => void;
interface Toast { id: number; kind: 'error' | 'ok'; text: string }
let toasts: Toast[] = [];
let nextToast = 1;
const listeners = new Set<Listener>();

/** Shows a short message at the corner; errors stay until dismissed. */
export function notify(kind: Toast['kind'], text: string): void {
  const t = { id: nextToast++, kind, text };
  toasts = [...toasts, t].slice(-5);
  for (const l of listeners) l(toasts);
  if (kind === 'ok') setTimeout(() => dismiss(t.id), 4000);
}

function dismiss(id: number): void {
  toasts = toasts.filter((t) => t.id !== id);
  for (const l of listeners) l(toasts);
}

export function Toasts(): JSX.Element {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    listeners.add(setList);
    return () => { listeners.delete(setList); };
  }, []);
  return (
    <div class="toasts" aria-live="assertive">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <span>{t.text}</span>
          <button type="button" class="btn-icon" aria-label="Dismiss" onClick={() => dismiss(t.id)}>×</button>
        </div>
      ))}
    </div>
  );
}

/** Runs an API action, reporting its error as a toast (the daemon's message) and returning success. */
export async function act(what: string, fn: () => Promise<unknown>, okText?: string): Promise<boolean> {
  try {
    await fn();
    if (okText) notify('ok', okText);
    return true;
  } catch (e) {
    if (handleSignedOut(e)) return false;
    notify('error', `${what}: ${(e as Error).message}`);
    return false;
  }
}

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => { if (d?.open) d.close(); };
  }, []);
  return (
    <dialog ref={ref} class={wide ? 'modal modal-wide' : 'modal'} aria-label={title} onCancel={(e) => { e.preventDefault(); onClose(); }}>
      <header class="modal-header">
        <h2>{title}</h2>
        <button type="button" class="btn-icon" aria-label="Close" onClick={onClose}>×</button>
      </header>
      <div class="modal-body">{children}</div>
    </dialog>
  );
}

/** A button that asks first (destructive actions). */
export function ConfirmButton({ label, question, confirmLabel, onConfirm, danger = true, small, disabled, title }: {
  label: ComponentChildren; question: string; confirmLabel?: string; onConfirm: () => Promise<unknown> | void;
  danger?: boolean; small?: boolean; disabled?: boolean; title?: string;
}): JSX.Element {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <button type="button" title={title} disabled={disabled} class={`btn ${danger ? 'btn-danger' : ''} ${small ? 'btn-small' : ''}`} onClick={() => setOpen(true)}>{label}</button>
      {open && (
        <Modal title="Please confirm" onClose={() => setOpen(false)}>
          <p>{question}</p>
          <div class="form-actions">
            <button type="button" class="btn" onClick={() => setOpen(false)}>Cancel</button>
            <button type="button" class={`btn ${danger ? 'btn-danger' : 'btn-primary'}`} disabled={busy} autofocus
              onClick={async () => { setBusy(true); try { await onConfirm(); } finally { setBusy(false); setOpen(false); } }}>
              {confirmLabel ?? 'Confirm'}
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}

/** A button that shows it is busy while its action runs. */
export function ActionButton({ onClick, children, cls = '', disabled, title }: { onClick: () => Promise<unknown>; children: ComponentChildren; cls?: string; disabled?: boolean; title?: string }): JSX.Element {
  const [busy, setBusy] = useState(false);
  return (
    <button type="button" title={title} class={`btn ${cls}`} disabled={busy || disabled} aria-busy={busy}
      onClick={async () => { setBusy(true); try { await onClick(); } finally { setBusy(false); } }}>
      {children}
    </button>
  );
}

export interface TabDef { id: string; label: string }

export function Tabs({ tabs, active, hrefFor }: { tabs: TabDef[]; active: string; hrefFor: (id: string) => string }): JSX.Element {
  return (
    <nav class="tabs" aria-label="Sections">
      {tabs.map((t) => (
        <a key={t.id} href={hrefFor(t.id)} class={t.id === active ? 'tab tab-active' : 'tab'} aria-current={t.id === active ? 'page' : undefined}>{t.label}</a>
      ))}
    </nav>
  );
}

export function StateBadge({ state }: { state: string }): JSX.Element {
  return <span class={`badge badge-${state.toLowerCase()}`}>{state}</span>;
}

/** Key/value rows (inspect summaries). */
export function Facts({ rows }: { rows: Array<[string, ComponentChildren]> }): JSX.Element {
  return (
    <dl class="facts">
      {rows.map(([k, v]) => <><dt key={`k${k}`}>{k}</dt><dd key={`v${k}`}>{v === '' || v === undefined || v === null ? '—' : v}</dd></>)}
    </dl>
  );
}

export function JsonView({ value }: { value: unknown }): JSX.Element {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
