/**
 * The scan engine behind `status --scan`: streams every etcd value once, reads it as the apiserver
 * would with the given configuration (docs/kubernetes-behaviour.md §14.1), and counts per resource how values are stored
 * (`provider:key`), which are plaintext, stale (rewritten on next update, docs/kubernetes-behaviour.md §4.1), undecryptable
 * (with the apiserver's error texts), or orphans (namespaced objects whose namespace is gone).
 *
 * Memory is bounded: values are dropped after classification; per resource only counters, a capped
 * map of distinct error texts and a few sample keys are kept.
 */
import type {EncryptionConfiguration} from '../../encryption/config/model.js'
import {groupResourceForKey} from '../../encryption/storage/etcd-key.js'
import type {KmsService} from '../../encryption/transform/providers/kms-service.js'
import {EncryptionTransformers, type ResourceTransformer} from '../../encryption/transform/resource-transformer.js'
import {formatGroupResource} from '../../encryption/config/resource-match.js'
import {isMissingDek, TransformError} from '../../encryption/transform/transform-error.js'
import {classifyValue} from '../../encryption/storage/value-classifier.js'
import {MemoryReleaser} from './release-memory.js'

/** One stored key/value, as an EtcdReader's `range()` pages deliver them. */
export interface ScanEntry {
  key: string
  value: Buffer
  modRevision: number
}

export interface ScanInput {
  /** Pages of key/values in key order, e.g. `reader.range('/registry/')`. */
  pages: AsyncIterable<readonly ScanEntry[]>
  /** The configuration the apiservers run; undefined when encryption is not configured. */
  config?: EncryptionConfiguration
  /** Names of the namespaces that exist; without it orphans are not counted. */
  namespaces?: ReadonlySet<string>
  /** `--etcd-prefix`; default `/registry`. */
  etcdPrefix?: string
  /** KMS services by provider name (offline: none, KMS values are reported as not verified). */
  kms?: Record<string, KmsService>
  /**
   * Per KMS v2 provider name, the `sha256:` hash of the key ID the apiservers report as current:
   * a value under another key ID is stale. Unknown providers: key IDs are counted, not judged.
   */
  kmsCurrentKeyIdHashes?: Record<string, string>
  /** Sample keys kept per category and resource (default 5). */
  sampleLimit?: number
  /** Called after each page. */
  onProgress?: (event: ScanProgress) => void
  /** Stops the scan between pages. */
  signal?: AbortSignal
  /**
   * Called for each value nothing in the configuration can read, with its raw bytes (recover keeps
   * them for its backup; the counters alone would lose which objects they were).
   */
  onUndecryptable?: (value: UndecryptableValue) => void
}

export interface UndecryptableValue {
  key: string
  value: Buffer
  modRevision: number
  /** As in configuration files: `secrets`, `deployments.apps`. */
  resource: string
  group: string
  namespace?: string
  name: string
  /** How it is stored: `aescbc:key1`, `identity`, `kms:<name>`. */
  storedAs: string
  /** The apiserver's error text for it. */
  error: string
}

export interface ScanProgress {
  scanned: number
  bytes: number
  lastKey: string
}

export type SampleCategory = 'plaintext' | 'stale' | 'undecryptable' | 'unverified' | 'orphans'

export interface ResourceScan {
  /** As in configuration files and messages: `secrets`, `deployments.apps`. */
  resource: string
  group: string
  /** Values counted per `provider:key` (`identity` for plaintext, `kms:<name>`). */
  byProvider: Record<string, number>
  total: number
  bytes: number
  /** Stored unencrypted. */
  plaintext: number
  /** Read with a provider or key that is no longer first: the next update rewrites it (docs/kubernetes-behaviour.md §4.1). */
  stale: number
  /** Nothing in the configuration can read it (the apiserver answers 500 for it). */
  undecryptable: number
  /** KMS values whose DEK is not available offline: structure parsed, decryption not verified. */
  unverified: number
  /** Namespaced objects whose namespace no longer exists. */
  orphans: number
  /** KMS v2 values per provider and key ID, read from the EncryptedObject (never the DEK). */
  kmsKeys?: KmsKeyCount[]
  /** The apiserver's error texts for the undecryptable values, with counts. */
  errors: Record<string, number>
  /** The undecryptable values per how they are stored (`provider:key`, `identity`, `kms:<name>`). */
  undecryptableAs: Record<string, number>
  /** How new writes are stored (`provider:key`), from the configuration; absent without one. */
  writes?: string
  /** The configuration rule that applies (`secrets`, `*.*`); absent when not covered. */
  rule?: string
  samples: Partial<Record<SampleCategory, string[]>>
}

