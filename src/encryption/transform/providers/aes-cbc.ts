/**
 * aescbc (docs/kubernetes-behaviour.md §3.2): IV(16) || AES-CBC(PKCS#7). No integrity, the etcd key is not used.
 * The padding is checked here rather than by OpenSSL so the error texts and their order are the
 * apiserver's.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type Decipher,
  type KeyObject,
  randomBytes,
} from 'node:crypto'

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
  private blocks?: CbcBlocks

  constructor(key: Uint8Array) {
    this.algorithm = aesAlgorithm('cbc', key.length)
    this.key = createSecretKey(key)
  }

  decrypt(body: Buffer): {plaintext: Buffer; stale: boolean} {
    this.blocks ??= new CbcBlocks(this.key)
    return {plaintext: unpadCbc(this.blocks.decrypt(cbcParts(body))), stale: false}
  }

  encrypt(plaintext: Buffer): Buffer {
    const iv = randomBytes(BLOCK)
    const cipher = createCipheriv(this.algorithm, this.key, iv)
    return Buffer.concat([iv, cipher.update(plaintext), cipher.final()])
  }
}

/** The IV and the ciphertext of `IV || ciphertext`, with the apiserver's errors for bad lengths. */
function cbcParts(body: Buffer): {iv: Buffer; ciphertext: Buffer} {
  if (body.length < BLOCK) throw new TransformError(M.tooShort)
  const ciphertext = body.subarray(BLOCK)
  if (ciphertext.length % BLOCK !== 0) throw new TransformError(M.notBlockMultiple)
  // An IV with no ciphertext would make the apiserver index an empty slice; treat it as unpadded data.
  if (ciphertext.length === 0) throw new TransformError(M.invalidPkcs7Data)
  return {iv: body.subarray(0, BLOCK), ciphertext}
}

/** Strips PKCS#7 padding, checked as the apiserver checks it (its texts, in its order). */
function unpadCbc(result: Buffer): Buffer {
  const pad = result[result.length - 1]
  if (pad === 0 || pad > result.length) throw new TransformError(M.invalidPkcs7Data)
  const size = result.length - pad
  for (let i = size; i < result.length; i++) {
    if (result[i] !== pad) throw new TransformError(M.invalidPkcs7Padding)
  }
  return result.subarray(0, size)
}

/**
 * CBC decryption of many values under one key with a single AES-ECB context: CBC's plaintext
 * block i is D(C_i) xor C_(i-1), with C_0 the IV, so one ECB pass over the ciphertext and an XOR
 * give exactly what a fresh CBC context per value gives, without building (and freeing) an OpenSSL
 * context per value, which is most of the cost for ~1 KiB values. ECB keeps no state between
 * blocks, and without padding every whole block put in comes out at once, so the context is reused.
 */
export class CbcBlocks {
  private readonly ecb: Decipher

  constructor(key: KeyObject) {
    this.ecb = createDecipheriv(`aes-${key.symmetricKeySize! * 8}-ecb`, key, null).setAutoPadding(false)
  }

  /** The padded plaintext; `ciphertext` is a non-empty multiple of the block size. */
  decrypt({iv, ciphertext}: {iv: Buffer; ciphertext: Buffer}): Buffer {
    const out = this.ecb.update(ciphertext)
    if (out.length !== ciphertext.length)
      throw new Error(`AES-ECB returned ${out.length} bytes for ${ciphertext.length}`)
    for (let i = 0; i < BLOCK; i++) out[i] ^= iv[i]
    for (let i = BLOCK; i < out.length; i++) out[i] ^= ciphertext[i - BLOCK]
    return out
  }
}

/** The CBC read path with a context of its own, for KMS v1's legacy payloads (one DEK per value, docs/kubernetes-behaviour.md §3.5). */
export function decryptCbc(algorithm: string, key: KeyObject, body: Buffer): Buffer {
  const {iv, ciphertext} = cbcParts(body)
  const decipher = createDecipheriv(algorithm, key, iv).setAutoPadding(false)
  return unpadCbc(Buffer.concat([decipher.update(ciphertext), decipher.final()]))
}
