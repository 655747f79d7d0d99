// Hijacked connections (attach, exec start) and docker's stream multiplexing (pkg/stdcopy).
//
// The docker CLI asks for attach/exec with `Connection: Upgrade` + `Upgrade: tcp` and expects
// `HTTP/1.1 101 UPGRADED`; from then on the socket carries raw bytes both ways: the process's
// output (multiplexed in 8-byte-header frames unless the container has a TTY) and its stdin.
// Older clients without the Upgrade header get `200 OK` and the same byte stream; their stdin
// cannot be read (Node's HTTP parser still owns the read side), which only legacy clients hit.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export const MEDIA_TYPE_RAW_STREAM = 'application/vnd.docker.raw-stream';
/** Announced for multiplexed (non-TTY) streams from API 1.42. */
export const MEDIA_TYPE_MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

export interface HijackedConnection {
  /** The client connection; write output here, read stdin from it (upgrade mode only). */
  socket: Socket;
  /** False for the legacy non-upgrade form: stdin is not available. */
  canRead: boolean;
}

export interface HijackOptions {
  /** Default: raw stream. */
  contentType?: string;
}

/**
 * Takes the connection over from the HTTP layer. `upgradeHead` is what Node read past the
 * request in an upgrade (stdin bytes the client sent early); it is pushed back onto the socket.
 */
export function hijack(req: IncomingMessage, res: ServerResponse, upgrade: { head: Buffer } | undefined, opts: HijackOptions = {}): HijackedConnection {
  const socket = req.socket as Socket;
  if (res.headersSent) throw new Error('hijack after the response started');
  const contentType = opts.contentType ?? MEDIA_TYPE_RAW_STREAM;
  res.detachSocket(socket);
  // Nothing the HTTP layer set (Api-Version, …) goes out: dockerd writes exactly these lines.
  if (upgrade) {
    socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    if (upgrade.head.length) socket.unshift(upgrade.head);
  } else {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n\r\n`);
  }
  socket.setTimeout(0);
  socket.setNoDelay?.(true);
  return { socket, canRead: upgrade !== undefined };
}

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
/** stdcopy's Systemerr: an error from the daemon itself, ends the stream on the client. */
export const SYSTEMERR = 3;
export type StdStreamId = 0 | 1 | 2 | 3;

/** One stdcopy frame: [stream, 0, 0, 0, size uint32 BE] + payload. */
export function muxFrame(stream: StdStreamId, data: Buffer | string): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data) : data;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Splits a multiplexed stream back into frames (the client side of stdcopy). */
export class StdDemuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (stream: StdStreamId, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const stream = this.pending[0];
      if (stream > 3) throw new Error(`unrecognized stream in multiplexed output: ${stream}`);
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const data = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      this.onFrame(stream as StdStreamId, data);
    }
  }

  /** Bytes of an incomplete frame left at the end (should be 0 when the stream ends cleanly). */
  get leftover(): number {
    return this.pending.length;
  }
}
