/**
 * aesgcm (docs/kubernetes-behaviour.md §3.3): nonce(12) || ciphertext || tag(16), AAD = the etcd key. Also the AEAD used
 * inside KMS v1 (≥ 1.25) and KMS v2 payloads (docs/kubernetes-behaviour.md §3.5, §3.6).
 */
import {
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto'

import {TRANSFORM_MESSAGES as M, TransformError} from '../transform-error.js'
import {aesAlgorithm} from './aes-cbc.js'
import type {ValueCipher} from './value-cipher.js'

const NONCE = 12
const TAG = 16

export class AesGcmCipher implements ValueCipher {
  private readonly key: KeyObject
  private readonly algorithm: string

  constructor(key: Uint8Array) {
    this.algorithm = aesAlgorithm('gcm', key.length)
    this.key = createSecretKey(key)
  }

  decrypt(body: Buffer, aad: Buffer): {plaintext: Buffer; stale: boolean} {
    return {plaintext: openGcm(this.algorithm, this.key, body, aad), stale: false}
  }

  encrypt(plaintext: Buffer, aad: Buffer): Buffer {
    return sealGcm(this.algorithm, this.key, randomBytes(NONCE), plaintext, aad)
  }
}

/** nonce || ciphertext || tag -> plaintext, with Go's error texts. */
export function openGcm(algorithm: string, key: KeyObject, body: Buffer, aad: Buffer): Buffer {
  if (body.length < NONCE) throw new TransformError(M.tooShort)
  // Go's AEAD.Open fails with the authentication error when the tag is missing too.
  if (body.length < NONCE + TAG) throw new TransformError(M.gcmAuth)
  const decipher = createDecipheriv(algorithm as CipherGCMTypes, key, body.subarray(0, NONCE), {authTagLength: TAG})
  decipher.setAAD(aad)
  decipher.setAuthTag(body.subarray(body.length - TAG))
  const head = decipher.update(body.subarray(NONCE, body.length - TAG))
  try {
    return Buffer.concat([head, decipher.final()])
  } catch {
    throw new TransformError(M.gcmAuth)
  }
}

export function sealGcm(algorithm: string, key: KeyObject, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv(algorithm as CipherGCMTypes, key, nonce, {authTagLength: TAG})
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([nonce, body, cipher.getAuthTag()])
}
