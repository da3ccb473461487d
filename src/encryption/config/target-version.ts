/**
 * Kubernetes release gates for configuration features (docs/kubernetes-behaviour.md §15). A target is a minor release of
 * the 1.x line; the default is 1.36, the release docs/kubernetes-behaviour.md was first written against (§0).
 */
export interface TargetVersion {
  major: 1
  minor: number
}

/** The release the spec describes (docs/kubernetes-behaviour.md §0); used when no --target-version is given. */
export const BASELINE_VERSION: TargetVersion = {major: 1, minor: 36}
/** `apiserver.config.k8s.io/v1` EncryptionConfiguration exists from 1.13 (docs/kubernetes-behaviour.md §15). */
export const OLDEST_TARGET: TargetVersion = {major: 1, minor: 13}

/** The release each gated feature appeared in (docs/kubernetes-behaviour.md §15). */
export const FEATURE_SINCE = {
  /** KMS v2 (alpha, `KMSv2` gate off by default). */
  kmsV2: 25,
  /** KMS v2 beta: on by default. */
  kmsV2Default: 27,
  /** The `KMSv2` gate is removed: KMS v2 is always on. */
  kmsV2GateRemoved: 32,
  /** Custom resource encryption. */
  customResources: 26,
  /** `--encryption-provider-config-automatic-reload`. */
  automaticReload: 26,
  /** Unique KMS names enforced (v2 always, v1 under automatic reload). */
  kmsUniqueNames: 26,
  /** `*.*`, `*.<group>`, `*.`. */
  wildcards: 27,
  /** KMSv1 gate deprecated (still on by default). */
  kmsV1Deprecated: 28,
  /** KMSv1 gate off by default. */
  kmsV1Off: 29,
} as const

/** Parses `1.29`, `v1.29`, `1.29.3`; returns undefined for anything else. */
export function parseTargetVersion(text: string): TargetVersion | undefined {
  const match = /^v?1\.(\d+)(?:\.\d+)?$/.exec(text.trim())
  if (!match) return undefined
  return {major: 1, minor: Number(match[1])}
}

export function formatTargetVersion(v: TargetVersion): string {
  return `${v.major}.${v.minor}`
}
