/**
 * Schema-driven conversion between an object's JSON form (as the API serves it) and its
 * protobuf encoding, plus the `k8s\0` + runtime.Unknown storage envelope of spec §13.2.
 */
import {type FieldSpec, MESSAGES} from './schema.js'
import {ProtoWriter, readFields, type RawField} from './wire.js'

type Json = Record<string, unknown>

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00])

function schemaOf(name: string): FieldSpec[] {
  const s = MESSAGES[name]
  if (!s) throw new Error(`protobuf: no schema for message ${name}`)
  return s
}

function timeSeconds(value: unknown): number | undefined {
  if (value === null || value === undefined || value === '') return undefined
  const ms = Date.parse(String(value))
  if (Number.isNaN(ms)) throw new Error(`invalid time ${JSON.stringify(value)}`)
  return Math.floor(ms / 1000)
}

function encodeTime(seconds: number | undefined): Buffer {
  if (seconds === undefined) return Buffer.alloc(0)
  const w = new ProtoWriter()
  w.varintField(1, seconds)
  w.varintField(2, 0)
  return w.finish()
}

function encodeQuantity(value: unknown): Buffer {
  const w = new ProtoWriter()
  w.stringField(1, String(value))
  return w.finish()
}

function toInt(value: unknown): bigint {
  if (typeof value === 'number') return BigInt(Math.trunc(value))
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value)
  if (typeof value === 'bigint') return value
  return 0n
}

function writeScalar(w: ProtoWriter, spec: FieldSpec, value: unknown): void {
  switch (spec.kind) {
    case 'string':
      w.stringField(spec.n, value === undefined || value === null ? '' : String(value))
      break
    case 'int':
      w.varintField(spec.n, toInt(value))
      break
    case 'bool':
      w.varintField(spec.n, value === true ? 1 : 0)
      break
    case 'bytes':
      w.bytesField(spec.n, Buffer.from(String(value ?? ''), 'base64'))
      break
    case 'time':
      w.bytesField(spec.n, encodeTime(timeSeconds(value)))
      break
    case 'quantity':
      w.bytesField(spec.n, encodeQuantity(value))
      break
    case 'message':
      w.bytesField(spec.n, encodeMessage(spec.msg!, (value ?? {}) as Json))
      break
    default:
      throw new Error(`protobuf: ${spec.kind} is not a scalar`)
  }
}

function writeMap(w: ProtoWriter, spec: FieldSpec, value: unknown): void {
  if (value === null || value === undefined) return
  const map = value as Record<string, unknown>
  for (const key of Object.keys(map).sort()) {
    const entry = new ProtoWriter()
    entry.stringField(1, key)
    const v = map[key]
    if (spec.kind === 'map-string') entry.stringField(2, String(v ?? ''))
    else if (spec.kind === 'map-bytes') entry.bytesField(2, Buffer.from(String(v ?? ''), 'base64'))
    else entry.bytesField(2, encodeQuantity(v))
    w.bytesField(spec.n, entry.finish())
  }
}

export function encodeMessage(name: string, obj: Json): Buffer {
  const w = new ProtoWriter()
  for (const spec of schemaOf(name)) {
    if (spec.inline) {
      w.bytesField(spec.n, encodeMessage(spec.msg!, obj))
      continue
    }
    const value = obj[spec.json]
    if (spec.kind.startsWith('map-')) {
      writeMap(w, spec, value)
    } else if (spec.rep) {
      for (const item of (value as unknown[] | undefined) ?? []) writeScalar(w, spec, item)
    } else if (spec.opt) {
      if (value !== undefined && value !== null) writeScalar(w, spec, value)
    } else {
      writeScalar(w, spec, value)
    }
  }
  return w.finish()
}

