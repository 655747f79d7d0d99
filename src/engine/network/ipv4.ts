// IPv4 arithmetic for IPAM, the host's routes (/proc/net/route, read without spawning `ip`),
// and the choice of a free subnet from docker's default pools.
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

export interface Subnet { base: number; bits: number }

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** "172.18.0.0/16" → Subnet (the address masked, as Go's ParseCIDR); undefined if malformed. */
export function parseSubnet(s: string): Subnet | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(s);
  if (!m || !isIPv4(m[1])) return undefined;
  const bits = Number(m[2]);
  if (bits > 32) return undefined;
  return { base: (ipToInt(m[1]) & maskOf(bits)) >>> 0, bits };
}

export function subnetString(s: Subnet): string {
  return `${intToIp(s.base)}/${s.bits}`;
}

export function contains(s: Subnet, ip: number): boolean {
  return ((ip & maskOf(s.bits)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const bits = Math.min(a.bits, b.bits);
  const m = maskOf(bits);
  return ((a.base & m) >>> 0) === ((b.base & m) >>> 0);
}

export interface HostRoute { iface: string; subnet: Subnet }

/** The host's IPv4 routes except default routes (a default route overlaps everything). */
export function hostRoutes(): HostRoute[] {
  let text = '';
  try { text = readFileSync('/proc/net/route', 'utf8'); } catch { return []; }
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Little-endian hex: "0000A8C0" is 192.168.0.0.
    const le = (h: string): number => {
      const n = parseInt(h, 16);
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
    };
    const mask = le(f[7]);
    if (mask === 0) continue;
    const bits = popcount(mask);
    out.push({ iface: f[0], subnet: { base: (le(f[1]) & mask) >>> 0, bits } });
  }
  return out;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x; x = (x & (x - 1)) >>> 0) c++;
  return c;
}

/** docker's default address pools: 172.17–31.0.0/16, then 192.168.0.0/16 in /20 pieces. */
export function* defaultPool(): Generator<Subnet> {
  for (let b = 17; b <= 31; b++) yield { base: ipToInt(`172.${b}.0.0`), bits: 16 };
  for (let c = 0; c < 256; c += 16) yield { base: ipToInt(`192.168.${c}.0`), bits: 20 };
}

/**
 * The first pool subnet that overlaps neither a host route (other than through the interfaces in
 * `ownIfaces`, whose subnets are in `taken` anyway) nor a subnet in `taken`.
 */
export function pickSubnet(taken: Subnet[], ownIfaces: Set<string> = new Set()): Subnet | undefined {
  const routes = hostRoutes().filter((r) => !ownIfaces.has(r.iface)).map((r) => r.subnet);
  for (const s of defaultPool()) {
    if (taken.some((t) => overlaps(t, s))) continue;
    if (routes.some((r) => overlaps(r, s))) continue;
    return s;
  }
  return undefined;
}

/** A route of the host (not through `ownIfaces`) that overlaps the subnet, as text; undefined if none. */
export function conflictingRoute(s: Subnet, ownIfaces: Set<string>): string | undefined {
  const r = hostRoutes().find((x) => !ownIfaces.has(x.iface) && overlaps(x.subnet, s));
  return r ? `${subnetString(r.subnet)} dev ${r.iface}` : undefined;
}

/** docker's MAC for an IPv4 endpoint: 02:42 then the four address bytes. */
export function macForIp(ip: number): string {
  return ['02', '42', ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]
    .map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':');
}
