/**
 * The KMS v2 `EncryptedObject` (docs/kubernetes-behaviour.md §3.6): parse, validate and encode. Field numbers:
 * 1 encryptedData, 2 keyID, 3 encryptedDEKSource, 4 annotations (map<string, bytes>), 5 type.
 */
import {ProtobufError, decodeUtf8, lenField, readFields, varintField, WIRE_LEN, WIRE_VARINT} from './protobuf-wire.js'

export const DEK_SOURCE_AES_GCM_KEY = 0
export const DEK_SOURCE_HKDF_SEED = 1

export const DEK_SOURCE_TYPE_NAMES: Record<number, string> = {
  [DEK_SOURCE_AES_GCM_KEY]: 'AES_GCM_KEY',
  [DEK_SOURCE_HKDF_SEED]: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
}

export interface EncryptedObject {
  encryptedData: Buffer
  keyID: string
  encryptedDEKSource: Buffer
  annotations: Map<string, Buffer>
  encryptedDEKSourceType: number
}

const MAX_DEK_SOURCE = 1024
const MAX_KEY_ID = 1024
const MAX_ANNOTATIONS = 32 * 1024

/** Parses the protobuf; throws ProtobufError on malformed bytes (any field order, unknown fields skipped). */
export function parseEncryptedObject(bytes: Buffer): EncryptedObject {
  const obj: EncryptedObject = {
    encryptedData: Buffer.alloc(0),
    keyID: '',
    encryptedDEKSource: Buffer.alloc(0),
    annotations: new Map(),
    encryptedDEKSourceType: 0,
  }
  for (const f of readFields(bytes)) {
    switch (f.field) {
      case 1:
        obj.encryptedData = lenBytes(f, 'encryptedData')
        break
      case 2: {
        const text = decodeUtf8(lenBytes(f, 'keyID'))
        if (text === undefined) throw new ProtobufError('proto: field keyID contains invalid UTF-8')
        obj.keyID = text
        break
      }
      case 3:
        obj.encryptedDEKSource = lenBytes(f, 'encryptedDEKSource')
        break
      case 4: {
        let key = ''
        let value: Buffer = Buffer.alloc(0)
        for (const e of readFields(lenBytes(f, 'annotations'))) {
          if (e.field === 1) {
            const text = decodeUtf8(lenBytes(e, 'annotations key'))
            if (text === undefined) throw new ProtobufError('proto: annotation key contains invalid UTF-8')
            key = text
          } else if (e.field === 2) value = lenBytes(e, 'annotations value')
        }
        obj.annotations.set(key, value)
        break
      }
      case 5:
        if (f.wire !== WIRE_VARINT) throw new ProtobufError('proto: wrong wireType for field encryptedDEKSourceType')
        obj.encryptedDEKSourceType = f.varint ?? 0
        break
      default:
        break
    }
  }
  return obj
}

function lenBytes(f: {wire: number; bytes?: Buffer}, name: string): Buffer {
  if (f.wire !== WIRE_LEN || f.bytes === undefined) throw new ProtobufError(`proto: wrong wireType for field ${name}`)
  return f.bytes
}

/** The apiserver's validation on read and write, in its order; returns the error text or undefined. */
export function validateEncryptedObject(o: EncryptedObject): string | undefined {
  return validateEnvelopeFields(o) ?? validateAnnotations(o)
}

/**
 * The checks before the annotations (type, encryptedData, DEK source, key ID): failing one leaves
 * nothing to decrypt with, so even the offline reader stops there (docs/kubernetes-behaviour.md §3.6).
 */
