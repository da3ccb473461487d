import {type Document, isMap, isScalar, isSeq, type YAMLMap, type YAMLSeq} from 'yaml'

/**
 * Helpers for editing YAML documents in place with the `yaml` Document API, so comments, key order
 * and quoting survive (docs/architecture.md §3 step 1). Output keeps the source's sequence indentation style.
 */
export function toStringLikeSource(doc: Document, source: string): string {
  // kubeadm (and Go's yaml) writes block sequences at the same indentation as their parent key;
  // that is the default unless the source clearly indents them.
  const compact = /^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(source)
  const indented = /^( *)[^\s#-][^\n]*:[ \t]*\n\1 +- /m.test(source)
  return doc.toString({indentSeq: indented && !compact, lineWidth: 0, minContentWidth: 0})
}

export function scalarText(node: unknown): string | undefined {
  if (isScalar(node)) return node.value === null || node.value === undefined ? undefined : String(node.value)
  return undefined
}

export function mapGet(map: unknown, key: string): unknown {
  return isMap(map) ? map.get(key, true) : undefined
}

export function mapGetText(map: unknown, key: string): string | undefined {
  return scalarText(mapGet(map, key))
}

export function asSeq(node: unknown): YAMLSeq | undefined {
  return isSeq(node) ? node : undefined
}

export function asMap(node: unknown): YAMLMap | undefined {
  return isMap(node) ? node : undefined
}
