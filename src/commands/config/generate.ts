import {BaseCommand} from '../../base-command.js'
import {generateFlags, keyGenerateOptions, kmsGenerateOptions} from '../../flags/config-generate.js'
import {renderResult} from '../../output/render.js'
import {generateView} from '../../output/views/config-generate.js'
import {type GenerateResult, generateWithKey, generateWithKms} from '../../usecases/generate-config.js'

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

  static override flags = generateFlags

  async execute(): Promise<GenerateResult> {
    const warn = (message: string) => this.warn(message)
    if (this.flags.provider === 'kms') return generateWithKms(kmsGenerateOptions(this.flags), warn)
    return generateWithKey(keyGenerateOptions(this.flags), warn)
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
    return generateView(result)
  }
}
