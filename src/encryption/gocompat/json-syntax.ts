/**
 * The syntax check Go's encoding/json runs before decoding (its byte scanner), with Go's error texts:
 * `invalid character 'o' after object key:value pair`, `unexpected end of JSON input`. The apiserver
 * prints these for a broken JSON EncryptionConfiguration (docs/kubernetes-behaviour.md §5.2 step 2, "couldn't get version/kind;
 * json parse error: …"). Unlike V8's JSON.parse messages they quote one character, never a snippet of
 * the file, so a key secret next to the error cannot leak.
 */
import {goQuote} from './format.js'

/** Go's quoteChar: the byte as a rune in single quotes, Go-escaped. */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`
  if (c === 0x22) return `'"'`
  return `'${goQuote(String.fromCharCode(c)).slice(1, -1)}'`
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
const isDigit = (c: number) => c >= 0x30 && c <= 0x39
const isHex = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)

type Container = 'objectKey' | 'objectValue' | 'arrayValue'
type State =
  | 'beginValue'
  | 'beginValueOrEmpty'
  | 'beginStringOrEmpty'
  | 'beginString'
  | 'endValue'
  | 'endTop'
  | 'string'
  | 'escape'
  | 'escapeU'
  | 'neg'
  | 'int'
  | 'zero'
  | 'dot'
  | 'dot0'
  | 'exp'
  | 'expSign'
  | 'exp0'
  | 'literal'

const MAX_DEPTH = 10_000

/**
 * Returns Go's syntax error for `bytes`, or undefined when Go's scanner accepts them. Like Go, bytes
 * inside strings are not checked for valid UTF-8.
 */
export function goJsonSyntaxError(bytes: Uint8Array): string | undefined {
  const stack: Container[] = []
  let state = 'beginValue' as State
  let literal = ''
  let literalAt = 0
  let escapeDigits = 0
  const error = (c: number, context: string) => `invalid character ${quoteChar(c)} ${context}`

  // One byte through the state machine; returns an error text or undefined. `endValue` may re-dispatch.
  const step = (c: number): string | undefined => {
    for (;;) {
      switch (state) {
        case 'beginValueOrEmpty':
          if (isSpace(c)) return undefined
          if (c === 0x5d) {
            state = 'endValue'
            continue
          }
          state = 'beginValue'
          continue
        case 'beginValue':
          if (isSpace(c)) return undefined
          switch (c) {
            case 0x7b: // {
              if (stack.length >= MAX_DEPTH) return 'exceeded max depth'
              stack.push('objectKey')
              state = 'beginStringOrEmpty'
              return undefined
            case 0x5b: // [
              if (stack.length >= MAX_DEPTH) return 'exceeded max depth'
              stack.push('arrayValue')
              state = 'beginValueOrEmpty'
              return undefined
            case 0x22:
              state = 'string'
              return undefined
            case 0x2d:
              state = 'neg'
              return undefined
            case 0x30:
              state = 'zero'
              return undefined
            case 0x74:
            case 0x66:
            case 0x6e:
              literal = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null'
              literalAt = 1
              state = 'literal'
              return undefined
          }
          if (c >= 0x31 && c <= 0x39) {
            state = 'int'
            return undefined
          }
          return error(c, 'looking for beginning of value')
        case 'beginStringOrEmpty':
          if (isSpace(c)) return undefined
          if (c === 0x7d) {
            stack[stack.length - 1] = 'objectValue'
            state = 'endValue'
            continue
          }
          state = 'beginString'
          continue
        case 'beginString':
          if (isSpace(c)) return undefined
          if (c === 0x22) {
            state = 'string'
            return undefined
          }
          return error(c, 'looking for beginning of object key string')
        case 'endValue': {
          const top = stack[stack.length - 1]
          if (top === undefined) {
            state = 'endTop'
            continue
          }
          if (isSpace(c)) return undefined
          if (top === 'objectKey') {
            if (c !== 0x3a) return error(c, 'after object key')
            stack[stack.length - 1] = 'objectValue'
            state = 'beginValue'
            return undefined
          }
          if (top === 'objectValue') {
            if (c === 0x2c) {
              stack[stack.length - 1] = 'objectKey'
              state = 'beginString'
              return undefined
            }
            if (c !== 0x7d) return error(c, 'after object key:value pair')
            stack.pop()
            state = 'endValue'
            return undefined
          }
          if (c === 0x2c) {
            state = 'beginValue'
            return undefined
          }
          if (c !== 0x5d) return error(c, 'after array element')
          stack.pop()
          state = 'endValue'
          return undefined
        }
        case 'endTop':
          return isSpace(c) ? undefined : error(c, 'after top-level value')
        case 'string':
          if (c === 0x22) state = 'endValue'
          else if (c === 0x5c) state = 'escape'
          else if (c < 0x20) return error(c, 'in string literal')
          return undefined
        case 'escape':
          if ([0x62, 0x66, 0x6e, 0x72, 0x74, 0x5c, 0x2f, 0x22].includes(c)) {
            state = 'string'
            return undefined
          }
          if (c === 0x75) {
            state = 'escapeU'
            escapeDigits = 0
            return undefined
          }
          return error(c, 'in string escape code')
        case 'escapeU':
          if (!isHex(c)) return error(c, 'in \\u hexadecimal character escape')
          if (++escapeDigits === 4) state = 'string'
          return undefined
        case 'neg':
          if (c === 0x30) state = 'zero'
          else if (c >= 0x31 && c <= 0x39) state = 'int'
          else return error(c, 'in numeric literal')
          return undefined
        case 'int':
          if (isDigit(c)) return undefined
          state = 'zero'
          continue
        case 'zero':
          if (c === 0x2e) {
            state = 'dot'
            return undefined
          }
          if (c === 0x65 || c === 0x45) {
            state = 'exp'
            return undefined
          }
          state = 'endValue'
          continue
        case 'dot':
          if (!isDigit(c)) return error(c, 'after decimal point in numeric literal')
          state = 'dot0'
          return undefined
        case 'dot0':
          if (isDigit(c)) return undefined
          if (c === 0x65 || c === 0x45) {
            state = 'exp'
            return undefined
          }
          state = 'endValue'
          continue
        case 'exp':
          if (c === 0x2b || c === 0x2d) {
            state = 'expSign'
            return undefined
          }
          state = 'expSign'
          continue
        case 'expSign':
          if (!isDigit(c)) return error(c, 'in exponent of numeric literal')
          state = 'exp0'
          return undefined
        case 'exp0':
          if (isDigit(c)) return undefined
          state = 'endValue'
          continue
        case 'literal': {
          const want = literal.charCodeAt(literalAt)
          if (c !== want) return error(c, `in literal ${literal} (expecting ${quoteChar(want)})`)
          if (++literalAt === literal.length) state = 'endValue'
          return undefined
        }
      }
    }
  }

  for (const c of bytes) {
    const problem = step(c)
    if (problem) return problem
  }
  // Go's eof(): a space ends a pending number; anything still open is truncated input.
  // An error from that space is Go's answer (e.g. `invalid character ' ' in literal true (expecting 'e')`).
  if (state === 'endTop') return undefined
  const last = step(0x20)
  if (last) return last
  return (state as State) === 'endTop' ? undefined : 'unexpected end of JSON input'
}
