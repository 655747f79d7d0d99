// Registry credentials in docker's formats:
//   - config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json): `auths[key].auth` is
//     base64("user:password"), `identitytoken` a refresh token from a token-server login;
//     `credHelpers[host]` / `credsStore` name a `docker-credential-<name>` program that keeps
//     the secret instead (protocol: `get`/`store`/`erase`, JSON on stdin/stdout).
//     Docker Hub's key is the legacy "https://index.docker.io/v1/"; others are host[:port].
//   - the docker CLI's X-Registry-Auth header: base64url JSON {username, password, serveraddress,
//     identitytoken, registrytoken}, one request's credentials.
// Berth reads and writes the same file docker does, so `docker login` and `berth login` share it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { authConfigKey, DEFAULT_DOMAIN, DOCKER_HUB_AUTH_KEY, DOCKER_HUB_REGISTRY_HOST } from '../reference.ts';
import type { Credentials } from './auth.ts';

export type { Credentials } from './auth.ts';

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

/** Resolves the credentials for a registry domain ("docker.io", "127.0.0.1:5000"); undefined: anonymous. */
export type CredentialResolver = (domain: string) => Promise<Credentials | undefined>;

/** One entry of config.json's `auths` (docker's AuthConfig as it is stored). */
export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
  [extra: string]: unknown;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [extra: string]: unknown;
}

/** Where docker keeps config.json: $DOCKER_CONFIG, else ~/.docker. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(dockerConfigDir(env), 'config.json');
}

/**
 * The host a config key or `docker login` argument names: "https://index.docker.io/v1/" →
 * "index.docker.io", "http://127.0.0.1:5000/v2/" → "127.0.0.1:5000".
 */
export function serverAddressHost(address: string): string {
  let s = address.trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  return (slash === -1 ? s : s.slice(0, slash)).toLowerCase();
}

function isDockerHubHost(host: string): boolean {
  return host === DEFAULT_DOMAIN || host === 'index.docker.io' || host === DOCKER_HUB_REGISTRY_HOST;
}

/** The config.json key for a registry domain or a `docker login` server argument. */
export function credentialKey(domainOrAddress: string): string {
  const host = serverAddressHost(domainOrAddress);
  return isDockerHubHost(host) ? DOCKER_HUB_AUTH_KEY : authConfigKey(host);
}

function encodeAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

function decodeAuth(auth: string, where: string): { username: string; password: string } {
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new CredentialsError(`invalid auth entry for ${where}: the "auth" value is not base64("user:password")`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function entryToCredentials(e: AuthEntry, where: string): Credentials | undefined {
  const c: Credentials = {};
  if (e.auth) {
    const { username, password } = decodeAuth(e.auth, where);
    if (username) c.username = username;
    if (password) c.password = password;
  } else {
    if (e.username) c.username = e.username;
    if (e.password) c.password = e.password;
  }
  if (e.identitytoken) c.identityToken = e.identitytoken;
  if (e.registrytoken) c.registryToken = e.registrytoken;
  return c.username || c.password || c.identityToken || c.registryToken ? c : undefined;
}

// ---------------------------------------------------------------------------------------------
// credential helpers
// ---------------------------------------------------------------------------------------------

const HELPER_NOT_FOUND = /credentials not found/i;
// The helper protocol's way to say "this is an identity token, not a password".
const TOKEN_USERNAME = '<token>';

function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new CredentialsError(e.code === 'ENOENT'
        ? `credential helper ${program} (configured in docker's config.json) is not installed: executable file not found in $PATH`
        : `credential helper ${program} cannot be run: ${e.message}`));
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => { /* the helper may exit before reading; its exit status says what happened */ });
    child.stdin.end(input);
  });
}

export async function helperGet(name: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const r = await runHelper(name, 'get', serverUrl, env);
  if (r.code !== 0) {
    const msg = (r.stdout || r.stderr).trim();
    if (HELPER_NOT_FOUND.test(msg)) return undefined;
    throw new CredentialsError(`credential helper docker-credential-${name} failed to get credentials for ${serverUrl}: ${msg || `exit status ${r.code}`}`);
  }
  let j: { Username?: unknown; Secret?: unknown };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new CredentialsError(`credential helper docker-credential-${name} printed something that is not JSON for ${serverUrl}`);
  }
  const username = typeof j.Username === 'string' ? j.Username : '';
  const secret = typeof j.Secret === 'string' ? j.Secret : '';
  if (!secret && !username) return undefined;
  return username === TOKEN_USERNAME ? { identityToken: secret } : { username, password: secret };
}

