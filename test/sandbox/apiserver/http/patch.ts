/**
 * PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (merge keys of the core types
 * the sandbox patches; lists without a merge key are replaced) and JSON patch (RFC 6902).
 */
import {errors} from './status.js'

type Json = any

/** patchMergeKey of the list fields strategic merge patch merges by key (core/v1 types). */
const MERGE_KEYS: Record<string, string> = {
  conditions: 'type',
  addresses: 'type',
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  ownerReferences: 'uid',
  containerStatuses: 'name',
  ports: 'containerPort',
  taints: 'key',
  tolerations: 'key',
  images: 'names',
}

export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out = target && typeof target === 'object' && !Array.isArray(target) ? {...target} : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

export function strategicMergePatch(target: Json, patch: Json, field = ''): Json {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field]
    if (!key || !Array.isArray(target)) return patch.filter((p) => !(p && typeof p === 'object' && '$patch' in p))
    const out = target.map((x: Json) => x)
    for (const item of patch) {
      const idx = out.findIndex((x: Json) => x?.[key] === item?.[key])
      if (item?.$patch === 'delete') {
        if (idx !== -1) out.splice(idx, 1)
      } else if (idx !== -1) out[idx] = strategicMergePatch(out[idx], item)
      else out.push(item)
    }
    return out
  }
  if (patch === null || typeof patch !== 'object') return patch
  const out = target && typeof target === 'object' && !Array.isArray(target) ? {...target} : {}
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue
    if (v === null) delete out[k]
    else out[k] = strategicMergePatch(out[k], v, k)
  }
  return out
}

function pointer(path: string): string[] {
  if (path === '') return []
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
}

export function jsonPatch(target: Json, ops: Json[]): Json {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch must be an array of operations')
  let doc = structuredClone(target)
  const parentOf = (parts: string[]) => {
    let node = doc
    for (const p of parts.slice(0, -1)) {
      node = node?.[p]
      if (node === undefined) throw errors.unprocessable(`doc is missing path: "${'/' + parts.join('/')}"`)
    }
    return node
  }
  for (const op of ops) {
    const parts = pointer(op.path ?? '')
    if (parts.length === 0) {
      if (op.op === 'replace' || op.op === 'add') doc = structuredClone(op.value)
      continue
    }
    const last = parts[parts.length - 1]
    const parent = parentOf(parts)
    switch (op.op) {
      case 'add':
        if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, op.value)
        else parent[last] = op.value
        break
      case 'replace':
        if (!(last in parent)) throw errors.unprocessable(`replace operation does not apply: doc is missing key: ${op.path}: missing value`)
        parent[last] = op.value
        break
      case 'remove':
        if (!(last in parent)) throw errors.unprocessable(`remove operation does not apply: doc is missing path: "${op.path}": missing value`)
        if (Array.isArray(parent)) parent.splice(Number(last), 1)
        else delete parent[last]
        break
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw errors.unprocessable(`testing value ${op.path} failed: test failed`)
        break
      default:
        throw errors.badRequest(`Unexpected kind: ${op.op}`)
    }
  }
  return doc
}
