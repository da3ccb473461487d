/**
 * `sha256:` identifiers (docs/kubernetes-behaviour.md §5.6, §11): results carry these, never key material (docs/architecture.md §2).
 */
import {createHash} from 'node:crypto'

import {decodeGoBase64} from './gocompat/base64.js'

/** `sha256:` + lowercase hex SHA-256 of the bytes. */
export function sha256Label(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * The apiserver's config hash: SHA-256 of the RAW file bytes, comments and whitespace included
 * (docs/kubernetes-behaviour.md §5.6). Compare with the `hash` label of `apiserver_encryption_config_controller_last_config_info`.
 */
export function configHash(bytes: Uint8Array | string): string {
  return sha256Label(bytes)
}

/**
 * Fingerprint of a key: SHA-256 of the decoded key bytes (not of the base64 text, so two spellings
 * of one key agree). Undefined when the secret is not valid Go base64.
 */
export function keyFingerprint(secretBase64: string): string | undefined {
  const bytes = decodeGoBase64(secretBase64)
  return bytes === undefined ? undefined : sha256Label(bytes)
}