export async function helperStore(name: string, serverUrl: string, c: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const body = c.identityToken ? { ServerURL: serverUrl, Username: TOKEN_USERNAME, Secret: c.identityToken }
    : { ServerURL: serverUrl, Username: c.username ?? '', Secret: c.password ?? '' };
  const r = await runHelper(name, 'store', JSON.stringify(body), env);
  if (r.code !== 0) {
    throw new CredentialsError(`credential helper docker-credential-${name} failed to store credentials for ${serverUrl}: ${(r.stdout || r.stderr).trim() || `exit status ${r.code}`}`);
  }
}

export async function helperErase(name: string, serverUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const r = await runHelper(name, 'erase', serverUrl, env);
  if (r.code !== 0 && !HELPER_NOT_FOUND.test(r.stdout + r.stderr)) {
    throw new CredentialsError(`credential helper docker-credential-${name} failed to erase credentials for ${serverUrl}: ${(r.stdout || r.stderr).trim() || `exit status ${r.code}`}`);
  }
}

// ---------------------------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------------------------

export interface CredentialStoreOptions {
  /** config.json to use; default dockerConfigPath(env). */
  path?: string;
  /** Environment for locating the file and running helpers; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Credentials in a docker config.json (and the helpers it names). */
export class CredentialStore {
  readonly path: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: CredentialStoreOptions = {}) {
    this.env = opts.env ?? process.env;
    this.path = opts.path ?? dockerConfigPath(this.env);
  }

  /** The file's content; {} when it does not exist. Invalid JSON is an error (never overwritten). */
  async read(): Promise<DockerConfigFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new CredentialsError(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    if (text.trim() === '') return {};
    try {
      const j = JSON.parse(text) as unknown;
      if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object');
      return j as DockerConfigFile;
    } catch (err) {
      throw new CredentialsError(`${this.path} is not valid JSON (${(err as Error).message}); fix or remove it`);
    }
  }

  /** Writes atomically, private to the owner (it holds secrets). */
  async write(config: DockerConfigFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new CredentialsError(`cannot write ${this.path}: ${(err as Error).message}`);
    }
  }

  private helperFor(config: DockerConfigFile, host: string): string | undefined {
    const helpers = config.credHelpers ?? {};
    for (const [k, v] of Object.entries(helpers)) if (serverAddressHost(k) === host || (isDockerHubHost(host) && isDockerHubHost(serverAddressHost(k)))) return v;
    return config.credsStore || undefined;
  }

  /** The `auths` entry for a host: the exact key first, then any key naming the same host. */
  private findEntry(config: DockerConfigFile, key: string, host: string): [string, AuthEntry] | undefined {
    const auths = config.auths ?? {};
    if (auths[key]) return [key, auths[key]!];
    for (const [k, v] of Object.entries(auths)) {
      const h = serverAddressHost(k);
      if (h === host || (isDockerHubHost(host) && isDockerHubHost(h))) return [k, v];
    }
    return undefined;
  }

  /** Credentials for a registry domain or server address; undefined when none are stored. */
  async get(domainOrAddress: string): Promise<Credentials | undefined> {
    const config = await this.read();
    const key = credentialKey(domainOrAddress);
    const host = serverAddressHost(key);
    const helper = this.helperFor(config, host);
    if (helper) return helperGet(helper, key, this.env);
    const found = this.findEntry(config, key, host);
    return found ? entryToCredentials(found[1], `${found[0]} in ${this.path}`) : undefined;
  }

  /** Saves credentials (a helper's store when one is configured, else base64 in the file). */
  async store(domainOrAddress: string, c: Credentials): Promise<void> {
    const config = await this.read();
    const key = credentialKey(domainOrAddress);
    const host = serverAddressHost(key);
    const helper = this.helperFor(config, host);
    config.auths ??= {};
    const existing = this.findEntry(config, key, host);
    if (existing && existing[0] !== key) delete config.auths[existing[0]];
    if (helper) {
      await helperStore(helper, key, c, this.env);
      // docker leaves an empty entry so `docker info`/logout know a login exists
      config.auths[key] = {};
    } else {
      const entry: AuthEntry = {};
      // With an identity token docker keeps only the user name beside it, never the password.
      if (c.identityToken) {
        entry.auth = encodeAuth(c.username ?? '', '');
        entry.identitytoken = c.identityToken;
      } else {
        entry.auth = encodeAuth(c.username ?? '', c.password ?? '');
      }
      config.auths[key] = entry;
    }
    await this.write(config);
  }

  /** Forgets a registry's credentials; false when there were none. */
  async erase(domainOrAddress: string): Promise<boolean> {
    const config = await this.read();
    const key = credentialKey(domainOrAddress);
    const host = serverAddressHost(key);
    const helper = this.helperFor(config, host);
    const found = this.findEntry(config, key, host);
    if (helper) await helperErase(helper, key, this.env);
    if (!found) return !!helper;
    delete config.auths![found[0]];
    await this.write(config);
    return true;
  }

  /** A resolver for RegistryClient that reads this file on each call (it may change under us). */
  resolver(): CredentialResolver {
    return (domain) => this.get(domain);
  }
}

