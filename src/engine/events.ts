// The daemon's event bus: what `GET /events` (docker events) streams.
//
// Modules publish with `events.log(type, action, actor)`; the bus stamps the time, fills the
// deprecated status/id/from fields for container and image events (as dockerd still does), keeps
// the last EVENTS_KEPT events in memory for `since`/`until` replays (dockerd keeps 256 and, like
// it, loses them on restart) and hands each event synchronously to every subscriber.
//
// Times are nanoseconds as bigint: timeNano does not fit a double, and the docker CLI prints all
// nine digits. encodeEvent() writes the JSON dockerd writes (field order, sorted attribute keys).
import { familiarName, parseNormalizedReference } from '../image/reference.ts';
import type { FilterArgs } from './filters.ts';

export type EventType =
  | 'builder' | 'config' | 'container' | 'daemon' | 'image' | 'network' | 'node' | 'plugin'
  | 'secret' | 'service' | 'volume';

export interface EventActor {
  ID: string;
  Attributes: Record<string, string>;
}

export interface EventMessage {
  /** Deprecated mirrors of Action / Actor.ID / Actor.Attributes.image, set for container and image events. */
  status?: string;
  id?: string;
  from?: string;
  Type: EventType;
  Action: string;
  Actor: EventActor;
  scope: 'local' | 'swarm';
  /** Seconds since the epoch. */
  time: number;
  /** Nanoseconds since the epoch. */
  timeNano: bigint;
}

/** As many as dockerd keeps for replays. */
export const EVENTS_KEPT = 256;

// A wall clock with nanosecond steps: the epoch time at start plus the monotonic clock since,
// so two events logged in the same millisecond still order and compare correctly.
const wallAtStart = BigInt(Date.now()) * 1_000_000n;
const hrAtStart = process.hrtime.bigint();
let lastNano = 0n;
export function nowNano(): bigint {
  let t = wallAtStart + (process.hrtime.bigint() - hrAtStart);
  if (t <= lastNano) t = lastNano + 1n;
  lastNano = t;
  return t;
}

export interface Subscription {
  /** Past events matching the request (oldest first), to send before live ones. */
  buffered: EventMessage[];
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** Replay kept events at or after this time (ns). */
  since?: bigint;
  /** Replay only events up to this time (ns); the caller ends the stream when it passes. */
  until?: bigint;
  filter?: (ev: EventMessage) => boolean;
}

type Listener = { filter?: (ev: EventMessage) => boolean; onEvent: (ev: EventMessage) => void; onClose?: () => void };

export class EventBus {
  private readonly kept: EventMessage[] = [];
  private readonly listeners = new Set<Listener>();

  constructor(private readonly limit = EVENTS_KEPT) {}

  /** Publishes an event; returns it as sent. */
  log(type: EventType, action: string, actor: { ID: string; Attributes?: Record<string, string> }): EventMessage {
    const timeNano = nowNano();
    const ev: EventMessage = {
      Type: type,
      Action: action,
      Actor: { ID: actor.ID, Attributes: { ...(actor.Attributes ?? {}) } },
      scope: 'local',
      time: Number(timeNano / 1_000_000_000n),
      timeNano,
    };
    if (type === 'container' || type === 'image') {
      ev.status = action;
      ev.id = actor.ID;
      if (type === 'container' && ev.Actor.Attributes.image) ev.from = ev.Actor.Attributes.image;
    }
    this.kept.push(ev);
    if (this.kept.length > this.limit) this.kept.splice(0, this.kept.length - this.limit);
    for (const l of this.listeners) {
      if (l.filter && !l.filter(ev)) continue;
      try {
        l.onEvent(ev);
      } catch {
        // A broken subscriber (its client went away) must not stop delivery to the others.
      }
    }
    return ev;
  }

  /**
   * Subscribes to live events and returns the kept ones a `since`/`until` request replays
   * (none when neither is given, as dockerd).
   */
  subscribe(opts: SubscribeOptions, onEvent: (ev: EventMessage) => void, onClose?: () => void): Subscription {
    const buffered: EventMessage[] = [];
    if (opts.since !== undefined || opts.until !== undefined) {
      const since = opts.since ?? 0n;
      for (const ev of this.kept) {
        if (ev.timeNano < since) continue;
        if (opts.until !== undefined && opts.until > 0n && ev.timeNano > opts.until) continue;
        if (opts.filter && !opts.filter(ev)) continue;
        buffered.push(ev);
      }
    }
    const listener: Listener = { filter: opts.filter, onEvent, onClose };
    this.listeners.add(listener);
    return { buffered, unsubscribe: () => { this.listeners.delete(listener); } };
  }

  /** Subscribers now (Info.NEventsListener). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Ends every subscription (daemon shutdown). */
  close(): void {
    const all = [...this.listeners];
    this.listeners.clear();
    for (const l of all) {
      try { l.onClose?.(); } catch { /* shutting down anyway */ }
    }
  }
}

/** One event as dockerd's JSON encoder writes it (no trailing newline). */
export function encodeEvent(ev: EventMessage): string {
  const attrs: Record<string, string> = {};
  for (const k of Object.keys(ev.Actor.Attributes).sort()) attrs[k] = ev.Actor.Attributes[k];
  const body: Record<string, unknown> = {};
  if (ev.status) body.status = ev.status;
  if (ev.id) body.id = ev.id;
  if (ev.from) body.from = ev.from;
  body.Type = ev.Type;
  body.Action = ev.Action;
  body.Actor = { ID: ev.Actor.ID, Attributes: attrs };
  body.scope = ev.scope;
  body.time = ev.time;
  const json = JSON.stringify(body);
  return `${json.slice(0, -1)},"timeNano":${ev.timeNano}}`;
}

function stripTag(image: string): string {
  try {
    return familiarName(parseNormalizedReference(image));
  } catch {
    return image;
  }
}

// The event types whose `--filter <type>=…` matches the actor's ID or name by prefix.
const NAMED_TYPES: EventType[] = ['daemon', 'container', 'plugin', 'volume', 'network', 'service', 'node', 'secret', 'config'];

/** dockerd's event filter: type, event, scope, label, image, and one key per actor type. */
export function eventFilter(f: FilterArgs): (ev: EventMessage) => boolean {
  // A bare exec_create / exec_start / health_status matches the action's prefix (exec_create: sh …).
  const fuzzyEvent = f.get('event').some((v) => v === 'health_status' || v === 'exec_create' || v === 'exec_start');
  return (ev) => {
    if (!(fuzzyEvent ? f.fuzzyMatch('event', ev.Action) : f.exactMatch('event', ev.Action))) return false;
    if (!f.exactMatch('type', ev.Type)) return false;
    if (f.contains('scope') && !f.exactMatch('scope', ev.scope)) return false;
    // As dockerd, `container=x` is checked against any event's actor, so it also drops events of
    // other types (their actors are not named x).
    for (const t of NAMED_TYPES) {
      if (f.contains(t) && !f.fuzzyMatch(t, ev.Actor.ID) && !f.fuzzyMatch(t, ev.Actor.Attributes.name ?? '')) return false;
    }
    if (f.contains('image')) {
      const name = ev.Actor.Attributes[ev.Type === 'image' ? 'name' : 'image'] ?? '';
      const id = ev.Actor.ID;
      if (!(f.exactMatch('image', id) || f.exactMatch('image', name) || f.exactMatch('image', stripTag(id)) || f.exactMatch('image', stripTag(name)))) return false;
    }
    return f.matchKVList('label', ev.Actor.Attributes);
  };
}
