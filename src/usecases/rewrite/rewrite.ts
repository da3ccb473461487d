import {preconditionError, usageError} from '../../errors.js'
import {type ApiResource, type KubeObject, KubeApiError, type ObjectClient} from '../../kube/types.js'
import {classifyApiError, errorMessage, exhaustedReason, type FailureReason} from './api-errors.js'
import {CompletionWindow, objectKey} from './completion-window.js'
import {
  type CheckpointStore,
  emptyCounters,
  type RewriteCheckpoint,
  type RewriteCounters,
  type RewriteFailure,
  type UnitCheckpoint,
} from './checkpoint.js'
import {groupResourceKey} from '../../controlplane/metrics.js'
import {buildEstimate, type ResourceCount, type RewriteEstimate} from './estimate.js'
import {MemoryReleaser} from '../scan/release-memory.js'
import {type Clock, systemClock, TokenBucket} from './token-bucket.js'

/**
 * Rewrite: re-encrypt existing objects by writing each one back unchanged (docs/architecture.md §4, docs/kubernetes-behaviour.md §4.2).
 *
 * - Every object is PUT with its own resourceVersion as precondition. The apiserver skips a no-op
 *   update unless the stored value is stale, so "rewritten" means the resourceVersion changed and
 *   "already current" that it did not. Data older than what is stored is never written: a 409
 *   re-reads the object and retries with the fresh copy (bounded).
 * - Lists are paged (`limit` + `continue`) and streamed through a bounded window, so memory stays
 *   flat however many objects there are. A 410 on a continue token restarts the listing where it
 *   stood: with the server's fresh continue hint when it offers one, else by listing again from the
 *   start and skipping every key up to the last one handed out. The API lists in etcd key order
 *   (`<namespace>/<name>`, docs/kubernetes-behaviour.md §12.1), so "up to" is a string comparison; kube has no field
 *   selector for "name greater than", which is why a hint-less restart re-reads the prefix instead.
 * - One token bucket (`qps`) paces every request; `concurrency` workers send them.
 * - Progress is checkpointed per listing unit as a low-water key plus the keys done out of order
 *   above it, so a killed run resumes without losing or re-writing anything (completion-window.ts).
 */

export interface ObjectRef {
  namespace?: string
  name: string
}

/**
 * The seam to etcd for `--only-stale`: a scan of the stored values of one resource (in one
 * namespace, or all), answering which objects are NOT under the current write provider and key
 * (plaintext, stale, or undecryptable). Only those are returned, so memory follows the stale count.
 */
export interface StaleObjectIndex {
  staleObjects(resource: ApiResource, namespace: string | undefined, signal?: AbortSignal): Promise<ObjectRef[]>
}

export interface RewriteOptions {
  resources: ApiResource[]
  /** Namespaces to cover; undefined means all namespaces. Ignored for cluster-scoped resources. */
  namespaces?: string[]
  labelSelector?: string
  /** Parallel requests (default 32). */
  concurrency?: number
  /** Requests per second over all requests; 0 = unlimited (default 300). */
  qps?: number
  /** Token-bucket burst (default: qps / 4, at least concurrency). */
  burst?: number
  /**
   * List and write in Kubernetes' protobuf encoding where the server offers it (built-in
   * resources; custom resources are answered in JSON): each object goes back as the bytes it was
   * listed as, which costs the apiserver less to decode than JSON and the plugin no decoding at all
   * (ListOptions.protobuf). Default false.
   */
  protobuf?: boolean
  /** Objects per list page (default 500, as kubectl). */
  pageSize?: number
  /** Re-reads after a 409 before giving up on an object (default 10). */
  maxConflictRetries?: number
  /** Retries of one request on 429/5xx/connection errors (default 12, about a minute of back-off). */
  maxTransientRetries?: number
  dryRun?: boolean
  /** Rewrite only what the StaleObjectIndex reports (requires deps.staleIndex). */
  onlyStale?: boolean
  /** Continue from the checkpoint of an interrupted run with the same scope. */
  resume?: boolean
  /** Identifies the cluster and context (and config, if known) in the checkpoint scope. */
  clusterIdentity?: string
  signal?: AbortSignal
  onEvent?: (event: RewriteEvent) => void
  /** Minimum time between checkpoint writes (default 250 ms; 0 = after every change). */
  checkpointIntervalMs?: number
  /** Failures kept in the result; more are only counted (default 1000). */
  maxFailuresListed?: number
}

export interface RewriteDeps {
  client: ObjectClient
  staleIndex?: StaleObjectIndex
  checkpoints?: CheckpointStore
  clock?: Clock
  random?: () => number
  /**
   * For the estimate: the apiserver's average stored bytes per object, keyed `group/resource`
   * (storedBytesPerObject over /metrics). Missing entries, a rejection or no source: sizes unknown.
   */
  bytesPerObject?: () => Promise<ReadonlyMap<string, number>>
}