// ---------------------------------------------------------------------------------------------
// X-Registry-Auth
// ---------------------------------------------------------------------------------------------

export interface RegistryAuthHeader extends Credentials {
  serverAddress?: string;
  email?: string;
}

/**
 * Decodes the docker CLI's X-Registry-Auth header (base64url of a JSON AuthConfig; the CLI pads,
 * other clients may not, and older ones used standard base64). Field names are matched without
 * regard to case, as Go's JSON decoder does. An empty header or "{}" means anonymous.
 */
export function decodeRegistryAuthHeader(header: string | undefined): RegistryAuthHeader | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (trimmed === '') return undefined;
  const normalised = trimmed.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*=*$/.test(normalised)) throw new CredentialsError('invalid X-Registry-Auth header: not base64url');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(normalised, 'base64').toString('utf8'));
  } catch {
    throw new CredentialsError('invalid X-Registry-Auth header: not base64url-encoded JSON');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new CredentialsError('invalid X-Registry-Auth header: not a JSON object');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) fields[k.toLowerCase()] = v;
  const str = (k: string): string | undefined => (typeof fields[k] === 'string' && fields[k] !== '' ? (fields[k] as string) : undefined);
  const out: RegistryAuthHeader = {};
  let username = str('username');
  let password = str('password');
  const auth = str('auth');
  if (auth && !username && !password) {
    ({ username, password } = decodeAuth(auth, 'X-Registry-Auth'));
  }
  if (username) out.username = username;
  if (password) out.password = password;
  const identityToken = str('identitytoken');
  if (identityToken) out.identityToken = identityToken;
  const registryToken = str('registrytoken');
  if (registryToken) out.registryToken = registryToken;
  const serverAddress = str('serveraddress');
  if (serverAddress) out.serverAddress = serverAddress;
  const email = str('email');
  if (email) out.email = email;
  return Object.keys(out).length ? out : undefined;
}

/** The header's encoding (what the docker CLI sends), for Berth's own CLI and tests. */
export function encodeRegistryAuthHeader(a: RegistryAuthHeader): string {
  const j: Record<string, string> = {};
  if (a.username) j.username = a.username;
  if (a.password) j.password = a.password;
  if (a.serverAddress) j.serveraddress = a.serverAddress;
  if (a.identityToken) j.identitytoken = a.identityToken;
  if (a.registryToken) j.registrytoken = a.registryToken;
  if (a.email) j.email = a.email;
  return Buffer.from(JSON.stringify(j), 'utf8').toString('base64url');
}

/** A resolver that gives `creds` for one registry domain (X-Registry-Auth is per request) and nothing elsewhere. */
export function fixedCredentials(domain: string, creds: Credentials | undefined): CredentialResolver {
  const key = credentialKey(domain);
  return async (d) => (creds && credentialKey(d) === key ? creds : undefined);
}
