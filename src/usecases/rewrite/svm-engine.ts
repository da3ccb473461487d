import {randomBytes} from 'node:crypto'

import {preconditionError} from '../../errors.js'
import {
  type ApiResource,
  type KubeObject,
  KubeApiError,
  type ObjectClient,
  type ResourceDiscovery,
} from '../../kube/types.js'
import {classifyApiError, errorMessage} from './api-errors.js'
import {
  type CheckpointStore,
  emptyCounters,
  type MigrationCheckpoint,
  type RewriteCheckpoint,
  type RewriteCounters,
  type UnitCheckpoint,
} from './checkpoint.js'
import {resourceName, type RewriteEvent, type RewriteResourceResult, type RewriteResult} from './rewrite.js'
import type {ResourceEstimate} from './estimate.js'
import {type Clock, systemClock} from './token-bucket.js'

/**
 * Rewrite through the cluster's own storage-version migrator (`--engine svm`, KEP-4192): one
 * StorageVersionMigration per resource, written by kube-controller-manager's controller, followed
 * here to Succeeded or Failed. The controller patches every object it has cached (apiVersion, kind
 * and resourceVersion only); the apiserver writes the ones whose stored value is not under the
 * current key and leaves the others alone, as with the client engine's no-op updates.
 *
 * - The API: `storagemigration.k8s.io/v1` (Kubernetes 1.37, on by default) or `v1beta1` (1.35–1.36,
 *   behind the StorageVersionMigrator gate and its runtime-config). v1alpha1 (1.30–1.34) has
 *   another spec and is not used.
 * - Progress: the controller's Running message says "N/M objects not yet migrated".
 * - Counts: once a migration succeeded, a metadata-only list splits the resource's objects into
 *   those written since the migration's starting resourceVersion (rewritten by the migrator, or
 *   by anyone since: current either way) and those left alone (already current).
 * - Resume: the run id and the migrations' names are checkpointed in the client engine's store
 *   before anything is created, so a killed run follows the same migrations again; a Failed one
 *   (the controller never retries it) is created anew under the next attempt's name.
 */

export const MIGRATION_GROUP = 'storagemigration.k8s.io'
/** Versions with `spec.resource: {group, resource}`, newest first. */
export const MIGRATION_VERSIONS = ['v1', 'v1beta1'] as const
/** Names and labels on what the plugin creates, so an operator can tell (and `kubectl get -l`) its migrations. */
export const MIGRATION_NAME_PREFIX = 'kubectl-encryption-'
export const MIGRATION_RUN_LABEL = 'encryption.kubectl-encryption.io/run'

export const SVM_DEFAULTS = {
  pollIntervalMs: 1000,
  /** The sandbox's migrator takes about 80 s to act on a new migration; warn well after that. */
  startWarningMs: 300_000,
  pageSize: 500,
}

export interface MigratorRewriteOptions {
  resources: ApiResource[]
  dryRun?: boolean
  resume?: boolean
  /** Identifies the cluster and context in the checkpoint scope. */
  clusterIdentity?: string
  signal?: AbortSignal
  onEvent?: (event: RewriteEvent) => void
  pollIntervalMs?: number
  startWarningMs?: number
  /** For tests: the run id (default: 8 random hex digits). */
  newRunId?: () => string
}

export interface MigratorRewriteDeps {
  client: ObjectClient
  discovery: ResourceDiscovery
  checkpoints?: CheckpointStore
  clock?: Clock
}

/** The StorageVersionMigration resource the server serves, or exit 3 naming what to switch on. */
export async function findMigrationApi(discovery: ResourceDiscovery): Promise<ApiResource> {
  const served = (await discovery.resources()).filter(
    (r) => r.group === MIGRATION_GROUP && r.resource === 'storageversionmigrations',
  )
  const usable = served.find((r) => (MIGRATION_VERSIONS as readonly string[]).includes(r.version))
  if (usable) return usable
  const other = served[0]?.version
  throw preconditionError(
    'SVM_NOT_SERVED',
    other
      ? `the server serves ${MIGRATION_GROUP}/${other} only; --engine svm needs ${MIGRATION_GROUP}/v1 or v1beta1`
      : `the server does not serve ${MIGRATION_GROUP} (StorageVersionMigration); --engine svm cannot run`,
    {
      hint:
        // v1 is on by default from 1.37 (pkg/controlplane/instance.go: svmv1 in the stable versions); both the
        // gate and the runtime-config can switch it off (pkg/registry/storagemigration/rest).
        `Kubernetes 1.37+ serves ${MIGRATION_GROUP}/v1 unless kube-apiserver runs with --feature-gates=StorageVersionMigrator=false ` +
        `or --runtime-config=${MIGRATION_GROUP}/v1=false; on 1.35–1.36 ` +
        `run kube-apiserver with --feature-gates=StorageVersionMigrator=true --runtime-config=${MIGRATION_GROUP}/v1beta1=true ` +
        'and kube-controller-manager with --feature-gates=StorageVersionMigrator=true. Or use --engine client.',
    },
  )
}

