/**
 * The EncryptionConfiguration model (docs/kubernetes-behaviour.md §5.3). Field names are the file's own, so a parsed
 * document maps onto these types one to one. Key secrets are base64 text; they never leave
 * src/encryption except as fingerprints (`sha256:`), see docs/architecture.md §2.
 */
export type AesProviderType = 'aescbc' | 'aesgcm' | 'secretbox'
export type ProviderType = 'identity' | AesProviderType | 'kms'

export interface KeySpec {
  name: string
  /** base64 (Go standard encoding) of the raw key bytes. Secret. */
  secret: string
}

export interface KeyedProviderSpec {
  keys: KeySpec[]
}

export interface KmsProviderSpec {
  apiVersion?: 'v1' | 'v2' | string
  name: string
  endpoint: string
  cachesize?: number
  timeout?: string
}

/** Exactly one field is set in a valid file (docs/kubernetes-behaviour.md §6.3 step 5). */
export interface ProviderSpec {
  identity?: Record<string, never>
  aescbc?: KeyedProviderSpec
  aesgcm?: KeyedProviderSpec
  secretbox?: KeyedProviderSpec
  kms?: KmsProviderSpec
}

export interface ResourceEntry {
  resources: string[]
  providers: ProviderSpec[]
}

export interface EncryptionConfiguration {
  apiVersion: string
  kind: string
  resources: ResourceEntry[]
}

/** (group, resource) as the apiserver matches them (docs/kubernetes-behaviour.md §8); core group is "". */
export interface GroupResource {
  group: string
  resource: string
}
