import {describeReader} from '../../etcd/etcd-reader.js'
import type {ConfigCheckResult} from '../../usecases/scan/config-check.js'
import {formatFields, formatTable} from '../render.js'

const counts = (map: Record<string, number>) =>
  Object.entries(map)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ') || '-'

/** `config check` as text: how many values FILE could not read, per resource and stored provider:key, with examples. */
export function configCheckView(result: ConfigCheckResult, wide: boolean): string {
  const sections = [
    formatFields([
      ['File', result.file],
      ['Hash', result.hash],
      ['etcd', describeReader(result.etcd)],
      ['Values', result.values],
      ['Unreadable', result.unreadable],
      ['KMS (not decrypted)', result.kmsNotDecrypted || undefined],
    ]).trimEnd(),
  ]
  const rows = result.resources.filter((r) => wide || r.unreadable > 0)
  if (rows.length > 0) {
    sections.push(
      formatTable(
        wide
          ? ['resource', 'rule', 'values', 'unreadable', 'unreadable stored as', 'errors']
          : ['resource', 'values', 'unreadable', 'unreadable stored as', 'errors'],
        rows.map((r) => {
          const row = [
            r.resource,
            r.values,
            r.unreadable,
            counts(r.unreadableAs),
            Object.keys(r.errors).join('; ') || '-',
          ]
          return wide ? [r.resource, r.rule ?? '-', ...row.slice(1)] : row
        }),
      ).trimEnd(),
    )
  }
  if (result.examples.length > 0) sections.push(`Examples:\n${result.examples.map((k) => `  ${k}`).join('\n')}`)
  sections.push(
    result.readable
      ? `Every value is readable with ${result.file}.`
      : `${result.unreadable} of ${result.values} values would be unreadable with ${result.file}: apiservers running it would answer 500 for them.`,
  )
  return sections.join('\n\n') + '\n'
}
