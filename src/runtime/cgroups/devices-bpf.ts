// cgroup v2 device access control: linux.resources.devices → a BPF_PROG_TYPE_CGROUP_DEVICE program,
// loaded and attached to the container's cgroup by the stage (CGROUP_DEVICES, native/PLAN.md).
//
// Semantics (the same as deviceAllowed() below, which the tests compare the program against):
//   * A rule covers a device when its type is "a" (or absent) or the device's type ("c"/"b"), and
//     its major and minor are null/absent/negative (wildcards, runc spells "any" as -1) or equal.
//   * Each access bit (r, w, m) is decided separately: by the LAST covering rule whose access
//     contains it (allow → allowed, deny → denied). A bit no rule decides is denied.
//   * A request is allowed when every bit it asks for is allowed. A request for no bits at all
//     (access(2) with F_OK) is allowed when the device has at least one allowed bit, as a v1
//     exception with any access matches it.
// This is v1's allow-list behaviour with "last rule wins", as runc's and crun's programs evaluate
// rules, but stricter where v1's exact-match removal is lax: a later "deny c *:* w" also takes w
// away from an earlier "allow c 1:3 rwm" (v1 would keep it), and a deny cannot be side-stepped by
// asking for several bits at once (runc's first device program matched on any overlap).
//
// The program keeps the set of allowed bits for the device in r6, walking the rules first to last:
// an allow ORs its bits in, a deny ANDs them out. Everything before the last unconditional rule
// ("a *:* rwm") is dropped: that rule sets r6 to 7 or 0 outright.

import { ConfigError } from '../errors.ts';
import type { DeviceCgroupRule } from '../spec-types.ts';
import { checkAccess } from './common.ts';

/** struct bpf_cgroup_dev_ctx: access_type's low 16 bits. */
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;
/** struct bpf_cgroup_dev_ctx: access_type's high 16 bits. */
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;
const ACC_ALL = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

/** The kernel's limit for an unprivileged program; ours stay far below it (4 insns per rule). */
export const DEVICE_PROG_MAX_INSNS = 4096;

/** A rule after validation: numbers for the kernel's encoding, null = any. */
export interface DeviceMatch {
  allow: boolean;
  /** BPF_DEVCG_DEV_*, or null for "a". */
  type: number | null;
  major: number | null;
  minor: number | null;
  /** BPF_DEVCG_ACC_* bits, non-zero. */
  access: number;
}

/** What the kernel asks the program (struct bpf_cgroup_dev_ctx, decoded). */
export interface DeviceRequest {
  /** 'c' or 'b' (or the BPF_DEVCG_DEV_* number). */
  type: 'c' | 'b' | number;
  major: number;
  minor: number;
  /** Any combination of r, w, m; '' is an access(2) F_OK probe. Or the BPF_DEVCG_ACC_* bits. */
  access: string | number;
}

function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access) bits |= ch === 'r' ? BPF_DEVCG_ACC_READ : ch === 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return bits;
}

function devNumber(v: number | null | undefined, what: string): number | null {
  if (v == null || (typeof v === 'number' && v < 0 && Number.isInteger(v))) return null;
  if (!Number.isInteger(v) || v > 0xffffffff) throw new ConfigError(`${what}: ${JSON.stringify(v)} is not a device number (0..4294967295, or null/-1 for any)`);
  return v;
}

/** Validates linux.resources.devices rules (the messages name the rule) and decodes them. */
export function parseDeviceRules(rules: readonly DeviceCgroupRule[]): DeviceMatch[] {
  return rules.map((r, i) => {
    const where = `linux.resources.devices[${i}]`;
    const t = r.type ?? 'a';
    if (t !== 'a' && t !== 'b' && t !== 'c') throw new ConfigError(`${where}.type ${JSON.stringify(r.type)} must be "a", "b" or "c"`);
    return {
      allow: !!r.allow,
      type: t === 'a' ? null : t === 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK,
      major: devNumber(r.major, `${where}.major`),
      minor: devNumber(r.minor, `${where}.minor`),
      access: accessBits(checkAccess(r.access, i)),
    };
  });
}

