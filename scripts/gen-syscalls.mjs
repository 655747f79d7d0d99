// Generates src/runtime/seccomp/syscalls.ts: syscall name → number, per seccomp architecture,
// from the Linux UAPI headers that Debian packages ship (the kernel's own syscall tables):
//
//   x86_64, x86 (i386), x32   linux-libc-dev                /usr/include/x86_64-linux-gnu/asm/unistd_{64,32,x32}.h
//   aarch64                   linux-libc-dev-arm64-cross    /usr/aarch64-linux-gnu/include/asm/unistd.h, i.e.
//                                                           arm64's __ARCH_WANT_* switches + asm-generic/unistd.h
//   arm (EABI)                linux-libc-dev-armhf-cross    /usr/arm-linux-gnueabihf/include/asm/unistd{,-eabi}.h
//                                                           (+ the ARM-private __ARM_NR_* calls: cacheflush, set_tls, …)
//
// The headers are run through the C preprocessor exactly as a program for that architecture would
// include <asm/unistd.h> (so aarch64's conditional entries — renameat, fstat/newfstatat,
// getrlimit/setrlimit, clone3, memfd_secret… — come out as arm64 defines them), and each
// __NR_<name> macro is expanded and evaluated.
//
// Usage: apt-get install linux-libc-dev linux-libc-dev-arm64-cross linux-libc-dev-armhf-cross gcc
//        node scripts/gen-syscalls.mjs            (rewrites the file; commit the result)
//        node scripts/gen-syscalls.mjs --check    (exits 1 if these headers give other tables)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outFile = join(root, 'src/runtime/seccomp/syscalls.ts');
const cc = process.env.CC ?? 'gcc';

/** seccomp arch name → how to preprocess its <asm/unistd.h>. */
const ARCHES = [
  {
    name: 'x86_64', pkg: 'linux-libc-dev',
    include: ['/usr/include/x86_64-linux-gnu', '/usr/include'], defines: ['__x86_64__'],
    header: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  },
  {
    name: 'x86', pkg: 'linux-libc-dev',
    include: ['/usr/include/x86_64-linux-gnu', '/usr/include'], defines: ['__i386__'],
    header: '/usr/include/x86_64-linux-gnu/asm/unistd_32.h',
  },
  {
    name: 'x32', pkg: 'linux-libc-dev',
    include: ['/usr/include/x86_64-linux-gnu', '/usr/include'], defines: ['__x86_64__', '__ILP32__'],
    header: '/usr/include/x86_64-linux-gnu/asm/unistd_x32.h',
  },
  {
    name: 'aarch64', pkg: 'linux-libc-dev-arm64-cross',
    include: ['/usr/aarch64-linux-gnu/include'], defines: ['__aarch64__'],
    header: '/usr/aarch64-linux-gnu/include/asm/unistd.h + asm-generic/unistd.h',
  },
  {
    name: 'arm', pkg: 'linux-libc-dev-armhf-cross',
    include: ['/usr/arm-linux-gnueabihf/include'], defines: ['__arm__', '__ARM_EABI__'],
    header: '/usr/arm-linux-gnueabihf/include/asm/unistd.h + unistd-eabi.h',
    // ARM-private calls (arch/arm/include/uapi/asm/unistd.h), named as libseccomp names them.
    extraPrefix: '__ARM_NR_',
  },
];

/** Macros that match __NR_* but are not syscalls. */
const NOT_SYSCALLS = new Set([
  'syscalls', 'arch_specific_syscall', 'SYSCALL_BASE', 'OABI_SYSCALL_BASE', 'SYSCALL_MASK',
]);
const ARM_NOT_SYSCALLS = new Set(['BASE']);

function pkgVersion(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`gen-syscalls: package ${pkg} is not installed (apt-get install ${pkg})`);
  }
}

function preprocess(arch, source, extraArgs) {
  const args = ['-E', '-P', '-undef', '-nostdinc', ...extraArgs];
  for (const d of arch.defines) args.push(`-D${d}`);
  for (const i of arch.include) args.push('-I', i);
  args.push('-x', 'c', '-');
  return execFileSync(cc, args, { input: source, encoding: 'utf8' });
}

/** Evaluates what the headers' values expand to: integers, `+`, parentheses. */
function evaluate(expr, what) {
  if (!/^[\s()+0-9a-fA-FxXuUlL]+$/.test(expr)) throw new Error(`gen-syscalls: unexpected value for ${what}: ${expr}`);
  const tokens = expr.match(/0[xX][0-9a-fA-F]+|[0-9]+|[()+]/g) ?? [];
  let pos = 0;
  const term = () => {
    const t = tokens[pos++];
    if (t === '(') {
      const v = sum();
      if (tokens[pos++] !== ')') throw new Error(`gen-syscalls: unbalanced value for ${what}: ${expr}`);
      return v;
    }
    if (t === undefined || !/^[0-9]/.test(t)) throw new Error(`gen-syscalls: bad value for ${what}: ${expr}`);
    return Number(t);
  };
  const sum = () => {
    let v = term();
    while (tokens[pos] === '+') { pos++; v += term(); }
    return v;
  };
  const v = sum();
  if (pos !== tokens.length) throw new Error(`gen-syscalls: trailing tokens for ${what}: ${expr}`);
  return v;
}

