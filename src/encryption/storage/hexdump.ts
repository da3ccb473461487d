/**
 * util-linux `hexdump -C`, byte for byte: 16 bytes a line as `%08x`, two groups of eight hex bytes,
 * the printable ASCII column between bars; a run of lines equal to the previous full line collapses
 * into one `*`; a final line carries the total length. Empty input prints nothing.
 */
const HEX = Array.from({length: 256}, (_, i) => i.toString(16).padStart(2, '0'))

export function hexdump(buf: Uint8Array): string {
  if (buf.length === 0) return ''
  const lines: string[] = []
  let starred = false
  for (let offset = 0; offset < buf.length; offset += 16) {
    const end = Math.min(offset + 16, buf.length)
    if (end - offset === 16 && offset >= 16 && sameLine(buf, offset - 16, offset)) {
      if (!starred) lines.push('*')
      starred = true
      continue
    }
    starred = false
    let hex = ''
    let ascii = ''
    for (let i = offset; i < offset + 16; i++) {
      if (i === offset + 8) hex += ' '
      if (i < end) {
        const b = buf[i]
        hex += HEX[b] + ' '
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'
      } else hex += '   '
    }
    lines.push(`${offsetText(offset)}  ${hex} |${ascii}|`)
  }
  lines.push(offsetText(buf.length))
  return lines.join('\n') + '\n'
}

function offsetText(n: number): string {
  return n.toString(16).padStart(8, '0')
}

function sameLine(buf: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[a + i] !== buf[b + i]) return false
  return true
}
