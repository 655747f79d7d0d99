// The unpacker's one error type. Every refusal names the layer and the entry, so a user can tell
// which image and which file are at fault without re-running anything.
import { shortId } from '../digest.ts';

export type LayerErrorReason =
  | 'escape' // a name or hard-link target that leaves the layer root (`..`)
  | 'symlink' // a write through a symbolic link (a parent component is a symlink)
  | 'hardlink' // a hard link to nothing, to a directory, or to a deleted file
  | 'conflict' // a parent that is not a directory, or an entry that cannot replace what is there
  | 'format' // not a tar archive, a bad header, an unknown entry type
  | 'truncated' // the compressed or tar stream ends early
  | 'compression' // corrupt compressed data, or an unsupported compression
  | 'digest' // the compressed bytes do not match the layer's digest
  | 'diffid' // the uncompressed bytes do not match the config's diff_id
  | 'unsupported' // a valid tar feature Berth does not implement (sparse files, multi-volume)
  | 'io'; // the filesystem refused a write (ENOSPC, EPERM, …)

/** Renders a raw name (bytes held as latin1) for a message: as UTF-8 when it is, escaped when not. */
export function displayName(raw: string): string {
  const text = Buffer.from(raw, 'latin1').toString('utf8');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

export class LayerError extends Error {
  override name = 'LayerError';
  /** The layer (blob digest, or diff ID when that is all that is known); set by applyLayer. */
  layer: string | undefined;
  private readonly detail: string;

  constructor(readonly reason: LayerErrorReason, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.detail = detail;
  }

  /** Prefixes the message with the layer, once (`layer sha256:0123456789ab: …`). */
  withLayer(layer: string | undefined): this {
    if (layer && !this.layer) {
      this.layer = layer;
      this.message = `layer ${layer.includes(':') ? `${layer.slice(0, layer.indexOf(':'))}:${shortId(layer)}` : layer}: ${this.detail}`;
    }
    return this;
  }
}
