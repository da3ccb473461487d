/**
 * Go's `encoding/base64` StdEncoding decoder, exactly as docs/kubernetes-behaviour.md §6.4 describes it. Node's
 * `Buffer.from(s, 'base64')` is lenient (it accepts missing padding, the URL-safe alphabet and
 * stray characters), so the apiserver's verdict on a key secret needs this one.
 *
 * - alphabet `A–Z a–z 0–9 + /`, `=` padding required (length after removing CR/LF is a multiple of 4);
 * - CR and LF are ignored anywhere; any other character (spaces, `-`, `_`) is an error;
 * - non-zero trailing bits before the padding are tolerated (Go's StdEncoding is not Strict).
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]))

/** Decodes Go-style standard base64; returns undefined where Go's decoder returns an error. */
export function decodeGoBase64(text: string): Buffer | undefined {
  const clean = text.replace(/[\r\n]/g, '')
  if (clean.length % 4 !== 0) return undefined
  const out: number[] = []
  for (let i = 0; i < clean.length; i += 4) {
    const quad = clean.slice(i, i + 4)
    const last = i + 4 === clean.length
    const pad = quad.endsWith('==') ? 2 : quad.endsWith('=') ? 1 : 0
    // Padding only in the last quantum, and only as "xx==" or "xxx=".
    if (pad > 0 && !last) return undefined
    const digits = quad.slice(0, 4 - pad)
    if (digits.includes('=')) return undefined
    const values = [...digits].map((c) => VALUE.get(c))
    if (values.some((v) => v === undefined)) return undefined
    const [a, b, c = 0, d = 0] = values as number[]
    const n = (a << 18) | (b << 12) | (c << 6) | d
    out.push((n >> 16) & 0xff)
    if (pad < 2) out.push((n >> 8) & 0xff)
    if (pad < 1) out.push(n & 0xff)
  }
  return Buffer.from(out)
}

/** Go's StdEncoding.EncodeToString (always padded); Node's encoder is already exact for this. */
export function encodeGoBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64')
}
