/**
 * Label and field selectors as list requests use them (k8s.io/apimachinery labels/fields syntax):
 * `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`; fields: `=`, `==`, `!=`.
 */
import {errors} from '../http/status.js'

type Json = Record<string, any>
export type Matcher = (obj: Json) => boolean

function splitTerms(text: string): string[] {
  const terms: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      terms.push(current.trim())
      current = ''
    } else current += ch
  }
  if (current.trim()) terms.push(current.trim())
  return terms
}

export function parseLabelSelector(text: string | null): Matcher {
  if (!text) return () => true
  const tests = splitTerms(text).map((term): Matcher => {
    const labels = (o: Json): Record<string, string> => o?.metadata?.labels ?? {}
    let m: RegExpMatchArray | null
    if ((m = term.match(/^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const [, key, op, list] = m
      const values = list.split(',').map((v) => v.trim())
      return op === 'in'
        ? (o) => key in labels(o) && values.includes(labels(o)[key])
        : (o) => !(key in labels(o)) || !values.includes(labels(o)[key])
    }
    if ((m = term.match(/^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/))) {
      const [, key, op, value] = m
      return op === '!=' ? (o) => labels(o)[key] !== value : (o) => key in labels(o) && labels(o)[key] === value
    }
    if ((m = term.match(/^!\s*([^\s!=]+)$/))) {
      const key = m[1]
      return (o) => !(key in labels(o))
    }
    if ((m = term.match(/^([^\s!=()]+)$/))) {
      const key = m[1]
      return (o) => key in labels(o)
    }
    throw errors.badRequest(`unable to parse requirement: ${term}`)
  })
  return (o) => tests.every((t) => t(o))
}

/** Field labels each resource supports (its registry's field set); metadata.* everywhere. */
const FIELDS: Record<string, string[]> = {
  secrets: ['type'],
  pods: ['spec.nodeName', 'status.phase', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.podIP'],
  namespaces: ['status.phase'],
  nodes: ['spec.unschedulable'],
}

function lookup(obj: Json, path: string): string {
  let v: any = obj
  for (const part of path.split('.')) v = v?.[part]
  return v === undefined || v === null ? '' : String(v)
}

export function parseFieldSelector(text: string | null, resource: string, kind: string, apiVersion: string): Matcher {
  if (!text) return () => true
  const tests = splitTerms(text).map((term): Matcher => {
    const m = term.match(/^([^!=]+?)\s*(==|=|!=)\s*(.*)$/)
    if (!m) throw errors.badRequest(`invalid selector: '${text}'; can't understand '${term}'`)
    const [, field, op, value] = m
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !(FIELDS[resource] ?? []).includes(field))
      throw errors.badRequest(`field label not supported: ${field}`)
    return op === '!=' ? (o) => lookup(o, field) !== value : (o) => lookup(o, field) === value
  })
  void kind
  void apiVersion
  return (o) => tests.every((t) => t(o))
}
