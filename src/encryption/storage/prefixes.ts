/** Stored value prefixes (docs/kubernetes-behaviour.md §2.1, §3.1). */
export const PROVIDER_PREFIXES = {
  aescbc: 'k8s:enc:aescbc:v1:',
  aesgcm: 'k8s:enc:aesgcm:v1:',
  secretbox: 'k8s:enc:secretbox:v1:',
  kmsV1: 'k8s:enc:kms:v1:',
  kmsV2: 'k8s:enc:kms:v2:',
} as const

/** `k8s:enc:`: what every encrypting provider's prefix starts with; identity refuses such values. */
export const ENCRYPTED_MARKER = Buffer.from('k8s:enc:')

export const startsWith = (value: Buffer, prefix: Buffer): boolean =>
  value.length >= prefix.length && value.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
