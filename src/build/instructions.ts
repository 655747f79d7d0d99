// Nodes → typed instructions grouped into stages, checked as docker checks them (unknown
// instructions and flags, argument counts, FROM … AS names, HEALTHCHECK options, ONBUILD
// triggers). Values stay unexpanded: the builder expands them with the stage's ARGs and ENV.
import { parseDockerfile, type DockerfileNode, type ParseWarning } from './parser.ts';
import { BuildError, type Heredoc } from './types.ts';

interface Loc { line: number; endLine: number; original: string }

export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target: string;
  source?: string;
  from?: string;
  readonly?: boolean;
  id?: string;
  sharing?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  size?: number;
  /** type=secret,env=NAME: the secret is given to the command as an environment variable. */
  env?: string;
}

export type Instruction = Loc & (
  | { kind: 'from'; image: string; name?: string; platform?: string }
  | { kind: 'run'; cmd: string[]; prependShell: boolean; heredocs: Heredoc[]; mounts: RunMount[]; network?: string; security?: string; /** --device (CDI names); not run by Berth yet */ devices?: string[] }
  | { kind: 'cmd' | 'entrypoint'; cmd: string[]; prependShell: boolean }
  | { kind: 'env' | 'label'; pairs: Array<[string, string]> }
  | { kind: 'arg'; args: Array<{ name: string; value?: string }> }
  | { kind: 'expose'; ports: string[] }
  | { kind: 'copy' | 'add'; sources: string[]; dest: string; heredocs: Heredoc[]; from?: string; chown?: string; chmod?: string; link?: boolean; checksum?: string; keepGitDir?: boolean; parents?: boolean; exclude?: string[]; /** ADD --unpack=true|false: whether a remote archive is extracted */ unpack?: boolean }
  | { kind: 'workdir'; path: string }
  | { kind: 'user'; user: string }
  | { kind: 'volume'; paths: string[] }
  | { kind: 'stopsignal'; signal: string }
  | { kind: 'healthcheck'; test: string[]; interval?: number; timeout?: number; startPeriod?: number; startInterval?: number; retries?: number }
  | { kind: 'shell'; shell: string[] }
  | { kind: 'onbuild'; expression: string }
  | { kind: 'maintainer'; name: string }
);

export interface Stage {
  index: number;
  /** Lowercased. */
  name?: string;
  from: Extract<Instruction, { kind: 'from' }>;
  instructions: Instruction[];
}

export interface DockerfileDefinition {
  metaArgs: Array<Extract<Instruction, { kind: 'arg' }>>;
  stages: Stage[];
  escapeToken: string;
  warnings: ParseWarning[];
}

/** Flags each instruction accepts; `true` = may repeat. */
const FLAGS: Record<string, Record<string, boolean>> = {
  from: { platform: false },
  run: { mount: true, network: false, security: false, device: true },
  copy: { from: false, chown: false, chmod: false, link: false, parents: false, exclude: true },
  add: { chown: false, chmod: false, link: false, checksum: false, 'keep-git-dir': false, unpack: false, exclude: true },
  healthcheck: { interval: false, timeout: false, 'start-period': false, 'start-interval': false, retries: false },
};
const KNOWN = new Set(['from', 'run', 'cmd', 'entrypoint', 'env', 'label', 'arg', 'expose', 'copy', 'add', 'workdir', 'user', 'volume', 'stopsignal', 'healthcheck', 'shell', 'onbuild', 'maintainer']);
const BOOL_FLAGS = new Set(['link', 'parents', 'keep-git-dir', 'unpack']);

function err(file: string, line: number, message: string): BuildError {
  return new BuildError('invalid', `${file}:${line}: ${message}`, { file, line });
}

function unquote(v: string): string {
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) return v.slice(1, -1);
  return v;
}

function parseFlags(node: DockerfileNode, file: string): Map<string, string[]> {
  const allowed = FLAGS[node.instruction] ?? {};
  const out = new Map<string, string[]>();
  for (const raw of node.flags) {
    const body = raw.slice(2);
    const eq = body.indexOf('=');
    // Flag names are case-sensitive, as in BuildKit's bflag.
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!(name in allowed)) throw err(file, node.startLine, `unknown flag: --${name}`);
    let value = eq < 0 ? undefined : unquote(body.slice(eq + 1));
    if (value === undefined) {
      if (!BOOL_FLAGS.has(name)) throw err(file, node.startLine, `missing a value on flag: --${name}`);
      value = 'true';
    }
    if (BOOL_FLAGS.has(name)) {
      const b = value.toLowerCase();
      if (b === '' && eq >= 0) throw err(file, node.startLine, `missing a value on flag: --${name}`);
      if (b !== 'true' && b !== 'false') throw err(file, node.startLine, `expecting boolean value for flag --${name}, not: ${value}`);
      value = b;
    }
    const list = out.get(name) ?? [];
    if (list.length && !allowed[name]) throw err(file, node.startLine, `duplicate flag specified: --${name}`);
    list.push(value);
    out.set(name, list);
  }
  return out;
}

