/**
 * Warnings the apiserver does not raise but an operator should see (docs/kubernetes-behaviour.md §7 step 6), and the seed's
 * cautions about providers (the task page, "Providers" table and the caution after it; see docs/architecture.md).
 * Warnings name paths, resources, providers and key names only — never secrets.
 */
import type {EncryptionConfiguration} from './model.js'
import {BUILT_IN_RESOURCES} from '../storage/etcd-key.js'
import {goQuote} from '../gocompat/format.js'
import {formatGroupResource, isWildcard, parseResourceString} from './resource-match.js'
import {BASELINE_VERSION, FEATURE_SINCE, formatTargetVersion, type TargetVersion} from './target-version.js'

/** API groups a kube-apiserver serves itself (plus the removed `extensions`); other groups are custom resources. */
export const BUILT_IN_GROUPS = new Set([
  '',
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'apps',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'coordination.k8s.io',
  'discovery.k8s.io',
  'events.k8s.io',
  'extensions',
  'flowcontrol.apiserver.k8s.io',
  'internal.apiserver.k8s.io',
  'networking.k8s.io',
  'node.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'resource.k8s.io',
  'scheduling.k8s.io',
  'storage.k8s.io',
  'storagemigration.k8s.io',
])

/** Core-group resources that are stored in etcd (a typo here means nothing gets encrypted). */
export const CORE_RESOURCES = new Set(BUILT_IN_RESOURCES[''])

const ENCRYPTING = ['aescbc', 'aesgcm', 'secretbox', 'kms'] as const

/** Why a resource string matches nothing a cluster can have, or undefined when it may match. */
function unmatchedReason(text: string): string | undefined {
  if (text === '') return 'the empty string matches no resource'
  const {group, resource} = parseResourceString(text)
  if (group === '' && resource !== '*' && !CORE_RESOURCES.has(resource)) {
    return `the core group has no stored resource ${goQuote(resource)} (resources are lowercase plurals, e.g. "secrets")`
  }
  if (group !== '' && group !== '*' && !group.includes('.') && !BUILT_IN_GROUPS.has(group)) {
    return `there is no API group ${goQuote(group)} (built-in groups without a dot are e.g. "apps", "batch"; custom resource groups contain a dot)`
  }
  if (/\s/.test(text)) return 'resource names cannot contain whitespace'
  return undefined
}

/** Warnings for a configuration that passed validation (docs/kubernetes-behaviour.md §7 step 6 and the seed's cautions). */
export function configWarnings(
  config: EncryptionConfiguration,
  options: {targetVersion?: TargetVersion} = {},
): string[] {
  const target = options.targetVersion ?? BASELINE_VERSION
  const warnings: string[] = []
  const entries = config.resources ?? []
  const exactSeen = new Map<string, number>()
  let rawKeys = false

  entries.forEach((entry, i) => {
    const base = `resources[${i}]`
    const providers = entry.providers ?? []
    ;(entry.resources ?? []).forEach((text, j) => {
      const path = `${base}.resources[${j}]`
      const reason = unmatchedReason(text)
      if (reason)
        warnings.push(
          `${path}: ${goQuote(text)} matches nothing: ${reason}; CRDs created later with that name would match.`,
        )
      const gr = parseResourceString(text)
      const name = formatGroupResource(gr)
      if (!isWildcard(gr)) {
        if (!BUILT_IN_GROUPS.has(gr.group) && target.minor < FEATURE_SINCE.customResources) {
          warnings.push(
            `${path}: ${goQuote(text)} looks like a custom resource; custom resources can be encrypted from Kubernetes 1.26 (target ${formatTargetVersion(target)}), so it stays unencrypted.`,
          )
        }
        const earlier = exactSeen.get(name)
        if (earlier !== undefined && earlier !== i) {
          warnings.push(
            `${path}: ${goQuote(name)} also appears in resources[${earlier}]; the provider lists are concatenated in file order, so resources[${earlier}]'s first provider writes.`,
          )
        }
        if (earlier === undefined) exactSeen.set(name, i)
        // A later wildcard that covers this resource never applies to it (docs/kubernetes-behaviour.md §8.3: no fallthrough).
        entries.slice(i + 1).forEach((later, offset) => {
          for (const w of later.resources ?? []) {
            const wgr = parseResourceString(w)
            if (isWildcard(wgr) && (wgr.group === '*' || wgr.group === gr.group)) {
              warnings.push(
                `${path}: ${goQuote(name)} has its own entry, so the providers of the later wildcard ${goQuote(formatGroupResource(wgr))} in resources[${i + 1 + offset}] never apply to it.`,
              )
            }
          }
        })
      }
    })

    const covered = (entry.resources ?? []).map((r) => goQuote(r)).join(', ')
    const first = providers[0]
    if (first?.identity) {
      if (providers.some((p) => ENCRYPTING.some((t) => p[t]))) {
        warnings.push(
          `${base}.providers[0]: identity is first, so new writes of ${covered} are NOT encrypted; the providers after it are used only to read.`,
        )
      } else {
        warnings.push(`${base}.providers: identity only: ${covered} are stored unencrypted.`)
      }
    }

    providers.forEach((p, j) => {
      const path = `${base}.providers[${j}]`
      if (p.aescbc) {
        warnings.push(
          `${path}.aescbc: aescbc is weak (no integrity, CBC padding oracles); prefer secretbox, aesgcm with automated rotation, or kms v2.`,
        )
      }
      if (p.aesgcm) {
        warnings.push(
          `${path}.aesgcm: aesgcm keys must be rotated before about 200,000 writes (random 96-bit nonces); use it only with automated key rotation.`,
        )
      }
      if (p.kms?.apiVersion === 'v1' && target.minor >= FEATURE_SINCE.kmsV1Deprecated) {
        warnings.push(
          `${path}.kms: KMS v1 is deprecated since Kubernetes 1.28 and off by default from 1.29; migrate to apiVersion v2.`,
        )
      }
      for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const) {
        const keys = p[type]?.keys ?? []
        if (keys.length > 0) rawKeys = true
        const names = new Set<string>()
        keys.forEach((k, n) => {
          if (names.has(k.name)) {
            warnings.push(
              `${path}.${type}.keys[${n}].name: duplicate key name ${goQuote(k.name)}; reads try both in order and the apiserver writes with the first key of the first provider only.`,
            )
          }
          names.add(k.name)
          if (k.name.includes(':')) {
            warnings.push(
              `${path}.${type}.keys[${n}].name: key name ${goQuote(k.name)} contains ':'; stored values are prefixed "<name>:", which makes them ambiguous to tools.`,
            )
          }
        })
      }
    })
    // Same provider type twice in one list sharing a key name: the same prefix, tried in order.
    for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const) {
      const lists = providers.filter((p) => p[type]).map((p) => new Set((p[type]?.keys ?? []).map((k) => k.name)))
      const all = new Map<string, number>()
      for (const set of lists) for (const name of set) all.set(name, (all.get(name) ?? 0) + 1)
      for (const [name, count] of all) {
        if (count > 1)
          warnings.push(
            `${base}.providers: key name ${goQuote(name)} is used by ${count} ${type} providers in this list; they share the prefix and are tried in order.`,
          )
      }
    }
  })

  if (rawKeys) {
    warnings.push(
      'keys are stored in this file on every control-plane host: this protects against an etcd compromise but not a host compromise; the kms provider is stronger.',
    )
  }
  return warnings
}
