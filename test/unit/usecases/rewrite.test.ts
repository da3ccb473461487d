import {describe, expect, it} from 'vitest'

import {KubeApiError} from '../../../src/kube/types.js'
import {
  rewrite,
  type RewriteEvent,
  type RewriteOptions,
  type StaleObjectIndex,
} from '../../../src/usecases/rewrite/rewrite.js'
import {CONFIGMAPS, FakeCluster, FakeClock, MemoryCheckpointStore, PANDAS, SECRETS} from '../helpers/fake-cluster.js'

const NS = ['alpha', 'beta', 'default', 'kube-system', 'team-a']

function cluster(perNamespace = 60, namespaces = NS): FakeCluster {
  const c = new FakeCluster()
  for (const ns of namespaces)
    for (let i = 0; i < perNamespace; i++) c.seed(SECRETS, ns, `s-${String(i).padStart(4, '0')}`, {v: `${ns}-${i}`})
  return c
}

function run(
  c: FakeCluster,
  options: Partial<RewriteOptions> = {},
  extra: {clock?: FakeClock; store?: MemoryCheckpointStore; staleIndex?: StaleObjectIndex} = {},
) {
  const events: RewriteEvent[] = []
  const clock = extra.clock ?? new FakeClock()
  const promise = rewrite(
    {
      resources: [SECRETS],
      concurrency: 6,
      pageSize: 25,
      qps: 0,
      checkpointIntervalMs: 0,
      onEvent: (e) => events.push(e),
      ...options,
    },
    {client: c, clock, random: () => 0.5, checkpoints: extra.store, staleIndex: extra.staleIndex},
  )
  return {promise, events, clock}
}

function expectAllCurrent(c: FakeCluster, expected?: Map<string, string>) {
  for (const v of c.all(SECRETS)) {
    expect(v.key, `${v.object.metadata.namespace}/${v.object.metadata.name}`).toBe('new')
    const id = `${v.object.metadata.namespace}/${v.object.metadata.name}`
    const want = expected?.get(id) ?? `${v.object.metadata.namespace}-${Number(v.object.metadata.name.slice(2))}`
    expect((v.object.data as {v: string}).v, id).toBe(want)
  }
}

