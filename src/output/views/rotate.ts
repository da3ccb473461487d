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
        `${result.provider}/${result.newKey}${result.newKeyFingerprint ? ` ${result.newKeyFingerprint.slice(0, 19)}…` : ''}`,
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
