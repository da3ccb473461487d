/**
 * Protocol buffer wire format (varints, tags, length-delimited fields): just what the
 * schema-driven codec of this folder needs. Written from the protobuf encoding rules.
 */
export class ProtoWriter {
  private chunks: Buffer[] = []
  private size = 0

  private push(b: Buffer): void {
    this.chunks.push(b)
    this.size += b.length
  }

  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value))
    const out: number[] = []
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    out.push(Number(v))
    this.push(Buffer.from(out))
  }

  tag(field: number, wireType: 0 | 2 | 5 | 1): void {
    this.varint((field << 3) | wireType)
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, 2)
    this.varint(bytes.length)
    this.push(Buffer.from(bytes))
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, Buffer.from(s, 'utf8'))
  }

  varintField(field: number, value: number | bigint): void {
    this.tag(field, 0)
    this.varint(value)
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size)
  }
}

export interface RawField {
  field: number
  wireType: number
  /** varint value for wire type 0 */
  varint?: bigint
  /** payload for wire type 2 (and fixed types as raw bytes) */
  bytes?: Buffer
}

export function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n
  let shift = 0n
  for (;;) {
    if (pos >= buf.length) throw new Error('protobuf: truncated varint')
    const b = buf[pos++]
    result |= BigInt(b & 0x7f) << shift
    if ((b & 0x80) === 0) return [result, pos]
    shift += 7n
    if (shift > 70n) throw new Error('protobuf: varint too long')
  }
}

/** Splits a message into its fields, in wire order. */
export function readFields(buf: Buffer): RawField[] {
  const fields: RawField[] = []
  let pos = 0
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos)
    pos = p1
    const field = Number(key >> 3n)
    const wireType = Number(key & 7n)
    switch (wireType) {
      case 0: {
        const [v, p2] = readVarint(buf, pos)
        pos = p2
        fields.push({field, wireType, varint: v})
        break
      }
      case 2: {
        const [len, p2] = readVarint(buf, pos)
        const end = p2 + Number(len)
        if (end > buf.length) throw new Error('protobuf: truncated length-delimited field')
        fields.push({field, wireType, bytes: buf.subarray(p2, end)})
        pos = end
        break
      }
      case 1:
        fields.push({field, wireType, bytes: buf.subarray(pos, pos + 8)})
        pos += 8
        break
      case 5:
        fields.push({field, wireType, bytes: buf.subarray(pos, pos + 4)})
        pos += 4
        break
      default:
        throw new Error(`protobuf: unsupported wire type ${wireType}`)
    }
  }
  return fields
}
