import {formatTable} from './render.js'

/** Plain shapes the change commands share (no domain imports, docs/architecture.md §1). */
interface NodeRow {
  node: string
  status: string
  files: Array<{path: string; changes: string[]}>
  backups: string[]
  waitedFor?: string
}

interface DiffRow {
  node: string
  path: string
  diff: string
}

export function nodesTable(nodes: NodeRow[], wide: boolean): string {
  return formatTable(
    wide ? ['node', 'status', 'files', 'waited for', 'backups'] : ['node', 'status', 'files', 'backups'],
    nodes.map((n) => {
      const files = n.files.map((f) => f.path.split('/').pop()).join(', ') || '-'
      const backups = n.backups.join(', ') || '-'
      return wide ? [n.node, n.status, files, n.waitedFor ?? '-', backups] : [n.node, n.status, files, backups]
    }),
  )
}

export function diffsText(diffs: DiffRow[]): string {
  return diffs
    .filter((d) => d.diff !== '')
    .map((d) => `# ${d.node}: ${d.path}\n${d.diff.trimEnd()}`)
    .join('\n\n')
}
