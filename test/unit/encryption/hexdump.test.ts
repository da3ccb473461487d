import {execFileSync} from 'node:child_process'
import {randomBytes, randomInt} from 'node:crypto'
import {existsSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {hexdump} from '../../../src/encryption/hexdump.js'

const HEXDUMP = '/usr/bin/hexdump'
const real = (buf: Buffer) => execFileSync(HEXDUMP, ['-C'], {input: buf, env: {LC_ALL: 'C'}}).toString('latin1')

/** Random buffers, some built from repeated 16-byte lines so `*` runs appear. */
function sample(i: number): Buffer {
  const length = i < 40 ? i : randomInt(0, 701)
  if (i % 3 !== 0) return randomBytes(length)
  const line = i % 2 === 0 ? Buffer.alloc(16) : randomBytes(16)
  const parts: Buffer[] = []
  let size = 0
  while (size < length) {
    const part = randomInt(0, 4) === 0 ? randomBytes(randomInt(1, 40)) : line
    parts.push(part)
    size += part.length
  }
  return Buffer.concat(parts).subarray(0, length)
}

describe.skipIf(!existsSync(HEXDUMP))('hexdump matches util-linux `hexdump -C` byte for byte', () => {
  it('on 0–700 byte buffers, with and without repeated lines', () => {
    let starred = 0
    for (let i = 0; i < 160; i++) {
      const buf = sample(i)
      const expected = real(buf)
      if (expected.includes('\n*\n')) starred++
      expect(hexdump(buf), `buffer ${i}: ${buf.toString('hex')}`).toBe(expected)
    }
    expect(starred).toBeGreaterThan(10)
  })

  it('on edge cases: empty, a run ending the input, a partial line after a run, all byte values', () => {
    const cases = [
      Buffer.alloc(0),
      Buffer.alloc(64),
      Buffer.alloc(37),
      Buffer.concat([Buffer.alloc(32), Buffer.from('abc')]),
      Buffer.from(Array.from({length: 256}, (_, i) => i)),
      Buffer.concat([randomBytes(16), Buffer.alloc(48), randomBytes(16), Buffer.alloc(16)]),
    ]
    for (const buf of cases) expect(hexdump(buf)).toBe(real(buf))
  })
})

it('prints nothing for empty input and a final offset line otherwise', () => {
  expect(hexdump(Buffer.alloc(0))).toBe('')
  expect(hexdump(Buffer.from('a'))).toBe('00000000  61                                                |a|\n00000001\n')
})
