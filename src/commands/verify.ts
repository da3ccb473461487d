import {readFile} from 'node:fs/promises'

import {Flags} from '@oclif/core'
import {parse as parseYaml} from 'yaml'

import {BaseCommand} from '../base-command.js'
import {discoverControlPlane} from '../controlplane/control-plane.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {EXIT, usageError} from '../errors.js'
import {etcdFlags, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags, parseNamespace} from '../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../flags/ssh.js'
import {connectCluster} from '../kube/connect.js'
import {toPluginError} from '../kube/errors.js'
import {ResourceIndex} from '../kube/resource-index.js'
import type {ApiResource, KubeObject} from '../kube/types.js'
import {type ClusterConfig, configFromBytes, configFromNodes} from '../controlplane/cluster-config.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import {apiserverKmsKeys} from '../usecases/status/kms-keys.js'
import {verifyEncryption, type VerifyResult} from '../usecases/verify.js'
import {formatFields} from '../output/render.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'

const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}

export default class Verify extends BaseCommand<VerifyResult, typeof Verify> {
  static override summary = 'Prove that new writes are encrypted as configured: a round trip through the API and etcd.'
  static override description =
    `Creates a Secret with a random name and value in --namespace, reads its raw value from etcd, checks that it starts with k8s:enc:<provider>:v1:<key>: for the first provider and key the config lists for the resource (or, for identity, that it is plaintext, said plainly), reads it back through the API, and deletes it — always, also on error and on Ctrl-C (--keep leaves it).

Exit 0 when the value is stored as configured, 5 otherwise.`
  static override examples = [
    'kubectl encryption verify',
    'kubectl encryption verify -n team-a --hexdump',
    'kubectl encryption verify --resource configmaps --keep',
    'kubectl encryption verify --resource pandas.awesome.bears.example --from-file panda.yaml',
    'kubectl encryption verify --etcd-endpoints https://10.0.0.1:2379 --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key',
  ]
  static override flags = {
    ...kubeFlags,
    namespace: Flags.string({
      char: 'n',
      description: 'Namespace for the test object (default: the context namespace).',
      helpGroup: 'KUBE',
      parse: parseNamespace,
    }),
    ...sshFlags,
    ...etcdFlags,
    resource: Flags.string({
      description: 'Resource to verify: secrets (default), configmaps, or a custom resource with --from-file.',
      default: 'secrets',
    }),
    'from-file': Flags.string({
      char: 'f',
      description: 'Manifest of one object to create for the round trip (custom resources).',
    }),
    keep: Flags.boolean({description: 'Leave the test object in place for inspection.', default: false}),
    hexdump: Flags.boolean({description: 'Print the stored value as `hexdump -C` does.', default: false}),
    config: Flags.string({
      description:
        'The EncryptionConfiguration the apiservers run (default: read it from a control-plane node over SSH).',
    }),
    ssh: Flags.boolean({
      description: 'Read the config from a node over SSH (--no-ssh: only check that the value is encrypted).',
      default: true,
      allowNo: true,
    }),
  }