function formatTime(buf: Buffer): string | null {
  let seconds = 0n
  for (const field of readFields(buf)) if (field.field === 1) seconds = BigInt.asIntN(64, field.varint ?? 0n)
  if (buf.length === 0) return null
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function quantityString(buf: Buffer): string {
  for (const field of readFields(buf)) if (field.field === 1) return field.bytes!.toString('utf8')
  return ''
}

function readScalar(spec: FieldSpec, raw: RawField): unknown {
  switch (spec.kind) {
    case 'string':
      return raw.bytes!.toString('utf8')
    case 'int':
      return Number(BigInt.asIntN(64, raw.varint ?? 0n))
    case 'bool':
      return (raw.varint ?? 0n) !== 0n
    case 'bytes':
      return raw.bytes!.toString('base64')
    case 'time':
      return formatTime(raw.bytes!)
    case 'quantity':
      return quantityString(raw.bytes!)
    case 'message':
      return decodeMessage(spec.msg!, raw.bytes!)
    default:
      throw new Error(`protobuf: ${spec.kind} is not a scalar`)
  }
}

function isZero(value: unknown): boolean {
  return value === '' || value === 0 || value === false || value === null || value === undefined
}

export function decodeMessage(name: string, buf: Buffer): Json {
  const specs = schemaOf(name)
  const byNumber = new Map(specs.map((s) => [s.n, s]))
  const out: Json = {}
  const seen = new Set<number>()
  for (const raw of readFields(buf)) {
    const spec = byNumber.get(raw.field)
    if (!spec) continue // unknown fields are dropped
    seen.add(spec.n)
    if (spec.inline) {
      Object.assign(out, decodeMessage(spec.msg!, raw.bytes!))
    } else if (spec.kind.startsWith('map-')) {
      let key = ''
      let value: unknown = spec.kind === 'map-string' ? '' : ''
      for (const part of readFields(raw.bytes!)) {
        if (part.field === 1) key = part.bytes!.toString('utf8')
        if (part.field === 2)
          value =
            spec.kind === 'map-string'
              ? part.bytes!.toString('utf8')
              : spec.kind === 'map-bytes'
                ? part.bytes!.toString('base64')
                : quantityString(part.bytes!)
      }
      const map = (out[spec.json] ?? {}) as Record<string, unknown>
      map[key] = value
      out[spec.json] = map
    } else if (spec.rep) {
      const list = (out[spec.json] ?? []) as unknown[]
      list.push(readScalar(spec, raw))
      out[spec.json] = list
    } else {
      const value = readScalar(spec, raw)
      if (spec.kind === 'message') {
        out[spec.json] = value
      } else if (!isZero(value) || spec.keep || spec.opt) {
        out[spec.json] = value
      }
    }
  }
  // Fields that must show in JSON although the wire had nothing (e.g. an empty list).
  for (const spec of specs) if (spec.keep && spec.rep && !seen.has(spec.n)) out[spec.json] = []
  return out
}

/** Protobuf messages of the kinds the stand-in stores; apiVersion is always v1 (core). */
export const PROTO_KINDS = new Set(['Secret', 'ConfigMap', 'Namespace', 'Node', 'Pod', 'Endpoints'])

/** `k8s\0` + runtime.Unknown{typeMeta, raw, contentEncoding "", contentType ""} (spec §13.2). */
export function encodeEnvelope(obj: Json): Buffer {
  const apiVersion = String(obj.apiVersion ?? '')
  const kind = String(obj.kind ?? '')
  const typeMeta = new ProtoWriter()
  typeMeta.stringField(1, apiVersion)
  typeMeta.stringField(2, kind)
  const unknown = new ProtoWriter()
  unknown.bytesField(1, typeMeta.finish())
  unknown.bytesField(2, encodeMessage(kind, obj))
  unknown.stringField(3, '')
  unknown.stringField(4, '')
  return Buffer.concat([MAGIC, unknown.finish()])
}

export function isProtobufValue(value: Buffer): boolean {
  return value.length >= 4 && value.subarray(0, 4).equals(MAGIC)
}

export function decodeEnvelope(value: Buffer): Json {
  if (!isProtobufValue(value)) throw new Error('not a protobuf storage value')
  let apiVersion = ''
  let kind = ''
  let raw: Buffer = Buffer.alloc(0)
  for (const field of readFields(value.subarray(4))) {
    if (field.field === 1) {
      for (const t of readFields(field.bytes!)) {
        if (t.field === 1) apiVersion = t.bytes!.toString('utf8')
        if (t.field === 2) kind = t.bytes!.toString('utf8')
      }
    } else if (field.field === 2) {
      raw = field.bytes!
    }
  }
  return {apiVersion, kind, ...decodeMessage(kind, raw)}
}
