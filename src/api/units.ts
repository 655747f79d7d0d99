// Sizes and durations as docker prints them (github.com/docker/go-units semantics): both the
// daemon (progress strings) and the CLI (tables) use these, so output matches docker's byte for byte.

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/**
 * Go's `%.<prec>g`: `prec` significant digits, trailing zeros dropped, exponent form when the
 * exponent is < -4 or >= prec ("1e+03"), ties rounded to even as Go does on exact halves.
 */
export function formatG(x: number, prec: number): string {
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : x < 0 ? '-Inf' : 'NaN';
  if (x === 0) return '0';
  const p = Math.max(1, prec);
  let exp = Math.floor(Math.log10(Math.abs(x)));
  let digits = roundSig(x, p, exp);
  // Rounding may carry into a new digit (9.99 → 10.0).
  if (Math.abs(digits) >= 10 ** p) { exp += 1; digits = roundSig(x, p, exp); }
  else if (Math.abs(digits) < 10 ** (p - 1)) { exp -= 1; digits = roundSig(x, p, exp); }
  if (exp < -4 || exp >= p) {
    const mant = trimZeros((digits / 10 ** (p - 1)).toFixed(p - 1));
    const e = Math.abs(exp);
    return `${mant}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  const decimals = Math.max(0, p - 1 - exp);
  return trimZeros((digits / 10 ** decimals).toFixed(decimals));
}

// x scaled to an integer with p significant digits, given x's decimal exponent.
function roundSig(x: number, p: number, exp: number): number {
  const shift = p - 1 - exp;
  const scaled = shift >= 0 ? x * 10 ** shift : x / 10 ** -shift;
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  if (frac === 0.5) return floor % 2 === 0 ? floor : floor + 1;
  return Math.round(scaled);
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function scale(size: number, base: number, units: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < units.length - 1) { size /= base; i++; }
  return [size, units[i]];
}

/** go-units HumanSizeWithPrecision: base 1000 ("4.26MB" at precision 3). */
export function humanSizeWithPrecision(bytes: number, precision: number): string {
  const [v, u] = scale(bytes, 1000, DECIMAL_UNITS);
  return `${formatG(v, precision)}${u}`;
}

/** go-units HumanSize (4 significant digits): progress bars, `docker info`. */
export function humanSize(bytes: number): string {
  return humanSizeWithPrecision(bytes, 4);
}

/** What docker's image and container tables print in SIZE columns (3 significant digits). */
export function displaySize(bytes: number): string {
  return humanSizeWithPrecision(bytes, 3);
}

/** go-units BytesSize: base 1024 ("23.54GiB"), as `docker info` prints Total Memory. */
export function bytesSize(bytes: number): string {
  const [v, u] = scale(bytes, 1024, BINARY_UNITS);
  return `${formatG(v, 4)}${u}`;
}

/** go-units HumanDuration of a duration in milliseconds ("About a minute", "3 days"). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** "2 minutes ago", as docker's CREATED columns. */
export function timeAgo(when: Date | number, now: number = Date.now()): string {
  const t = typeof when === 'number' ? when : when.getTime();
  return `${humanDuration(now - t)} ago`;
}

function parseSize(text: string, base: number): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kKmMgGtTpP]?)([iI]?[bB]?)\s*$/.exec(text);
  if (!m) throw new Error(`invalid size: '${text}'`);
  const mult = { '': 1, k: base, m: base ** 2, g: base ** 3, t: base ** 4, p: base ** 5 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't' | 'p'];
  if (m[3].length === 2 && m[2] === '') throw new Error(`invalid size: '${text}'`);
  return Math.trunc(Number(m[1]) * mult);
}

/** go-units RAMInBytes: "512m", "1.5g", "100" → bytes, base 1024 (docker's -m/--memory, --shm-size). */
export function ramInBytes(text: string): number {
  return parseSize(text, 1024);
}

/** go-units FromHumanSize: "44kB", "17MB" → bytes, base 1000. */
export function fromHumanSize(text: string): number {
  return parseSize(text, 1000);
}
