// The three files a container sees at /etc/hosts, /etc/resolv.conf and /etc/hostname. They live
// in the container's data dir and the engine bind-mounts them, so a rewrite must keep the inode
// (writeFileSync truncates and writes the same file; a rename would leave the container's bind
// mount on the old inode and it would never see another change).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface HostsEntry { ip: string; names: string[] }

const HOSTS_BASE = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** docker's layout: the fixed lines, --add-host entries, the container's own addresses, then other endpoints. */
export function renderHosts(extra: HostsEntry[], self: HostsEntry[], peers: HostsEntry[]): string {
  const line = (e: HostsEntry): string => `${e.ip}\t${e.names.join(' ')}`;
  return [...HOSTS_BASE, ...extra.map(line), ...self.map(line), ...peers.map(line)].join('\n') + '\n';
}

/** Rewrites a file in place (same inode), skipping the write when nothing changed. */
export function writeInPlace(path: string, content: string): void {
  try {
    if (readFileSync(path, 'utf8') === content) return;
  } catch { /* new file */ }
  writeFileSync(path, content, { mode: 0o644 });
}

export interface ResolvOptions { dns?: string[] | null; search?: string[] | null; options?: string[] | null }

/** The host's resolver configuration; systemd-resolved's stub is replaced by the servers behind it, as docker does. */
export function hostResolvConf(): { path: string; text: string } {
  let path = '/etc/resolv.conf';
  let text = '';
  try { text = readFileSync(path, 'utf8'); } catch { /* no resolver configured */ }
  const servers = parseResolv(text).nameservers;
  const upstream = '/run/systemd/resolve/resolv.conf';
  if (servers.length > 0 && servers.every((s) => s === '127.0.0.53') && existsSync(upstream)) {
    path = upstream;
    text = readFileSync(upstream, 'utf8');
  }
  return { path, text };
}

interface Resolv { nameservers: string[]; search: string[]; options: string[] }

function parseResolv(text: string): Resolv {
  const r: Resolv = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const f = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) r.nameservers.push(f[1]);
    else if ((f[0] === 'search' || f[0] === 'domain') && f.length > 1) r.search = f.slice(1);
    else if (f[0] === 'options' && f.length > 1) r.options.push(...f.slice(1));
  }
  return r;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

/**
 * The container's resolv.conf: --dns/--dns-search/--dns-option replace the host's values; the
 * host's loopback nameservers are dropped in a private network namespace (they would be the
 * container's own loopback), and when none remain Google's public servers are used, as docker.
 */
export function renderResolvConf(opts: ResolvOptions, hostNetwork: boolean): string {
  const host = parseResolv(hostResolvConf().text);
  let servers = opts.dns?.length ? [...opts.dns] : host.nameservers.filter((s) => hostNetwork || !isLoopback(s));
  if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  const search = opts.search?.length ? opts.search.filter((s) => s !== '.') : host.search;
  const options = opts.options?.length ? opts.options : host.options;
  // dockerd's order: search, nameservers, options.
  const lines = search.length ? [`search ${search.join(' ')}`] : [];
  lines.push(...servers.map((s) => `nameserver ${s}`));
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** --dns values must be IP addresses (docker: `x is not an ip address`). */
export function checkDnsServer(s: string): string | undefined {
  return isIP(s) ? undefined : `${s} is not an ip address`;
}
