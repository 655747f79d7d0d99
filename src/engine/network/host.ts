// The host side of networking: names of host objects, the commands that make them (iproute2 in
// batch mode, util-linux unshare/umount, iptables-restore), and the firewall rendered as a whole.
//
// Firewall: each daemon owns five chains (nat: <p>-nat for DNAT, <p>-post for masquerading;
// filter: <p>-fwd, <p>-iso1, <p>-iso2 for forwarding and isolation between its bridges), where
// <p> is "berth" + the daemon's bridge suffix. Every change re-renders all five from the service's
// state and loads them with one `iptables-restore --noflush` (declaring a chain flushes it), so
// the kernel's rules always equal the state and there is no rule-by-rule bookkeeping to drift.
// The jumps into them from the built-in chains are inserted once and removed with the chains when
// no bridge of this daemon is left.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A host command failed; the message has the command and what it printed. */
export class HostCommandError extends Error {
  override name = 'HostCommandError';
}

export function runCommand(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', (e) => reject(new HostCommandError(`${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new HostCommandError(`${cmd} ${args.join(' ')} failed (${code}): ${err.trim() || out.trim()}`));
    });
    child.stdin.on('error', () => { /* the command exited early; its status tells */ });
    child.stdin.end(input ?? '');
  });
}

/** Interface and chain names of one daemon. */
export class HostNames {
  readonly prefix: string;
  constructor(readonly suffix: string) {
    this.prefix = `berth${suffix}`;
  }
  /** docker0's counterpart. */
  get defaultBridge(): string { return `${this.prefix}0`; }
  /** A user network's bridge: prefix, "b", then as much of the network id as fits in 15 characters. */
  bridgeFor(networkId: string): string { return `${this.prefix}b${networkId.slice(0, 15 - this.prefix.length - 1)}`; }
  /** A fresh host-side veth name that no interface has now. */
  private get vethHexLength(): number { return Math.min(15 - this.prefix.length - 1, 8); }
  veth(): string {
    for (;;) {
      const name = `${this.prefix}v${randomBytes(4).toString('hex').slice(0, this.vethHexLength)}`;
      if (!linkExists(name)) return name;
    }
  }
  /**
   * Whether an interface name is one of this daemon's veths. Exact: another daemon's suffix that
   * starts with ours puts its own kind letter where ours has hex digits, or has another length.
   */
  isOwnVeth(name: string): boolean {
    return name.length === this.prefix.length + 1 + this.vethHexLength && name.startsWith(`${this.prefix}v`)
      && /^[0-9a-f]+$/.test(name.slice(this.prefix.length + 1));
  }
  chain(kind: 'nat' | 'post' | 'fwd' | 'iso1' | 'iso2'): string { return `${this.prefix}-${kind}`; }
  get chains(): string[] { return (['nat', 'post', 'fwd', 'iso1', 'iso2'] as const).map((k) => this.chain(k)); }
}

/**
 * Whether a network device of that name exists in our network namespace. Read from
 * /proc/self/net/dev, which always shows the reader's namespace; /sys/class/net shows the one
 * sysfs was mounted in, which after `unshare --net` alone is still the host's.
 */
export function linkExists(name: string): boolean {
  try {
    return readFileSync('/proc/self/net/dev', 'utf8').split('\n').some((l) => l.trimStart().startsWith(`${name}:`));
  } catch {
    return existsSync(`/sys/class/net/${name}`);
  }
}

export function writeSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === value) return;
  } catch { /* try the write, which says why */ }
  writeFileSync(path, value);
}

// ---------------------------------------------------------------------------------------------
// network namespaces
// ---------------------------------------------------------------------------------------------

function isMountPoint(path: string): boolean {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    const esc = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
    return mounts.split('\n').some((l) => l.split(' ')[4] === esc);
  } catch {
    return false;
  }
}

/**
 * A new network namespace bind-mounted on `path`, configured by `ipBatch` (iproute2 batch lines)
 * run inside it: one process for both, which is most of a container's networking cost.
 */
export async function createNetns(path: string, ipBatch: string[]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  if (isMountPoint(path)) await removeNetns(path);
  writeFileSync(path, '', { mode: 0o444 });
  try {
    await runCommand('unshare', [`--net=${path}`, 'ip', '-batch', '-'], `${ipBatch.join('\n')}\n`);
  } catch (e) {
    await removeNetns(path).catch(() => {});
    throw e;
  }
}

