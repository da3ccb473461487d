import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {withControlPlane} from '../cli/control-plane-session.js'
import type {KeyedProvider} from '../encryption/config/edit.js'
import {EXIT} from '../errors.js'
import {controlPlaneFlags} from '../flags/control-plane.js'
import {rotateView} from '../output/views/rotate.js'
import {ROTATE_STAGES, type RotateResult, type RotateStage, rotateKeys} from '../usecases/rotate.js'

export default class Rotate extends BaseCommand<RotateResult & {context: string}, typeof Rotate> {
  static override summary =
    'Rotate the encryption key (or switch provider) on every control-plane node, in six resumable stages.'
  static override description =
    `The key rotation of Kubernetes' task "Encrypting Confidential Data at Rest", as named stages: ${ROTATE_STAGES.join(', ')}. add-key puts a new key second (readable, not yet used) on every node; wait-add checks every apiserver loaded it; promote makes it the write key; wait-promote checks again; rewrite re-encrypts everything the config covers; remove-old drops the old key once etcd holds nothing under it and you confirm a backup (--backup-confirmed, or --backup-dir DIR to get a copy of the new config and of the config before removal, which still holds the old key: etcd backups taken before the rewrite need it; check one with 'kubectl encryption status --scan --snapshot FILE --config DIR/encryption-config-<time>-with-old-key.yaml').

promote and remove-old first read every value in etcd with their config, as 'config check' does, and refuse (CONFIG_CANNOT_READ, exit 3, the stage changes nothing) when some value would become unreadable; --force CONTEXT (the current context name) overrides.

Progress is recorded in the ConfigMap kube-system/kubectl-encryption-state: after a failure or kill, 'rotate' continues from the recorded stage ('status' shows it); '--stage NAME' runs one stage. '--provider' switches provider (e.g. aescbc -> secretbox) the same way. Nodes are changed one at a time with backups and rollback (exit 6/7), as for enable.`
  static override examples = [
    'kubectl encryption rotate --dry-run',
    'kubectl encryption rotate --yes --backup-confirmed',
    'kubectl encryption rotate --stage add-key --yes',
    'kubectl encryption rotate --provider secretbox --yes --backup-dir ./enc-backups',
  ]
  static override flags = {
    ...controlPlaneFlags,
    provider: Flags.option({
      description: 'Provider of the new key (default: the current write provider).',
      options: ['aescbc', 'aesgcm', 'secretbox'] as const,
    })(),
    'key-name': Flags.string({description: 'Name of the new key (default: key<N+1>).'}),
    resource: Flags.string({
      description: 'Rotate only the config entries listing this resource (repeatable).',
      multiple: true,
    }),
    stage: Flags.option({description: 'Run only this stage.', options: ROTATE_STAGES})(),
    restart: Flags.boolean({
      description: 'Start a new rotation even if one is recorded as in progress.',
      default: false,
    }),
    'backup-confirmed': Flags.boolean({
      description: 'You backed up etcd after the rewrite; lets remove-old drop the old key.',
      default: false,
    }),
    'backup-dir': Flags.string({
      description:
        'Before the old key is removed, write the new config and the config still holding the old key (for older etcd backups) to this local directory, mode 0600.',
    }),
  }

  async execute(): Promise<RotateResult & {context: string}> {
    const flags = this.flags
    const progress = await this.progress('Connecting to the cluster')
    return withControlPlane(
      flags,
      progress,
      {operation: 'rotate', typeContext: true, refusal: 'Refusing to rotate keys without confirmation.'},
      async ({context, force, deps}) => {
        const options = {
          provider: flags.provider as KeyedProvider | undefined,
          keyName: flags['key-name'],
          resources: flags.resource,
          stage: flags.stage as RotateStage | undefined,
          restart: flags.restart,
          backupConfirmed: flags['backup-confirmed'],
          backupDir: flags['backup-dir'],
          force,
          dryRun: flags['dry-run'],
          timeoutMs: flags.timeout * 1000,
        }
        return {context, ...(await rotateKeys(options, deps))}
      },
    )
  }

  protected override exitCodeFor(result: RotateResult): number {
    // A dry run shows what the real run would refuse: the same exit code.
    return result.dryRun && result.stages.some((s) => s.readCheck?.status === 'unreadable' && !s.readCheck.forced)
      ? EXIT.precondition
      : EXIT.ok
  }

  protected renderTable(result: RotateResult & {context: string}, wide: boolean): string {
    return rotateView(result, wide)
  }
}
