// What networking persists in berth.db: networks (docker's record), the networks each container
// is configured for (attachments: survive stops, `network connect` on a stopped container), and
// the sandbox of each running container (its namespace, endpoints with their addresses, published
// ports), which is the IPAM state: an address or host port is taken while a sandbox holds it, and
// a daemon restart reads them back.
import { registerMigrations, type MetadataDb } from '../db.ts';
import type { EndpointSettings, NetworkSettings, PortMap } from '../containers/types.ts';
import type { HostsEntry } from './files.ts';

registerMigrations('networks', [
  {
    version: 1,
    name: 'networks, container attachments and running sandboxes',
    up: (db) => db.exec(`
      CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL) STRICT;
      CREATE TABLE network_attachments (
        container_id TEXT NOT NULL, network_id TEXT NOT NULL, config TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (container_id, network_id)) STRICT;
      CREATE TABLE network_seeded (container_id TEXT PRIMARY KEY) STRICT;
      CREATE TABLE network_sandboxes (container_id TEXT PRIMARY KEY, data TEXT NOT NULL) STRICT;
    `),
  },
]);

export interface IpamConfig { Subnet: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }

/** docker's network resource (GET /networks/{id} minus Containers). */
export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export interface StoredNetwork {
  rec: NetworkRecord;
  /** The host bridge ('' for host and none). */
  bridge: string;
  /** bridge, host, none: listed always, never removed. */
  predefined: boolean;
}

export interface EndpointState {
  networkId: string;
  endpointId: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  hostVeth: string;
  ifName: string;
  aliases: string[];
  config: EndpointSettings;
}

export interface PortState {
  proto: string;
  hostIp: string;
  hostPort: number;
  containerPort: number;
  containerIp: string;
  bridge: string;
}

export interface SandboxState {
  containerId: string;
  name: string;
  hostname: string;
  domainname: string;
  mode: 'bridge' | 'host' | 'none' | 'container';
  netnsPath?: string;
  /** container mode: whose namespace. */
  joined?: string;
  sandboxId: string;
  endpoints: EndpointState[];
  ports: PortState[];
  portMap: PortMap;
  extraHosts: HostsEntry[];
  links: Array<{ name: string; alias: string }>;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
}

export interface Attachment { networkId: string; config: EndpointSettings }

export class NetworkStore {
  constructor(private readonly db: MetadataDb) {
    db.migrate('networks');
  }

  networks(): StoredNetwork[] {
    return (this.db.sqlite.prepare('SELECT data FROM networks').all() as Array<{ data: string }>).map((r) => JSON.parse(r.data) as StoredNetwork);
  }
  putNetwork(n: StoredNetwork): void {
    this.db.sqlite.prepare('INSERT INTO networks (id, name, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data')
      .run(n.rec.Id, n.rec.Name, JSON.stringify(n));
  }
  deleteNetwork(id: string): void {
    this.db.transaction(() => {
      this.db.sqlite.prepare('DELETE FROM network_attachments WHERE network_id = ?').run(id);
      this.db.sqlite.prepare('DELETE FROM networks WHERE id = ?').run(id);
    });
  }

  seeded(containerId: string): boolean {
    return this.db.sqlite.prepare('SELECT 1 FROM network_seeded WHERE container_id = ?').get(containerId) !== undefined;
  }
  attachments(containerId: string): Attachment[] {
    return (this.db.sqlite.prepare('SELECT network_id, config FROM network_attachments WHERE container_id = ? ORDER BY seq').all(containerId) as Array<{ network_id: string; config: string }>)
      .map((r) => ({ networkId: r.network_id, config: JSON.parse(r.config) as EndpointSettings }));
  }
  /** Containers configured for a network (running or not). */
  attachedContainers(networkId: string): string[] {
    return (this.db.sqlite.prepare('SELECT container_id FROM network_attachments WHERE network_id = ?').all(networkId) as Array<{ container_id: string }>).map((r) => r.container_id);
  }
  seed(containerId: string, list: Attachment[]): void {
    this.db.transaction(() => {
      this.db.sqlite.prepare('INSERT OR IGNORE INTO network_seeded (container_id) VALUES (?)').run(containerId);
      for (const a of list) this.attach(containerId, a);
    });
  }
  attach(containerId: string, a: Attachment): void {
    const seq = (this.db.sqlite.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM network_attachments WHERE container_id = ?').get(containerId) as { n: number }).n;
    this.db.sqlite.prepare('INSERT OR REPLACE INTO network_attachments (container_id, network_id, config, seq) VALUES (?, ?, ?, ?)')
      .run(containerId, a.networkId, JSON.stringify(a.config), seq);
  }
  detach(containerId: string, networkId: string): void {
    this.db.sqlite.prepare('DELETE FROM network_attachments WHERE container_id = ? AND network_id = ?').run(containerId, networkId);
  }
  forgetContainer(containerId: string): void {
    this.db.transaction(() => {
      this.db.sqlite.prepare('DELETE FROM network_attachments WHERE container_id = ?').run(containerId);
      this.db.sqlite.prepare('DELETE FROM network_seeded WHERE container_id = ?').run(containerId);
      this.db.sqlite.prepare('DELETE FROM network_sandboxes WHERE container_id = ?').run(containerId);
    });
  }

  sandboxes(): SandboxState[] {
    return (this.db.sqlite.prepare('SELECT data FROM network_sandboxes').all() as Array<{ data: string }>).map((r) => JSON.parse(r.data) as SandboxState);
  }
  putSandbox(s: SandboxState): void {
    this.db.sqlite.prepare('INSERT OR REPLACE INTO network_sandboxes (container_id, data) VALUES (?, ?)').run(s.containerId, JSON.stringify(s));
  }
  deleteSandbox(containerId: string): void {
    this.db.sqlite.prepare('DELETE FROM network_sandboxes WHERE container_id = ?').run(containerId);
  }
}

export type { NetworkSettings };
