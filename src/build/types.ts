// The build area's shared shapes: what the parser hands the builder, what the API and CLI hand
// the builder, and the one error type every build failure is reported with.
//
// Module map (dependencies point downward):
//   parser.ts        Dockerfile text → nodes (directives, continuations, heredocs, JSON/shell forms)
//   shell-lex.ts     docker's variable expansion ($VAR, ${VAR:-w}, …) and word splitting
//   instructions.ts  nodes → typed instructions grouped into stages, with flag validation
//   dockerignore.ts  .dockerignore patterns (moby's patternmatcher rules)
//   context.ts       the build context: tar stream ↔ directory, source checksums
//   copy.ts          COPY/ADD into a rootfs (symlink-safe), archive auto-extraction, URLs
//   cache.ts         the step cache (parent image + step key → image)
//   builder.ts       runs stages: FROM, metadata steps, RUN in containers, COPY/ADD, commit

/** Where a problem is: the Dockerfile's name and 1-based line numbers. */
export interface SourceLocation {
  file: string;
  line: number;
  endLine?: number;
}

export type BuildErrorCode =
  /** The Dockerfile or the request is wrong (parse errors, unknown flags, missing stage). */
  | 'invalid'
  /** Something named by the build is absent (base image, COPY source, --from image). */
  | 'not-found'
  /** A step ran and failed (RUN exit status, download error). */
  | 'failed'
  /** The build was cancelled (client went away). */
  | 'cancelled';

/** Every build failure. `message` is what the user sees; it names the file and line when known. */
export class BuildError extends Error {
  override name = 'BuildError';
  constructor(readonly code: BuildErrorCode, message: string, readonly location?: SourceLocation, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A heredoc attached to an instruction (`RUN <<EOF`, `COPY <<EOF /dst`). */
export interface Heredoc {
  /** The delimiter word without quotes (e.g. "EOF"). */
  name: string;
  /** The body, with the final newline kept as written; `<<-` has leading tabs removed. */
  content: string;
  /** false when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no variable expansion. */
  expand: boolean;
}
