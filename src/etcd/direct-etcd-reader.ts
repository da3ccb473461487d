import {readFileSync} from 'node:fs'

import type {Etcd3} from 'etcd3'

import {usageError} from '../errors.js'
import {settle} from '../settle.js'
import {etcdDenied, etcdError} from './etcd-errors.js'
import {
  adaptivePageSize,
  type EtcdKeyValue,
  type EtcdRangeOptions,
  type EtcdReader,
  type EtcdReaderInfo,
  prefixRangeEnd,
} from './etcd-reader.js'

export interface DirectEtcdOptions {
  /** etcdctl's --endpoints: `https://10.0.0.1:2379`, or `host:port` (https when certificates are given). */
  endpoints: string[]
  cacert?: string
  cert?: string
  key?: string
  dialTimeoutMs?: number
  callTimeoutMs?: number
  /**
   * The one bound on each read, retries included (--request-timeout; default 30 s). etcd3 retries a
   * call that times out, so an endpoint that accepts and never answers cost ~95 s whatever the flag.
   */
  timeoutMs?: number
}

interface RawKv {
  key: Buffer
  value: Buffer
  mod_revision: string | number
}

function readFlagFile(flag: string, path: string | undefined): Buffer | undefined {
  if (!path) return undefined
  try {
    return readFileSync(path)
  } catch (error) {
    throw usageError(
      'ETCD_CERT_UNREADABLE',
      `cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        hint: `Pass a readable file to ${flag}.`,
      },
    )
  }
}

/** Adds the scheme etcdctl would assume: https with certificates, http without. */
export function normalizeEndpoint(endpoint: string, tls: boolean): string {
  const trimmed = endpoint.trim()
  if (/^https?:\/\//.test(trimmed)) return trimmed
  return `${tls ? 'https' : 'http'}://${trimmed}`
}

/** gRPC straight to etcd with the etcd3 package (lazily imported), etcdctl's flags and certificates. */
export class DirectEtcdReader implements EtcdReader {
  private client?: Promise<Etcd3>
  private readonly hosts: string[]

  constructor(private readonly options: DirectEtcdOptions) {
    if (options.endpoints.length === 0) throw usageError('USAGE', '--etcd-endpoints needs at least one endpoint')
    if (Boolean(options.cert) !== Boolean(options.key))
      throw usageError('USAGE', '--etcd-cert and --etcd-key go together')
    const tls = Boolean(options.cacert || options.cert)
    this.hosts = options.endpoints.map((e) => normalizeEndpoint(e, tls))
  }

  describe(): EtcdReaderInfo {
    return {transport: 'direct', endpoint: this.hosts.join(',')}
  }

  prepare(): void {
    this.connect().catch(() => {}) // the same rejection reaches the first read
  }

  private connect(): Promise<Etcd3> {
    this.client ??= (async () => {
      const ca = readFlagFile('--etcd-cacert', this.options.cacert)
      const cert = readFlagFile('--etcd-cert', this.options.cert)
      const key = readFlagFile('--etcd-key', this.options.key)
      const {Etcd3} = await import('etcd3')
      const callTimeout = Math.min(this.options.callTimeoutMs ?? 30_000, this.timeoutMs)
      return new Etcd3({
        hosts: this.hosts,
        credentials:
          ca || cert ? {rootCertificate: ca ?? Buffer.alloc(0), certChain: cert, privateKey: key} : undefined,
        dialTimeout: Math.min(this.options.dialTimeoutMs ?? 5000, this.timeoutMs),
        // As etcdctl (--max-recv-bytes, default MaxInt32): a page's size is bounded by its keys,
        // not by gRPC's default 4 MiB, which 500 values of 9 KiB would already exceed.
        grpcOptions: {'grpc.max_receive_message_length': 0x7fffffff},
        defaultCallOptions: (context) => (context.isStream ? {} : {deadline: Date.now() + callTimeout}),
      })
    })()
    return this.client
  }

  private fail(what: string, error: unknown): Error {
    const name = (error as Error)?.constructor?.name ?? ''
    const message = ((error as Error)?.message ?? String(error)).split('\n')[0]
    if (/PermissionDenied|Unauthenticated|AuthenticationFailed/.test(name))
      return etcdDenied(this.describe(), what, message, error)
    return etcdError(this.describe(), what, message, error)
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs && this.options.timeoutMs > 0
      ? this.options.timeoutMs
      : (this.options.callTimeoutMs ?? 30_000)
  }

  /** `call`, or a timeout error after timeoutMs (the call is left to the client's own deadline). */
  private bounded<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const ms = this.timeoutMs
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s (--request-timeout)`)), ms)
    })
    return Promise.race([call, deadline]).finally(() => clearTimeout(timer))
  }

  async get(key: string): Promise<EtcdKeyValue | undefined> {
    const client = await this.connect()
    try {
      const response = await this.bounded(client.get(key).exec())
      const kv = response.kvs[0] as RawKv | undefined
      return kv
        ? {key: kv.key.toString('utf8'), value: Buffer.from(kv.value), modRevision: Number(kv.mod_revision)}
        : undefined
    } catch (error) {
      throw this.fail(`read ${key}`, error)
    }
  }

  /**
   * Pages of `prefix`, pinned to the first page's revision. The next page is requested as soon as
   * a page arrives, before the caller processes it, so that etcd prepares it meanwhile (one
   * request in flight at most: each page starts after the last key of the one before). Values are
   * views into the page's gRPC message, not copies: a page's memory goes when the page does.
   */
  async *range(prefix: string, options: EtcdRangeOptions = {}): AsyncIterable<EtcdKeyValue[]> {
    const client = await this.connect()
    const {Range} = await import('etcd3')
    const minPageSize = options.pageSize ?? 500
    const end = prefixRangeEnd(prefix)
    // Pin every page to the first page's revision so the listing is one consistent snapshot;
    // if etcd compacts that revision mid-way, carry on unpinned from where we stood.
    let revision: string | undefined
    const request = (start: Buffer, limit: number) => {
      const builder = client.getAll().inRange(new Range(start, end)).limit(limit)
      if (revision) builder.revision(revision)
      const response = settle(this.bounded(builder.exec()))
      return {start, limit, response}
    }
    let next = request(Buffer.from(prefix, 'utf8'), minPageSize)
    for (;;) {
      const current = next
      const answer = await current.response
      if ('error' in answer) {
        if (revision && /compacted/i.test((answer.error as Error).message)) {
          revision = undefined
          next = request(current.start, current.limit)
          continue
        }
        throw this.fail(`list ${prefix}`, answer.error)
      }
      const response = answer.value
      revision ??= String(response.header.revision)
      const kvs = response.kvs as RawKv[]
      const page: EtcdKeyValue[] = new Array(kvs.length)
      let bytes = 0
      for (let i = 0; i < kvs.length; i++) {
        const kv = kvs[i]
        bytes += kv.value.length
        page[i] = {key: kv.key.toString('utf8'), value: kv.value, modRevision: Number(kv.mod_revision)}
      }
      const more = response.more && kvs.length > 0
      if (more) {
        const limit = options.pageBytes
          ? adaptivePageSize(current.limit, minPageSize, options.pageBytes, {values: kvs.length, bytes})
          : current.limit
        next = request(Buffer.concat([kvs[kvs.length - 1].key, Buffer.from([0])]), limit)
      }
      if (page.length > 0) yield page
      if (!more) return
    }
  }

  async close(): Promise<void> {
    if (!this.client) return
    const client = await this.client.catch(() => undefined)
    client?.close()
    this.client = undefined
  }
}
