/**
 * The apiserver's validation of an EncryptionConfiguration (docs/kubernetes-behaviour.md §6, in the order of §7 step 4),
 * then the checks it makes while building transformers (§6.6), then this plugin's release gates
 * for a chosen target version (§15). Errors carry the apiserver's texts; key secrets never appear.
 */
import type {EncryptionConfiguration, KeyedProviderSpec, KmsProviderSpec, ProviderSpec} from './model.js'
import {
  type ConfigError,
  dedupeErrors,
  invalidError,
  REDACTED,
  requiredError,
  stageError,
  unsupportedError,
} from './errors.js'
import {keysWereNull} from './decode.js'
import {decodeGoBase64} from '../gocompat/base64.js'
import {formatGoDuration, goQuote, parseGoDuration} from '../gocompat/format.js'
import {parseGoUrl} from '../gocompat/url.js'
import {formatGroupResource, isWildcard, parseResourceString} from './resource-match.js'
import {BASELINE_VERSION, FEATURE_SINCE, formatTargetVersion, type TargetVersion} from './target-version.js'

export interface ValidateOptions {
  /** Release whose behaviour to reproduce (docs/kubernetes-behaviour.md §15); default the spec's baseline, 1.36. */
  targetVersion?: TargetVersion
  /** `--encryption-provider-config-automatic-reload` (docs/kubernetes-behaviour.md §9): KMS v1 names must then be unique too. */
  automaticReload?: boolean
  /** `--feature-gates` of the apiserver, e.g. {KMSv1: true}. */
  featureGates?: Record<string, boolean>
}

/** Allowed decoded key lengths (docs/kubernetes-behaviour.md §6.4). */
export const KEY_LENGTHS = {aescbc: [16, 24, 32], aesgcm: [16, 24, 32], secretbox: [32]} as const

const NON_REST = new Set(['apiserveripinfo', 'serviceipallocations', 'servicenodeportallocations'])

/** The provider types in the order the apiserver names and checks them (docs/kubernetes-behaviour.md §6.3 step 5). */
const TYPE_ORDER = ['kms', 'aesgcm', 'aescbc', 'secretbox'] as const

/** Provider fields that are set (`identity:` with a null value is not set, docs/kubernetes-behaviour.md §5.3). */
export function providerTypes(provider: ProviderSpec): Array<keyof ProviderSpec> {
  return (['aesgcm', 'aescbc', 'secretbox', 'identity', 'kms'] as const).filter(
    (t) => provider[t] !== undefined && provider[t] !== null,
  )
}

/**
 * The provider as the apiserver echoes it in "no provider" / "more than one provider" errors: the JSON
 * of its internal struct with Go field names (docs/kubernetes-behaviour.md §6.1). The apiserver prints the key secrets there;
 * we print "REDACTED" (docs/kubernetes-behaviour.md §14.6).
 */
export function providerEcho(provider: ProviderSpec): unknown {
  const keyed = (p: KeyedProviderSpec | undefined) =>
    p ? {Keys: keysWereNull(p) || !p.keys ? null : p.keys.map((k) => ({Name: k.name ?? '', Secret: REDACTED}))} : null
  const kms = provider.kms
  const timeout = kms?.timeout === undefined ? null : durationText(kms.timeout)
  return {
    AESGCM: keyed(provider.aesgcm),
    AESCBC: keyed(provider.aescbc),
    Secretbox: keyed(provider.secretbox),
    Identity: provider.identity ? {} : null,
    KMS: kms
      ? {
          APIVersion: kms.apiVersion ?? '',
          Name: kms.name ?? '',
          CacheSize: kms.cachesize ?? null,
          Endpoint: kms.endpoint ?? '',
          Timeout: timeout,
        }
      : null,
  }
}

function durationText(text: string): string {
  const parsed = parseGoDuration(text)
  return 'nanos' in parsed ? formatGoDuration(parsed.nanos) : text
}

