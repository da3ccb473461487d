/**
 * `status --scan`: which etcd prefixes to read (the resources the config covers, wildcards expanded
 * through discovery, or --resource), the namespaces that exist (for orphans), and the scan engine
 * over the EtcdReader's pages. Memory stays bounded by one page plus per-resource counters.
 */
import type {EncryptionConfiguration, GroupResource} from '../../encryption/config/model.js'
import {etcdPrefixFor} from '../../encryption/storage/etcd-key.js'
import {isWildcard, parseResourceString} from '../../encryption/config/resource-match.js'
import {type EtcdReader, type EtcdReaderInfo, SCAN_PAGE_BYTES} from '../../etcd/etcd-reader.js'
import {usageError} from '../../errors.js'
import {ResourceIndex} from '../../kube/resource-index.js'
import type {ApiResource, ObjectClient, ResourceDiscovery} from '../../kube/types.js'
import {type KmsKeyCount, scanValues} from '../scan/scan-engine.js'

/** What a scan found, per resource and in total (`status --scan`, the follow-ups' scan, recover). */
export interface ScanSummary {
  etcd: EtcdReaderInfo
  keys: number
  resources: Array<{
    resource: string
    total: number
    byProvider: Record<string, number>
    plaintext: number
    stale: number
    undecryptable: number
    unverified: number
    orphans: number
    writes?: string
    kmsKeys?: KmsKeyCount[]
    samples: Partial<Record<string, string[]>>
  }>
  totals: {total: number; plaintext: number; stale: number; undecryptable: number; unverified: number; orphans: number}
}

const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}

export interface StatusScanInput {
  reader: EtcdReader
  config?: EncryptionConfiguration
  objects: ObjectClient
  discovery: ResourceDiscovery
  /** --resource values; default: what the config covers (secrets without a config). */
  resources?: string[]
  pageSize?: number
  etcdPrefix?: string
  /** Per KMS v2 provider, the key ID hash the apiservers report as current (see ScanInput). */
  kmsCurrentKeyIdHashes?: Record<string, string>
  onProgress?: (scanned: number) => void
}

/** The (group, resource) pairs to scan. */
export async function scanTargets(
  input: Pick<StatusScanInput, 'config' | 'discovery' | 'resources'>,
): Promise<GroupResource[]> {
  let index: ResourceIndex | undefined
  const discover = async () => (index ??= new ResourceIndex(await input.discovery.resources()))
  const targets: GroupResource[] = []
  if (input.resources && input.resources.length > 0) {
    for (const text of input.resources) {
      const found = (await discover()).resolve(text)
      if (!found)
        throw usageError('RESOURCE_UNKNOWN', `the server has no resource ${JSON.stringify(text)}`, {
          hint: "See 'kubectl api-resources'.",
        })
      targets.push({group: found.group, resource: found.resource})
    }
  } else if (input.config) {
    for (const entry of input.config.resources ?? []) {
      for (const text of entry.resources ?? []) {
        const gr = parseResourceString(text)
        if (isWildcard(gr))
          for (const r of (await discover()).expand(text)) targets.push({group: r.group, resource: r.resource})
        else targets.push(gr)
      }
    }
  } else {
    targets.push({group: '', resource: 'secrets'})
  }
  return targets
}

/** Distinct prefixes, none inside another, in key order. */
export function scanPrefixes(targets: GroupResource[], etcdPrefix?: string): string[] {
  const prefixes = [...new Set(targets.map((gr) => etcdPrefixFor(gr, {prefix: etcdPrefix})))].sort()
  return prefixes.filter((p) => !prefixes.some((other) => other !== p && p.startsWith(other)))
}

async function namespaceNames(objects: ObjectClient): Promise<Set<string> | undefined> {
  const names = new Set<string>()
  let continueToken: string | undefined
  try {
    do {
      const page = await objects.list(NAMESPACES, {limit: 500, continueToken})
      for (const item of page.items) names.add(item.metadata.name)
      continueToken = page.continueToken
    } while (continueToken)
  } catch {
    return undefined // without the namespace list, orphans are not counted
  }
  return names
}

export async function scanForStatus(input: StatusScanInput): Promise<ScanSummary> {
  // The namespace list and discovery are independent round trips to the apiserver: in parallel,
  // and the etcd client loads meanwhile.
  input.reader.prepare?.()
  const namespacesListed = namespaceNames(input.objects)
  const prefixes = scanPrefixes(await scanTargets(input), input.etcdPrefix)
  const namespaces = await namespacesListed
  const {reader} = input
  async function* pages() {
    for (const prefix of prefixes) yield* reader.range(prefix, {pageSize: input.pageSize, pageBytes: SCAN_PAGE_BYTES})
  }
  const result = await scanValues({
    pages: pages(),
    config: input.config,
    namespaces,
    etcdPrefix: input.etcdPrefix,
    kmsCurrentKeyIdHashes: input.kmsCurrentKeyIdHashes,
    onProgress: (event) => input.onProgress?.(event.scanned),
  })
  return {etcd: reader.describe(), keys: result.keys, resources: result.resources, totals: result.totals}
}
