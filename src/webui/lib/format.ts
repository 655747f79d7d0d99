// Display helpers shared by the pages. Pure.

/** docker's units.HumanSize (decimal: kB, MB, GB), three significant digits. */
export function humanSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = bytes;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : Number(v.toPrecision(3))}${units[i]}`;
}

/** Binary sizes for memory (MiB, GiB), as docker stats shows them. */
export function binarySize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[i]}`;
}

/** "3 seconds", "About a minute", "2 hours" — docker's HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
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
