import {randomBytes} from 'node:crypto'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import type {AesProviderType, EncryptionConfiguration} from '../../encryption/config-model.js'
import {apiserverMessage} from '../../encryption/config-errors.js'
import {parseEncryptionConfig} from '../../encryption/config-decode.js'
import {allowedKeySizes, DEFAULT_PROVIDER, defaultKeyName, GENERATED_PROVIDERS, generateConfig} from '../../encryption/generate-config.js'
import {validateEncryptionConfig} from '../../encryption/validate-config.js'
import {usageError} from '../../errors.js'
import {checkResourceFlags} from '../../flags/resource-names.js'
import {formatFields, renderResult} from '../../output/render.js'
import {writePrivateFile} from '../../operations/private-file.js'

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

/** Without --output-file the result IS the configuration (the user asked for the key on stdout). */
export type GenerateResult = {config: EncryptionConfiguration; text: string} | GeneratedFileResult

export default class ConfigGenerate extends BaseCommand<GenerateResult, typeof ConfigGenerate> {
  static override summary = 'Write a new EncryptionConfiguration with a fresh random key.'
  static override description = `Creates an EncryptionConfiguration as in the Kubernetes task "Encrypting Confidential Data at Rest": one provider with a new key from the system's CSPRNG, for the resources you name, optionally followed by identity: {} so existing unencrypted objects stay readable while they are rewritten.

The default provider is secretbox (XSalsa20-Poly1305): it is authenticated, needs one 32-byte key and has no write-count limit. aesgcm is as strong but its keys must be rotated before about 200,000 writes (random nonces), so use it only with automated rotation or where secretbox is not acceptable; aescbc is rated weak (no integrity, padding oracles) and is offered only for compatibility. Keys in this file protect against an etcd compromise, not a host compromise; a kms provider is stronger.

Without --output-file the configuration, key included, goes to stdout (that is what you asked for). With --output-file the file is created with mode 0600 and only its path, the key name and the key's sha256 fingerprint are printed. The output always passes 'kubectl encryption config validate'.`

  static override examples = [
    'kubectl encryption config generate --output-file /etc/kubernetes/enc/enc.yaml',
    'kubectl encryption config generate --resource secrets --resource configmaps --identity-fallback > enc.yaml',
    "kubectl encryption config generate --provider aesgcm --key-size 32 --resource '*.*' --output-file enc.yaml --force",
  ]

  static override flags = {
    provider: Flags.option({
      description: 'Encrypting provider (default secretbox; see the description).',
      options: GENERATED_PROVIDERS,
      default: DEFAULT_PROVIDER,
    })(),
    'key-size': Flags.integer({description: 'Key size in bytes: 16, 24 or 32 for aescbc/aesgcm; 32 for secretbox.', default: 32}),
    resource: Flags.string({
      description: "Resource to encrypt: 'secrets', 'deployments.apps', '*.' (core group), '*.apps', '*.*'; repeatable. Default: secrets.",
      multiple: true,
    }),
    'key-name': Flags.string({description: 'Name of the key (default key-<UTC timestamp>, e.g. key-20260101T120000Z).'}),
    'identity-fallback': Flags.boolean({
      description: 'Append identity: {} after the key, so unencrypted objects stay readable during the first rewrite.',
      default: false,
    }),
    'output-file': Flags.string({description: 'Write the configuration to this file (created with mode 0600) instead of stdout.'}),
    force: Flags.boolean({description: 'Replace --output-file if it exists (atomically, mode 0600).', default: false}),
  }

  async execute(): Promise<GenerateResult> {
    const provider = this.flags.provider as AesProviderType
    const keySize = this.flags['key-size']
    const sizes = allowedKeySizes(provider)
    if (!sizes.includes(keySize)) {
      throw usageError('KEY_SIZE_INVALID', `--key-size ${keySize} is not allowed for ${provider}: use ${sizes.join(', ')}.`, {
        hint: provider === 'secretbox' ? 'secretbox keys are always 32 bytes.' : 'AES keys are 16, 24 or 32 bytes (AES-128/192/256).',
      })
    }
    if (this.flags.force && !this.flags['output-file']) {
      throw usageError('FORCE_WITHOUT_FILE', '--force only applies with --output-file.', {hint: 'Add --output-file FILE or drop --force.'})
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
      throw usageError('GENERATED_CONFIG_INVALID', `the requested configuration would not load: ${apiserverMessage(check.errors)}`, {
        hint: "Fix --resource or --key-name (resources are lowercase plurals like 'secrets' or 'deployments.apps'). Nothing was written.",
      })
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
