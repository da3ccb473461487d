/** Loads the golden vectors (test/fixtures/vectors, copied from the shared reference, spec §16). */
import {readFileSync} from 'node:fs'

import {parse} from 'yaml'

import type {EncryptionConfiguration} from '../../../src/encryption/config-model.js'

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
    config.resources[0].providers.unshift({kms: {apiVersion: v.kmsApiVersion, name: v.kmsName!, endpoint: 'unix:///tmp/kms.sock'}})
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
