// Dashboard: daemon facts, object counts, disk usage, and a live feed of the daemon's events.
import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { Async, ErrorBox, Facts, PageHeader } from '../components/ui.tsx';
import { useApi, useStream } from '../lib/client.ts';
import { humanSize } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import { JsonStreamDecoder } from '../lib/streams.ts';

interface Info {
  Name: string; ServerVersion: string; OperatingSystem: string; KernelVersion: string; Architecture: string;
  NCPU: number; MemTotal: number; Driver: string; CgroupVersion?: string; CgroupDriver?: string;
  DockerRootDir: string; Containers: number; ContainersRunning: number; ContainersPaused: number;
  ContainersStopped: number; Images: number; DefaultRuntime?: string;
}

interface DiskUsage {
  LayersSize: number;
  Images: Array<{ Size: number; SharedSize: number; Containers: number }> | null;
  Containers: Array<{ SizeRw?: number; State: string }> | null;
  Volumes: Array<{ UsageData?: { Size: number; RefCount: number } }> | null;
  BuildCache: Array<{ Size: number; InUse: boolean }> | null;
}

export interface EngineEvent {
  Type: string; Action: string; Actor: { ID: string; Attributes?: Record<string, string> }; time: number; timeNano?: number;
}

const MAX_EVENTS = 200;

function Counts({ info }: { info: Info }): JSX.Element {
  const cards: Array<[string, number, string]> = [
    ['Running', info.ContainersRunning, '#/containers?state=running'],
    ['Paused', info.ContainersPaused, '#/containers?state=paused'],
    ['Stopped', info.ContainersStopped, '#/containers?state=exited'],
    ['Images', info.Images, '#/images'],
  ];
  return (
    <div class="cards">
      {cards.map(([label, n, link]) => (
        <a key={label} class="card card-count" href={link}><span class="card-number">{n}</span><span class="card-label">{label}</span></a>
      ))}
    </div>
  );
}

function DiskUsageTable({ du }: { du: DiskUsage }): JSX.Element {
  const images = du.Images ?? [];
  const containers = du.Containers ?? [];
  const volumes = du.Volumes ?? [];
  const cache = du.BuildCache ?? [];
  const rows: Array<[string, number, number, number, number]> = [
    ['Images', images.length, images.filter((i) => i.Containers > 0).length, du.LayersSize, images.filter((i) => i.Containers === 0).reduce((a, i) => a + i.Size - i.SharedSize, 0)],
    ['Containers', containers.length, containers.filter((c) => c.State === 'running').length, containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0), containers.filter((c) => c.State !== 'running').reduce((a, c) => a + (c.SizeRw ?? 0), 0)],
    ['Local volumes', volumes.length, volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length, volumes.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0), volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0)],
    ['Build cache', cache.length, cache.filter((c) => c.InUse).length, cache.reduce((a, c) => a + c.Size, 0), cache.filter((c) => !c.InUse).reduce((a, c) => a + c.Size, 0)],
  ];
  return (
    <div class="scroll-x"><table class="table" aria-label="Disk usage">
      <thead><tr><th>Type</th><th class="num">Total</th><th class="num">Active</th><th class="num">Size</th><th class="num">Reclaimable</th></tr></thead>
      <tbody>
        {rows.map(([t, n, a, s, r]) => <tr key={t}><td>{t}</td><td class="num">{n}</td><td class="num">{a}</td><td class="num">{humanSize(s)}</td><td class="num">{humanSize(r)}</td></tr>)}
      </tbody>
    </table></div>
  );
}

function eventLink(e: EngineEvent): string | undefined {
  if (e.Type === 'container' && !/^(destroy|delete)/.test(e.Action)) return href('containers', e.Actor.ID);
  if (e.Type === 'image' && e.Action !== 'delete' && e.Action !== 'untag') return href('images', e.Actor.ID);
  return undefined;
}

export function EventFeed(): JSX.Element {
  const [events, setEvents] = useState<EngineEvent[]>([]);
  const decoder = useRef(new JsonStreamDecoder<EngineEvent>());
  const error = useStream('/events', undefined, (chunk) => {
    const got = decoder.current.push(chunk);
    if (got.length) setEvents((old) => [...got.reverse(), ...old].slice(0, MAX_EVENTS));
  });
  return (
    <section class="panel" aria-labelledby="events-title">
      <h2 id="events-title">Events <span class="live-dot" title="live" aria-label="live" /></h2>
      {error && <ErrorBox error={error} />}
      {events.length === 0 ? <p class="muted">Waiting for events… (start, stop or pull something)</p> : (
        <ol class="events" aria-live="polite">
          {events.map((e, i) => {
            const name = e.Actor.Attributes?.name ?? e.Actor.ID.replace(/^sha256:/, '').slice(0, 12);
            const link = eventLink(e);
            return (
              <li key={`${e.timeNano ?? e.time}-${i}`} class="event">
                <time>{new Date((e.timeNano ? e.timeNano / 1e6 : e.time * 1000)).toLocaleTimeString()}</time>
                <span class={`event-type event-${e.Type}`}>{e.Type}</span>
                <span class="event-action">{e.Action}</span>
                {link ? <a href={link}>{name}</a> : <span>{name}</span>}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}

export function DashboardPage(): JSX.Element {
  const info = useApi<Info>('/info', undefined, { refreshMs: 5000 });
  const version = useApi<{ Version: string; ApiVersion: string; GitCommit?: string }>('/version');
  const du = useApi<DiskUsage>('/system/df', undefined, { refreshMs: 30000 });
  return (
    <div class="page">
      <PageHeader title="Dashboard" />
      <Async state={info}>{(i) => (
        <>
          <Counts info={i} />
          <div class="grid-2">
            <section class="panel" aria-labelledby="daemon-title">
              <h2 id="daemon-title">Daemon</h2>
              <Facts rows={[
                ['Host', i.Name],
                ['Version', version.data ? `${version.data.Version} (API ${version.data.ApiVersion})` : i.ServerVersion],
                ['Operating system', i.OperatingSystem],
                ['Kernel', i.KernelVersion],
                ['CPUs / memory', `${i.NCPU} / ${humanSize(i.MemTotal)}`],
                ['Storage driver', i.Driver],
                ['Cgroups', `v${i.CgroupVersion ?? '?'} (${i.CgroupDriver ?? '?'})`],
                ['Runtime', i.DefaultRuntime ?? ''],
                ['Data root', i.DockerRootDir],
              ]} />
            </section>
            <section class="panel" aria-labelledby="df-title">
              <h2 id="df-title">Disk usage</h2>
              <Async state={du}>{(d) => <DiskUsageTable du={d} />}</Async>
            </section>
          </div>
        </>
      )}</Async>
      <EventFeed />
    </div>
  );
}
