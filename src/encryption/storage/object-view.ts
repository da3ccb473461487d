/**
 * A readable view of a decrypted (or plaintext) value for `inspect --decrypt`: type meta and
 * metadata of any protobuf object, plus the data of Secrets and ConfigMaps; JSON objects as they
 * are. Secret values are user data: callers show them only when asked to (--decrypt).
 */
import {classifyPlaintext, parseStorageEnvelope, type PlaintextFormat} from './plaintext-format.js'
import {decodeUtf8, readFields} from './protobuf-wire.js'

export interface ObjectMetaView {
  name?: string
  generateName?: string
  namespace?: string
  uid?: string
  creationTimestamp?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

export interface ObjectView {
  format: PlaintextFormat
  apiVersion?: string
  kind?: string
  metadata?: ObjectMetaView
  /** Secret `type`. */
  type?: string
  immutable?: boolean
  /** Secret data (decoded bytes as UTF-8 when valid, else `base64:` + base64) and ConfigMap data. */
  data?: Record<string, string>
  binaryData?: Record<string, string>
  /** JSON objects: the parsed document. */
  json?: unknown
  /** Text formats (YAML) shown as text. */
  text?: string
  /** Why the object could not be decoded further. */
  problem?: string
}

export function viewObject(plaintext: Buffer): ObjectView {
  const info = classifyPlaintext(plaintext)
  const view: ObjectView = {format: info.format, apiVersion: info.apiVersion, kind: info.kind}
  if (info.problem) view.problem = info.problem
  try {
    if (info.format === 'protobuf' || info.format === 'base64-protobuf') {
      const bytes = info.format === 'protobuf' ? plaintext : Buffer.from(plaintext.toString('latin1').trim(), 'base64')
      decodeProtobufObject(parseStorageEnvelope(bytes).raw, view)
    } else if (info.format === 'json') {
      view.json = JSON.parse(plaintext.toString('utf8'))
    } else if (info.format === 'yaml') {
      view.text = plaintext.toString('utf8')
    } else if (info.format === 'cbor') {
      view.problem = 'CBOR objects are not decoded; use --hexdump to see the bytes'
    } else {
      view.problem = 'not a serialized Kubernetes object'
    }
  } catch (error) {
    view.problem = `could not decode the object: ${(error as Error).message}`
  }
  return view
}

function decodeProtobufObject(raw: Buffer, view: ObjectView): void {
  const data: Record<string, string> = {}
  const binaryData: Record<string, string> = {}
  for (const f of readFields(raw)) {
    if (f.field === 1 && f.bytes) view.metadata = decodeObjectMeta(f.bytes)
    else if (view.kind === 'Secret') {
      if (f.field === 2 && f.bytes) {
        const [k, v] = mapEntry(f.bytes)
        data[k] = bytesText(v)
      } else if (f.field === 3 && f.bytes) view.type = str(f.bytes)
      else if (f.field === 5) view.immutable = f.varint === 1
    } else if (view.kind === 'ConfigMap') {
      if (f.field === 2 && f.bytes) {
        const [k, v] = mapEntry(f.bytes)
        data[k] = str(v)
      } else if (f.field === 3 && f.bytes) {
        const [k, v] = mapEntry(f.bytes)
        binaryData[k] = v.toString('base64')
      } else if (f.field === 4) view.immutable = f.varint === 1
    }
  }
  if (view.kind === 'Secret' || view.kind === 'ConfigMap') view.data = data
  if (Object.keys(binaryData).length > 0) view.binaryData = binaryData
}

function decodeObjectMeta(bytes: Buffer): ObjectMetaView {
  const meta: ObjectMetaView = {}
  for (const f of readFields(bytes)) {
    if (!f.bytes) continue
    switch (f.field) {
      case 1:
        meta.name = str(f.bytes)
        break
      case 2:
        if (f.bytes.length > 0) meta.generateName = str(f.bytes)
        break
      case 3:
        if (f.bytes.length > 0) meta.namespace = str(f.bytes)
        break
      case 5:
        if (f.bytes.length > 0) meta.uid = str(f.bytes)
        break
      case 8: {
        let seconds = 0
        for (const t of readFields(f.bytes)) if (t.field === 1) seconds = t.varint ?? 0
        if (f.bytes.length > 0) meta.creationTimestamp = new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
        break
      }
      case 11: {
        const [k, v] = mapEntry(f.bytes)
        ;(meta.labels ??= {})[k] = str(v)
        break
      }
      case 12: {
        const [k, v] = mapEntry(f.bytes)
        ;(meta.annotations ??= {})[k] = str(v)
        break
      }
      default:
        break
    }
  }
  return meta
}

function mapEntry(bytes: Buffer): [string, Buffer] {
  let key = ''
  let value: Buffer = Buffer.alloc(0)
  for (const f of readFields(bytes)) {
    if (f.field === 1 && f.bytes) key = str(f.bytes)
    else if (f.field === 2 && f.bytes) value = f.bytes
  }
  return [key, value]
}

function str(bytes: Buffer): string {
  return decodeUtf8(bytes) ?? bytes.toString('latin1')
}

function bytesText(bytes: Buffer): string {
  const text = decodeUtf8(bytes)
  return text !== undefined && !/[\u0000-\u0008\u000e-\u001f]/.test(text) ? text : `base64:${bytes.toString('base64')}`
}
