import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {quoteCommand, quoteWord} from '../../../src/ssh/shell-quote.js'

describe('remote shell quoting', () => {
  const nasty = [
    "it's",
    'a b',
    '$(touch /tmp/pwned)',
    '`id`',
    '"q"',
    '\\',
    '*',
    '~',
    '',
    'x\ny',
    '; rm -rf /',
    '--',
    "''",
  ]

  it('round-trips every word through a real POSIX shell unchanged', () => {
    const script = `printf '%s\\0' ${quoteCommand(nasty)}`
    const out = execFileSync('/bin/sh', ['-c', script]).toString('utf8')
    expect(out.split('\0').slice(0, -1)).toEqual(nasty)
  })

  it('leaves plain words bare and quotes the rest', () => {
    expect(quoteWord('/etc/kubernetes/enc/enc.yaml')).toBe('/etc/kubernetes/enc/enc.yaml')
    expect(quoteWord('a b')).toBe("'a b'")
    expect(quoteWord('')).toBe("''")
  })

  it('refuses NUL and empty commands', () => {
    expect(() => quoteWord('a\0b')).toThrow(/NUL/)
    expect(() => quoteCommand([])).toThrow(/empty/)
  })
})
