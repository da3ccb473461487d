/**
 * The apiserver's value transformer for one (group, resource) (docs/kubernetes-behaviour.md §2): an ordered list of
 * (prefix, provider) entries, keyed providers with a second (prefix, key) level, the read algorithm
 * of §2.4 with its error collection, staleness as in §4.1, and writes with the first provider's
 * first key (§2.3). Resources the configuration does not cover get the bare identity check (§1).
 */
import type {EncryptionConfiguration, GroupResource, ProviderSpec, ProviderType} from '../config/model.js'
import {groupResourceForKey, type EtcdKeyOptions} from '../storage/etcd-key.js'
import {decodeGoBase64} from '../gocompat/base64.js'
import {looksLikeSerializedObject} from '../storage/plaintext-format.js'
import {ENCRYPTED_MARKER, PROVIDER_PREFIXES, startsWith} from '../storage/prefixes.js'
import {AesCbcCipher} from './providers/aes-cbc.js'
import {AesGcmCipher} from './providers/aes-gcm.js'
import type {KmsService} from './providers/kms-service.js'
import {KmsV1Cipher} from './providers/kms-v1.js'
import {KmsV2Cipher} from './providers/kms-v2.js'
import {SecretboxCipher} from './providers/secretbox.js'
import type {EnvelopeValidation, ValueCipher} from './providers/value-cipher.js'
import {buildResourceMap, lookupProviders, type ProviderLookup} from '../config/resource-match.js'
import {TRANSFORM_MESSAGES as M, TransformError} from './transform-error.js'

export interface ReadResult {
  plaintext: Buffer
  /** The apiserver would rewrite this value on the next update (docs/kubernetes-behaviour.md §4.1). */
  stale: boolean
  provider: ProviderType
  keyName?: string
  kmsName?: string
  /** The full stored prefix that matched (provider plus key), '' for identity. */
  prefix: string
  /**
   * Only with `envelopeValidation: 'report'`: what the apiserver would refuse about a value that
   * decrypts anyway (`the apiserver would refuse this value: <apiserver text>`).
   */
  warnings?: string[]
}

export interface TransformerOptions {
  /** KMS services by provider name; without one a KMS value cannot be decrypted (its structure still parses). */
  kms?: Record<string, KmsService | undefined>
  /**
   * Offline guard against CBC false positives (docs/kubernetes-behaviour.md §3.2, §14.3): accept an aescbc or legacy KMS v1
   * CBC decryption only if the plaintext looks like a serialized object. Default true; the
   * apiserver itself has no such check (the stand-in turns it off to behave like it).
   */
  cbcPlausibilityCheck?: boolean
  /**
   * KMS v2 envelopes with invalid annotations (docs/kubernetes-behaviour.md §3.6): 'report' (default, the plugin's offline
   * reads) decrypts them and returns a warning; 'strict' refuses them as the apiserver does (the
   * stand-in). Other envelope problems fail in both modes.
   */
  envelopeValidation?: EnvelopeValidation
}

/** Raised when a configuration cannot be turned into transformers (bad key bytes, unknown provider). */
export class TransformerBuildError extends Error {
  override name = 'TransformerBuildError'
}

interface KeyEntry {
  name: string
  prefix: Buffer
  cipher: ValueCipher
}

interface ProviderEntry {
  type: ProviderType
  prefix: Buffer
  /** aescbc, aesgcm, secretbox */
  keys?: KeyEntry[]
  /** kms */
  kmsName?: string
  cipher?: ValueCipher
}

export class ResourceTransformer {
  private constructor(
    /** undefined: the resource is not covered by the configuration (bare identity check). */
    private readonly entries: ProviderEntry[] | undefined,
    /** The configuration rule that selected this list (`secrets`, `*.apps`, `*.*`), if any. */
    readonly rule: string | undefined,
    private readonly cbcCheck: boolean,
  ) {}

  /** The transformer for resources the configuration does not cover (docs/kubernetes-behaviour.md §1, §8.3 step 4). */
  static uncovered(): ResourceTransformer {
    return new ResourceTransformer(undefined, undefined, false)
  }

  /** Builds from a provider list (already selected for the resource, docs/kubernetes-behaviour.md §8.3). */
  static fromProviders(
    providers: ProviderSpec[],
    rule: string | undefined,
    options: TransformerOptions = {},
    path = 'providers',
  ) {
    const entries = providers.map((spec, j) => buildEntry(spec, `${path}[${j}]`, options))
    return new ResourceTransformer(entries, rule, options.cbcPlausibilityCheck ?? true)
  }

