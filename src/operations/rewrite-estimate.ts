/**
 * What a rewrite is about to do, from the `limit=1` lists its preflight makes anyway: the API's
 * `remainingItemCount` + 1 per listing (no count with a label selector, or from a server that
 * sends none: then "unknown", never a guess). Bytes are not in that answer and reading them would
 * cost a full read, so they are left out. Time is objects over the slower of the two limits: the
 * --qps bucket (less its burst, which goes at once), and --concurrency requests in flight each
 * taking about one measured round trip. One write per object: 409 retries and list pages add a little.
 */
export interface ResourceEstimate {
  resource: string
  /** null: the server gave no count for at least one of its listings. */
  objects: number | null
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

export function buildEstimate(counts: ResourceEstimate[], pace: Pace): RewriteEstimate {
  const known = counts.reduce((sum, r) => sum + (r.objects ?? 0), 0)
  return {resources: counts, ...estimateSeconds(known, pace), qps: pace.qps, concurrency: pace.concurrency}
}

const n = (x: number) => x.toLocaleString('en-US')

export function formatDuration(seconds: number): string {
  if (seconds < 1) return 'under 1 s'
  if (seconds < 90) return `${Math.round(seconds)} s`
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`
  const h = Math.floor(seconds / 3600)
  return `${h} h ${Math.round((seconds - h * 3600) / 60)} min`
}

/**
 * `Estimate: 2,004 objects in 3 resources, about 25 s at --qps 80`. `flags`: name the limits as the
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
      ? `${n(objects)} object${objects === 1 ? '' : 's'} in ${what}`
      : `${n(objects)} object${objects === 1 ? '' : 's'} in ${total - unknown.length} of ${what}, unknown for ${unknown.join(', ')} (the server gave no count)`
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
