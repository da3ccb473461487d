/**
 * A minimal protobuf wire-format reader and writer: just enough for the storage envelope
 * (`runtime.Unknown`, docs/kubernetes-behaviour.md §13.2), the objects we peek into, and the KMS v2 `EncryptedObject`
 * (docs/kubernetes-behaviour.md §3.6). Readers never copy: length-delimited fields are `subarray` views.
 */

export const WIRE_VARINT = 0
export const WIRE_I64 = 1
export const WIRE_LEN = 2
export const WIRE_I32 = 5

export class ProtobufError extends Error {
  override name = 'ProtobufError'
}

export interface ProtobufField {
  field: number
  wire: number
  /** Set for varint fields (as a number; values beyond 2^53 lose precision, which we never need). */
  varint?: number
  /** Set for length-delimited fields: a view into the input. */
  bytes?: Buffer
}

/** Reads one varint at `pos`; returns [value, next position]. */
export function readVarint(buf: Buffer, pos: number): [number, number] {
  let value = 0
  let factor = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtobufError('unexpected EOF')
    const byte = buf[pos++]
    value += (byte & 0x7f) * factor
    if (byte < 0x80) return [value, pos]
    factor *= 128
  }
  throw new ProtobufError('integer overflow')
}

/** Iterates the top-level fields of a message. Throws ProtobufError on malformed input. */
export function* readFields(buf: Buffer): Generator<ProtobufField> {
  let pos = 0
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos)
    pos = afterTag
    const field = Math.floor(tag / 8)
    const wire = tag & 7
    if (field === 0) throw new ProtobufError('illegal tag 0 (wire type ' + wire + ')')
    switch (wire) {
      case WIRE_VARINT: {
        const [value, next] = readVarint(buf, pos)
        pos = next
        yield {field, wire, varint: value}
        break
      }
      case WIRE_LEN: {
        const [length, next] = readVarint(buf, pos)
        if (next + length > buf.length) throw new ProtobufError('unexpected EOF')
        pos = next + length
        yield {field, wire, bytes: buf.subarray(next, pos)}
        break
      }
      case WIRE_I64:
        if (pos + 8 > buf.length) throw new ProtobufError('unexpected EOF')
        pos += 8
        yield {field, wire}
        break
      case WIRE_I32:
        if (pos + 4 > buf.length) throw new ProtobufError('unexpected EOF')
        pos += 4
        yield {field, wire}
        break
      default:
        throw new ProtobufError(`illegal wireType ${wire} for field ${field}`)
    }
  }
}

/** Strict UTF-8 decode; undefined when the bytes are not valid UTF-8. */
const utf8 = new TextDecoder('utf-8', {fatal: true})
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** Encodes a varint. */
export function varint(value: number): Buffer {
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Buffer.from(out)
}

/** A length-delimited field: tag, length, bytes. */
export function lenField(field: number, bytes: Uint8Array | string): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes
  return Buffer.concat([varint(field * 8 + WIRE_LEN), varint(body.length), body])
}

/** A varint field. */
export function varintField(field: number, value: number): Buffer {
  return Buffer.concat([varint(field * 8 + WIRE_VARINT), varint(value)])
}
