import {describe, expect, it} from 'vitest'

import {formatGoDuration, goJson, goQuote, parseGoDuration} from '../../../src/encryption/gocompat/format.js'

describe('Go renderings', () => {
  it.each([
    ['plain', '"plain"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['tab\tnl\n', '"tab\\tnl\\n"'],
    ['\u0000\u007f', '"\\x00\\x7f"'],
    ['µs ü', '"µs ü"'],
    ['\u200b', '"\\u200b"'],
  ])('%j quotes as %s', (text, quoted) => {
    expect(goQuote(text)).toBe(quoted)
  })

  it('escapes <, > and & in JSON as Go does', () => {
    expect(goJson(['a<b>&'])).toBe('["a\\u003cb\\u003e\\u0026"]')
  })

  it.each([
    ['3s', 3_000_000_000n, '3s'],
    ['-1s', -1_000_000_000n, '-1s'],
    ['0', 0n, '0s'],
    ['1.5h', 5_400_000_000_000n, '1h30m0s'],
    ['90s', 90_000_000_000n, '1m30s'],
    ['1h2m3.5s', 3_723_500_000_000n, '1h2m3.5s'],
    ['500ms', 500_000_000n, '500ms'],
    ['1500us', 1_500_000n, '1.5ms'],
    ['2µs', 2_000n, '2µs'],
    ['7ns', 7n, '7ns'],
    ['.5s', 500_000_000n, '500ms'],
  ])('parses %j and prints it back as Go does', (text, nanos, printed) => {
    expect(parseGoDuration(text)).toEqual({nanos})
    expect(formatGoDuration(nanos)).toBe(printed)
  })

  it.each([
    ['', 'time: invalid duration ""'],
    ['3', 'time: missing unit in duration "3"'],
    ['3x', 'time: unknown unit "x" in duration "3x"'],
    ['s', 'time: invalid duration "s"'],
    ['99999999999h', 'time: invalid duration "99999999999h"'],
  ])('rejects %j', (text, error) => {
    expect(parseGoDuration(text)).toEqual({error})
  })
})