export type RewriteEvent =
  | {type: 'start'; units: number; resumed: boolean; total?: number}
  | {type: 'unit'; resource: string; namespace?: string; phase: 'start' | 'done'}
  | {type: 'progress'; done: number; total?: number; totals: RewriteCounters}
  | {
      type: 'retry'
      resource: string
      namespace?: string
      name?: string
      status: number
      delayMs: number
      attempt: number
    }
  | {type: 'listRestarted'; resource: string; namespace?: string; afterKey?: string; usedContinueHint: boolean}
  | {type: 'failure'; failure: RewriteFailure}
  | {type: 'warning'; message: string}
  /** Once, after the preflight and before the first write. */
  | {type: 'estimate'; estimate: RewriteEstimate}
  /** --engine svm: a StorageVersionMigration was created or changed state (pending: waited so long for the controller). */
  | {
      type: 'migration'
      resource: string
      name: string
      state: 'created' | 'pending' | 'running' | 'succeeded' | 'failed'
      waitedMs?: number
      message?: string
    }

export interface RewriteResourceResult extends RewriteCounters {
  /** "secrets", or "<plural>.<group>" */
  resource: string
  group: string
  version: string
  /** False when its listing failed or the run was interrupted before it finished. */
  complete: boolean
  /** How the server answered its lists (protobuf: built-in resources unless --wire json); absent when nothing was listed. */
  encoding?: 'json' | 'protobuf'
}

export interface RewriteResult {
  dryRun: boolean
  onlyStale: boolean
  resumed: boolean
  interrupted: boolean
  namespaces: string[] | 'all'
  labelSelector?: string
  resources: RewriteResourceResult[]
  totals: RewriteCounters
  failures: RewriteFailure[]
  failuresTruncated: number
  /** This invocation only (a resumed run counts from its own start). */
  elapsedMs: number
  objectsPerSecond: number
  /** Set when a checkpoint was kept for `--resume` (interrupted or a listing failed). */
  checkpoint?: string
  /** What the preflight counted before the first write (rewrite-estimate.ts). */
  estimate?: RewriteEstimate
  /** Set by --engine svm (absent: the client engine). */
  engine?: 'svm'
  /** --engine svm: the run's StorageVersionMigration per resource and where it stands. */
  migrations?: Array<{resource: string; name: string; state: 'Running' | 'Succeeded' | 'Failed'}>
}

/** Thrown inside the run when the signal fired; never escapes `rewrite()`. */
class Aborted extends Error {}

interface Unit {
  id: string
  resource: ApiResource
  name: string
  namespace?: string
}

interface Item {
  key: string
  ref: ObjectRef
  object?: KubeObject
  /** The listing could not read this object's stored value (docs/kubernetes-behaviour.md §4.3): reported, not written. */
  unreadable?: unknown
}

type Outcome = 'rewritten' | 'alreadyCurrent' | 'wouldRewrite' | 'skipped' | 'failed'

/**
 * Defaults. A no-op update costs the apiserver a read, a compare and (when stale) one etcd write, so
 * throughput comes from having several in flight: etcd commits concurrent writes in one batch, while
 * one-at-a-time (the kubectl pipeline) waits a full commit per object (bench/README.md measured
 * 8 -> 32 in flight). 32 is a small share of kube-apiserver's default 200 mutating requests in
 * flight (--max-mutating-requests-inflight), and API Priority and Fairness answers 429 before the
 * server is overloaded, which the run honours with back-off; qps caps the etcd write rate.
 */
export const REWRITE_DEFAULTS = {
  concurrency: 32,
  qps: 300,
  pageSize: 500,
  maxConflictRetries: 10,
  maxTransientRetries: 12,
}

const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}

export function resourceName(resource: ApiResource): string {
  return resource.group ? `${resource.resource}.${resource.group}` : resource.resource
}

function unitsFor(options: RewriteOptions): Unit[] {
  const units: Unit[] = []
  for (const resource of options.resources) {
    const name = resourceName(resource)
    const base = `${resource.group}/${resource.version}/${resource.resource}`
    if (!resource.namespaced || options.namespaces === undefined) units.push({id: `${base}@*`, resource, name})
    else for (const namespace of options.namespaces) units.push({id: `${base}@${namespace}`, resource, name, namespace})
  }
  return units
}

function scopeOf(options: RewriteOptions): string {
  return JSON.stringify({
    cluster: options.clusterIdentity ?? '',
    resources: options.resources.map((r) => `${r.group}/${r.version}/${r.resource}`),
    namespaces: options.namespaces ?? '*',
    labelSelector: options.labelSelector ?? '',
    onlyStale: Boolean(options.onlyStale),
  })
}