/** `kubectl-encryption-<run>-secrets`, `kubectl-encryption-<run>-deployments.apps-2` (a DNS subdomain). */
export function migrationName(runId: string, resource: ApiResource, attempt: number): string {
  return `${MIGRATION_NAME_PREFIX}${runId}-${resourceName(resource)}${attempt > 1 ? `-${attempt}` : ''}`
}

/** What the controller says about one migration. */
export interface MigrationState {
  phase: 'pending' | 'running' | 'succeeded' | 'failed'
  /** Objects the controller had to patch and those still to patch, from its Running message. */
  total?: number
  remaining?: number
  /** The controller's reason and message for Failed. */
  reason?: string
  message?: string
  /** status.resourceVersion: objects at or below it are the migration's; above it were written since. */
  resourceVersion?: string
}

interface Condition {
  type?: string
  status?: string
  reason?: string
  message?: string
}

export function migrationState(object: KubeObject): MigrationState {
  const status = (object.status ?? {}) as {conditions?: Condition[]; resourceVersion?: string}
  const conditions = status.conditions ?? []
  const isTrue = (type: string) => conditions.find((c) => c.type === type && c.status === 'True')
  const running = isTrue('Running')
  const counts = running?.message ? countsFrom(running.message) : {}
  const failed = isTrue('Failed')
  const resourceVersion = status.resourceVersion || undefined
  if (failed) {
    // "3/10 not yet migrated. migration encountered unhandled error: …" names what is left.
    return {
      phase: 'failed',
      ...counts,
      ...countsFrom(failed.message ?? ''),
      reason: failed.reason,
      message: failed.message,
      resourceVersion,
    }
  }
  if (isTrue('Succeeded')) return {phase: 'succeeded', ...counts, resourceVersion}
  return {phase: running ? 'running' : 'pending', ...counts, resourceVersion}
}

/** The controller's texts: "N/M objects not yet migrated", "N/M not yet migrated", "M objects verified migrated". */
function countsFrom(message: string): {total?: number; remaining?: number} {
  const left = /(\d+)\/(\d+) (?:objects )?not yet migrated/.exec(message)
  if (left) return {remaining: Number(left[1]), total: Number(left[2])}
  const all = /(\d+) objects verified migrated/.exec(message)
  if (all) return {remaining: 0, total: Number(all[1])}
  return {}
}

/** Integer resourceVersions (etcd revisions) compared as numbers, without the float precision loss. */
export function newerThan(a: string, b: string): boolean {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return false
  const x = a.replace(/^0+(?=\d)/, '')
  const y = b.replace(/^0+(?=\d)/, '')
  return x.length === y.length ? x > y : x.length > y.length
}

export async function rewriteWithMigrator(
  options: MigratorRewriteOptions,
  deps: MigratorRewriteDeps,
): Promise<RewriteResult> {
  return new MigratorRun(options, deps).run()
}

interface Unit {
  id: string
  resource: ApiResource
  name: string
}

interface Live {
  unit: Unit
  migration: MigrationCheckpoint
  state: MigrationState
}

class MigratorRun {
  private readonly clock: Clock
  private readonly units: Unit[]
  private state!: RewriteCheckpoint
  private readonly counts = new Map<string, number | null>()
  private svm!: ApiResource
  private readonly pollMs: number

  constructor(
    private readonly options: MigratorRewriteOptions,
    private readonly deps: MigratorRewriteDeps,
  ) {
    this.clock = deps.clock ?? systemClock
    this.pollMs = options.pollIntervalMs ?? SVM_DEFAULTS.pollIntervalMs
    this.units = options.resources.map((resource) => ({
      id: `${resource.group}/${resource.resource}`,
      resource,
      name: resourceName(resource),
    }))
  }

  private emit(event: RewriteEvent): void {
    this.options.onEvent?.(event)
  }

  private get aborted(): boolean {
    return Boolean(this.options.signal?.aborted)
  }

  private scope(): string {
    return JSON.stringify({
      engine: 'svm',
      cluster: this.options.clusterIdentity ?? '',
      resources: this.units.map((u) => u.id),
    })
  }

