// Display helpers shared by the pages. Pure.

// The daemon's go-units implementations (pure, no Node APIs), so sizes and ages read exactly as
// the docker CLI prints them.
import { bytesSize, displaySize, humanDuration } from '../../api/units.ts';

export { humanDuration };

/** Sizes as docker's SIZE columns print them (decimal units, 3 significant digits). */
export function humanSize(bytes: number): string {
  return Number.isFinite(bytes) && bytes >= 0 ? displaySize(bytes) : '—';
}

/** Memory as docker stats prints it (binary units: MiB, GiB). */
export function binarySize(bytes: number): string {
  return Number.isFinite(bytes) && bytes >= 0 ? bytesSize(bytes) : '—';
}

export function ago(unixSeconds: number, now = Date.now()): string {
  if (!unixSeconds) return '—';
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** "0.0.0.0:8080->80/tcp, 443/tcp" from /containers/json Ports. */
export function formatPorts(ports: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> | undefined): string {
  if (!ports?.length) return '';
  return ports
    .map((p) => (p.PublicPort ? `${p.IP && p.IP !== '::' ? p.IP : '0.0.0.0'}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
    .filter((v, i, a) => a.indexOf(v) === i)
    .join(', ');
}

export function percent(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}%` : '—';
}