export async function rewrite(options: RewriteOptions, deps: RewriteDeps): Promise<RewriteResult> {
  return new RewriteRun(options, deps).run()
}

class RewriteRun {
  private readonly clock: Clock
  private readonly random: () => number
  private readonly limiter: TokenBucket
  private readonly concurrency: number
  private readonly pageSize: number
  private readonly maxConflicts: number
  private readonly maxTransient: number
  private readonly maxFailures: number
  private readonly signal?: AbortSignal
  private readonly dryRun: boolean
  private state!: RewriteCheckpoint
  private readonly units: Unit[]
  private estimates = new Map<string, number | undefined>()
  /** This run's objects per unit as the preflight counted them (null: no count), and its list round trips. */
  private counts = new Map<string, number | null>()
  private roundTrips: number[] = []
  private estimate?: RewriteEstimate
  private lastProgress = -Infinity
  /** The unit being worked on, so a checkpoint snapshot can read its window. */
  private live?: {unit: Unit; window: CompletionWindow; carried: Set<string>}
  private checkpointDirty = false
  private checkpointWrite?: Promise<void>
  private checkpointTimer?: NodeJS.Timeout
  private checkpointFailed = false
  /** Objects already done by the interrupted run this one resumes. */
  private doneBefore = 0
  /** Per resource name, the encoding of its last list page. */
  private encodings = new Map<string, 'json' | 'protobuf'>()
  /**
   * Protobuf items are views into their page's Buffer, which stays until the last of them is
   * written: long enough to reach V8's old generation, where only a full GC frees it (V8 lets
   * 64 MiB of such memory build up first; at 20,000 Secrets peak RSS was 249 MiB against 200 in
   * JSON, bench/README.md). The scan's bound (release-memory.ts) runs a full GC once Buffer memory
   * has grown 8 MiB.
   */
  private readonly memory = new MemoryReleaser()

  constructor(
    private readonly options: RewriteOptions,
    private readonly deps: RewriteDeps,
  ) {
    this.clock = deps.clock ?? systemClock
    this.random = deps.random ?? Math.random
    this.concurrency = Math.max(1, options.concurrency ?? REWRITE_DEFAULTS.concurrency)
    const qps = options.qps ?? REWRITE_DEFAULTS.qps
    this.limiter = new TokenBucket(qps, options.burst ?? Math.max(this.concurrency, Math.ceil(qps / 4)), this.clock)
    this.pageSize = Math.max(1, options.pageSize ?? REWRITE_DEFAULTS.pageSize)
    this.maxConflicts = options.maxConflictRetries ?? REWRITE_DEFAULTS.maxConflictRetries
    this.maxTransient = options.maxTransientRetries ?? REWRITE_DEFAULTS.maxTransientRetries
    this.maxFailures = options.maxFailuresListed ?? 1000
    this.signal = options.signal
    this.dryRun = Boolean(options.dryRun)
    this.units = unitsFor(options)
    if (options.onlyStale && !deps.staleIndex) throw new Error('onlyStale needs a StaleObjectIndex')
  }

  private emit(event: RewriteEvent): void {
    this.options.onEvent?.(event)
  }

  private get aborted(): boolean {
    return Boolean(this.signal?.aborted)
  }

  async run(): Promise<RewriteResult> {
    const started = this.clock.now()
    const scope = scopeOf(this.options)
    const store = this.dryRun ? undefined : this.deps.checkpoints
    let previous: RewriteCheckpoint | undefined
    if (store) {
      try {
        previous = await store.load()
      } catch (error) {
        this.emit({
          type: 'warning',
          message: `ignoring unreadable checkpoint ${store.location}: ${errorMessage(error)}`,
        })
      }
      if (previous && previous.scope !== scope) {
        if (this.options.resume)
          this.emit({
            type: 'warning',
            message: `the checkpoint ${store.location} is for another scope; starting from the beginning`,
          })
        previous = undefined
      } else if (previous && !this.options.resume) {
        this.emit({
          type: 'warning',
          message: `discarding the checkpoint of an interrupted run (${store.location}); use --resume to continue one`,
        })
        previous = undefined
      }
    }
    if (this.options.resume && !previous && store)
      this.emit({type: 'warning', message: 'no checkpoint to resume from; starting from the beginning'})
    const resumed = Boolean(previous)
    this.state = previous ?? {
      version: 1,
      scope,
      updatedAt: new Date().toISOString(),
      units: {},
      failures: [],
      failuresTruncated: 0,
    }
    this.doneBefore = this.totals().listed

    await this.preflight()
    this.estimate = this.buildEstimate(await this.storedSizes())
    this.emit({type: 'estimate', estimate: this.estimate})
    this.emit({type: 'start', units: this.units.length, resumed, total: this.total()})
    if (store && this.options.checkpointIntervalMs !== 0) {
      this.checkpointTimer = setInterval(() => this.writeCheckpoint(), this.options.checkpointIntervalMs ?? 250)
      this.checkpointTimer.unref()
    }

    let listingFailed = false
    try {
      for (const unit of this.units) {
        if (this.aborted) break
        const st = this.unitState(unit)
        if (st.complete) continue
        this.emit({type: 'unit', resource: unit.name, namespace: unit.namespace, phase: 'start'})
        const ok = await this.runUnit(unit, st)
        if (!ok) listingFailed = true
        this.emit({type: 'unit', resource: unit.name, namespace: unit.namespace, phase: 'done'})
      }
    } finally {
      if (this.checkpointTimer) clearInterval(this.checkpointTimer)
    }
    this.progress(true)

    const interrupted = this.aborted && this.units.some((u) => !this.unitState(u).complete)
    let checkpoint: string | undefined
    if (store) {
      while (this.checkpointWrite) await this.checkpointWrite
      if (interrupted || listingFailed) {
        this.checkpointDirty = true
        await this.writeCheckpoint()
        checkpoint = store.location
      } else {
        await store.clear()
      }
    }
    const elapsedMs = this.clock.now() - started
    return this.result({resumed, interrupted, elapsedMs, checkpoint})
  }

