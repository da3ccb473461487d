import {describe, expect, it} from 'vitest'

import {PluginError} from '../../../src/errors.js'
import type {RewriteEvent} from '../../../src/usecases/rewrite/rewrite.js'
import {
  type MigratorRewriteOptions,
  migrationState,
  newerThan,
  rewriteWithMigrator,
} from '../../../src/usecases/rewrite/svm-engine.js'
import {CONFIGMAPS, FakeClock, MemoryCheckpointStore, SECRETS} from '../helpers/fake-cluster.js'
import {FakeMigrator} from './fake-migrator.js'

let nextRun = 0

function run(
  fake: FakeMigrator,
  options: Partial<MigratorRewriteOptions> = {},
  extra: {store?: MemoryCheckpointStore; clock?: FakeClock} = {},
) {
  const events: RewriteEvent[] = []
  const clock = extra.clock ?? new FakeClock()
  const promise = rewriteWithMigrator(
    {
      resources: [SECRETS, CONFIGMAPS],
      onEvent: (e) => events.push(e),
      newRunId: () => `run${++nextRun}`,
      ...options,
    },
    {client: fake, discovery: fake, checkpoints: extra.store, clock},
  )
  return {promise, events, clock}
}

describe('rewrite --engine svm', () => {
  it('creates one StorageVersionMigration per resource, follows it to Succeeded and counts what moved', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 30, 20)
    fake.seed(CONFIGMAPS, 10, 0)
    const store = new MemoryCheckpointStore()
    const {promise, events} = run(fake, {}, {store})
    const result = await promise

    expect(fake.creates).toEqual([
      expect.objectContaining({
        apiVersion: 'storagemigration.k8s.io/v1',
        kind: 'StorageVersionMigration',
        metadata: expect.objectContaining({name: expect.stringMatching(/^kubectl-encryption-run\d+-secrets$/)}),
        spec: {resource: {group: '', resource: 'secrets'}},
      }),
      expect.objectContaining({
        metadata: expect.objectContaining({name: expect.stringMatching(/^kubectl-encryption-run\d+-configmaps$/)}),
        spec: {resource: {group: '', resource: 'configmaps'}},
      }),
    ])
    expect(fake.stale(SECRETS)).toBe(0)
    expect(result).toMatchObject({
      engine: 'svm',
      namespaces: 'all',
      interrupted: false,
      failures: [],
      totals: {listed: 40, rewritten: 20, alreadyCurrent: 20, failed: 0},
    })
    expect(result.resources).toEqual([
      expect.objectContaining({resource: 'secrets', listed: 30, rewritten: 20, alreadyCurrent: 10, complete: true}),
      expect.objectContaining({resource: 'configmaps', listed: 10, rewritten: 0, alreadyCurrent: 10, complete: true}),
    ])
    expect(result.migrations?.map((m) => m.state)).toEqual(['Succeeded', 'Succeeded'])
    expect(result.checkpoint).toBeUndefined()
    expect(store.saved).toBeUndefined()

    // The preflight's count, then the controller's own progress, up to everything.
    expect(events.find((e) => e.type === 'start')).toMatchObject({total: 40})
    const progress = events.filter((e) => e.type === 'progress').map((e) => e.done)
    expect(progress).toContain(20) // halfway through both: 15 of 30 and 5 of 10
    expect(progress.at(-1)).toBe(40)
    expect(events.some((e) => e.type === 'migration' && e.state === 'pending')).toBe(true)
  })

  it('uses v1beta1 when that is the version served (1.35–1.36)', async () => {
    const fake = new FakeMigrator()
    fake.servedVersion = 'v1beta1'
    fake.seed(SECRETS, 4, 4)
    const result = await run(fake, {resources: [SECRETS]}).promise
    expect(fake.creates[0]?.apiVersion).toBe('storagemigration.k8s.io/v1beta1')
    expect(result.totals).toMatchObject({listed: 4, rewritten: 4})
  })

  it('a Failed migration is reported with the controller reason, kept for --resume, and created anew by it', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 5, 5)
    fake.seed(CONFIGMAPS, 3, 3)
    fake.failing.add('secrets')
    const store = new MemoryCheckpointStore()
    const first = await run(fake, {}, {store}).promise

    const name = first.migrations!.find((m) => m.resource === 'secrets')!.name
    expect(first.failures).toEqual([
      {
        resource: 'secrets',
        migration: name,
        reason: 'MigrationFailed',
        message: expect.stringMatching(
          /^StorageVersionMigrationFailed: 2\/5 not yet migrated\. migration encountered unhandled error: admission webhook "deny.example" denied the request$/,
        ),
      },
    ])
    expect(first.resources).toEqual([
      expect.objectContaining({resource: 'secrets', failed: 2, complete: false}),
      expect.objectContaining({resource: 'configmaps', rewritten: 3, complete: true}),
    ])
    expect(first.checkpoint).toBe(store.location)
    expect(fake.stale(SECRETS)).toBe(5)

    // The cause is fixed; the resume creates the failed one under its next name and leaves the other alone.
    fake.failing.clear()
    const second = await run(fake, {resume: true}, {store}).promise
    expect(fake.creates.map((c) => c.metadata.name)).toEqual([name, expect.stringMatching(/configmaps$/), `${name}-2`])
    expect(second).toMatchObject({resumed: true, failures: [], checkpoint: undefined})
    expect(second.resources).toEqual([
      expect.objectContaining({resource: 'secrets', rewritten: 5, failed: 0, complete: true}),
      expect.objectContaining({resource: 'configmaps', rewritten: 3, complete: true}),
    ])
    expect(fake.stale(SECRETS)).toBe(0)
    expect(store.saved).toBeUndefined()
  })

  it('--resume after an interruption follows the same migrations, creating nothing new', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 6, 6)
    fake.pendingPolls = 1000 // the controller has not started yet
    const store = new MemoryCheckpointStore()
    const abort = new AbortController()
    const {promise, events} = run(fake, {resources: [SECRETS], signal: abort.signal}, {store})
    const seen = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (events.some((e) => e.type === 'migration' && e.state === 'pending')) {
          clearInterval(timer)
          resolve()
        }
      }, 1)
    })
    await seen
    abort.abort()
    const first = await promise
    expect(first).toMatchObject({interrupted: true, checkpoint: store.location})
    expect(first.resources[0]).toMatchObject({complete: false})
    const name = fake.creates[0]!.metadata.name

    fake.pendingPolls = 0
    const second = await run(fake, {resources: [SECRETS], resume: true}, {store}).promise
    expect(fake.creates.map((c) => c.metadata.name)).toEqual([name])
    expect(second).toMatchObject({resumed: true, interrupted: false, migrations: [{name, state: 'Succeeded'}]})
    expect(second.totals).toMatchObject({listed: 6, rewritten: 6})
  })

  it('a resume after a kill between checkpoint and create still finds its migration by name', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 3, 3)
    const store = new MemoryCheckpointStore()
    // What a run killed right after its create leaves: the checkpoint names the migration, the cluster has it.
    await fake.create(fake.migrationsApi(), {
      apiVersion: 'storagemigration.k8s.io/v1',
      kind: 'StorageVersionMigration',
      metadata: {name: 'kubectl-encryption-killed-secrets'},
      spec: {resource: {group: '', resource: 'secrets'}},
    })
    await store.save({
      version: 1,
      scope: JSON.stringify({engine: 'svm', cluster: '', resources: ['/secrets']}),
      updatedAt: '',
      units: {},
      failures: [],
      failuresTruncated: 0,
      engine: 'svm',
      runId: 'killed',
      migrations: {'/secrets': {name: 'kubectl-encryption-killed-secrets', attempt: 1}},
    })
    const result = await run(fake, {resources: [SECRETS], resume: true}, {store}).promise
    expect(fake.creates).toHaveLength(1)
    expect(result).toMatchObject({resumed: true, totals: {rewritten: 3}})
  })

  it('without --resume an old checkpoint is discarded with a warning and a new run starts', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 2, 2)
    fake.failing.add('secrets')
    const store = new MemoryCheckpointStore()
    await run(fake, {resources: [SECRETS]}, {store}).promise
    fake.failing.clear()
    const {promise, events} = run(fake, {resources: [SECRETS]}, {store})
    const result = await promise
    expect(events).toContainEqual({type: 'warning', message: expect.stringMatching(/^discarding the checkpoint/)})
    expect(result.resumed).toBe(false)
    expect(new Set(fake.creates.map((c) => c.metadata.labels?.['encryption.kubectl-encryption.io/run'])).size).toBe(2)
  })

  it('exit 3 naming version, feature gate and runtime-config when the API is not served; nothing created', async () => {
    for (const served of [null, 'v1alpha1']) {
      const fake = new FakeMigrator()
      fake.servedVersion = served
      fake.seed(SECRETS, 2, 2)
      const error = (await run(fake).promise.catch((e: unknown) => e)) as PluginError
      expect(error).toBeInstanceOf(PluginError)
      expect(error.exitCode).toBe(3)
      expect(error.code).toBe('SVM_NOT_SERVED')
      expect(error.message).toMatch(served ? /serves storagemigration.k8s.io\/v1alpha1 only/ : /does not serve/)
      expect(error.hint).toMatch(/storagemigration.k8s.io\/v1\b/)
      expect(error.hint).toMatch(/--feature-gates=StorageVersionMigrator=true/)
      expect(error.hint).toMatch(/--runtime-config=storagemigration.k8s.io\/v1beta1=true/)
      // on 1.37 the API is off only when switched off: both switches named
      expect(error.hint).toMatch(
        /--feature-gates=StorageVersionMigrator=false or --runtime-config=storagemigration.k8s.io\/v1=false/,
      )
      expect(fake.creates).toEqual([])
    }
  })

  it('--dry-run counts and creates nothing', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 7, 7)
    const result = await run(fake, {resources: [SECRETS], dryRun: true}).promise
    expect(fake.creates).toEqual([])
    expect(result).toMatchObject({dryRun: true, totals: {listed: 7, wouldRewrite: 7, rewritten: 0}})
  })

  it('warns once when the controller has not started a migration for a long time, and keeps waiting', async () => {
    const fake = new FakeMigrator()
    fake.seed(SECRETS, 2, 2)
    fake.pendingPolls = 8
    const {promise, events} = run(fake, {resources: [SECRETS], pollIntervalMs: 1000, startWarningMs: 5000})
    const result = await promise
    const warnings = events.filter((e) => e.type === 'warning')
    expect(warnings).toEqual([
      {
        type: 'warning',
        message: expect.stringMatching(/^no migration has started after 5 s: is kube-controller-manager/),
      },
    ])
    expect(result.totals.rewritten).toBe(2)
  })

  it('reads the controller conditions and compares resourceVersions as integers', () => {
    const svm = (conditions: object[], resourceVersion?: string) => ({
      apiVersion: 'storagemigration.k8s.io/v1',
      kind: 'StorageVersionMigration',
      metadata: {name: 'x'},
      status: {conditions, resourceVersion},
    })
    expect(migrationState(svm([]))).toEqual({phase: 'pending'})
    expect(
      migrationState(
        svm(
          [{type: 'Running', status: 'True', message: 'The migration is running, 3/10 objects not yet migrated'}],
          '7',
        ),
      ),
    ).toEqual({phase: 'running', total: 10, remaining: 3, resourceVersion: '7'})
    expect(
      migrationState(
        svm([
          {type: 'Running', status: 'True', message: 'The migration is running'},
          {
            type: 'Failed',
            status: 'True',
            reason: 'StorageVersionMigrationFailed',
            message: 'resource does not exist in discovery',
          },
        ]),
      ),
    ).toMatchObject({
      phase: 'failed',
      reason: 'StorageVersionMigrationFailed',
      message: 'resource does not exist in discovery',
    })
    expect(migrationState(svm([{type: 'Succeeded', status: 'False'}]))).toEqual({phase: 'pending'})
    expect(newerThan('10', '9')).toBe(true)
    expect(newerThan('9', '10')).toBe(false)
    expect(newerThan('123456789012345678901', '123456789012345678900')).toBe(true)
    expect(newerThan('10', '10')).toBe(false)
    expect(newerThan('abc', '1')).toBe(false)
  })
})
