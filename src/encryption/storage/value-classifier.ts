/**
 * Classifies any raw etcd value without a configuration (docs/kubernetes-behaviour.md §13.4): which provider wrote it, the
 * key or KMS name, the KMS envelope's structure, or the plaintext format. Key names are a heuristic
 * (names may contain `:`, docs/kubernetes-behaviour.md §2.5); the decryptor matches configured names exactly instead.
 */
import {sha256Label} from '../fingerprint.js'
import {DEK_SOURCE_TYPE_NAMES, parseEncryptedObject, validateEncryptedObject} from './kms-v2-object.js'
import {classifyPlaintext, type PlaintextInfo} from './plaintext-format.js'
import {ENCRYPTED_MARKER as ENC, PROVIDER_PREFIXES, startsWith} from './prefixes.js'

export type ValueProvider = 'identity' | 'aescbc' | 'aesgcm' | 'secretbox' | 'kms' | 'unknown-encrypted'

export interface KmsV2Structure {
  keyID?: string
  /** `sha256:` of the key ID, as in the `key_id_hash` metric label. */
  keyIDHash?: string
  /** Annotation values as base64 (plugin metadata, not secret). */
  annotations?: Record<string, string>
  encryptedDEKSourceType?: number
  encryptedDEKSourceTypeName?: string
  encryptedDEKSourceLength?: number
  encryptedDataLength?: number
  /** The apiserver's parse or validation error, when the envelope would be refused. */
  error?: string
}

export interface KmsV1Structure {
  encryptedDEKLength?: number
  payloadLength?: number
  error?: string
}

export interface ValueClassification {
  encrypted: boolean
  provider: ValueProvider
  /** Total stored length in bytes. */
  length: number
  /** `k8s:enc:<provider>:v1:<key>:` as far as it could be told apart. */
  prefix?: string
  /** aescbc/aesgcm/secretbox: the text up to the next `:` (heuristic, docs/kubernetes-behaviour.md §2.5). */
  keyName?: string
  kmsApiVersion?: 'v1' | 'v2'
  kmsName?: string
  kmsV2?: KmsV2Structure
  kmsV1?: KmsV1Structure
  /** For plaintext values. */
  plaintext?: PlaintextInfo
}

const KEYED: Array<[Buffer, 'aescbc' | 'aesgcm' | 'secretbox']> = [
  [Buffer.from(PROVIDER_PREFIXES.aescbc), 'aescbc'],
  [Buffer.from(PROVIDER_PREFIXES.aesgcm), 'aesgcm'],
  [Buffer.from(PROVIDER_PREFIXES.secretbox), 'secretbox'],
]
const KMS_V2 = Buffer.from(PROVIDER_PREFIXES.kmsV2)
const KMS_V1 = Buffer.from(PROVIDER_PREFIXES.kmsV1)
const COLON = 0x3a

export function classifyValue(value: Buffer): ValueClassification {
  const length = value.length
  for (const [prefix, provider] of KEYED) {
    if (!startsWith(value, prefix)) continue
    const end = value.indexOf(COLON, prefix.length)
    if (end === -1) return {encrypted: true, provider, length, prefix: prefix.toString()}
    const keyName = value.toString('utf8', prefix.length, end)
    return {encrypted: true, provider, length, keyName, prefix: `${prefix}${keyName}:`}
  }
  if (startsWith(value, KMS_V2)) {
    const end = value.indexOf(COLON, KMS_V2.length)
    if (end === -1)
      return {encrypted: true, provider: 'kms', kmsApiVersion: 'v2', length, kmsV2: {error: 'no KMS name'}}
    const kmsName = value.toString('utf8', KMS_V2.length, end)
    return {
      encrypted: true,
      provider: 'kms',
      kmsApiVersion: 'v2',
      kmsName,
      length,
      prefix: `${KMS_V2}${kmsName}:`,
      kmsV2: describeKmsV2(value.subarray(end + 1)),
    }
  }
  if (startsWith(value, KMS_V1)) return classifyKmsV1(value)
  if (startsWith(value, ENC)) {
    const end = value.indexOf(COLON, ENC.length + 1)
    return {
      encrypted: true,
      provider: 'unknown-encrypted',
      length,
      prefix: value.toString('utf8', 0, end === -1 ? ENC.length : end + 1),
    }
  }
  return {encrypted: false, provider: 'identity', length, plaintext: classifyPlaintext(value)}
}

/** Parses and validates an EncryptedObject for reporting (docs/kubernetes-behaviour.md §3.6, §14.4). */
export function describeKmsV2(body: Buffer): KmsV2Structure {
  try {
    const obj = parseEncryptedObject(body)
    const annotations: Record<string, string> = {}
    for (const [k, v] of obj.annotations) annotations[k] = v.toString('base64')
    return {
      keyID: obj.keyID,
      // As the metrics label: empty for an empty key ID (docs/kubernetes-behaviour.md §11).
      keyIDHash: obj.keyID === '' ? '' : sha256Label(obj.keyID),
      annotations,
      encryptedDEKSourceType: obj.encryptedDEKSourceType,
      encryptedDEKSourceTypeName: DEK_SOURCE_TYPE_NAMES[obj.encryptedDEKSourceType],
      encryptedDEKSourceLength: obj.encryptedDEKSource.length,
      encryptedDataLength: obj.encryptedData.length,
      error: validateEncryptedObject(obj),
    }
  } catch (error) {
    return {error: (error as Error).message}
  }
}

/**
 * KMS v1 names may contain `:` (docs/kubernetes-behaviour.md §13.4 row 5): take the first `:` after which a u16be length
 * prefix fits inside the value and leaves room for a GCM payload; else the first `:`.
 */
function classifyKmsV1(value: Buffer): ValueClassification {
  const base = {encrypted: true, provider: 'kms' as const, kmsApiVersion: 'v1' as const, length: value.length}
  let first: number | undefined
  for (let end = value.indexOf(COLON, KMS_V1.length); end !== -1; end = value.indexOf(COLON, end + 1)) {
    first ??= end
    const body = value.subarray(end + 1)
    if (body.length < 2) break
    const dekLength = body.readUInt16BE(0)
    if (dekLength > 0 && 2 + dekLength + 28 <= body.length) {
      const kmsName = value.toString('utf8', KMS_V1.length, end)
      return {
        ...base,
        kmsName,
        prefix: `${KMS_V1}${kmsName}:`,
        kmsV1: {encryptedDEKLength: dekLength, payloadLength: body.length - 2 - dekLength},
      }
    }
  }
  if (first === undefined) return {...base, kmsV1: {error: 'no KMS name'}}
  const kmsName = value.toString('utf8', KMS_V1.length, first)
  return {
    ...base,
    kmsName,
    prefix: `${KMS_V1}${kmsName}:`,
    kmsV1: {error: 'invalid data encountered by envelope transformer: failed to read uint16 length prefixed data'},
  }
}