  private unitState(unit: Unit): UnitCheckpoint {
    return (this.state.units[unit.id] ??= {doneAhead: [], complete: false, counters: emptyCounters()})
  }

  /**
   * A deleted namespace whose objects are still stored (orphans, docs/kubernetes-behaviour.md §12): listed and reported per
   * object (NamespaceGone), not refused as a typo. A failed list counts as no orphans.
   */
  private async hasOrphans(namespace: string): Promise<boolean> {
    for (const resource of this.options.resources.filter((r) => r.namespaced)) {
      const page = await this.deps.client.list(resource, {namespace, limit: 1}).catch(() => undefined)
      if (page && page.items.length > 0) {
        // kube-apiserver up to 1.36 refuses their update (NamespaceLifecycle); 1.37 lets updates through.
        this.emit({
          type: 'warning',
          message: `namespace ${namespace} no longer exists; its stored objects (orphans) are listed, and any the API server refuses to update are reported as NamespaceGone`,
        })
        return true
      }
    }
    return false
  }

  /**
   * Before anything is written or checkpointed: every namespace named must exist (a list in a
   * missing namespace is an empty success, which would report "0 objects" for a typo), and the
   * first list of every unit must not be refused for a reason no retry or resume can fix: 403
   * (RBAC, exit 3) or 400 (a label selector the server cannot parse, exit 2). Other failures are
   * left to the run, which retries them and records what it could not do.
   */
  private async preflight(): Promise<void> {
    const namespaces = this.options.resources.some((r) => r.namespaced) ? (this.options.namespaces ?? []) : []
    for (const namespace of namespaces) {
      try {
        await this.limiter.take(this.signal)
        await this.deps.client.get(NAMESPACES, namespace)
      } catch (error) {
        // Without `get namespaces` (403) or on a transient error the check is skipped, not failed.
        if (error instanceof KubeApiError && error.status === 404 && !(await this.hasOrphans(namespace)))
          throw preconditionError(
            'NAMESPACE_NOT_FOUND',
            `namespaces ${JSON.stringify(namespace)} not found; nothing was written`,
            {
              hint: "Check the name with 'kubectl get namespaces', or pass -A for every namespace.",
            },
          )
      }
    }
    // --only-stale without a selector never lists: the etcd scan names the objects.
    if (this.options.onlyStale && !this.options.labelSelector) return
    for (const unit of this.units) {
      if (this.unitState(unit).complete) continue
      try {
        await this.limiter.take(this.signal)
        const sent = this.clock.now()
        const page = await this.deps.client.list(unit.resource, {
          namespace: unit.namespace,
          labelSelector: this.options.labelSelector,
          limit: 1,
        })
        this.roundTrips.push(this.clock.now() - sent)
        // One cheap `limit=1` list gives `remainingItemCount` + 1: the total for the ETA (not with a selector).
        const count =
          page.items.length === 0
            ? 0
            : page.remainingItemCount === undefined || this.options.labelSelector
              ? page.continueToken
                ? undefined
                : 1
              : page.remainingItemCount + 1
        if (!this.options.labelSelector) this.estimates.set(unit.id, count)
        // A resumed unit has only what its checkpoint has not done left.
        this.counts.set(unit.id, count === undefined ? null : Math.max(0, count - this.unitState(unit).counters.listed))
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 403) throw error
        if (error instanceof KubeApiError && error.status === 400 && this.options.labelSelector !== undefined)
          throw usageError(
            'SELECTOR_INVALID',
            `the server rejected the label selector ${JSON.stringify(this.options.labelSelector)}: ${error.message}`,
            {
              hint: "Write selectors as kubectl takes them, e.g. -l app=web,tier!=db or -l 'env in (a,b)'.",
            },
          )
        this.estimates.set(unit.id, undefined)
        this.counts.set(unit.id, null)
      }
    }
  }

  /** Sizes only when something was counted to size (not before an etcd scan, which counts nothing ahead). */
  private async storedSizes(): Promise<ReadonlyMap<string, number>> {
    const counted = [...this.counts.values()].some((c) => c !== null && c > 0)
    if (!this.deps.bytesPerObject || !counted) return new Map()
    return this.deps.bytesPerObject().catch(() => new Map())
  }

  /** Per resource, the preflight's counts of the units still to do (complete ones add nothing). */
  private buildEstimate(sizes: ReadonlyMap<string, number>): RewriteEstimate {
    const byResource = new Map<string, ResourceCount>()
    for (const unit of this.units) {
      const r = byResource.get(unit.name) ?? {
        resource: unit.name,
        objects: 0,
        bytesPerObject: sizes.get(groupResourceKey(unit.resource.group, unit.resource.resource)) ?? null,
      }
      byResource.set(unit.name, r)
      if (this.unitState(unit).complete) continue
      // --only-stale without a selector lists nothing: the etcd scan decides, unit by unit.
      const count = this.counts.get(unit.id) ?? null
      r.objects = r.objects === null || count === null ? null : r.objects + count
    }
    const sorted = [...this.roundTrips].sort((a, b) => a - b)
    const roundTripMs = sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)] : undefined
    return {
      ...buildEstimate([...byResource.values()], {
        qps: this.limiter.qps,
        burst: this.limiter.burst,
        concurrency: this.concurrency,
        roundTripMs,
      }),
      ...(this.options.onlyStale && !this.options.labelSelector ? {countedBy: 'etcd-scan' as const} : {}),
    }
  }

  private total(): number | undefined {
    let sum = 0
    for (const unit of this.units) {
      const st = this.unitState(unit)
      const estimate = st.complete ? st.counters.listed : this.estimates.get(unit.id)
      if (estimate === undefined) return undefined
      sum += Math.max(estimate, st.counters.listed)
    }
    return sum
  }

  private totals(): RewriteCounters {
    const totals = emptyCounters()
    for (const unit of this.units) {
      const c = this.unitState(unit).counters
      for (const k of Object.keys(totals) as (keyof RewriteCounters)[]) totals[k] += c[k]
    }
    return totals
  }

  private progress(force = false): void {
    const now = this.clock.now()
    if (!force && now - this.lastProgress < 200) return
    this.lastProgress = now
    const totals = this.totals()
    this.emit({type: 'progress', done: totals.listed, total: this.total(), totals})
  }

  // ---- checkpoints ----------------------------------------------------------------------------

  private syncLiveUnit(): void {
    if (!this.live) return
    const {window, carried, unit} = this.live
    const st = this.unitState(unit)
    st.after = window.after
    const ahead = window.doneAhead()
    for (const key of carried) if (window.after === undefined || key > window.after) ahead.push(key)
    st.doneAhead = ahead
  }

  /** Coalesced: at most one write in flight; a change during a write schedules one more. */
  private writeCheckpoint(): Promise<void> {
    const store = this.dryRun ? undefined : this.deps.checkpoints
    if (!store || !this.checkpointDirty || this.checkpointWrite) return this.checkpointWrite ?? Promise.resolve()
    this.checkpointDirty = false
    this.syncLiveUnit()
    this.state.updatedAt = new Date().toISOString()
    const snapshot: RewriteCheckpoint = JSON.parse(JSON.stringify(this.state))
    this.checkpointWrite = store
      .save(snapshot)
      .catch((error) => {
        if (!this.checkpointFailed)
          this.emit({type: 'warning', message: `cannot write the checkpoint ${store.location}: ${errorMessage(error)}`})
        this.checkpointFailed = true
      })
      .finally(() => {
        this.checkpointWrite = undefined
        if (this.checkpointDirty && this.options.checkpointIntervalMs === 0) void this.writeCheckpoint()
      })
    return this.checkpointWrite
  }

  private changed(): void {
    this.checkpointDirty = true
    if (this.options.checkpointIntervalMs === 0) void this.writeCheckpoint()
    this.progress()
  }

  private addFailure(failure: RewriteFailure): void {
    if (this.state.failures.length < this.maxFailures) this.state.failures.push(failure)
    else this.state.failuresTruncated++
    this.emit({type: 'failure', failure})
  }

  // ---- one unit -------------------------------------------------------------------------------

  /** Returns false when the listing failed (the unit stays incomplete, to be resumed). */
  private async runUnit(unit: Unit, st: UnitCheckpoint): Promise<boolean> {
    // A list failure of an earlier attempt is replaced by this attempt's outcome.
    this.state.failures = this.state.failures.filter(
      (f) => !(f.name === undefined && f.resource === unit.name && f.namespace === unit.namespace),
    )
    const window = new CompletionWindow(st.after)
    const carried = new Set(st.doneAhead)
    this.live = {unit, window, carried}
    const windowLimit = Math.max(64, this.concurrency * 16)
    let inflight = 0
    let wake: (() => void) | undefined
    const released = () => {
      const w = wake
      wake = undefined
      w?.()
    }

    let source: AsyncIterable<Item>
    let isStale: ((key: string) => boolean) | undefined
    try {
      if (this.options.onlyStale) {
        const refs = (await this.deps.staleIndex!.staleObjects(unit.resource, unit.namespace, this.signal))
          .map((ref) => ({key: objectKey(ref.namespace, ref.name), ref}))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        if (this.options.labelSelector) {
          // The selector needs the API's list; the scan only filters it.
          const stale = new Set(refs.map((r) => r.key))
          isStale = (key) => stale.has(key)
          source = this.listItems(unit, st.after)
        } else {
          const todo = refs.filter((r) => st.after === undefined || r.key > st.after)
          this.estimates.set(unit.id, st.counters.listed + todo.length)
          source = (async function* () {
            yield* todo
          })()
        }
      } else {
        source = this.listItems(unit, st.after)
      }
    } catch (error) {
      this.failList(unit, error)
      this.live = undefined
      return false
    }

    let listOk = true
    try {
      for await (const item of source) {
        if (this.aborted) break
        if (carried.has(item.key)) continue
        while ((inflight >= this.concurrency || window.size >= windowLimit) && !this.aborted)
          await new Promise<void>((resolve) => (wake = resolve))
        if (this.aborted) break
        const entry = window.add(item.key)
        inflight++
        void this.processItem(unit, st, item, isStale).then((outcome) => {
          inflight--
          if (outcome !== 'aborted') {
            window.complete(entry)
            this.changed()
          }
          released()
        })
      }
    } catch (error) {
      if (!(error instanceof Aborted)) {
        this.failList(unit, error)
        listOk = false
      }
    }
    while (inflight > 0) await new Promise<void>((resolve) => (wake = resolve))
    this.syncLiveUnit()
    if (listOk && !this.aborted && window.size === 0) {
      st.complete = true
      st.after = undefined
      st.doneAhead = []
    }
    this.live = undefined
    this.checkpointDirty = true
    this.progress(true)
    return listOk
  }

  private failList(unit: Unit, error: unknown): void {
    const d = classifyApiError(error)
    const reason: FailureReason =
      d.kind === 'fail' ? d.reason : d.kind === 'transient' ? exhaustedReason(error) : 'Error'
    this.addFailure({
      resource: unit.name,
      namespace: unit.namespace,
      reason,
      status: (error as {status?: number}).status,
      message: `listing ${unit.name}${unit.namespace ? ` in ${unit.namespace}` : ''} failed: ${errorMessage(error)}`,
    })
  }

  /** Streams the unit's objects, page by page, one page fetched ahead. */
  private async *listItems(unit: Unit, startAfter: string | undefined): AsyncGenerator<Item> {
    const {resource, namespace} = unit
    let skipThrough = startAfter
    let lastKey = startAfter
    let token: string | undefined
    let restartsWithoutProgress = 0
    let limit = this.pageSize
    const fetch = (continueToken: string | undefined) =>
      this.call(unit, undefined, () =>
        this.deps.client.list(resource, {
          namespace,
          labelSelector: this.options.labelSelector,
          limit,
          continueToken,
          protobuf: this.options.protobuf,
        }),
      ).then(
        (page) => ({page, error: undefined}),
        (error: unknown) => ({page: undefined, error}),
      )
    let pending = fetch(undefined)
    for (;;) {
      const {page, error} = await pending
      if (error !== undefined) {
        const d = classifyApiError(error)
        const bad = d.kind === 'fail' && d.reason === 'Undecryptable' ? unreadableEntry(error, unit) : undefined
        if (bad && (lastKey === undefined || bad.key > lastKey)) {
          if (limit > 1) {
            // One value no provider can read fails the whole page (docs/kubernetes-behaviour.md §4.3): take the objects
            // before it in smaller pages until the page that fails starts with it.
            limit = Math.ceil(limit / 2)
            pending = fetch(token)
            continue
          }
          // Report it and list on from just after its key, at the latest revision, as a 410's
          // continue hint would.
          lastKey = bad.key
          restartsWithoutProgress = 0
          yield {key: bad.key, ref: bad.ref, unreadable: error}
          token = continueAfter(bad.start)
          limit = this.pageSize
          pending = fetch(token)
          continue
        }
        if (d.kind === 'expired' && token !== undefined && restartsWithoutProgress < 10) {
          // 410: the continue token's revision was compacted. Go on from where the list stood.
          restartsWithoutProgress++
          token = d.continueHint
          skipThrough = lastKey
          this.emit({
            type: 'listRestarted',
            resource: unit.name,
            namespace,
            afterKey: lastKey,
            usedContinueHint: token !== undefined,
          })
          pending = fetch(token)
          continue
        }
        throw error
      }
      token = page!.continueToken || undefined
      this.encodings.set(unit.name, page!.encoding ?? 'json')
      if (token) pending = fetch(token)
      for (const object of page!.items) {
        const ns = object.metadata.namespace ?? namespace
        const key = objectKey(resource.namespaced ? ns : undefined, object.metadata.name)
        if (skipThrough !== undefined && key <= skipThrough) continue
        lastKey = key
        restartsWithoutProgress = 0
        yield {key, ref: {namespace: resource.namespaced ? ns : undefined, name: object.metadata.name}, object}
      }
      if (page!.encoding === 'protobuf') this.memory.pageDone()
      if (!token) return
    }
  }

  /** One request through the shared limiter, retried on 429/5xx/connection errors with back-off. */
  private async call<T>(unit: Unit, name: string | undefined, request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.aborted) throw new Aborted()
      await this.limiter.take(this.signal)
      if (this.aborted) throw new Aborted()
      try {
        return await request()
      } catch (error) {
        const d = classifyApiError(error)
        if (d.kind !== 'transient' || attempt >= this.maxTransient) throw error
        // Retry-After is honoured as sent (capped at 5 min); otherwise exponential with jitter.
        const delayMs =
          d.retryAfterMs !== undefined
            ? Math.min(d.retryAfterMs, 300_000)
            : Math.min(8000, 250 * 2 ** attempt) * (0.5 + this.random() / 2)
        this.emit({
          type: 'retry',
          resource: unit.name,
          namespace: unit.namespace,
          name,
          status: (error as {status?: number}).status ?? 0,
          delayMs,
          attempt: attempt + 1,
        })
        await this.clock.sleep(delayMs, this.signal)
      }
    }
  }

  private async processItem(
    unit: Unit,
    st: UnitCheckpoint,
    item: Item,
    isStale: ((key: string) => boolean) | undefined,
  ): Promise<Outcome | 'aborted'> {
    const c = st.counters
    const finish = (outcome: Outcome): Outcome => {
      c.listed++
      c[outcome]++
      return outcome
    }
    const fail = (reason: FailureReason, error: unknown): Outcome => {
      this.addFailure({
        resource: unit.name,
        namespace: item.ref.namespace,
        name: item.ref.name,
        reason,
        status: (error as {status?: number}).status,
        message: errorMessage(error),
      })
      return finish('failed')
    }
    /** Terminal handling of an error from a GET or PUT of this object. */
    const settle = (error: unknown): Outcome | 'aborted' => {
      if (error instanceof Aborted) return 'aborted'
      const d = classifyApiError(error)
      if (d.kind === 'notFound') return finish('skipped')
      if (d.kind === 'fail') return fail(d.reason, error)
      if (d.kind === 'transient') return fail(exhaustedReason(error), error)
      if (d.kind === 'conflict') return fail('Conflict', error)
      return fail('Error', error)
    }
    const get = () =>
      this.call(unit, item.ref.name, () =>
        this.deps.client.get(unit.resource, item.ref.name, item.ref.namespace, {protobuf: this.options.protobuf}),
      )

    try {
      if (item.unreadable !== undefined) return fail('Undecryptable', item.unreadable)
      if (isStale && !isStale(item.key)) return finish('alreadyCurrent')
      if (this.dryRun) return finish('wouldRewrite')
      let object = item.object
      if (!object) {
        try {
          object = await get()
        } catch (error) {
          return settle(error)
        }
      }
      for (let conflicts = 0; ; ) {
        const sent = withTypeMeta(object, unit.resource)
        try {
          const stored = await this.call(unit, item.ref.name, () => this.deps.client.replace(unit.resource, sent))
          return finish(
            stored.metadata.resourceVersion !== sent.metadata.resourceVersion ? 'rewritten' : 'alreadyCurrent',
          )
        } catch (error) {
          if (classifyApiError(error).kind !== 'conflict' || error instanceof Aborted) return settle(error)
          if (conflicts >= this.maxConflicts) {
            return fail('Conflict', new Error(`still conflicting after ${conflicts} re-reads: ${errorMessage(error)}`))
          }
          // Someone wrote it since we read it: re-read, and write back what is stored now.
          conflicts++
          c.conflictsRetried++
          if (conflicts > 1) await this.clock.sleep(Math.min(1000, 10 * 2 ** conflicts) * this.random(), this.signal)
          try {
            object = await get()
          } catch (getError) {
            return settle(getError)
          }
        }
      }
    } catch (error) {
      return settle(error)
    }
  }

  private result(run: {resumed: boolean; interrupted: boolean; elapsedMs: number; checkpoint?: string}): RewriteResult {
    const byResource = new Map<string, RewriteResourceResult>()
    for (const unit of this.units) {
      const st = this.unitState(unit)
      let r = byResource.get(unit.name)
      if (!r) {
        r = {
          resource: unit.name,
          group: unit.resource.group,
          version: unit.resource.version,
          complete: true,
          ...emptyCounters(),
          ...(this.encodings.has(unit.name) ? {encoding: this.encodings.get(unit.name)} : {}),
        }
        byResource.set(unit.name, r)
      }
      for (const k of Object.keys(st.counters) as (keyof RewriteCounters)[]) r[k] += st.counters[k]
      r.complete &&= st.complete
    }
    const totals = this.totals()
    const doneHere = totals.listed - this.doneBefore
    return {
      dryRun: this.dryRun,
      onlyStale: Boolean(this.options.onlyStale),
      resumed: run.resumed,
      interrupted: run.interrupted,
      namespaces: this.options.namespaces ?? 'all',
      labelSelector: this.options.labelSelector,
      resources: [...byResource.values()],
      totals,
      failures: this.state.failures,
      failuresTruncated: this.state.failuresTruncated,
      elapsedMs: Math.round(run.elapsedMs),
      objectsPerSecond: run.elapsedMs > 0 ? Math.round((doneHere * 1000) / run.elapsedMs) : 0,
      checkpoint: run.checkpoint,
      estimate: this.estimate,
    }
  }
}

