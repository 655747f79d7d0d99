// One container: inspect summary and actions, live logs, live stats charts, processes, a
// terminal (exec + xterm.js, loaded on demand) and its files (/archive). Each tab streams only
// while it is shown: leaving a tab unmounts it, which aborts its requests.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Chart } from '../components/chart.tsx';
import { FileBrowser, saveBlob } from '../components/file-browser.tsx';
import { Empty, ErrorBox, Facts, JsonView, Loading, PageHeader, StateBadge, Tabs } from '../components/ui.tsx';
import { api, handleSignedOut, useApi } from '../lib/client.ts';
import { ago, binarySize, humanSize, percent, shortId } from '../lib/format.ts';
import { filterLines, LogBuffer, logText, splitMatches, type LogLine } from '../lib/logs.ts';
import { href } from '../lib/router.ts';
import { blockBytes, cpuPercent, memoryLimit, memoryUsage, networkBytes, rate, Series, type StatsSample } from '../lib/stats.ts';
import { JsonStreamDecoder } from '../lib/streams.ts';
import { ContainerActions } from './containers.tsx';
import '../styles/container.css';

interface PortBinding { HostIp?: string; HostPort?: string }

export interface ContainerInspect {
  Id: string; Name: string; Created: string; Path: string; Args: string[]; Image: string;
  State: { Status: string; Running: boolean; Paused: boolean; Restarting?: boolean; Pid?: number; ExitCode?: number; Error?: string; StartedAt?: string; FinishedAt?: string };
  Config: { Image: string; Cmd?: string[] | null; Entrypoint?: string[] | null; Tty?: boolean; Env?: string[] | null; WorkingDir?: string; User?: string; Hostname?: string };
  HostConfig: {
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number }; Memory?: number; MemorySwap?: number; NanoCpus?: number;
    CpuShares?: number; CpuQuota?: number; CpuPeriod?: number; PidsLimit?: number | null; NetworkMode?: string; AutoRemove?: boolean; Privileged?: boolean;
  };
  Mounts?: Array<{ Type: string; Name?: string; Source: string; Destination: string; RW: boolean; Mode?: string }> | null;
  NetworkSettings?: {
    Ports?: Record<string, PortBinding[] | null> | null;
    Networks?: Record<string, { IPAddress?: string; Gateway?: string; MacAddress?: string; GlobalIPv6Address?: string }> | null;
  };
}

const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'logs', label: 'Logs' },
  { id: 'stats', label: 'Stats' },
  { id: 'top', label: 'Processes' },
  { id: 'terminal', label: 'Terminal' },
  { id: 'files', label: 'Files' },
];

const NOT_FOUND = /^No such container/i;

