import {bytesPerObject, OBJECT_SIZE_METRIC_NAMES, parsePrometheusText} from '../../controlplane/metrics.js'
import type {EndpointProbe} from '../../kube/types.js'

/**
 * What a rewrite is about to do, from the `limit=1` lists its preflight makes anyway: the API's
 * `remainingItemCount` + 1 per listing (no count with a label selector, or from a server that
 * sends none: then "unknown", never a guess). Bytes are not in that answer (reading them would
 * cost a full read): they come from the apiserver's own storage metrics on /metrics, an average
 * per object times the objects counted, and stay unknown when /metrics is forbidden or lacks them.
 * Time is objects over the slower of the two limits: the --qps bucket (less its burst, which goes
 * at once), and --concurrency requests in flight each taking about one measured round trip. One
 * write per object: 409 retries and list pages add a little.
 */
export interface ResourceEstimate {
  resource: string
  /** null: the server gave no count for at least one of its listings. */
  objects: number | null
  /** Stored bytes of those objects (the apiserver's average per object times `objects`); null when unknown. */
  bytes: number | null
}

/** What the preflight counted for one resource, and the apiserver's average stored bytes per object if known. */
export interface ResourceCount {
  resource: string
  objects: number | null
  bytesPerObject?: number | null
}

export interface RewriteEstimate {
  resources: ResourceEstimate[]
  /** Seconds for the objects counted; null when no rate can be known (no count, or --qps 0 with no round trip measured). */
  seconds: number | null
  qps: number
  concurrency: number
  /** Which limit sets the pace: qps, or concurrency over the round trip. */
  limitedBy?: 'qps' | 'concurrency'
  /** --only-stale without a selector: nothing is listed before the etcd scan, which finds what to write. */
  countedBy?: 'etcd-scan'
  /** --engine svm: kube-controller-manager's storage-version migrator writes, at its own pace (no time estimate). */
  pacedBy?: 'migrator'
}

export interface Pace {
  qps: number
  concurrency: number
  /** Token-bucket burst: requests that go before the qps pace starts (0 if not given). */
  burst?: number
  /** A measured request round trip. */
  roundTripMs?: number
}

/** max((objects - burst) / qps, objects / (concurrency / round trip)): about objects / min(qps, concurrency / round trip). */
export function estimateSeconds(
  objects: number,
  pace: Pace,
): {seconds: number | null; limitedBy?: 'qps' | 'concurrency'} {
  if (objects === 0) return {seconds: 0}
  const measured = pace.roundTripMs !== undefined && pace.roundTripMs > 0
  if (pace.qps <= 0 && !measured) return {seconds: null}
  const byQps = pace.qps > 0 ? Math.max(0, objects - (pace.burst ?? 0)) / pace.qps : 0
  const byConcurrency = measured ? (objects * pace.roundTripMs!) / (pace.concurrency * 1000) : 0
  const limitedBy = pace.qps > 0 && byQps >= byConcurrency ? 'qps' : 'concurrency'
  return {seconds: Math.ceil(Math.max(byQps, byConcurrency) * 10) / 10, limitedBy}
}

export function buildEstimate(counts: ResourceCount[], pace: Pace): RewriteEstimate {
  const known = counts.reduce((sum, r) => sum + (r.objects ?? 0), 0)
  const resources = counts.map(
    ({resource, objects, bytesPerObject}): ResourceEstimate => ({
      resource,
      objects,
      bytes: objects === null || bytesPerObject == null ? null : Math.round(objects * bytesPerObject),
    }),
  )
  return {resources, ...estimateSeconds(known, pace), qps: pace.qps, concurrency: pace.concurrency}
}

/**
 * Average stored bytes per object per `group/resource`, from one GET of /metrics. Empty (every
 * size unknown) when /metrics is forbidden, fails or lacks the metrics: sizes only inform, so that
 * is neither an error nor a warning.
 */
export async function storedBytesPerObject(probe: EndpointProbe, timeoutMs = 10_000): Promise<Map<string, number>> {
  try {
    const response = await probe.get('/metrics', {timeoutMs})
    return response.status === 200
      ? bytesPerObject(parsePrometheusText(response.body, OBJECT_SIZE_METRIC_NAMES))
      : new Map()
  } catch {
    return new Map()
  }
}

const n = (x: number) => x.toLocaleString('en-US')

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']

/** Decimal units, two significant digits below 10 and whole numbers above: `812 B`, `4.2 kB`, `37 MB`. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes)
  let unit = 0
  for (;;) {
    const shown = unit === 0 ? Math.round(value) : value < 9.95 ? Math.round(value * 10) / 10 : Math.round(value)
    if (shown < 1000 || unit === BYTE_UNITS.length - 1) return `${shown} ${BYTE_UNITS[unit]}`
    value /= 1000
    unit++
  }
}

/** ` (about 4.2 MB stored)`, naming the resources with objects but no size; empty when no size is known. */
function storedText(resources: ResourceEstimate[]): string {
  const counted = resources.filter((r) => r.objects !== null && r.objects > 0)
  const sized = counted.filter((r) => r.bytes !== null)
  if (sized.length === 0) return ''
  const total = sized.reduce((sum, r) => sum + r.bytes!, 0)
  const unsized = counted.filter((r) => r.bytes === null).map((r) => r.resource)
  return ` (about ${formatBytes(total)} stored${unsized.length > 0 ? `; size unknown for ${unsized.join(', ')}` : ''})`
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return 'under 1 s'
  if (seconds < 90) return `${Math.round(seconds)} s`
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`
  const h = Math.floor(seconds / 3600)
  return `${h} h ${Math.round((seconds - h * 3600) / 60)} min`
}

/**
 * `Estimate: 2,004 objects (about 3.1 MB stored) in 3 resources, about 25 s at --qps 80`. `flags`: name the limits as the
 * command's flags (rewrite) or as plain rates (rotate and decrypt-all, which have no such flags).
 */
export function formatEstimate(e: RewriteEstimate, flags = true): string {
  const total = e.resources.length
  const unknown = e.resources.filter((r) => r.objects === null).map((r) => r.resource)
  const objects = e.resources.reduce((sum, r) => sum + (r.objects ?? 0), 0)
  const what = `${total} resource${total === 1 ? '' : 's'}`
  if (e.countedBy === 'etcd-scan')
    return `Estimate: ${what}; the etcd scan finds what is stale, resource by resource (no count before it)`
  if (unknown.length === total) return `Estimate: unknown number of objects in ${what} (the server gave no count)`
  const counted =
    unknown.length === 0
      ? `${n(objects)} object${objects === 1 ? '' : 's'}${storedText(e.resources)} in ${what}`
      : `${n(objects)} object${objects === 1 ? '' : 's'}${storedText(e.resources)} in ${total - unknown.length} of ${what}, unknown for ${unknown.join(', ')} (the server gave no count)`
  if (e.pacedBy === 'migrator')
    return `Estimate: ${counted}; kube-controller-manager's storage-version migrator sets the pace`
  if (e.seconds === null) return `Estimate: ${counted}; time unknown (no rate limit and no round trip measured)`
  const pace =
    e.limitedBy === 'concurrency'
      ? flags
        ? `--concurrency ${e.concurrency}`
        : `${e.concurrency} requests in flight`
      : flags
        ? `--qps ${e.qps}`
        : `${e.qps} requests/s`
  if (e.seconds === 0 && !e.limitedBy) return `Estimate: ${counted}`
  return `Estimate: ${counted}, ${e.seconds < 1 ? '' : 'about '}${formatDuration(e.seconds)} at ${pace}`
}
