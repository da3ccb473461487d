/**
 * `config check FILE`: if the apiservers ran this EncryptionConfiguration, could they read every
 * value stored in etcd? Streams every value under /registry/ through the scan engine
 * (`scan.ts`) with the file's configuration, which reads each value as the apiserver would
 * (docs/kubernetes-behaviour.md §2.4): plaintext only where the resource's providers include
 * `identity` (or the config does not cover it), keyed values only with a key of that name that
 * decrypts them, KMS values when the config has a KMS provider of that name for the resource (the
 * KMS is never called: such values are counted as readable, not decrypted). Nothing is written;
 * results carry key names and counts, never key material.
 */
import type {EncryptionConfiguration} from '../../encryption/config/model.js'
import {type EtcdReader, type EtcdReaderInfo, SCAN_PAGE_BYTES} from '../../etcd/etcd-reader.js'
import {type ResourceScan, type ScanEntry, scanValues} from './scan-engine.js'

/** The keys a check reads: every API object the apiserver stores. */
export const CHECK_PREFIX = '/registry/'
const EXAMPLES = 5

export interface ConfigCheckResource {
  /** As in configuration files: `secrets`, `deployments.apps`. */
  resource: string
  /** The configuration rule that applies (`secrets`, `*.*`); absent when the config does not cover it. */
  rule?: string
  /** Values stored for this resource. */
  values: number
  /** Values the config could not read. */
  unreadable: number
  /** KMS values counted readable because the config has that KMS provider (not decrypted). */
  kmsNotDecrypted: number
  /** The unreadable values per how they are stored: `aescbc:key1`, `identity` (plaintext), `kms:vault`. */
  unreadableAs: Record<string, number>
  /** The apiserver's error texts for the unreadable values, with counts. */
  errors: Record<string, number>
  /** Up to 5 etcd keys of unreadable values. */
  examples: string[]
}

export interface ConfigCheckResult {
  /** Every value is readable with the file's configuration. */
  readable: boolean
  file: string
  /** `sha256:` of the file's bytes, as the apiserver reports it. */
  hash: string
  etcd: EtcdReaderInfo
  /** Keys read under /registry/ (also the ones that are not API objects, which are not checked). */
  keys: number
  /** API object values checked. */
  values: number
  unreadable: number
  kmsNotDecrypted: number
  /** Every resource with stored values, in name order. */
  resources: ConfigCheckResource[]
  /** Up to 5 etcd keys of unreadable values, across resources. */
  examples: string[]
}

export interface ConfigCheckInput {
  file: string
  hash: string
  config: EncryptionConfiguration
  reader: EtcdReader
  pageSize?: number
  onProgress?: (scanned: number) => void
  signal?: AbortSignal
}

/** Checks every value under /registry/ against the config (the reader is the caller's to close). */
export async function checkConfigAgainstEtcd(input: ConfigCheckInput): Promise<ConfigCheckResult> {
  const {reader} = input
  const pages = reader.range(CHECK_PREFIX, {pageSize: input.pageSize, pageBytes: SCAN_PAGE_BYTES}) as AsyncIterable<
    readonly ScanEntry[]
  >
  const scan = await scanValues({
    pages,
    config: input.config,
    sampleLimit: EXAMPLES,
    onProgress: (e) => input.onProgress?.(e.scanned),
    signal: input.signal,
  })
  return summarize({
    file: input.file,
    hash: input.hash,
    etcd: reader.describe(),
    keys: scan.keys,
    resources: scan.resources,
  })
}

/** The check's verdict from the scan's per-resource counts. */
export function summarize(input: {
  file: string
  hash: string
  etcd: EtcdReaderInfo
  keys: number
  resources: ResourceScan[]
}): ConfigCheckResult {
  const resources = input.resources.map(
    (r): ConfigCheckResource => ({
      resource: r.resource,
      ...(r.rule === undefined ? {} : {rule: r.rule}),
      values: r.total,
      unreadable: r.undecryptable,
      kmsNotDecrypted: r.unverified,
      unreadableAs: r.undecryptableAs,
      errors: r.errors,
      examples: r.samples.undecryptable ?? [],
    }),
  )
  const sum = (pick: (r: ConfigCheckResource) => number) => resources.reduce((n, r) => n + pick(r), 0)
  const unreadable = sum((r) => r.unreadable)
  return {
    readable: unreadable === 0,
    file: input.file,
    hash: input.hash,
    etcd: input.etcd,
    keys: input.keys,
    values: sum((r) => r.values),
    unreadable,
    kmsNotDecrypted: sum((r) => r.kmsNotDecrypted),
    resources,
    examples: resources.flatMap((r) => r.examples).slice(0, EXAMPLES),
  }
}
