/**
 * The error a value transformer raises, carrying the apiserver's own text (docs/kubernetes-behaviour.md §2.4, §4.3).
 *
 * Errors collected along the prefix chain behave like the apiserver's error aggregate: nested
 * aggregates are flattened, duplicate messages removed, one distinct message is printed as-is and
 * several as `[msg1, msg2]`.
 */
export class TransformError extends Error {
  override name = 'TransformError'

  /** The distinct leaf messages, in the order they were first seen. */
  readonly messages: readonly string[]

  constructor(messages: string | readonly string[]) {
    const list = typeof messages === 'string' ? [messages] : dedupe(messages)
    super(list.length === 1 ? list[0] : `[${list.join(', ')}]`)
    this.messages = list
  }

  /** Aggregates several errors as the apiserver does; a single error is returned unchanged. */
  static aggregate(errors: readonly TransformError[]): TransformError {
    if (errors.length === 1) return errors[0]
    return new TransformError(errors.flatMap((e) => e.messages))
  }
}

function dedupe(messages: readonly string[]): string[] {
  return [...new Set(messages)]
}

/** The literal texts of docs/kubernetes-behaviour.md §2–§3. */
export const TRANSFORM_MESSAGES = {
  noMatchingPrefix: 'no matching prefix found',
  identityEncrypted: 'identity transformer tried to read encrypted data',
  noAesKey: 'no matching key was found for the provided AES transformer',
  noSecretboxKey: 'no matching key was found for the provided Secretbox transformer',
  tooShort: 'the stored data was shorter than the required size',
  notBlockMultiple: 'the stored data is not a multiple of the block size',
  invalidPkcs7Data: 'invalid PKCS7 data (empty or not padded)',
  invalidPkcs7Padding: 'invalid padding on input',
  gcmAuth: 'cipher: message authentication failed',
  secretboxAuth: 'output array was not large enough for encryption',
  kmsV1Length: 'invalid data encountered by envelope transformer: failed to read uint16 length prefixed data',
  /** Ours, not the apiserver's: the offline CBC false-positive guard (docs/kubernetes-behaviour.md §3.2, §14.3). */
  cbcImplausible: 'decrypted data is not a serialized object (wrong key?)',
} as const

/**
 * Ours: a KMS value met without a KMS plugin or a user-supplied DEK/seed (offline). Worded like
 * the apiserver's `failed to decrypt DEK, error: %v` so it reads naturally in joined errors.
 */
const MISSING_DEK = 'no DEK or seed available offline for KMS provider'
export const missingDekMessage = (name: string) =>
  `failed to decrypt DEK, error: ${MISSING_DEK} ${JSON.stringify(name)}`
export const isMissingDek = (message: string) => message.includes(MISSING_DEK)