/** Duplicate and overlap checks within one resource list (docs/kubernetes-behaviour.md §6.3 step 2), pairwise as the apiserver walks them. */
function resourceListErrors(list: string[], path: string): ConfigError[] {
  if (list.length < 2) return []
  const parsed = list.map(parseResourceString)
  let duplicate = false
  let overlap = false
  for (const [i, r1] of parsed.entries()) {
    for (const [j, r2] of parsed.entries()) {
      if (i === j) continue
      const same = r1.group === r2.group && r1.resource === r2.resource
      if (same && !duplicate) {
        duplicate = true
        continue
      }
      if (overlap) continue
      if (r1.group === '*' && r1.resource === '*') overlap = true
      else if (r1.group === r2.group && (r1.resource === '*' || r2.resource === '*')) overlap = true
    }
  }
  const errors: ConfigError[] = []
  if (duplicate) errors.push(invalidError(path, list, 'the same resource cannot be specified multiple times'))
  if (overlap) {
    errors.push(
      invalidError(
        path,
        list,
        "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked",
      ),
    )
  }
  return errors
}

/** Rules a–f for one resource string; the first that matches reports (docs/kubernetes-behaviour.md §6.3 step 3). */
function resourceStringError(text: string, path: string): ConfigError | undefined {
  const {group, resource} = parseResourceString(text)
  if (text !== text.toLowerCase()) return invalidError(path, text, 'resource name should not contain capital letters')
  if (text === '*')
    return invalidError(
      path,
      text,
      "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources",
    )
  if (NON_REST.has(text)) return invalidError(path, text, 'resources which do not have REST API/s cannot be encrypted')
  if (group === 'events.k8s.io') {
    return invalidError(
      path,
      text,
      "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file",
    )
  }
  if (group === 'extensions')
    return invalidError(path, text, "'extensions' group has been removed and cannot be used for encryption")
  if (group === '*' && resource !== '*')
    return invalidError(path, text, 'encrypting the same resource across groups is not supported')
  return undefined
}

function keyErrors(provider: KeyedProviderSpec, path: string, lengths: readonly number[]): ConfigError[] {
  const keys = provider.keys ?? []
  if (keys.length === 0) return [requiredError(`${path}.keys`, 'at least one keys is required')]
  const errors: ConfigError[] = []
  keys.forEach((key, k) => {
    const keyPath = `${path}.keys[${k}]`
    if (!key.name) errors.push(requiredError(`${keyPath}.name`, 'name is a mandatory field for a key'))
    if (!key.secret) {
      errors.push(requiredError(`${keyPath}.secret`, 'secret is a mandatory field for a key'))
      return
    }
    const bytes = decodeGoBase64(key.secret)
    if (bytes === undefined) {
      errors.push(invalidError(`${keyPath}.secret`, REDACTED, 'secrets must be base64 encoded'))
    } else if (!lengths.includes(bytes.length)) {
      errors.push(
        invalidError(
          `${keyPath}.secret`,
          REDACTED,
          `secret is not of the expected length, got ${bytes.length}, expected one of [${lengths.join(' ')}]`,
        ),
      )
    }
  })
  return errors
}

/**
 * The KMS checks (docs/kubernetes-behaviour.md §6.5), all accumulating. `seen` is null where the target release does not
 * enforce unique names (before 1.26, docs/kubernetes-behaviour.md §15). An empty name is in `seen` like any other, so a
 * second nameless v2 provider is also a duplicate (of "").
 */