/** Go's time.ParseDuration for the units docker accepts; nanoseconds. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== text.length || text.length === 0) return undefined;
  return Math.round(total);
}

function parseMount(spec: string, file: string, line: number): RunMount {
  const m: Partial<RunMount> & { type: RunMount['type'] } = { type: 'bind' };
  const fail = (message: string): never => { throw err(file, line, message); };
  // Go's strconv.ParseBool, which BuildKit uses for ro/rw/required.
  const goBool = (key: string, v: string): boolean => {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
    return fail(`invalid value for ${key}: ${v}`);
  };
  // Numbers must be whole: a typo would otherwise become NaN and reach the mount.
  const num = (key: string, v: string, radix: number): number => {
    if (!(radix === 8 ? /^[0-7]+$/ : /^\d+$/).test(v)) fail(`invalid value ${v} for ${key}`);
    return Number.parseInt(v, radix);
  };
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    if (eq < 0) {
      if (key === '') continue;
      if (key === 'readonly' || key === 'ro') m.readonly = true;
      else if (key === 'readwrite' || key === 'rw') m.readonly = false;
      else if (key === 'required') m.required = true;
      else fail(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const value = unquote(field.slice(eq + 1).trim());
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(t)) fail(`unsupported mount type "${value}"`);
        m.type = t as RunMount['type'];
        break;
      }
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'from':
        // Stage names are resolved before any ARG is known, so BuildKit refuses variables here.
        if (/\$(?!$)/.test(value)) fail("'from' doesn't support variable expansion, define alias stage instead");
        m.from = value;
        break;
      case 'readonly': case 'ro': m.readonly = goBool(key, value); break;
      case 'rw': case 'readwrite': m.readonly = !goBool(key, value); break;
      case 'id': m.id = value; break;
      case 'sharing': {
        const v = value.toLowerCase();
        if (!['shared', 'private', 'locked'].includes(v)) fail(`unsupported sharing value "${value}"`);
        m.sharing = v;
        break;
      }
      case 'mode': m.mode = num(key, value, 8); break;
      case 'uid': m.uid = num(key, value, 10); break;
      case 'gid': m.gid = num(key, value, 10); break;
      case 'required': m.required = goBool(key, value); break;
      case 'env': m.env = value; break;
      case 'size': {
        // Sizes take docker's binary units (64m = 64 MiB), as for --tmpfs and --memory.
        const sm = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(value);
        if (!sm) fail(`invalid value for size: ${value}`);
        m.size = Math.round(Number(sm![1]) * 1024 ** ' kmgtp'.indexOf((sm![2] || ' ').toLowerCase()));
        break;
      }
      default: fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  // Options that only make sense for some types, checked after all fields so their order does not matter.
  if (m.required !== undefined && m.type !== 'secret' && m.type !== 'ssh') fail(`unexpected key 'required' for mount type '${m.type}'`);
  if (m.size !== undefined && m.type !== 'tmpfs') fail(`unexpected key 'size' for mount type '${m.type}'`);
  if (!['secret', 'ssh', 'cache'].includes(m.type)) {
    for (const k of ['mode', 'uid', 'gid'] as const) if (m[k] !== undefined) fail(`${k} not allowed for "${m.type}" type mounts`);
  }
  if (m.sharing !== undefined && m.type !== 'cache') fail(`invalid cache sharing set for ${m.type} mount`);
  if (m.type === 'secret') {
    if (m.from !== undefined) fail('secret mount should not have a from');
    if (!m.source && !m.target && !m.id) fail('invalid secret mount. one of source, target required');
    if (m.source && m.id) fail("both source and id can't be set");
  }
  if (!m.target && m.type !== 'secret' && m.type !== 'ssh') fail(`mount ${spec}: target is required`);
  return m as RunMount;
}

/** One node → one instruction. */
export function parseInstruction(node: DockerfileNode, file = 'Dockerfile'): Instruction {
  const line = node.startLine;
  const loc: Loc = { line, endLine: node.endLine, original: node.original };
  const name = node.instruction;
  if (!KNOWN.has(name)) throw err(file, line, `unknown instruction: ${name.toUpperCase()}`);
  const flags = parseFlags(node, file);
  const flag = (n: string) => flags.get(n)?.[0];
  const args = node.args;
  const upper = name.toUpperCase();
  const atLeast = (n: number, what = `${upper} requires at least one argument`) => { if (args.length < n) throw err(file, line, what); };
  const exactlyOne = () => { if (args.length !== 1) throw err(file, line, `${upper} requires exactly one argument`); };
  switch (name) {
    case 'from': {
      if (args.length !== 1 && args.length !== 3) throw err(file, line, 'FROM requires either one or three arguments');
      let stageName: string | undefined;
      if (args.length === 3) {
        if (args[1]!.toLowerCase() !== 'as') throw err(file, line, `FROM requires either one or three arguments (expected "AS" as the second, got "${args[1]}")`);
        stageName = args[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) throw err(file, line, `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
      }
      return { ...loc, kind: 'from', image: args[0]!, name: stageName, platform: flag('platform') };
    }
    case 'run': {
      if (args.length === 0 && node.heredocs.length === 0) throw err(file, line, 'RUN requires at least one argument');
      const mounts = (flags.get('mount') ?? []).map((s) => parseMount(s, file, line));
      const network = flag('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) throw err(file, line, `unsupported network mode "${network}"`);
      const security = flag('security');
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) throw err(file, line, `unsupported security mode "${security}"`);
      return { ...loc, kind: 'run', cmd: args, prependShell: !node.json, heredocs: node.heredocs, mounts, network, security, devices: flags.get('device') };
    }
    case 'cmd':
    case 'entrypoint':
      return { ...loc, kind: name, cmd: args, prependShell: !node.json };
    case 'env':
    case 'label': {
      atLeast(1, `${upper} requires at least one argument`);
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i + 1 < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
      return { ...loc, kind: name, pairs };
    }
    case 'arg': {
      atLeast(1, 'ARG requires at least one argument');
      return {
        ...loc, kind: 'arg', args: args.map((w) => {
          const i = w.indexOf('=');
          const n = i < 0 ? w : w.slice(0, i);
          if (!n) throw err(file, line, 'ARG names can not be blank');
          return i < 0 ? { name: n } : { name: n, value: w.slice(i + 1) };
        }),
      };
    }
    case 'expose':
      atLeast(1, 'EXPOSE requires at least one argument');
      return { ...loc, kind: 'expose', ports: args };
    case 'copy':
    case 'add': {
      if (args.length < 2) throw err(file, line, `${upper} requires at least two arguments, but only one was provided. Destination could not be determined`);
      if (node.heredocs.length && /^\d*<<-?\s*\S/.test(args[args.length - 1]!)) throw err(file, line, `${upper} cannot accept a heredoc as a destination`);
      return {
        ...loc, kind: name, sources: args.slice(0, -1), dest: args[args.length - 1]!, heredocs: node.heredocs,
        from: flag('from'), chown: flag('chown'), chmod: flag('chmod'), link: flag('link') === 'true' ? true : undefined,
        checksum: flag('checksum'), keepGitDir: flag('keep-git-dir') === 'true' ? true : undefined,
        parents: flag('parents') === 'true' ? true : undefined, exclude: flags.get('exclude'),
        unpack: flag('unpack') === undefined ? undefined : flag('unpack') === 'true',
      };
    }
    case 'workdir':
      exactlyOne();
      return { ...loc, kind: 'workdir', path: args[0]! };
    case 'user':
      exactlyOne();
      return { ...loc, kind: 'user', user: args[0]! };
    case 'maintainer':
      exactlyOne();
      return { ...loc, kind: 'maintainer', name: args[0]! };
    case 'stopsignal':
      exactlyOne();
      return { ...loc, kind: 'stopsignal', signal: args[0]! };
    case 'volume': {
      atLeast(1, 'VOLUME requires at least one argument');
      const paths = args.map((v) => v.trim());
      if (paths.includes('')) throw err(file, line, 'VOLUME specified can not be an empty string');
      return { ...loc, kind: 'volume', paths };
    }
    case 'shell':
      if (!node.json) throw err(file, line, 'SHELL requires the arguments to be in JSON form');
      if (args.length === 0) throw err(file, line, 'SHELL requires at least one argument');
      return { ...loc, kind: 'shell', shell: args };
    case 'onbuild': {
      atLeast(1, 'ONBUILD requires at least one argument');
      const expression = args[0]!;
      const trigger = expression.trim().split(/\s+/)[0]!.toUpperCase();
      if (trigger === 'ONBUILD') throw err(file, line, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'FROM' || trigger === 'MAINTAINER') throw err(file, line, `${trigger} isn't allowed as an ONBUILD trigger`);
      if (!KNOWN.has(trigger.toLowerCase())) throw err(file, line, `unknown instruction: ${trigger}`);
      return { ...loc, kind: 'onbuild', expression };
    }
    case 'healthcheck': {
      atLeast(1, 'HEALTHCHECK requires at least one argument');
      const kind = args[0]!.toUpperCase();
      if (kind === 'NONE') {
        if (args.length > 1) throw err(file, line, 'HEALTHCHECK NONE takes no arguments');
        if (flags.size) throw err(file, line, 'HEALTHCHECK NONE takes no options');
        return { ...loc, kind: 'healthcheck', test: ['NONE'] };
      }
      if (kind !== 'CMD') throw err(file, line, `Unknown type "${args[0]}" in HEALTHCHECK (try CMD)`);
      if (args.length < 2) throw err(file, line, 'Missing command after HEALTHCHECK CMD');
      const test = node.json ? ['CMD', ...args.slice(1)] : ['CMD-SHELL', args[1]!];
      const dur = (n: string): number | undefined => {
        const v = flag(n);
        if (v === undefined) return undefined;
        const d = parseDuration(v);
        if (d === undefined) throw err(file, line, `time: invalid duration "${v}" for --${n}`);
        if (d !== 0 && d < 1e6) throw err(file, line, `${n === 'start-period' ? 'StartPeriod' : n === 'start-interval' ? 'StartInterval' : n[0]!.toUpperCase() + n.slice(1)} "${v}" cannot be less than 1ms`);
        return d || undefined;
      };
      const h: Extract<Instruction, { kind: 'healthcheck' }> = { ...loc, kind: 'healthcheck', test };
      const interval = dur('interval'); if (interval) h.interval = interval;
      const timeout = dur('timeout'); if (timeout) h.timeout = timeout;
      const sp = dur('start-period'); if (sp) h.startPeriod = sp;
      const si = dur('start-interval'); if (si) h.startInterval = si;
      const r = flag('retries');
      if (r !== undefined) {
        if (!/^-?\d+$/.test(r)) throw err(file, line, `invalid --retries value "${r}"`);
        if (Number(r) < 0) throw err(file, line, '--retries cannot be negative');
        if (Number(r)) h.retries = Number(r);
      }
      return h;
    }
  }
  throw err(file, line, `unknown instruction: ${upper}`);
}

/** One instruction from a line of text (an ONBUILD trigger, a --change, a --label step). */
export function parseInstructionText(text: string, file = 'Dockerfile'): Instruction {
  const parsed = parseDockerfile(text, { file });
  if (parsed.nodes.length !== 1) throw new BuildError('invalid', `${file}: expected one instruction in ${JSON.stringify(text)}`);
  return parseInstruction(parsed.nodes[0]!, file);
}

export function parseDefinition(text: string, opts: { file?: string } = {}): DockerfileDefinition {
  const file = opts.file ?? 'Dockerfile';
  const parsed = parseDockerfile(text, { file });
  const metaArgs: Array<Extract<Instruction, { kind: 'arg' }>> = [];
  const stages: Stage[] = [];
  const names = new Set<string>();
  for (const node of parsed.nodes) {
    const inst = parseInstruction(node, file);
    if (inst.kind === 'from') {
      if (inst.name) {
        if (names.has(inst.name)) throw err(file, inst.line, `duplicate stage name "${inst.name}"`);
        names.add(inst.name);
      }
      stages.push({ index: stages.length, name: inst.name, from: inst, instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (inst.kind === 'arg') {
        metaArgs.push(inst);
        continue;
      }
      throw err(file, inst.line, `no build stage in current context: ${inst.kind.toUpperCase()} must come after a FROM`);
    }
    stage.instructions.push(inst);
  }
  return { metaArgs, stages, escapeToken: parsed.escapeToken, warnings: parsed.warnings };
}
