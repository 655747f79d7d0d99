// `berth login` / `berth logout`: the daemon checks the credentials (POST /auth), the CLI keeps
// them in docker's config.json ($DOCKER_CONFIG or ~/.docker), so docker and berth share logins.
// Messages, warnings and their streams are the docker CLI's.
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { CredentialStore, serverAddressHost, type DockerConfigFile } from '../../image/registry/credentials.ts';
import { DOCKER_HUB_AUTH_KEY } from '../../image/reference.ts';
import { ApiResponseError } from '../client.ts';
import type { Connect } from './images.ts';
import { checkArgs, errorMessage, readLineSync, readPasswordNoEcho } from './common.ts';

export interface LoginOptions { username?: string; password?: string; passwordStdin?: boolean }

interface AuthAnswer { Status?: string; IdentityToken?: string }
interface LoginCreds { username: string; password: string; serverAddress: string }

/** The user and password config.json itself holds for a server (not a helper's): to see whether a login changes them. */
function storedEntry(config: DockerConfigFile, key: string): { username: string; password: string } | undefined {
  const auths = config.auths ?? {};
  const entry = auths[key] ?? Object.entries(auths).find(([k]) => serverAddressHost(k) === serverAddressHost(key))?.[1];
  if (!entry?.auth) return undefined;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

/** Saves what the daemon accepted; docker warns once when a password lands in the file in clear. */
async function storeCredentials(store: CredentialStore, c: LoginCreds, identityToken?: string): Promise<void> {
  const config = await store.read();
  const old = storedEntry(config, c.serverAddress);
  const helper = config.credHelpers?.[c.serverAddress] ?? config.credsStore;
  // Unchanged credentials are not rewritten (and so not warned about), as docker's file store.
  if (!helper && !identityToken && old && old.username === c.username && old.password === c.password && !config.auths?.[c.serverAddress]?.identitytoken) return;
  await store.store(c.serverAddress, identityToken ? { username: c.username, identityToken } : { username: c.username, password: c.password });
  if (!helper && !identityToken) {
    writeStderr(`\nWARNING! Your credentials are stored unencrypted in '${store.path}'.\n` +
      'Configure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n');
  }
}

export async function loginCommand(args: string[], opts: LoginOptions, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'login', usage: '[OPTIONS] [SERVER]', short: 'Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.', max: 1 });
  let password = opts.password ?? '';
  let username = (opts.username ?? '').trim();
  if (password) {
    if (opts.passwordStdin) throw new Error('conflicting options: cannot specify both --password and --password-stdin');
    writeStderr('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (opts.passwordStdin) {
    if (!username) throw new Error('the --password-stdin option requires --username to be set');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    password = Buffer.concat(chunks).toString('utf8').replace(/\n$/, '').replace(/\r$/, '');
  }
  const given = args[0] ?? '';
  const isDefault = given === '' || given === 'docker.io';
  const serverAddress = isDefault ? DOCKER_HUB_AUTH_KEY : serverAddressHost(given);
  const store = new CredentialStore();
  const client = await connect();

  const auth = async (c: LoginCreds): Promise<AuthAnswer> =>
    (await client.json<AuthAnswer>('POST', '/auth', {
      // Encoded as Go's json.Encoder does (a trailing newline), so the request is docker's byte for byte.
      body: `${JSON.stringify({ username: c.username, password: c.password, serveraddress: c.serverAddress })}\n`,
      headers: { 'Content-Type': 'application/json' },
    })) ?? {};

  // No credentials given: docker first tries what is stored.
  if (!username && !password) {
    // Through the store, so a configured credential helper is asked as docker asks it.
    const stored = await store.get(serverAddress);
    if (stored?.username && stored.password) {
      writeStderr(`Authenticating with existing credentials... [Username: ${stored.username}]\n`);
      const creds = { username: stored.username, password: stored.password, serverAddress };
      try {
        const answer = await auth(creds);
        writeStderr("\n Info -> To login with a different account, run 'docker logout' followed by 'docker login'\n\n\n");
        if (answer.IdentityToken) await storeCredentials(store, creds, answer.IdentityToken);
        if (answer.Status) writeStdout(`${answer.Status}\n`);
        return;
      } catch (e) {
        writeStderr(e instanceof ApiResponseError && e.statusCode === 401
          ? 'Stored credentials invalid or expired\n'
          : `Login did not succeed, error: ${errorMessage(e)}\n`);
      }
    }
  }
  if (!process.stdin.isTTY && (!username || !password)) {
    throw new Error('Error: Cannot perform an interactive login from a non TTY device');
  }
  if (!username) {
    if (isDefault && !password) {
      throw new Error("Error: Docker Hub's web (device code) login is not supported by berth; use --username with --password-stdin (a personal access token works as the password)");
    }
    writeStdout('Username: ');
    username = readLineSync().trim();
    if (!username) throw new Error('Error: Non-null Username Required');
  }
  password = password.trim();
  if (!password) {
    password = readPasswordNoEcho('Password: ').trim();
    writeStdout('\n');
    if (!password) throw new Error('Error: Password Required');
  }
  const creds = { username, password, serverAddress };
  const answer = await auth(creds);
  await storeCredentials(store, creds, answer.IdentityToken || undefined);
  if (answer.Status) writeStdout(`${answer.Status}\n`);
}

export async function logoutCommand(args: string[], connect: Connect): Promise<void> {
  void connect; // logout never talks to the daemon, as docker's
  checkArgs(args, { command: 'logout', usage: '[SERVER]', short: 'Log out from a registry.\nIf no server is specified, the default is defined by the daemon.', max: 1 });
  const given = args[0] ?? '';
  const isDefault = given === '';
  const host = isDefault ? DOCKER_HUB_AUTH_KEY : serverAddressHost(given);
  writeStdout(`Removing login credentials for ${isDefault ? DOCKER_HUB_AUTH_KEY : host}\n`);
  const store = new CredentialStore();
  try {
    await store.erase(isDefault ? DOCKER_HUB_AUTH_KEY : given);
  } catch (e) {
    writeStderr(`WARNING: could not erase credentials:\n${host}: ${(e as Error).message}\n`);
  }
}
