// Engine API response models Berth produces, named and shaped as in moby's swagger for API 1.47.
// Field order follows dockerd's Go structs, so JSON output reads the same.
import type { RegistryServiceConfig } from '../engine/config.ts';

export interface SystemVersionComponent {
  Name: string;
  Version: string;
  Details?: Record<string, string>;
}

export interface SystemVersion {
  Platform: { Name: string };
  Components: SystemVersionComponent[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  Experimental?: boolean;
  BuildTime: string;
}

export interface RuntimeInfo {
  path: string;
  runtimeArgs?: string[];
  status?: Record<string, string>;
}

export interface Commit { ID: string; Expected: string }

export interface SystemInfo {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: Array<[string, string]> | null;
  Plugins: { Volume: string[]; Network: string[]; Authorization: string[] | null; Log: string[] };
  MemoryLimit: boolean;
  SwapLimit: boolean;
  KernelMemoryTCP?: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  IPv4Forwarding: boolean;
  BridgeNfIptables: boolean;
  BridgeNfIp6tables: boolean;
  Debug: boolean;
  NFd: number;
  OomKillDisable: boolean;
  NGoroutines: number;
  SystemTime: string;
  LoggingDriver: string;
  CgroupDriver: string;
  CgroupVersion: string;
  NEventsListener: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  IndexServerAddress: string;
  RegistryConfig: RegistryServiceConfig;
  NCPU: number;
  MemTotal: number;
  GenericResources: null;
  DockerRootDir: string;
  HttpProxy: string;
  HttpsProxy: string;
  NoProxy: string;
  Name: string;
  Labels: string[];
  ExperimentalBuild: boolean;
  ServerVersion: string;
  Runtimes: Record<string, RuntimeInfo>;
  DefaultRuntime: string;
  Swarm: {
    NodeID: string; NodeAddr: string; LocalNodeState: string; ControlAvailable: boolean; Error: string;
    RemoteManagers: null;
  };
  LiveRestoreEnabled: boolean;
  Isolation: string;
  InitBinary: string;
  ContainerdCommit: Commit;
  RuncCommit: Commit;
  InitCommit: Commit;
  SecurityOptions: string[];
  CDISpecDirs: string[];
  Containerd?: { Address?: string; Namespaces: { Containers: string; Plugins: string } };
  Warnings: string[] | null;
}

/** ImageSummary (GET /images/json, /system/df). */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string>;
  Containers: number;
  Manifests?: unknown[];
}

/** GET /system/df. Containers, Volumes and BuildCache entries are filled by their modules. */
export interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[];
  Containers: Array<Record<string, unknown>>;
  Volumes: Array<Record<string, unknown>>;
  BuildCache: Array<Record<string, unknown>>;
  BuilderSize?: number;
}
