/**
 * Kubernetes' protobuf framing (`application/vnd.kubernetes.protobuf`), only as far as the rewrite
 * needs it: lists are read down to each item's bytes and the few ObjectMeta fields the engine looks
 * at, and an item is written back as the very bytes it was listed as. Nothing else is decoded, so the
 * plugin never re-encodes an object (and cannot drop a field it does not know).
 *
 * The wire format (k8s.io/apimachinery v0.37, pkg/runtime/serializer/protobuf/protobuf.go): a body is
 * the 4-byte magic `k8s\0` followed by a runtime.Unknown message (pkg/runtime/generated.proto:
 * typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2, contentEncoding = 3, contentType = 4) whose raw
 * is the object's own message. Every list of k8s.io/api is {metadata = 1 ListMeta, items = 2
 * repeated item}, every object's metadata = 1 ObjectMeta (pkg/apis/meta/v1/generated.proto: ListMeta
 * resourceVersion = 2, continue = 3, remainingItemCount = 4; ObjectMeta name = 1, namespace = 3,
 * uid = 5, resourceVersion = 6; Status message = 3, reason = 4, details = 5, code = 6). The wire
 * format itself is protobufjs's Reader and Writer.
 */
import protobuf from 'protobufjs/minimal.js'

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf'
/** The magic number in front of every protobuf body (protobuf.go, protoEncodingPrefix). */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00])

const {Reader, Writer} = protobuf
type ProtoReader = InstanceType<typeof Reader>

/** A body that is not the protobuf the apiserver sends: no magic, truncated, or an unexpected encoding. */
export class ProtobufDecodeError extends Error {
  constructor(message: string) {
    super(`cannot decode the API server's protobuf answer: ${message}`)
    this.name = 'ProtobufDecodeError'
  }
}

export interface Envelope {
  apiVersion: string
  kind: string
  /** The object's own message (a view into the body, not a copy). */
  raw: Buffer
}

export interface ObjectMetaFields {
  name: string
  namespace?: string
  uid?: string
  resourceVersion?: string
}

export interface ListedItem extends ObjectMetaFields {
  /** The item's message exactly as listed (a view into the list's body). */
  raw: Buffer
}

export interface DecodedList {
  items: ListedItem[]
  resourceVersion?: string
  continue?: string
  remainingItemCount?: number
}

/** The metav1.Status fields errors are made of (the same shape http.ts reads from JSON). */
export interface DecodedStatus {
  kind: string
  message?: string
  reason?: string
  code?: number
  metadata?: {continue?: string}
  details?: {
    name?: string
    group?: string
    kind?: string
    retryAfterSeconds?: number
    causes?: Array<{reason?: string; field?: string; message?: string}>
  }
}

/** Runs a decoder, turning protobufjs's RangeError (read past the end) into one error type. */
function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode()
  } catch (error) {
    if (error instanceof ProtobufDecodeError) throw error
    throw new ProtobufDecodeError(`${what}: ${(error as Error).message}`)
  }
}

/** Iterates the fields of one message: calls `field` with each field number, or skips it. */
function eachField(r: ProtoReader, field: (n: number, wire: number) => boolean): void {
  while (r.pos < r.len) {
    const tag = r.uint32()
    const n = tag >>> 3
    const wire = tag & 7
    if (n === 0) throw new ProtobufDecodeError(`field number 0 at byte ${r.pos}`)
    if (!field(n, wire)) r.skipType(wire)
  }
}

const LEN = 2
const VARINT = 0

/** A nested message's bytes (a view, no copy); bytes() checks the length against the buffer. */
function nested(r: ProtoReader): Buffer {
  return r.bytes() as Buffer
}

/** The magic and the runtime.Unknown around every protobuf body. */
export function unwrap(body: Buffer): Envelope {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC))
    throw new ProtobufDecodeError(`the body does not start with the protobuf magic k8s\\0 (${body.length} bytes)`)
  return decoding('runtime.Unknown', () => {
    const r = Reader.create(body.subarray(MAGIC.length))
    const out: Envelope = {apiVersion: '', kind: '', raw: Buffer.alloc(0)}
    let encoding = ''
    let hasRaw = false
    eachField(r, (n, wire) => {
      if (n === 1 && wire === LEN) {
        const t = Reader.create(nested(r))
        eachField(t, (m, w) => {
          if (w !== LEN || (m !== 1 && m !== 2)) return false
          if (m === 1) out.apiVersion = t.string()
          else out.kind = t.string()
          return true
        })
      } else if (n === 2 && wire === LEN) {
        out.raw = nested(r)
        hasRaw = true
      } else if (n === 3 && wire === LEN) encoding = r.string()
      else return false
      return true
    })
    if (!hasRaw) throw new ProtobufDecodeError('runtime.Unknown has no raw object')
    // The apiserver never compresses raw; anything it did would not be the message we read.
    if (encoding) throw new ProtobufDecodeError(`raw has contentEncoding ${JSON.stringify(encoding)}`)
    return out
  })
}

