/**
 * `inspect`: what one raw etcd value is and what the apiserver would make of it (docs/kubernetes-behaviour.md §14.1, §14.4).
 * Pure: the caller supplies the bytes (from a file, or later from etcd), the etcd key, an optional
 * parsed EncryptionConfiguration and an optional user-supplied KMS DEK or seed.
 */
import type {EncryptionConfiguration, GroupResource} from '../encryption/config/model.js'
import {formatGroupResource} from '../encryption/config/resource-match.js'
import {etcdKeyProblem, groupResourceForKey, normalizeEtcdRoot} from '../encryption/storage/etcd-key.js'
import {decodeGoBase64} from '../encryption/gocompat/base64.js'
import {hexdump} from '../encryption/storage/hexdump.js'
import {DEK_SOURCE_HKDF_SEED} from '../encryption/storage/kms-v2-object.js'
import {viewObject, type ObjectView} from '../encryption/storage/object-view.js'
import {classifyPlaintext, type PlaintextInfo} from '../encryption/storage/plaintext-format.js'
import {startsWith} from '../encryption/storage/prefixes.js'
import {type KmsService, StaticDekKmsService} from '../encryption/transform/providers/kms-service.js'
import {
  EncryptionTransformers,
  type ReadResult,
  ResourceTransformer,
} from '../encryption/transform/resource-transformer.js'
import {isMissingDek, TRANSFORM_MESSAGES, TransformError} from '../encryption/transform/transform-error.js'
import {classifyValue, type ValueClassification} from '../encryption/storage/value-classifier.js'

export interface InspectInput {
  /** The raw etcd value. */
  value: Buffer
  /** Where the value came from, for the report (e.g. `file:/tmp/v.bin`). */
  source: string
  /** The full etcd key (AAD and resource selection); required to decrypt. */
  etcdKey?: string
  /** `--etcd-prefix` of the apiserver. */
  etcdPrefix?: string
  config?: EncryptionConfiguration
  /** The plaintext DEK (KMS v1, v2 AES_GCM_KEY) or seed (KMS v2 HKDF). Never reported. */
  kmsDek?: Buffer
  /** Include the decoded object (user data) in the result. */
  decrypt?: boolean
  hexdump?: boolean
  /**
   * Try every provider and key in `config`, in file order, whatever resource it is configured for
   * (docs/kubernetes-behaviour.md §14.2): for a value whose etcd key or key-to-resource mapping is unknown.
   */
  anyKey?: boolean
  /**
   * The value came from a text dump (`etcdctl get --print-value-only` appends a newline): if the
   * read fails and the value ends in `\n`, try once without it and say so.
   */
  trailingNewlineMayBeArtifact?: boolean
}

export type DecryptionStatus = 'ok' | 'failed' | 'not-attempted'

export interface InspectDecryption {
  status: DecryptionStatus
  /** Why it was not attempted or what the apiserver would answer. */
  error?: string
  /** The configuration rule whose providers were tried (`secrets`, `*.*`); absent when the resource is not covered. */
  rule?: string
  covered?: boolean
  provider?: string
  keyName?: string
  kmsName?: string
  prefix?: string
  /** The apiserver would rewrite this value on the next update (docs/kubernetes-behaviour.md §4.1). */
  stale?: boolean
  plaintextLength?: number
  plaintext?: PlaintextInfo
  /** The value decrypts, but the apiserver would refuse it: `the apiserver would refuse this value: …` (docs/kubernetes-behaviour.md §3.6). */
  warnings?: string[]
}

export interface InspectResult {
  source: string
  etcdKey?: string
  resource?: GroupResource & {namespace?: string; name?: string; known: boolean}
  length: number
  classification: ValueClassification
  decryption: InspectDecryption
  /** Only with `decrypt`: the decoded object, user data included. */
  object?: ObjectView
  /** Only with `hexdump`: `hexdump -C` of the stored value. */
  hexdump?: string
  notes: string[]
}

export function inspectValue(input: InspectInput): InspectResult {
  const result = inspectOnce(input)
  const v = input.value
  if (
    result.decryption.status === 'failed' &&
    input.trailingNewlineMayBeArtifact &&
    v.length > 1 &&
    v[v.length - 1] === 0x0a
  ) {
    const retry = inspectOnce({...input, value: v.subarray(0, v.length - 1)})
    if (retry.decryption.status === 'ok') {
      retry.notes.unshift(
        'dropped the final newline, which `etcdctl get --print-value-only` appends (as stored it does not read); `etcdctl get -w json` avoids this',
      )
      return retry
    }
  }
  return result
}

/** A value file that is `etcdctl get -w json` output, but not of the shape etcdctl prints. */
export class EtcdctlJsonShapeError extends Error {
  override name = 'EtcdctlJsonShapeError'
}

/**
 * `etcdctl get KEY -w json` output: the one key/value pair, decoded; null when it holds none (no
 * such key); undefined when the text is not such a document (a JSON-serialized object has no
 * top-level `header`). Throws EtcdctlJsonShapeError for a document with etcdctl's `header` whose
 * `kvs` is not one pair of Go standard base64 `key` and `value` (etcdctl prints []byte that way),
 * or that holds several pairs (`etcdctl get --prefix`).
 */
