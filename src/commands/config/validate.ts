import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {EXIT} from '../../errors.js'
import {apiserverFlags, featureGatesFromFlag, targetVersionFromFlag} from '../../flags/config.js'
import {checkConfigFile} from '../../encryption/config/load.js'
import {BASELINE_VERSION, formatTargetVersion} from '../../encryption/config/target-version.js'
import {configValidateView, type ValidateResult} from '../../output/views/config-validate.js'

export default class ConfigValidate extends BaseCommand<ValidateResult, typeof ConfigValidate> {
  static override summary = 'Check an EncryptionConfiguration file exactly as kube-apiserver would.'
  static override description =
    `Reads FILE the way kube-apiserver reads --encryption-provider-config: strict decoding (unknown or duplicate fields, apiVersion/kind), every validation rule with the apiserver's own messages (key secrets shown as "REDACTED"), Go base64 and key-length rules, KMS rules, and wildcard masking. A valid file also gets warnings the apiserver does not give (identity first, aescbc, aesgcm rotation, resources that match nothing, wildcards that never apply). Exit 0 when valid, 3 when not (also when the file cannot be read). -o json gives {valid, file, hash, targetVersion, message, errors: [{field, type, detail}], warnings}; message, the whole error as kube-apiserver logs it, is left out when the file is valid.`

  static override examples = [
    'kubectl encryption config validate /etc/kubernetes/enc/enc.yaml',
    'kubectl encryption config validate enc.yaml --target-version 1.28',
    'kubectl encryption config validate enc.yaml -o json',
  ]

  static override args = {
    file: Args.string({description: 'EncryptionConfiguration file (YAML or JSON).', required: true}),
  }

  static override flags = {...apiserverFlags}

  async execute(): Promise<ValidateResult> {
    const targetVersion = targetVersionFromFlag(this.flags['target-version'])
    const featureGates = featureGatesFromFlag(this.flags['feature-gates'])
    const check = await checkConfigFile(this.args.file, {
      targetVersion,
      featureGates,
      automaticReload: this.flags['automatic-reload'],
    })
    if (!this.machineOutput) for (const warning of check.warnings) this.warn(warning)
    return {
      valid: check.errors.length === 0,
      file: check.path,
      hash: check.hash,
      targetVersion: formatTargetVersion(targetVersion ?? BASELINE_VERSION),
      message: check.message || undefined,
      errors: check.errors.map(({field, type, detail}) => ({field, type, detail})),
      warnings: check.warnings,
    }
  }

  protected override exitCodeFor(result: ValidateResult): number {
    return result.valid ? EXIT.ok : EXIT.precondition
  }

  protected renderTable(result: ValidateResult): string {
    return configValidateView(result)
  }
}