  /**
   * Every provider of every entry in file order, whatever resource it is for (docs/kubernetes-behaviour.md §14.2): to find
   * which key opens a value whose etcd key or resource mapping is unknown. Not what the apiserver
   * does (§2.5: no fallthrough between entries), so staleness means nothing here.
   */
  static everyProvider(config: EncryptionConfiguration, options: TransformerOptions = {}) {
    const entries = config.resources.flatMap((entry, i) =>
      (entry.providers ?? []).map((spec, j) => buildEntry(spec, `resources[${i}].providers[${j}]`, options)),
    )
    return new ResourceTransformer(entries, undefined, options.cbcPlausibilityCheck ?? true)
  }

  get covered(): boolean {
    return this.entries !== undefined
  }

  /** The provider values are written with (the first one), 'identity' when uncovered. */
  get writeProvider(): {provider: ProviderType; keyName?: string; kmsName?: string} {
    const first = this.entries?.[0]
    if (!first) return {provider: 'identity'}
    return {provider: first.type, keyName: first.keys?.[0]?.name, kmsName: first.kmsName}
  }

  /** The read algorithm of docs/kubernetes-behaviour.md §2.4. Throws TransformError with the apiserver's text. */
  read(stored: Buffer, etcdKey: string | Buffer): ReadResult {
    if (!this.entries) {
      if (startsWith(stored, ENCRYPTED_MARKER)) throw new TransformError(M.identityEncrypted)
      return {plaintext: stored, stale: false, provider: 'identity', prefix: ''}
    }
    const aad = typeof etcdKey === 'string' ? Buffer.from(etcdKey, 'utf8') : etcdKey
    const errors: TransformError[] = []
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i]
      if (!startsWith(stored, entry.prefix)) continue
      if (entry.type === 'identity') {
        // identity always matches; its failure on encrypted data is skipped, not recorded.
        if (startsWith(stored, ENCRYPTED_MARKER)) continue
        return {plaintext: stored, stale: i !== 0, provider: 'identity', prefix: ''}
      }
      const body = stored.subarray(entry.prefix.length)
      try {
        if (entry.keys) return this.readKeyed(entry, body, aad, i !== 0)
        const {plaintext, stale, warnings} = entry.cipher!.decrypt(body, aad)
        const result: ReadResult = {
          plaintext,
          stale: stale || i !== 0,
          provider: 'kms',
          kmsName: entry.kmsName,
          prefix: entry.prefix.toString(),
        }
        if (warnings?.length) result.warnings = warnings
        return result
      } catch (error) {
        if (!(error instanceof TransformError)) throw error
        errors.push(error)
      }
    }
    if (errors.length > 0) throw TransformError.aggregate(errors)
    throw new TransformError(M.noMatchingPrefix)
  }

  private readKeyed(entry: ProviderEntry, body: Buffer, aad: Buffer, notFirstProvider: boolean): ReadResult {
    const errors: TransformError[] = []
    const keys = entry.keys!
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j]
      if (!startsWith(body, key.prefix)) continue
      try {
        const {plaintext} = key.cipher.decrypt(body.subarray(key.prefix.length), aad)
        if (entry.type === 'aescbc' && this.cbcCheck && !looksLikeSerializedObject(plaintext)) {
          throw new TransformError(M.cbcImplausible)
        }
        return {
          plaintext,
          stale: notFirstProvider || j !== 0,
          provider: entry.type,
          keyName: key.name,
          prefix: entry.prefix.toString() + key.prefix.toString(),
        }
      } catch (error) {
        if (!(error instanceof TransformError)) throw error
        errors.push(error)
      }
    }
    if (errors.length > 0) throw TransformError.aggregate(errors)
    throw new TransformError(entry.type === 'secretbox' ? M.noSecretboxKey : M.noAesKey)
  }

  /** The write algorithm of docs/kubernetes-behaviour.md §2.3: first provider, first key, fresh IV/nonce. */
  write(plaintext: Buffer, etcdKey: string | Buffer): Buffer {
    const first = this.entries?.[0]
    if (!first || first.type === 'identity') return plaintext
    const aad = typeof etcdKey === 'string' ? Buffer.from(etcdKey, 'utf8') : etcdKey
    if (first.keys) {
      const key = first.keys[0]
      return Buffer.concat([first.prefix, key.prefix, key.cipher.encrypt(plaintext, aad)])
    }
    return Buffer.concat([first.prefix, first.cipher!.encrypt(plaintext, aad)])
  }
}

