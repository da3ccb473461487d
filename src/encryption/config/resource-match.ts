/**
 * Resource strings and provider lookup, as the apiserver builds its per-resource transformer
 * lists (docs/kubernetes-behaviour.md §6.3 step 2 for parsing, §8.2 for building, §8.3 for lookup).
 */
import type {EncryptionConfiguration, GroupResource, ProviderSpec} from './model.js'

/**
 * Parses a resource string into (group, resource) by splitting at the FIRST `.` (docs/kubernetes-behaviour.md §6.3):
 * `secrets` and `secrets.` -> ("", "secrets"); `*.` -> ("", "*"); `*.*` -> ("*", "*");
 * `pandas.awesome.bears.example` -> ("awesome.bears.example", "pandas").
 */
export function parseResourceString(text: string): GroupResource {
  const dot = text.indexOf('.')
  if (dot === -1) return {group: '', resource: text}
  return {group: text.slice(dot + 1), resource: text.slice(0, dot)}
}

/**
 * Renders (group, resource) the way the apiserver names it in messages (docs/kubernetes-behaviour.md §6.6):
 * `resource.group`, `resource` for the core group, `*.` for the core wildcard.
 */
export function formatGroupResource({group, resource}: GroupResource): string {
  if (group === '') return resource === '*' ? '*.' : resource
  return `${resource}.${group}`
}

/** True for `*.*`, `*.<group>` and `*.` (after parsing). */
export function isWildcard(gr: GroupResource): boolean {
  return gr.resource === '*'
}

const mapKey = ({group, resource}: GroupResource) => `${group}\u0000${resource}`

/** Where a resource's provider list came from: the (group, resource) key that matched. */
export interface ProviderLookup {
  providers: ProviderSpec[]
  /** The matched rule rendered as in messages: `secrets`, `*.apps`, `*.`, `*.*`. */
  rule: string
  /** Index of every entry (`resources[i]`) whose list contributed, in file order. */
  entries: number[]
}

/**
 * Builds the per-(group, resource) provider lists (docs/kubernetes-behaviour.md §8.2): entries top to bottom; the same exact
 * key in several entries gets the lists concatenated in file order.
 */
export function buildResourceMap(config: Pick<EncryptionConfiguration, 'resources'>): Map<string, ProviderLookup> {
  const map = new Map<string, ProviderLookup>()
  ;(config.resources ?? []).forEach((entry, index) => {
    for (const text of entry.resources ?? []) {
      const gr = parseResourceString(text)
      const key = mapKey(gr)
      const existing = map.get(key)
      if (existing) {
        if (!existing.entries.includes(index)) {
          existing.providers = [...existing.providers, ...(entry.providers ?? [])]
          existing.entries.push(index)
        }
      } else {
        map.set(key, {providers: [...(entry.providers ?? [])], rule: formatGroupResource(gr), entries: [index]})
      }
    }
  })
  return map
}

/**
 * The lookup of docs/kubernetes-behaviour.md §8.3: exact (G, R), else `*.G` (`*.` for core), else `*.*`, else undefined
 * (the bare identity check: not encrypted, encrypted values refused). There is no fallthrough.
 */
export function lookupProviders(
  config: Pick<EncryptionConfiguration, 'resources'>,
  gr: GroupResource,
  map: Map<string, ProviderLookup> = buildResourceMap(config),
): ProviderLookup | undefined {
  return (
    map.get(mapKey(gr)) ??
    map.get(mapKey({group: gr.group, resource: '*'})) ??
    map.get(mapKey({group: '*', resource: '*'}))
  )
}

/** The provider list used for (group, resource), or undefined when the config does not cover it (docs/kubernetes-behaviour.md §8.3). */
export function providersFor(
  config: Pick<EncryptionConfiguration, 'resources'>,
  gr: GroupResource,
): ProviderSpec[] | undefined {
  return lookupProviders(config, gr)?.providers
}
