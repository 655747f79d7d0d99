// Signal names and numbers on Linux x86_64/aarch64, as `kill` accepts them.
import { constants } from 'node:os';
import { RuntimeError } from './errors.ts';

const byName = constants.signals as Record<string, number>;

/** Accepts "KILL", "SIGKILL", "9", "sigterm"; realtime "RTMIN+3" too. */
export function parseSignal(value: string): number {
  const text = value.trim().toUpperCase();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // 0 checks that the process exists without signalling it (kill(2)).
    if (n >= 0 && n <= 64) return n;
  } else {
    const name = text.startsWith('SIG') ? text : `SIG${text}`;
    const direct = byName[name];
    if (direct !== undefined) return direct;
    const rt = /^SIGRTM(IN|AX)([+-]\d+)?$/.exec(name);
    if (rt) {
      const base = rt[1] === 'IN' ? 34 : 64;
      const n = base + Number(rt[2] ?? 0);
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw new RuntimeError(`invalid signal "${value}"`);
}

export function signalName(n: number): string {
  for (const [name, num] of Object.entries(byName)) if (num === n) return name;
  return String(n);
}
