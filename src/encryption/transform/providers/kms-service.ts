/**
 * What a KMS plugin does for the envelope providers (docs/kubernetes-behaviour.md §3.5, §3.6), synchronously. Offline we
 * never talk to a real plugin: the user supplies the plaintext DEK or seed (`--kms-dek`), and the
 * sandbox's stand-in can supply a fake that encrypts too.
 */
export interface KmsDecryptRequest {
  /** The encrypted DEK (v1) or encrypted DEK source (v2), as stored. */
  encryptedDEKSource: Buffer
  /** v2 only. */
  keyID?: string
  /** v2 only. */
  annotations?: Map<string, Buffer>
}

export interface KmsEncryptResponse {
  ciphertext: Buffer
  keyID: string
  annotations?: Map<string, Buffer>
}

export interface KmsService {
  /** The plaintext DEK (v1; v2 AES_GCM_KEY) or seed (v2 HKDF). Throws when it cannot. */
  decrypt(request: KmsDecryptRequest): Buffer
  /** The key ID the plugin currently writes with (v2 staleness); undefined when not known. */
  currentKeyId?(): string | undefined
  /** Encrypts a fresh DEK or seed; needed only for writes. */
  encrypt?(plaintext: Buffer): KmsEncryptResponse
}

/** A KmsService that answers every decrypt with one user-supplied DEK or seed (offline inspect). */
export class StaticDekKmsService implements KmsService {
  constructor(private readonly dek: Buffer) {}

  decrypt(): Buffer {
    return this.dek
  }
}
