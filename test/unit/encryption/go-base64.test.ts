import {randomBytes} from 'node:crypto'
import {describe, expect, it} from 'vitest'

import {configHash, keyFingerprint} from '../../../src/encryption/fingerprint.js'
import {decodeGoBase64, encodeGoBase64} from '../../../src/encryption/gocompat/base64.js'

describe('decodeGoBase64 (docs/kubernetes-behaviour.md §6.4)', () => {
  it.each([
    ['padded 16 bytes', 'AAECAwQFBgcICQoLDA0ODw==', '000102030405060708090a0b0c0d0e0f'],
    ['one pad', 'YWJjZA8=', '616263640f'],
    ['no pad needed', 'YWJj', '616263'],
    ['empty', '', ''],
    ['CRLF inside is ignored', 'AAECAwQF\r\nBgcICQoL\nDA0ODw==\r\n', '000102030405060708090a0b0c0d0e0f'],
    ['non-zero trailing bits tolerated', 'YWJjZB==', '61626364'],
  ])('accepts %s', (_name, text, hex) => {
    expect(decodeGoBase64(text)?.toString('hex')).toBe(hex)
  })

  it.each([
    ['missing padding', 'AAECAwQFBgcICQoLDA0ODw'],
    ['URL-safe alphabet', 'AAECAwQFBgcICQoLDA0OD-_'],
    ['a space inside', 'AAEC AwQFBgcICQoLDA0ODw=='],
    ['a tab', 'AAECAwQF\tBgcICQoLDA0ODw=='],
    ['padding in the middle', 'YQ==YWJj'],
    ['three pad characters', 'Y==='],
    ['only padding', '===='],
    ['a stray non-alphabet character', 'YWJj!WJj'],
    ['trailing space', 'YWJj '],
  ])('rejects %s (Node would not)', (_name, text) => {
    expect(decodeGoBase64(text)).toBeUndefined()
  })

  it('round-trips random keys of every length with the encoder', () => {
    for (let n = 0; n < 64; n++) {
      const bytes = randomBytes(n)
      expect(decodeGoBase64(encodeGoBase64(bytes))?.equals(bytes)).toBe(true)
    }
  })
})

describe('fingerprints (docs/kubernetes-behaviour.md §5.6)', () => {
  it('hashes the raw file bytes for the config hash', () => {
    // sha256("") is well known.
    expect(configHash(Buffer.alloc(0))).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(configHash('a\n')).not.toBe(configHash('a'))
  })

  it('fingerprints the key bytes, not the base64 spelling', () => {
    const a = keyFingerprint('AAECAwQFBgcICQoLDA0ODw==')
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(keyFingerprint('AAECAwQFBgcI\nCQoLDA0ODw==')).toBe(a)
    expect(keyFingerprint('AAECAwQFBgcICQoLDA0ODw')).toBeUndefined()
  })
})
