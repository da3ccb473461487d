import {Flags} from '@oclif/core'

import {
  allowedKeySizes,
  DEFAULT_KMS_NAME,
  DEFAULT_KMS_TIMEOUT,
  DEFAULT_PROVIDER,
  defaultKeyName,
  GENERATED_PROVIDERS,
  type KmsApiVersion,
  kmsEndpointProblem,
} from '../encryption/config/generate.js'
import type {AesProviderType} from '../encryption/config/model.js'
import {parseGoDuration} from '../encryption/gocompat/format.js'
import {usageError} from '../errors.js'
import {checkResourceFlags} from './resource-names.js'

export const generateFlags = {
  provider: Flags.option({
    description: 'Encrypting provider (default secretbox; see the description). kms needs --kms-endpoint.',
    options: [...GENERATED_PROVIDERS, 'kms'],
    default: DEFAULT_PROVIDER,
  })(),
  // No oclif default: a --key-size given with --provider kms must be refused, not silently ignored.
  'key-size': Flags.integer({
    description: 'Key size in bytes: 16, 24 or 32 for aescbc/aesgcm; 32 for secretbox (default 32).',
  }),
  resource: Flags.string({
    description:
      "Resource to encrypt: 'secrets', 'deployments.apps', '*.' (core group), '*.apps', '*.*'; repeatable. Default: secrets.",
    multiple: true,
  }),
  'key-name': Flags.string({
    description: 'Name of the key (default key-<UTC timestamp>, e.g. key-20260101T120000Z).',
  }),
  'identity-fallback': Flags.boolean({
    description: 'Append identity: {} after the key, so unencrypted objects stay readable during the first rewrite.',
    default: false,
  }),
  'output-file': Flags.string({
    description: 'Write the configuration to this file (created with mode 0600) instead of stdout.',
  }),
  force: Flags.boolean({description: 'Replace --output-file if it exists (atomically, mode 0600).', default: false}),
  'kms-name': Flags.string({
    description: `With --provider kms: the provider's name, part of every stored value's prefix (default ${DEFAULT_KMS_NAME}).`,
  }),
  'kms-endpoint': Flags.string({
    description:
      'With --provider kms (required): the plugin socket as the apiserver sees it, unix:///absolute/path.sock.',
  }),
  'kms-timeout': Flags.string({
    description: `With --provider kms: how long the apiserver waits for the plugin, a Go duration (default ${DEFAULT_KMS_TIMEOUT}).`,
  }),
  'kms-api-version': Flags.option({
    description: 'With --provider kms: the KMS API (default v2; v1 is off by default since Kubernetes 1.29).',
    options: ['v2', 'v1'] as const,
  })(),
}

const KMS_FLAGS = ['kms-name', 'kms-endpoint', 'kms-timeout', 'kms-api-version'] as const

interface GenerateFlagValues {
  provider: string
  'key-size'?: number
  'key-name'?: string
  resource?: string[]
  'identity-fallback': boolean
  'output-file'?: string
  force: boolean
  'kms-name'?: string
  'kms-endpoint'?: string
  'kms-timeout'?: string
  'kms-api-version'?: KmsApiVersion
}

function common(flags: GenerateFlagValues) {
  return {
    resources: flags.resource ?? ['secrets'],
    identityFallback: flags['identity-fallback'],
    file: flags['output-file'],
    force: flags.force,
  }
}

function refuseForceWithoutFile(flags: GenerateFlagValues): void {
  if (flags.force && !flags['output-file']) {
    throw usageError('FORCE_WITHOUT_FILE', '--force only applies with --output-file.', {
      hint: 'Add --output-file FILE or drop --force.',
    })
  }
}

/** The flags of a generated key (secretbox, aesgcm, aescbc), checked: usage errors, exit 2. */
export function keyGenerateOptions(flags: GenerateFlagValues) {
  const kmsFlag = KMS_FLAGS.find((f) => flags[f] !== undefined)
  if (kmsFlag)
    throw usageError('KMS_FLAG_WITHOUT_KMS', `--${kmsFlag} only applies with --provider kms.`, {
      hint: 'Add --provider kms or drop the --kms-* flags.',
    })
  const provider = flags.provider as AesProviderType
  const keySize = flags['key-size'] ?? 32
  const sizes = allowedKeySizes(provider)
  if (!sizes.includes(keySize)) {
    throw usageError(
      'KEY_SIZE_INVALID',
      `--key-size ${keySize} is not allowed for ${provider}: use ${sizes.join(', ')}.`,
      {
        hint:
          provider === 'secretbox'
            ? 'secretbox keys are always 32 bytes.'
            : 'AES keys are 16, 24 or 32 bytes (AES-128/192/256).',
      },
    )
  }
  refuseForceWithoutFile(flags)
  // The apiserver accepts '' or 'sec rets' (they match nothing); from a flag they are a quoting slip.
  checkResourceFlags(flags.resource)
  return {...common(flags), provider, keySize, keyName: flags['key-name'] ?? defaultKeyName()}
}

/** The flags of --provider kms, checked: usage errors, exit 2. */
export function kmsGenerateOptions(flags: GenerateFlagValues) {
  for (const f of ['key-size', 'key-name'] as const) {
    if (flags[f] !== undefined)
      throw usageError(
        'KEY_FLAG_WITH_KMS',
        `--${f} does not apply to --provider kms: the key stays with the KMS plugin.`,
        {
          hint: `Drop --${f}.`,
        },
      )
  }
  refuseForceWithoutFile(flags)
  const endpoint = flags['kms-endpoint']
  if (endpoint === undefined) {
    throw usageError(
      'KMS_ENDPOINT_MISSING',
      '--provider kms needs --kms-endpoint (the plugin socket, unix:///absolute/path.sock).',
      {
        hint: 'For example: --kms-endpoint unix:///var/run/kmsplugin/socket.sock',
      },
    )
  }
  const problem = kmsEndpointProblem(endpoint)
  if (problem) {
    throw usageError('KMS_ENDPOINT_INVALID', `--kms-endpoint ${JSON.stringify(endpoint)} ${problem}.`, {
      hint: 'For example: --kms-endpoint unix:///var/run/kmsplugin/socket.sock',
    })
  }
  const timeout = flags['kms-timeout'] ?? DEFAULT_KMS_TIMEOUT
  const duration = parseGoDuration(timeout)
  if ('error' in duration || duration.nanos <= 0n) {
    throw usageError('KMS_TIMEOUT_INVALID', `--kms-timeout ${JSON.stringify(timeout)} is not a positive duration.`, {
      hint: 'Use a Go duration such as 3s or 500ms.',
    })
  }
  checkResourceFlags(flags.resource)
  const apiVersion: KmsApiVersion = flags['kms-api-version'] ?? 'v2'
  return {...common(flags), name: flags['kms-name'] ?? DEFAULT_KMS_NAME, endpoint, timeout, apiVersion}
}
