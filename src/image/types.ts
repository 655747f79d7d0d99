// The contracts between the image tier's modules (issue 4). Each module owns one side:
//   reference.ts            parse/normalise image references (docker's rules)
//   registry/               the OCI distribution client (auth, manifests, blobs, push)
//   content-store.ts        content-addressed blobs with resumable ingests
//   unpack/                 layer tar → snapshot directory (gzip/zstd/plain, whiteouts, confinement)
//   snapshots.ts            overlay (or copying) snapshots keyed by chain ID
//   image-store.ts          names/tags → image records (SQLite, shared with the engine's db)
//   service.ts              pull/push/save/load/import/prune: the operations the API exposes
// Dependencies point downward: service → {registry, content-store, unpack, snapshots, image-store}.

/** `sha256:<64 hex>`; the only algorithm Berth writes (it verifies sha512 when reading). */
export type Digest = string;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string; // GOARCH names: amd64, arm64, arm, 386, ppc64le, s390x, riscv64
  os: string; // linux
  variant?: string; // v7, v8
  'os.version'?: string;
  'os.features'?: string[];
}

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** A single-platform image manifest (OCI or Docker schema2; same shape). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

/** An OCI index or a Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image config (OCI image-spec config.json, which Docker's is a superset of). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  // Docker-only fields are kept verbatim (container, container_config, docker_version, …).
  [extra: string]: unknown;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  Shell?: string[];
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
  [extra: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/**
 * Progress of a long operation, one event per change; the API turns these into Docker's
 * JSON-lines messages ({status, id, progressDetail:{current,total}, progress}).
 * `id` is the short (12-hex) layer id docker shows, or undefined for whole-image lines.
 */
export interface ProgressEvent {
  id?: string;
  status: string; // 'Pulling fs layer', 'Waiting', 'Downloading', 'Verifying Checksum', 'Download complete',
  //                 'Extracting', 'Pull complete', 'Already exists', 'Preparing', 'Pushing', 'Pushed',
  //                 'Layer already exists', 'Mounted from <repo>', or a free-form line
  current?: number;
  total?: number;
}
export type ProgressSink = (event: ProgressEvent) => void;