  async execute(): Promise<VerifyResult> {
    const flags = this.flags
    const kube = kubeOptionsFromFlags(flags)
    const etcdOptions = etcdOptionsFromFlags(flags)
    let manifest: KubeObject | undefined
    if (flags['from-file']) {
      try {
        manifest = parseYaml(await readFile(flags['from-file'], 'utf8')) as KubeObject
      } catch (error) {
        throw usageError(
          'MANIFEST_UNREADABLE',
          `cannot read --from-file ${flags['from-file']}: ${(error as Error).message.split('\n')[0]}`,
        )
      }
      if (!manifest?.apiVersion || !manifest.kind || !manifest.metadata?.name)
        throw usageError(
          'MANIFEST_INVALID',
          `--from-file ${flags['from-file']} is not one object with apiVersion, kind and metadata.name`,
        )
    }
    let localConfig: ClusterConfig | undefined
    if (flags.config) {
      let bytes: Buffer
      try {
        bytes = await readFile(flags.config)
      } catch (error) {
        throw usageError(
          'CONFIG_UNREADABLE',
          `cannot read --config ${flags.config}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        )
      }
      localConfig = configFromBytes(bytes, flags.config)
    }
    // SSH for etcdctl (--etcd-via ssh) is always available; --no-ssh only stops reading files on the nodes.
    const connector = new OpenSshConnector(sshOptionsFromFlags(flags))
    const ssh = flags.ssh ? connector : undefined
    const progress = await this.progress('Connecting to the cluster')
    const controller = new AbortController()
    const onSigint = () => controller.abort()
    process.on('SIGINT', onSigint)
    process.on('SIGTERM', onSigint)
    let cluster: Awaited<ReturnType<typeof connectCluster>> | undefined
    try {
      cluster = await connectCluster(kube)
      const objects = cluster.objects
      let resource = SECRETS
      if (flags.resource !== 'secrets' && flags.resource !== 'secret') {
        const found = new ResourceIndex(await cluster.discovery.resources()).resolve(flags.resource)
        if (!found)
          throw usageError('RESOURCE_UNKNOWN', `the server has no resource ${JSON.stringify(flags.resource)}`, {
            hint: "See 'kubectl api-resources'.",
          })
        resource = found
      }
      let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
      const discover = () => (controlPlane ??= discoverControlPlane(objects))
      let config = localConfig
      const notes: string[] = []
      if (!config && ssh) {
        progress.update('Reading the encryption config from a control-plane node')
        const fromNodes = await configFromNodes(
          await discover(),
          (node) => new ShellRemoteFiles(ssh.open({name: node.name, internalIP: node.internalIP})),
        )
        config = fromNodes.found
        if (fromNodes.reason) notes.push(fromNodes.reason)
      }
      const c = cluster
      const result = await verifyEncryption(
        {
          resource,
          namespace: flags.namespace ?? cluster.context.namespace,
          keep: flags.keep,
          hexdump: flags.hexdump,
          manifest,
        },
        {
          objects,
          openEtcd: () => openEtcdReader(etcdOptions, {controlPlane: discover, exec: c.exec, ssh: connector}),
          config,
          signal: controller.signal,
          onProgress: (text) => progress.update(text),
          kmsKeys: async () => apiserverKmsKeys(await discover(), c.probe),
        },
      )
      result.notes.unshift(...notes)
      return result
    } catch (error) {
      throw toPluginError(error)
    } finally {
      progress.stop()
      process.off('SIGINT', onSigint)
      process.off('SIGTERM', onSigint)
      cluster?.close()
    }
  }

  protected override exitCodeFor(result: VerifyResult): number {
    return result.ok ? EXIT.ok : EXIT.checkFailed
  }

  protected renderTable(result: VerifyResult): string {
    const stored = result.stored
      ? result.stored.encrypted
        ? `${result.stored.provider}${result.stored.kmsName || result.stored.keyName ? ':' + (result.stored.kmsName ?? result.stored.keyName) : ''} (${result.stored.prefix ?? ''}, ${result.stored.length} bytes)`
        : `plaintext (${result.stored.length} bytes)`
      : '-'
    const lines = [
      formatFields([
        ['Object', `${result.resource} ${result.namespace ? result.namespace + '/' : ''}${result.name}`],
        ['etcd key', result.etcdKey],
        ['etcd', result.etcd ? describeReader(result.etcd) : '-'],
        ['Stored as', stored],
        ['Expected', result.expected ? `${result.expected} (config: ${result.configSource})` : 'unknown (no config)'],
        [
          'KMS key ID',
          result.kms &&
            `${result.kms.keyIdHash} (${result.kms.keyId})${result.kms.currentKeyIdHash ? (result.kms.currentKeyIdHash === result.kms.keyIdHash ? ', current on every apiserver' : `, current: ${result.kms.currentKeyIdHash}`) : ', current not settled'}`,
        ],
        ['Round trip', result.roundTrip],
        ['Cleanup', result.cleanup],
        ['Result', result.ok ? 'OK' : 'FAILED'],
      ]),
    ]
    if (result.hexdump) lines.push('', result.hexdump.trimEnd())
    if (result.notes.length > 0) lines.push('', ...result.notes.map((n) => `Note: ${n}`))
    if (result.problems.length > 0) lines.push('', 'Problems:', ...result.problems.map((p) => `  - ${p}`))
    return lines.join('\n') + '\n'
  }
}
