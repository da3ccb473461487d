/**
 * `kubectl encryption config generate`: a new EncryptionConfiguration (a fresh key, or a KMS
 * provider), checked by the same validator as `config validate`, then printed or written to a 0600
 * file. Without a file the result is the configuration itself; with one, only how to recognise it.
 */
import {randomBytes} from 'node:crypto'

import {parseEncryptionConfig} from '../encryption/config/decode.js'
import {apiserverMessage} from '../encryption/config/errors.js'
import {generateConfig, generateKmsConfig, type KmsApiVersion} from '../encryption/config/generate.js'
import type {AesProviderType, EncryptionConfiguration} from '../encryption/config/model.js'
import {validateEncryptionConfig} from '../encryption/config/verdict.js'
import {usageError} from '../errors.js'
import {writePrivateFile} from '../state/private-file.js'

/** What `--output-file` reports: where the key went and how to recognise it, never the key. */
export interface GeneratedFileResult {
  file: string
  provider: AesProviderType
  keyName: string
  keySize: number
  fingerprint: string
  resources: string[]
  identityFallback: boolean
}

/** `--provider kms --output-file`: the file holds no key, only where the plugin listens. */
export interface GeneratedKmsFileResult {
  file: string
  provider: 'kms'
  kmsName: string
  endpoint: string
  apiVersion: KmsApiVersion
  timeout: string
  resources: string[]
  identityFallback: boolean
}

/** Without --output-file the result IS the configuration (the user asked for the key on stdout). */
export type GenerateResult =
  | {config: EncryptionConfiguration; text: string}
  | GeneratedFileResult
  | GeneratedKmsFileResult

export interface GenerateCommon {
  resources: string[]
  identityFallback: boolean
  /** --output-file; undefined: the result is the configuration. */
  file?: string
  /** Replace the file if it exists. */
  force: boolean
}

/** A config with a new key of `keySize` random bytes; warnings of the validator go to `warn`. */
export async function generateWithKey(
  options: GenerateCommon & {provider: AesProviderType; keyName: string; keySize: number},
  warn: (message: string) => void,
): Promise<GenerateResult> {
  const generated = generateConfig({
    provider: options.provider,
    keyName: options.keyName,
    key: randomBytes(options.keySize),
    resources: options.resources,
    identityFallback: options.identityFallback,
  })
  // The output must pass the validator; bad --resource or --key-name values are caught here.
  const parsed = parseEncryptionConfig(generated.text, options.file ?? '<stdout>')
  const check = parsed.config ? validateEncryptionConfig(parsed.config) : {errors: parsed.errors, warnings: []}
  if (check.errors.length > 0) {
    throw usageError(
      'GENERATED_CONFIG_INVALID',
      `the requested configuration would not load: ${apiserverMessage(check.errors)}`,
      {
        hint: "Fix --resource or --key-name (resources are lowercase plurals like 'secrets' or 'deployments.apps'). Nothing was written.",
      },
    )
  }
  for (const warning of check.warnings) warn(warning)

  const file = options.file
  if (!file) return {config: generated.config, text: generated.text}
  await writePrivateFile(file, generated.text, {force: options.force})
  return {
    file,
    provider: options.provider,
    keyName: generated.config.resources[0]?.providers[0]?.[options.provider]?.keys[0]?.name ?? '',
    keySize: options.keySize,
    fingerprint: generated.fingerprint,
    resources: generated.config.resources[0]?.resources ?? [],
    identityFallback: options.identityFallback,
  }
}

/** A config with a KMS provider (no key: it stays with the plugin); v1 is warned about. */
export async function generateWithKms(
  options: GenerateCommon & {name: string; endpoint: string; timeout: string; apiVersion: KmsApiVersion},
  warn: (message: string) => void,
): Promise<GenerateResult> {
  const {apiVersion} = options
  const generated = generateKmsConfig({
    name: options.name,
    endpoint: options.endpoint,
    timeout: options.timeout,
    apiVersion,
    resources: options.resources,
    identityFallback: options.identityFallback,
  })
  // v1 is validated as the apiserver would with --feature-gates=KMSv1=true: asking for it is the user's choice, warned below.
  const parsed = parseEncryptionConfig(generated.text, options.file ?? '<stdout>')
  const check = parsed.config
    ? validateEncryptionConfig(parsed.config, {featureGates: {KMSv1: apiVersion === 'v1'}})
    : {errors: parsed.errors, warnings: []}
  if (check.errors.length > 0) {
    throw usageError(
      'GENERATED_CONFIG_INVALID',
      `the requested configuration would not load: ${apiserverMessage(check.errors)}`,
      {
        hint: "Fix --resource or --kms-name (resources are lowercase plurals like 'secrets'; a KMS name has no ':'). Nothing was written.",
      },
    )
  }
  if (apiVersion === 'v1') {
    warn(
      'KMS v1 is deprecated and off by default since Kubernetes 1.29: the apiserver refuses this file unless it runs with --feature-gates=KMSv1=true. Prefer --kms-api-version v2.',
    )
  }
  for (const warning of check.warnings) if (!warning.includes('KMS v1')) warn(warning)

  const file = options.file
  if (!file) return generated
  await writePrivateFile(file, generated.text, {force: options.force})
  return {
    file,
    provider: 'kms',
    kmsName: options.name,
    endpoint: options.endpoint,
    apiVersion,
    timeout: options.timeout,
    resources: generated.config.resources[0]?.resources ?? [],
    identityFallback: options.identityFallback,
  }
}