function kmsErrors(kms: KmsProviderSpec, path: string, seen: Set<string> | null, reload: boolean): ConfigError[] {
  const errors: ConfigError[] = []
  const apiVersion = kms.apiVersion ?? ''
  const name = kms.name ?? ''
  if (name === '') errors.push(requiredError(`${path}.name`, 'name is a mandatory field for a provider'))
  if (apiVersion !== 'v1' && name.includes(':')) {
    errors.push(invalidError(`${path}.name`, name, `invalid KMS provider name ${name}, must not contain ':'`))
  }
  if ((apiVersion !== 'v1' || reload) && seen?.has(name)) {
    errors.push(invalidError(`${path}.name`, name, `duplicate KMS provider name ${name}, names must be unique`))
  }
  if (kms.timeout !== undefined) {
    const parsed = parseGoDuration(kms.timeout)
    if ('error' in parsed) errors.push(invalidError(`${path}.timeout`, kms.timeout, parsed.error))
    else if (parsed.nanos <= 0n)
      errors.push(invalidError(`${path}.timeout`, formatGoDuration(parsed.nanos), 'timeout should be a positive value'))
  }
  const endpoint = kms.endpoint ?? ''
  if (endpoint === '') {
    errors.push(invalidError(`${path}.endpoint`, '', 'endpoint is a mandatory field for a kms'))
  } else {
    const parsed = parseGoUrl(endpoint)
    if ('error' in parsed)
      errors.push(
        invalidError(`${path}.endpoint`, endpoint, `invalid endpoint for kms provider, error: ${parsed.error}`),
      )
    else if (parsed.scheme !== 'unix') {
      errors.push(
        invalidError(
          `${path}.endpoint`,
          endpoint,
          `unsupported scheme ${goQuote(parsed.scheme)} for KMS provider, only unix is supported`,
        ),
      )
    }
  }
  if (kms.cachesize !== undefined && kms.cachesize !== null) {
    if (apiVersion !== 'v1')
      errors.push(invalidError(`${path}.cachesize`, kms.cachesize, 'cachesize is not supported in v2'))
    else if (kms.cachesize === 0) {
      errors.push(
        invalidError(
          `${path}.cachesize`,
          kms.cachesize,
          'cachesize should be a positive value, or negative to disable',
        ),
      )
    }
  }
  if (apiVersion !== 'v1' && apiVersion !== 'v2') {
    errors.push(
      invalidError(
        `${path}.apiVersion`,
        apiVersion,
        'unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported',
      ),
    )
  }
  return errors
}

/**
 * Spec §6 in the order of §7 step 4: every rule runs, errors accumulate, then de-duplicate. Rules a
 * release did not have yet are left out for that target (docs/kubernetes-behaviour.md §15): the resource-list and
 * resource-string rules (§6.3 steps 2–3) came with wildcards in 1.27, unique KMS names in 1.26.
 */
export function validationErrors(config: EncryptionConfiguration, options: ValidateOptions = {}): ConfigError[] {
  const reload = options.automaticReload ?? false
  const minor = (options.targetVersion ?? BASELINE_VERSION).minor
  const resourceRules = minor >= FEATURE_SINCE.wildcards
  const uniqueKmsNames = minor >= FEATURE_SINCE.kmsUniqueNames
  const errors: ConfigError[] = []
  const entries = config.resources ?? []
  if (entries.length === 0) errors.push(requiredError('resources', 'at least one resources is required'))
  const kmsNames = new Set<string>()
  entries.forEach((entry, i) => {
    const base = `resources[${i}]`
    const list = entry.resources ?? []
    if (list.length === 0) errors.push(requiredError(`${base}.resources`, `at least one ${base}.resources is required`))
    if (resourceRules) {
      errors.push(...resourceListErrors(list, `${base}.resources`))
      list.forEach((text, j) => {
        const error = resourceStringError(text, `${base}.resources[${j}]`)
        if (error) errors.push(error)
      })
    }
    const providers = entry.providers ?? []
    if (providers.length === 0)
      errors.push(requiredError(`${base}.providers`, `at least one ${base}.providers is required`))
    providers.forEach((provider, j) => {
      const path = `${base}.providers[${j}]`
      const types = providerTypes(provider ?? {})
      if (types.length === 0) {
        errors.push(
          invalidError(
            path,
            providerEcho(provider ?? {}),
            'provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity',
          ),
        )
      } else if (types.length > 1) {
        errors.push(
          invalidError(
            path,
            providerEcho(provider),
            'more than one provider specified in a single element, should split into different list elements',
          ),
        )
      }
      const first = TYPE_ORDER.find((t) => provider?.[t])
      if (first === 'kms' && provider.kms) {
        errors.push(...kmsErrors(provider.kms, `${path}.kms`, uniqueKmsNames ? kmsNames : null, reload))
        kmsNames.add(provider.kms.name ?? '')
      } else if (first && first !== 'kms') {
        errors.push(...keyErrors(provider[first] as KeyedProviderSpec, `${path}.${first}`, KEY_LENGTHS[first]))
      }
    })
  })
  return dedupeErrors(errors)
}

const KMSV1_GATE_ERROR =
  'KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature.'

