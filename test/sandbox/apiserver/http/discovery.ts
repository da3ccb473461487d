/** Legacy (non-aggregated) discovery documents: /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>. */
import {createHash} from 'node:crypto'
import {BUILTIN, CRD_RESOURCE, verbsFor, type ResourceInfo} from '../registry.js'

function storageVersionHash(info: ResourceInfo): string {
  return createHash('sha256').update(`${info.group}/${info.version}/${info.kind}`).digest('base64').slice(0, 11)
}

const SUBRESOURCE: Record<string, {kind: string; verbs: string[]}> = {
  status: {kind: '', verbs: ['get', 'patch', 'update']},
  exec: {kind: 'PodExecOptions', verbs: ['create', 'get']},
  finalize: {kind: 'Namespace', verbs: ['update']},
}

export function apiResourceList(groupVersion: string, resources: ResourceInfo[]): Record<string, unknown> {
  const list: Record<string, unknown>[] = []
  for (const info of resources) {
    const entry: Record<string, unknown> = {
      name: info.resource,
      singularName: info.singular,
      namespaced: info.namespaced,
      kind: info.kind,
      verbs: verbsFor(info),
    }
    if (info.shortNames?.length) entry.shortNames = info.shortNames
    if (info.categories?.length) entry.categories = info.categories
    entry.storageVersionHash = storageVersionHash(info)
    list.push(entry)
    for (const sub of info.subresources) {
      const s = SUBRESOURCE[sub]
      list.push({name: `${info.resource}/${sub}`, singularName: '', namespaced: info.namespaced, kind: s.kind || info.kind, verbs: s.verbs})
    }
  }
  return {kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources: list}
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{clientCIDR: '0.0.0.0/0', serverAddress}]}
}

function apiGroup(group: string, version: string): Record<string, unknown> {
  const gv = {groupVersion: `${group}/${version}`, version}
  return {name: group, versions: [gv], preferredVersion: gv}
}

export function apiGroupList(customResources: ResourceInfo[]): Record<string, unknown> {
  const groups = new Map<string, string>([[CRD_RESOURCE.group, CRD_RESOURCE.version]])
  for (const cr of customResources) if (!groups.has(cr.group)) groups.set(cr.group, cr.version)
  return {kind: 'APIGroupList', apiVersion: 'v1', groups: [...groups].map(([g, v]) => apiGroup(g, v))}
}

export function apiGroupDocument(group: string, version: string): Record<string, unknown> {
  return {kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, version)}
}

export const CORE_RESOURCES = BUILTIN
