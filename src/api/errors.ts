// Errors a route handler throws, and the HTTP status each becomes, as dockerd's errdefs classes:
// the docker CLI prints `Error response from daemon: <message>` and decides some behaviour from
// the status (404 on create → pull the image; 409 → conflict), so the status matters.
//
// Handlers throw these (or any error); the server answers {"message": "..."} with the status.
// Modules below the API (image store, engine) keep their own error types and register a mapper
// here instead of importing HTTP notions: registerErrorStatus((e) => e instanceof ContentError &&
// e.code === 'not-found' ? 404 : undefined).
import { InvalidFilterError } from '../engine/filters.ts';
import { DaemonConfigError } from '../engine/config.ts';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/** 400: a malformed request (bad JSON, bad parameter). */
export class InvalidParameterError extends ApiError {
  override name = 'InvalidParameterError';
  constructor(message: string) { super(400, message); }
}
/** 401 */
export class UnauthorizedError extends ApiError {
  override name = 'UnauthorizedError';
  constructor(message: string) { super(401, message); }
}
/** 403 */
export class ForbiddenError extends ApiError {
  override name = 'ForbiddenError';
  constructor(message: string) { super(403, message); }
}
/** 404: "No such image: busybox:latest", "No such container: abc". */
export class NotFoundError extends ApiError {
  override name = 'NotFoundError';
  constructor(message: string) { super(404, message); }
}
/** 409: name in use, image in use by a container, container running. */
export class ConflictError extends ApiError {
  override name = 'ConflictError';
  constructor(message: string) { super(409, message); }
}
/** 501 */
export class NotImplementedError extends ApiError {
  override name = 'NotImplementedError';
  constructor(message: string) { super(501, message); }
}
/** 503 */
export class UnavailableError extends ApiError {
  override name = 'UnavailableError';
  constructor(message: string) { super(503, message); }
}

export const noSuchImage = (ref: string): NotFoundError => new NotFoundError(`No such image: ${ref}`);
export const noSuchContainer = (id: string): NotFoundError => new NotFoundError(`No such container: ${id}`);

type StatusMapper = (err: unknown) => number | undefined;
const mappers: StatusMapper[] = [
  (e) => (e instanceof InvalidFilterError || e instanceof DaemonConfigError ? 400 : undefined),
];

/** Lets a module map its own error types to statuses without depending on the API layer's classes. */
export function registerErrorStatus(mapper: StatusMapper): void {
  mappers.push(mapper);
}

/** The status for any thrown value: ApiError's, a registered mapper's, a numeric `statusCode`, else 500. */
export function errorStatus(err: unknown): number {
  if (err instanceof ApiError) return err.statusCode;
  for (const m of mappers) {
    const s = m(err);
    if (s !== undefined) return s;
  }
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof code === 'number' && code >= 400 && code <= 599) return code;
  return 500;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
