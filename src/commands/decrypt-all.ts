import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {withControlPlane} from '../cli/control-plane-session.js'
import {EXIT} from '../errors.js'
import {controlPlaneFlags} from '../flags/control-plane.js'
import {DECRYPT_STAGES, type DecryptAllResult, decryptAll} from '../usecases/decrypt-all.js'
import {readCheckLine} from '../usecases/scan/read-check.js'
import {diffsText, nodesTable} from '../output/control-plane-change-view.js'
import {formatFields, formatTable} from '../output/render.js'

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
    if (result.alreadyOff)
      return `Context: ${result.context}\n\nEncryption at rest is off on every control-plane node: nothing to do.\n`
    const sections = [
      formatFields([
        ['Context', result.context],
        [
          'Config',
          result.configPath
            ? `${result.configPath} (after identity-first: ${result.configHash?.slice(0, 19)}…)`
            : undefined,
        ],
        [
          'Kept readable',
          result.readableKeys
            .map((k) => `${k.provider}/${k.key}${k.fingerprint ? ` ${k.fingerprint.slice(0, 19)}…` : ''}`)
            .join(', ') || '-',
        ],
        [
          'kubeadm-config',
          result.kubeadmConfig
            ? `${result.kubeadmConfig.status}${result.kubeadmConfig.changes.length > 0 ? ` (${result.kubeadmConfig.changes.join('; ')})` : ''}`
            : undefined,
        ],
        ['Backups', result.backupDir],
      ]),
      formatTable(
        ['stage', 'status', 'detail'],
        result.stages.map((s) => [s.stage, s.status, s.detail ?? '']),
      ),
    ]
    const checks = result.stages.filter((s) => s.readCheck).map((s) => `  ${s.stage}: ${readCheckLine(s.readCheck!)}`)
    if (checks.length > 0) sections.push(`Read check:\n${checks.join('\n')}`)
    for (const s of result.stages)
      if (s.nodes && s.nodes.length > 0) sections.push(`${s.stage}:\n${nodesTable(s.nodes, wide)}`)
    if (result.scan && result.scan.total > 0)
      sections.push(`Still encrypted (examples):\n${result.scan.examples.map((e) => `  ${e}`).join('\n') || '  -'}`)
    if (result.rewrite && result.rewrite.failures.length > 0)
      sections.push(`Rewrite failures:\n${result.rewrite.failures.map((f) => `  - ${f}`).join('\n')}`)
    if (result.configBackups.length > 0)
      sections.push(
        `Config files moved (they hold the old keys; older etcd backups need them):\n${result.configBackups.map((b) => `  ${b.node}: ${b.path}`).join('\n')}`,
      )
    if (result.keysForOlderBackups && result.keysForOlderBackups.length > 0) sections.push(olderBackupsSection(result))
    if (result.dryRun)
      sections.push(`Dry run: nothing was changed.${result.diffs.length > 0 ? `\n\n${diffsText(result.diffs)}` : ''}`)
    else if (result.removed)
      sections.push(
        'Encryption at rest is removed: every value is plaintext and no apiserver runs with --encryption-provider-config.',
      )
    else if (result.decrypted)
      sections.push(
        'Everything the config covers is stored as plaintext (identity first; the old keys stay as readers).',
      )
    if (result.next.length > 0) sections.push(`Next:\n${result.next.map((n) => `  ${n}`).join('\n')}`)
    return sections.join('\n\n') + '\n'
  }
}

/** The keys etcd backups from before the decryption need, per resource (names only), and how to check a backup. */
function olderBackupsSection(result: Result): string {
  const keys = result.keysForOlderBackups ?? []
  const where =
    result.configBackups.length > 0
      ? 'the config files moved above hold them'
      : result.dryRun
        ? 'the config files on the nodes hold them and move to the backup dir'
        : 'the config files on the nodes hold them'
  return [
    `Keys for older etcd backups (keep them: backups taken before the decryption need them; ${where}):`,
    formatTable(
      ['resource', 'keys'],
      keys.map((k) => [k.resource, k.keys.join(', ')]),
    )
      .trimEnd()
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
    "  Check a backup with 'kubectl encryption status --scan --snapshot FILE.db --config COPY-OF-THAT-CONFIG'.",
  ].join('\n')
}