/** A body for a write: the magic and a runtime.Unknown of `type` around the object's message. */
export function wrap(type: {apiVersion: string; kind: string}, raw: Uint8Array): Buffer {
  const w = Writer.create()
  w.uint32((1 << 3) | LEN)
    .fork()
    .uint32((1 << 3) | LEN)
    .string(type.apiVersion)
    .uint32((2 << 3) | LEN)
    .string(type.kind)
    .ldelim()
  w.uint32((2 << 3) | LEN).bytes(raw)
  return Buffer.concat([MAGIC, w.finish()])
}

function objectMetaFrom(bytes: Buffer): ObjectMetaFields {
  const r = Reader.create(bytes)
  const meta: ObjectMetaFields = {name: ''}
  eachField(r, (n, wire) => {
    if (wire !== LEN) return false
    if (n === 1) meta.name = r.string()
    else if (n === 3) meta.namespace = r.string()
    else if (n === 5) meta.uid = r.string()
    else if (n === 6) meta.resourceVersion = r.string()
    else return false
    return true
  })
  return meta
}

/** An object's ObjectMeta fields (field 1 of every Kubernetes object). */
export function objectMeta(raw: Buffer): ObjectMetaFields {
  return decoding('ObjectMeta', () => {
    const r = Reader.create(raw)
    let meta: ObjectMetaFields | undefined
    eachField(r, (n, wire) => {
      if (n !== 1 || wire !== LEN) return false
      meta = objectMetaFrom(nested(r))
      return true
    })
    if (!meta?.name) throw new ProtobufDecodeError('the object has no metadata.name')
    return meta
  })
}

/** A list's ListMeta and, per item, its bytes and metadata. */
export function decodeList(raw: Buffer): DecodedList {
  return decoding('list', () => {
    const r = Reader.create(raw)
    const list: DecodedList = {items: []}
    eachField(r, (n, wire) => {
      if (n === 1 && wire === LEN) {
        const m = Reader.create(nested(r))
        eachField(m, (f, w) => {
          if (f === 2 && w === LEN) list.resourceVersion = m.string()
          else if (f === 3 && w === LEN) list.continue = m.string()
          else if (f === 4 && w === VARINT)
            list.remainingItemCount = toNumber(m.int64() as unknown as number | {toNumber(): number})
          else return false
          return true
        })
      } else if (n === 2 && wire === LEN) {
        const item = nested(r)
        list.items.push({...objectMeta(item), raw: item})
      } else return false
      return true
    })
    return list
  })
}

/** A metav1.Status (an error answer in protobuf). */
export function decodeStatus(raw: Buffer): DecodedStatus {
  return decoding('Status', () => {
    const r = Reader.create(raw)
    const status: DecodedStatus = {kind: 'Status'}
    eachField(r, (n, wire) => {
      if (n === 1 && wire === LEN) {
        const m = Reader.create(nested(r))
        eachField(m, (f, w) => {
          if (f !== 3 || w !== LEN) return false
          status.metadata = {continue: m.string()}
          return true
        })
      } else if (n === 3 && wire === LEN) status.message = r.string()
      else if (n === 4 && wire === LEN) status.reason = r.string()
      else if (n === 6 && wire === VARINT) status.code = r.int32()
      else if (n === 5 && wire === LEN) status.details = statusDetails(nested(r))
      else return false
      return true
    })
    return status
  })
}

function statusDetails(bytes: Buffer): NonNullable<DecodedStatus['details']> {
  const r = Reader.create(bytes)
  const details: NonNullable<DecodedStatus['details']> = {}
  eachField(r, (n, wire) => {
    if (n === 1 && wire === LEN) details.name = r.string()
    else if (n === 2 && wire === LEN) details.group = r.string()
    else if (n === 3 && wire === LEN) details.kind = r.string()
    else if (n === 5 && wire === VARINT) details.retryAfterSeconds = r.int32()
    else if (n === 4 && wire === LEN) {
      const c = Reader.create(nested(r))
      const cause: {reason?: string; field?: string; message?: string} = {}
      eachField(c, (f, w) => {
        if (w !== LEN || f < 1 || f > 3) return false
        const v = c.string()
        if (f === 1) cause.reason = v
        else if (f === 2) cause.message = v
        else cause.field = v
        return true
      })
      details.causes ??= []
      details.causes.push(cause)
    } else return false
    return true
  })
  return details
}

/** int64 comes as a number, or as a Long when the `long` package is loadable. */
function toNumber(v: number | {toNumber(): number}): number {
  return typeof v === 'number' ? v : v.toNumber()
}