  async run(): Promise<RewriteResult> {
    const started = this.clock.now()
    this.svm = await findMigrationApi(this.deps.discovery)
    const store = this.options.dryRun ? undefined : this.deps.checkpoints
    const previous = await this.loadCheckpoint(store)
    const resumed = Boolean(previous)
    this.state = previous ?? {
      version: 1,
      scope: this.scope(),
      updatedAt: new Date().toISOString(),
      units: {},
      failures: [],
      failuresTruncated: 0,
      engine: 'svm',
      runId: (this.options.newRunId ?? (() => randomBytes(4).toString('hex')))(),
      migrations: {},
    }
    await this.preflight()
    const estimate: ResourceEstimate[] = this.units.map((u) => ({
      resource: u.name,
      objects: this.counts.get(u.id) ?? null,
      // the migrator's run is paced by the controller, not by bytes sent from here: no size read
      bytes: null,
    }))
    this.emit({
      type: 'estimate',
      estimate: {resources: estimate, seconds: null, qps: 0, concurrency: 0, pacedBy: 'migrator'},
    })
    this.emit({type: 'start', units: this.units.length, resumed, total: this.total()})

    if (this.options.dryRun) {
      for (const unit of this.units) {
        const count = await this.count(unit.resource)
        this.unitState(unit).counters = {...emptyCounters(), listed: count.listed, wouldRewrite: count.listed}
        this.unitState(unit).complete = true
      }
      return this.result({resumed: false, interrupted: false, elapsedMs: this.clock.now() - started})
    }

    const live: Live[] = []
    for (const unit of this.units) {
      if (this.aborted) break
      if (this.unitState(unit).complete) continue
      const migration = await this.startMigration(unit, store)
      if (migration) live.push({unit, migration, state: {phase: 'pending'}})
    }
    await this.follow(live, store)

    const interrupted = this.aborted && this.units.some((u) => !this.unitState(u).complete)
    const failed = Object.values(this.state.migrations ?? {}).some((m) => m.failed)
    let checkpoint: string | undefined
    if (store) {
      if (interrupted || failed) {
        await this.save(store)
        checkpoint = store.location
      } else {
        await store.clear()
      }
    }
    return this.result({resumed, interrupted, elapsedMs: this.clock.now() - started, checkpoint})
  }

  private async loadCheckpoint(store: CheckpointStore | undefined): Promise<RewriteCheckpoint | undefined> {
    if (!store) return undefined
    let previous: RewriteCheckpoint | undefined
    try {
      previous = await store.load()
    } catch (error) {
      this.emit({type: 'warning', message: `ignoring unreadable checkpoint ${store.location}: ${errorMessage(error)}`})
    }
    if (previous && (previous.scope !== this.scope() || previous.engine !== 'svm' || !previous.runId)) {
      if (this.options.resume)
        this.emit({
          type: 'warning',
          message: `the checkpoint ${store.location} is for another scope; starting from the beginning`,
        })
      previous = undefined
    } else if (previous && !this.options.resume) {
      this.emit({
        type: 'warning',
        message: `discarding the checkpoint of an earlier run (${store.location}, run ${previous.runId}); use --resume to follow its migrations`,
      })
      previous = undefined
    }
    if (this.options.resume && !previous)
      this.emit({type: 'warning', message: 'no checkpoint to resume from; starting from the beginning'})
    if (previous) {
      previous.migrations ??= {}
      // A Failed migration is retried under its next name: its failure is this run's to report again or not.
      const retried = new Set(this.units.filter((u) => previous!.migrations![u.id]?.failed).map((u) => u.name))
      previous.failures = previous.failures.filter((f) => !retried.has(f.resource))
    }
    return previous
  }

  private unitState(unit: Unit): UnitCheckpoint {
    return (this.state.units[unit.id] ??= {doneAhead: [], complete: false, counters: emptyCounters()})
  }

  private total(): number | undefined {
    let total = 0
    for (const unit of this.units) {
      const st = this.unitState(unit)
      if (st.complete) {
        total += st.counters.listed
        continue
      }
      const count = this.counts.get(unit.id)
      if (count === null || count === undefined) return undefined
      total += count
    }
    return total
  }