/** Configures links in an existing namespace (hot-plug). */
export async function ipBatchIn(netnsPath: string | undefined, lines: string[], force = false): Promise<void> {
  if (lines.length === 0) return;
  const ipArgs = [...(force ? ['-force'] : []), '-batch', '-'];
  if (netnsPath === undefined) await runCommand('ip', ipArgs, `${lines.join('\n')}\n`);
  else await runCommand('nsenter', [`--net=${netnsPath}`, 'ip', ...ipArgs], `${lines.join('\n')}\n`);
}

/** Unmounts and deletes a namespace file; the kernel frees the namespace (and its veths) with its last user. */
export async function removeNetns(path: string): Promise<void> {
  if (isMountPoint(path)) {
    try {
      await runCommand('umount', [path]);
    } catch (e) {
      if (isMountPoint(path)) await runCommand('umount', ['-l', path]).catch(() => { throw e; });
    }
  }
  rmSync(path, { force: true });
}

// ---------------------------------------------------------------------------------------------
// firewall
// ---------------------------------------------------------------------------------------------

export interface FirewallBridge { name: string; subnet: string; internal: boolean }
export interface FirewallPort {
  proto: string;
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  bridge: string;
}

function jumps(n: HostNames): Record<'nat' | 'filter', Array<[string, string]>> {
  return {
    nat: [
      ['PREROUTING', `-m addrtype --dst-type LOCAL -j ${n.chain('nat')}`],
      ['OUTPUT', `-m addrtype --dst-type LOCAL -j ${n.chain('nat')}`],
      ['POSTROUTING', `-j ${n.chain('post')}`],
    ],
    filter: [['FORWARD', `-j ${n.chain('fwd')}`]],
  };
}

