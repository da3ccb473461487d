import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {withControlPlane} from '../cli/control-plane-session.js'
import {EXIT} from '../errors.js'
import {controlPlaneFlags} from '../flags/control-plane.js'
import {decryptAllView} from '../output/views/decrypt-all.js'
import {DECRYPT_STAGES, type DecryptAllResult, decryptAll} from '../usecases/decrypt-all.js'

type Result = DecryptAllResult & {context: string}

export default class DecryptAll extends BaseCommand<Result, typeof DecryptAll> {
  static override aliases = ['disable']
  static override summary =
    'Decrypt everything stored encrypted: identity first on every node, rewrite, prove it with a scan; optionally remove encryption.'
  static override description =
    `The "Decrypting all data" steps of Kubernetes' task "Encrypting Confidential Data at Rest", in stages: ${DECRYPT_STAGES.join(', ')}. identity-first puts the identity provider first in the config of every control-plane node, keeping every old key as a reader so values not yet rewritten stay readable, one node at a time with backups and rollback (exit 6; 7 if the rollback failed too). rewrite writes back every object the config covers, so it is stored as plaintext. scan reads etcd and must find nothing encrypted under those resources (exit 5 if something is; nothing is removed then). With --remove-encryption the --encryption-provider-config flag, its volumeMount and volume come out of each manifest and kubeadm-config, and each node's config file (which still holds the old keys, needed for older etcd backups) moves to the backup dir under /etc/kubernetes/tmp. The output names, per resource, the keys that config held (provider:key, names only; -o json: keysForOlderBackups): etcd backups taken before the decryption need them, and 'status --scan --snapshot FILE --config COPY' checks a backup against a copy of the moved config.

identity-first and remove-encryption first read every value in etcd with their config (for removal: none, so everything must be plaintext), as 'config check' does, and refuse (CONFIG_CANNOT_READ, exit 3, the stage changes nothing) when some value would become unreadable; --force CONTEXT (the current context name) overrides.

Every stage does nothing when already done, so after a failure run the same command again. On a terminal you type the context name to go ahead; scripts pass --yes. 'disable' is an alias.`
  static override examples = [
    'kubectl encryption decrypt-all --dry-run',
    'kubectl encryption decrypt-all',
    'kubectl encryption decrypt-all --yes --remove-encryption',
    'kubectl encryption disable --remove-encryption --dry-run',
  ]
  static override flags = {
    ...controlPlaneFlags,
    'remove-encryption': Flags.boolean({
      description:
        'After a clean scan, take the flag, mount and volume out of the manifests and the config off the nodes.',
      default: false,
    }),
    'kubeadm-config': Flags.boolean({
      description: 'With --remove-encryption: take the flag out of kubeadm-config too.',
      default: true,
      allowNo: true,
    }),
  }

  async execute(): Promise<Result> {
    const flags = this.flags
    const progress = await this.progress('Connecting to the cluster')
    return withControlPlane(
      flags,
      progress,
      {operation: 'decrypt-all', typeContext: true, refusal: 'Refusing to decrypt the cluster without confirmation.'},
      async ({context, force, deps}) => {
        const options = {
          removeEncryption: flags['remove-encryption'],
          force,
          dryRun: flags['dry-run'],
          kubeadmConfig: flags['kubeadm-config'],
          timeoutMs: flags.timeout * 1000,
        }
        return {context, ...(await decryptAll(options, deps))}
      },
    )
  }

  protected override exitCodeFor(result: Result): number {
    // A dry run shows what the real run would refuse: the same exit code.
    if (result.dryRun)
      return result.stages.some((s) => s.readCheck?.status === 'unreadable' && !s.readCheck.forced)
        ? EXIT.precondition
        : EXIT.ok
    return !result.decrypted ? EXIT.checkFailed : EXIT.ok
  }

  protected renderTable(result: Result, wide: boolean): string {
    return decryptAllView(result, wide)
  }
}
