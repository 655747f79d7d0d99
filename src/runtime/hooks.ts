// Hooks that run in the runtime's namespaces (prestart, createRuntime, poststart, poststop).
// Hooks that run in the container (createContainer, startContainer) are executed by the C stage.
import { spawnSync } from 'node:child_process';
import { RuntimeError } from './errors.ts';
import type { Hook, State } from './spec-types.ts';
import { writeStderr } from './output.ts';

export class HookError extends RuntimeError {
  override name = 'HookError';
}

export function runHook(kind: string, hook: Hook, state: State): void {
  const argv = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const result = spawnSync(hook.path, argv.slice(1), {
    argv0: argv[0],
    env: Object.fromEntries((hook.env ?? []).map((e) => {
      const i = e.indexOf('=');
      return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
    })),
    input: JSON.stringify(state),
    stdio: ['pipe', 'inherit', 'pipe'],
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
  });
  const stderr = result.stderr?.toString().trim();
  if (stderr) writeStderr(`${stderr}\n`);
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new HookError(`${kind} hook ${hook.path} timed out after ${hook.timeout}s`);
    throw new HookError(`${kind} hook ${hook.path} could not run: ${result.error.message}`);
  }
  if (result.signal) throw new HookError(`${kind} hook ${hook.path} was killed by ${result.signal}`);
  if (result.status !== 0) throw new HookError(`${kind} hook ${hook.path} exited with status ${result.status}${stderr ? `: ${stderr.slice(0, 500)}` : ''}`);
}

/** Runs hooks in order; the first failure stops the rest and is thrown. */
export function runHooks(kind: string, hooks: Hook[] | undefined, state: State): void {
  for (const hook of hooks ?? []) runHook(kind, hook, state);
}

/** For poststart/poststop: the spec says failures are logged and the lifecycle continues. */
export function runHooksWarn(kind: string, hooks: Hook[] | undefined, state: State, warn: (message: string) => void): void {
  for (const hook of hooks ?? []) {
    try {
      runHook(kind, hook, state);
    } catch (err) {
      warn((err as Error).message);
    }
  }
}