/** The iptables-restore input that makes the daemon's chains equal to this state. */
export function renderFirewall(
  n: HostNames, bridges: FirewallBridge[], ports: FirewallPort[], insertJump: (table: string, chain: string, rule: string) => boolean,
): string {
  const [nat, post, fwd, iso1, iso2] = [n.chain('nat'), n.chain('post'), n.chain('fwd'), n.chain('iso1'), n.chain('iso2')];
  const j = jumps(n);
  const natLines = [`*nat`, `:${nat} - [0:0]`, `:${post} - [0:0]`];
  const rules = portRules(n, ports);
  for (const r of rules.filter((x) => x.table === 'nat')) natLines.push(`-A ${r.chain} ${r.rule}`);
  for (const b of bridges) {
    if (!b.internal) natLines.push(`-A ${post} -s ${b.subnet} ! -o ${b.name} -j MASQUERADE`);
    // Published ports reached from 127.0.0.1 (route_localnet): the container must answer the bridge, not its own loopback.
    natLines.push(`-A ${post} -o ${b.name} -m addrtype --src-type LOCAL -j MASQUERADE`);
  }
  for (const [chain, rule] of j.nat) if (insertJump('nat', chain, rule)) natLines.push(`-I ${chain} ${rule}`);
  natLines.push('COMMIT');

  const f = [`*filter`, `:${fwd} - [0:0]`, `:${iso1} - [0:0]`, `:${iso2} - [0:0]`, `-A ${fwd} -j ${iso1}`];
  for (const b of bridges) {
    if (b.internal) {
      f.push(`-A ${fwd} -i ${b.name} ! -o ${b.name} -j DROP`, `-A ${fwd} ! -i ${b.name} -o ${b.name} -j DROP`);
    }
    f.push(`-A ${fwd} -o ${b.name} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    for (const r of portRules(n, ports.filter((x) => x.bridge === b.name)).filter((x) => x.table === 'filter')) f.push(`-A ${r.chain} ${r.rule}`);
    f.push(`-A ${fwd} -i ${b.name} -o ${b.name} -j ACCEPT`);
    if (!b.internal) f.push(`-A ${fwd} -i ${b.name} ! -o ${b.name} -j ACCEPT`);
    // Nothing else from outside reaches a container (as docker's final DROP).
    f.push(`-A ${fwd} -o ${b.name} -j DROP`);
    f.push(`-A ${iso1} -i ${b.name} ! -o ${b.name} -j ${iso2}`, `-A ${iso2} -o ${b.name} -j DROP`);
  }
  for (const [chain, rule] of j.filter) if (insertJump('filter', chain, rule)) f.push(`-I ${chain} ${rule}`);
  f.push('COMMIT');
  return `${natLines.join('\n')}\n${f.join('\n')}\n`;
}

/**
 * Only one sandbox's port rules, added or deleted: a full re-render flushes chains, which makes
 * iptables-nft fetch the whole ruleset (~30 ms here), while appending is ~5 ms; so starts with
 * published ports use this, and the full render is kept for bridges coming and going. The rules
 * are the ones renderFirewall writes for these ports, so either form can replace the other.
 */
export function renderPortRules(n: HostNames, ports: FirewallPort[], action: 'add' | 'delete'): string {
  const nat = ['*nat'];
  const filter = ['*filter'];
  for (const r of portRules(n, ports)) {
    const op = action === 'delete' ? '-D' : r.table === 'filter' ? '-I' : '-A';
    // Filter ACCEPTs go first: the chain ends with each bridge's DROP.
    const pos = action === 'add' && r.table === 'filter' ? ' 1' : '';
    (r.table === 'nat' ? nat : filter).push(`${op} ${r.chain}${pos} ${r.rule}`);
  }
  return `${nat.join('\n')}\nCOMMIT\n${filter.join('\n')}\nCOMMIT\n`;
}

function portRules(n: HostNames, ports: FirewallPort[]): Array<{ table: 'nat' | 'filter'; chain: string; rule: string }> {
  const out: Array<{ table: 'nat' | 'filter'; chain: string; rule: string }> = [];
  for (const p of ports) {
    const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? `-d ${p.hostIp}/32 ` : '';
    out.push({ table: 'nat', chain: n.chain('nat'), rule: `${dst}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.containerIp}:${p.containerPort}` });
    // Hairpin: a container reaching its own published port through the host.
    out.push({ table: 'nat', chain: n.chain('post'), rule: `-s ${p.containerIp}/32 -d ${p.containerIp}/32 -p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -j MASQUERADE` });
    out.push({ table: 'filter', chain: n.chain('fwd'), rule: `-d ${p.containerIp}/32 ! -i ${p.bridge} -o ${p.bridge} -p ${p.proto} -m ${p.proto} --dport ${p.containerPort} -j ACCEPT` });
  }
  return out;
}

/** The iptables-restore input that removes the daemon's jumps and chains. */
export function renderFirewallRemoval(n: HostNames, present: Set<string>): string {
  const j = jumps(n);
  const chains = { nat: [n.chain('nat'), n.chain('post')], filter: [n.chain('fwd'), n.chain('iso1'), n.chain('iso2')] };
  let out = '';
  for (const table of ['nat', 'filter'] as const) {
    const lines = [`*${table}`];
    for (const c of chains[table]) if (present.has(`${table} :${c}`)) lines.push(`:${c} - [0:0]`);
    for (const [chain, rule] of j[table]) if (present.has(`${table} -A ${chain} ${rule}`)) lines.push(`-D ${chain} ${rule}`);
    for (const c of chains[table]) if (present.has(`${table} :${c}`)) lines.push(`-X ${c}`);
    lines.push('COMMIT');
    out += `${lines.join('\n')}\n`;
  }
  return out;
}

/** "<table> <line>" for every chain declaration and built-in-chain jump of this daemon now in the kernel. */
export async function firewallPresent(n: HostNames): Promise<Set<string>> {
  const present = new Set<string>();
  for (const table of ['nat', 'filter']) {
    const text = await runCommand('iptables-save', ['-t', table]);
    for (const line of text.split('\n')) {
      if (line.startsWith(':') && n.chains.includes(line.slice(1).split(' ')[0])) present.add(`${table} ${line.split(' ')[0]}`);
      else if (line.startsWith('-A ') && new RegExp(`-j ${n.prefix}-(nat|post|fwd)$`).test(line)) present.add(`${table} ${line}`);
    }
  }
  return present;
}

export async function applyFirewall(text: string): Promise<void> {
  await runCommand('iptables-restore', ['-w', '--noflush'], text);
}
