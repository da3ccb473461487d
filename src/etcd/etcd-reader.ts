/**
 * Read-only access to etcd, whatever the way in (docs/architecture.md §1): direct gRPC, `etcdctl` inside the
 * etcd mirror pod through pods/exec, or `etcdctl` on a control-plane node over SSH. Operations see
 * only this interface; every result names the transport it used (`describe()`).
 */
export interface EtcdKeyValue {
  key: string
  /** The raw stored bytes, exactly as etcd holds them (encrypted or not). */
  value: Buffer
  /** etcd's mod revision; for API objects this is the object's resourceVersion (docs/kubernetes-behaviour.md §13.1). */
  modRevision: number
}

export type EtcdTransport = 'direct' | 'exec' | 'ssh'

export interface EtcdReaderInfo {
  transport: EtcdTransport
  /** The etcd endpoint(s) etcdctl or the gRPC client talks to. */
  endpoint: string
  /** For exec: `kube-system/etcd-cp1`; for ssh: the node name. */
  via?: string
}

export interface EtcdRangeOptions {
  /** Keys per page (bounded memory); defaults per transport. */
  pageSize?: number
  /**
   * Lets a transport that pays per call (etcdctl through pods/exec or SSH: a process, a TLS
   * handshake, a WebSocket or SSH channel per page) take more keys per page while values are
   * small: aiming at about this many value bytes per page, judged by the page before, at most
   * doubling from one page to the next, never below pageSize and never above MAX_PAGE_KEYS.
   */
  pageBytes?: number
}

/**
 * The most keys a page grows to with `pageBytes`. A page of big values right after small ones is
 * at most this many values (4x the default 500 that would be read without growing).
 */
export const MAX_PAGE_KEYS = 2000

/** What scans ask for: a few MiB per page (for ~1 KiB Secrets, pages grow 500 -> 1000 -> 2000). */
export const SCAN_PAGE_BYTES = 8 * 1024 * 1024

/** The next page size: aims at `pageBytes` given the last page's values, grows at most 2x. */
export function adaptivePageSize(
  current: number,
  minKeys: number,
  pageBytes: number,
  lastPage: {values: number; bytes: number},
): number {
  if (lastPage.values === 0) return current
  const fits = Math.floor(pageBytes / Math.max(1, lastPage.bytes / lastPage.values))
  return Math.min(MAX_PAGE_KEYS, current * 2, Math.max(minKeys, fits))
}

export interface EtcdReader {
  get(key: string): Promise<EtcdKeyValue | undefined>
  /** Every key under `prefix`, in key order, one page at a time. */
  range(prefix: string, options?: EtcdRangeOptions): AsyncIterable<EtcdKeyValue[]>
  describe(): EtcdReaderInfo
  close(): Promise<void>
  /** Starts what the first read needs (loading a client), so that it overlaps other waits; errors wait for that read. */
  prepare?(): void
}

/** The end of the range that holds exactly the keys starting with `prefix` (etcd's prefix end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8')
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1))
      end[i] += 1
      return end
    }
  }
  return Buffer.from([0]) // every key
}

export function describeReader(info: EtcdReaderInfo): string {
  return info.via ? `${info.transport} (${info.via} -> ${info.endpoint})` : `${info.transport} (${info.endpoint})`
}
