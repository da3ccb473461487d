/**
 * Go's renderings that the apiserver's messages use (docs/kubernetes-behaviour.md §0 conventions, §6.1): `%q` quoting,
 * encoding/json output (HTML-safe escapes), and time.Duration parsing and printing for `kms.timeout`.
 */

/** Go's strconv.Quote (`%q`): printable runes kept, the rest escaped Go-style. */
export function goQuote(text: string): string {
  let out = '"'
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0
    switch (ch) {
      case '"':
        out += '\\"'
        continue
      case '\\':
        out += '\\\\'
        continue
      case '\u0007':
        out += '\\a'
        continue
      case '\b':
        out += '\\b'
        continue
      case '\f':
        out += '\\f'
        continue
      case '\n':
        out += '\\n'
        continue
      case '\r':
        out += '\\r'
        continue
      case '\t':
        out += '\\t'
        continue
      case '\v':
        out += '\\v'
        continue
    }
    if (ch === ' ' || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch)) out += ch
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`
    else out += `\\U${cp.toString(16).padStart(8, '0')}`
  }
  return out + '"'
}

/** Go's encoding/json Marshal: compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
}
const MAX_INT64 = (1n << 63n) - 1n

/**
 * Go's time.ParseDuration: returns nanoseconds, or the error text Go gives
 * (`time: invalid duration "3x"`, `time: missing unit in duration "3"`, `time: unknown unit "x" in duration "3x"`).
 */
export function parseGoDuration(text: string): {nanos: bigint} | {error: string} {
  const quoted = goQuote(text)
  const invalid = {error: `time: invalid duration ${quoted}`}
  let s = text
  let negative = false
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-')
    s = s.slice(1)
  }
  if (s === '0') return {nanos: 0n}
  if (s === '') return invalid
  let total = 0n
  while (s !== '') {
    const num = /^(\d*)(?:\.(\d*))?/.exec(s)
    const intPart = num?.[1] ?? ''
    const fracPart = num?.[2]
    if (intPart === '' && (fracPart === undefined || fracPart === '')) return invalid
    s = s.slice(num?.[0].length ?? 0)
    const unit = /^[^\d.]*/.exec(s)?.[0] ?? ''
    if (unit === '') return {error: `time: missing unit in duration ${quoted}`}
    const scale = UNITS[unit]
    if (scale === undefined) return {error: `time: unknown unit ${goQuote(unit)} in duration ${quoted}`}
    s = s.slice(unit.length)
    let value = BigInt(intPart || '0') * scale
    if (fracPart) value += (BigInt(fracPart) * scale) / 10n ** BigInt(fracPart.length)
    total += value
    if (total > MAX_INT64 + (negative ? 1n : 0n)) return invalid
  }
  return {nanos: negative ? -total : total}
}

function fraction(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits)
  const whole = value / scale
  const frac = (value % scale).toString().padStart(digits, '0').replace(/0+$/, '')
  return frac === '' ? whole.toString() : `${whole}.${frac}`
}

/** Go's time.Duration.String(): `0s`, `1.5s`, `2m0s`, `1h0m0s`, `500ms`, `-1s`. */
export function formatGoDuration(nanos: bigint): string {
  if (nanos === 0n) return '0s'
  const sign = nanos < 0n ? '-' : ''
  const u = nanos < 0n ? -nanos : nanos
  if (u < 1_000_000_000n) {
    if (u < 1_000n) return `${sign}${u}ns`
    if (u < 1_000_000n) return `${sign}${fraction(u, 3)}µs`
    return `${sign}${fraction(u, 6)}ms`
  }
  let out = `${fraction(u % 60_000_000_000n, 9)}s`
  const minutes = u / 60_000_000_000n
  if (minutes > 0n) {
    out = `${minutes % 60n}m${out}`
    const hours = minutes / 60n
    if (hours > 0n) out = `${hours}h${out}`
  }
  return sign + out
}
