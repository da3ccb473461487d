import {randomBytes} from 'node:crypto'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import type {AesProviderType, EncryptionConfiguration} from '../../encryption/config/model.js'
import {apiserverMessage} from '../../encryption/config/errors.js'
import {parseEncryptionConfig} from '../../encryption/config/decode.js'
import {
  allowedKeySizes,
  DEFAULT_KMS_NAME,
  DEFAULT_KMS_TIMEOUT,
  DEFAULT_PROVIDER,
  defaultKeyName,
  GENERATED_PROVIDERS,
  generateConfig,
  generateKmsConfig,
  kmsEndpointProblem,
  type KmsApiVersion,
} from '../../encryption/config/generate.js'
import {parseGoDuration} from '../../encryption/gocompat/format.js'
import {validateEncryptionConfig} from '../../encryption/config/verdict.js'
import {usageError} from '../../errors.js'
import {checkResourceFlags} from '../../flags/resource-names.js'
import {formatFields, renderResult} from '../../output/render.js'
import {writePrivateFile} from '../../state/private-file.js'

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

const KMS_FLAGS = ['kms-name', 'kms-endpoint', 'kms-timeout', 'kms-api-version'] as const

export default class ConfigGenerate extends BaseCommand<GenerateResult, typeof ConfigGenerate> {
  static override summary = 'Write a new EncryptionConfiguration with a fresh random key.'
  static override description =
    `Creates an EncryptionConfiguration as in the Kubernetes task "Encrypting Confidential Data at Rest": one provider with a new key from the system's CSPRNG, for the resources you name, optionally followed by identity: {} so existing unencrypted objects stay readable while they are rewritten.

The default provider is secretbox (XSalsa20-Poly1305): it is authenticated, needs one 32-byte key and has no write-count limit. aesgcm is as strong but its keys must be rotated before about 200,000 writes (random nonces), so use it only with automated rotation or where secretbox is not acceptable; aescbc is rated weak (no integrity, padding oracles) and is offered only for compatibility. Keys in this file protect against an etcd compromise, not a host compromise; a kms provider is stronger.

Without --output-file the configuration, key included, goes to stdout (that is what you asked for). With --output-file the file is created with mode 0600 and only its path, the key name and the key's sha256 fingerprint are printed. The output always passes 'kubectl encryption config validate'.`

  static override examples = [
    'kubectl encryption config generate --output-file /etc/kubernetes/enc/enc.yaml',
    'kubectl encryption config generate --resource secrets --resource configmaps --identity-fallback > enc.yaml',
    "kubectl encryption config generate --provider aesgcm --key-size 32 --resource '*.*' --output-file enc.yaml --force",
  ]