/** Whether a feature gate is on for the target (explicit --feature-gates win over the release default). */
export function gateEnabled(name: 'KMSv1' | 'KMSv2', options: ValidateOptions): boolean {
  const minor = (options.targetVersion ?? BASELINE_VERSION).minor
  if (name === 'KMSv2' && minor >= FEATURE_SINCE.kmsV2GateRemoved) return true
  const explicit = options.featureGates?.[name]
  if (explicit !== undefined) return explicit
  return name === 'KMSv1' ? minor < FEATURE_SINCE.kmsV1Off : minor >= FEATURE_SINCE.kmsV2Default
}

/**
 * The checks made while building transformers (docs/kubernetes-behaviour.md §6.6), entry by entry in file order, stopping at
 * the first: the KMSv1 gate for each provider of the entry, then wildcard masking of its resources
 * (from 1.27, with wildcards, docs/kubernetes-behaviour.md §15).
 */
export function buildErrors(config: EncryptionConfiguration, options: ValidateOptions = {}): ConfigError[] {
  const registered = new Set<string>()
  const key = (group: string, resource: string) => `${group}\u0000${resource}`
  const kmsV1 = gateEnabled('KMSv1', options)
  const masking = (options.targetVersion ?? BASELINE_VERSION).minor >= FEATURE_SINCE.wildcards
  for (const entry of config.resources ?? []) {
    for (const provider of entry.providers ?? []) {
      if (provider.kms && provider.kms.apiVersion === 'v1' && !kmsV1) return [stageError('Build', KMSV1_GATE_ERROR)]
    }
    for (const text of masking ? (entry.resources ?? []) : []) {
      const gr = parseResourceString(text)
      for (const wildcard of [
        {group: gr.group, resource: '*'},
        {group: '*', resource: '*'},
      ]) {
        if (registered.has(key(wildcard.group, wildcard.resource))) {
          return [
            stageError(
              'Build',
              `resource ${goQuote(formatGroupResource(gr))} is masked by earlier rule ${goQuote(formatGroupResource(wildcard))}`,
            ),
          ]
        }
      }
      registered.add(key(gr.group, gr.resource))
    }
  }
  return []
}

/**
 * Features the target release does not have (docs/kubernetes-behaviour.md §15). The apiserver of that release would refuse
 * these or silently not apply them; both are a failed check for the operator.
 */
export function releaseGateErrors(config: EncryptionConfiguration, options: ValidateOptions): ConfigError[] {
  const target = options.targetVersion ?? BASELINE_VERSION
  const at = `Kubernetes ${formatTargetVersion(target)}`
  const errors: ConfigError[] = []
  if (options.automaticReload && target.minor < FEATURE_SINCE.automaticReload) {
    errors.push(
      unsupportedError(
        '',
        `--encryption-provider-config-automatic-reload needs Kubernetes 1.${FEATURE_SINCE.automaticReload} or newer (target: ${at})`,
      ),
    )
  }
  ;(config.resources ?? []).forEach((entry, i) => {
    ;(entry.resources ?? []).forEach((text, j) => {
      if (isWildcard(parseResourceString(text)) && target.minor < FEATURE_SINCE.wildcards) {
        const path = `resources[${i}].resources[${j}]`
        errors.push(
          unsupportedError(
            path,
            `wildcard ${goQuote(text)} needs Kubernetes 1.${FEATURE_SINCE.wildcards} or newer; ${at} treats it as a resource named "*" and encrypts nothing with it`,
          ),
        )
      }
    })
    ;(entry.providers ?? []).forEach((provider, j) => {
      if (provider.kms?.apiVersion !== 'v2') return
      const path = `resources[${i}].providers[${j}].kms.apiVersion`
      if (target.minor < FEATURE_SINCE.kmsV2) {
        errors.push(unsupportedError(path, `KMS v2 needs Kubernetes 1.${FEATURE_SINCE.kmsV2} or newer (target: ${at})`))
      } else if (!gateEnabled('KMSv2', options)) {
        errors.push(
          unsupportedError(
            path,
            target.minor < FEATURE_SINCE.kmsV2Default
              ? `KMS v2 is alpha in ${at} and needs --feature-gates=KMSv2=true (on by default from 1.${FEATURE_SINCE.kmsV2Default})`
              : `KMS v2 is turned off by --feature-gates KMSv2=false (target: ${at})`,
          ),
        )
      }
    })
  })
  return errors
}
