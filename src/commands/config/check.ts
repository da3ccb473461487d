import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {clusterOptions, withCluster} from '../../cli/cluster-session.js'
import {loadEncryptionConfig} from '../../encryption/config/load.js'
import {describeReader} from '../../etcd/etcd-reader.js'
import {EXIT} from '../../errors.js'
import {apiserverFlags, featureGatesFromFlag, targetVersionFromFlag} from '../../flags/config.js'
import {etcdFlags} from '../../flags/etcd.js'
import {kubeFlags} from '../../flags/kube.js'
import {sshFlags} from '../../flags/ssh.js'
import {configCheckView} from '../../output/views/config-check.js'
import {checkConfigAgainstEtcd, type ConfigCheckResult} from '../../usecases/scan/config-check.js'

export default class ConfigCheck extends BaseCommand<ConfigCheckResult, typeof ConfigCheck> {
  static override summary = 'Check that apiservers running FILE could read every value stored in etcd.'
  static override description =
    `Loads FILE as kube-apiserver would (an invalid or unreadable file is the 'config validate' error, exit 3, before anything is contacted), then reads every value under /registry/ in etcd and decides, per value, whether that configuration could read it: plaintext only where the resource's providers include identity (or the file does not cover the resource); k8s:enc:<provider>:v1:<key>: only with a key of that name that actually decrypts it (a key with the right name and the wrong secret does not); KMS values when the file has a KMS provider of that name for the resource (the KMS is not called). Nothing is written.

Exit 0 when every value is readable, 5 when some are not, with counts per resource and per stored provider:key, the apiserver's errors and up to 5 example etcd keys. -o json gives {readable, file, hash, etcd, keys, values, unreadable, kmsNotDecrypted, resources: [{resource, rule, values, unreadable, kmsNotDecrypted, unreadableAs, errors, examples}], examples}. Key material is never printed.`
  static override examples = [
    'kubectl encryption config check new-enc.yaml',
    'kubectl encryption config check new-enc.yaml -o json',
    'kubectl encryption config check new-enc.yaml --etcd-endpoints https://10.0.0.1:2379 --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key',
  ]

  static override args = {
    file: Args.string({
      description: 'EncryptionConfiguration file (YAML or JSON) to check against what etcd holds.',
      required: true,
    }),
  }

  static override flags = {
    ...kubeFlags,
    ...sshFlags,
    ...etcdFlags,
    ...apiserverFlags,
    'page-size': Flags.integer({description: 'Keys per etcd page.', default: 500, min: 1, max: 10_000}),
  }

  async execute(): Promise<ConfigCheckResult> {
    const flags = this.flags
    const options = clusterOptions(flags)
    const targetVersion = targetVersionFromFlag(flags['target-version'])
    const featureGates = featureGatesFromFlag(flags['feature-gates'])
    // The file first: an invalid one is config validate's error (exit 3) before anything is contacted.
    const {config, hash} = await loadEncryptionConfig(this.args.file, {
      targetVersion,
      featureGates,
      automaticReload: flags['automatic-reload'],
    })
    const progress = await this.progress('Connecting to etcd')
    return withCluster(options, progress, async ({openEtcd}) => {
      const reader = await openEtcd()
      try {
        return await checkConfigAgainstEtcd({
          file: this.args.file,
          hash,
          config,
          reader,
          pageSize: flags['page-size'],
          onProgress: (scanned) =>
            progress.update(`Reading etcd through ${describeReader(reader.describe())}: ${scanned} values`),
        })
      } finally {
        await reader.close()
      }
    })
  }

  protected override exitCodeFor(result: ConfigCheckResult): number {
    return result.readable ? EXIT.ok : EXIT.checkFailed
  }

  protected renderTable(result: ConfigCheckResult, wide: boolean): string {
    return configCheckView(result, wide)
  }
}