  static override flags = {
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

  async execute(): Promise<GenerateResult> {
    if (this.flags.provider === 'kms') return this.executeKms()
    const kmsFlag = KMS_FLAGS.find((f) => this.flags[f] !== undefined)
    if (kmsFlag)
      throw usageError('KMS_FLAG_WITHOUT_KMS', `--${kmsFlag} only applies with --provider kms.`, {
        hint: 'Add --provider kms or drop the --kms-* flags.',
      })
    const provider = this.flags.provider as AesProviderType
    const keySize = this.flags['key-size'] ?? 32
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
    if (this.flags.force && !this.flags['output-file']) {
      throw usageError('FORCE_WITHOUT_FILE', '--force only applies with --output-file.', {
        hint: 'Add --output-file FILE or drop --force.',
      })
    }
    // The apiserver accepts '' or 'sec rets' (they match nothing); from a flag they are a quoting slip.
    checkResourceFlags(this.flags.resource)
    const generated = generateConfig({
      provider,
      keyName: this.flags['key-name'] ?? defaultKeyName(),
      key: randomBytes(keySize),
      resources: this.flags.resource ?? ['secrets'],
      identityFallback: this.flags['identity-fallback'],
    })

    // The output must pass the validator; bad --resource or --key-name values are caught here.
    const parsed = parseEncryptionConfig(generated.text, this.flags['output-file'] ?? '<stdout>')
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
    for (const warning of check.warnings) this.warn(warning)

    const file = this.flags['output-file']
    if (!file) return {config: generated.config, text: generated.text}
    await writePrivateFile(file, generated.text, {force: this.flags.force})
    return {
      file,
      provider,
      keyName: generated.config.resources[0]?.providers[0]?.[provider]?.keys[0]?.name ?? '',
      keySize,
      fingerprint: generated.fingerprint,
      resources: generated.config.resources[0]?.resources ?? [],
      identityFallback: this.flags['identity-fallback'],
    }
  }

  private async executeKms(): Promise<GenerateResult> {
    const flags = this.flags
    for (const f of ['key-size', 'key-name'] as const) {
      if (flags[f] !== undefined)
        throw usageError(
          'KEY_FLAG_WITH_KMS',
          `--${f} does not apply to --provider kms: the key stays with the KMS plugin.`,
          {hint: `Drop --${f}.`},
        )
    }
    if (flags.force && !flags['output-file']) {
      throw usageError('FORCE_WITHOUT_FILE', '--force only applies with --output-file.', {
        hint: 'Add --output-file FILE or drop --force.',
      })
    }
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
    const generated = generateKmsConfig({
      name: flags['kms-name'] ?? DEFAULT_KMS_NAME,
      endpoint,
      timeout,
      apiVersion,
      resources: flags.resource ?? ['secrets'],
      identityFallback: flags['identity-fallback'],
    })
    // v1 is validated as the apiserver would with --feature-gates=KMSv1=true: asking for it is the user's choice, warned below.
    const parsed = parseEncryptionConfig(generated.text, flags['output-file'] ?? '<stdout>')
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
      this.warn(
        'KMS v1 is deprecated and off by default since Kubernetes 1.29: the apiserver refuses this file unless it runs with --feature-gates=KMSv1=true. Prefer --kms-api-version v2.',
      )
    }
    for (const warning of check.warnings) if (!warning.includes('KMS v1')) this.warn(warning)

    const file = flags['output-file']
    if (!file) return generated
    await writePrivateFile(file, generated.text, {force: flags.force})
    return {
      file,
      provider: 'kms',
      kmsName: flags['kms-name'] ?? DEFAULT_KMS_NAME,
      endpoint,
      apiVersion,
      timeout,
      resources: generated.config.resources[0]?.resources ?? [],
      identityFallback: flags['identity-fallback'],
    }
  }

  /**
   * Without --output-file, stdout carries the configuration itself in every format (YAML with its
   * header comment for table/yaml, the same object as JSON for -o json): a file the apiserver loads.
   */
  public override async run(): Promise<GenerateResult> {
    const result = await this.execute()
    if ('config' in result) {
      process.stdout.write(this.outputFormat === 'json' ? JSON.stringify(result.config, null, 2) + '\n' : result.text)
    } else {
      process.stdout.write(renderResult(result, this.outputFormat, (r) => this.renderTable(r)))
    }
    return result
  }

  protected renderTable(result: GenerateResult): string {
    if ('config' in result) return result.text.replace(/\n$/, '')
    if (result.provider === 'kms') {
      return formatFields([
        ['File', result.file],
        ['Provider', `kms ${result.apiVersion}`],
        ['KMS name', result.kmsName],
        ['Endpoint', result.endpoint],
        ['Timeout', result.timeout],
        ['Resources', result.resources.join(', ')],
        ['Identity fallback', result.identityFallback ? 'yes' : 'no'],
      ])
    }
    return formatFields([
      ['File', result.file],
      ['Provider', result.provider],
      ['Key name', result.keyName],
      ['Key size', `${result.keySize * 8}-bit`],
      ['Fingerprint', result.fingerprint],
      ['Resources', result.resources.join(', ')],
      ['Identity fallback', result.identityFallback ? 'yes' : 'no'],
    ])
  }
}