export function validateEnvelopeFields(o: EncryptedObject): string | undefined {
  if (o.encryptedDEKSourceType !== DEK_SOURCE_AES_GCM_KEY && o.encryptedDEKSourceType !== DEK_SOURCE_HKDF_SEED) {
    return `unknown encryptedDEKSourceType: ${o.encryptedDEKSourceType}`
  }
  if (o.encryptedData.length === 0) return 'encrypted data is empty'
  if (o.encryptedDEKSource.length === 0) return 'failed to validate encrypted DEK source: encrypted DEK source is empty'
  if (o.encryptedDEKSource.length > MAX_DEK_SOURCE) {
    return `failed to validate encrypted DEK source: encrypted DEK source is ${o.encryptedDEKSource.length} bytes, which exceeds the max size of ${MAX_DEK_SOURCE}`
  }
  const keyIdBytes = Buffer.byteLength(o.keyID, 'utf8')
  if (keyIdBytes === 0) return 'failed to validate key id: keyID is empty'
  if (keyIdBytes > MAX_KEY_ID) {
    return `failed to validate key id: keyID is ${keyIdBytes} bytes, which exceeds the max size of ${MAX_KEY_ID}`
  }
  return undefined
}

/**
 * The last check (docs/kubernetes-behaviour.md §3.6): keys are fully qualified domain names, total size bounded. The
 * annotations are not covered by the AAD, so a value failing only this still decrypts offline.
 */
export function validateAnnotations(o: EncryptedObject): string | undefined {
  const problems: string[] = []
  let total = 0
  for (const [key, value] of o.annotations) {
    const problem = fullyQualifiedDomainNameError(key)
    if (problem) problems.push(problem)
    total += Buffer.byteLength(key, 'utf8') + value.length
  }
  if (total > MAX_ANNOTATIONS) {
    problems.push(`total size of annotations is ${total}, which exceeds the max size of ${MAX_ANNOTATIONS}`)
  }
  if (problems.length > 0) {
    const distinct = [...new Set(problems)]
    return `failed to validate annotations: ${distinct.length === 1 ? distinct[0] : `[${distinct.join(', ')}]`}`
  }
  return undefined
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const SUBDOMAIN_MESSAGE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

/**
 * Annotation keys must be fully qualified domain names (the apimachinery check the KMS v2 envelope
 * uses, rendered as a field error at path `annotations`): a trailing `.` is dropped, then an
 * RFC 1123 subdomain of at most 253 characters with at least two labels of at most 63.
 */
export function fullyQualifiedDomainNameError(key: string): string | undefined {
  if (key.length === 0) return 'annotations: Required value'
  const name = key.endsWith('.') ? key.slice(0, -1) : key
  const errs: string[] = []
  if (name.length > 253) errs.push('must be no more than 253 characters')
  if (!SUBDOMAIN.test(name)) errs.push(SUBDOMAIN_MESSAGE)
  if (errs.length > 0) return `annotations: Invalid value: ${JSON.stringify(name)}: ${errs.join(',')}`
  const labels = name.split('.')
  if (labels.length < 2) {
    return `annotations: Invalid value: ${JSON.stringify(name)}: should be a domain with at least two segments separated by dots`
  }
  const long = labels.find((l) => l.length > 63)
  if (long !== undefined)
    return `annotations: Invalid value: ${JSON.stringify(long)}: must be no more than 63 characters`
  return undefined
}

/** Encodes as the apiserver's marshaller does: fields in number order, zero values left off. */
export function encodeEncryptedObject(o: EncryptedObject): Buffer {
  const parts: Buffer[] = []
  if (o.encryptedData.length > 0) parts.push(lenField(1, o.encryptedData))
  if (o.keyID !== '') parts.push(lenField(2, o.keyID))
  if (o.encryptedDEKSource.length > 0) parts.push(lenField(3, o.encryptedDEKSource))
  for (const key of [...o.annotations.keys()].sort()) {
    parts.push(lenField(4, Buffer.concat([lenField(1, key), lenField(2, o.annotations.get(key) ?? Buffer.alloc(0))])))
  }
  if (o.encryptedDEKSourceType !== 0) parts.push(varintField(5, o.encryptedDEKSourceType))
  return Buffer.concat(parts)
}
