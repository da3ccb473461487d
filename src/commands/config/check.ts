import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {loadEncryptionConfig} from '../../encryption/config/load.js'
import {describeReader} from '../../etcd/etcd-reader.js'
import {EXIT} from '../../errors.js'
import {apiserverFlags, featureGatesFromFlag, targetVersionFromFlag} from '../../flags/config.js'
import {etcdFlags, etcdOptionsFromFlags} from '../../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags} from '../../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../../flags/ssh.js'
import {discoverControlPlane} from '../../controlplane/control-plane.js'
import {connectCluster} from '../../kube/connect.js'
import {toPluginError} from '../../kube/errors.js'
import {checkConfigAgainstEtcd, type ConfigCheckResult} from '../../usecases/scan/config-check.js'
import {openEtcdReader} from '../../etcd/etcd-access.js'
import {formatFields, formatTable} from '../../output/render.js'
import {OpenSshConnector} from '../../ssh/open-ssh-session.js'

const counts = (map: Record<string, number>) =>
  Object.entries(map)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ') || '-'

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
    const kube = kubeOptionsFromFlags(flags)
    const etcdOptions = etcdOptionsFromFlags(flags)
    const targetVersion = targetVersionFromFlag(flags['target-version'])
    const featureGates = featureGatesFromFlag(flags['feature-gates'])
    // The file first: an invalid one is config validate's error (exit 3) before anything is contacted.
    const {config, hash} = await loadEncryptionConfig(this.args.file, {
      targetVersion,
      featureGates,
      automaticReload: flags['automatic-reload'],
    })
    const connector = new OpenSshConnector(sshOptionsFromFlags(flags))
    const progress = await this.progress('Connecting to etcd')
    const cluster = await connectCluster(kube).catch((error: unknown) => {
      progress.stop()
      throw toPluginError(error)
    })
    let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
    const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
    try {
      const reader = await openEtcdReader(etcdOptions, {controlPlane: discover, exec: cluster.exec, ssh: connector})
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
    } catch (error) {
      throw toPluginError(error)
    } finally {
      progress.stop()
      cluster.close()
    }
  }

  protected override exitCodeFor(result: ConfigCheckResult): number {
    return result.readable ? EXIT.ok : EXIT.checkFailed
  }

  protected renderTable(result: ConfigCheckResult, wide: boolean): string {
    const sections = [
      formatFields([
        ['File', result.file],
        ['Hash', result.hash],
        ['etcd', describeReader(result.etcd)],
        ['Values', result.values],
        ['Unreadable', result.unreadable],
        ['KMS (not decrypted)', result.kmsNotDecrypted || undefined],
      ]).trimEnd(),
    ]
    const rows = result.resources.filter((r) => wide || r.unreadable > 0)
    if (rows.length > 0) {
      sections.push(
        formatTable(
          wide
            ? ['resource', 'rule', 'values', 'unreadable', 'unreadable stored as', 'errors']
            : ['resource', 'values', 'unreadable', 'unreadable stored as', 'errors'],
          rows.map((r) => {
            const row = [
              r.resource,
              r.values,
              r.unreadable,
              counts(r.unreadableAs),
              Object.keys(r.errors).join('; ') || '-',
            ]
            return wide ? [r.resource, r.rule ?? '-', ...row.slice(1)] : row
          }),
        ).trimEnd(),
      )
    }
    if (result.examples.length > 0) sections.push(`Examples:\n${result.examples.map((k) => `  ${k}`).join('\n')}`)
    sections.push(
      result.readable
        ? `Every value is readable with ${result.file}.`
        : `${result.unreadable} of ${result.values} values would be unreadable with ${result.file}: apiservers running it would answer 500 for them.`,
    )
    return sections.join('\n\n') + '\n'
  }
}
