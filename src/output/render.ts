import {stringify} from 'yaml'

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml'

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'wide', 'json', 'yaml']

/** Renders one result document. Machine formats get the whole object; table/wide use the command's own view. */
export function renderResult<T>(result: T, format: OutputFormat, table: (result: T, wide: boolean) => string): string {
  switch (format) {
    case 'json':
      return JSON.stringify(result, null, 2) + '\n'
    case 'yaml':
      return stringify(result)
    default: {
      const text = table(result, format === 'wide')
      return text.endsWith('\n') || text === '' ? text : text + '\n'
    }
  }
}

/** A kubectl-style table: upper-case headers, columns separated by three spaces, no borders. */
export function formatTable(headers: string[], rows: Array<Array<string | number | boolean | undefined>>): string {
  const cells = [
    headers.map((h) => h.toUpperCase()),
    ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c)))),
  ]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
}

/** "key: value" lines for a small record, aligned. */
export function formatFields(fields: Array<[string, string | number | boolean | undefined]>): string {
  const width = Math.max(...fields.map(([k]) => k.length))
  return fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${(k + ':').padEnd(width + 1)} ${v}`)
    .join('\n')
}
