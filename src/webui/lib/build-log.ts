// The classic builder's progress stream (POST /build), turned into steps the build page shows.
// Pure: no DOM, unit-tested in Node with output captured from Berth.
//
// The daemon sends JSON messages: {"stream": text} is the log (not necessarily whole lines:
// a RUN step's output arrives as the process writes it), {"aux": {"ID": …}} the built image,
// {"error", "errorDetail"} the failure, and {"id", "status", "progress"} a pull of the FROM image.
// The log's shape is the classic builder's:
//   Step 2/4 : RUN echo hi
//    ---> Using cache          (a cache hit)
//    ---> Running in 5f1c…     (a RUN step's container)
//    ---> b3091c7401c2         (the step's image)
//   Successfully built df10f0ea2de5
//   Successfully tagged app:1

import type { JsonMessage } from './streams.ts';

export interface BuildStep {
  /** 1-based, as printed ("Step k/N"). */
  index: number;
  total: number;
  /** The instruction as the builder printed it ("RUN echo hi"). */
  instruction: string;
  /** A cache hit ("---> Using cache"). */
  cached: boolean;
  /** The step's resulting image (short id), once done. */
  imageId?: string;
  /** Everything printed for this step after its "Step" line, the step's own output included. */
  lines: string[];
}

/** Lines kept per step and before the first step; older ones are dropped (a chatty RUN). */
export const MAX_LINES_PER_STEP = 5000;

const STEP_RE = /^Step (\d+)\/(\d+) : ?(.*)$/;
const ARROW_RE = /^ ---> (.*)$/;
const ID_RE = /^(?:sha256:)?[0-9a-f]{12,64}$/;

export class BuildLog {
  /** Lines before the first step (rare: a warning, the pull of a remote context). */
  readonly preamble: string[] = [];
  readonly steps: BuildStep[] = [];
  /** "Successfully built/tagged" and anything after the last step's result. */
  readonly trailer: string[] = [];
  /** The image id from aux.ID (full "sha256:…"), or from "Successfully built" when aux is absent. */
  imageId?: string;
  readonly tags: string[] = [];
  error?: string;
  /** Text of the line being written (no newline yet). */
  private partial = '';
  /** Where pull progress lines of an id sit, to update them in place as the CLI does. */
  private readonly progressAt = new Map<string, { lines: string[]; index: number }>();
  private afterSteps = false;

  /** Applies one message of the stream. */
  apply(msg: JsonMessage): void {
    if (msg.error !== undefined || msg.errorDetail?.message !== undefined) {
      this.flush();
      this.error = msg.errorDetail?.message || msg.error || 'the build failed';
      return;
    }
    if (msg.aux && typeof msg.aux.ID === 'string') {
      this.imageId = msg.aux.ID;
      this.afterSteps = true;
      return;
    }
    if (typeof msg.stream === 'string') {
      this.write(msg.stream);
      return;
    }
    if (typeof msg.status === 'string') this.progress(msg);
  }

  /** Call when the stream ends: a last line without a newline is kept. */
  end(): void {
    this.flush();
  }

  get current(): BuildStep | undefined {
    return this.steps[this.steps.length - 1];
  }

  /** The number of steps the Dockerfile has (from "Step k/N"), 0 before the first step. */
  get total(): number {
    return this.current?.total ?? 0;
  }

  /** Steps finished (their image id printed). */
  get done(): number {
    return this.steps.filter((s) => s.imageId !== undefined).length;
  }

  get cachedCount(): number {
    return this.steps.filter((s) => s.cached).length;
  }

  /** The text of the line being written, for a live view. */
  get pending(): string {
    return this.partial;
  }

  /** The whole log as text (what `docker build` prints), for copy and download. */
  text(): string {
    const out: string[] = [...this.preamble];
    for (const s of this.steps) out.push(`Step ${s.index}/${s.total} : ${s.instruction}`, ...s.lines);
    out.push(...this.trailer);
    if (this.partial) out.push(this.partial);
    return out.join('\n') + (out.length ? '\n' : '');
  }

  private write(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.line(p.endsWith('\r') ? p.slice(0, -1) : p);
  }

  private flush(): void {
    if (this.partial) {
      const p = this.partial;
      this.partial = '';
      this.line(p);
    }
  }

  private target(): string[] {
    if (this.afterSteps) return this.trailer;
    return this.current?.lines ?? this.preamble;
  }

  private push(lines: string[], line: string): void {
    lines.push(line);
    if (lines.length > MAX_LINES_PER_STEP) {
      lines.splice(0, lines.length - MAX_LINES_PER_STEP);
      this.progressAt.clear();
    }
  }

  private line(line: string): void {
    const step = STEP_RE.exec(line);
    if (step) {
      this.afterSteps = false;
      this.progressAt.clear();
      this.steps.push({ index: Number(step[1]), total: Number(step[2]), instruction: step[3], cached: false, lines: [] });
      return;
    }
    const cur = this.current;
    const arrow = ARROW_RE.exec(line);
    if (arrow && cur && !this.afterSteps) {
      const what = arrow[1].trim();
      if (what === 'Using cache') cur.cached = true;
      else if (ID_RE.test(what)) cur.imageId = what.replace(/^sha256:/, '');
    }
    const built = /^Successfully built ([0-9a-f]+)$/.exec(line);
    if (built) {
      this.afterSteps = true;
      this.imageId ??= built[1];
    }
    const tagged = /^Successfully tagged (.+)$/.exec(line);
    if (tagged) {
      this.afterSteps = true;
      this.tags.push(tagged[1]);
    }
    this.push(this.target(), line);
  }

  /** A pull of the FROM image: one line per layer id, updated in place. */
  private progress(msg: JsonMessage): void {
    this.flush();
    const text = `${msg.id ? `${msg.id}: ` : ''}${msg.status ?? ''}${msg.progress ? ` ${msg.progress}` : ''}`;
    const lines = this.target();
    const at = msg.id ? this.progressAt.get(msg.id) : undefined;
    if (at && at.lines === lines && at.index < lines.length) {
      lines[at.index] = text;
      return;
    }
    this.push(lines, text);
    if (msg.id) this.progressAt.set(msg.id, { lines, index: lines.length - 1 });
  }
}
