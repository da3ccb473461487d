import {etcdDenied, etcdError} from './etcd-errors.js'
import {
  adaptivePageSize,
  type EtcdKeyValue,
  type EtcdRangeOptions,
  type EtcdReader,
  type EtcdReaderInfo,
  prefixRangeEnd,
} from './etcd-reader.js'

/** Where etcdctl runs and what it talks to; the paths are on the machine (pod, node) that runs it. */
export interface EtcdctlTarget {
  /** e.g. `https://127.0.0.1:2379` */
  endpoint: string
  cacert?: string
  cert?: string
  key?: string
  /** The etcdctl executable; `etcdctl` from PATH by default. */
  binary?: string
  /** etcdctl's --command-timeout in seconds (an unreachable etcd takes this long to fail); 15 by default. */
  commandTimeoutSeconds?: number
}

/** kubeadm's etcd certificate paths, as its own etcd liveness checks use them. */
export const KUBEADM_ETCDCTL_CERTS = {
  cacert: '/etc/kubernetes/pki/etcd/ca.crt',
  cert: '/etc/kubernetes/pki/etcd/healthcheck-client.crt',
  key: '/etc/kubernetes/pki/etcd/healthcheck-client.key',
} as const

export interface EtcdctlRunResult {
  code: number
  stdout: Buffer
  stderr: string
}

/** Runs one etcdctl argv somewhere (no shell); transport failures reject with a PluginError. */
export type EtcdctlRunner = (argv: string[]) => Promise<EtcdctlRunResult>

interface EtcdctlJsonKv {
  key: string
  value?: string
  mod_revision?: number | string
}

export interface EtcdctlJson {
  header?: {revision?: number | string}
  kvs?: EtcdctlJsonKv[]
  more?: boolean
  count?: number | string
}

/** Decodes `etcdctl get -w json` output: keys and values are standard base64 in that JSON. */
export function parseEtcdctlJson(stdout: Buffer | string): {kvs: EtcdKeyValue[]; more: boolean; revision?: number} {
  const text = stdout.toString().trim()
  if (!text) throw new Error('etcdctl printed nothing')
  let parsed: EtcdctlJson
  try {
    parsed = JSON.parse(text) as EtcdctlJson
  } catch {
    throw new Error('etcdctl did not print JSON (is -w json supported by this etcdctl?)')
  }
  const kvs = (parsed.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString('utf8'),
    value: Buffer.from(kv.value ?? '', 'base64'),
    modRevision: Number(kv.mod_revision ?? 0),
  }))
  const revision = parsed.header?.revision === undefined ? undefined : Number(parsed.header.revision)
  return {kvs, more: Boolean(parsed.more), revision}
}

/** etcdctl's global flags for the target: endpoint and certificates, never any secret bytes. */
export function etcdctlBaseArgv(target: EtcdctlTarget): string[] {
  const argv = [target.binary ?? 'etcdctl', `--endpoints=${target.endpoint}`]
  if (target.cacert) argv.push(`--cacert=${target.cacert}`)
  if (target.cert) argv.push(`--cert=${target.cert}`)
  if (target.key) argv.push(`--key=${target.key}`)
  argv.push('--dial-timeout=5s', `--command-timeout=${target.commandTimeoutSeconds ?? 15}s`)
  return argv
}

/** etcdctl's own `Error: …` line, else the last non-log line; its JSON log lines are noise here. */
function errorText(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  const error = lines.find((line) => line.startsWith('Error:'))
  if (error) return error.slice('Error:'.length).trim()
  return lines.filter((line) => !line.startsWith('{')).at(-1) ?? lines.at(-1) ?? 'no error text'
}

/**
 * EtcdReader on `etcdctl get … -w json`, wherever the runner executes it. Ranges are paged with
 * `--limit` over an explicit [start, end) range pinned to one revision (`--rev`), so memory stays
 * bounded by one page and the listing is one consistent snapshot.
 */
export class EtcdctlReader implements EtcdReader {
  constructor(
    private readonly run: EtcdctlRunner,
    private readonly target: EtcdctlTarget,
    private readonly info: EtcdReaderInfo,
  ) {}

  describe(): EtcdReaderInfo {
    return this.info
  }

  private async etcdctlGet(what: string, args: string[]): Promise<ReturnType<typeof parseEtcdctlJson>> {
    const argv = [...etcdctlBaseArgv(this.target), 'get', '-w', 'json', ...args]
    let result: EtcdctlRunResult
    try {
      result = await this.run(argv)
    } catch (error) {
      throw etcdError(this.info, what, (error as Error).message, error)
    }
    if (result.code !== 0) {
      const reason = errorText(result.stderr)
      if (/permission denied|authentication failed|user name is empty/i.test(reason))
        throw etcdDenied(this.info, what, reason)
      const error = etcdError(this.info, what, `etcdctl exited with ${result.code}: ${reason}`)
      if (/compacted/i.test(reason)) (error as Error & {compacted?: boolean}).compacted = true
      throw error
    }
    try {
      return parseEtcdctlJson(result.stdout)
    } catch (error) {
      throw etcdError(this.info, what, (error as Error).message)
    }
  }

  async get(key: string): Promise<EtcdKeyValue | undefined> {
    const {kvs} = await this.etcdctlGet(`read ${key}`, ['--', key])
    return kvs.find((kv) => kv.key === key)
  }

  async *range(prefix: string, options: EtcdRangeOptions = {}): AsyncIterable<EtcdKeyValue[]> {
    const minPageSize = options.pageSize ?? 250
    let pageSize = minPageSize
    const end = prefixRangeEnd(prefix).toString('utf8')
    let start = prefix
    let after: string | undefined // the last key already yielded; pages start at it (inclusive) and drop it
    let revision: number | undefined
    for (;;) {
      const args = [`--limit=${after === undefined ? pageSize : pageSize + 1}`]
      if (revision !== undefined) args.push(`--rev=${revision}`)
      let page: ReturnType<typeof parseEtcdctlJson>
      try {
        page = await this.etcdctlGet(`list ${prefix}`, [...args, '--', start, end])
      } catch (error) {
        if (revision !== undefined && (error as {compacted?: boolean}).compacted) {
          revision = undefined
          continue
        }
        throw error
      }
      revision ??= page.revision
      const kvs = after === undefined ? page.kvs : page.kvs.filter((kv) => kv.key !== after)
      if (options.pageBytes) {
        let bytes = 0
        for (const kv of kvs) bytes += kv.value.length
        pageSize = adaptivePageSize(pageSize, minPageSize, options.pageBytes, {values: kvs.length, bytes})
      }
      if (kvs.length > 0) yield kvs
      if (!page.more || kvs.length === 0) return
      after = kvs.at(-1)?.key
      start = after as string
    }
  }

  async close(): Promise<void> {}
}