function buildEntry(spec: ProviderSpec, path: string, options: TransformerOptions): ProviderEntry {
  if (spec.identity !== undefined && spec.identity !== null) return {type: 'identity', prefix: Buffer.alloc(0)}
  for (const type of ['aesgcm', 'aescbc', 'secretbox'] as const) {
    const keyed = spec[type]
    if (!keyed) continue
    const keys = (keyed.keys ?? []).map((k, index) => {
      const bytes = decodeGoBase64(k.secret ?? '')
      const where = `${path}.${type}.keys[${index}].secret`
      if (!bytes) throw new TransformerBuildError(`${where}: Invalid value: "REDACTED": secrets must be base64 encoded`)
      const allowed = type === 'secretbox' ? [32] : [16, 24, 32]
      if (!allowed.includes(bytes.length)) {
        throw new TransformerBuildError(
          `${where}: Invalid value: "REDACTED": secret is not of the expected length, got ${bytes.length}, expected one of [${allowed.join(' ')}]`,
        )
      }
      const cipher =
        type === 'aescbc'
          ? new AesCbcCipher(bytes)
          : type === 'aesgcm'
            ? new AesGcmCipher(bytes)
            : new SecretboxCipher(bytes)
      return {name: k.name, prefix: Buffer.from(`${k.name}:`, 'utf8'), cipher}
    })
    if (keys.length === 0)
      throw new TransformerBuildError(`${path}.${type}.keys: Required value: at least one keys is required`)
    return {type, prefix: Buffer.from(PROVIDER_PREFIXES[type]), keys}
  }
  if (spec.kms) {
    const {name} = spec.kms
    const v2 = (spec.kms.apiVersion ?? 'v1') === 'v2'
    const service = options.kms?.[name]
    return {
      type: 'kms',
      kmsName: name,
      prefix: Buffer.from(`${v2 ? PROVIDER_PREFIXES.kmsV2 : PROVIDER_PREFIXES.kmsV1}${name}:`, 'utf8'),
      cipher: v2
        ? new KmsV2Cipher(name, service, options.envelopeValidation ?? 'report')
        : new KmsV1Cipher(name, service, options.cbcPlausibilityCheck ?? true),
    }
  }
  throw new TransformerBuildError(
    `${path}: Invalid value: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity`,
  )
}

/**
 * All transformers of one configuration, cached per (group, resource): what the apiserver builds
 * at start-up (docs/kubernetes-behaviour.md §8.2–8.3). `forKey` maps an etcd key to its resource first (docs/kubernetes-behaviour.md §12.4).
 */
export class EncryptionTransformers {
  private readonly map: Map<string, ProviderLookup>
  private readonly cache = new Map<string, ResourceTransformer>()

  constructor(
    private readonly config: Pick<EncryptionConfiguration, 'resources'> | undefined,
    private readonly options: TransformerOptions = {},
  ) {
    this.map = config ? buildResourceMap(config) : new Map()
    // Build every list once so bad keys fail here, not on the first read.
    for (const [i, entry] of (config?.resources ?? []).entries()) {
      ResourceTransformer.fromProviders(
        entry.providers ?? [],
        undefined,
        {...options, kms: {}},
        `resources[${i}].providers`,
      )
    }
  }

  forResource(gr: GroupResource): ResourceTransformer {
    const cacheKey = `${gr.group}\u0000${gr.resource}`
    let transformer = this.cache.get(cacheKey)
    if (!transformer) {
      const lookup = this.config ? lookupProviders(this.config, gr, this.map) : undefined
      transformer = lookup
        ? ResourceTransformer.fromProviders(lookup.providers, lookup.rule, this.options)
        : ResourceTransformer.uncovered()
      this.cache.set(cacheKey, transformer)
    }
    return transformer
  }

  forKey(etcdKey: string, keyOptions?: EtcdKeyOptions): ResourceTransformer {
    return this.forResource(groupResourceForKey(etcdKey, keyOptions))
  }
}