function shellJoin(args: string[] | null | undefined): string {
  return (args ?? []).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function dateText(iso: string | undefined): ComponentChildren {
  if (!iso || iso.startsWith('0001-')) return '';
  const t = Date.parse(iso);
  return <time dateTime={iso} title={iso}>{new Date(t).toLocaleString()} ({ago(t / 1000)})</time>;
}

function portsText(ports: Record<string, PortBinding[] | null> | null | undefined): ComponentChildren {
  const list = Object.entries(ports ?? {});
  if (!list.length) return '';
  return (
    <ul class="plain-list mono">
      {list.map(([port, binds]) => (
        <li key={port}>{binds?.length ? binds.map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort} → ${port}`).join(', ') : `${port} (not published)`}</li>
      ))}
    </ul>
  );
}

function Overview({ c }: { c: ContainerInspect }): JSX.Element {
  const [showJson, setShowJson] = useState(false);
  const h = c.HostConfig ?? {};
  const rp = h.RestartPolicy?.Name && h.RestartPolicy.Name !== 'no'
    ? `${h.RestartPolicy.Name}${h.RestartPolicy.MaximumRetryCount ? `:${h.RestartPolicy.MaximumRetryCount}` : ''}` : 'no';
  const cpus = h.NanoCpus ? `${h.NanoCpus / 1e9} CPUs` : h.CpuQuota && h.CpuPeriod ? `${h.CpuQuota / h.CpuPeriod} CPUs` : '';
  const limits = [h.Memory ? `memory ${binarySize(h.Memory)}` : '', cpus, h.CpuShares ? `CPU shares ${h.CpuShares}` : '', h.PidsLimit && h.PidsLimit > 0 ? `pids ${h.PidsLimit}` : '']
    .filter(Boolean).join(', ') || 'none';
  const nets = Object.entries(c.NetworkSettings?.Networks ?? {});
  const mounts = c.Mounts ?? [];
  const exit = !c.State.Running && c.State.FinishedAt && !c.State.FinishedAt.startsWith('0001-') ? `exit code ${c.State.ExitCode ?? 0}` : '';
  return (
    <div data-testid="container-overview">
      <div class="grid-2">
        <section class="panel" aria-label="Container">
          <Facts rows={[
            ['ID', <span class="mono" key="id">{c.Id}</span>],
            ['State', <span key="st"><StateBadge state={c.State.Status} /> {exit}{c.State.Error ? <span class="danger-text"> {c.State.Error}</span> : null}</span>],
            ['Image', <span key="img"><a href={href('images', c.Image)}>{c.Config.Image}</a> <span class="muted mono">{shortId(c.Image)}</span></span>],
            ['Command', <code key="cmd">{shellJoin([c.Path, ...(c.Args ?? [])])}</code>],
            ['Created', dateText(c.Created)],
            ['Started', dateText(c.State.StartedAt)],
            ['Finished', c.State.Running ? '' : dateText(c.State.FinishedAt)],
            ['PID', c.State.Pid ? String(c.State.Pid) : ''],
            ['TTY', c.Config.Tty ? 'yes' : 'no'],
            ['Working dir', c.Config.WorkingDir ?? ''],
            ['User', c.Config.User ?? ''],
            ['Restart policy', rp],
            ['Limits', limits],
          ]} />
        </section>
        <section class="panel" aria-label="Network and storage">
          <h2 class="panel-title">Ports</h2>
          {portsText(c.NetworkSettings?.Ports) || <p class="muted">No ports exposed.</p>}
          <h2 class="panel-title">Networks</h2>
          {nets.length ? (
            <table class="table table-compact" aria-label="Networks">
              <thead><tr><th>Network</th><th>IP address</th><th>Gateway</th><th>MAC</th></tr></thead>
              <tbody>{nets.map(([name, n]) => <tr key={name}><td>{name}</td><td class="mono">{n.IPAddress || '—'}</td><td class="mono">{n.Gateway || '—'}</td><td class="mono">{n.MacAddress || '—'}</td></tr>)}</tbody>
            </table>
          ) : <p class="muted">{h.NetworkMode ? `Network mode: ${h.NetworkMode}` : 'No networks.'}</p>}
          <h2 class="panel-title">Mounts</h2>
          {mounts.length ? (
            <table class="table table-compact" aria-label="Mounts">
              <thead><tr><th>Type</th><th>Source</th><th>Destination</th><th>Mode</th></tr></thead>
              <tbody>{mounts.map((m) => <tr key={m.Destination}><td>{m.Type}</td><td class="mono ellipsis" title={m.Source}>{m.Type === 'volume' && m.Name ? m.Name : m.Source}</td><td class="mono">{m.Destination}</td><td>{m.RW ? 'rw' : 'ro'}</td></tr>)}</tbody>
            </table>
          ) : <p class="muted">No mounts.</p>}
          {c.Config.Env?.length ? (
            <>
              <h2 class="panel-title">Environment</h2>
              <ul class="plain-list mono env-list">{c.Config.Env.map((e) => <li key={e}>{e}</li>)}</ul>
            </>
          ) : null}
        </section>
      </div>
      <section class="panel">
        <button type="button" class="btn btn-small" aria-expanded={showJson} aria-controls="inspect-json" onClick={() => setShowJson(!showJson)}>
          {showJson ? 'Hide' : 'Show'} inspect JSON
        </button>
        {showJson && <div id="inspect-json" class="inspect-json"><JsonView value={c} /></div>}
      </section>
    </div>
  );
}

const TAILS = ['100', '500', '1000', '5000', 'all'];
/** Lines kept in the page; older ones are dropped (the download says so). */
const LOG_CAPACITY = 5000;

function LogLineView({ l, query, timestamps }: { l: LogLine; query: string; timestamps: boolean }): JSX.Element {
  const parts = query ? splitMatches(l.text, query) : null;
  return (
    <div class={l.stream === 2 ? 'log-line stderr' : 'log-line'}>
      {timestamps && l.time && <span class="log-time">{l.time}</span>}
      {parts ? parts.map((p, i) => (i % 2 ? <mark key={i}>{p}</mark> : p)) : l.text}
    </div>
  );
}

function Logs({ c }: { c: ContainerInspect }): JSX.Element {
  const tty = !!c.Config.Tty;
  const [tail, setTail] = useState('500');
  const [follow, setFollow] = useState(true);
  const [timestamps, setTimestamps] = useState(false);
  const [search, setSearch] = useState('');
  const [session, setSession] = useState(0);
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState<{ error?: string; ended: boolean; loading: boolean }>({ ended: false, loading: true });
  const buffer = useRef<LogBuffer>(new LogBuffer(tty, LOG_CAPACITY));
  const view = useRef<HTMLDivElement>(null);
  const running = c.State.Running;

  useEffect(() => {
    const buf = new LogBuffer(tty, LOG_CAPACITY);
    buffer.current = buf;
    const ctrl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Render at most a few times a second however fast the container writes.
    const schedule = (): void => { timer ??= setTimeout(() => { timer = undefined; setVersion((v) => v + 1); }, 150); };
    setStatus({ ended: false, loading: true });
    setVersion((v) => v + 1);
    api.stream('GET', `/containers/${c.Id}/logs`, {
      query: { follow: true, stdout: true, stderr: true, timestamps: true, tail }, signal: ctrl.signal,
    }, (chunk) => {
      buf.push(chunk);
      setStatus((s) => (s.loading ? { ...s, loading: false } : s));
      schedule();
    }).then(() => {
      if (ctrl.signal.aborted) return;
      buf.end();
      setStatus({ ended: true, loading: false });
      schedule();
    }, (e: Error) => {
      if (ctrl.signal.aborted || handleSignedOut(e)) return;
      setStatus({ ended: true, loading: false, error: e.message });
      schedule();
    });
    return () => { ctrl.abort(); if (timer) clearTimeout(timer); };
    // A container started again after its stream ended: reconnect on the new run.
  }, [c.Id, tty, tail, session, running]);

  const lines = buffer.current.lines;
  const shown = useMemo(() => filterLines(lines, search.trim()), [version, search]);

  useEffect(() => {
    const el = view.current;
    if (follow && el) el.scrollTop = el.scrollHeight;
  }, [version, follow, search, timestamps]);

  const onScroll = (): void => {
    const el = view.current;
    if (!el || !follow) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight > 40) setFollow(false);
  };

  const download = (): void => {
    const name = `${c.Name.replace(/^\//, '') || shortId(c.Id)}.log`;
    saveBlob(new Blob([logText(buffer.current.lines, timestamps)], { type: 'text/plain' }), name);
  };

  const q = search.trim();
  return (
    <div class="logs">
      <div class="toolbar" role="group" aria-label="Log options">
        <input type="search" placeholder="Search the logs" aria-label="Search logs" value={search} data-testid="log-search"
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <label class="check"><input type="checkbox" checked={follow} data-testid="log-follow"
          onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> Follow</label>
        <label class="check"><input type="checkbox" checked={timestamps} data-testid="log-timestamps"
          onChange={(e) => setTimestamps((e.target as HTMLInputElement).checked)} /> Timestamps</label>
        <label>Tail{' '}
          <select value={tail} aria-label="Lines to load" onChange={(e) => setTail((e.target as HTMLSelectElement).value)}>
            {TAILS.map((t) => <option key={t} value={t}>{t === 'all' ? 'all' : `last ${t}`}</option>)}
          </select>
        </label>
        <button type="button" class="btn btn-small" onClick={() => { buffer.current.clear(); setVersion((v) => v + 1); }}>Clear</button>
        <button type="button" class="btn btn-small" onClick={download} data-testid="log-download">Download</button>
        <span class="muted log-count" aria-live="polite">
          {q ? `${shown.length} of ${lines.length} lines match` : `${lines.length} lines`}
          {buffer.current.dropped > 0 ? ` (${buffer.current.dropped} older dropped)` : ''}
        </span>
      </div>
      {status.error && <ErrorBox error={status.error} onRetry={() => setSession((n) => n + 1)} />}
      <div class="log-view" ref={view} onScroll={onScroll} data-testid="log-view" role="log" aria-label="Container logs" tabIndex={0}>
        {status.loading && !lines.length ? <span class="log-note">Loading logs…</span> : null}
        {!status.loading && !lines.length && !status.error ? <span class="log-note">{running ? 'No output yet. Waiting for the container to write…' : 'No logs.'}</span> : null}
        {shown.map((l) => <LogLineView key={l.id} l={l} query={q} timestamps={timestamps} />)}
        {status.ended && !status.error && lines.length > 0 ? <div class="log-note">— end of the log{running ? ' stream' : ' (the container is not running)'} —</div> : null}
      </div>
    </div>
  );
}

const POINTS = 300;

interface Current { cpu: number; mem: number; limit: number; rx: number; tx: number; read: number; write: number; pids: number; samples: number }

function Stats({ c }: { c: ContainerInspect }): JSX.Element {
  const running = c.State.Running && !c.State.Paused;
  // Fixed-capacity series, made once: an hour at 1 Hz costs what five minutes do.
  const series = useMemo(() => ({
    cpu: new Series(POINTS), mem: new Series(POINTS), rx: new Series(POINTS), tx: new Series(POINTS),
    read: new Series(POINTS), write: new Series(POINTS), pids: new Series(POINTS),
  }), [c.Id]);
  const cur = useRef<Current>({ cpu: 0, mem: 0, limit: 0, rx: 0, tx: 0, read: 0, write: 0, pids: 0, samples: 0 });
  const [tick, setTick] = useState(0);
  const [error, setError] = useState<string>();
  const [ended, setEnded] = useState(false);

  useEffect(() => {
    if (!running) return;
    const ctrl = new AbortController();
    const dec = new JsonStreamDecoder<StatsSample>();
    let prev: StatsSample | undefined;
    let prevNet: { rx: number; tx: number } | undefined;
    let prevBlk: { read: number; write: number } | undefined;
    setError(undefined);
    setEnded(false);
    const onSample = (s: StatsSample): void => {
      const now = s.read ? Date.parse(s.read) : Date.now();
      const dt = prev?.read ? now - Date.parse(prev.read) : 1000;
      const k = cur.current;
      k.cpu = s.precpu_stats?.system_cpu_usage ? cpuPercent(s) : cpuPercent(s, prev);
      k.mem = memoryUsage(s);
      k.limit = memoryLimit(s);
      const net = networkBytes(s);
      const blk = blockBytes(s);
      k.rx = rate(net.rx, prevNet?.rx, dt);
      k.tx = rate(net.tx, prevNet?.tx, dt);
      k.read = rate(blk.read, prevBlk?.read, dt);
      k.write = rate(blk.write, prevBlk?.write, dt);
      k.pids = s.pids_stats?.current ?? 0;
      k.samples++;
      if (prev) {
        series.cpu.push(k.cpu); series.mem.push(k.mem); series.rx.push(k.rx); series.tx.push(k.tx);
        series.read.push(k.read); series.write.push(k.write); series.pids.push(k.pids);
      }
      prev = s;
      prevNet = net;
      prevBlk = blk;
    };
    api.stream('GET', `/containers/${c.Id}/stats`, { query: { stream: true }, signal: ctrl.signal }, (chunk) => {
      const samples = dec.push(chunk);
      if (!samples.length) return;
      for (const s of samples) onSample(s);
      setTick((t) => t + 1);
    }).then(() => { if (!ctrl.signal.aborted) setEnded(true); }, (e: Error) => {
      if (ctrl.signal.aborted || handleSignedOut(e)) return;
      setError(e.message);
    });
    return () => ctrl.abort();
  }, [c.Id, running]);

  if (!running) {
    return <Empty>{c.State.Paused ? 'The container is paused: unpause it to see live stats.' : 'The container is not running: start it to see live stats.'}</Empty>;
  }
  const k = cur.current;
  const memLimit = c.HostConfig.Memory || 0;
  const rateText = (v: number): string => `${humanSize(v)}/s`;
  return (
    <div class="stats" data-testid="stats">
      {error && <ErrorBox error={error} />}
      {ended && !error && <div class="state state-warn" role="status">The stats stream ended (the container stopped).</div>}
      {k.samples === 0 && !error ? <Loading label="Waiting for the first sample…" /> : null}
      <div class="stats-grid">
        <section class="panel stat-panel" aria-label="CPU">
          <h2 class="panel-title">CPU <span class="stat-value" data-testid="stats-cpu">{percent(k.cpu)}</span></h2>
          <Chart label="CPU usage over time" tick={tick} capacity={POINTS} format={(v) => `${v.toFixed(v < 10 ? 1 : 0)} %`}
            lines={[{ series: series.cpu, label: 'CPU %', color: '--chart-1' }]} />
        </section>
        <section class="panel stat-panel" aria-label="Memory">
          <h2 class="panel-title">Memory <span class="stat-value" data-testid="stats-mem">{binarySize(k.mem)} / {binarySize(k.limit)}{k.limit ? ` (${percent((k.mem / k.limit) * 100)})` : ''}</span></h2>
          <Chart label="Memory usage over time" tick={tick} capacity={POINTS} format={binarySize} fixedMax={memLimit || undefined}
            lines={[{ series: series.mem, label: memLimit ? `usage (limit ${binarySize(memLimit)})` : 'usage', color: '--chart-2' }]} />
        </section>
        <section class="panel stat-panel" aria-label="Network">
          <h2 class="panel-title">Network <span class="stat-value" data-testid="stats-net">↓ {rateText(k.rx)} ↑ {rateText(k.tx)}</span></h2>
          <Chart label="Network receive and transmit rates over time" tick={tick} capacity={POINTS} format={rateText}
            lines={[{ series: series.rx, label: 'received', color: '--chart-1' }, { series: series.tx, label: 'sent', color: '--chart-3' }]} />
        </section>
        <section class="panel stat-panel" aria-label="Block I/O">
          <h2 class="panel-title">Block I/O <span class="stat-value" data-testid="stats-blkio">read {rateText(k.read)} write {rateText(k.write)}</span></h2>
          <Chart label="Block I/O read and write rates over time" tick={tick} capacity={POINTS} format={rateText}
            lines={[{ series: series.read, label: 'read', color: '--chart-2' }, { series: series.write, label: 'write', color: '--chart-4' }]} />
        </section>
        <section class="panel stat-panel" aria-label="Processes">
          <h2 class="panel-title">PIDs <span class="stat-value" data-testid="stats-pids">{k.pids}</span></h2>
          <Chart label="Number of processes over time" tick={tick} capacity={POINTS} format={(v) => String(Math.round(v))}
            lines={[{ series: series.pids, label: 'processes', color: '--chart-3' }]} />
        </section>
      </div>
    </div>
  );
}

interface TopResult { Titles: string[]; Processes: string[][] | null }

function Top({ c }: { c: ContainerInspect }): JSX.Element {
  const [auto, setAuto] = useState(true);
  const top = useApi<TopResult>(`/containers/${c.Id}/top`, undefined, { refreshMs: auto ? 3000 : undefined, deps: [c.State.Status] });
  const rows = top.data?.Processes ?? [];
  return (
    <div class="top">
      <div class="toolbar">
        <button type="button" class="btn btn-small" onClick={top.reload} data-testid="top-refresh">Refresh</button>
        <label class="check"><input type="checkbox" checked={auto} onChange={(e) => setAuto((e.target as HTMLInputElement).checked)} /> Refresh every 3 s</label>
        {top.loading && top.data ? <span class="muted">refreshing…</span> : null}
      </div>
      {top.error ? <ErrorBox error={top.error} onRetry={top.reload} /> : null}
      {!top.data && !top.error ? <Loading /> : null}
      {top.data && !top.error && (rows.length === 0 ? <Empty>No processes.</Empty> : (
        <div class="table-wrap">
          <table class="table" aria-label="Processes" data-testid="top-table">
            <thead><tr>{top.data.Titles.map((t) => <th key={t}>{t}</th>)}</tr></thead>
            <tbody>{rows.map((p, i) => <tr key={`${p[1]}-${i}`}>{p.map((v, j) => <td key={j} class={top.data!.Titles[j] === 'CMD' || top.data!.Titles[j] === 'COMMAND' ? 'mono' : ''}>{v}</td>)}</tr>)}</tbody>
          </table>
        </div>
      ))}
    </div>
  );
}

type TerminalModule = typeof import('../components/terminal.tsx');

function TerminalTab({ c }: { c: ContainerInspect }): JSX.Element {
  const [mod, setMod] = useState<TerminalModule>();
  const [error, setError] = useState<string>();
  const running = c.State.Running && !c.State.Paused;
  useEffect(() => {
    if (!running || mod) return;
    import('../components/terminal.tsx').then(setMod, (e: Error) => setError(`cannot load the terminal: ${e.message}`));
  }, [running]);
  if (!running) return <Empty>{c.State.Paused ? 'The container is paused: unpause it to open a terminal.' : 'The container is not running: start it to open a terminal.'}</Empty>;
  if (error) return <ErrorBox error={error} />;
  if (!mod) return <Loading label="Loading the terminal…" />;
  return <mod.TerminalView containerId={c.Id} />;
}

export function ContainerPage({ id, tab }: { id: string; tab: string }): JSX.Element {
  const inspect = useApi<ContainerInspect>(`/containers/${encodeURIComponent(id)}/json`, undefined, { refreshMs: 5000 });
  const c = inspect.data;
  const name = c ? c.Name.replace(/^\//, '') : id;
  useEffect(() => { document.title = `${name} · Berth`; }, [name]);

  if (inspect.error && (!c || NOT_FOUND.test(inspect.error))) {
    return (
      <div class="page">
        <PageHeader title={name} />
        <ErrorBox error={inspect.error} onRetry={NOT_FOUND.test(inspect.error) ? undefined : inspect.reload} />
        <p><a href="#/containers" data-testid="back-to-containers">Back to the containers</a></p>
      </div>
    );
  }
  if (!c) return <div class="page"><PageHeader title={name} /><Loading /></div>;

  const known = TABS.some((t) => t.id === tab);
  return (
    <div class="page container-page" data-testid="container-page">
      <PageHeader title={<>{name} <StateBadge state={c.State.Status} /></>}>
        <ContainerActions c={{ Id: c.Id, State: c.State.Status }} onDone={inspect.reload} small={false} />
      </PageHeader>
      <p class="muted container-sub"><a href="#/containers">Containers</a> / <span class="mono">{shortId(c.Id)}</span> · {c.Config.Image}</p>
      {inspect.error && <ErrorBox error={inspect.error} onRetry={inspect.reload} />}
      <Tabs tabs={TABS} active={known ? tab : ''} hrefFor={(t) => href('containers', id, t)} />
      <div class="tab-panel" key={`${c.Id}/${tab}`}>
        {tab === 'overview' && <Overview c={c} />}
        {tab === 'logs' && <Logs c={c} />}
        {tab === 'stats' && <Stats c={c} />}
        {tab === 'top' && <Top c={c} />}
        {tab === 'terminal' && <TerminalTab c={c} />}
        {tab === 'files' && <FileBrowser containerId={c.Id} />}
        {!known && <Empty>No such tab. <a href={href('containers', id)}>Overview</a></Empty>}
      </div>
    </div>
  );
}
