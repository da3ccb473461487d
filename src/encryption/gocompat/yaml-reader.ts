/**
 * The character check of go-yaml's reader, which the apiserver's YAML decoder runs on the raw bytes
 * before any parsing (docs/kubernetes-behaviour.md §5.2 step 2): invalid UTF-8 and control characters fail the whole file
 * with `yaml: <problem>` (a reader error carries no line). The JavaScript YAML parser accepts both, so
 * binary garbage would otherwise decode as a plain string.
 */

/** Characters YAML allows in a stream: TAB, LF, CR, printable ASCII, NEL, and the non-control Unicode ranges. */
function allowed(cp: number): boolean {
  return (
    cp === 0x09 ||
    cp === 0x0a ||
    cp === 0x0d ||
    (cp >= 0x20 && cp <= 0x7e) ||
    cp === 0x85 ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  )
}

/** Returns go-yaml's reader error for UTF-8 `bytes` (e.g. `yaml: control characters are not allowed`), or undefined. */
export function goYamlReaderError(bytes: Uint8Array): string | undefined {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  while (i < bytes.length) {
    const lead = bytes[i] as number
    const width =
      (lead & 0x80) === 0 ? 1 : (lead & 0xe0) === 0xc0 ? 2 : (lead & 0xf0) === 0xe0 ? 3 : (lead & 0xf8) === 0xf0 ? 4 : 0
    if (width === 0) return 'yaml: invalid leading UTF-8 octet'
    if (i + width > bytes.length) return 'yaml: incomplete UTF-8 octet sequence'
    let cp = width === 1 ? lead : width === 2 ? lead & 0x1f : width === 3 ? lead & 0x0f : lead & 0x07
    for (let k = 1; k < width; k++) {
      const trail = bytes[i + k] as number
      if ((trail & 0xc0) !== 0x80) return 'yaml: invalid trailing UTF-8 octet'
      cp = (cp << 6) | (trail & 0x3f)
    }
    const shortest =
      width === 1 || (width === 2 && cp >= 0x80) || (width === 3 && cp >= 0x800) || (width === 4 && cp >= 0x10000)
    if (!shortest) return 'yaml: invalid length of a UTF-8 sequence'
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 'yaml: invalid Unicode character'
    if (!allowed(cp)) return 'yaml: control characters are not allowed'
    i += width
  }
  return undefined
}
