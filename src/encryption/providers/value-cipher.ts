/**
 * One key of one provider: turns the body after the prefix into plaintext and back (spec §3).
 * `aad` is the etcd key bytes; only AEAD providers use it. Failures throw TransformError with the
 * apiserver's text.
 */
export interface ValueCipher {
  /** Returns the plaintext and whether the provider itself reports the value stale (KMS). */
  decrypt(body: Buffer, aad: Buffer): {plaintext: Buffer; stale: boolean}
  /** Returns the body to store after the prefix (fresh random IV/nonce). */
  encrypt(plaintext: Buffer, aad: Buffer): Buffer
}
