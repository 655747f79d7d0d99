// The builder: a Dockerfile and a context directory → an image, with docker's classic builder's
// output and image shape (each step is a child image; metadata steps add no layer), BuildKit's
// stage selection (only the stages the target needs), and a content-keyed step cache.
//
// How a step runs:
//   metadata (ENV, LABEL, CMD, …)  a new image config on the same layers (history: empty_layer);
//   RUN                            a container of the current image (the engine's container
//                                  service: same runtime, networking and mounts as `docker run`);
//                                  its writable layer becomes the step's layer;
//   COPY / ADD / WORKDIR           a writable snapshot of the current image, changed from the
//                                  host side (no container), then taken as the layer.
// Before any of that the cache is asked: the key covers the instruction with its expanded
// arguments, the config it runs with, and for COPY/ADD the sources' content checksum.
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, copyFileSync, lchownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { childImageConfig } from '../engine/containers/commit.ts';
import type { ContainerService } from '../engine/containers/service.ts';
import type { DockerContainerConfig } from '../engine/containers/types.ts';
import { layerFromSnapshot, storeChildImage, type ChildLayer } from '../image/child-image.ts';
import { parseDigest } from '../image/digest.ts';
import { gcLockFor } from '../image/gc.ts';
import type { ImageRecord } from '../image/image-store.ts';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../image/platform.ts';
import { familiarString, parseNormalizedReference, withTag, type Reference } from '../image/reference.ts';
import type { ImageService } from '../image/service.ts';
import type { Digest, ImageConfig, ProgressEvent } from '../image/types.ts';
import { readEtcFile } from '../runtime/passwd.ts';
import { stepKey, type BuildCache } from './cache.ts';
import { removeIgnoredBuildFiles, sourcesChecksum } from './context.ts';
import { copyInto, resolveInRoot } from './copy.ts';
import { parseDefinition, parseInstructionText, type DockerfileDefinition, type Instruction, type Stage } from './instructions.ts';
import { expandWord, expandWords, type Env } from './shell-lex.ts';
import { BuildError, type SourceLocation } from './types.ts';

export interface BuildRequest {
  /** The context, unpacked. */
  contextDir: string;
  /** The context directory is this build's own throw-away copy (files may be hard-linked from it). */
  contextIsPrivate?: boolean;
  /** The Dockerfile's path inside the context (default "Dockerfile"). */
  dockerfile?: string;
  /** Its text, when it does not come from the context. */
  dockerfileContent?: string;
  tags?: string[];
  /** --build-arg: a null value means "declared without a value" (docker's KEY form with no env). */
  buildArgs?: Record<string, string | null>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  /** Network of RUN steps: "default"/"bridge", "none", "host", or a network name. */
  networkMode?: string;
  labels?: Record<string, string>;
  platform?: string;
  quiet?: boolean;
  /** Remove intermediate containers after a successful step (default true). */
  remove?: boolean;
  /** Remove them even when the step failed. */
  forceRemove?: boolean;
  /** SOURCE_DATE_EPOCH: clamps layer mtimes and the created times. */
  sourceDateEpoch?: number;
  signal?: AbortSignal;
}

/** Where the builder's output goes (the API turns it into docker's JSON messages). */
export interface BuildOutput {
  stream(text: string): void;
  /** Pull progress of base images. */
  progress(ev: ProgressEvent): void;
  aux(value: unknown): void;
}

export interface BuilderDeps {
  images: ImageService;
  containers: ContainerService;
  cache: BuildCache;
  dockerVersion?: string;
  /** Engine files in a container's writable layer that are not its changes (mount points). */
  engineFiles?: string[];
  event?: (type: 'image', action: string, id: string, attributes: Record<string, string>) => void;
  /** Mount points and temporary directories of running builds (see cleanupBuildLeftovers). */
  scratchDir?: string;
}

/**
 * What a daemon killed in the middle of builds leaves behind: overlay mounts and directories in
 * the scratch dir, and the builds' writable snapshots (keys "build-…"). Run at daemon start,
 * before any build.
 */
export async function cleanupBuildLeftovers(images: ImageService, scratchDir: string): Promise<void> {
  let mounts: string[] = [];
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
      .filter((m) => m.startsWith(`${scratchDir}/`)).sort((a, b) => b.length - a.length);
  } catch {
    // no mountinfo: nothing to unmount
  }
  for (const m of mounts) await images.snapshots.unmount(m).catch(() => {});
  rmSync(scratchDir, { recursive: true, force: true });
  for (const s of images.snapshots.list()) {
    if (s.kind === 'active' && s.name.startsWith('build-')) await images.snapshots.remove(s.name).catch(() => {});
  }
}

export interface BuildResult {
  id: Digest;
  tags: string[];
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ENGINE_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];
/** Build args docker accepts without an ARG and keeps out of the image history. */
const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** One stage while it is being built. */
interface StageState {
  stage: Stage;
  /** The current image; undefined while a FROM scratch stage has produced nothing. */
  image?: ImageRecord;
  imageConfig: ImageConfig;
  runConfig: DockerContainerConfig;
  /** ARGs declared in this stage (value undefined: declared, no value). */
  args: Map<string, string | undefined>;
  /** A CMD was given in this stage (then an ENTRYPOINT keeps it). */
  cmdSet?: boolean;
}

/** One stage's output while stages build concurrently. */
interface Lane {
  /** Its last step number. */
  step: number;
  /** Output kept until the stages before it are done. */
  pending: Array<() => void>;
  live: boolean;
  done: boolean;
}

