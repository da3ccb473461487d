/**
 * What a plaintext (serialized) etcd value is (docs/kubernetes-behaviour.md §13.4 rows 7–11): protobuf in the `k8s\0`
 * envelope, CBOR, JSON, base64-wrapped legacy protobuf, or YAML/unknown. Cheap: only the envelope's
 * type meta is read, never the object.
 */
import {startsWith} from './prefixes.js'
import {ProtobufError, decodeUtf8, readFields} from './protobuf-wire.js'

export type PlaintextFormat = 'protobuf' | 'cbor' | 'json' | 'base64-protobuf' | 'yaml' | 'unknown'

export interface PlaintextInfo {
  format: PlaintextFormat
  apiVersion?: string
  kind?: string
  /** Why the type meta could not be read (malformed envelope, bad base64). */
  problem?: string
}

export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00])
const CBOR_SELF_DESCRIBED = Buffer.from([0xd9, 0xd9, 0xf7])
const BASE64_MAGIC = Buffer.from('azhzAA')

export interface StorageEnvelope {
  apiVersion: string
  kind: string
  /** The object's own protobuf encoding (a view into the input). */
  raw: Buffer
  contentEncoding: string
  contentType: string
}

/** Parses `k8s\0` + runtime.Unknown (docs/kubernetes-behaviour.md §13.2). Throws ProtobufError when malformed. */
export function parseStorageEnvelope(value: Buffer): StorageEnvelope {
  if (!startsWith(value, PROTOBUF_MAGIC)) throw new ProtobufError('missing the k8s\\0 protobuf magic')
  const out: StorageEnvelope = {apiVersion: '', kind: '', raw: Buffer.alloc(0), contentEncoding: '', contentType: ''}
  for (const f of readFields(value.subarray(PROTOBUF_MAGIC.length))) {
    if (!f.bytes) continue
    if (f.field === 1) {
      for (const t of readFields(f.bytes)) {
        if (t.field === 1 && t.bytes) out.apiVersion = text(t.bytes)
        else if (t.field === 2 && t.bytes) out.kind = text(t.bytes)
      }
    } else if (f.field === 2) out.raw = f.bytes
    else if (f.field === 3) out.contentEncoding = text(f.bytes)
    else if (f.field === 4) out.contentType = text(f.bytes)
  }
  return out
}

function text(bytes: Buffer): string {
  const s = decodeUtf8(bytes)
  if (s === undefined) throw new ProtobufError('invalid UTF-8 in a string field')
  return s
}

/** Classifies a plaintext value (never an encrypted one; see classifyValue for those). */
export function classifyPlaintext(value: Buffer): PlaintextInfo {
  if (startsWith(value, PROTOBUF_MAGIC)) return envelopeInfo('protobuf', value)
  if (startsWith(value, CBOR_SELF_DESCRIBED)) return {format: 'cbor'}
  if (value.length > 0 && value[0] === 0x7b) return {format: 'json', ...jsonTypeMeta(value)}
  if (startsWith(value, BASE64_MAGIC)) {
    const decoded = Buffer.from(value.toString('latin1').trim(), 'base64')
    return envelopeInfo('base64-protobuf', decoded)
  }
  if (isText(value) && value.length > 0) {
    const head = value.subarray(0, 4096).toString('utf8')
    const apiVersion = /^apiVersion:[ \t]*["']?([^"'\s]+)/m.exec(head)?.[1]
    const kind = /^kind:[ \t]*["']?([^"'\s]+)/m.exec(head)?.[1]
    if (apiVersion || kind) return {format: 'yaml', apiVersion, kind}
  }
  return {format: 'unknown'}
}

function envelopeInfo(format: 'protobuf' | 'base64-protobuf', bytes: Buffer): PlaintextInfo {
  try {
    const {apiVersion, kind} = parseStorageEnvelope(bytes)
    return {format, apiVersion, kind}
  } catch (error) {
    return {format, problem: `malformed protobuf envelope: ${(error as Error).message}`}
  }
}

/**
 * apiVersion and kind of a JSON object as the apiserver writes it: both precede `metadata` at the
 * top level (typed objects: kind, apiVersion; unstructured: keys sorted), so the head suffices.
 */
function jsonTypeMeta(value: Buffer): {apiVersion?: string; kind?: string} {
  const head = value.subarray(0, 2048).toString('utf8')
  const apiVersion = /"apiVersion"\s*:\s*"([^"\\]*)"/.exec(head)?.[1]
  const kind = /"kind"\s*:\s*"([^"\\]*)"/.exec(head)?.[1]
  return {apiVersion, kind}
}

/** Valid UTF-8 without control characters other than tab, CR and LF. */
function isText(value: Buffer): boolean {
  for (let i = 0; i < value.length; i++) {
    const b = value[i]
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false
    if (b === 0x7f) return false
  }
  return decodeUtf8(value) !== undefined
}

/**
 * The CBC false-positive guard (docs/kubernetes-behaviour.md §3.2, §14.3): a decryption is believed only when the plaintext
 * classifies as protobuf (with a readable envelope), CBOR, JSON, or text (YAML storage).
 */
export function looksLikeSerializedObject(value: Buffer): boolean {
  if (startsWith(value, PROTOBUF_MAGIC)) {
    try {
      parseStorageEnvelope(value)
      return true
    } catch {
      return false
    }
  }
  if (startsWith(value, CBOR_SELF_DESCRIBED)) return true
  return value.length > 0 && isText(value)
}
