// Loading and validating a bundle's config.json. Everything that can be checked without touching
// the system is checked here, so that `create` fails before it creates anything.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from './errors.ts';
import type { Namespace, NamespaceType, Spec } from './spec-types.ts';

const NAMESPACE_TYPES: readonly NamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

export function loadSpec(bundle: string): Spec {
  const path = join(resolve(bundle), 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (is --bundle right?)' : (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  validateSpec(value, path);
  return value;
}

function fail(where: string, message: string): never {
  throw new ConfigError(`${where}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkString(v: unknown, where: string, required = false): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'string') fail(where, required && v === undefined ? 'is required' : 'must be a string');
}

function checkInteger(v: unknown, where: string, required = false): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(where, required && v === undefined ? 'is required' : 'must be an integer');
}

function checkStringArray(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(where, 'must be an array of strings');
}

/** Structural validation with messages naming the offending field. */
export function validateSpec(value: unknown, where = 'config.json'): asserts value is Spec {
  if (!isObject(value)) fail(where, 'must be a JSON object');
  checkString(value.ociVersion, 'ociVersion', true);
  if (!/^1\.\d+\.\d+/.test(value.ociVersion as string)) fail('ociVersion', `unsupported version "${String(value.ociVersion)}" (Berth implements runtime-spec 1.x)`);
  if (!isObject(value.root)) fail('root', 'is required (an object with "path")');
  checkString(value.root.path, 'root.path', true);
  if ((value.root.path as string) === '') fail('root.path', 'must not be empty');
  if (value.root.readonly !== undefined && typeof value.root.readonly !== 'boolean') fail('root.readonly', 'must be a boolean');
  checkString(value.hostname, 'hostname');
  checkString(value.domainname, 'domainname');

  if (value.process !== undefined) {
    const p = value.process;
    if (!isObject(p)) fail('process', 'must be an object');
    if (p.terminal !== undefined && typeof p.terminal !== 'boolean') fail('process.terminal', 'must be a boolean');
    checkStringArray(p.args, 'process.args');
    checkStringArray(p.env, 'process.env');
    checkString(p.cwd, 'process.cwd', true);
    if (!isAbsolute(p.cwd as string)) fail('process.cwd', `must be an absolute path, got "${String(p.cwd)}"`);
    if (!isObject(p.user)) fail('process.user', 'is required');
    checkInteger(p.user.uid, 'process.user.uid', true);
    checkInteger(p.user.gid, 'process.user.gid', true);
    checkInteger(p.user.umask, 'process.user.umask');
    if (p.user.additionalGids !== undefined && (!Array.isArray(p.user.additionalGids) || p.user.additionalGids.some((g) => !Number.isInteger(g)))) {
      fail('process.user.additionalGids', 'must be an array of integers');
    }
    if (p.capabilities !== undefined) {
      if (!isObject(p.capabilities)) fail('process.capabilities', 'must be an object');
      for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
        checkStringArray(p.capabilities[set], `process.capabilities.${set}`);
      }
    }
    if (p.rlimits !== undefined) {
      if (!Array.isArray(p.rlimits)) fail('process.rlimits', 'must be an array');
      p.rlimits.forEach((r, i) => {
        if (!isObject(r)) fail(`process.rlimits[${i}]`, 'must be an object');
        checkString(r.type, `process.rlimits[${i}].type`, true);
        checkInteger(r.soft, `process.rlimits[${i}].soft`, true);
        checkInteger(r.hard, `process.rlimits[${i}].hard`, true);
        if ((r.soft as number) > (r.hard as number)) fail(`process.rlimits[${i}]`, `soft limit ${String(r.soft)} is above the hard limit ${String(r.hard)}`);
      });
    }
    checkInteger(p.oomScoreAdj, 'process.oomScoreAdj');
    if (p.oomScoreAdj !== undefined && ((p.oomScoreAdj as number) < -1000 || (p.oomScoreAdj as number) > 1000)) fail('process.oomScoreAdj', 'must be between -1000 and 1000');
    if (p.consoleSize !== undefined && (!isObject(p.consoleSize) || !Number.isInteger(p.consoleSize.height) || !Number.isInteger(p.consoleSize.width))) {
      fail('process.consoleSize', 'must be {"height": int, "width": int}');
    }
  }

  if (value.mounts !== undefined) {
    if (!Array.isArray(value.mounts)) fail('mounts', 'must be an array');
    value.mounts.forEach((m, i) => {
      if (!isObject(m)) fail(`mounts[${i}]`, 'must be an object');
      checkString(m.destination, `mounts[${i}].destination`, true);
      checkString(m.type, `mounts[${i}].type`);
      checkString(m.source, `mounts[${i}].source`);
      checkStringArray(m.options, `mounts[${i}].options`);
    });
  }

  if (value.hooks !== undefined) {
    if (!isObject(value.hooks)) fail('hooks', 'must be an object');
    for (const [kind, list] of Object.entries(value.hooks)) {
      if (!Array.isArray(list)) fail(`hooks.${kind}`, 'must be an array');
      list.forEach((h, i) => {
        if (!isObject(h)) fail(`hooks.${kind}[${i}]`, 'must be an object');
        checkString(h.path, `hooks.${kind}[${i}].path`, true);
        if (!isAbsolute(h.path as string)) fail(`hooks.${kind}[${i}].path`, `must be absolute, got "${String(h.path)}"`);
        checkStringArray(h.args, `hooks.${kind}[${i}].args`);
        checkStringArray(h.env, `hooks.${kind}[${i}].env`);
        checkInteger(h.timeout, `hooks.${kind}[${i}].timeout`);
        if (h.timeout !== undefined && (h.timeout as number) <= 0) fail(`hooks.${kind}[${i}].timeout`, 'must be greater than zero');
      });
    }
  }

  if (value.annotations !== undefined) {
    if (!isObject(value.annotations) || Object.values(value.annotations).some((v) => typeof v !== 'string')) fail('annotations', 'must map strings to strings');
  }

  if (value.linux !== undefined) {
    const l = value.linux;
    if (!isObject(l)) fail('linux', 'must be an object');
    if (l.namespaces !== undefined) {
      if (!Array.isArray(l.namespaces)) fail('linux.namespaces', 'must be an array');
      const seen = new Set<string>();
      l.namespaces.forEach((ns: unknown, i) => {
        if (!isObject(ns)) fail(`linux.namespaces[${i}]`, 'must be an object');
        if (!NAMESPACE_TYPES.includes(ns.type as NamespaceType)) {
          fail(`linux.namespaces[${i}].type`, `unknown namespace type "${String(ns.type)}" (known: ${NAMESPACE_TYPES.join(', ')})`);
        }
        if (seen.has(ns.type as string)) fail('linux.namespaces', `namespace "${String(ns.type)}" is listed twice`);
        seen.add(ns.type as string);
        checkString(ns.path, `linux.namespaces[${i}].path`);
        if (ns.path !== undefined && !isAbsolute(ns.path as string)) fail(`linux.namespaces[${i}].path`, 'must be an absolute path');
      });
    }
    for (const key of ['uidMappings', 'gidMappings'] as const) {
      const maps = l[key];
      if (maps === undefined) continue;
      if (!Array.isArray(maps)) fail(`linux.${key}`, 'must be an array');
      maps.forEach((m, i) => {
        if (!isObject(m)) fail(`linux.${key}[${i}]`, 'must be an object');
        checkInteger(m.containerID, `linux.${key}[${i}].containerID`, true);
        checkInteger(m.hostID, `linux.${key}[${i}].hostID`, true);
        checkInteger(m.size, `linux.${key}[${i}].size`, true);
      });
    }
    if (l.devices !== undefined) {
      if (!Array.isArray(l.devices)) fail('linux.devices', 'must be an array');
      l.devices.forEach((d, i) => {
        if (!isObject(d)) fail(`linux.devices[${i}]`, 'must be an object');
        checkString(d.path, `linux.devices[${i}].path`, true);
        if (!['c', 'b', 'u', 'p'].includes(d.type as string)) fail(`linux.devices[${i}].type`, `must be one of c, b, u, p, got "${String(d.type)}"`);
        if (d.type !== 'p') {
          checkInteger(d.major, `linux.devices[${i}].major`, true);
          checkInteger(d.minor, `linux.devices[${i}].minor`, true);
        }
        checkInteger(d.fileMode, `linux.devices[${i}].fileMode`);
        checkInteger(d.uid, `linux.devices[${i}].uid`);
        checkInteger(d.gid, `linux.devices[${i}].gid`);
      });
    }
    if (l.sysctl !== undefined && (!isObject(l.sysctl) || Object.values(l.sysctl).some((v) => typeof v !== 'string'))) fail('linux.sysctl', 'must map strings to strings');
    checkStringArray(l.maskedPaths, 'linux.maskedPaths');
    checkStringArray(l.readonlyPaths, 'linux.readonlyPaths');
    checkString(l.cgroupsPath, 'linux.cgroupsPath');
    checkString(l.rootfsPropagation, 'linux.rootfsPropagation');
    if (l.rootfsPropagation !== undefined && !['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'].includes(l.rootfsPropagation as string)) {
      fail('linux.rootfsPropagation', `unknown propagation "${String(l.rootfsPropagation)}"`);
    }
  }
}

/** The namespaces of the spec, by type. */
export function namespacesOf(spec: Spec): Map<NamespaceType, Namespace> {
  return new Map((spec.linux?.namespaces ?? []).map((ns) => [ns.type, ns]));
}
