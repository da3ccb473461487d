/**
 * aescbc (docs/kubernetes-behaviour.md §3.2): IV(16) || AES-CBC(PKCS#7). No integrity, the etcd key is not used.
 * The padding is checked here rather than by OpenSSL so the error texts and their order are the
 * apiserver's.
 */
import {createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes} from 'node:crypto'

import {TRANSFORM_MESSAGES as M, TransformError} from '../transform-error.js'
import type {ValueCipher} from './value-cipher.js'

const BLOCK = 16

export function aesAlgorithm(mode: 'cbc' | 'gcm', keyLength: number): string {
  if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) {
    throw new TransformError(`crypto/aes: invalid key size ${keyLength}`)
  }
  return `aes-${keyLength * 8}-${mode}`
}

export class AesCbcCipher implements ValueCipher {
  private readonly key: KeyObject
  private readonly algorithm: string

  constructor(key: Uint8Array) {
    this.algorithm = aesAlgorithm('cbc', key.length)
    this.key = createSecretKey(key)
  }

  decrypt(body: Buffer): {plaintext: Buffer; stale: boolean} {
    return {plaintext: decryptCbc(this.algorithm, this.key, body), stale: false}
  }

  encrypt(plaintext: Buffer): Buffer {
    const iv = randomBytes(BLOCK)
    const cipher = createCipheriv(this.algorithm, this.key, iv)
    return Buffer.concat([iv, cipher.update(plaintext), cipher.final()])
  }
}

/** The CBC read path, shared with KMS v1's legacy payloads (docs/kubernetes-behaviour.md §3.5). */
export function decryptCbc(algorithm: string, key: KeyObject, body: Buffer): Buffer {
  if (body.length < BLOCK) throw new TransformError(M.tooShort)
  const ciphertext = body.subarray(BLOCK)
  if (ciphertext.length % BLOCK !== 0) throw new TransformError(M.notBlockMultiple)
  // An IV with no ciphertext would make the apiserver index an empty slice; treat it as unpadded data.
  if (ciphertext.length === 0) throw new TransformError(M.invalidPkcs7Data)
  const decipher = createDecipheriv(algorithm, key, body.subarray(0, BLOCK)).setAutoPadding(false)
  const result = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  const pad = result[result.length - 1]
  if (pad === 0 || pad > result.length) throw new TransformError(M.invalidPkcs7Data)
  const size = result.length - pad
  for (let i = size; i < result.length; i++) {
    if (result[i] !== pad) throw new TransformError(M.invalidPkcs7Padding)
  }
  return result.subarray(0, size)
}
