import {describeReader} from '../../etcd/etcd-reader.js'
import {type RecoverResult, UNSAFE_DELETE_VERB} from '../../usecases/recover.js'
import {formatFields, formatTable} from '../render.js'

/** `recover` as text: scope, the checks before deleting, the objects and what happened to each. */
export function recoverView(result: RecoverResult & {context: string}, wide: boolean): string {
  const sections = [
    formatFields([
      ['Context', result.context],
      ['Config', result.config],
      ['etcd', `${describeReader(result.etcd)}: ${result.scanned} values`],
      [
        'Scope',
        `${result.scope.resources.join(', ') || '-'} ${result.scope.namespace === undefined ? 'in all namespaces' : `in namespace ${result.scope.namespace}`}`,
      ],
      [
        'Unsafe delete',
        result.feature ? `${result.feature.served ? 'served' : 'NOT served'} (${result.feature.evidence})` : undefined,
      ],
      [
        'RBAC',
        result.access.length > 0
          ? result.access.every((a) => a.allowed)
            ? `granted (delete, ${UNSAFE_DELETE_VERB})`
            : `MISSING: ${result.access
                .filter((a) => !a.allowed)
                .map((a) => `${a.verb} ${a.resource}${a.namespace ? ` -n ${a.namespace}` : ''}`)
                .join(', ')}`
          : undefined,
      ],
      ['Backup', result.backupFile ? `${result.backupFile} (0600: etcd key and raw value of each object)` : undefined],
    ]),
  ]
  if (result.objects.length === 0) {
    sections.push('Nothing to recover: every value in scope is readable with the config.')
  } else {
    const headers = wide
      ? ['resource', 'namespace', 'name', 'stored as', 'found by', 'status', 'etcd key', 'detail']
      : ['resource', 'namespace', 'name', 'stored as', 'status', 'detail']
    sections.push(
      formatTable(
        headers,
        result.objects.map((o) => {
          const detail = o.message ?? (o.status === 'listed' ? o.error : '')
          return wide
            ? [o.resource, o.namespace ?? '-', o.name, o.storedAs, o.foundBy.join('+'), o.status, o.etcdKey, detail]
            : [o.resource, o.namespace ?? '-', o.name, o.storedAs, o.status, detail]
        }),
      ),
    )
    const t = result.totals
    sections.push(
      result.dryRun
        ? `Dry run: nothing was changed. ${t.found} object${t.found === 1 ? '' : 's'} would be deleted.`
        : `${t.deleted} deleted, ${t.gone} already gone, ${t.readable} readable again (kept), ${t.failed} failed, of ${t.found}.`,
    )
  }
  if (result.backupFile)
    sections.push(
      `To put a value back if its key turns up, see 'etcdctl put' in the README; the backup holds each value exactly as etcd stored it.`,
    )
  if (result.warnings.length > 0) sections.push(`Warnings:\n${result.warnings.map((w) => `  - ${w}`).join('\n')}`)
  return sections.join('\n\n') + '\n'
}
