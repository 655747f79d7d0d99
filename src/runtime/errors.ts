/** Errors a user can act on. The CLI prints `message` and exits non-zero; nothing else. */
export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** The bundle's config.json is malformed or asks for something Berth cannot honour. */
export class ConfigError extends RuntimeError {
  override name = 'ConfigError';
}

/** An operation on a container that does not exist. */
export class NotFoundError extends RuntimeError {
  override name = 'NotFoundError';
}

/** An operation that the container's current state does not allow (start twice, delete running, …). */
export class StateError extends RuntimeError {
  override name = 'StateError';
}
