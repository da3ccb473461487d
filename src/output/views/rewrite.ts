import type {RewriteResult} from '../../usecases/rewrite/rewrite.js'
import type {RewriteCommandResult} from '../../usecases/rewrite/run.js'
import {formatTable} from '../render.js'

/** `rewrite` as text: counts per resource, failures, the --verify scan, migrations, and one summary line. */
export function rewriteView(result: RewriteCommandResult, wide: boolean): string {
  const headers = [
    'resource',
    'listed',
    result.dryRun ? 'would rewrite' : 'rewritten',
    'already current',
    'conflicts retried',
    'skipped',
    'failed',
  ]
  if (wide) headers.push('complete')
  const row = (name: string, r: RewriteResult['totals'] & {complete?: boolean}) => {
    const cells: Array<string | number> = [
      name,
      r.listed,
      result.dryRun ? r.wouldRewrite : r.rewritten,
      r.alreadyCurrent,
      r.conflictsRetried,
      r.skipped,
      r.failed,
    ]
    if (wide) cells.push(r.complete === undefined ? '' : r.complete ? 'yes' : 'no')
    return cells
  }
  const rows = result.resources.map((r) => row(r.resource, r))
  if (result.resources.length > 1) rows.push(row('TOTAL', result.totals))
  const lines = [formatTable(headers, rows)]
  if (result.failures.length > 0) {
    lines.push(
      '',
      formatTable(
        ['object', 'reason', 'message'],
        result.failures.map((f) => [failureObject(f), f.reason, f.message]),
      ),
    )
    if (result.failuresTruncated > 0) lines.push(`… and ${result.failuresTruncated} more failures`)
  }
  if (result.verify) {
    lines.push(
      '',
      formatTable(
        ['verify: resource', 'write key', 'values scanned', 'still not current', 'examples'],
        result.verify.resources.map((v) => [
          v.resource,
          v.write,
          v.scanned,
          v.stillStale,
          v.examples.slice(0, 3).join(' '),
        ]),
      ),
    )
  }
  const scope =
    result.namespaces === 'all'
      ? 'all namespaces'
      : `namespace${result.namespaces.length > 1 ? 's' : ''} ${result.namespaces.join(', ')}`
  if (result.migrations?.length)
    lines.push(
      '',
      formatTable(
        ['storageversionmigration', 'resource', 'state'],
        result.migrations.map((m) => [m.name, m.resource, m.state]),
      ),
    )
  lines.push(
    '',
    `${result.dryRun ? 'Dry run: nothing written. ' : ''}${scope}${result.resumed ? ', resumed' : ''}${result.interrupted ? ', INTERRUPTED' : ''}: ` +
      `${result.totals.listed} objects in ${(result.elapsedMs / 1000).toFixed(1)}s (${result.objectsPerSecond}/s)`,
  )
  return lines.join('\n')
}

function failureObject(f: RewriteResult['failures'][number]): string {
  if (f.migration) return `storageversionmigration/${f.migration}`
  if (!f.name) return `${f.resource} (list)${f.namespace ? ` -n ${f.namespace}` : ''}`
  return `${f.resource}/${f.name}${f.namespace ? ` -n ${f.namespace}` : ''}`
}