function shortId(id: string): string {
  return parseDigest(id as Digest).hex.slice(0, 12);
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

function setEnv(env: string[], key: string, value: string): string[] {
  const out = env.filter((e) => envKey(e) !== key);
  const i = env.findIndex((e) => envKey(e) === key);
  const entry = `${key}=${value}`;
  if (i < 0) return [...env, entry];
  out.splice(i, 0, entry);
  return out;
}

/** Go's %q of a []string: ["a" "b"]. */
function goQuotedList(list: readonly string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

function locationOf(file: string, inst: { line: number; endLine?: number }): SourceLocation {
  return { file, line: inst.line, endLine: inst.endLine };
}

export class Builder {
  constructor(private readonly deps: BuilderDeps) {}

  async build(req: BuildRequest, out: BuildOutput): Promise<BuildResult> {
    const b = new BuildRun(this.deps, req, out);
    return gcLockFor(this.deps.images.content).shared(() => b.run());
  }
}

class BuildRun {
  private readonly images: ImageService;
  private readonly file: string;
  private readonly buildArgs: Map<string, string | null>;
  private readonly usedArgs = new Set<string>();
  private readonly metaArgs = new Map<string, string | undefined>();
  private readonly stageResults = new Map<number, StageState>();
  private step = 0;
  private totalSteps = 0;
  /** Independent stages build concurrently; each writes to its lane, shown in stage order. */
  private readonly lane = new AsyncLocalStorage<Lane>();
  private lanes: Lane[] = [];
  private head = 0;
  private readonly stagePromises = new Map<number, Promise<StageState>>();
  /** Removals of RUN steps' containers, awaited before the build ends. */
  private readonly removals: Array<Promise<void>> = [];
  /** Aborted by the client going away, or by another stage's failure. */
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  private readonly host = hostPlatform();
  private readonly quiet: boolean;

  constructor(private readonly deps: BuilderDeps, private readonly req: BuildRequest, private readonly out: BuildOutput) {
    this.images = deps.images;
    this.file = req.dockerfile && req.dockerfile !== '' ? posix.basename(req.dockerfile) : 'Dockerfile';
    this.buildArgs = new Map(Object.entries(req.buildArgs ?? {}));
    this.quiet = req.quiet === true;
    this.signal = req.signal ? AbortSignal.any([req.signal, this.abort.signal]) : this.abort.signal;
  }

  /** Output of the current lane: live for the first unfinished stage, kept for the others until then. */
  private emit(fn: () => void): void {
    const l = this.lane.getStore();
    if (!l || l.live) fn();
    else l.pending.push(fn);
  }

  private finishLane(l: Lane): void {
    l.done = true;
    while (this.head < this.lanes.length) {
      const cur = this.lanes[this.head]!;
      for (const fn of cur.pending.splice(0)) fn();
      if (!cur.done) {
        cur.live = true;
        return;
      }
      this.head++;
    }
  }

  /** Where mount points and temporary directories go (the daemon's build dir, cleaned at start). */
  private scratch(): string {
    const dir = this.deps.scratchDir ?? tmpdir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private say(text: string): void {
    if (!this.quiet) this.emit(() => this.out.stream(text));
  }

  private checkCancelled(): void {
    if (this.signal.aborted) throw new BuildError('cancelled', 'the build was cancelled');
  }

  private fail(code: BuildError['code'], inst: { line: number; endLine?: number } | undefined, message: string, cause?: unknown): BuildError {
    const loc = inst ? locationOf(this.file, inst) : undefined;
    return new BuildError(code, loc ? `${this.file}:${loc.line}: ${message}` : message, loc, cause ? { cause } : undefined);
  }

  // ---- set-up ----------------------------------------------------------------------------------

  private definition(): DockerfileDefinition {
    let text = this.req.dockerfileContent;
    if (text === undefined) {
      const rel = this.req.dockerfile && this.req.dockerfile !== '' ? this.req.dockerfile : 'Dockerfile';
      let path: string;
      try {
        path = resolveInRoot(this.req.contextDir, rel);
      } catch (err) {
        throw new BuildError('invalid', `Cannot locate specified Dockerfile: ${rel}`, undefined, { cause: err });
      }
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        throw new BuildError('invalid', `Cannot locate specified Dockerfile: ${rel}`);
      }
      // dockerd: a Dockerfile or .dockerignore the .dockerignore excludes is not part of the context.
      if (this.req.contextIsPrivate) removeIgnoredBuildFiles(this.req.contextDir, rel);
    }
    const def = parseDefinition(text, { file: this.file });
    if (def.stages.length === 0) throw new BuildError('invalid', `${this.file}: file with no instructions`);
    return def;
  }

  /** Predefined platform ARGs (BuildKit's): available to FROM lines, and to stages that declare them. */
  private platformArgs(): Map<string, string> {
    const target = this.req.platform ? normalizePlatform(parsePlatform(this.req.platform)) : this.host;
    const m = new Map<string, string>();
    const put = (prefix: string, p: typeof target) => {
      m.set(`${prefix}PLATFORM`, formatPlatform(p));
      m.set(`${prefix}OS`, p.os);
      m.set(`${prefix}ARCH`, p.architecture);
      m.set(`${prefix}VARIANT`, p.variant ?? '');
    };
    put('TARGET', target);
    put('BUILD', this.host);
    return m;
  }

  private metaEnv(): string[] {
    const env: string[] = [];
    for (const [k, v] of this.platformArgs()) env.push(`${k}=${v}`);
    for (const [k, v] of this.metaArgs) if (v !== undefined) env.push(`${k}=${v}`);
    return env;
  }

  /** The index of the stage a name (or number) refers to, among those before `before`. */
  private stageIndex(def: DockerfileDefinition, name: string, before: number): number | undefined {
    const lower = name.toLowerCase();
    for (const s of def.stages) {
      if (s.index >= before) break;
      if (s.name === lower) return s.index;
    }
    if (/^\d+$/.test(name)) {
      const i = Number(name);
      if (i < before) return i;
    }
    return undefined;
  }

  /** The stages the target needs, in order. */
  private neededStages(def: DockerfileDefinition, targetIndex: number): Stage[] {
    const needed = new Set<number>();
    const visit = (i: number): void => {
      if (needed.has(i)) return;
      needed.add(i);
      for (const d of this.stageDeps(def, def.stages[i]!)) visit(d);
    };
    visit(targetIndex);
    return def.stages.filter((s) => needed.has(s.index));
  }

  /** The stages a stage names (FROM, COPY --from, RUN --mount from=), as far as global ARGs tell. */
  private stageDeps(def: DockerfileDefinition, s: Stage): number[] {
    const env = this.metaEnv();
    const deps = new Set<number>();
    const add = (name: string) => {
      const d = this.stageIndex(def, this.expandOr(name, env), s.index);
      if (d !== undefined) deps.add(d);
    };
    add(s.from.image);
    for (const inst of s.instructions) {
      if ((inst.kind === 'copy' || inst.kind === 'add') && inst.from) add(inst.from);
      if (inst.kind === 'run') for (const m of inst.mounts) if (m.from) add(m.from);
    }
    return [...deps];
  }

  /** An earlier stage's result, waiting for it if it is still being built. */
  private async stageResult(index: number): Promise<StageState | undefined> {
    const p = this.stagePromises.get(index);
    if (p) await p.catch(() => undefined);
    return this.stageResults.get(index);
  }

  private expandOr(word: string, env: Env): string {
    try {
      return expandWord(word, env);
    } catch {
      return word;
    }
  }

  // ---- the run ---------------------------------------------------------------------------------

  async run(): Promise<BuildResult> {
    const def = this.definition();
    for (const w of def.warnings) this.say(`[Warning] ${this.file}:${w.line}: ${w.message}\n`);
    const tags = this.parseTags();
    if (this.req.platform) this.checkPlatform(this.req.platform, undefined);

    // Global ARGs (before the first FROM).
    for (const a of def.metaArgs) {
      for (const arg of a.args) {
        this.usedArgs.add(arg.name);
        const given = this.buildArgs.get(arg.name);
        let value: string | undefined = given ?? undefined;
        if (value === undefined && arg.value !== undefined) value = this.expandIn(arg.value, this.metaEnv(), a);
        this.metaArgs.set(arg.name, value);
      }
    }

    let targetIndex = def.stages.length - 1;
    if (this.req.target) {
      const t = def.stages.find((s) => s.name === this.req.target!.toLowerCase());
      if (!t) throw new BuildError('invalid', `failed to reach build target ${this.req.target} in Dockerfile`);
      targetIndex = t.index;
    }
    const stages = this.neededStages(def, targetIndex);
    const labels = Object.entries(this.req.labels ?? {});
    this.totalSteps = stages.reduce((n, s) => n + 1 + s.instructions.length, 0) + (labels.length ? 1 : 0);

    // Every needed stage starts once the stages it names are built; independent ones run at once.
    let offset = 0;
    for (const stage of stages) {
      const lane: Lane = { step: offset, pending: [], live: this.lanes.length === 0, done: false };
      offset += 1 + stage.instructions.length;
      this.lanes.push(lane);
      const deps = this.stageDeps(def, stage);
      this.stagePromises.set(stage.index, (async () => {
        try {
          for (const dep of deps) await this.stagePromises.get(dep);
          return await this.lane.run(lane, async () => {
            this.checkCancelled();
            const st = await this.buildStage(def, stage);
            this.stageResults.set(stage.index, st);
            if (stage.index === targetIndex && labels.length) {
              const inst = parseInstructionText(`LABEL ${labels.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`, this.file);
              this.stepHeader(inst);
              await this.dispatch(def, st, inst);
            }
            return st;
          });
        } catch (err) {
          this.abort.abort();
          throw err;
        } finally {
          this.finishLane(lane);
        }
      })());
    }
    const settled = await Promise.allSettled([...this.stagePromises.values()]);
    await Promise.all(this.removals);
    // The first real failure (not a stage stopped because of it) is the build's.
    const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length) {
      throw failures.find((e) => !(e instanceof BuildError && e.code === 'cancelled')) ?? failures[0];
    }
    const final = this.stageResults.get(targetIndex)!;
    if (!final.image) throw new BuildError('invalid', 'No image was generated. Is your Dockerfile empty?');

    const unused = [...this.buildArgs.keys()].filter((k) => !this.usedArgs.has(k) && !PROXY_ARGS.has(k) && !this.platformArgs().has(k)).sort();
    if (unused.length) this.say(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);

    const id = final.image.id;
    this.out.aux({ ID: id });
    if (this.quiet) this.out.stream(`${id}\n`);
    else this.say(`Successfully built ${shortId(id)}\n`);
    const named: string[] = [];
    for (const ref of tags) {
      this.images.store.tag(id, ref, { touch: true });
      const name = familiarString(ref);
      named.push(name);
      this.deps.event?.('image', 'tag', id, { name });
      this.say(`Successfully tagged ${name}\n`);
    }
    return { id, tags: named };
  }

  private parseTags(): Reference[] {
    const out: Reference[] = [];
    for (const t of this.req.tags ?? []) {
      if (!t) continue;
      let ref: Reference;
      try {
        ref = parseNormalizedReference(t);
      } catch (err) {
        throw new BuildError('invalid', `invalid reference format: ${t}: ${(err as Error).message}`);
      }
      if (ref.digest !== undefined) throw new BuildError('invalid', `invalid reference format: a tag cannot name a digest (${t})`);
      out.push(ref.tag === undefined ? withTag(ref, 'latest') : ref);
    }
    return out;
  }

  private checkPlatform(spec: string, inst: Instruction | undefined): void {
    let p;
    try {
      p = normalizePlatform(parsePlatform(spec));
    } catch (err) {
      throw this.fail('invalid', inst, `invalid platform "${spec}": ${(err as Error).message}`);
    }
    if (p.os !== this.host.os || p.architecture !== this.host.architecture) {
      throw this.fail('invalid', inst, `platform ${formatPlatform(p)} is not supported: this builder runs steps on the host, ${formatPlatform(this.host)}`);
    }
  }

  private stepHeader(inst: { original: string }): void {
    const l = this.lane.getStore();
    const n = l ? ++l.step : ++this.step;
    this.say(`Step ${n}/${this.totalSteps} : ${inst.original.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  }

  private expandIn(word: string, env: Env, inst: { line: number; endLine?: number }): string {
    try {
      return expandWord(word, env);
    } catch (err) {
      throw this.fail('invalid', inst, (err as Error).message, err);
    }
  }

  private expandAll(word: string, env: Env, inst: { line: number; endLine?: number }): string[] {
    try {
      return expandWords(word, env);
    } catch (err) {
      throw this.fail('invalid', inst, (err as Error).message, err);
    }
  }

  // ---- stages ----------------------------------------------------------------------------------

  private async buildStage(def: DockerfileDefinition, stage: Stage): Promise<StageState> {
    const from = stage.from;
    this.stepHeader(from);
    const env = this.metaEnv();
    const base = this.expandIn(from.image, env, from);
    if (from.platform) this.checkPlatform(this.expandIn(from.platform, env, from), from);
    if (base === '') throw this.fail('invalid', from, 'base name (FROM) should not be blank');
    let st: StageState;
    const depIndex = this.stageIndex(def, base, stage.index);
    if (depIndex !== undefined) {
      const dep = await this.stageResult(depIndex);
      if (!dep) throw this.fail('invalid', from, `stage ${base} was not built`);
      st = { stage, image: dep.image, imageConfig: structuredClone(dep.imageConfig), runConfig: structuredClone(dep.runConfig), args: new Map() };
    } else if (base.toLowerCase() === 'scratch') {
      st = { stage, imageConfig: this.scratchConfig(), runConfig: {}, args: new Map() };
    } else {
      const image = await this.baseImage(base, from);
      const imageConfig = await this.images.config(image.id);
      st = { stage, image, imageConfig, runConfig: structuredClone((imageConfig.config ?? {}) as DockerContainerConfig), args: new Map() };
    }
    const envList = st.runConfig.Env ?? [];
    if (!envList.some((e) => envKey(e) === 'PATH')) st.runConfig.Env = [...envList, DEFAULT_PATH];
    this.say(st.image ? ` ---> ${shortId(st.image.id)}\n` : ' ---> \n');

    // ONBUILD triggers of the base run first, and are not inherited.
    const triggers = st.runConfig.OnBuild ?? [];
    if (triggers.length && depIndex === undefined) {
      this.say(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n`);
      st.runConfig.OnBuild = null;
      for (const t of triggers) {
        let inst: Instruction;
        try {
          inst = parseInstructionText(t, this.file);
        } catch (err) {
          throw this.fail('invalid', from, `ONBUILD trigger of ${base}: ${(err as Error).message}`, err);
        }
        await this.dispatch(def, st, { ...inst, line: from.line, endLine: from.endLine } as Instruction, { trigger: true });
      }
    }
    for (const inst of stage.instructions) {
      this.checkCancelled();
      this.stepHeader(inst);
      await this.dispatch(def, st, inst);
    }
    return st;
  }

  private scratchConfig(): ImageConfig {
    return {
      architecture: this.host.architecture, os: this.host.os, ...(this.host.variant ? { variant: this.host.variant } : {}),
      rootfs: { type: 'layers', diff_ids: [] }, history: [],
    } as ImageConfig;
  }

  private async baseImage(name: string, inst: Instruction): Promise<ImageRecord> {
    let ref: Reference;
    try {
      ref = parseNormalizedReference(name);
    } catch (err) {
      throw this.fail('invalid', inst, `invalid reference format: ${name}`, err);
    }
    if (!this.req.pull) {
      const local = this.images.store.resolve(name) ?? (ref.tag === undefined && ref.digest === undefined ? this.images.store.resolve(`${name}:latest`) : undefined);
      if (local) return local;
    }
    try {
      const pulled = await this.images.pull(ref.tag === undefined && ref.digest === undefined ? withTag(ref, 'latest') : ref, {
        progress: (ev) => { if (!this.quiet) this.emit(() => this.out.progress(ev)); }, signal: this.signal,
      });
      return pulled[0]!;
    } catch (err) {
      const local = this.images.store.resolve(name);
      if (this.req.pull && local) return local;
      throw this.fail('not-found', inst, `pull access denied or repository does not exist for ${name}: ${(err as Error).message}`, err);
    }
  }

  // ---- steps -----------------------------------------------------------------------------------

  /** The environment variables are expanded with: the stage's ARGs, then its ENV (ENV wins). */
  private stageEnv(st: StageState): string[] {
    const env: string[] = [];
    for (const [k, v] of st.args) if (v !== undefined) env.push(`${k}=${v}`);
    env.push(...(st.runConfig.Env ?? []));
    return env;
  }

  /** Build args in effect for RUN that the ENV does not override: [KEY=VALUE …] in declaration order. */
  private runArgs(st: StageState, includeProxies: boolean): string[] {
    const envKeys = new Set((st.runConfig.Env ?? []).map(envKey));
    const out: string[] = [];
    for (const [k, v] of st.args) if (v !== undefined && !envKeys.has(k)) out.push(`${k}=${v}`);
    if (includeProxies) {
      for (const [k, v] of this.buildArgs) if (PROXY_ARGS.has(k) && v !== null && !st.args.has(k) && !envKeys.has(k)) out.push(`${k}=${v}`);
    }
    return out.sort();
  }

  private shell(st: StageState): string[] {
    return st.runConfig.Shell && st.runConfig.Shell.length ? st.runConfig.Shell : DEFAULT_SHELL;
  }

  private async dispatch(def: DockerfileDefinition, st: StageState, inst: Instruction, _opts: { trigger?: boolean } = {}): Promise<void> {
    const env = (): string[] => this.stageEnv(st);
    const rc = st.runConfig;
    switch (inst.kind) {
      case 'env': {
        // Every pair is expanded with the environment from before this instruction (docker's rule).
        const before = env();
        let next = [...(rc.Env ?? [])];
        const parts: string[] = [];
        for (const [k, v] of inst.pairs) {
          const key = this.expandIn(k, before, inst);
          const value = this.expandIn(v, before, inst);
          if (!key) throw this.fail('invalid', inst, 'ENV names can not be blank');
          next = setEnv(next, key, value);
          parts.push(`${key}=${value}`);
        }
        rc.Env = next;
        return this.commitMeta(st, `ENV ${parts.join(' ')}`);
      }
      case 'label': {
        const labels = { ...(rc.Labels ?? {}) };
        const parts: string[] = [];
        for (const [k, v] of inst.pairs) {
          const key = this.expandIn(k, env(), inst);
          const value = this.expandIn(v, env(), inst);
          if (!key) throw this.fail('invalid', inst, 'LABEL names can not be blank');
          labels[key] = value;
          parts.push(`${key}=${value}`);
        }
        rc.Labels = labels;
        return this.commitMeta(st, `LABEL ${parts.join(' ')}`);
      }
      case 'maintainer':
        st.imageConfig = { ...st.imageConfig, author: inst.name } as ImageConfig;
        return this.commitMeta(st, `MAINTAINER ${inst.name}`);
      case 'arg': {
        const parts: string[] = [];
        for (const a of inst.args) {
          this.usedArgs.add(a.name);
          const given = this.buildArgs.get(a.name);
          let value: string | undefined;
          if (given !== undefined && given !== null) value = given;
          else if (a.value !== undefined) value = this.expandIn(a.value, env(), inst);
          else if (this.metaArgs.has(a.name)) value = this.metaArgs.get(a.name);
          else if (this.platformArgs().has(a.name)) value = this.platformArgs().get(a.name);
          st.args.set(a.name, value);
          parts.push(a.value !== undefined ? `${a.name}=${a.value}` : a.name);
        }
        return this.commitMeta(st, `ARG ${parts.join(' ')}`);
      }
      case 'expose': {
        const ports = { ...(rc.ExposedPorts ?? {}) };
        const list: string[] = [];
        for (const raw of inst.ports) {
          for (const p of this.expandAll(raw, env(), inst)) {
            list.push(p); // the history says the ports as written, as docker's does
            for (const one of expandPortRange(p, (m) => this.fail('invalid', inst, m))) ports[one] = {};
          }
        }
        rc.ExposedPorts = ports;
        return this.commitMeta(st, `EXPOSE ${list.join(' ')}`);
      }
      case 'user': {
        rc.User = this.expandIn(inst.user, env(), inst);
        return this.commitMeta(st, `USER ${rc.User}`);
      }
      case 'volume': {
        const vols = { ...(rc.Volumes ?? {}) };
        const list: string[] = [];
        for (const raw of inst.paths) {
          const v = this.expandIn(raw, env(), inst).trim();
          if (!v) throw this.fail('invalid', inst, 'VOLUME specified can not be an empty string');
          vols[v] = {};
          list.push(v);
        }
        rc.Volumes = vols;
        return this.commitMeta(st, `VOLUME [${list.join(' ')}]`);
      }
      case 'stopsignal': {
        const sig = this.expandIn(inst.signal, env(), inst);
        if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) throw this.fail('invalid', inst, `Invalid signal: ${sig}`);
        rc.StopSignal = sig;
        return this.commitMeta(st, `STOPSIGNAL ${sig}`);
      }
      case 'workdir': {
        const dir = this.expandIn(inst.path, env(), inst);
        const wd = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join('/', rc.WorkingDir || '/', dir);
        rc.WorkingDir = wd;
        return this.fsStep(st, inst, `WORKDIR ${wd}`, {}, async (root) => {
          const target = resolveInRoot(root, wd);
          mkdirSync(target, { recursive: true, mode: 0o755 });
        });
      }
      case 'cmd':
      case 'entrypoint': {
        const cmd = inst.prependShell ? [...this.shell(st), inst.cmd.join(' ')] : inst.cmd;
        if (inst.kind === 'cmd') {
          rc.Cmd = cmd;
          st.cmdSet = true;
        } else {
          rc.Entrypoint = cmd;
          // An ENTRYPOINT resets the CMD inherited from the base image, as docker does.
          if (!st.cmdSet) rc.Cmd = null;
        }
        rc.ArgsEscaped = undefined;
        return this.commitMeta(st, `${inst.kind.toUpperCase()} ${goQuotedList(cmd)}`);
      }
      case 'shell':
        rc.Shell = inst.shell;
        return this.commitMeta(st, `SHELL [${inst.shell.join(' ')}]`);
      case 'healthcheck': {
        if (inst.test.length === 1 && inst.test[0]!.toUpperCase() === 'NONE') {
          rc.Healthcheck = { Test: ['NONE'] };
        } else {
          const h: NonNullable<DockerContainerConfig['Healthcheck']> & { StartInterval?: number } = { Test: inst.test };
          if (inst.interval) h.Interval = inst.interval;
          if (inst.timeout) h.Timeout = inst.timeout;
          if (inst.startPeriod) h.StartPeriod = inst.startPeriod;
          if (inst.startInterval) h.StartInterval = inst.startInterval;
          if (inst.retries) h.Retries = inst.retries;
          rc.Healthcheck = h;
        }
        return this.commitMeta(st, `HEALTHCHECK ${healthcheckComment(rc.Healthcheck)}`);
      }
      case 'onbuild':
        rc.OnBuild = [...(rc.OnBuild ?? []), inst.expression];
        return this.commitMeta(st, `ONBUILD ${inst.expression}`);
      case 'run':
        return this.runStep(def, st, inst);
      case 'copy':
      case 'add':
        return this.copyStep(def, st, inst);
      case 'from':
        throw this.fail('invalid', inst, 'FROM inside a stage');
    }
  }

  /** The container config docker records for a metadata step: the shell plus "#(nop) " and the comment. */
  private commentConfig(st: StageState, comment: string, oneWord: boolean): DockerContainerConfig {
    const cmd = oneWord ? [...this.shell(st), `#(nop) ${comment}`] : [...this.shell(st), '#(nop) ', comment];
    return { ...structuredClone(st.runConfig), Cmd: cmd, Image: st.image?.id ?? '' };
  }

  /** A step that changes only the config. */
  private async commitMeta(st: StageState, comment: string): Promise<void> {
    const containerConfig = this.commentConfig(st, comment, false);
    await this.cachedStep(st, containerConfig, {}, async () => undefined);
  }

  /**
   * Looks the step up in the cache; on a miss runs `produce` (which returns the layer, if any)
   * and stores the new image. Either way the stage moves on to the resulting image.
   */
  private async cachedStep(st: StageState, containerConfig: DockerContainerConfig, extraKey: Record<string, unknown>,
    produce: () => Promise<{ layer?: ChildLayer; containerId?: string } | undefined>, opts: { cacheable?: boolean } = {}): Promise<void> {
    const parentId = st.image?.id ?? '';
    const key = stepKey({ v: 1, config: { ...containerConfig, Image: undefined, Hostname: undefined }, result: st.runConfig, extraKey, author: st.imageConfig.author ?? '' });
    if (!this.req.noCache && opts.cacheable !== false) {
      const hit = this.deps.cache.lookup(parentId, key);
      if (hit) {
        const rec = this.images.store.get(hit)!;
        const config = await this.images.config(hit);
        st.image = rec;
        st.imageConfig = config;
        this.say(' ---> Using cache\n');
        this.say(` ---> ${shortId(hit)}\n`);
        return;
      }
    }
    const produced = await produce();
    const layer: Pick<ChildLayer, 'diffIds' | 'chainIds' | 'diffId' | 'layer'> & { discard?: () => Promise<void> } = produced?.layer
      ?? { diffIds: st.image?.diffIds ?? [], chainIds: st.image?.chainIds ?? [] };
    try {
      // SOURCE_DATE_EPOCH: reproducible, so no times of this run and no container IDs.
      const reproducible = this.req.sourceDateEpoch !== undefined;
      const created = reproducible ? new Date(this.req.sourceDateEpoch! * 1000).toISOString().replace(/\.000Z$/, 'Z') : new Date().toISOString();
      const config = childImageConfig(st.imageConfig, {
        config: { ...structuredClone(st.runConfig), Image: parentId },
        containerId: reproducible ? '' : produced?.containerId ?? '',
        containerConfig, author: st.imageConfig.author, diffId: layer.diffId, created, dockerVersion: this.deps.dockerVersion,
      });
      if (!produced?.containerId || reproducible) delete (config as unknown as Record<string, unknown>).container;
      const rec = await storeChildImage(this.images, config, { parent: st.image?.id, layer, created });
      if (opts.cacheable !== false) this.deps.cache.record(parentId, key, rec.id);
      st.image = rec;
      st.imageConfig = config;
      this.say(` ---> ${shortId(rec.id)}\n`);
    } catch (err) {
      await layer.discard?.();
      throw err;
    }
  }

  /** A step that changes files from the host side on a writable snapshot of the current image. */
  private async fsStep(st: StageState, inst: Instruction, comment: string, extraKey: Record<string, unknown>,
    change: (root: string, deferLink: (src: string, dst: string) => boolean) => Promise<void>, opts: { metaComment?: boolean; cacheable?: boolean } = {}): Promise<void> {
    const containerConfig = this.commentConfig(st, comment, !opts.metaComment);
    await this.cachedStep(st, containerConfig, extraKey, async () => {
      const layer = await this.withSnapshot(st, async (root, deferLink) => {
        try {
          await change(root, deferLink);
        } catch (err) {
          if (err instanceof BuildError) {
            throw err.location ? err : new BuildError(err.code, `${this.file}:${inst.line}: ${err.message}`, locationOf(this.file, inst), { cause: err });
          }
          throw this.fail('failed', inst, (err as Error).message, err);
        }
      });
      return { layer };
    }, { cacheable: opts.cacheable });
  }

  /** Runs fn on a mounted writable snapshot of the stage's image; returns the changes as a layer. */
  private async withSnapshot(st: StageState, fn: (root: string, deferLink: (src: string, dst: string) => boolean) => Promise<void>): Promise<ChildLayer> {
    const snaps = this.images.snapshots;
    const key = `build-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`;
    const top = st.image?.chainIds[st.image.chainIds.length - 1] ?? null;
    const mounts = await snaps.prepareActive(key, top);
    const mnt = mkdtempSync(join(this.scratch(), 'mnt-'));
    // Files that can be hard links to the context cache are linked into the snapshot's own
    // directory once it is unmounted (a link cannot cross the overlay mount); their parent
    // directories are copied up first, so the directory holds every path on the way.
    const links: Array<{ src: string; rel: string }> = [];
    const deferLink = (src: string, dst: string): boolean => {
      const rel = relative(mnt, dst);
      if (rel.startsWith('..') || rel === '') return false;
      const parent = dirname(dst);
      const pst = lstatSync(parent);
      lchownSync(parent, pst.uid, pst.gid); // forces overlay's copy-up of the directory
      links.push({ src, rel });
      return true;
    };
    try {
      await snaps.mount(key, mnt);
      try {
        await fn(mnt, deferLink);
      } finally {
        await snaps.unmount(mnt);
      }
      const own = mounts.type === 'overlay' ? mounts.upperdir : snaps.dirOf(key);
      for (const l of links) {
        const dst = join(own, l.rel);
        try {
          const existing = lstatSync(dst);
          // An earlier removal in this step left a whiteout (or the copy replaced a file): the link takes its place.
          if (!existing.isDirectory()) unlinkSync(dst);
        } catch {
          // nothing there
        }
        try {
          linkSync(l.src, dst);
        } catch {
          copyFileSync(l.src, dst);
          const sst = lstatSync(l.src);
          chmodSync(dst, sst.mode & 0o7777);
          utimesSync(dst, sst.atime, sst.mtime);
        }
      }
      // Only the step's own changes are in this snapshot: it becomes the layer's snapshot in place.
      // (Not with SOURCE_DATE_EPOCH: the snapshot must then hold the clamped times the tar has.)
      return await layerFromSnapshot(this.images, st.image, mounts, {
        sourceDateEpoch: this.req.sourceDateEpoch, adoptActive: this.req.sourceDateEpoch === undefined ? key : undefined,
      });
    } finally {
      rmSync(mnt, { recursive: true, force: true });
      await snaps.remove(key).catch(() => {});
    }
  }

  /** Mounts an image's filesystem read-only-in-spirit for reading (COPY --from); returns its root. */
  private async withImageRoot<T>(image: ImageRecord | undefined, fn: (root: string) => Promise<T>): Promise<T> {
    if (!image || image.chainIds.length === 0) {
      const empty = mkdtempSync(join(this.scratch(), 'empty-'));
      try {
        return await fn(empty);
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    }
    const snaps = this.images.snapshots;
    const top = image.chainIds[image.chainIds.length - 1]!;
    const info = snaps.get(top);
    if (info && snaps.driver === 'vfs') return fn(snaps.dirOf(top));
    const key = `build-src-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`;
    await snaps.prepareActive(key, top);
    const mnt = mkdtempSync(join(this.scratch(), 'mnt-'));
    try {
      await snaps.mount(key, mnt);
      try {
        return await fn(mnt);
      } finally {
        await snaps.unmount(mnt);
      }
    } finally {
      rmSync(mnt, { recursive: true, force: true });
      await snaps.remove(key).catch(() => {});
    }
  }

  // ---- RUN ---------------------------------------------------------------------------------------

  private async runStep(def: DockerfileDefinition, st: StageState, inst: Extract<Instruction, { kind: 'run' }>): Promise<void> {
    if (!st.image) throw this.fail('invalid', inst, 'RUN needs a base image with a shell; this stage is FROM scratch and has no files yet');
    let cmd: string[];
    if (inst.prependShell) {
      let script = inst.cmd.join(' ');
      if (inst.heredocs.length) {
        const onlyHeredoc = /^<<-?\s*["']?[A-Za-z0-9_]+["']?\s*$/.test(script.trim());
        if (onlyHeredoc && inst.heredocs.length === 1) script = inst.heredocs[0]!.content;
        else script = `${script}\n${inst.heredocs.map((h) => `${h.content}${h.content.endsWith('\n') ? '' : '\n'}${h.name}`).join('\n')}`;
      }
      cmd = [...this.shell(st), script];
    } else {
      cmd = inst.cmd;
    }
    for (const m of inst.mounts) {
      if (m.type !== 'cache' && m.type !== 'bind' && m.type !== 'tmpfs') throw this.fail('invalid', inst, `RUN --mount=type=${m.type} is not supported by this builder`);
    }
    if (inst.devices?.length) throw this.fail('invalid', inst, 'RUN --device is not supported by this builder');
    const historyArgs = this.runArgs(st, false);
    const saveCmd = historyArgs.length ? [`|${historyArgs.length}`, ...historyArgs, ...cmd] : cmd;
    const containerConfig: DockerContainerConfig = { ...structuredClone(st.runConfig), Cmd: saveCmd, Image: st.image.id };
    const network = inst.network ?? this.req.networkMode;
    // Bind mounts: the context, an earlier stage or an image; their content is part of the key.
    const env0 = this.stageEnv(st);
    const bindSources: Array<{ index: number; image?: ImageRecord; fromContext: boolean; source: string }> = [];
    const mountKeys: unknown[] = [];
    for (const [index, m] of inst.mounts.entries()) {
      if (m.type !== 'bind') {
        mountKeys.push(m);
        continue;
      }
      const source = m.source !== undefined ? this.expandIn(m.source, env0, inst) : '/';
      if (m.from !== undefined) {
        const from = this.expandIn(m.from, env0, inst);
        const idx = this.stageIndex(def, from, st.stage.index);
        const image = idx !== undefined ? (await this.stageResult(idx))?.image : await this.baseImage(from, inst);
        bindSources.push({ index, image, fromContext: false, source });
        mountKeys.push({ ...m, image: image?.id ?? '' });
      } else {
        bindSources.push({ index, fromContext: true, source });
        let sum: string;
        try {
          sum = await sourcesChecksum(this.req.contextDir, [source]);
        } catch (err) {
          throw this.fail('not-found', inst, `RUN --mount source ${source}: ${(err as Error).message}`, err);
        }
        mountKeys.push({ ...m, checksum: sum });
      }
    }
    const extraKey = { mounts: mountKeys, network: inst.network ?? '' };
    await this.cachedStep(st, containerConfig, extraKey, () => this.withBindRoots(bindSources, 0, new Map(), (roots) => this.runContainer(st, inst, cmd, network, roots)));
  }

  /** Mounts the roots of the stages/images that RUN --mount=type=bind,from= names, then runs fn. */
  private async withBindRoots<T>(list: Array<{ index: number; image?: ImageRecord; fromContext: boolean; source: string }>, i: number,
    roots: Map<number, string>, fn: (roots: Map<number, string>) => Promise<T>): Promise<T> {
    if (i >= list.length) return fn(roots);
    const item = list[i]!;
    if (item.fromContext) {
      roots.set(item.index, resolveInRoot(this.req.contextDir, item.source));
      return this.withBindRoots(list, i + 1, roots, fn);
    }
    return this.withImageRoot(item.image, async (root) => {
      roots.set(item.index, resolveInRoot(root, item.source));
      return this.withBindRoots(list, i + 1, roots, fn);
    });
  }

  private async runContainer(st: StageState, inst: Extract<Instruction, { kind: 'run' }>, cmd: string[], network: string | undefined,
    bindRoots: Map<number, string>): Promise<{ layer: ChildLayer; containerId: string }> {
    {
      const containers = this.deps.containers;
      const hostConfig: Record<string, unknown> = {
        NetworkMode: !network || network === 'default' ? 'bridge' : network,
        LogConfig: { Type: 'none', Config: {} },
      };
      const binds: string[] = [];
      const cleanups: Array<() => void> = [];
      for (const [index, m] of inst.mounts.entries()) {
        const target = posix.isAbsolute(m.target) ? m.target : posix.join(st.runConfig.WorkingDir || '/', m.target);
        if (m.type === 'cache') {
          const id = (m.id ?? target).replace(/[^A-Za-z0-9_.-]/g, '_');
          const dir = join(this.images.snapshots.root, 'build-cache-mounts', id);
          mkdirSync(dir, { recursive: true, mode: m.mode ?? 0o755 });
          binds.push(`${dir}:${target}`);
        } else if (m.type === 'tmpfs') {
          (hostConfig.Tmpfs as Record<string, string> | undefined) ??= {};
          (hostConfig.Tmpfs as Record<string, string>)[target] = '';
        } else {
          // Read-only always: BuildKit discards writes to a bind mount, and this one is the real source.
          binds.push(`${bindRoots.get(index)}:${target}:ro`);
        }
      }
      if (binds.length) hostConfig.Binds = binds;
      const env = [...(st.runConfig.Env ?? []), ...this.runArgs(st, true)];
      this.checkCancelled();
      let created: { Id: string };
      try {
        created = await containers.create({
          config: {
            ...structuredClone(st.runConfig), Image: st.image!.id, Cmd: cmd, Entrypoint: [''], Env: env,
            AttachStdout: true, AttachStderr: true, AttachStdin: false, OpenStdin: false, Tty: false,
            Labels: {}, Healthcheck: undefined, OnBuild: null,
          },
          hostConfig: hostConfig as never,
          endpointsConfig: {},
        });
      } catch (err) {
        throw this.fail('failed', inst, (err as Error).message, err);
      }
      const id = created.Id;
      this.say(` ---> Running in ${id.slice(0, 12)}\n`);
      let code: number;
      let removeIt = this.req.forceRemove === true;
      try {
        const connP = containers.attach(id);
        const started = containers.start(id);
        const conn = await connP;
        const done = new Promise<void>((resolve) => {
          conn.socket.once('close', () => resolve());
        });
        conn.onOutput((_stream, data) => this.say(data.toString('utf8')));
        await started;
        const onAbort = () => { void containers.kill(id).catch(() => {}); };
        this.signal.addEventListener('abort', onAbort, { once: true });
        // A signal that aborted while the container was being created or started fires no event.
        if (this.signal.aborted) onAbort();
        try {
          code = (await containers.wait(id)).StatusCode;
          await Promise.race([done, new Promise((r) => setTimeout(r, 2000).unref())]);
        } finally {
          this.signal.removeEventListener('abort', onAbort);
          conn.close();
        }
        this.checkCancelled();
        if (code !== 0) {
          throw this.fail('failed', inst, `The command '${cmd.join(' ')}' returned a non-zero code: ${code}`);
        }
        removeIt = this.req.remove !== false;
        const layer = await layerFromSnapshot(this.images, st.image, containers.snapshotMounts(id), {
          exclude: [...ENGINE_FILES, ...(this.deps.engineFiles ?? []),
            ...inst.mounts.map((m) => posix.resolve(st.runConfig.WorkingDir || '/', m.target).replace(/^\/+/, ''))],
          sourceDateEpoch: this.req.sourceDateEpoch,
        });
        return { layer, containerId: id };
      } catch (err) {
        if (err instanceof BuildError) throw err;
        throw this.fail('failed', inst, (err as Error).message, err);
      } finally {
        for (const c of cleanups) c();
        if (removeIt || this.signal.aborted) {
          if (!this.signal.aborted) this.say(`Removing intermediate container ${id.slice(0, 12)}\n`);
          // Its layer is taken: the next step need not wait for the removal (the build does, at its end).
          this.removals.push(containers.remove(id, { force: true, volumes: true }).catch(() => {}));
        }
      }
    }
  }

  // ---- COPY / ADD ------------------------------------------------------------------------------

  private async copyStep(def: DockerfileDefinition, st: StageState, inst: Extract<Instruction, { kind: 'copy' | 'add' }>): Promise<void> {
    const env = this.stageEnv(st);
    const sources = inst.sources.map((s) => this.expandIn(s, env, inst));
    const dest = this.expandIn(inst.dest, env, inst);
    const chown = inst.chown !== undefined ? this.expandIn(inst.chown, env, inst) : undefined;
    const chmodText = inst.chmod !== undefined ? this.expandIn(inst.chmod, env, inst) : undefined;
    let mode: number | undefined;
    if (chmodText !== undefined) {
      if (!/^[0-7]{3,4}$/.test(chmodText)) throw this.fail('invalid', inst, `invalid chmod parameter: ${chmodText}`);
      mode = Number.parseInt(chmodText, 8);
    }
    const name = inst.kind.toUpperCase();
    const urls = sources.filter((s) => /^https?:\/\//i.test(s));
    if (inst.kind === 'copy' && urls.length) throw this.fail('invalid', inst, 'source can\'t be a URL for COPY');
    if (inst.checksum && (urls.length !== sources.length || sources.length !== 1)) throw this.fail('invalid', inst, 'checksum can\'t be specified for non-HTTP(S) sources');

    // The source: the context, an earlier stage, or an image.
    let fromImage: ImageRecord | undefined;
    let fromLabel = '';
    if (inst.from !== undefined) {
      const from = this.expandIn(inst.from, env, inst);
      const idx = this.stageIndex(def, from, st.stage.index);
      if (idx !== undefined) {
        const dep = await this.stageResult(idx);
        if (!dep) throw this.fail('invalid', inst, `stage ${from} was not built`);
        fromImage = dep.image;
      } else if (this.stageIndex(def, from, Number.MAX_SAFE_INTEGER) !== undefined) {
        throw this.fail('invalid', inst, `invalid from flag value ${from}: refers to a stage that comes after this one`);
      } else {
        fromImage = await this.baseImage(from, inst);
      }
      fromLabel = `--from=${from} `;
    }

    const heredocs = inst.heredocs.map((h) => ({ name: h.name, content: h.expand ? this.expandIn(h.content, env, inst) : h.content }));
    const localSources = sources.filter((s) => !/^https?:\/\//i.test(s) && !heredocs.some((h) => `<<${h.name}` === s || `<<-${h.name}` === s));
    let checksum: string;
    let kindWord: string;
    const readRoot = async <T>(fn: (root: string, isContext: boolean) => Promise<T>): Promise<T> =>
      (inst.from !== undefined ? this.withImageRoot(fromImage, (r) => fn(r, false)) : fn(this.req.contextDir, true));
    try {
      checksum = localSources.length
        ? await readRoot((root, isContext) => sourcesChecksum(root, localSources, { isContext }))
        : stepKey({ urls, heredocs }).slice(7);
    } catch (err) {
      if (err instanceof BuildError) throw new BuildError(err.code, `${this.file}:${inst.line}: ${name} failed: ${err.message}`, locationOf(this.file, inst), { cause: err });
      throw this.fail('failed', inst, `${name} failed: ${(err as Error).message}`, err);
    }
    kindWord = sources.length > 1 ? 'multi' : (localSources.length ? 'file' : urls.length ? 'url' : 'heredoc');
    checksum = checksum.replace(/^sha256:/, '');
    const comment = `${name} ${fromLabel}${kindWord}:${checksum} in ${dest} `;

    // Owner names resolve against the target's /etc/passwd and /etc/group.
    const cacheable = !(urls.length && !inst.checksum);
    await this.fsStep(st, inst, comment, { chown: chown ?? '', chmod: mode ?? null, from: fromImage?.id ?? '', checksum: inst.checksum ?? '' }, async (root, deferLink) => {
      const owner = chown !== undefined ? resolveOwner(root, chown, (m) => this.fail('invalid', inst, m)) : undefined;
      await readRoot(async (sourceRoot, isContext) => {
        await copyInto({
          kind: inst.kind, sourceRoot, sourceIsContext: isContext, linkSources: isContext && this.req.contextIsPrivate === true, deferLink, sources, dest, workdir: st.runConfig.WorkingDir || '/',
          targetRoot: root, uid: owner?.uid, gid: owner?.gid, mode, checksum: inst.checksum, heredocs, signal: this.signal,
        });
      });
    }, { cacheable });
  }
}

/** Docker's HEALTHCHECK history comment (Go's %q of the config struct, approximately). */
function healthcheckComment(h: DockerContainerConfig['Healthcheck'] & { StartInterval?: number } | undefined): string {
  if (!h) return '';
  const d = (ns?: number) => JSON.stringify(`${(ns ?? 0) / 1e9}s`);
  return `&{${goQuotedList(h.Test ?? [])} ${d(h.Interval)} ${d(h.Timeout)} ${d(h.StartPeriod)} ${d(h.StartInterval)} '\\x${(h.Retries ?? 0).toString(16).padStart(2, '0')}'}`;
}

/** EXPOSE 80, 80/udp, 8000-8002/tcp → ["80/tcp"], …, as docker's nat.ParsePortSpecs. */
function expandPortRange(spec: string, fail: (m: string) => Error): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/.exec(spec.trim());
  if (!m) throw fail(`Invalid containerPort: ${spec}`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw fail(`Invalid proto: ${proto}`);
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  if (start > 65535 || end > 65535 || end < start) throw fail(`Invalid containerPort: ${spec}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

/** --chown user[:group] → ids, names looked up in the target rootfs. */
function resolveOwner(root: string, spec: string, fail: (m: string) => Error): { uid: number; gid: number } {
  const [userPart, groupPart] = spec.split(':', 2) as [string, string | undefined];
  const lookup = (file: 'passwd' | 'group', name: string): { id: number; gid?: number } | undefined => {
    for (const line of readEtcFile(root, file)?.split('\n') ?? []) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return { id: Number(f[2]), gid: file === 'passwd' && f[3] && /^\d+$/.test(f[3]) ? Number(f[3]) : undefined };
    }
    return undefined;
  };
  let uid: number;
  let primaryGid: number | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
  } else {
    const u = lookup('passwd', userPart);
    if (!u) throw fail(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${userPart}: no such user: ${userPart}`);
    uid = u.id;
    primaryGid = u.gid;
  }
  // docker: a user alone means the group of the same name (or number).
  const group = groupPart === undefined || groupPart === '' ? userPart : groupPart;
  let gid: number;
  if (/^\d+$/.test(group)) {
    gid = Number(group);
  } else if (groupPart === undefined && primaryGid !== undefined && !lookup('group', group)) {
    gid = primaryGid;
  } else {
    const g = lookup('group', group);
    if (!g) throw fail(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${group}: no such group: ${group}`);
    gid = g.id;
  }
  return { uid, gid };
}

export { Builder as default };
