// Writes to stdout/stderr that never throw: a reader that went away (EPIPE, `| head`) must not
// crash the runtime halfway through creating or deleting a container.
import { writeSync } from 'node:fs';

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(fd, buf, off);
  } catch {
    /* the reader is gone; nothing useful left to do with this output */
  }
}

export const writeStdout = (text: string): void => writeAll(1, text);
export const writeStderr = (text: string): void => writeAll(2, text);
