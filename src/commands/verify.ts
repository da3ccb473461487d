import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {clusterOptions, withCluster} from '../cli/cluster-session.js'
import {EXIT, usageError} from '../errors.js'
import {etcdFlags} from '../flags/etcd.js'
import {kubeFlags, parseNamespace} from '../flags/kube.js'
import {sshFlags} from '../flags/ssh.js'
import {readManifestFlag, readVerifyConfigFlag} from '../flags/verify.js'
import {ResourceIndex} from '../kube/resource-index.js'
import type {ApiResource, KubeCluster} from '../kube/types.js'
import {verifyView} from '../output/views/verify.js'
import {apiserverKmsKeys} from '../usecases/status/kms-keys.js'
import {verifyEncryption, type VerifyResult} from '../usecases/verify.js'

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
    const options = clusterOptions(flags)
    const manifest = await readManifestFlag(flags['from-file'])
    const localConfig = await readVerifyConfigFlag(flags.config)
    const progress = await this.progress('Connecting to the cluster')
    return withCluster(
      options,
      progress,
      async ({cluster, signal, controlPlane, openEtcd, configFromNodes}) => {
        const resource = await resolveResource(cluster, flags.resource)
        const notes: string[] = []
        let config = localConfig
        if (!config) {
          const fromNodes = await configFromNodes()
          config = fromNodes?.found
          if (fromNodes?.reason) notes.push(fromNodes.reason)
        }
        const result = await verifyEncryption(
          {
            resource,
            namespace: flags.namespace ?? cluster.context.namespace,
            keep: flags.keep,
            hexdump: flags.hexdump,
            manifest,
          },
          {
            objects: cluster.objects,
            openEtcd,
            config,
            signal,
            onProgress: (text) => progress.update(text),
            kmsKeys: async () => apiserverKmsKeys(await controlPlane(), cluster.probe),
          },
        )
        result.notes.unshift(...notes)
        return result
      },
      {interruptible: true},
    )
  }

  protected override exitCodeFor(result: VerifyResult): number {
    return result.ok ? EXIT.ok : EXIT.checkFailed
  }

  protected renderTable(result: VerifyResult): string {
    return verifyView(result)
  }
}

/** --resource: secrets, or what discovery resolves the name to. */
async function resolveResource(cluster: KubeCluster, name: string): Promise<ApiResource> {
  if (name === 'secrets' || name === 'secret') return SECRETS
  const found = new ResourceIndex(await cluster.discovery.resources()).resolve(name)
  if (!found)
    throw usageError('RESOURCE_UNKNOWN', `the server has no resource ${JSON.stringify(name)}`, {
      hint: "See 'kubectl api-resources'.",
    })
  return found
}
