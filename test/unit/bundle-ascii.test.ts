// scripts/bundle.ts writes the bundle in ASCII so that the loaders can read it as Latin-1: the
// escaped source must mean what the original meant.
import {runInNewContext} from 'node:vm'

import {describe, expect, it} from 'vitest'

import {asciiOnly} from '../../scripts/bundle.js'

describe('asciiOnly', () => {
  it('escapes every non-ASCII character, and strings, regular expressions and identifiers keep their meaning', () => {
    const source = [
      "const café = 'a § b ✓ 😀';",
      'const re = /[\u001b\u009b]x/g;',
      '// docs/kubernetes-behaviour.md §3.2',
      '({s: café, hit: re.test("\u009bx"), emoji: "😀".length})',
    ].join('\n')
    const escaped = asciiOnly(source)
    expect(escaped).toMatch(/^[\x00-\x7f]*$/)
    expect(Buffer.from(escaped, 'latin1').toString('utf8')).toBe(escaped)
    expect(runInNewContext(escaped)).toEqual(runInNewContext(source))
    expect(runInNewContext(escaped)).toEqual({s: 'a § b ✓ 😀', hit: true, emoji: 2})
  })

  it('fails the build on a raw template literal, whose text an escape would change', () => {
    expect(() => asciiOnly('String.raw`§`')).toThrow(/raw template literal/)
  })

  it('leaves an ASCII source as it is', () => {
    const source = "module.exports = {a: '\\u00a7'}\n"
    expect(asciiOnly(source)).toBe(source)
  })
})
