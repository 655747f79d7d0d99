// The plan the C stage executes; see native/PLAN.md for the contract.
// Encoding: records of u16 opcode, u16 argc, then argc × (u32 length, bytes), little-endian.

export const Op = {
  SETNS: 1,
  UNSHARE_TIME: 2,
  OOM_SCORE_ADJ: 3,
  CGROUP_JOIN: 4,
  FIFO: 5,
  CONSOLE_SOCKET: 6,
  ID_MAPS: 7,
  CLONE: 8,
  HOSTNAME: 9,
  DOMAINNAME: 10,
  ROOTFS: 11,
  MOUNT: 12,
  MKNOD: 13,
  SYMLINK: 14,
  MASK: 15,
  READONLY: 16,
  PIVOT: 17,
  WRITE_FILE: 18,
  SESSION_KEYRING: 19,
  RLIMIT: 20,
  CONSOLE: 21,
  CHDIR: 22,
  CAPS_BOUNDING: 23,
  USER: 24,
  CAPS: 25,
  NO_NEW_PRIVS: 26,
  SYNC: 27,
  RUN_HOOK: 28,
  EXEC_PREPARE: 29,
  WAIT_START: 30,
  EXEC: 31,
  SECCOMP: 32,
  CONSOLE_PROXY: 33,
  CGROUP_DEVICES: 34,
  SECCOMP_LISTENER: 35,
  SECCOMP_NOTIFY: 36,
  PERSONALITY: 37,
  MOUNT_SETATTR: 38,
} as const;

export type OpCode = (typeof Op)[keyof typeof Op];
export type Arg = string | number | bigint | boolean | Buffer;

export interface PlanRecord {
  op: OpCode;
  args: Arg[];
}

function argBytes(arg: Arg): Buffer {
  if (Buffer.isBuffer(arg)) return arg;
  if (typeof arg === 'boolean') return Buffer.from(arg ? '1' : '0');
  return Buffer.from(String(arg), 'utf8');
}

export class Plan {
  readonly records: PlanRecord[] = [];

  add(op: OpCode, ...args: Arg[]): this {
    this.records.push({ op, args });
    return this;
  }

  /** The wire form: u32 total length followed by the records. */
  encode(): Buffer {
    const parts: Buffer[] = [];
    let size = 0;
    for (const { op, args } of this.records) {
      const head = Buffer.alloc(4);
      head.writeUInt16LE(op, 0);
      head.writeUInt16LE(args.length, 2);
      parts.push(head);
      size += 4;
      for (const arg of args) {
        const bytes = argBytes(arg);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(bytes.length, 0);
        parts.push(len, bytes);
        size += 4 + bytes.length;
      }
    }
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32LE(size, 0);
    return Buffer.concat([prefix, ...parts], size + 4);
  }

  /** Readable dump for `--debug`. */
  describe(): string {
    const names = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k]));
    return this.records
      .map(({ op, args }) => `${names[op]} ${args.map((a) => JSON.stringify(Buffer.isBuffer(a) ? `<${a.length} bytes>` : String(a))).join(' ')}`)
      .join('\n');
  }
}
