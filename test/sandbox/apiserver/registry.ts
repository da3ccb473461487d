/**
 * The resources the stand-in serves: built-in core/v1 types stored as protobuf, CRDs and custom
 * resources stored as JSON (spec §12–§13). Custom resources appear once their CRD is in etcd.
 */
export interface ResourceInfo {
  group: string
  version: string
  /** plural */
  resource: string
  singular: string
  kind: string
  listKind: string
  namespaced: boolean
  /** etcd key segment(s) after the root, spec §12.2 */
  storagePrefix: string
  encoding: 'protobuf' | 'json'
  shortNames?: string[]
  subresources: string[]
  categories?: string[]
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

function core(resource: string, kind: string, namespaced: boolean, more: Partial<ResourceInfo> = {}): ResourceInfo {
  return {
    group: '',
    version: 'v1',
    resource,
    singular: kind.toLowerCase(),
    kind,
    listKind: `${kind}List`,
    namespaced,
    storagePrefix: resource,
    encoding: 'protobuf',
    subresources: [],
    ...more,
  }
}

export const BUILTIN: ResourceInfo[] = [
  core('configmaps', 'ConfigMap', true, {shortNames: ['cm']}),
  core('endpoints', 'Endpoints', true, {storagePrefix: 'services/endpoints', shortNames: ['ep'], singular: 'endpoints'}),
  core('namespaces', 'Namespace', false, {shortNames: ['ns'], subresources: ['status', 'finalize']}),
  core('nodes', 'Node', false, {storagePrefix: 'minions', shortNames: ['no'], subresources: ['status']}),
  core('pods', 'Pod', true, {shortNames: ['po'], subresources: ['status', 'exec'], categories: ['all']}),
  core('secrets', 'Secret', true),
]

export const CRD_RESOURCE: ResourceInfo = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  resource: 'customresourcedefinitions',
  singular: 'customresourcedefinition',
  kind: 'CustomResourceDefinition',
  listKind: 'CustomResourceDefinitionList',
  namespaced: false,
  storagePrefix: 'apiextensions.k8s.io/customresourcedefinitions',
  encoding: 'json',
  shortNames: ['crd', 'crds'],
  subresources: ['status'],
}

export function verbsFor(info: ResourceInfo): string[] {
  return info.resource === 'namespaces' ? VERBS.filter((v) => v !== 'deletecollection') : VERBS
}

/** A CRD object (apiextensions.k8s.io/v1) turned into the resource it serves, for its storage version. */
export function resourceFromCrd(crd: Record<string, any>): ResourceInfo | undefined {
  const spec = crd?.spec
  if (!spec?.group || !spec?.names?.plural) return undefined
  const versions: any[] = spec.versions ?? []
  const served = versions.find((v) => v.storage) ?? versions[0]
  if (!served) return undefined
  return {
    group: spec.group,
    version: served.name,
    resource: spec.names.plural,
    singular: spec.names.singular ?? String(spec.names.kind).toLowerCase(),
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    namespaced: spec.scope !== 'Cluster',
    storagePrefix: `${spec.group}/${spec.names.plural}`,
    encoding: 'json',
    shortNames: spec.names.shortNames,
    subresources: served.subresources?.status ? ['status'] : [],
    categories: spec.names.categories,
  }
}

export function apiVersionOf(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version
}
