// The registry client's public surface (see client.ts for the client, credentials.ts for
// docker's config.json and X-Registry-Auth, errors.ts for RegistryError).
export {
  MANIFEST_ACCEPT, parseManifestBytes, RegistryClient, translatePullError,
  type AnyManifest, type BlobDownload, type BlobSource, type FetchedImageManifest, type FetchedIndex, type FetchedManifest,
  type OpenBlobOptions, type PingResult, type PushBlobOptions, type PushBlobResult, type RegistryClientOptions, type RepositoryRef,
  type ResolvedImage, type ResolveOptions,
} from './client.ts';
export { parseWWWAuthenticate, repositoryScope, type Challenge, type Credentials } from './auth.ts';
export {
  credentialKey, CredentialsError, CredentialStore, decodeRegistryAuthHeader, dockerConfigDir, dockerConfigPath,
  encodeRegistryAuthHeader, fixedCredentials, serverAddressHost,
  type AuthEntry, type CredentialResolver, type CredentialStoreOptions, type DockerConfigFile, type RegistryAuthHeader,
} from './credentials.ts';
export {
  formatDistributionError, isRegistryError, RegistryError, type DistributionError, type RegistryErrorCode,
} from './errors.ts';
