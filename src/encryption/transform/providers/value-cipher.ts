/**
 * One key of one provider: turns the body after the prefix into plaintext and back (docs/kubernetes-behaviour.md §3).
 * `aad` is the etcd key bytes; only AEAD providers use it. Failures throw TransformError with the
 * apiserver's text.
 */
export interface ValueCipher {
  /**
   * Returns the plaintext, whether the provider itself reports the value stale (KMS), and warnings
   * about what the apiserver would refuse although the value decrypts ('report' validation).
   */
  decrypt(body: Buffer, aad: Buffer): {plaintext: Buffer; stale: boolean; warnings?: string[]}
  /** Returns the body to store after the prefix (fresh random IV/nonce). */
  encrypt(plaintext: Buffer, aad: Buffer): Buffer
}

/**
 * How a KMS v2 envelope that the apiserver refuses for a reason outside the ciphertext (annotation
 * keys, docs/kubernetes-behaviour.md §3.6) is read: 'strict' refuses it with the apiserver's text (the sandbox's API server
 * stand-in); 'report' decrypts it and returns a warning with that text (the plugin's offline reads).
 */
export type EnvelopeValidation = 'strict' | 'report'
