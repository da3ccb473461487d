/**
 * secretbox (docs/kubernetes-behaviour.md §3.4): nonce(24) || Poly1305 tag(16) || XSalsa20 ciphertext; no AAD.
 * @noble/ciphers' xsalsa20poly1305 already emits NaCl's box layout (tag first), so the body after
 * the nonce is passed through as is.
 */
import {randomBytes} from 'node:crypto'

import {xsalsa20poly1305} from '@noble/ciphers/salsa.js'

import {TRANSFORM_MESSAGES as M, TransformError} from '../transform-error.js'
import type {ValueCipher} from './value-cipher.js'

const NONCE = 24
const OVERHEAD = 16

export class SecretboxCipher implements ValueCipher {
  private readonly key: Uint8Array

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new TransformError(`secretbox key must be 32 bytes, got ${key.length}`)
    this.key = Uint8Array.from(key)
  }

  decrypt(body: Buffer): {plaintext: Buffer; stale: boolean} {
    if (body.length < NONCE + OVERHEAD) throw new TransformError(M.tooShort)
    try {
      const opened = xsalsa20poly1305(this.key, body.subarray(0, NONCE)).decrypt(body.subarray(NONCE))
      return {plaintext: Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength), stale: false}
    } catch {
      throw new TransformError(M.secretboxAuth)
    }
  }

  encrypt(plaintext: Buffer): Buffer {
    const nonce = randomBytes(NONCE)
    const sealed = xsalsa20poly1305(this.key, nonce).encrypt(plaintext)
    return Buffer.concat([nonce, sealed])
  }
}
