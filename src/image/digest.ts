// Digests (`algorithm:hex`) as the OCI image spec defines them, and chain IDs.
// Berth writes sha256 only; sha512 is accepted wherever a digest is verified, because the
// spec registers it and a registry may hand one out.
import { createHash, type Hash } from 'node:crypto';
import type { Digest } from './types.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A string that is not a digest Berth can verify (wrong shape or an unsupported algorithm). */
export class InvalidDigestError extends Error {
  override name = 'InvalidDigestError';
  constructor(readonly digest: string, reason: string) {
    super(`invalid digest ${JSON.stringify(digest.length > 150 ? `${digest.slice(0, 150)}…` : digest)}: ${reason}`);
  }
}

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Splits and validates a digest; throws InvalidDigestError with the reason. */
export function parseDigest(digest: string): ParsedDigest {
  if (typeof digest !== 'string') throw new InvalidDigestError(String(digest), 'not a string');
  const colon = digest.indexOf(':');
  if (colon <= 0) throw new InvalidDigestError(digest, 'expected "algorithm:hex", e.g. "sha256:<64 hex digits>"');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidDigestError(digest, `unsupported algorithm "${algorithm}" (sha256 and sha512 are supported)`);
  }
  const want = HEX_LENGTH[algorithm];
  // Lower-case only: the spec's grammar for registered algorithms is [a-f0-9], and accepting
  // upper case would give one blob two names.
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidDigestError(digest, `${algorithm} needs exactly ${want} lower-case hex digits`);
  }
  return { algorithm, hex };
}

export function isDigest(value: unknown): value is Digest {
  if (typeof value !== 'string') return false;
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** An incremental hasher for the digest's algorithm. */
export function hasherFor(digest: string): Hash {
  return createHash(parseDigest(digest).algorithm);
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The 12-hex short form docker prints for layer and image ids. */
export function shortId(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 13);
}

/**
 * The chain ID of a layer stack (OCI image-spec, config.md "Layer ChainID"):
 * ChainID(L0) = DiffID(L0), ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
 * It names an applied stack, so identical prefixes of different images share snapshots.
 */
export function chainId(diffIds: readonly Digest[]): Digest {
  const all = chainIds(diffIds);
  if (all.length === 0) throw new InvalidDigestError('', 'a chain ID needs at least one diff ID');
  return all[all.length - 1]!;
}

/** The chain IDs of every prefix of the stack: result[i] names layers 0..i applied. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    parseDigest(diffId);
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diffId : sha256Digest(`${prev} ${diffId}`));
  }
  return out;
}
