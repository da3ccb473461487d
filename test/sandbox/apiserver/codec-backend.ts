/**
 * The encryption backend of the stand-in: the plugin's own config loader/validator
 * (src/encryption/load-config.ts) and value codec (src/encryption/resource-transformer.ts), so
 * the stand-in refuses exactly the files the plugin says kube-apiserver refuses, and reads and
 * writes values exactly as the plugin decrypts them. Adds the metrics of spec §11.1.
 */
import {PROVIDER_PREFIXES} from '../../../src/encryption/prefixes.js'
import {checkConfigFile} from '../../../src/encryption/load-config.js'
import {EncryptionTransformers, type ResourceTransformer} from '../../../src/encryption/resource-transformer.js'
import {TransformError} from '../../../src/encryption/transform-error.js'
import {ConfigLoadError, type EncryptionBackend, type KmsProviderRef} from './encryption.js'
import type {Metrics} from './metrics.js'
import {TransformFailure, type TransformerRegistry, type ValueTransformer} from './storage/transformer.js'

const KEYED: string[] = [PROVIDER_PREFIXES.aescbc, PROVIDER_PREFIXES.aesgcm, PROVIDER_PREFIXES.secretbox]

/** The provider-level and key-level prefixes a stored value carries (for failure samples). */
function prefixesOf(value: Buffer): {provider?: string; key?: string} {
  const text = value.subarray(0, 256).toString('latin1')
  for (const p of KEYED) {
    if (text.startsWith(p)) {
      const rest = text.slice(p.length)
      const colon = rest.indexOf(':')
      return {provider: p, key: colon > 0 ? rest.slice(0, colon + 1) : undefined}
    }
  }
  const kms = text.match(/^k8s:enc:kms:v[12]:[^:]+:/)
  return kms ? {provider: kms[0]} : {}
}

class MeteredTransformer implements ValueTransformer {
  constructor(
    private readonly inner: ResourceTransformer,
    private readonly resource: string,
    private readonly metrics: Metrics,
  ) {}

  async read(etcdKey: string, value: Buffer) {
    try {
      const result = this.inner.read(value, etcdKey)
      if (this.inner.covered) {
        if (result.provider === 'identity') this.metrics.transformation(this.resource, 'from_storage', 'identity')
        else if (result.keyName !== undefined) {
          const keyPrefix = `${result.keyName}:`
          this.metrics.transformation(this.resource, 'from_storage', result.prefix.slice(0, result.prefix.length - keyPrefix.length))
          this.metrics.transformation(this.resource, 'from_storage', keyPrefix)
        } else this.metrics.transformation(this.resource, 'from_storage', result.prefix)
      }
      return {plaintext: result.plaintext, stale: result.stale}
    } catch (err) {
      if (!(err instanceof TransformError)) throw err
      if (this.inner.covered) {
        const {provider, key} = prefixesOf(value)
        this.metrics.transformation(this.resource, 'from_storage', provider ?? 'unknown', provider ? 'unknown-non-grpc' : 'unknown-non-grpc')
        if (provider && KEYED.includes(provider)) this.metrics.transformation(this.resource, 'from_storage', key ?? 'unknown', 'unknown-non-grpc')
      }
      throw new TransformFailure(err.message)
    }
  }

  async write(etcdKey: string, plaintext: Buffer) {
    let out: Buffer
    try {
      out = this.inner.write(plaintext, etcdKey)
    } catch (err) {
      if (err instanceof TransformError) throw new TransformFailure(err.message)
      throw err
    }
    if (this.inner.covered) {
      const w = this.inner.writeProvider
      if (w.provider === 'identity') this.metrics.transformation(this.resource, 'to_storage', '')
      else if (w.provider === 'kms') this.metrics.transformation(this.resource, 'to_storage', prefixesOf(out).provider ?? 'unknown')
      else {
        this.metrics.transformation(this.resource, 'to_storage', PROVIDER_PREFIXES[w.provider])
        this.metrics.transformation(this.resource, 'to_storage', `${w.keyName}:`)
      }
    }
    return out
  }
}

export const codecBackend: EncryptionBackend = {
  async load(path, {reload, metrics, featureGates}) {
    const check = await checkConfigFile(path, {automaticReload: reload, featureGates})
    if (check.errors.length > 0 || !check.config || !check.hash) throw new ConfigLoadError(check.message)
    let transformers: EncryptionTransformers
    try {
      // the apiserver has no CBC plausibility guard (spec §3.2) and refuses KMS v2 annotation keys that are
      // not domain names (spec §3.6): behave like it
      transformers = new EncryptionTransformers(check.config, {cbcPlausibilityCheck: false, envelopeValidation: 'strict'})
    } catch (err) {
      throw new ConfigLoadError(`error while building transformers: ${(err as Error).message}`)
    }
    const registry: TransformerRegistry = {
      forResource(group, resource) {
        const name = group ? `${resource}.${group}` : resource
        return new MeteredTransformer(transformers.forResource({group, resource}), name, metrics)
      },
    }
    const kmsProviders: KmsProviderRef[] = []
    for (const entry of check.config.resources ?? [])
      for (const p of entry.providers ?? [])
        if (p.kms) kmsProviders.push({name: p.kms.name, apiVersion: p.kms.apiVersion ?? 'v1', endpoint: p.kms.endpoint})
    return {registry, hash: check.hash, kmsProviders}
  },
}