function requestBits(req: DeviceRequest): { type: number; access: number } {
  const type = req.type === 'c' ? BPF_DEVCG_DEV_CHAR : req.type === 'b' ? BPF_DEVCG_DEV_BLOCK : req.type;
  const access = typeof req.access === 'number' ? req.access : accessBits(req.access);
  return { type, access };
}

/** The emulation: what the compiled program answers for `req` (true = allow). */
export function deviceAllowed(rules: readonly DeviceCgroupRule[], req: DeviceRequest): boolean {
  const { type, access } = requestBits(req);
  let allowed = 0;
  for (const r of parseDeviceRules(rules)) {
    if (r.type !== null && r.type !== type) continue;
    if (r.major !== null && r.major !== req.major >>> 0) continue;
    if (r.minor !== null && r.minor !== req.minor >>> 0) continue;
    allowed = r.allow ? allowed | r.access : allowed & ~r.access;
  }
  return access === 0 ? allowed !== 0 : (allowed & access) === access;
}

// ---- eBPF encoding (struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm; little-endian) ----

const BPF_LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_K = { and: 0x54, or: 0x44, rsh: 0x74, mov: 0xb4 } as const; // BPF_ALU | op | BPF_K
const ALU32_X_AND = 0x5c; // BPF_ALU | BPF_AND | BPF_X
const JMP32_K = { jeq: 0x16, jne: 0x56 } as const; // BPF_JMP32 | op | BPF_K: compares the low 32 bits
const JMP32_X_JNE = 0x5e; // BPF_JMP32 | BPF_JNE | BPF_X
const BPF_EXIT = 0x95;

/** One instruction, decoded (for tests and --debug dumps). */
export interface BpfInsn { code: number; dst: number; src: number; off: number; imm: number }

function insn(code: number, dst: number, src: number, off: number, imm: number): BpfInsn {
  return { code, dst, src, off, imm };
}

/** Registers: r1 ctx (then free), r2 type, r3 access, r4 major, r5 minor, r6 the allowed bits. */
function buildProgram(rules: DeviceMatch[]): BpfInsn[] {
  // Everything before the last unconditional rule is overridden by it.
  let start = 0;
  let base = 0;
  for (let i = rules.length - 1; i >= 0; i--) {
    const r = rules[i];
    if (r.type === null && r.major === null && r.minor === null && r.access === ACC_ALL) {
      start = i + 1;
      base = r.allow ? ACC_ALL : 0;
      break;
    }
  }
  const p: BpfInsn[] = [
    insn(BPF_LDX_MEM_W, 2, 1, 0, 0), insn(ALU32_K.and, 2, 0, 0, 0xffff), // r2 = type
    insn(BPF_LDX_MEM_W, 3, 1, 0, 0), insn(ALU32_K.rsh, 3, 0, 0, 16), //     r3 = access
    insn(BPF_LDX_MEM_W, 4, 1, 4, 0), //                                      r4 = major
    insn(BPF_LDX_MEM_W, 5, 1, 8, 0), //                                      r5 = minor
    insn(ALU32_K.mov, 6, 0, 0, base), //                                     r6 = allowed bits
  ];
  for (const r of rules.slice(start)) {
    const checks: [number, number][] = [];
    if (r.type !== null) checks.push([2, r.type]);
    if (r.major !== null) checks.push([4, r.major]);
    if (r.minor !== null) checks.push([5, r.minor]);
    // Each check skips the rest of this rule: the other checks and the one update.
    for (const [k, [reg, value]] of checks.entries()) p.push(insn(JMP32_K.jne, reg, 0, checks.length - k, value | 0));
    p.push(r.allow ? insn(ALU32_K.or, 6, 0, 0, r.access) : insn(ALU32_K.and, 6, 0, 0, ACC_ALL & ~r.access));
  }
  p.push(
    insn(ALU32_K.mov, 0, 0, 0, 0), //          r0 = 0 (deny)
    insn(JMP32_K.jeq, 3, 0, 4, 0), //          no access bits asked for (F_OK): goto any
    insn(ALU32_X_AND, 6, 3, 0, 0), //          r6 &= r3
    insn(JMP32_X_JNE, 6, 3, 1, 0), //          some asked-for bit is not allowed: goto out
    insn(ALU32_K.mov, 0, 0, 0, 1), //          r0 = 1 (allow)
    insn(BPF_EXIT, 0, 0, 0, 0), //             out: return r0
    insn(JMP32_K.jeq, 6, 0, 1, 0), //          any: nothing allowed at all: goto out2
    insn(ALU32_K.mov, 0, 0, 0, 1), //          r0 = 1
    insn(BPF_EXIT, 0, 0, 0, 0), //             out2: return r0
  );
  return p;
}