export function parseEtcdctlJson(bytes: Buffer): {key: string; value: Buffer; modRevision?: number} | null | undefined {
  if (bytes[0] !== 0x7b) return undefined
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (!isRecord(doc)) return undefined
  if (!isRecord(doc.header)) {
    // A stored object in JSON has kind/apiVersion and never a top-level "kvs": this is a damaged or
    // hand-made etcdctl document, not a plaintext value.
    if ('kvs' in doc && !('kind' in doc) && !('apiVersion' in doc))
      throw new EtcdctlJsonShapeError('it has no etcdctl "header"')
    return undefined
  }
  const {kvs} = doc
  if (kvs === undefined || (Array.isArray(kvs) && kvs.length === 0)) return null
  if (!Array.isArray(kvs)) throw new EtcdctlJsonShapeError('its "kvs" is not a list of key/value pairs')
  if (kvs.length > 1) {
    throw new EtcdctlJsonShapeError(
      `it holds ${kvs.length} key/value pairs (from \`etcdctl get --prefix\`?); inspect reads one value`,
    )
  }
  const kv: unknown = kvs[0]
  if (!isRecord(kv)) throw new EtcdctlJsonShapeError('its "kvs" entry is not a key/value object')
  const key = typeof kv.key === 'string' ? decodeGoBase64(kv.key) : undefined
  if (!key || key.length === 0) throw new EtcdctlJsonShapeError('its "key" is not a non-empty standard base64 string')
  // etcdctl leaves "value" off for an empty value (protobuf JSON omits empty bytes).
  const value =
    kv.value === undefined ? Buffer.alloc(0) : typeof kv.value === 'string' ? decodeGoBase64(kv.value) : undefined
  if (!value) throw new EtcdctlJsonShapeError('its "value" is not a standard base64 string')
  const modRevision =
    typeof kv.mod_revision === 'number'
      ? kv.mod_revision
      : typeof kv.mod_revision === 'string'
        ? Number(kv.mod_revision)
        : undefined
  return {key: key.toString('utf8'), value, modRevision}
}

/**
 * `etcdctl get KEY` in its default (simple) format: the key on its own line, then the value and the
 * newline etcdctl adds. Recognized only when the first line is an object's etcd key under the root,
 * which no stored value starts with (docs/kubernetes-behaviour.md §13.4); undefined otherwise.
 */
