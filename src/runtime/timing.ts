// BERTH_TIMING=1 prints how long each phase of a command took (stderr), to see where time goes.
import { writeStderr } from './output.ts';
const enabled = !!process.env.BERTH_TIMING;
let last = 0;

export function mark(label: string): void {
  if (!enabled) return;
  const now = performance.now();
  writeStderr(`[timing] ${now.toFixed(1).padStart(7)} ms  +${(now - last).toFixed(1).padStart(5)}  ${label}\n`);
  last = now;
}