describe('rewrite', () => {
  it('writes every stale object back once and counts rewritten vs already current', async () => {
    const c = cluster()
    // 50 objects were already written with the current key
    for (const v of c.all(SECRETS).slice(0, 50)) v.key = 'new'
    const {promise, events} = run(c, {concurrency: 8})
    const result = await promise
    expect(result.totals).toMatchObject({
      listed: 300,
      rewritten: 250,
      alreadyCurrent: 50,
      failed: 0,
      skipped: 0,
      conflictsRetried: 0,
    })
    expect(result.resources).toEqual([expect.objectContaining({resource: 'secrets', listed: 300, complete: true})])
    expect(result.failures).toEqual([])
    expectAllCurrent(c)
    expect([...c.writes.values()].every((n) => n === 1)).toBe(true)
    expect(c.writes.size).toBe(250)
    expect(events.find((e) => e.type === 'start')).toMatchObject({total: 300})
    expect(events.filter((e) => e.type === 'progress').at(-1)).toMatchObject({done: 300, total: 300})

    const again = await run(c).promise
    expect(again.totals).toMatchObject({listed: 300, rewritten: 0, alreadyCurrent: 300})
  })

  it('never has more requests in flight than --concurrency', async () => {
    const c = cluster(40)
    c.latencyMs = 1
    let inflight = 0
    let peak = 0
    c.fault = async () => {
      peak = Math.max(peak, ++inflight)
      await new Promise((r) => setTimeout(r, 1))
      inflight--
    }
    const result = await run(c, {concurrency: 4}).promise
    expect(result.totals.rewritten).toBe(200)
    expect(peak).toBeLessThanOrEqual(4 + 1) // the workers plus the one prefetched list page
  })

  it('covers namespaces one by one with -n, and cluster-scoped resources once', async () => {
    const c = cluster(10)
    c.seed(PANDAS, undefined, 'panda-1', {v: 'x'})
    c.seed(CONFIGMAPS, 'alpha', 'cm', {v: 'y'})
    const result = await run(c, {resources: [SECRETS, CONFIGMAPS, PANDAS], namespaces: ['alpha', 'team-a']}).promise
    expect(result.resources.map((r) => [r.resource, r.listed, r.rewritten])).toEqual([
      ['secrets', 20, 20],
      ['configmaps', 1, 1],
      ['pandas.awesome.bears.example', 1, 1],
    ])
    expect(c.all(SECRETS).filter((v) => v.key === 'old')).toHaveLength(30)
  })

  it('loses no update of a concurrent writer, even when the list snapshot is older than the store', async () => {
    const c = cluster(80)
    const latest = new Map<string, string>()
    let n = 0
    // After each of our writes, someone else updates an object further down the list.
    c.after = ({verb}) => {
      if (verb !== 'replace') return
      n++
      const ns = NS[n % NS.length]!
      const name = `s-${String((n * 7) % 80).padStart(4, '0')}`
      const value = `writer-${n}`
      c.externalWrite(SECRETS, ns, name, {v: value})
      latest.set(`${ns}/${name}`, value)
    }
    const result = await run(c, {concurrency: 8}).promise
    expect(result.totals.failed).toBe(0)
    expect(result.totals.conflictsRetried).toBeGreaterThan(0)
    expect(result.totals.listed).toBe(400)
    c.after = undefined
    expectAllCurrent(c, latest)
  })

  it('re-reads on a 409 storm, and gives up on an object after the bounded number of attempts', async () => {
    const c = cluster(20, ['default'])
    const storms = new Map([
      ['s-0003', 6],
      ['s-0010', Number.POSITIVE_INFINITY],
    ])
    let writerValue = 0
    c.fault = ({verb, name}) => {
      const left = storms.get(name ?? '')
      if (verb === 'replace' && left && left > 0) {
        storms.set(name!, left - 1)
        c.externalWrite(SECRETS, 'default', name!, {v: `storm-${++writerValue}`})
      }
    }
    const result = await run(c, {maxConflictRetries: 8}).promise
    // the stormed object ends up written by the other writer with the current key: a no-op for us
    expect(result.totals).toMatchObject({listed: 20, rewritten: 18, alreadyCurrent: 1, failed: 1})
    expect(result.totals.conflictsRetried).toBe(6 + 8)
    expect(result.failures).toEqual([
      expect.objectContaining({resource: 'secrets', namespace: 'default', name: 's-0010', reason: 'Conflict'}),
    ])
    const stormed = c.current(SECRETS, 'default', 's-0003')!
    expect(stormed.key).toBe('new')
    expect((stormed.object.data as {v: string}).v).toMatch(/^storm-/)
    // 1 PUT + 8 retries, never more
    expect(c.calls.replace).toBeLessThanOrEqual(20 + 6 + 8)
  })

  for (const hint of [true, false])
    it(`restarts a list that got 410 Gone mid-way ${hint ? 'with the continue hint' : 'by re-listing and skipping what was done'}`, async () => {
      const c = cluster(50)
      c.hintOn410 = hint
      let lists = 0
      c.fault = ({verb}) => {
        if (verb === 'list' && ++lists === 4) c.compact() // compaction between pages
      }
      const {promise, events} = run(c)
      const result = await promise
      const restarts = events.filter((e) => e.type === 'listRestarted')
      expect(restarts).toHaveLength(1)
      expect(restarts[0]).toMatchObject({usedContinueHint: hint})
      expect(result.totals).toMatchObject({listed: 250, rewritten: 250, failed: 0})
      expect(c.calls.replace).toBe(250)
      expect([...c.writes.values()].every((w) => w === 1)).toBe(true)
      expectAllCurrent(c)
    })

  it('honours Retry-After on 429 and backs off on 5xx and dropped connections', async () => {
    const c = cluster(10)
    let n = 0
    c.fault = ({verb}) => {
      n++
      if (verb === 'replace' && n === 5)
        throw new KubeApiError(429, 'TooManyRequests', 'Too many requests, please try again later.', 7)
      if (verb === 'replace' && n === 9)
        throw new KubeApiError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')
      if (verb === 'list' && n === 2)
        throw new KubeApiError(0, 'ConnectionFailed', 'connect ECONNREFUSED 127.0.0.1:6443')
      if (verb === 'replace' && n === 20) throw Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'})
    }
    const {promise, events, clock} = run(c)
    const result = await promise
    expect(result.totals).toMatchObject({listed: 50, rewritten: 50, failed: 0})
    expect(clock.sleeps).toContain(7000)
    const retries = events.filter((e) => e.type === 'retry')
    expect(retries.map((e) => (e as {status: number}).status).sort()).toEqual([0, 0, 429, 503])
  })

  it('reports a server that stays unavailable as failed objects, after a bounded back-off', async () => {
    const c = cluster(2, ['default'])
    c.fault = ({verb, name}) => {
      if (verb === 'replace' && name === 's-0001') throw new KubeApiError(503, 'ServiceUnavailable', 'etcd is down')
    }
    const result = await run(c, {maxTransientRetries: 3}).promise
    expect(result.failures).toEqual([expect.objectContaining({name: 's-0001', reason: 'Unavailable', status: 503})])
    expect(c.calls.replace).toBe(1 + 4)
  })

  it('lists objects it cannot write, with the reason: denial, RBAC, orphan, undecryptable; skips deleted ones', async () => {
    const c = cluster(4)
    c.namespaces.delete('beta') // namespace gone: its secrets are orphans in etcd
    c.fault = ({verb, namespace, name}) => {
      if (verb !== 'replace') return
      if (namespace === 'alpha' && name === 's-0001')
        throw new KubeApiError(400, 'BadRequest', 'admission webhook "deny.example.com" denied the request: frozen')
      if (namespace === 'kube-system')
        throw new KubeApiError(403, 'Forbidden', 'secrets "x" is forbidden: User "u" cannot update resource "secrets"')
      if (namespace === 'team-a' && name === 's-0002')
        throw new KubeApiError(
          500,
          'InternalError',
          'Internal error occurred: no matching key was found for the provided AES transformer',
        )
      if (namespace === 'default' && name === 's-0003') c.externalDelete(SECRETS, 'default', 's-0003')
    }
    const result = await run(c).promise
    const reasons = result.failures.map((f) => `${f.namespace}/${f.name}:${f.reason}`).sort()
    expect(reasons).toEqual([
      'alpha/s-0001:AdmissionDenied',
      'beta/s-0000:NamespaceGone',
      'beta/s-0001:NamespaceGone',
      'beta/s-0002:NamespaceGone',
      'beta/s-0003:NamespaceGone',
      'kube-system/s-0000:Forbidden',
      'kube-system/s-0001:Forbidden',
      'kube-system/s-0002:Forbidden',
      'kube-system/s-0003:Forbidden',
      'team-a/s-0002:Undecryptable',
    ])
    expect(result.totals).toMatchObject({listed: 20, failed: 10, skipped: 1, rewritten: 9})
    expect(result.failures.every((f) => f.message.length > 0)).toBe(true)
  })

  for (const [namespaces, storageReadErrors] of [
    [undefined, false],
    [['alpha'], false],
    [undefined, true],
    [['alpha'], true],
  ] as const) {
    it(`reports a value the list cannot decrypt and lists on after it (${namespaces ? '-n' : '-A'}, ${storageReadErrors ? '500 StorageReadError' : 'unable to transform key'})`, async () => {
      const c = cluster(12, ['alpha', 'beta'])
      // kube-apiserver fails the whole page that reaches it (docs/kubernetes-behaviour.md §4.3), naming its etcd key
      c.undecryptable.add('alpha/s-0005')
      c.storageReadErrors = storageReadErrors
      const result = await run(c, {namespaces: namespaces ? [...namespaces] : undefined, pageSize: 4}).promise
      expect(result.failures).toEqual([
        expect.objectContaining({
          namespace: 'alpha',
          name: 's-0005',
          reason: 'Undecryptable',
          message: expect.stringContaining('/registry/secrets/alpha/s-0005'),
        }),
      ])
      const listed = namespaces ? 12 : 24
      expect(result.totals).toMatchObject({listed, rewritten: listed - 1, failed: 1})
      expect(
        c
          .all(SECRETS)
          .filter((v) => v.key === 'old')
          .map((v) => v.object.metadata.name),
      ).toEqual(
        namespaces ? ['s-0005', ...Array.from({length: 12}, (_, i) => `s-${String(i).padStart(4, '0')}`)] : ['s-0005'],
      )
    })
  }

  it('refuses to start when a list is forbidden (403) before anything is written: no checkpoint (issue 13 item 8)', async () => {
    const c = cluster(3)
    const store = new MemoryCheckpointStore()
    c.fault = ({verb, namespace}) => {
      if (verb === 'list' && namespace === 'beta')
        throw new KubeApiError(403, 'Forbidden', 'secrets is forbidden: User "u" cannot list resource "secrets"')
    }
    await expect(run(c, {namespaces: ['alpha', 'beta']}, {store}).promise).rejects.toMatchObject({status: 403})
    expect(c.calls.replace).toBe(0)
    expect(store.saves).toBe(0)
  })

  it('records a list refused mid-run (403 after the run started) as a failure and keeps a checkpoint for --resume', async () => {
    const c = cluster(3)
    const store = new MemoryCheckpointStore()
    let betaLists = 0
    c.fault = ({verb, namespace}) => {
      // the first list of beta (the pre-flight check) passes; the role is revoked after that
      if (verb === 'list' && namespace === 'beta' && ++betaLists > 1)
        throw new KubeApiError(403, 'Forbidden', 'secrets is forbidden: User "u" cannot list resource "secrets"')
    }
    const result = await run(c, {namespaces: ['alpha', 'beta']}, {store}).promise
    expect(result.failures).toEqual([expect.objectContaining({namespace: 'beta', reason: 'Forbidden'})])
    expect(result.failures[0]!.name).toBeUndefined()
    expect(result.resources[0]).toMatchObject({listed: 3, rewritten: 3, complete: false})
    expect(result.checkpoint).toBe(store.location)

    c.fault = undefined
    const resumed = await run(c, {namespaces: ['alpha', 'beta'], resume: true}, {store}).promise
    expect(resumed.resumed).toBe(true)
    expect(resumed.failures).toEqual([])
    expect(resumed.totals).toMatchObject({listed: 6, rewritten: 6})
    expect(c.calls.replace).toBe(6)
    expect(store.saved).toBeUndefined()
  })

  it('dry run writes nothing and reports what would be rewritten', async () => {
    const c = cluster(10)
    const store = new MemoryCheckpointStore()
    const result = await run(c, {dryRun: true}, {store}).promise
    expect(result.dryRun).toBe(true)
    expect(result.totals).toMatchObject({listed: 50, wouldRewrite: 50, rewritten: 0})
    expect(c.calls.replace).toBe(0)
    expect(store.saves).toBe(0)
  })

  it('--only-stale gets and writes only what the scan reports, without listing everything', async () => {
    const c = cluster(40)
    const stale = c.all(SECRETS).filter((_, i) => i % 20 === 0)
    for (const v of c.all(SECRETS)) if (!stale.includes(v)) v.key = 'new'
    const staleIndex: StaleObjectIndex = {
      staleObjects: async (_r, ns) =>
        stale
          .filter((v) => !ns || v.object.metadata.namespace === ns)
          .map((v) => ({namespace: v.object.metadata.namespace, name: v.object.metadata.name}))
          .reverse(), // any order: the operation sorts
    }
    const result = await run(c, {onlyStale: true}, {staleIndex}).promise
    expect(result.totals).toMatchObject({listed: 10, rewritten: 10, failed: 0})
    expect(c.calls).toEqual({list: 0, get: 10, replace: 10})
    expectAllCurrent(c)

    // with a label selector the API list is filtered by the scan instead
    const c2 = cluster(10)
    for (const v of c2.all(SECRETS)) v.object.metadata.labels = {app: v.object.metadata.name < 's-0005' ? 'web' : 'db'}
    const first = c2.all(SECRETS).filter((v) => v.object.metadata.name === 's-0000')
    const idx2: StaleObjectIndex = {
      staleObjects: async () => first.map((v) => ({namespace: v.object.metadata.namespace, name: 's-0000'})),
    }
    const r2 = await run(c2, {onlyStale: true, labelSelector: 'app=web'}, {staleIndex: idx2}).promise
    expect(r2.totals).toMatchObject({listed: 25, rewritten: 5, alreadyCurrent: 20})
    expect(c2.calls.replace).toBe(5)
  })

  it('after a kill mid-run, --resume finishes with the same state and writes nothing twice', async () => {
    const uninterrupted = cluster(100)
    const reference = await run(uninterrupted, {concurrency: 8}).promise

    for (const graceful of [true, false]) {
      const c = cluster(100)
      const store = new MemoryCheckpointStore()
      const controller = new AbortController()
      let puts = 0
      c.after = () => {
        if (++puts === 173) {
          // SIGKILL: the checkpoint on disk is whatever was saved last; SIGINT: a final save happens
          if (!graceful) store.frozen = true
          controller.abort()
        }
      }
      const first = await run(c, {concurrency: 8, signal: controller.signal}, {store}).promise
      expect(first.interrupted).toBe(true)
      expect(first.totals.listed).toBeLessThan(500)
      expect(store.saved).toBeDefined()
      store.frozen = false
      c.after = undefined

      const second = await run(c, {concurrency: 8, resume: true}, {store}).promise
      expect(second.resumed).toBe(true)
      expect(second.interrupted).toBe(false)
      expectAllCurrent(c)
      // every object written exactly once in storage, and (almost) no request repeated
      expect(c.writes.size).toBe(500)
      expect([...c.writes.values()].every((w) => w === 1)).toBe(true)
      expect(c.calls.replace).toBeLessThanOrEqual(500 + (graceful ? 0 : 8))
      expect(second.totals.listed).toBe(500)
      if (graceful) expect(second.totals).toEqual(reference.totals)
      else expect(second.totals.rewritten + second.totals.alreadyCurrent).toBe(500)
      expect(store.saved).toBeUndefined()
    }
  })

  it('ignores a checkpoint of another scope and warns when --resume has nothing to resume', async () => {
    const c = cluster(5)
    const store = new MemoryCheckpointStore()
    const controller = new AbortController()
    c.after = () => controller.abort()
    await run(c, {namespaces: ['alpha'], signal: controller.signal}, {store}).promise
    expect(store.saved).toBeDefined()
    c.after = undefined
    const {promise, events} = run(c, {namespaces: ['beta'], resume: true}, {store})
    const result = await promise
    expect(result.resumed).toBe(false)
    expect(events.some((e) => e.type === 'warning' && /another scope/.test(e.message))).toBe(true)
    expect(result.totals.rewritten).toBe(5)
  })

  it('shares one rate limit across all requests', async () => {
    const c = cluster(20)
    const clock = new FakeClock()
    const result = await run(c, {qps: 50, burst: 5, concurrency: 4}, {clock}).promise
    const requests = c.calls.list + c.calls.get + c.calls.replace
    expect(result.totals.rewritten).toBe(100)
    // 5 free, then 50 per second
    expect(clock.t).toBeGreaterThanOrEqual(((requests - 5) / 50) * 1000 - 1)
    expect(clock.t).toBeLessThanOrEqual(((requests - 5) / 50) * 1000 + 100)
  })
})
