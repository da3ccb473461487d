import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {withControlPlane} from '../cli/control-plane-session.js'
import {EXIT, usageError} from '../errors.js'
import {controlPlaneFlags} from '../flags/control-plane.js'
import {enableFlags, enableKmsOptions} from '../flags/enable.js'
import {kekView, rotateView} from '../output/views/rotate.js'
import {isKekRotation, KEK_STAGES, type KekResult, rotateKek} from '../usecases/rotate-kek.js'
import {
  ROTATE_STAGES,
  type RotateProvider,
  type RotateResult,
  type RotateStage,
  rotateKeys,
} from '../usecases/rotate.js'

type Result = (RotateResult | KekResult) & {context: string}

export default class Rotate extends BaseCommand<Result, typeof Rotate> {
  static override summary =
    'Rotate the encryption key, switch provider (also to KMS v2), or follow a KMS key rotation, in resumable stages.'
  static override description =
    `The key rotation of Kubernetes' task "Encrypting Confidential Data at Rest", as named stages: ${ROTATE_STAGES.join(', ')}. add-key puts a new key second (readable, not yet used) on every node; wait-add checks every apiserver loaded it; promote makes it the write key; wait-promote checks again; rewrite re-encrypts everything the config covers; remove-old drops the old key once etcd holds nothing under it and you confirm a backup (--backup-confirmed, or --backup-dir DIR to get a copy of the new config and of the config before removal, which still holds the old key: etcd backups taken before the rewrite need it; check one with 'kubectl encryption status --scan --snapshot FILE --config DIR/encryption-config-<time>-with-old-key.yaml').

promote and remove-old first read every value in etcd with their config, as 'config check' does, and refuse (CONFIG_CANNOT_READ, exit 3, the stage changes nothing) when some value would become unreadable; --force CONTEXT (the current context name) overrides.

Progress is recorded in the ConfigMap kube-system/kubectl-encryption-state: after a failure or kill, 'rotate' continues from the recorded stage ('status' shows it); '--stage NAME' runs one stage. '--provider' switches provider (e.g. aescbc -> secretbox) the same way. Nodes are changed one at a time with backups and rollback (exit 6/7), as for enable.

Moving to KMS v2: '--provider kms --kms-endpoint unix:///path.sock' (and --kms-name, --kms-timeout as for enable) runs the same six stages with the KMS provider in place of the new key: add-key puts it second and mounts the socket's directory into every apiserver (and kubeadm-config's extraVolumes), promote puts it first, rewrite re-encrypts everything under it, remove-old drops the old key (its provider goes when it was its only key). The KMS plugin must be running on every node first.

KMS key rotation: when the config writes with a KMS v2 provider, 'rotate' (no --provider) follows a rotation of the plugin's key-encryption key in three stages: ${KEK_STAGES.join(', ')}. wait-key-id waits (up to --timeout seconds) until every apiserver has asked the plugin for its Status since the run started and all report the same key ID (with --kms-key-id, that one); rewrite-stale rewrites exactly the values under an older key ID (as 'rewrite -A --only-stale'); scan reads etcd and fails (KMS_STALE_LEFT, exit 5) if any value of the covered resources is still not under the current key ID. Rotate the KEK in the plugin first, then run it. Interrupted (Ctrl-C, or killed), 'rotate' again continues; a rewrite again writes only what is still stale. No node is changed.`
  static override examples = [
    'kubectl encryption rotate --dry-run',
    'kubectl encryption rotate --yes --backup-confirmed',
    'kubectl encryption rotate --stage add-key --yes',
    'kubectl encryption rotate --provider secretbox --yes --backup-dir ./enc-backups',
    'kubectl encryption rotate --provider kms --kms-endpoint unix:///var/run/kmsplugin/socket.sock --yes --backup-confirmed',
    {
      description:
        "After rotating the KMS plugin's key: wait for every apiserver to report the new key ID, rewrite what is under older ones, prove none is left.",
      command: 'kubectl encryption rotate --yes --timeout 600',
    },
  ]
  static override flags = {
    ...controlPlaneFlags,
    provider: Flags.option({
      description:
        'Provider of the new key (default: the current write provider); kms moves to a KMS v2 plugin (needs --kms-endpoint).',
      options: ['aescbc', 'aesgcm', 'secretbox', 'kms'] as const,
    })(),
    'kms-endpoint': enableFlags['kms-endpoint'],
    'kms-name': enableFlags['kms-name'],
    'kms-timeout': enableFlags['kms-timeout'],
    timeout: Flags.integer({
      description:
        'Seconds to wait for each kube-apiserver to come back (or reload) before rolling back; in a KMS key rotation, for every apiserver to report the new key ID.',
      default: 300,
      min: 1,
    }),
    'kms-key-id': Flags.string({
      description:
        "KMS key rotation: wait until every apiserver reports this key ID (the plugin's Status keyID) instead of any one they agree on.",
    }),
    'kubeadm-config': Flags.boolean({
      description: "With --provider kms: add the socket's directory to kubeadm-config's apiServer.extraVolumes too.",
      default: true,
      allowNo: true,
    }),
    'key-name': Flags.string({description: 'Name of the new key (default: key<N+1>).'}),
    resource: Flags.string({
      description: 'Rotate only the config entries listing this resource (repeatable).',
      multiple: true,
    }),
    stage: Flags.option({
      description: `Run only this stage (a KMS key rotation: ${KEK_STAGES.join(', ')}).`,
      options: [...ROTATE_STAGES, ...KEK_STAGES],
    })(),
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

  async execute(): Promise<Result> {
    const flags = this.flags
    // bad --kms-* input: one line, exit 2, before the cluster is contacted
    const kms = enableKmsOptions(flags)
    if (flags['kms-key-id'] !== undefined && flags.provider !== undefined)
      throw usageError(
        'KMS_FLAG_WITHOUT_KMS',
        '--kms-key-id applies to a KMS key rotation (rotate without --provider).',
      )
    if (kms && flags['key-name'] !== undefined)
      throw usageError('KMS_FLAG_WITHOUT_KMS', '--key-name does not apply with --provider kms (use --kms-name).')
    const progress = await this.progress('Connecting to the cluster')
    return withControlPlane(
      flags,
      progress,
      {operation: 'rotate', typeContext: true, refusal: 'Refusing to rotate keys without confirmation.'},
      async ({context, force, deps}) => {
        const options = {
          provider: flags.provider as RotateProvider | undefined,
          kms,
          kubeadmConfig: flags['kubeadm-config'],
          keyName: flags['key-name'],
          resources: flags.resource,
          stage: flags.stage as string | undefined,
          restart: flags.restart,
          backupConfirmed: flags['backup-confirmed'],
          backupDir: flags['backup-dir'],
          force,
          dryRun: flags['dry-run'],
          timeoutMs: flags.timeout * 1000,
        }
        if (await isKekRotation(options, deps))
          return {context, ...(await rotateKek({...options, kmsKeyId: flags['kms-key-id']}, deps))}
        if (flags['kms-key-id'] !== undefined)
          throw usageError(
            'KMS_FLAG_WITHOUT_KMS',
            '--kms-key-id applies to a KMS key rotation; the config does not write with a KMS v2 provider.',
          )
        if (options.stage && (KEK_STAGES as readonly string[]).includes(options.stage))
          throw usageError('STAGE_UNKNOWN', `Stage ${options.stage} belongs to a KMS key rotation.`)
        return {context, ...(await rotateKeys({...options, stage: options.stage as RotateStage | undefined}, deps))}
      },
    )
  }

  protected override exitCodeFor(result: Result): number {
    // A dry run shows what the real run would refuse: the same exit code.
    return result.dryRun &&
      (result.stages as RotateResult['stages']).some((s) => s.readCheck?.status === 'unreadable' && !s.readCheck.forced)
      ? EXIT.precondition
      : EXIT.ok
  }

  protected renderTable(result: Result, wide: boolean): string {
    return 'kind' in result ? kekView(result) : rotateView(result, wide)
  }
}