export function encodeInsns(insns: BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((i, n) => {
    buf.writeUInt8(i.code, n * 8);
    buf.writeUInt8((i.src << 4) | i.dst, n * 8 + 1);
    buf.writeInt16LE(i.off, n * 8 + 2);
    buf.writeInt32LE(i.imm | 0, n * 8 + 4);
  });
  return buf;
}

export function decodeInsns(buf: Buffer): BpfInsn[] {
  if (buf.length % 8) throw new Error(`an eBPF program is a multiple of 8 bytes, not ${buf.length}`);
  const out: BpfInsn[] = [];
  for (let o = 0; o < buf.length; o += 8) {
    const regs = buf.readUInt8(o + 1);
    out.push({ code: buf.readUInt8(o), dst: regs & 0xf, src: regs >> 4, off: buf.readInt16LE(o + 2), imm: buf.readInt32LE(o + 4) });
  }
  return out;
}

/** Compiles the rules (in order, the last covering rule wins per access bit) to struct bpf_insn bytes. */
export function compileDeviceFilter(rules: readonly DeviceCgroupRule[]): Buffer {
  const insns = buildProgram(parseDeviceRules(rules));
  if (insns.length > DEVICE_PROG_MAX_INSNS) {
    throw new ConfigError(`linux.resources.devices: ${rules.length} rules make a device program of ${insns.length} instructions, more than the kernel's ${DEVICE_PROG_MAX_INSNS}`);
  }
  return encodeInsns(insns);
}

/**
 * Runs a program made by compileDeviceFilter on one request: a small interpreter for exactly the
 * instructions this file emits (anything else throws), so tests check the bytes themselves.
 */
export function runDeviceFilter(program: Buffer, req: DeviceRequest): number {
  const insns = decodeInsns(program);
  const { type, access } = requestBits(req);
  const ctx = [((access & 0xffff) << 16 | (type & 0xffff)) >>> 0, req.major >>> 0, req.minor >>> 0];
  const reg = new Array<number>(11).fill(0);
  const u32 = (v: number): number => v >>> 0;
  for (let pc = 0, steps = 0; pc < insns.length; pc++) {
    if (++steps > 100000) throw new Error('the program does not terminate');
    const { code, dst, src, off, imm } = insns[pc];
    const k = u32(imm);
    switch (code) {
      case BPF_LDX_MEM_W:
        if (src !== 1 || off % 4 || off < 0 || off > 8) throw new Error(`pc ${pc}: load from r${src}+${off}`);
        reg[dst] = ctx[off / 4];
        break;
      case ALU32_K.and: reg[dst] = u32(reg[dst] & k); break;
      case ALU32_K.or: reg[dst] = u32(reg[dst] | k); break;
      case ALU32_K.rsh: reg[dst] = reg[dst] >>> (k & 31); break;
      case ALU32_K.mov: reg[dst] = k; break;
      case ALU32_X_AND: reg[dst] = u32(reg[dst] & reg[src]); break;
      case JMP32_K.jeq: if (u32(reg[dst]) === k) pc += off; break;
      case JMP32_K.jne: if (u32(reg[dst]) !== k) pc += off; break;
      case JMP32_X_JNE: if (u32(reg[dst]) !== u32(reg[src])) pc += off; break;
      case BPF_EXIT: return reg[0];
      default: throw new Error(`pc ${pc}: unexpected opcode 0x${code.toString(16)}`);
    }
  }
  throw new Error('the program falls off its end');
}
