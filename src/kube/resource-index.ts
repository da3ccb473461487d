import {parseResourceString} from '../encryption/config/resource-match.js'
import type {ApiResource} from './types.js'

/**
 * Resources from discovery, looked up the ways users and configs name them: plural, singular,
 * kind, short name, with or without `.group`; and the config's wildcards `*.`, `*.apps`, `*.*`
 * (docs/kubernetes-behaviour.md §8.1) expanded to concrete resources.
 */
export class ResourceIndex {
  private readonly byKey = new Map<string, ApiResource>()

  constructor(readonly resources: ApiResource[]) {
    for (const r of resources) {
      const key = `${r.group}/${r.resource}`
      // The first version discovery lists for a group resource is the preferred one.
      if (!this.byKey.has(key)) this.byKey.set(key, r)
    }
  }

  get(group: string, resource: string): ApiResource | undefined {
    return this.byKey.get(`${group}/${resource}`)
  }

  /** Every distinct (group, resource), preferred version only. */
  all(): ApiResource[] {
    return [...this.byKey.values()]
  }

  /**
   * What a user typed before `/name`: `secret`, `secrets`, `Secret`, `deploy`, `deployments.apps`,
   * `pandas.awesome.bears.example`, `deployments.v1.apps`. Core and well-known groups win ties,
   * as in kubectl, by preferring the resource whose group is shortest.
   */
  resolve(text: string): ApiResource | undefined {
    const lower = text.toLowerCase()
    const candidates: Array<{name: string; group?: string; version?: string}> = [{name: lower}]
    const parts = lower.split('.')
    if (parts.length >= 2) candidates.push({name: parts[0], group: parts.slice(1).join('.')})
    if (parts.length >= 3) candidates.push({name: parts[0], version: parts[1], group: parts.slice(2).join('.')})
    for (const candidate of candidates) {
      const matches = this.all().filter(
        (r) =>
          (candidate.group === undefined || r.group === candidate.group) &&
          (candidate.version === undefined || r.version === candidate.version) &&
          (r.resource === candidate.name ||
            r.singularName === candidate.name ||
            r.kind.toLowerCase() === candidate.name ||
            (r.shortNames ?? []).includes(candidate.name)),
      )
      if (matches.length > 0) return matches.sort((a, b) => a.group.length - b.group.length)[0]
    }
    return undefined
  }

  /**
   * A resource string of an EncryptionConfiguration, expanded to the served resources it covers:
   * exact names give at most one; `*.` the core group; `*.G` group G; `*.*` everything that can be
   * listed. Subresources are never included (discovery already drops them).
   */
  expand(pattern: string): ApiResource[] {
    const listable = (r: ApiResource) => r.verbs === undefined || r.verbs.includes('list')
    if (pattern === '*.*') return this.all().filter(listable)
    if (pattern.startsWith('*.')) {
      const group = pattern.slice(2)
      return this.all().filter((r) => r.group === group && listable(r))
    }
    const {group, resource} = parseResourceString(pattern)
    const found = this.get(group, resource)
    return found ? [found] : []
  }
}
