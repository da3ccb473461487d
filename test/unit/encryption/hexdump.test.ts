import {execFileSync} from 'node:child_process'
import {randomBytes, randomInt} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {hexdump} from '../../../src/encryption/storage/hexdump.js'

const HEXDUMP = '/usr/bin/hexdump'
const SEPARATOR = '--- next ---'

/** The real tool's output for each buffer, from ONE shell process (cheap on a busy machine). */
function real(buffers: Buffer[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'hexdump-'))
  try {
    const files = buffers.map((buf, i) => {
      const path = join(dir, `${i}.bin`)
      writeFileSync(path, buf)
      return path
    })
    const script = `for f in "$@"; do ${HEXDUMP} -C "$f"; echo '${SEPARATOR}'; done`
    const out = execFileSync('/bin/sh', ['-c', script, 'sh', ...files], {
      env: {LC_ALL: 'C'},
      maxBuffer: 1 << 26,
    }).toString('latin1')
    return out.split(`${SEPARATOR}\n`).slice(0, buffers.length)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

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

// No skip when the tool is missing: scripts/bootstrap.sh installs it (Debian: bsdextrautils), and a
// parity test that silently does not run proves nothing.
it(`the real hexdump is installed at ${HEXDUMP} (scripts/bootstrap.sh: bsdextrautils)`, () => {
  expect(existsSync(HEXDUMP), `${HEXDUMP} is missing: run scripts/bootstrap.sh or apt-get install bsdextrautils`).toBe(
    true,
  )
})

describe('hexdump matches util-linux `hexdump -C` byte for byte', () => {
  it('on 0–700 byte buffers, with and without repeated lines', () => {
    const buffers = Array.from({length: 200}, (_, i) => sample(i))
    const expected = real(buffers)
    expect(expected).toHaveLength(buffers.length)
    for (const [i, buf] of buffers.entries())
      expect(hexdump(buf), `buffer ${i}: ${buf.toString('hex')}`).toBe(expected[i])
    expect(expected.filter((e) => e.includes('\n*\n')).length).toBeGreaterThan(10)
  })

  it('on edge cases: empty, a run ending the input, a partial line after a run, all byte values', () => {
    const cases = [
      Buffer.alloc(0),
      Buffer.alloc(64),
      Buffer.alloc(37),
      Buffer.concat([Buffer.alloc(32), Buffer.from('abc')]),
      Buffer.from(Array.from({length: 256}, (_, i) => i)),
      Buffer.concat([randomBytes(16), Buffer.alloc(48), randomBytes(16), Buffer.alloc(16)]),
      // lengths that are multiples of 16, random and all-repeated (one line, then `*`)
      randomBytes(16),
      randomBytes(32),
      randomBytes(704),
      Buffer.alloc(16, 0x41),
      Buffer.alloc(700, 0x41),
      Buffer.alloc(688),
      Buffer.concat(Array.from({length: 40}, () => Buffer.from('0123456789abcdef'))),
      // a run, then a partial line that repeats the start of the line before it
      Buffer.concat([Buffer.alloc(48, 7), Buffer.alloc(9, 7)]),
      // two different runs back to back
      Buffer.concat([Buffer.alloc(48, 1), Buffer.alloc(48, 2), Buffer.from('end')]),
    ]
    const expected = real(cases)
    for (const [i, buf] of cases.entries()) expect(hexdump(buf)).toBe(expected[i])
    expect(expected[0]).toBe('')
  })
})

it('prints nothing for empty input and a final offset line otherwise', () => {
  expect(hexdump(Buffer.alloc(0))).toBe('')
  expect(hexdump(Buffer.from('a'))).toBe('00000000  61                                                |a|\n00000001\n')
})
