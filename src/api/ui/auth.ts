// Who may use the web UI: a per-daemon secret token, exchanged for a session cookie.
//
// The UI drives an API that is root-equivalent, so the browser is treated as hostile ground:
//   - the token lives in a root-only file (<exec-root>/ui/token, mode 0600), made afresh at every
//     start, so only someone who can already read root's files can sign in;
//   - signing in gives an HttpOnly, SameSite=Strict cookie holding a random session id (the token
//     never reaches page scripts or storage); sessions live in memory and expire when idle;
//   - every state-changing request must carry the session's CSRF token in a header, which a
//     cross-site page cannot set (no CORS is ever granted), on top of SameSite and Origin checks.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SESSION_COOKIE = 'berth_session';
/** A session nobody used for this long is forgotten. */
const IDLE_MS = 12 * 3600 * 1000;
/** Bounded, so a flood of sign-ins cannot grow the daemon's memory. */
const MAX_SESSIONS = 256;

export interface UiSession {
  id: string;
  csrf: string;
  lastUsed: number;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time string comparison (hashing first makes the lengths equal). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export class UiAuth {
  readonly token: string;
  readonly tokenFile: string;
  private readonly sessions = new Map<string, UiSession>();

  /** Makes a new token and writes it under `dir` (created 0700), readable by root only. */
  constructor(dir: string, now: () => number = Date.now) {
    this.now = now;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    this.token = randomBytes(24).toString('base64url');
    this.tokenFile = join(dir, 'token');
    // Written beside and renamed, so a reader never sees a half-written token.
    const tmp = `${this.tokenFile}.${process.pid}.tmp`;
    writeFileSync(tmp, `${this.token}\n`, { mode: 0o600 });
    renameSync(tmp, this.tokenFile);
  }

  private readonly now: () => number;

  /** A new session when `token` is right; undefined otherwise. */
  signIn(token: string): UiSession | undefined {
    if (!sameSecret(token.trim(), this.token)) return undefined;
    this.expire();
    if (this.sessions.size >= MAX_SESSIONS) {
      // The least recently used goes (Map keeps insertion order; touch() re-inserts).
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const session: UiSession = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(24).toString('base64url'), lastUsed: this.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session named by the request's cookie, refreshed; undefined when there is none. */
  session(cookieHeader: string | undefined): UiSession | undefined {
    const id = parseCookies(cookieHeader).get(SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (this.now() - s.lastUsed > IDLE_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastUsed = this.now();
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  signOut(id: string): void {
    this.sessions.delete(id);
  }

  /** Forgets every session (the token file is about to go). */
  clear(): void {
    this.sessions.clear();
  }

  private expire(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (now - s.lastUsed > IDLE_MS) this.sessions.delete(id);
  }
}

/** The Set-Cookie value that starts a session (no Max-Age: it ends with the browser session). */
export function sessionCookie(id: string): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}