export interface KmsKeyCount {
  provider: string
  /** Key IDs are not secret (the plugin's name for its KEK); shown as stored. */
  keyId: string
  /** `sha256:` of the key ID, as the apiserver's metrics label it. */
  keyIdHash: string
  count: number
  /** The apiservers report this key ID as current; undefined when that is not known. */
  current?: boolean
}

export interface ScanResult {
  keys: number
  bytes: number
  /** Keys that are not API objects (outside the prefix, allocator ranges, compact_rev_key). */
  skipped: number
  /** Stale/undecryptable are meaningful only with a configuration. */
  configured: boolean
  orphansCounted: boolean
  resources: ResourceScan[]
  totals: Pick<ResourceScan, 'total' | 'plaintext' | 'stale' | 'undecryptable' | 'unverified' | 'orphans'>
}

const MAX_DISTINCT_ERRORS = 20
const OTHER_ERRORS = '(other errors)'
const NON_OBJECT_RESOURCES = new Set(['', 'serviceipallocations', 'servicenodeportallocations', 'masterleases'])

export async function scanValues(input: ScanInput): Promise<ScanResult> {
  // 'strict': the scan counts what the apiserver can read, and a KMS v2 value whose annotations it
  // refuses (docs/kubernetes-behaviour.md §3.6) is undecryptable for it, with its text; `inspect` decrypts such a value and warns.
  const transformers = input.config
    ? new EncryptionTransformers(input.config, {kms: input.kms, envelopeValidation: 'strict'})
    : undefined
  const sampleLimit = input.sampleLimit ?? 5
  const byResource = new Map<string, {scan: ResourceScan; transformer?: ResourceTransformer}>()
  const result: ScanResult = {
    keys: 0,
    bytes: 0,
    skipped: 0,
    configured: Boolean(input.config),
    orphansCounted: Boolean(input.namespaces),
    resources: [],
    totals: {total: 0, plaintext: 0, stale: 0, undecryptable: 0, unverified: 0, orphans: 0},
  }

  const sample = (scan: ResourceScan, category: SampleCategory, key: string) => {
    const list = (scan.samples[category] ??= [])
    if (list.length < sampleLimit) list.push(key)
  }

  const memory = new MemoryReleaser()
  for await (const page of input.pages) {
    if (input.signal?.aborted) throw input.signal.reason ?? new Error('scan aborted')
    let lastKey = ''
    for (const {key, value, modRevision} of page) {
      lastKey = key
      result.keys++
      result.bytes += value.length
      const parsed = groupResourceForKey(key, {prefix: input.etcdPrefix})
      if (NON_OBJECT_RESOURCES.has(parsed.resource) || parsed.name === undefined) {
        result.skipped++
        continue
      }
      const id = formatGroupResource(parsed)
      let slot = byResource.get(id)
      if (!slot) {
        const transformer = transformers?.forResource(parsed)
        const scan: ResourceScan = {
          resource: id,
          group: parsed.group,
          byProvider: {},
          total: 0,
          bytes: 0,
          plaintext: 0,
          stale: 0,
          undecryptable: 0,
          unverified: 0,
          orphans: 0,
          errors: {},
          undecryptableAs: {},
          samples: {},
        }
        if (transformer) {
          const w = transformer.writeProvider
          scan.writes = label(w.provider, w.keyName, w.kmsName)
          scan.rule = transformer.rule
        }
        slot = {scan, transformer}
        byResource.set(id, slot)
      }
      const {scan, transformer} = slot
      scan.total++
      scan.bytes += value.length
      if (input.namespaces && parsed.namespace !== undefined && !input.namespaces.has(parsed.namespace)) {
        scan.orphans++
        sample(scan, 'orphans', key)
      }

      if (!transformer) {
        const c = classifyValue(value)
        increment(scan.byProvider, label(c.provider, c.keyName, c.kmsName))
        if (!c.encrypted) {
          scan.plaintext++
          sample(scan, 'plaintext', key)
        }
        continue
      }
      try {
        const read = transformer.read(value, key)
        increment(scan.byProvider, label(read.provider, read.keyName, read.kmsName))
        if (read.provider === 'identity') {
          scan.plaintext++
          sample(scan, 'plaintext', key)
        }
        if (read.stale) {
          scan.stale++
          sample(scan, 'stale', key)
        }
      } catch (error) {
        if (!(error instanceof TransformError)) throw error
        if (error.messages.some(isMissingDek)) {
          // A KMS provider of the configuration matched but its DEK is not available offline: the
          // envelope parsed and validated; whether it decrypts is not verified.
          scan.unverified++
          const c = classifyValue(value)
          increment(scan.byProvider, label('kms', undefined, c.kmsName))
          sample(scan, 'unverified', key)
          if (c.kmsApiVersion === 'v2' && c.kmsName !== undefined && c.kmsV2?.keyID !== undefined) {
            const current = input.kmsCurrentKeyIdHashes?.[c.kmsName]
            const isCurrent = current === undefined ? undefined : current === c.kmsV2.keyIDHash
            countKmsKey(scan, c.kmsName, c.kmsV2.keyID, c.kmsV2.keyIDHash ?? '', isCurrent)
            // Stale: not the write provider, or not the key ID every apiserver reports now.
            if (scan.writes !== `kms:${c.kmsName}` || isCurrent === false) {
              scan.stale++
              sample(scan, 'stale', key)
            }
          }
        } else {
          countError(scan, error.message)
          const c = classifyValue(value)
          const storedAs = label(c.provider, c.keyName, c.kmsName)
          increment(scan.undecryptableAs, storedAs)
          sample(scan, 'undecryptable', key)
          input.onUndecryptable?.({
            key,
            value,
            modRevision,
            resource: id,
            group: parsed.group,
            namespace: parsed.namespace,
            name: parsed.name,
            storedAs,
            error: error.message,
          })
        }
      }
    }
    input.onProgress?.({scanned: result.keys, bytes: result.bytes, lastKey})
    memory.pageDone()
  }

  result.resources = [...byResource.values()].map((s) => s.scan).sort((a, b) => a.resource.localeCompare(b.resource))
  for (const r of result.resources) {
    for (const k of ['total', 'plaintext', 'stale', 'undecryptable', 'unverified', 'orphans'] as const)
      result.totals[k] += r[k]
  }
  return result
}

const MAX_KMS_KEYS = 100

function countKmsKey(
  scan: ResourceScan,
  provider: string,
  keyId: string,
  keyIdHash: string,
  current: boolean | undefined,
): void {
  const list = (scan.kmsKeys ??= [])
  const found = list.find((k) => k.provider === provider && k.keyIdHash === keyIdHash)
  if (found) found.count++
  // Key IDs are chosen by the plugin; a bounded list keeps memory flat if one mints many.
  else if (list.length < MAX_KMS_KEYS)
    list.push({provider, keyId, keyIdHash, count: 1, ...(current === undefined ? {} : {current})})
}

function countError(scan: ResourceScan, message: string): void {
  scan.undecryptable++
  const key = message in scan.errors || Object.keys(scan.errors).length < MAX_DISTINCT_ERRORS ? message : OTHER_ERRORS
  increment(scan.errors, key)
}

function increment(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1
}

/** `aescbc:key1`, `kms:name`, `identity`, `unknown-encrypted`. */
function label(provider: string, keyName?: string, kmsName?: string): string {
  if (kmsName !== undefined) return `${provider}:${kmsName}`
  if (keyName !== undefined) return `${provider}:${keyName}`
  return provider
}
