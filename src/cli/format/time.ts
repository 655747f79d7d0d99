// The CLI side of docker's --since/--until: turns what the user typed into the
// "<seconds>.<nanoseconds>" the API takes (docker's timetypes.GetTimestamp):
//   "10m", "1h30m"            a Go duration before now → whole seconds
//   "2026-11-28", "2026-11-28T10:00", "…T10:00:05.5", with "Z" or "+01:00"  → that time
//                              (without a zone: the local time zone)
//   "1795831961", "1795831961.5"  passed through
import { parseDuration } from '../../runtime/events.ts';

export class TimestampError extends Error {
  override name = 'TimestampError';
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/;

export function getTimestamp(value: string, now: number = Date.now()): string {
  if (value !== '0') {
    let ms: number | undefined;
    try { ms = parseDuration(value); } catch { /* not a duration */ }
    if (ms !== undefined) return String(Math.floor((now - ms) / 1000));
  }
  const m = DATE.exec(value);
  if (m) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
    const nanos = BigInt((frac.slice(0, 9) || '0').padEnd(9, '0'));
    let epochMs: number;
    if (zone) {
      epochMs = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
      if (zone !== 'Z' && zone !== 'z') {
        const sign = zone[0] === '-' ? -1 : 1;
        epochMs -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
      }
    } else {
      epochMs = new Date(+y, +mo - 1, +d, +h, +mi, +s).getTime();
    }
    if (Number.isNaN(epochMs)) throw new TimestampError(`parsing time "${value}": out of range`);
    const sec = Math.floor(epochMs / 1000);
    return `${sec}.${nanos.toString().padStart(9, '0')}`;
  }
  if (value.includes('-')) throw new TimestampError(`parsing time "${value}": expected RFC 3339 (2006-01-02T15:04:05Z07:00)`);
  if (!/^\d+(\.\d+)?$/.test(value)) throw new TimestampError(`failed to parse value as time or duration: "${value}"`);
  return value;
}
