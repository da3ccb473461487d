/**
 * `status --scan --snapshot FILE [--config FILE]`: which providers and keys the values in an etcd
 * backup need, and whether a config opens all of them. Offline: the snapshot is opened by a
 * SnapshotOpener (etcdutl + a temporary etcd on loopback) and read with the same scan engine and
 * the same verdict as `config check` (`scan.ts`, `summarize`), so "opens" means exactly what
 * `config check` means for a live etcd. Results carry `provider:key` names and counts only.
 */
import type {EncryptionConfiguration} from '../../encryption/config/model.js'
import {SCAN_PAGE_BYTES} from '../../etcd/etcd-reader.js'
import type {SnapshotInfo, SnapshotOpener} from '../../etcd/snapshot-etcd.js'
import {CHECK_PREFIX, type ConfigCheckResult, summarize} from './config-check.js'
import {type ScanEntry, scanValues} from './scan-engine.js'

const EXAMPLES = 5

export interface SnapshotNeed {
  /** How the values are stored: `aescbc:key1`, `secretbox:key2`, `kms:vault`, `identity` (plaintext). */
  storedAs: string
  /** Values stored that way. */
  values: number
  /** With --config: how many of them the config cannot read. */
  unreadable?: number
}

export interface SnapshotResource {
  resource: string
  values: number
  /** Values per `provider:key`. */
  storedAs: Record<string, number>
}

export interface SnapshotScanResult {
  snapshot: SnapshotInfo
  /** Keys read under /registry/ (also the ones that are not API objects, which are not counted). */
  keys: number
  /** API object values counted. */
  values: number
  /** Per `provider:key`, in name order: what a config must hold to read this backup. */
  needs: SnapshotNeed[]
  /** The encrypted `provider:key` names among `needs` (identity, plaintext, needs no key). */
  keysNeeded: string[]
  resources: SnapshotResource[]
  /** With --config: `config check`'s verdict on the snapshot's values. */
  config?: Omit<ConfigCheckResult, 'etcd'>
}

export interface SnapshotScanInput {
  file: string
  opener: SnapshotOpener
  /** --config, loaded and validated. */
  config?: {file: string; hash: string; config: EncryptionConfiguration}
  pageSize?: number
  onProgress?: (text: string) => void
}

/** Opens the snapshot, scans every value under /registry/, closes it (also on error). */
export async function scanSnapshot(input: SnapshotScanInput): Promise<SnapshotScanResult> {
  const opened = await input.opener.open(input.file, {onProgress: input.onProgress})
  try {
    const pages = opened.reader.range(CHECK_PREFIX, {
      pageSize: input.pageSize,
      pageBytes: SCAN_PAGE_BYTES,
    }) as AsyncIterable<readonly ScanEntry[]>
    const scan = await scanValues({
      pages,
      config: input.config?.config,
      sampleLimit: EXAMPLES,
      onProgress: (e) => input.onProgress?.(`Scanning ${input.file}: ${e.scanned} values`),
    })
    // Without a config every value is classified by its prefix; with one, a value the config reads
    // is counted under the provider:key that read it and one it cannot under how it is stored:
    // together, how every value is stored.
    const needs = new Map<string, SnapshotNeed>()
    const add = (storedAs: string, values: number, unreadable: number) => {
      const need = needs.get(storedAs) ?? {storedAs, values: 0, ...(input.config ? {unreadable: 0} : {})}
      need.values += values
      if (need.unreadable !== undefined) need.unreadable += unreadable
      needs.set(storedAs, need)
    }
    const resources = scan.resources.map((r): SnapshotResource => {
      const storedAs: Record<string, number> = {}
      for (const [label, n] of Object.entries(r.byProvider)) {
        add(label, n, 0)
        storedAs[label] = (storedAs[label] ?? 0) + n
      }
      for (const [label, n] of Object.entries(r.undecryptableAs)) {
        add(label, n, n)
        storedAs[label] = (storedAs[label] ?? 0) + n
      }
      return {resource: r.resource, values: r.total, storedAs}
    })
    const sorted = [...needs.values()].sort((a, b) => a.storedAs.localeCompare(b.storedAs))
    let config: SnapshotScanResult['config']
    if (input.config) {
      const {etcd: _etcd, ...verdict} = summarize({
        file: input.config.file,
        hash: input.config.hash,
        etcd: opened.reader.describe(),
        keys: scan.keys,
        resources: scan.resources,
      })
      config = verdict
    }
    return {
      snapshot: opened.info,
      keys: scan.keys,
      values: resources.reduce((n, r) => n + r.values, 0),
      needs: sorted,
      keysNeeded: sorted.map((n) => n.storedAs).filter((s) => s !== 'identity'),
      resources,
      ...(config ? {config} : {}),
    }
  } finally {
    await opened.close()
  }
}
