import {BaseCommand} from '../base-command.js'
import {withControlPlane} from '../cli/control-plane-session.js'
import {DEFAULT_CONFIG_PATH} from '../controlplane/apiserver-manifest.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {readConfigFlag} from '../flags/config-file.js'
import {enableFlags, enableKmsOptions} from '../flags/enable.js'
import {checkResourceFlags} from '../flags/resource-names.js'
import {enableView} from '../output/views/enable.js'
import {type EnableOptions, type EnableResult, enableEncryption} from '../usecases/enable.js'

export default class Enable extends BaseCommand<EnableResult & {context: string}, typeof Enable> {
  static override summary = 'Switch on encryption at rest on every control-plane node, one node at a time.'
  static override description =
    `Writes one EncryptionConfiguration to every control-plane node (${DEFAULT_CONFIG_PATH} by default, root, 0600) and points each kube-apiserver at it: the --encryption-provider-config flag, a read-only volumeMount and a DirectoryOrCreate hostPath volume in the static-pod manifest. Nodes are changed one at a time: the manifest is backed up outside /etc/kubernetes/manifests, replaced atomically, and the plugin waits for the mirror pod's config hash to change and the node's /readyz; a node that does not come back is rolled back (exit 6; 7 if the rollback failed too) and later nodes are left alone. kubeadm's kubeadm-config ConfigMap is kept in step so 'kubeadm upgrade' keeps the flag.

Without --config a config with a fresh 32-byte key for secrets (or --resource) is generated, followed by identity so data written before stays readable; a config a node already has is reused, never regenerated. Running enable twice changes nothing the second time.

The generated provider is secretbox unless --provider says otherwise, as for 'config generate': secretbox (XSalsa20-Poly1305) is authenticated, takes one 32-byte key and has no write-count limit. aesgcm is as strong but its key must be rotated before about 200,000 writes (random nonces); aescbc has no integrity check and is open to padding-oracle attacks, so the Kubernetes documentation rates it weak; choose it only when something that reads your etcd backups needs it.

Before any change (and in --dry-run) it reads every value in etcd with the config to apply, as 'config check' does, and refuses (CONFIG_CANNOT_READ, exit 3, counts per resource and provider:key, example keys) when some value would become unreadable; --force CONTEXT (the current context name) overrides; if etcd cannot be read it warns and goes on.

With --provider kms --kms-endpoint unix:///path/to/socket.sock the generated config has a KMS v2 provider (--kms-name, default kms-plugin; --kms-timeout, default 3s) and no key: the key-encryption key stays with your KMS plugin, which must already run on every node. The directory of the socket is mounted into each kube-apiserver (a hostPath volume), unless a mount already shows it; the same holds for KMS providers in a --config file.

Afterwards it runs 'verify' (a test Secret's raw value in etcd must carry the new key's prefix; exit 5 if not). Existing objects stay as they were stored until rewritten: --rewrite does that now (exit 4 if some object could not be rewritten), else the result names the command.`
  static override examples = [
    'kubectl encryption enable --dry-run',
    'kubectl encryption enable --yes',
    'kubectl encryption enable --config ./enc.yaml --automatic-reload --yes',
    'kubectl encryption enable --resource secrets --resource configmaps',
    'kubectl encryption enable --yes --rewrite',
    'kubectl encryption enable --provider kms --kms-endpoint unix:///var/run/kmsplugin/socket.sock --yes',
  ]
  static override flags = enableFlags

  async execute(): Promise<EnableResult & {context: string}> {
    const flags = this.flags
    if (flags.config && (flags.resource || flags.provider)) {
      throw usageError(
        'USAGE',
        '--config cannot be combined with --provider or --resource (they shape a generated config)',
      )
    }
    checkResourceFlags(flags.resource)
    const kms = enableKmsOptions(flags)
    const local = await readConfigFlag(flags.config)
    if (local) {
      // The user's file is checked before the cluster is contacted, and named by the path they gave.
      const {checkConfigBytes} = await import('../encryption/config/load.js')
      const check = checkConfigBytes(local.bytes, local.path)
      if (!check.config || check.errors.length > 0)
        throw preconditionError(
          'CONFIG_INVALID',
          `--config ${local.path} is not a valid EncryptionConfiguration: ${check.message}`,
          {
            hint: `See every problem with 'kubectl encryption config validate ${local.path}'. Nothing was changed.`,
          },
        )
    }
    const configText = local?.bytes.toString('utf8')
    const progress = await this.progress('Connecting to the cluster')
    return withControlPlane(
      flags,
      progress,
      {operation: 'enable', typeContext: false, refusal: 'Refusing to change the control plane without confirmation.'},
      async ({context, force, deps}) => {
        const options = {
          configPath: flags['config-path'],
          configText,
          // undefined when not asked for: a config the nodes already run is then reused as it is
          provider: flags.provider as EnableOptions['provider'],
          kms,
          resources: flags.resource,
          automaticReload: flags['automatic-reload'],
          force,
          dryRun: flags['dry-run'],
          kubeadmConfig: flags['kubeadm-config'],
          timeoutMs: flags.timeout * 1000,
          verify: flags.verify,
          rewrite: flags.rewrite,
        }
        return {context, ...(await enableEncryption(options, deps))}
      },
    )
  }

  protected override exitCodeFor(result: EnableResult): number {
    // A dry run shows what the real run would refuse: the same exit code.
    if (result.dryRun && result.readCheck?.status === 'unreadable' && !result.readCheck.forced) return EXIT.precondition
    if (result.verify && !result.verify.ok) return EXIT.checkFailed
    if (result.rewrite && (result.rewrite.failed > 0 || result.rewrite.incomplete.length > 0)) return EXIT.partial
    return EXIT.ok
  }

  protected renderTable(result: EnableResult & {context: string}, wide: boolean): string {
    return enableView(result, wide)
  }
}
