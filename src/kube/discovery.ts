import type {KubeHttp} from './http.js'
import type {ApiResource, ResourceDiscovery} from './types.js'

interface ApiResourceList {
  groupVersion: string
  resources?: Array<{
    name: string
    singularName?: string
    namespaced: boolean
    kind: string
    verbs?: string[]
    shortNames?: string[]
  }>
}

interface ApiGroupList {
  groups?: Array<{
    name: string
    preferredVersion?: {groupVersion: string; version: string}
    versions?: Array<{groupVersion: string; version: string}>
  }>
}

/** Converts one APIResourceList into ApiResources, dropping subresources (`pods/exec`). */
export function resourcesFromList(list: ApiResourceList): ApiResource[] {
  const slash = list.groupVersion.indexOf('/')
  const group = slash < 0 ? '' : list.groupVersion.slice(0, slash)
  const version = slash < 0 ? list.groupVersion : list.groupVersion.slice(slash + 1)
  return (list.resources ?? [])
    .filter((r) => !r.name.includes('/'))
    .map((r) => ({
      group,
      version,
      resource: r.name,
      kind: r.kind,
      namespaced: r.namespaced,
      singularName: r.singularName || r.kind.toLowerCase(),
      shortNames: r.shortNames ?? [],
      verbs: r.verbs ?? [],
    }))
}

/**
 * Discovery over `/api/v1`, `/apis` and each group's preferred version. A group whose discovery
 * fails (a broken aggregated API) is skipped and named in `failedGroups`, as kubectl warns and goes on.
 */
export class RestResourceDiscovery implements ResourceDiscovery {
  private cache?: Promise<ApiResource[]>
  readonly failedGroups: string[] = []

  constructor(private readonly http: KubeHttp) {}

  resources(): Promise<ApiResource[]> {
    this.cache ??= this.load()
    return this.cache
  }

  private async load(): Promise<ApiResource[]> {
    const what = {verb: 'discover', resource: 'API resources'}
    const [core, groups] = await Promise.all([
      this.http.json<ApiResourceList>({method: 'GET', path: '/api/v1', what}),
      this.http.json<ApiGroupList>({method: 'GET', path: '/apis', what}),
    ])
    const lists = await Promise.all(
      (groups.groups ?? []).map(async (group) => {
        const groupVersion = group.preferredVersion?.groupVersion ?? group.versions?.[0]?.groupVersion
        if (!groupVersion) return []
        try {
          return resourcesFromList(
            await this.http.json<ApiResourceList>({method: 'GET', path: `/apis/${groupVersion}`, what}),
          )
        } catch {
          this.failedGroups.push(group.name)
          return []
        }
      }),
    )
    return [...resourcesFromList({...core, groupVersion: core.groupVersion || 'v1'}), ...lists.flat()]
  }
}
