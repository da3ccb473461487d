/** One sample of the Prometheus text exposition format. */
export interface MetricSample {
  name: string
  labels: Record<string, string>
  value: number
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return NaN
  return Number(text)
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    while (text[i] === ',' || text[i] === ' ') i++
    if (i >= text.length) break
    const eq = text.indexOf('=', i)
    if (eq < 0) break
    const name = text.slice(i, eq).trim()
    i = eq + 1
    if (text[i] !== '"') break
    i++
    let value = ''
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < text.length) {
        const next = text[i + 1]
        value += next === 'n' ? '\n' : next
        i += 2
      } else {
        value += text[i++]
      }
    }
    i++ // closing quote
    labels[name] = value
  }
  return labels
}

/** One sample line (trimmed, not a comment) as a sample; undefined when it names no metric. */
function parseSampleLine(line: string): MetricSample | undefined {
  let end = -1
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 123 /* { */ || c === 32 || c === 9) {
      end = i
      break
    }
  }
  if (end <= 0) return undefined
  let labels: Record<string, string> = {}
  let rest: string
  if (line.charCodeAt(end) === 123) {
    // The closing brace is the last `}` before the value; label values may contain `}`.
    const close = line.lastIndexOf('}')
    labels = parseLabels(line.slice(end + 1, close))
    rest = line.slice(close + 1).trim()
  } else {
    rest = line.slice(end + 1).trim()
  }
  return {name: line.slice(0, end), labels, value: parseValue(rest.split(/\s+/)[0])}
}

/**
 * Parses `/metrics` (Prometheus text format 0.0.4): comments skipped, labels unescaped, timestamps
 * ignored. With `names`, only those metrics' samples, in the order of the text: an apiserver's
 * /metrics is ~2 MB and ~17,000 samples of which a caller needs a handful, so each name's lines are
 * found with indexOf instead of every line being split out and read.
 */
export function parsePrometheusText(text: string, names?: ReadonlySet<string>): MetricSample[] {
  if (!names) {
    const samples: MetricSample[] = []
    for (const raw of text.split('\n')) {
      const line = raw.trim()
      if (!line || line.startsWith('#')) continue
      const sample = parseSampleLine(line)
      if (sample) samples.push(sample)
    }
    return samples
  }
  const found: Array<{at: number; sample: MetricSample}> = []
  for (const name of names) {
    for (
      let at = text.startsWith(name) ? 0 : text.indexOf(`\n${name}`);
      at >= 0;
      at = text.indexOf(`\n${name}`, at + 1)
    ) {
      const start = text.charCodeAt(at) === 10 ? at + 1 : at
      const next = text.charCodeAt(start + name.length)
      if (next !== 123 && next !== 32 && next !== 9) continue // a longer name
      const stop = text.indexOf('\n', start)
      const sample = parseSampleLine(text.slice(start, stop < 0 ? text.length : stop).trim())
      if (sample) found.push({at: start, sample})
    }
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.sample)
}

export interface TransformationCount {
  /** Since 1.32; empty before (docs/kubernetes-behaviour.md §11.1). */
  resource: string
  type: string
  prefix: string
  status: string
  count: number
}

/** What `/metrics` says about encryption on one apiserver (docs/kubernetes-behaviour.md §11.1, §11.3). */
export interface EncryptionMetrics {
  /** `apiserver_encryption_config_controller_last_config_info{hash}` (1.34+): the loaded config's hash. */
  lastConfigHash?: string
  apiserverIdHash?: string
  /** Reload counters: `automatic_reloads_total{status}` (1.30+) or the older success/failure totals. */
  reloads: {success: number; failure: number}
  lastReloadSeconds: {success?: number; failure?: number}
  transformations: TransformationCount[]
  /** KMS v2 key ID hashes with the last time each was seen (docs/kubernetes-behaviour.md §11.2). */
  kmsKeyIds: KmsKeyIdSample[]
}

/** One `apiserver_envelope_encryption_key_id_hash_*last_timestamp_seconds` sample. */
export interface KmsKeyIdSample {
  provider: string
  /** `sha256:` + hex of the key ID: the apiserver never exposes the key ID itself. */
  keyIdHash: string
  /** `status`: the plugin's Status answer; `from_storage`/`to_storage`: a read or write used it. */
  source: 'status' | 'from_storage' | 'to_storage'
  lastSeconds: number
}

/** A KMS v2 provider's current key ID as one apiserver reports it. */
export interface CurrentKmsKey {
  provider: string
  keyIdHash: string
  /** The newest Status answer wins; without one (metrics evicted), the newest write. */
  source: 'status' | 'to_storage'
  /** When the apiserver last saw it, RFC 3339. */
  at: string
}

/** Per provider, the key ID hash of the newest Status answer (else of the newest write). */
export function currentKmsKeys(samples: KmsKeyIdSample[]): CurrentKmsKey[] {
  const best = new Map<string, KmsKeyIdSample>()
  for (const s of samples) {
    if (s.source === 'from_storage' || !s.keyIdHash) continue
    const seen = best.get(s.provider)
    const rank = (x: KmsKeyIdSample) => (x.source === 'status' ? 1 : 0)
    if (!seen || rank(s) > rank(seen) || (rank(s) === rank(seen) && s.lastSeconds > seen.lastSeconds))
      best.set(s.provider, s)
  }
  return [...best.values()]
    .sort((a, b) => a.provider.localeCompare(b.provider))
    .map((s) => ({
      provider: s.provider,
      keyIdHash: s.keyIdHash,
      source: s.source as 'status' | 'to_storage',
      at: new Date(s.lastSeconds * 1000).toISOString(),
    }))
}