  /**
   * Before anything is created: one `limit=1` list per resource for the count (remainingItemCount
   * + 1), and a refusal no migration could get past (403: the user cannot list it) stops the run.
   */
  private async preflight(): Promise<void> {
    for (const unit of this.units) {
      if (this.unitState(unit).complete) continue
      try {
        const page = await this.deps.client.list(unit.resource, {limit: 1, metadataOnly: true})
        const count =
          page.items.length === 0
            ? 0
            : page.remainingItemCount !== undefined
              ? page.remainingItemCount + 1
              : page.continueToken
                ? null
                : 1
        this.counts.set(unit.id, count)
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 403) throw error
        this.counts.set(unit.id, null)
      }
    }
  }

  private async save(store: CheckpointStore | undefined): Promise<void> {
    if (!store) return
    this.state.updatedAt = new Date().toISOString()
    await store.save(this.state)
  }

  /**
   * The unit's migration: the checkpointed one, or a new one (the next attempt after a Failed one).
   * The name is checkpointed before the create, so a kill between the two finds it again.
   */
  private async startMigration(
    unit: Unit,
    store: CheckpointStore | undefined,
  ): Promise<MigrationCheckpoint | undefined> {
    const migrations = (this.state.migrations ??= {})
    let migration = migrations[unit.id]
    if (!migration || migration.failed) {
      const attempt = (migration?.attempt ?? 0) + 1
      migration = {name: migrationName(this.state.runId!, unit.resource, attempt), attempt}
      migrations[unit.id] = migration
      this.unitState(unit).counters = emptyCounters()
      await this.save(store)
    }
    const body: KubeObject = {
      apiVersion: `${this.svm.group}/${this.svm.version}`,
      kind: 'StorageVersionMigration',
      metadata: {
        name: migration.name,
        labels: {'app.kubernetes.io/managed-by': 'kubectl-encryption', [MIGRATION_RUN_LABEL]: this.state.runId!},
      },
      spec: {resource: {group: unit.resource.group, resource: unit.resource.resource}},
    }
    try {
      await this.deps.client.create(this.svm, body)
      this.emit({type: 'migration', resource: unit.name, name: migration.name, state: 'created'})
    } catch (error) {
      // Already there: created by the run this one resumes.
      if (error instanceof KubeApiError && error.status === 409) return migration
      // RBAC (create storageversionmigrations) or anything else no retry of this run fixes.
      if (error instanceof KubeApiError && error.status === 403) throw error
      this.fail(unit, migration, `could not create StorageVersionMigration ${migration.name}: ${errorMessage(error)}`)
      return undefined
    }
    return migration
  }

  private fail(unit: Unit, migration: MigrationCheckpoint, message: string, remaining?: number): void {
    migration.failed = true
    this.unitState(unit).counters.failed = remaining ?? 0
    this.state.failures.push({resource: unit.name, migration: migration.name, reason: 'MigrationFailed', message})
    this.emit({type: 'migration', resource: unit.name, name: migration.name, state: 'failed', message})
  }

  /** Polls every live migration until each has succeeded or failed (or the signal fired). */
  private async follow(live: Live[], store: CheckpointStore | undefined): Promise<void> {
    const since = this.clock.now()
    let warned = false
    let pending = live
    while (pending.length > 0 && !this.aborted) {
      for (const item of pending) {
        let object: KubeObject
        try {
          object = await this.deps.client.get(this.svm, item.migration.name)
        } catch (error) {
          if (error instanceof KubeApiError && error.status === 404) {
            this.fail(
              item.unit,
              item.migration,
              `the StorageVersionMigration ${item.migration.name} was deleted before it finished`,
            )
            item.state = {phase: 'failed'}
            continue
          }
          const disposition = classifyApiError(error)
          if (disposition.kind === 'transient' || disposition.kind === 'conflict') continue
          throw error
        }
        const before = item.state.phase
        item.state = migrationState(object)
        if (item.state.phase === 'succeeded') await this.finish(item)
        else if (item.state.phase === 'failed') {
          const reason = item.state.reason ? `${item.state.reason}: ` : ''
          this.fail(
            item.unit,
            item.migration,
            `${reason}${item.state.message ?? 'the migration failed'}`,
            item.state.remaining,
          )
        } else if (item.state.phase !== before)
          this.emit({type: 'migration', resource: item.unit.name, name: item.migration.name, state: item.state.phase})
        if (item.state.phase === 'succeeded' || item.state.phase === 'failed') await this.save(store)
      }
      pending = pending.filter((p) => p.state.phase === 'pending' || p.state.phase === 'running')
      this.progress(live)
      const waited = this.clock.now() - since
      if (
        !warned &&
        waited >= (this.options.startWarningMs ?? SVM_DEFAULTS.startWarningMs) &&
        pending.some((p) => p.state.phase === 'pending')
      ) {
        warned = true
        this.emit({
          type: 'warning',
          message: `no migration has started after ${Math.round(waited / 1000)} s: is kube-controller-manager running its storage-version-migrator controller (feature gate StorageVersionMigrator, --controllers)? Still waiting; Ctrl-C stops following and --resume picks the migrations up again`,
        })
      }
      for (const p of pending)
        if (p.state.phase === 'pending')
          this.emit({
            type: 'migration',
            resource: p.unit.name,
            name: p.migration.name,
            state: 'pending',
            waitedMs: waited,
          })
      if (pending.length === 0) break
      try {
        await this.clock.sleep(this.pollMs, this.options.signal)
      } catch {
        break
      }
    }
  }

  private progress(live: Live[]): void {
    let done = 0
    for (const unit of this.units) {
      const st = this.unitState(unit)
      const item = live.find((l) => l.unit.id === unit.id)
      if (st.complete) done += st.counters.listed
      else if (item?.state.total !== undefined && item.state.remaining !== undefined)
        done += item.state.total - item.state.remaining
    }
    const totals = this.totals()
    const running = live.map((l) => l.state.total).filter((t): t is number => t !== undefined)
    // The controller's own total (objects in its cache) once it has one, else the preflight count.
    const total =
      running.length === live.length
        ? this.units.reduce((sum, u) => {
            const item = live.find((l) => l.unit.id === u.id)
            return sum + (item ? (item.state.total ?? 0) : this.unitState(u).counters.listed)
          }, 0)
        : this.total()
    this.emit({type: 'progress', done, total, totals})
  }

  /** Succeeded: the counts from a metadata-only list against the migration's starting resourceVersion. */
  private async finish(item: Live): Promise<void> {
    const {unit, migration} = item
    const st = this.unitState(unit)
    try {
      const count = await this.count(unit.resource, item.state.resourceVersion)
      st.counters = {
        ...emptyCounters(),
        listed: count.listed,
        rewritten: count.newer,
        alreadyCurrent: item.state.resourceVersion ? count.listed - count.newer : 0,
      }
    } catch (error) {
      // The migration is done either way; only the split is unknown (never guessed).
      st.counters = {...emptyCounters(), listed: item.state.total ?? 0}
      this.emit({
        type: 'warning',
        message: `${migration.name} succeeded, but counting ${unit.name} afterwards failed (${errorMessage(error)}); rewritten and already current are not known`,
      })
    }
    if (!item.state.resourceVersion)
      this.emit({
        type: 'warning',
        message: `${migration.name} succeeded without a starting resourceVersion; rewritten and already current are not known`,
      })
    st.complete = true
    this.emit({type: 'migration', resource: unit.name, name: migration.name, state: 'succeeded'})
  }

  private async count(resource: ApiResource, since?: string): Promise<{listed: number; newer: number}> {
    let listed = 0
    let newer = 0
    let continueToken: string | undefined
    do {
      const page = await this.deps.client.list(resource, {
        limit: SVM_DEFAULTS.pageSize,
        continueToken,
        metadataOnly: true,
      })
      listed += page.items.length
      if (since) for (const item of page.items) if (newerThan(item.metadata.resourceVersion ?? '', since)) newer++
      continueToken = page.continueToken
    } while (continueToken)
    return {listed, newer}
  }

  private totals(): RewriteCounters {
    const totals = emptyCounters()
    for (const unit of this.units) {
      const c = this.unitState(unit).counters
      for (const k of Object.keys(totals) as (keyof RewriteCounters)[]) totals[k] += c[k]
    }
    return totals
  }

  private result(run: {resumed: boolean; interrupted: boolean; elapsedMs: number; checkpoint?: string}): RewriteResult {
    const resources: RewriteResourceResult[] = this.units.map((unit) => {
      const st = this.unitState(unit)
      return {
        resource: unit.name,
        group: unit.resource.group,
        version: unit.resource.version,
        complete: st.complete,
        ...st.counters,
      }
    })
    const totals = this.totals()
    return {
      dryRun: Boolean(this.options.dryRun),
      onlyStale: false,
      resumed: run.resumed,
      interrupted: run.interrupted,
      namespaces: 'all',
      resources,
      totals,
      failures: this.state.failures,
      failuresTruncated: this.state.failuresTruncated,
      elapsedMs: Math.round(run.elapsedMs),
      objectsPerSecond: run.elapsedMs > 0 ? Math.round((totals.listed * 1000) / run.elapsedMs) : 0,
      checkpoint: run.checkpoint,
      engine: 'svm',
      migrations: this.units
        .filter((u) => this.state.migrations?.[u.id])
        .map((u) => {
          const m = this.state.migrations![u.id]!
          return {
            resource: u.name,
            name: m.name,
            state: m.failed ? 'Failed' : this.unitState(u).complete ? 'Succeeded' : 'Running',
          } as const
        }),
    }
  }
}
