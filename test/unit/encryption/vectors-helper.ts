/** Loads the golden vectors (test/fixtures/vectors, see its README and docs/kubernetes-behaviour.md §16). */
import {readFileSync} from 'node:fs'

import {parse} from 'yaml'

import type {EncryptionConfiguration} from '../../../src/encryption/config/model.js'

export interface Vector {
  id: string
  provider: string
  kmsApiVersion?: 'v1' | 'v2'
  keyName?: string
  kmsName?: string
  key?: string
  plaintext?: string | null
  etcdKey: string
  prefix?: string
  stored: string
  expect: string
  expectError?: string
  encryptedObject?: {keyID: string; annotations: Record<string, string>; encryptedDEKSourceType: number}
  /** KMS v2 KDF vectors: the seed (= key), the info bytes, and the DEK derived from them. */
  seed?: string
  info?: string
  derivedKey?: string
}

/**
 * Every spelling of key material a vector and its config carry (base64 and hex of each key, seed
 * and derived DEK): none may appear in anything the plugin prints.
 */
export function keyMaterialOf(v: Vector, config: EncryptionConfiguration = configFor(v)): string[] {
  const base64s = [v.key, v.seed, v.derivedKey].filter((x): x is string => Boolean(x))
  for (const entry of config.resources) {
    for (const provider of entry.providers) {
      for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const)
        for (const k of provider[type]?.keys ?? []) base64s.push(k.secret)
    }
  }
  return [...new Set(base64s.flatMap((s) => [s, b64(s).toString('hex')]))]
}

export const VECTORS_DIR = new URL('../../fixtures/vectors/', import.meta.url).pathname
export const vectors: Vector[] = JSON.parse(readFileSync(`${VECTORS_DIR}vectors.json`, 'utf8')).vectors
export const b64 = (s: string) => Buffer.from(s, 'base64')

export function vectorsConfig(): EncryptionConfiguration {
  return parse(readFileSync(`${VECTORS_DIR}encryption-config.yaml`, 'utf8')) as EncryptionConfiguration
}

/**
 * The vector's config: the shared file, with the vector's own key put in under its key name in its
 * provider where the file's key differs (the 24-byte K24 vectors as `key1`, the wrong-key negative),
 * and a KMS provider first for KMS vectors.
 */
export function configFor(v: Vector): EncryptionConfiguration {
  const config = vectorsConfig()
  if (v.provider === 'kms') {
    config.resources[0].providers.unshift({
      kms: {apiVersion: v.kmsApiVersion, name: v.kmsName!, endpoint: 'unix:///tmp/kms.sock'},
    })
    return config
  }
  if (v.provider === 'identity' || !v.key) return config
  const type = v.provider as 'aescbc' | 'aesgcm' | 'secretbox'
  for (const entry of config.resources) {
    for (const provider of entry.providers) {
      for (const k of provider[type]?.keys ?? []) if (k.name === v.keyName) k.secret = v.key
    }
  }
  return config
}

/**
 * The apiserver's exact error texts (docs/kubernetes-behaviour.md §3) a negative vector's `expectError` names, per vector:
 * a read must fail with one of them verbatim, not just with some substring of the prose.
 */
const NEGATIVE_TEXTS: Record<string, string[]> = {
  'aescbc-128-wrong-key-NEGATIVE': ['invalid padding on input', 'invalid PKCS7 data (empty or not padded)'],
  'aesgcm-256-wrong-etcdkey-NEGATIVE': ['cipher: message authentication failed'],
  'secretbox-tampered-NEGATIVE': ['output array was not large enough for encryption'],
}

export function apiserverErrorsFor(v: Vector): string[] {
  const texts = NEGATIVE_TEXTS[v.id]
  if (!texts) throw new Error(`no apiserver error text listed for the negative vector ${v.id}`)
  for (const text of texts)
    if (!v.expectError?.includes(text)) throw new Error(`${v.id}: expectError does not name ${JSON.stringify(text)}`)
  return texts
}