export function parseEtcdctlSimple(bytes: Buffer, etcdPrefix?: string): {key: string; value: Buffer} | undefined {
  if (!startsWith(bytes, Buffer.from(normalizeEtcdRoot(etcdPrefix) + '/'))) return undefined
  const newline = bytes.indexOf(0x0a)
  if (newline === -1) return undefined
  const key = bytes.toString('utf8', 0, newline)
  if (etcdKeyProblem(key, {prefix: etcdPrefix})) return undefined
  const end = bytes.length > newline + 1 && bytes[bytes.length - 1] === 0x0a ? bytes.length - 1 : bytes.length
  return {key, value: bytes.subarray(newline + 1, end)}
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

function inspectOnce(input: InspectInput): InspectResult {
  const classification = classifyValue(input.value)
  const notes: string[] = []
  const result: InspectResult = {
    source: input.source,
    etcdKey: input.etcdKey,
    length: input.value.length,
    classification,
    decryption: {status: 'not-attempted'},
    notes,
  }
  if (input.etcdKey !== undefined) {
    const parsed = groupResourceForKey(input.etcdKey, {prefix: input.etcdPrefix})
    const {group, resource, namespace, name, known} = parsed
    result.resource = {group, resource, namespace, name, known}
    if (!known)
      notes.push(
        `the etcd key's resource path is not a known built-in or <group>/<resource> path; matched as ${JSON.stringify(formatGroupResource(parsed))}`,
      )
  }

  const transformer = chooseTransformer(input, classification, notes)
  let plaintext: Buffer | undefined
  if (transformer) {
    try {
      const read: ReadResult = transformer.transformer.read(input.value, input.etcdKey ?? '')
      plaintext = read.plaintext
      result.decryption = {
        status: 'ok',
        rule: transformer.transformer.rule,
        covered: transformer.transformer.covered,
        provider: read.provider,
        keyName: read.keyName,
        kmsName: read.kmsName,
        prefix: read.prefix,
        stale: read.stale,
        plaintextLength: read.plaintext.length,
        plaintext: classifyPlaintext(read.plaintext),
      }
      if (read.warnings?.length) result.decryption.warnings = read.warnings
      if (read.provider === 'kms' && classification.kmsApiVersion === 'v2') {
        notes.push(
          'offline, the KMS plugin\'s current key ID is unknown: "stale" reflects provider order and DEK source type only',
        )
      }
    } catch (error) {
      if (!(error instanceof TransformError)) throw error
      const {rule, covered} = transformer.transformer
      result.decryption = {status: 'failed', error: error.message, rule, covered}
      // A KMS provider without the DEK or seed offline: what the apiserver would answer cannot be told
      // (its KMS plugin would supply them), so the structure is reported and the read is not judged.
      if (error.messages.some(isMissingDek)) {
        const others = error.messages.filter((m) => !isMissingDek(m))
        const why = `${KMS_NEEDS_DEK}${
          others.length > 0 ? `; the other providers that matched failed with: ${others.join(', ')}` : ''
        }`
        result.decryption = {status: 'not-attempted', error: why, rule, covered}
      }
      if (input.kmsDek && classification.provider === 'kms' && error.messages.includes(TRANSFORM_MESSAGES.gcmAuth))
        notes.push(kmsDekNote(classification))
    }
    if (transformer.synthetic) result.decryption.rule = undefined
    if (input.anyKey) {
      // Which key opens it says nothing of the resource's own provider list, which decides staleness.
      delete result.decryption.stale
      result.decryption.covered = undefined
    }
  } else if (!classification.encrypted) {
    plaintext = input.value
    result.decryption = {
      status: 'not-attempted',
      error: input.config
        ? whyNotAttempted(input, classification)
        : 'no --config given; the value is stored unencrypted',
    }
  } else {
    result.decryption = {status: 'not-attempted', error: whyNotAttempted(input, classification)}
  }

  // docs/kubernetes-behaviour.md §13.4 row 11: the transformer may pass such bytes (identity does), but the apiserver's decoder would not.
  const format =
    result.decryption.status === 'ok' ? result.decryption.plaintext?.format : classification.plaintext?.format
  if (format === 'unknown') {
    notes.push(
      'the plaintext is not a serialized Kubernetes object (not protobuf, JSON, CBOR or YAML): the apiserver could not decode it',
    )
  }
  if (input.decrypt) {
    if (plaintext) result.object = viewObject(plaintext)
    else notes.push('--decrypt: no plaintext to show')
  }
  if (input.hexdump) result.hexdump = hexdump(input.value)
  return result
}

function chooseTransformer(
  input: InspectInput,
  c: ValueClassification,
  notes: string[],
): {transformer: ResourceTransformer; synthetic: boolean} | undefined {
  if (input.etcdKey === undefined && !(input.anyKey && input.config)) return undefined
  const kms: Record<string, KmsService> = {}
  if (input.kmsDek) {
    const service = new StaticDekKmsService(input.kmsDek)
    for (const entry of input.config?.resources ?? [])
      for (const p of entry.providers ?? []) if (p.kms?.name) kms[p.kms.name] = service
    if (c.kmsName) kms[c.kmsName] = service
  }
  if (input.config && input.anyKey) {
    notes.push(
      '--any-key: every provider and key in the configuration was tried in file order, whatever resource it is configured for; staleness is not judged',
    )
    if (input.etcdKey === undefined && (c.provider === 'aesgcm' || c.provider === 'kms')) {
      notes.push(
        'without the etcd key, aesgcm and KMS values cannot be authenticated: it is their additional authenticated data',
      )
    }
    return {transformer: ResourceTransformer.everyProvider(input.config, {kms}), synthetic: true}
  }
  if (input.etcdKey === undefined) return undefined
  if (input.config) {
    return {
      transformer: new EncryptionTransformers(input.config, {kms}).forKey(input.etcdKey, {prefix: input.etcdPrefix}),
      synthetic: false,
    }
  }
  // No configuration: a KMS value can still be opened with the user's DEK, by the name it carries.
  if (input.kmsDek && c.provider === 'kms' && c.kmsName !== undefined) {
    notes.push('no configuration given: read with --kms-dek under the KMS name found in the value')
    const spec = {kms: {apiVersion: c.kmsApiVersion, name: c.kmsName, endpoint: 'unix:///offline'}}
    return {transformer: ResourceTransformer.fromProviders([spec], undefined, {kms}), synthetic: true}
  }
  return undefined
}

/** What --kms-dek was taken as, when authentication failed with it (docs/kubernetes-behaviour.md §3.5, §3.6). */
function kmsDekNote(c: ValueClassification): string {
  const wrongOr = 'a wrong one and a wrong etcd key (the authenticated data) fail alike'
  if (c.kmsApiVersion === 'v2' && c.kmsV2?.encryptedDEKSourceType === DEK_SOURCE_HKDF_SEED) {
    return `--kms-dek was used as the seed (source type HKDF_SHA256_XNONCE_AES_GCM_SEED): each value's DEK is HKDF-Expand(SHA-256, seed, info = the first 32 bytes of encryptedData), so give the seed the KMS plugin returns from Decrypt, not a derived DEK; ${wrongOr}`
  }
  return `--kms-dek was used as the DEK the KMS plugin returns from Decrypt; ${wrongOr}`
}

const KMS_NEEDS_DEK =
  'a KMS value opens only with the plaintext DEK or seed the KMS plugin returns: pass --kms-dek FILE'

function whyNotAttempted(input: InspectInput, c: ValueClassification): string {
  if (input.etcdKey === undefined)
    return 'no --etcd-key given: it selects the providers and is the AAD of aesgcm and KMS values'
  if (c.provider === 'kms') return KMS_NEEDS_DEK
  return 'no --config given'
}
