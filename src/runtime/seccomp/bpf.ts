// A small classic-BPF assembler for seccomp filters: symbolic labels, forward jumps only, and
// branch relaxation — a conditional jump's 8-bit jt/jf offsets are widened with a trampoline
// (BPF_JA, 32-bit offset, or an inline copy of the `ret` it was going to) when the target is
// more than 255 instructions away.

/** struct sock_filter opcodes (linux/filter.h, linux/bpf_common.h). */
export const BPF = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS
  ALU_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  JA: 0x05, // BPF_JMP | BPF_JA
  JEQ_K: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
  JGT_K: 0x25, // BPF_JMP | BPF_JGT | BPF_K
  JGE_K: 0x35, // BPF_JMP | BPF_JGE | BPF_K
  JSET_K: 0x45, // BPF_JMP | BPF_JSET | BPF_K
  RET_K: 0x06, // BPF_RET | BPF_K
} as const;

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;

export type Cond = 'jeq' | 'jgt' | 'jge' | 'jset';
const COND_CODE: Record<Cond, number> = { jeq: BPF.JEQ_K, jgt: BPF.JGT_K, jge: BPF.JGE_K, jset: BPF.JSET_K };

/** A jump target: a label, or `{ ret: k }` (a shared `ret k`, emitted once at the end). */
export type Target = string | { ret: number };

export type Insn =
  | { op: 'label'; name: string }
  | { op: 'ld'; k: number }
  | { op: 'and'; k: number }
  | { op: 'ret'; k: number }
  | { op: 'ja'; to: Target }
  | { op: 'jmp'; cond: Cond; k: number; jt: Target; jf: Target };

interface Placed { insn: Exclude<Insn, { op: 'label' }>; farT: boolean; farF: boolean }

const retLabel = (k: number) => `\0ret:${k >>> 0}`;
const targetName = (t: Target) => (typeof t === 'string' ? t : retLabel(t.ret));

function encode(out: Buffer, at: number, code: number, jt: number, jf: number, k: number): void {
  out.writeUInt16LE(code, at * 8);
  out.writeUInt8(jt, at * 8 + 2);
  out.writeUInt8(jf, at * 8 + 3);
  out.writeUInt32LE(k >>> 0, at * 8 + 4);
}

/**
 * Lays out `program` (every jump must go forward), appends one `ret k` per distinct `{ ret: k }`
 * target, and encodes it as `struct sock_filter[]` (little-endian, 8 bytes each).
 */
export function assemble(program: Insn[]): Buffer {
  // The shared returns go last, in order of first use.
  const rets = new Map<number, string>();
  const noteRet = (t: Target) => { if (typeof t !== 'string' && !rets.has(t.ret >>> 0)) rets.set(t.ret >>> 0, retLabel(t.ret)); };
  for (const i of program) {
    if (i.op === 'jmp') { noteRet(i.jt); noteRet(i.jf); } else if (i.op === 'ja') noteRet(i.to);
  }
  const all: Insn[] = [...program];
  for (const [k, name] of rets) all.push({ op: 'label', name }, { op: 'ret', k });

  // Labels attach to the next instruction.
  const placed: Placed[] = [];
  const labelAt = new Map<string, number>(); // label → index into `placed`
  for (const i of all) {
    if (i.op === 'label') {
      if (labelAt.has(i.name)) throw new Error(`bpf: duplicate label ${i.name}`);
      labelAt.set(i.name, placed.length);
    } else {
      placed.push({ insn: i, farT: false, farF: false });
    }
  }
  const indexOf = (t: Target): number => {
    const ix = labelAt.get(targetName(t));
    if (ix === undefined || ix >= placed.length) throw new Error(`bpf: undefined label ${targetName(t)}`);
    return ix;
  };

  // Branch relaxation: widen until every short offset fits in 8 bits. Widening only grows the
  // program, so a branch once widened stays widened and the loop ends.
  let pos: number[] = [];
  for (;;) {
    pos = [];
    let p = 0;
    for (const e of placed) {
      pos.push(p);
      p += 1 + (e.farT ? 1 : 0) + (e.farF ? 1 : 0);
    }
    pos.push(p);
    let changed = false;
    placed.forEach((e, ix) => {
      if (e.insn.op !== 'jmp') return;
      // Offsets count from the instruction after the jump (trampolines included).
      const check = (t: Target): boolean => {
        const to = indexOf(t);
        if (to <= ix) throw new Error(`bpf: backward or self jump to ${targetName(t)}`);
        return pos[to]! - (pos[ix]! + 1) > 255;
      };
      if (!e.farT && check(e.insn.jt)) { e.farT = true; changed = true; }
      if (!e.farF && check(e.insn.jf)) { e.farF = true; changed = true; }
    });
    if (!changed) break;
  }

  const total = pos[placed.length]!;
  const out = Buffer.alloc(total * 8);
  const trampoline = (at: number, t: Target) => {
    if (typeof t !== 'string') encode(out, at, BPF.RET_K, 0, 0, t.ret);
    else encode(out, at, BPF.JA, 0, 0, pos[indexOf(t)]! - (at + 1));
  };
  placed.forEach((e, ix) => {
    const at = pos[ix]!;
    const i = e.insn;
    switch (i.op) {
      case 'ld': encode(out, at, BPF.LD_W_ABS, 0, 0, i.k); break;
      case 'and': encode(out, at, BPF.ALU_AND_K, 0, 0, i.k); break;
      case 'ret': encode(out, at, BPF.RET_K, 0, 0, i.k); break;
      case 'ja': {
        const to = indexOf(i.to);
        if (to <= ix) throw new Error(`bpf: backward jump to ${targetName(i.to)}`);
        encode(out, at, BPF.JA, 0, 0, pos[to]! - (at + 1));
        break;
      }
      case 'jmp': {
        let jt: number;
        let jf: number;
        let slot = at + 1;
        if (e.farT) { jt = slot - (at + 1); trampoline(slot++, i.jt); } else jt = pos[indexOf(i.jt)]! - (at + 1);
        if (e.farF) { jf = slot - (at + 1); trampoline(slot++, i.jf); } else jf = pos[indexOf(i.jf)]! - (at + 1);
        encode(out, at, COND_CODE[i.cond], jt, jf, i.k);
        break;
      }
    }
  });
  return out;
}

/** One decoded `struct sock_filter`. */
export interface SockFilter { code: number; jt: number; jf: number; k: number }

export function decode(filter: Buffer): SockFilter[] {
  const out: SockFilter[] = [];
  for (let at = 0; at + 8 <= filter.length; at += 8) {
    out.push({ code: filter.readUInt16LE(at), jt: filter.readUInt8(at + 2), jf: filter.readUInt8(at + 3), k: filter.readUInt32LE(at + 4) });
  }
  return out;
}