/**
 * The object a LIST failed on, if its key is one of this listing's: its ref, its listing key, and the
 * continue token's start (the key relative to the listing's etcd prefix: `<name>` in one namespace,
 * `<ns>/<name>` across namespaces). kube-apiserver names the key in one of two ways
 * (docs/kubernetes-behaviour.md §4.3):
 * - `unable to transform key "<etcd key>"`: the list stops at the first value no provider reads;
 * - with AllowUnsafeMalformedObjectDeletion (beta, on by default since 1.33): 500 StorageReadError,
 *   `failed to read one or more <resource> from the storage: StorageError: corrupt object, Code: 7,
 *   Key: <etcd key>, …`, whose message carries the first such value of the page in key order (and
 *   details.causes all of them; k8s.io/apiserver/pkg/storage/etcd3/corrupt_obj_deleter.go).
 * Either way it is the first unreadable key of the page, which is what the caller's halving needs.
 */
function unreadableEntry(error: unknown, unit: Unit): {key: string; ref: ObjectRef; start: string} | undefined {
  const message = (error as Error).message ?? ''
  const m =
    /unable to transform key "([^"]+)"/.exec(message) ??
    /StorageError: corrupt object, Code: \d+, Key: (\S+), ResourceVersion/.exec(message)
  if (!m) return undefined
  const segments = m[1]!.split('/')
  const name = segments.at(-1)
  if (!name) return undefined
  if (!unit.resource.namespaced) return {key: name, ref: {name}, start: name}
  const namespace = unit.namespace ?? segments.at(-2)
  if (!namespace || segments.at(-2) !== namespace) return undefined
  return {
    key: objectKey(namespace, name),
    ref: {namespace, name},
    start: unit.namespace ? name : `${namespace}/${name}`,
  }
}

/**
 * A continue token that lists on from just after `start` at the latest revision (rv -1, as the token
 * in a 410's status). kube-apiserver decodes tokens as unpadded URL-safe base64
 * (k8s.io/apiserver/pkg/storage/continue.go, DecodeContinue: base64.RawURLEncoding) and answers
 * 400 "invalid continue token" to anything else.
 */
export function continueAfter(start: string): string {
  return Buffer.from(JSON.stringify({v: 'meta.k8s.io/v1', rv: -1, start: `${start}\u0000`})).toString('base64url')
}

/** List items carry no apiVersion/kind; a PUT body should. */
function withTypeMeta(object: KubeObject, resource: ApiResource): KubeObject {
  const apiVersion = resource.group ? `${resource.group}/${resource.version}` : resource.version
  if (object.apiVersion === apiVersion && object.kind === resource.kind) return object
  return {...object, apiVersion, kind: resource.kind}
}
