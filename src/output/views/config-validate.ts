import {formatFields, formatTable} from '../render.js'

/** What `config validate` reports about a file. */
export interface ValidateResult {
  valid: boolean
  file: string
  /** `sha256:` of the raw file bytes, as the apiserver reports it (docs/kubernetes-behaviour.md §5.6). */
  hash?: string
  targetVersion: string
  /** The whole error as kube-apiserver would log it; absent when valid. */
  message?: string
  errors: Array<{field: string; type: string; detail: string}>
  warnings: string[]
}

/** `config validate` as text: the verdict, and the apiserver's message and every field error when invalid. */
export function configValidateView(result: ValidateResult): string {
  const head = formatFields([
    ['File', result.file],
    ['Valid', result.valid ? 'yes' : 'NO'],
    ['Hash', result.hash],
    ['Target', `Kubernetes ${result.targetVersion}`],
    ['Warnings', result.warnings.length],
  ])
  if (result.valid) return head
  const table = formatTable(
    ['Field', 'Type', 'Detail'],
    result.errors.map((e) => [e.field || '-', e.type, e.detail.replaceAll('\n', ' ')]),
  )
  return `${head}\n\n${result.message ?? ''}\n\n${table}`
}