function table(arch) {
  const src = '#include <asm/unistd.h>\n';
  const defs = preprocess(arch, src, ['-dM']);
  const names = [];
  for (const m of defs.matchAll(/^#define __NR_(\w+)\s/gm)) if (!NOT_SYSCALLS.has(m[1])) names.push(['__NR_', m[1]]);
  if (arch.extraPrefix) {
    const re = new RegExp(`^#define ${arch.extraPrefix}(\\w+)\\s`, 'gm');
    for (const m of defs.matchAll(re)) if (!ARM_NOT_SYSCALLS.has(m[1])) names.push([arch.extraPrefix, m[1]]);
  }
  const probe = src + names.map(([p, n]) => `@@ ${n} = ${p}${n} ;\n`).join('');
  const out = preprocess(arch, probe, []);
  const result = new Map();
  for (const m of out.matchAll(/^@@ (\w+) = (.*) ;$/gm)) {
    const nr = evaluate(m[2], `${arch.name} ${m[1]}`);
    if (result.has(m[1]) && result.get(m[1]) !== nr) throw new Error(`gen-syscalls: ${arch.name} ${m[1]} defined twice`);
    result.set(m[1], nr);
  }
  if (result.size !== names.length) throw new Error(`gen-syscalls: ${arch.name}: expanded ${result.size} of ${names.length} names`);
  return [...result].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
}

function linuxVersion(includeDir) {
  const h = readFileSync(join(includeDir, 'linux/version.h'), 'utf8');
  const get = (k) => new RegExp(`#define LINUX_VERSION_${k} (\\d+)`).exec(h)?.[1];
  const [maj, min, sub] = [get('MAJOR'), get('PATCHLEVEL'), get('SUBLEVEL')];
  if (maj) return `${maj}.${min}.${sub}`;
  const code = Number(/LINUX_VERSION_CODE (\d+)/.exec(h)?.[1]);
  return `${code >> 16}.${(code >> 8) & 255}.${code & 255}`;
}

const lines = [];
lines.push('// GENERATED by scripts/gen-syscalls.mjs — do not edit; regenerate with `node scripts/gen-syscalls.mjs`.');
lines.push('//');
lines.push('// Syscall name → number for each seccomp architecture, from the Linux kernel UAPI headers');
lines.push("// (<asm/unistd.h>, preprocessed as a program for that architecture includes it) in Debian's packages:");
const headerDirs = new Map([
  ['linux-libc-dev', '/usr/include'],
  ['linux-libc-dev-arm64-cross', '/usr/aarch64-linux-gnu/include'],
  ['linux-libc-dev-armhf-cross', '/usr/arm-linux-gnueabihf/include'],
]);
for (const a of ARCHES) {
  const dir = headerDirs.get(a.pkg);
  if (!existsSync(join(dir, 'linux/version.h'))) throw new Error(`gen-syscalls: ${dir} missing (apt-get install ${a.pkg})`);
  lines.push(`//   ${a.name.padEnd(8)} ${a.pkg} ${pkgVersion(a.pkg)} (Linux ${linuxVersion(dir)} headers): ${a.header}`);
}
lines.push('// ARM also gets its ARM-private calls (__ARM_NR_*: breakpoint, cacheflush, usr26, usr32, set_tls, get_tls).');
lines.push('');
lines.push('/** The architectures that have a table. */');
lines.push(`export type SyscallArch = ${ARCHES.map((a) => `'${a.name}'`).join(' | ')};`);
lines.push('');
const exportName = (a) => `${a.name.toUpperCase()}_SYSCALLS`;
for (const a of ARCHES) {
  const entries = table(a);
  lines.push(`/** ${a.name}: ${entries.length} syscalls. */`);
  lines.push(`const ${exportName(a)}: Readonly<Record<string, number>> = {`);
  let line = ' ';
  for (const [name, nr] of entries) {
    const item = ` ${name}: ${nr < 0x10000 ? nr : '0x' + nr.toString(16)},`;
    if (line.length + item.length > 110) { lines.push(line); line = ' '; }
    line += item;
  }
  if (line.trim()) lines.push(line);
  lines.push('};');
  lines.push('');
}
lines.push('export const SYSCALL_TABLES: Readonly<Record<SyscallArch, Readonly<Record<string, number>>>> = {');
for (const a of ARCHES) lines.push(`  ${a.name}: ${exportName(a)},`);
lines.push('};');
const text = lines.join('\n') + '\n';

if (process.argv.includes('--check')) {
  // The tables must match; the header lines may name other package versions.
  const body = (t) => t.slice(t.indexOf('/** The architectures'));
  const current = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
  if (body(current) !== body(text)) {
    console.error(`gen-syscalls: ${outFile} differs from what these headers give; run node scripts/gen-syscalls.mjs`);
    process.exit(1);
  }
  console.log(current === text ? 'gen-syscalls: up to date' : 'gen-syscalls: tables up to date (generated from other header package versions)');
} else {
  writeFileSync(outFile, text);
  console.log(`gen-syscalls: wrote ${outFile}`);
}
