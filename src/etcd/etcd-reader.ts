/**
 * Read-only access to etcd, whatever the way in (DESIGN.md §1): direct gRPC, `etcdctl` inside the
 * etcd mirror pod through pods/exec, or `etcdctl` on a control-plane node over SSH. Operations see
 * only this interface; every result names the transport it used (`describe()`).
 */
export interface EtcdKeyValue {
  key: string
  /** The raw stored bytes, exactly as etcd holds them (encrypted or not). */
  value: Buffer
  /** etcd's mod revision; for API objects this is the object's resourceVersion (spec §13.1). */
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
}

export interface EtcdReader {
  get(key: string): Promise<EtcdKeyValue | undefined>
  /** Every key under `prefix`, in key order, one page at a time. */
  range(prefix: string, options?: EtcdRangeOptions): AsyncIterable<EtcdKeyValue[]>
  describe(): EtcdReaderInfo
  close(): Promise<void>
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
