import {etcdPrefixFor} from '../../encryption/storage/etcd-key.js'
import {type EtcdReader, SCAN_PAGE_BYTES} from '../../etcd/etcd-reader.js'
import {classifyValue} from '../../encryption/storage/value-classifier.js'
import type {ApiResource} from '../../kube/types.js'
import type {ObjectRef, StaleObjectIndex} from './rewrite.js'

/**
 * `--only-stale` and `--verify`: which stored values are not under the current write provider and
 * key, read straight from etcd. Classification is by the value's prefix (docs/kubernetes-behaviour.md §3.7): a value is
 * current when it starts with the write provider's prefix (`k8s:enc:aescbc:v1:<first key>:` …),
 * or, when identity writes, when it carries no `k8s:enc:` prefix at all. A KMS v2 value is current
 * when it also carries the key ID the apiservers report as current (read from its EncryptedObject,
 * the KMS is not called), when that is known; else by provider name only.
 */

/** What the config's first provider for a resource writes: `aescbc:key1`, `identity`, `kms:name`. */
export type WriteProvider = string

export function isCurrentValue(
  value: Buffer,
  write: WriteProvider,
  kmsCurrentKeyIdHashes: Record<string, string> = {},
): boolean {
  const head = value.subarray(0, 160).toString('latin1')
  if (write === 'identity') return !head.startsWith('k8s:enc:')
  const [type, name] = write.split(':', 2)
  if (type === 'kms') {
    if (head.startsWith(`k8s:enc:kms:v1:${name}:`)) return true
    if (!head.startsWith(`k8s:enc:kms:v2:${name}:`)) return false
    const current = kmsCurrentKeyIdHashes[name!]
    return current === undefined || classifyValue(value).kmsV2?.keyIDHash === current
  }
  return head.startsWith(`k8s:enc:${type}:v1:${name}:`)
}

export class EtcdStaleIndex implements StaleObjectIndex {
  constructor(
    private readonly reader: EtcdReader,
    /** The write provider for a resource, from the cluster's EncryptionConfiguration. */
    private readonly writeFor: (resource: ApiResource) => WriteProvider,
    private readonly etcdPrefix = '/registry',
    private readonly pageSize = 500,
    /** Per KMS v2 provider, the key ID hash every apiserver reports as current. */
    private readonly kmsCurrentKeyIdHashes: Record<string, string> = {},
  ) {}

  /** Scanned values, for reports. */
  scanned = 0

  async staleObjects(resource: ApiResource, namespace: string | undefined, signal?: AbortSignal): Promise<ObjectRef[]> {
    // docs/kubernetes-behaviour.md §12.1–12.2, one table for the whole plugin (encryption/storage/etcd-key.ts)
    const base = etcdPrefixFor({group: resource.group, resource: resource.resource}, {prefix: this.etcdPrefix})
    const prefix = resource.namespaced && namespace ? `${base}${namespace}/` : base
    const write = this.writeFor(resource)
    const stale: ObjectRef[] = []
    for await (const page of this.reader.range(prefix, {pageSize: this.pageSize, pageBytes: SCAN_PAGE_BYTES})) {
      if (signal?.aborted) break
      for (const kv of page) {
        const rest = kv.key.slice(base.length)
        const parts = rest.split('/')
        // keys of other resources sharing the prefix (e.g. services/endpoints under services/) are not ours
        if (parts.length !== (resource.namespaced ? 2 : 1) || parts.some((p) => p === '')) continue
        this.scanned++
        if (isCurrentValue(kv.value, write, this.kmsCurrentKeyIdHashes)) continue
        stale.push(resource.namespaced ? {namespace: parts[0], name: parts[1]!} : {name: parts[0]!})
      }
    }
    return stale
  }
}
