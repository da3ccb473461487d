import type {DecryptAllResult} from '../../usecases/decrypt-all.js'
import {readCheckLine} from '../../usecases/scan/read-check.js'
import {diffsText, nodesTable} from '../control-plane-change-view.js'
import {formatFields, formatTable} from '../render.js'

/** `decrypt-all` as text: the config, the keys kept readable, each stage, the nodes, and the keys older backups need. */
export function decryptAllView(result: DecryptAllResult & {context: string}, wide: boolean): string {
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
    sections.push('Everything the config covers is stored as plaintext (identity first; the old keys stay as readers).')
  if (result.next.length > 0) sections.push(`Next:\n${result.next.map((n) => `  ${n}`).join('\n')}`)
  return sections.join('\n\n') + '\n'
}

/** The keys etcd backups from before the decryption need, per resource (names only), and how to check a backup. */
function olderBackupsSection(result: DecryptAllResult & {context: string}): string {
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
