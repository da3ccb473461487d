/**
 * Loading `--encryption-provider-config` into a TransformerRegistry (spec §5, §8). The loading and
 * validation and the transformers themselves are the plugin's own (src/encryption): the stand-in
 * must fail exactly where the plugin's validator says kube-apiserver fails.
 */
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import type {Metrics} from './metrics.js'
import {identityRegistry, type TransformerRegistry} from './storage/transformer.js'

export interface KmsProviderRef {
  name: string
  apiVersion: string
  endpoint: string
}

export interface LoadedEncryptionConfig {
  registry: TransformerRegistry
  /** `sha256:` + hex of the raw file bytes (spec §5.6) */
  hash: string
  kmsProviders: KmsProviderRef[]
}

export class ConfigLoadError extends Error {
  override name = 'ConfigLoadError'
}

export interface EncryptionBackend {
  load(path: string, options: {reload: boolean; metrics: Metrics; featureGates?: Record<string, boolean>}): Promise<LoadedEncryptionConfig>
}

export function configHash(raw: Buffer): string {
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`
}

/** Reads the file with the apiserver's read errors (spec §5.2 step 1). */
export async function readConfigFile(path: string): Promise<Buffer> {
  let raw: Buffer
  try {
    raw = await readFile(path)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const os = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message
    throw new ConfigLoadError(`error while loading file: error reading encryption provider configuration file "${path}": open ${path}: ${os}`)
  }
  if (raw.length === 0) throw new ConfigLoadError(`error while loading file: encryption provider configuration file "${path}" is empty`)
  return raw
}

/** Until the plugin's codec is wired in: every resource gets the bare identity check. */
export const identityBackend: EncryptionBackend = {
  async load(path) {
    const raw = await readConfigFile(path)
    return {registry: identityRegistry, hash: configHash(raw), kmsProviders: []}
  },
}