const PREFIX = 'apiserver_encryption_config_controller_'

/** The metrics `encryptionMetrics` reads: pass to `parsePrometheusText` to parse only those. */
export const ENCRYPTION_METRIC_NAMES: ReadonlySet<string> = new Set([
  `${PREFIX}last_config_info`,
  `${PREFIX}automatic_reloads_total`,
  `${PREFIX}automatic_reload_last_timestamp_seconds`,
  `${PREFIX}automatic_reload_success_total`,
  `${PREFIX}automatic_reload_failures_total`,
  'apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds',
  'apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds',
  'apiserver_storage_transformation_operations_total',
])

/** `encryptionMetrics` of a `/metrics` text, parsing only the samples it reads. */
export function encryptionMetricsOf(text: string): EncryptionMetrics {
  return encryptionMetrics(parsePrometheusText(text, ENCRYPTION_METRIC_NAMES))
}

export function encryptionMetrics(samples: MetricSample[]): EncryptionMetrics {
  const result: EncryptionMetrics = {
    reloads: {success: 0, failure: 0},
    lastReloadSeconds: {},
    transformations: [],
    kmsKeyIds: [],
  }
  let sawNewCounter = false
  for (const s of samples) {
    switch (s.name) {
      case `${PREFIX}last_config_info`:
        if (s.value === 1 || result.lastConfigHash === undefined) {
          result.lastConfigHash = s.labels.hash || undefined
          result.apiserverIdHash = s.labels.apiserver_id_hash || result.apiserverIdHash
        }
        break
      case `${PREFIX}automatic_reloads_total`:
        sawNewCounter = true
        if (s.labels.status === 'success' || s.labels.status === 'failure') result.reloads[s.labels.status] += s.value
        break
      case `${PREFIX}automatic_reload_last_timestamp_seconds`:
        if (s.labels.status === 'success' || s.labels.status === 'failure')
          result.lastReloadSeconds[s.labels.status] = s.value
        break
      case 'apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds':
        result.kmsKeyIds.push({
          provider: s.labels.provider_name ?? '',
          keyIdHash: s.labels.key_id_hash ?? '',
          source: 'status',
          lastSeconds: s.value,
        })
        break
      case 'apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds': {
        const type = s.labels.transformation_type
        if (type === 'from_storage' || type === 'to_storage') {
          result.kmsKeyIds.push({
            provider: s.labels.provider_name ?? '',
            keyIdHash: s.labels.key_id_hash ?? '',
            source: type,
            lastSeconds: s.value,
          })
        }
        break
      }
      case 'apiserver_storage_transformation_operations_total':
        result.transformations.push({
          resource: s.labels.resource ?? '',
          type: s.labels.transformation_type ?? '',
          prefix: s.labels.transformer_prefix ?? '',
          status: s.labels.status ?? '',
          count: s.value,
        })
        break
    }
  }
  if (!sawNewCounter) {
    for (const s of samples) {
      if (s.name === `${PREFIX}automatic_reload_success_total`) result.reloads.success += s.value
      if (s.name === `${PREFIX}automatic_reload_failures_total`) result.reloads.failure += s.value
    }
  }
  return result
}

/** `group/resource` as the apiserver's storage metrics label a resource (`""` for the core group). */
export function groupResourceKey(group: string, resource: string): string {
  return `${group}/${resource}`
}

/**
 * Average stored bytes per object, per `group/resource`: `apiserver_resource_size_estimate_bytes`
 * (the sum of the last observed sizes of the stored objects) over `apiserver_resource_objects`
 * (`apiserver_storage_objects{resource="plural.group"}` before 1.34). Both are -1 after a failed
 * count and absent until the apiserver's first periodic count; a resource without a usable size and
 * a positive count is left out, never guessed.
 */
export const OBJECT_SIZE_METRIC_NAMES: ReadonlySet<string> = new Set([
  'apiserver_resource_size_estimate_bytes',
  'apiserver_resource_objects',
  'apiserver_storage_objects',
])

export function bytesPerObject(samples: MetricSample[]): Map<string, number> {
  const sizes = new Map<string, number>()
  const objects = new Map<string, number>()
  const legacyObjects = new Map<string, number>()
  for (const s of samples) {
    if (!Number.isFinite(s.value)) continue
    if (s.name === 'apiserver_resource_size_estimate_bytes')
      sizes.set(groupResourceKey(s.labels.group ?? '', s.labels.resource ?? ''), s.value)
    else if (s.name === 'apiserver_resource_objects')
      objects.set(groupResourceKey(s.labels.group ?? '', s.labels.resource ?? ''), s.value)
    else if (s.name === 'apiserver_storage_objects' && s.labels.resource) {
      // `secrets`, `deployments.apps`: the resource up to the first dot, the group after it.
      const [resource, ...group] = s.labels.resource.split('.')
      legacyObjects.set(groupResourceKey(group.join('.'), resource!), s.value)
    }
  }
  const averages = new Map<string, number>()
  for (const [key, bytes] of sizes) {
    const count = objects.get(key) ?? legacyObjects.get(key)
    // 0 bytes for stored objects is a size not yet observed, not a size.
    if (count !== undefined && count > 0 && bytes > 0) averages.set(key, bytes / count)
  }
  return averages
}
