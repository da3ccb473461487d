/**
 * KMS v2 envelope (docs/kubernetes-behaviour.md §3.6): a protobuf EncryptedObject whose encryptedData is
 * AES-256-GCM under the DEK (type 0) or under HKDF-Expand(seed, info) (type 1), AAD = etcd key.
 */
import {createHmac, createSecretKey, randomBytes} from 'node:crypto'

import {
  DEK_SOURCE_HKDF_SEED,
  type EncryptedObject,
  encodeEncryptedObject,
  parseEncryptedObject,
  validateAnnotations,
  validateEnvelopeFields,
} from '../../storage/kms-v2-object.js'
import {TRANSFORM_MESSAGES as M, TransformError, missingDekMessage} from '../transform-error.js'
import {aesAlgorithm} from './aes-cbc.js'
import {openGcm, sealGcm} from './aes-gcm.js'
import type {KmsService} from './kms-service.js'
import type {EnvelopeValidation, ValueCipher} from './value-cipher.js'

const INFO = 32

/** HKDF-Expand(SHA-256, PRK = seed, info, L = 32) = HMAC-SHA256(seed, info || 0x01) (docs/kubernetes-behaviour.md §3.6). */
export function deriveKmsV2Key(seed: Buffer, info: Buffer): Buffer {
  return createHmac('sha256', seed).update(info).update(ONE).digest()
}
const ONE = Buffer.from([1])

/** Prefix of the warning a value the apiserver refuses, but the offline reader decrypts, carries. */
export const APISERVER_WOULD_REFUSE = 'the apiserver would refuse this value: '

/**
 * Parses and validates, throwing the apiserver's text. With 'report', an annotation problem (not
 * covered by the AAD, docs/kubernetes-behaviour.md §3.6) is returned as a warning instead: the value still decrypts.
 */
export function decodeKmsV2(
  body: Buffer,
  validation: EnvelopeValidation = 'strict',
): {obj: EncryptedObject; warnings: string[]} {
  let obj: EncryptedObject
  try {
    obj = parseEncryptedObject(body)
  } catch (error) {
    throw new TransformError((error as Error).message)
  }
  const fatal = validateEnvelopeFields(obj)
  if (fatal) throw new TransformError(fatal)
  const annotations = validateAnnotations(obj)
  if (!annotations) return {obj, warnings: []}
  if (validation === 'strict') throw new TransformError(annotations)
  return {obj, warnings: [APISERVER_WOULD_REFUSE + annotations]}
}

export class KmsV2Cipher implements ValueCipher {
  private writeState?: {keyID: string; seed: Buffer; encrypted: Buffer; annotations: Map<string, Buffer>}

  constructor(
    private readonly name: string,
    private readonly kms: KmsService | undefined,
    private readonly validation: EnvelopeValidation = 'strict',
  ) {}

  decrypt(body: Buffer, aad: Buffer): {plaintext: Buffer; stale: boolean; warnings?: string[]} {
    const {obj, warnings} = decodeKmsV2(body, this.validation)
    if (!this.kms) {
      throw new TransformError(missingDekMessage(this.name))
    }
    let source: Buffer
    try {
      source = this.kms.decrypt({
        encryptedDEKSource: obj.encryptedDEKSource,
        keyID: obj.keyID,
        annotations: obj.annotations,
      })
    } catch (error) {
      throw new TransformError(`failed to decrypt DEK, error: ${(error as Error).message}`)
    }
    let plaintext: Buffer
    if (obj.encryptedDEKSourceType === DEK_SOURCE_HKDF_SEED) {
      if (obj.encryptedData.length < INFO) throw new TransformError(M.tooShort)
      const dek = deriveKmsV2Key(source, obj.encryptedData.subarray(0, INFO))
      plaintext = openGcm('aes-256-gcm', createSecretKey(dek), obj.encryptedData.subarray(INFO), aad)
    } else {
      plaintext = openGcm(aesAlgorithm('gcm', source.length), createSecretKey(source), obj.encryptedData, aad)
    }
    // Stale when the key ID or the source type is not what the provider writes now (from 1.29 always
    // the HKDF seed type); the key ID only counts when the plugin tells us the current one.
    const current = this.kms.currentKeyId?.()
    const stale =
      obj.encryptedDEKSourceType !== DEK_SOURCE_HKDF_SEED || (current !== undefined && current !== obj.keyID)
    return warnings.length > 0 ? {plaintext, stale, warnings} : {plaintext, stale}
  }

  encrypt(plaintext: Buffer, aad: Buffer): Buffer {
    const state = this.currentWriteState()
    const info = randomBytes(INFO)
    const dek = deriveKmsV2Key(state.seed, info)
    const sealed = sealGcm('aes-256-gcm', createSecretKey(dek), randomBytes(12), plaintext, aad)
    return encodeEncryptedObject({
      encryptedData: Buffer.concat([info, sealed]),
      keyID: state.keyID,
      encryptedDEKSource: state.encrypted,
      annotations: state.annotations,
      encryptedDEKSourceType: DEK_SOURCE_HKDF_SEED,
    })
  }

  /** One seed per process until the key ID changes (docs/kubernetes-behaviour.md §3.6). */
  private currentWriteState() {
    if (!this.kms?.encrypt)
      throw new TransformError(`failed to encrypt DEK, error: no KMS plugin for provider "${this.name}"`)
    const current = this.kms.currentKeyId?.()
    if (!this.writeState || (current !== undefined && current !== this.writeState.keyID)) {
      const seed = randomBytes(32)
      const response = this.kms.encrypt(seed)
      this.writeState = {
        seed,
        keyID: response.keyID,
        encrypted: response.ciphertext,
        annotations: response.annotations ?? new Map(),
      }
    }
    return this.writeState
  }
}
