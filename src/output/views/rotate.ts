import type {KekResult} from '../../usecases/rotate-kek.js'
import type {RotateResult} from '../../usecases/rotate.js'
import {readCheckLine} from '../../usecases/scan/read-check.js'
import {diffsText, nodesTable} from '../control-plane-change-view.js'
import {formatFields, formatTable} from '../render.js'

/** `rotate` as text: the keys, the state, each stage and its read check, the nodes, and the diffs of a dry run. */
export function rotateView(result: RotateResult & {context: string}, wide: boolean): string {
  const sections = [
    formatFields([
      ['Context', result.context],
      [
        'New key',
        `${result.provider}/${result.newKey}${result.newKeyFingerprint ? ` ${result.newKeyFingerprint.slice(0, 19)}…` : ''}${result.kmsEndpoint ? ` at ${result.kmsEndpoint}` : ''}`,
      ],
      ['Old key', `${result.oldKey.provider}/${result.oldKey.name}`],
      [
        'State',
        result.state.status === 'not-started'
          ? 'not started (a dry run records nothing)'
          : `${result.state.status} (last stage: ${result.state.stage})`,
      ],
      ['Config copy', result.localBackup],
      [
        'With old key',
        result.oldKeyBackup &&
          `${result.oldKeyBackup} (keep it: etcd backups from before the rewrite need ${result.oldKey.provider}/${result.oldKey.name})`,
      ],
    ]),
    formatTable(
      ['stage', 'status', 'detail'],
      result.stages.map((s) => [s.stage, s.status, s.detail ?? (s.backupDir ? `backups in ${s.backupDir}` : '')]),
    ),
  ]
  const checks = result.stages.filter((s) => s.readCheck).map((s) => `  ${s.stage}: ${readCheckLine(s.readCheck!)}`)
  if (checks.length > 0) sections.push(`Read check:\n${checks.join('\n')}`)
  for (const s of result.stages)
    if (s.nodes && s.nodes.length > 0) sections.push(`${s.stage}:\n${nodesTable(s.nodes, wide)}`)
  if (result.dryRun)
    sections.push(`Dry run: nothing was changed.${result.diffs.length > 0 ? `\n\n${diffsText(result.diffs)}` : ''}`)
  return sections.join('\n\n')
}

/** A KMS key rotation as text: the providers and key IDs (hashes), the state, each stage, the scan's proof. */
export function kekView(result: KekResult & {context: string}): string {
  const keyIds = result.kmsProviders.map((p) => {
    const from = result.fromKeyIdHash[p]
    const to = result.toKeyIdHash?.[p]
    return `${p}: ${from ?? '(apiservers did not agree)'}${to ? ` -> ${to}` : ''}`
  })
  const sections = [
    formatFields([
      ['Context', result.context],
      ['Rotation', 'KMS key (KEK) rotation: no node is changed'],
      ['Key ID', keyIds.join('\n')],
      [
        'State',
        result.state.status === 'not-started'
          ? 'not started (a dry run records nothing)'
          : `${result.state.status} (last stage: ${result.state.stage})`,
      ],
      [
        'Scan',
        result.scan && `${result.scan.scanned} value(s) scanned, ${result.scan.stale} not under the current key ID`,
      ],
    ]),
    formatTable(
      ['stage', 'status', 'detail'],
      result.stages.map((s) => [s.stage, s.status, s.detail ?? '']),
    ),
  ]
  if (result.dryRun) sections.push('Dry run: nothing was changed.')
  return sections.join('\n\n')
}
