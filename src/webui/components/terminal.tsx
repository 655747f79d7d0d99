// A terminal into a running container: an exec with a TTY, joined to xterm.js through the UI
// server's websocket (/ui/ws/exec/<id>, raw bytes both ways). Loaded on demand with import():
// xterm.js is most of the UI's weight and only this tab needs it.
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, handleSignedOut } from '../lib/client.ts';

const SHELLS = ['sh', 'bash', '/bin/ash'];

type Status = { kind: 'connecting' } | { kind: 'open' } | { kind: 'ended'; reason: string; error: boolean };

export function TerminalView({ containerId }: { containerId: string }): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const [shell, setShell] = useState('sh');
  const [session, setSession] = useState(0);
  const [status, setStatus] = useState<Status>({ kind: 'connecting' });

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let disposed = false;
    let ws: WebSocket | undefined;
    let execId: string | undefined;
    let started = false;
    setStatus({ kind: 'connecting' });
    const term = new Terminal({
      cursorBlink: true,
      convertEol: false,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      scrollback: 5000,
      theme: { background: '#000000', foreground: '#e6e6e6' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    const refit = (): void => { try { fit.fit(); } catch { /* not laid out yet */ } };
    refit();

    // The daemon resizes only a started exec; the first output says it has started. (Resizing
    // earlier, while the exec was still starting, left the first session after a daemon restart
    // with a tty that did not translate newlines.)
    const resize = (): void => {
      if (!execId || !started || disposed) return;
      api.post(`/exec/${execId}/resize`, undefined, { h: term.rows, w: term.cols }).catch(() => { /* exec ended meanwhile */ });
    };
    const onResize = term.onResize(resize);
    const ro = new ResizeObserver(refit);
    ro.observe(el);
    const onData = term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(d); });
    const onBinary = term.onBinary((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)); });

    void (async () => {
      try {
        const exec = await api.post<{ Id: string }>(`/containers/${containerId}/exec`, {
          AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, Cmd: [shell],
          // The size the terminal has now, from the start (API 1.42+); later changes go through resize.
          ConsoleSize: [term.rows, term.cols],
          Env: ['TERM=xterm-256color'],
        });
        if (disposed) return;
        execId = exec.Id;
        const proto = location.protocol === 'https:' ? 'wss' : 'ws';
        ws = new WebSocket(`${proto}://${location.host}/ui/ws/exec/${execId}?tty=1&csrf=${encodeURIComponent(api.csrf)}`);
        ws.binaryType = 'arraybuffer';
        ws.onopen = () => {
          if (disposed) return;
          setStatus({ kind: 'open' });
          term.focus();
        };
        ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
          if (disposed) return;
          term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
          if (!started) { started = true; resize(); }
        };
        ws.onclose = (e) => {
          if (disposed) return;
          const error = e.code >= 4000 || e.code === 1011 || e.code === 1006;
          const reason = e.code >= 4000 ? e.reason || `error ${e.code - 4000}` : e.code === 1006 ? 'the connection was lost' : e.reason === 'ended' || !e.reason ? 'the shell exited' : e.reason;
          const show = (why: string, bad: boolean): void => {
            if (disposed) return;
            setStatus({ kind: 'ended', reason: why, error: bad });
            term.write(`\r\n\x1b[2m[session ended: ${why}]\x1b[0m\r\n`);
          };
          if (e.code !== 1000 || !execId) { show(reason, error); return; }
          // A shell that could not run ends like one that exited: its exit code tells them apart.
          api.get<{ ExitCode?: number | null; Running?: boolean }>(`/exec/${execId}/json`).then(
            (x) => show(x.ExitCode ? `${reason} (exit code ${x.ExitCode})` : reason, !!x.ExitCode),
            () => show(reason, error),
          );
        };
      } catch (e) {
        if (disposed || handleSignedOut(e)) return;
        setStatus({ kind: 'ended', reason: (e as Error).message, error: true });
      }
    })();

    // Closing the socket does not end the exec: with a TTY, like docker's, the shell outlives its
    // client (and the Engine API cannot signal an exec). So a deliberate close hangs up the way a
    // user would: ^C for whatever runs in the foreground, then (once the tty has flushed its input
    // for the ^C) ^U ^D to end the shell at an empty prompt. On page unload there is no time to
    // wait: ^U ^D alone ends an idle shell.
    const EOF = '\x15\x04';
    const onPageHide = (): void => { if (ws?.readyState === WebSocket.OPEN) ws.send(EOF); };
    addEventListener('pagehide', onPageHide);

    return () => {
      disposed = true;
      removeEventListener('pagehide', onPageHide);
      const sock = ws;
      if (sock?.readyState === WebSocket.OPEN) {
        sock.send('\x03');
        setTimeout(() => {
          if (sock.readyState === WebSocket.OPEN) sock.send(EOF);
          setTimeout(() => sock.close(1000, 'closed'), 150);
        }, 200);
      } else if (sock && sock.readyState === WebSocket.CONNECTING) {
        sock.close(1000, 'closed');
      }
      ro.disconnect();
      onResize.dispose();
      onData.dispose();
      onBinary.dispose();
      term.dispose();
    };
  }, [containerId, shell, session]);

  return (
    <div class="terminal-page">
      <div class="toolbar">
        <label>Shell{' '}
          <select value={shell} onChange={(e) => setShell((e.target as HTMLSelectElement).value)} aria-label="Shell">
            {SHELLS.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <button type="button" class="btn" onClick={() => setSession((n) => n + 1)} data-testid="terminal-reconnect">
          {status.kind === 'ended' ? 'Reconnect' : 'New session'}
        </button>
        <span class={`terminal-status ${status.kind === 'ended' && status.error ? 'terminal-status-error' : ''}`} role="status" data-testid="terminal-status">
          {status.kind === 'connecting' ? 'Connecting…' : status.kind === 'open' ? 'Connected' : `Session ended: ${status.reason}`}
        </span>
      </div>
      <div class="terminal-box" ref={box} data-testid="terminal" />
    </div>
  );
}
