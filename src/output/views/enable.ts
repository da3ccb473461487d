import type {EnableResult} from '../../usecases/enable.js'
import {readCheckLine} from '../../usecases/scan/read-check.js'
import {diffsText, nodesTable} from '../control-plane-change-view.js'
import {formatFields} from '../render.js'

/** `enable` as text: the config and its write keys, the read check, the nodes, verify, rewrite, what next. */
export function enableView(result: EnableResult & {context: string}, wide: boolean): string {
  const sections = [
    formatFields([
      ['Context', result.context],
      ['Config', `${result.configPath} (${result.configSource}, ${result.configHash.slice(0, 19)}…)`],
      [
        'Write keys',
        result.writeKeys
          .map(
            (k) =>
              `${k.resources.join(',')}: ${k.provider}${k.key ? `/${k.key} ${k.fingerprint ? `${k.fingerprint.slice(0, 19)}…` : '(a new key, made when run)'}` : ''}`,
          )
          .join('; '),
      ],
      ['Read check', result.readCheck ? readCheckLine(result.readCheck) : undefined],
      [
        'kubeadm-config',
        `${result.kubeadmConfig.status}${result.kubeadmConfig.changes.length > 0 ? ` (${result.kubeadmConfig.changes.join('; ')})` : ''}`,
      ],
      ['Backups', result.backupDir],
    ]),
    nodesTable(result.nodes, wide),
  ]
  if (result.dryRun) {
    const c = result.readCheck
    if (c?.status === 'unreadable' && !c.forced)
      sections.push(
        `The real run would be refused (exit 3) unless --force CONTEXT: ${c.unreadable} stored value(s) would be unreadable; e.g.:\n${(c.examples ?? []).map((k) => `  ${k}`).join('\n')}`,
      )
    sections.push(`Dry run: nothing was changed.${result.diffs.length > 0 ? `\n\n${diffsText(result.diffs)}` : ''}`)
    return sections.join('\n\n')
  }
  // A run that failed half way (the error follows on stderr) shows its nodes, without the summary line.
  const finished = result.nodes.every((n) => n.status === 'changed' || n.status === 'unchanged')
  if (finished)
    sections.push(
      result.unchanged
        ? 'Encryption is already enabled as asked: nothing to do on the nodes.'
        : 'Encryption is enabled on every node.',
    )
  const v = result.verify
  if (v) {
    const line =
      'notRun' in v
        ? `NOT RUN (${v.notRun})`
        : `${v.ok ? 'OK' : 'FAILED'}: a test object (${v.resource}) was stored as ${v.stored ?? '?'} (expected ${v.expected ?? '?'})`
    sections.push([`Verify: ${line}`, ...v.problems.map((p) => `  - ${p}`)].join('\n'))
  }
  const r = result.rewrite
  if (r) {
    sections.push(
      [
        `Rewrite (${r.resources.join(', ') || 'nothing covered'}): ${r.rewritten} rewritten, ${r.alreadyCurrent} already current, ${r.failed} failed`,
        ...r.failures.map((f) => `  - ${f}`),
        ...r.incomplete.map((x) => `  - ${x}: listing did not finish`),
      ].join('\n'),
    )
  }
  if (result.next.length > 0) sections.push(`Next:\n${result.next.map((n) => `  ${n}`).join('\n')}`)
  return sections.join('\n\n')
}
