/**
 * KMS v1 envelope (docs/kubernetes-behaviour.md §3.5): u16be L || encrypted DEK (L) || payload, where the payload is
 * AES-256-GCM (AAD = etcd key, ≥ 1.25) or legacy AES-256-CBC (≤ 1.24, read as stale).
 */
import {createSecretKey, randomBytes} from 'node:crypto'

import {looksLikeSerializedObject} from '../../storage/plaintext-format.js'
import {TRANSFORM_MESSAGES as M, TransformError, missingDekMessage} from '../transform-error.js'
import {aesAlgorithm, decryptCbc} from './aes-cbc.js'
import {openGcm, sealGcm} from './aes-gcm.js'
import type {KmsService} from './kms-service.js'
import type {ValueCipher} from './value-cipher.js'

export interface KmsV1Parts {
  encryptedDEK: Buffer
  payload: Buffer
}

export function splitKmsV1(body: Buffer): KmsV1Parts {
  if (body.length < 2) throw new TransformError(M.kmsV1Length)
  const length = body.readUInt16BE(0)
  if (2 + length > body.length) throw new TransformError(M.kmsV1Length)
  return {encryptedDEK: body.subarray(2, 2 + length), payload: body.subarray(2 + length)}
}

export class KmsV1Cipher implements ValueCipher {
  constructor(
    private readonly name: string,
    private readonly kms: KmsService | undefined,
    /** Reject a legacy CBC result that does not look like a serialized object (docs/kubernetes-behaviour.md §14.3). */
    private readonly cbcPlausibilityCheck = true,
  ) {}

  decrypt(body: Buffer, aad: Buffer): {plaintext: Buffer; stale: boolean} {
    const {encryptedDEK, payload} = splitKmsV1(body)
    if (!this.kms) throw new TransformError(missingDekMessage(this.name))
    let dek: Buffer
    try {
      dek = this.kms.decrypt({encryptedDEKSource: encryptedDEK})
    } catch (error) {
      // KMS v1 returns the plugin's error unwrapped (unlike v2's `failed to decrypt DEK, error: %v`).
      throw new TransformError((error as Error).message)
    }
    const key = createSecretKey(dek)
    // GCM first, then the legacy CBC path, which reads as stale (docs/kubernetes-behaviour.md §3.5 step 3).
    const errors: TransformError[] = []
    try {
      return {plaintext: openGcm(aesAlgorithm('gcm', dek.length), key, payload, aad), stale: false}
    } catch (error) {
      errors.push(error as TransformError)
    }
    try {
      const plaintext = decryptCbc(aesAlgorithm('cbc', dek.length), key, payload)
      if (this.cbcPlausibilityCheck && !looksLikeSerializedObject(plaintext)) throw new TransformError(M.cbcImplausible)
      return {plaintext, stale: true}
    } catch (error) {
      errors.push(error as TransformError)
    }
    throw TransformError.aggregate(errors)
  }

  encrypt(plaintext: Buffer, aad: Buffer): Buffer {
    if (!this.kms?.encrypt)
      throw new TransformError(`failed to encrypt DEK, error: no KMS plugin for provider "${this.name}"`)
    const dek = randomBytes(32)
    const {ciphertext} = this.kms.encrypt(dek)
    if (ciphertext.length > 0xffff) throw new TransformError('encrypted DEK is too long for a uint16 length prefix')
    const length = Buffer.alloc(2)
    length.writeUInt16BE(ciphertext.length)
    const payload = sealGcm('aes-256-gcm', createSecretKey(dek), randomBytes(12), plaintext, aad)
    return Buffer.concat([length, ciphertext, payload])
  }
}
