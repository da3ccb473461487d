import {createCipheriv, createDecipheriv, createSecretKey, randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {AesCbcCipher, CbcBlocks, decryptCbc} from '../../../src/encryption/transform/providers/aes-cbc.js'
import {TRANSFORM_MESSAGES as M} from '../../../src/encryption/transform/transform-error.js'

/** What a fresh AES-CBC context per value yields, without padding removal (the reference). */
function cbcReference(key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  const decipher = createDecipheriv(`aes-${key.length * 8}-cbc`, key, iv).setAutoPadding(false)
  return Buffer.concat([decipher.update(ciphertext), decipher.final()])
}

function outcome(fn: () => Buffer): string {
  try {
    return `ok:${fn().toString('hex')}`
  } catch (error) {
    return `error:${(error as Error).message}`
  }
}

describe('AES-CBC decryption with one ECB context per key (CbcBlocks)', () => {
  for (const size of [16, 24, 32]) {
    it(`gives exactly what a CBC context per value gives, AES-${size * 8}`, () => {
      const key = randomBytes(size)
      const blocks = new CbcBlocks(createSecretKey(key))
      // many values through the same context, of every block count up to 70, interleaved
      for (let n = 1; n <= 70; n++) {
        const iv = randomBytes(16)
        const ciphertext = randomBytes(16 * n)
        expect(blocks.decrypt({iv, ciphertext}).equals(cbcReference(key, iv, ciphertext))).toBe(true)
      }
    })
  }

  it('reads what it wrote, and a wrong key fails as the per-value path does (same text)', () => {
    const key = randomBytes(32)
    const right = new AesCbcCipher(key)
    const wrongKey = randomBytes(32)
    const wrong = new AesCbcCipher(wrongKey)
    for (let n = 0; n < 400; n++) {
      const plaintext = randomBytes(n)
      const body = right.encrypt(plaintext)
      expect(right.decrypt(body).plaintext.equals(plaintext)).toBe(true)
      expect(outcome(() => wrong.decrypt(body).plaintext)).toBe(
        outcome(() => decryptCbc('aes-256-cbc', createSecretKey(wrongKey), body)),
      )
    }
  })

  it('keeps the apiserver texts for malformed bodies', () => {
    const cipher = new AesCbcCipher(randomBytes(16))
    expect(outcome(() => cipher.decrypt(randomBytes(15)).plaintext)).toBe(`error:${M.tooShort}`)
    expect(outcome(() => cipher.decrypt(randomBytes(16)).plaintext)).toBe(`error:${M.invalidPkcs7Data}`)
    expect(outcome(() => cipher.decrypt(randomBytes(40)).plaintext)).toBe(`error:${M.notBlockMultiple}`)
    // a last byte of 0 is invalid data, a wrong padding byte before it invalid padding
    const key = randomBytes(16)
    const seal = (plain: Buffer) => {
      const iv = randomBytes(16)
      const c = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false)
      return Buffer.concat([iv, c.update(plain), c.final()])
    }
    const mine = new AesCbcCipher(key)
    expect(outcome(() => mine.decrypt(seal(Buffer.alloc(16, 0))).plaintext)).toBe(`error:${M.invalidPkcs7Data}`)
    expect(outcome(() => mine.decrypt(seal(Buffer.from('aaaaaaaaaaaaaa\x01\x02', 'latin1'))).plaintext)).toBe(
      `error:${M.invalidPkcs7Padding}`,
    )
    expect(mine.decrypt(seal(Buffer.from('aaaaaaaaaaaaaa\x02\x02', 'latin1'))).plaintext.toString()).toBe(
      'aaaaaaaaaaaaaa',
    )
  })
})

describe('CbcBlocks with ciphertexts at any offset and of growing sizes', () => {
  it('gives the reference plaintext whatever the alignment of the input', () => {
    const key = randomBytes(32)
    const blocks = new CbcBlocks(createSecretKey(key))
    for (const blocksCount of [1, 2, 5, 64, 3, 200, 1]) {
      for (let offset = 0; offset < 8; offset++) {
        const backing = randomBytes(16 + 16 * blocksCount + offset)
        const iv = backing.subarray(offset, offset + 16)
        const ciphertext = backing.subarray(offset + 16)
        expect(blocks.decrypt({iv, ciphertext}).equals(cbcReference(key, iv, ciphertext))).toBe(true)
      }
    }
  })
})
