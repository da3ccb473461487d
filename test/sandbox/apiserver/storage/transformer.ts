/**
 * How the store turns serialized objects into etcd values and back (spec §1–§4). The store only
 * sees this interface; the implementation built from `--encryption-provider-config` uses the
 * plugin's own codec (src/encryption), the one for "no config" is the bare identity check.
 */
export interface ReadResult {
  plaintext: Buffer
  /** spec §4.1: decides whether a no-op update must still be written (§4.2) */
  stale: boolean
}

export interface ValueTransformer {
  /** Throws TransformFailure with the transformer's own error text when nothing decrypts. */
  read(etcdKey: string, value: Buffer): Promise<ReadResult>
  write(etcdKey: string, plaintext: Buffer): Promise<Buffer>
}

export interface TransformerRegistry {
  /** The transformer for (group, resource) (spec §8.3); `resource` is the plural. */
  forResource(group: string, resource: string): ValueTransformer
}

export class TransformFailure extends Error {
  override name = 'TransformFailure'
}

const ENCRYPTED_PREFIX = Buffer.from('k8s:enc:')

/** Resources not covered by any config (spec §1): written unchanged, encrypted values refused. */
export const identityCheck: ValueTransformer = {
  async read(_key, value) {
    if (value.subarray(0, ENCRYPTED_PREFIX.length).equals(ENCRYPTED_PREFIX))
      throw new TransformFailure('identity transformer tried to read encrypted data')
    return {plaintext: value, stale: false}
  },
  async write(_key, plaintext) {
    return plaintext
  },
}

export const identityRegistry: TransformerRegistry = {
  forResource: () => identityCheck,
}

/** Holds the current registry; automatic reload swaps it atomically (spec §9 step 4). */
export class SwappableRegistry implements TransformerRegistry {
  constructor(private current: TransformerRegistry) {}

  swap(next: TransformerRegistry): void {
    this.current = next
  }

  forResource(group: string, resource: string): ValueTransformer {
    return this.current.forResource(group, resource)
  }
}
