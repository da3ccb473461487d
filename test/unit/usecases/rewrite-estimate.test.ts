import {describe, expect, it} from 'vitest'

import {
  rewrite,
  type RewriteEvent,
  type RewriteOptions,
  type StaleObjectIndex,
} from '../../../src/usecases/rewrite/rewrite.js'
import {KubeApiError, type RawResponse} from '../../../src/kube/types.js'
import {
  buildEstimate,
  estimateSeconds,
  formatBytes,
  formatDuration,
  formatEstimate,
  storedBytesPerObject,
} from '../../../src/usecases/rewrite/estimate.js'
import {CONFIGMAPS, FakeCluster, FakeClock, MemoryCheckpointStore, SECRETS} from '../helpers/fake-cluster.js'

describe('estimate arithmetic', () => {
  it('objects / min(qps, concurrency / round trip), less the burst that goes at once', () => {
    // qps is the slower limit: 2,004 / 80
    expect(estimateSeconds(2004, {qps: 80, concurrency: 32, roundTripMs: 10})).toEqual({
      seconds: 25.1,
      limitedBy: 'qps',
    })
    // the token bucket's burst of 32 goes at once: (2,004 - 32) / 80
    expect(estimateSeconds(2004, {qps: 80, burst: 32, concurrency: 32, roundTripMs: 10})).toEqual({
      seconds: 24.7,
      limitedBy: 'qps',
    })
    // all within the burst: only the round trips count (20 x 8 ms / 4 in flight)
    expect(estimateSeconds(20, {qps: 10, burst: 32, concurrency: 4, roundTripMs: 8})).toEqual({
      seconds: 0.1,
      limitedBy: 'concurrency',
    })
    // 4 in flight at 100 ms each is 40/s, slower than --qps 300
    expect(estimateSeconds(400, {qps: 300, concurrency: 4, roundTripMs: 100})).toEqual({
      seconds: 10,
      limitedBy: 'concurrency',
    })
    // --qps 0 is no limit: concurrency alone
    expect(estimateSeconds(1000, {qps: 0, concurrency: 10, roundTripMs: 50})).toEqual({
      seconds: 5,
      limitedBy: 'concurrency',
    })
    // no round trip measured: qps alone, or nothing to go on
    expect(estimateSeconds(600, {qps: 300, concurrency: 32})).toEqual({seconds: 2, limitedBy: 'qps'})
    expect(estimateSeconds(600, {qps: 0, concurrency: 32})).toEqual({seconds: null})
    expect(estimateSeconds(10, {qps: 300, burst: 75, concurrency: 32})).toEqual({seconds: 0, limitedBy: 'qps'})
    expect(estimateSeconds(0, {qps: 0, concurrency: 32})).toEqual({seconds: 0})
  })

  it('sums the known counts; unknown stays null', () => {
    const e = buildEstimate(
      [
        {resource: 'secrets', objects: 2000},
        {resource: 'configmaps', objects: null},
      ],
      {qps: 100, concurrency: 32, roundTripMs: 5},
    )
    expect(e).toEqual({
      resources: [
        {resource: 'secrets', objects: 2000, bytes: null},
        {resource: 'configmaps', objects: null, bytes: null},
      ],
      seconds: 20,
      limitedBy: 'qps',
      qps: 100,
      concurrency: 32,
    })
  })

  it('formats as one line', () => {
    const three = [
      {resource: 'secrets', objects: 2000},
      {resource: 'configmaps', objects: 3},
      {resource: 'pandas.awesome.bears.example', objects: 1},
    ]
    expect(formatEstimate(buildEstimate(three, {qps: 80, concurrency: 32, roundTripMs: 4}))).toBe(
      'Estimate: 2,004 objects in 3 resources, about 25 s at --qps 80',
    )
    expect(formatEstimate(buildEstimate(three, {qps: 80, concurrency: 32, roundTripMs: 4}), false)).toBe(
      'Estimate: 2,004 objects in 3 resources, about 25 s at 80 requests/s',
    )
    expect(formatEstimate(buildEstimate(three, {qps: 0, concurrency: 2, roundTripMs: 100}))).toBe(
      'Estimate: 2,004 objects in 3 resources, about 2 min at --concurrency 2',
    )
    expect(formatEstimate(buildEstimate([{resource: 'secrets', objects: 1}], {qps: 300, concurrency: 32}))).toBe(
      'Estimate: 1 object in 1 resource, under 1 s at --qps 300',
    )
    expect(
      formatEstimate(buildEstimate([{resource: 'secrets', objects: 1}], {qps: 300, burst: 75, concurrency: 32})),
    ).toBe('Estimate: 1 object in 1 resource, under 1 s at --qps 300')
    expect(formatEstimate(buildEstimate([{resource: 'secrets', objects: 0}], {qps: 300, concurrency: 32}))).toBe(
      'Estimate: 0 objects in 1 resource',
    )
    expect(
      formatEstimate(
        buildEstimate(
          [
            {resource: 'secrets', objects: 10},
            {resource: 'configmaps', objects: null},
          ],
          {qps: 10, concurrency: 32},
        ),
      ),
    ).toBe(
      'Estimate: 10 objects in 1 of 2 resources, unknown for configmaps (the server gave no count), about 1 s at --qps 10',
    )
    expect(formatEstimate(buildEstimate([{resource: 'secrets', objects: null}], {qps: 10, concurrency: 32}))).toBe(
      'Estimate: unknown number of objects in 1 resource (the server gave no count)',
    )
    expect(formatEstimate(buildEstimate([{resource: 'secrets', objects: 10}], {qps: 0, concurrency: 32}))).toBe(
      'Estimate: 10 objects in 1 resource; time unknown (no rate limit and no round trip measured)',
    )
    expect([0.4, 25, 89, 600, 7200, 5 * 3600 + 130].map(formatDuration)).toEqual([
      'under 1 s',
      '25 s',
      '89 s',
      '10 min',
      '2 h 0 min',
      '5 h 2 min',
    ])
  })
})

describe('stored bytes in the estimate', () => {
  it('formatBytes: decimal units, one decimal below 10, whole numbers above, never "1000 kB"', () => {
    expect(
      [0, 1, 999, 1000, 1049, 1050, 9949, 9950, 12_345, 999_499, 999_600, 3_100_000, 7.2e9, 4e12].map(formatBytes),
    ).toEqual([
      '0 B',
      '1 B',
      '999 B',
      '1 kB',
      '1 kB',
      '1.1 kB',
      '9.9 kB',
      '10 kB',
      '12 kB',
      '999 kB',
      '1 MB',
      '3.1 MB',
      '7.2 GB',
      '4 TB',
    ])
  })

  it('bytes per resource: the average per object times the objects counted; null without an average or a count', () => {
    const e = buildEstimate(
      [
        {resource: 'secrets', objects: 2000, bytesPerObject: 1536.4},
        {resource: 'configmaps', objects: 3, bytesPerObject: null},
        {resource: 'deployments.apps', objects: null, bytesPerObject: 900},
        {resource: 'leases.coordination.k8s.io', objects: 7},
      ],
      {qps: 100, concurrency: 32},
    )
    expect(e.resources).toEqual([
      {resource: 'secrets', objects: 2000, bytes: 3_072_800},
      {resource: 'configmaps', objects: 3, bytes: null},
      {resource: 'deployments.apps', objects: null, bytes: null},
      {resource: 'leases.coordination.k8s.io', objects: 7, bytes: null},
    ])
  })

  it('the line says how much is stored, and for which resources the size is unknown', () => {
    const pace = {qps: 80, concurrency: 32, roundTripMs: 4}
    expect(
      formatEstimate(
        buildEstimate(
          [
            {resource: 'secrets', objects: 2000, bytesPerObject: 1500},
            {resource: 'configmaps', objects: 4, bytesPerObject: 250},
          ],
          pace,
        ),
      ),
    ).toBe('Estimate: 2,004 objects (about 3 MB stored) in 2 resources, about 25 s at --qps 80')
    expect(
      formatEstimate(
        buildEstimate(
          [
            {resource: 'secrets', objects: 2000, bytesPerObject: 1500},
            {resource: 'pandas.awesome.bears.example', objects: 4, bytesPerObject: null},
            // no objects: nothing to size, so not "unknown"
            {resource: 'configmaps', objects: 0, bytesPerObject: null},
          ],
          pace,
        ),
        false,
      ),
    ).toBe(
      'Estimate: 2,004 objects (about 3 MB stored; size unknown for pandas.awesome.bears.example) in 3 resources, about 25 s at 80 requests/s',
    )
    expect(
      formatEstimate(
        buildEstimate(
          [
            {resource: 'secrets', objects: 10, bytesPerObject: 2048},
            {resource: 'configmaps', objects: null, bytesPerObject: 100},
          ],
          {qps: 10, concurrency: 32},
        ),
      ),
    ).toBe(
      'Estimate: 10 objects (about 20 kB stored) in 1 of 2 resources, unknown for configmaps (the server gave no count), about 1 s at --qps 10',
    )
    // no size known at all (e.g. /metrics forbidden): the line is as without sizes
    expect(
      formatEstimate(
        buildEstimate([{resource: 'secrets', objects: 10, bytesPerObject: null}], {qps: 10, concurrency: 32}),
      ),
    ).toBe('Estimate: 10 objects in 1 resource, about 1 s at --qps 10')
  })

  const METRICS = [
    'apiserver_resource_objects{group="",resource="secrets"} 60',
    'apiserver_resource_size_estimate_bytes{group="",resource="secrets"} 61440',
  ].join('\n')
  const probe = (answer: () => Promise<RawResponse>) => {
    const paths: string[] = []
    return {
      paths,
      get: async (path: string) => {
        paths.push(path)
        return answer()
      },
    }
  }

  it('storedBytesPerObject reads /metrics once; forbidden, failing or bare /metrics is "unknown", not an error', async () => {
    const ok = probe(async () => ({status: 200, body: METRICS}))
    expect(Object.fromEntries(await storedBytesPerObject(ok))).toEqual({'/secrets': 1024})
    expect(ok.paths).toEqual(['/metrics'])
    const forbidden = probe(async () => ({
      status: 403,
      body: '{"kind":"Status","message":"forbidden: User \\"op\\" cannot get path \\"/metrics\\""}',
    }))
    expect((await storedBytesPerObject(forbidden)).size).toBe(0)
    const down = probe(async () => {
      throw new KubeApiError(0, 'ConnectionError', 'connect ECONNREFUSED')
    })
    expect((await storedBytesPerObject(down)).size).toBe(0)
    const bare = probe(async () => ({status: 200, body: 'apiserver_storage_objects{resource="secrets"} 60\n'}))
    expect((await storedBytesPerObject(bare)).size).toBe(0)
  })

  it('rewrite(): bytes from the size source for what it counted; null when the source fails or has no size', async () => {
    const c = cluster(30)
    c.seed(CONFIGMAPS, 'alpha', 'cm', {v: '1'})
    let asked = 0
    const sizes = async () => {
      asked++
      return new Map([['/secrets', 1024]])
    }
    const sized = await run(
      c,
      {resources: [SECRETS, CONFIGMAPS], namespaces: ['alpha', 'beta'], dryRun: true},
      {
        bytesPerObject: sizes,
      },
    ).promise
    expect(asked).toBe(1)
    expect(sized.estimate!.resources).toEqual([
      {resource: 'secrets', objects: 60, bytes: 61_440},
      {resource: 'configmaps', objects: 1, bytes: null},
    ])
    const failing = await run(c, {dryRun: true}, {bytesPerObject: () => Promise.reject(new Error('boom'))}).promise
    expect(failing.estimate!.resources).toEqual([{resource: 'secrets', objects: 60, bytes: null}])
    expect(failing.totals.listed).toBe(60)
  })

  it('rewrite(): no size lookup when nothing was counted (an --only-stale etcd scan, or empty resources)', async () => {
    let asked = 0
    const sizes = async () => {
      asked++
      return new Map([['/secrets', 1024]])
    }
    const staleIndex: StaleObjectIndex = {staleObjects: async () => []}
    const stale = await run(cluster(5), {onlyStale: true}, {staleIndex, bytesPerObject: sizes}).promise
    expect(stale.estimate!.resources).toEqual([{resource: 'secrets', objects: null, bytes: null}])
    const empty = await run(new FakeCluster(), {dryRun: true}, {bytesPerObject: sizes}).promise
    expect(empty.estimate!.resources).toEqual([{resource: 'secrets', objects: 0, bytes: null}])
    expect(asked).toBe(0)
  })
})

function cluster(perNamespace: number, namespaces = ['alpha', 'beta']): FakeCluster {
  const c = new FakeCluster()
  for (const ns of namespaces)
    for (let i = 0; i < perNamespace; i++) c.seed(SECRETS, ns, `s-${String(i).padStart(4, '0')}`, {v: `${ns}-${i}`})
  return c
}

function run(
  c: FakeCluster,
  options: Partial<RewriteOptions> = {},
  extra: {
    store?: MemoryCheckpointStore
    staleIndex?: StaleObjectIndex
    clock?: FakeClock
    bytesPerObject?: () => Promise<ReadonlyMap<string, number>>
  } = {},
) {
  const events: Array<RewriteEvent & {replacesSoFar: number}> = []
  const promise = rewrite(
    {
      resources: [SECRETS],
      concurrency: 4,
      pageSize: 10,
      qps: 50,
      checkpointIntervalMs: 0,
      onEvent: (e) => events.push({...e, replacesSoFar: c.calls.replace}),
      ...options,
    },
    {
      client: c,
      clock: extra.clock ?? new FakeClock(),
      random: () => 0.5,
      checkpoints: extra.store,
      staleIndex: extra.staleIndex,
      bytesPerObject: extra.bytesPerObject,
    },
  )
  return {promise, events}
}

describe('rewrite() estimate', () => {
  it('counts each listing with one limit=1 list, before the first write, and returns it in the result', async () => {
    const c = cluster(30)
    c.seed(CONFIGMAPS, 'alpha', 'cm', {v: '1'})
    const {promise, events} = run(c, {resources: [SECRETS, CONFIGMAPS], namespaces: ['alpha', 'beta']})
    const result = await promise
    const estimates = events.filter((e) => e.type === 'estimate')
    expect(estimates).toHaveLength(1)
    expect(estimates[0]!.replacesSoFar).toBe(0)
    // (61 - a burst of 13) / 50 per second
    expect(result.estimate).toMatchObject({
      resources: [
        {resource: 'secrets', objects: 60},
        {resource: 'configmaps', objects: 1},
      ],
      seconds: 1,
      qps: 50,
      concurrency: 4,
      limitedBy: 'qps',
    })
    expect(result.totals.listed).toBe(61)
  })

  it('no count with a label selector that leaves more than one page; a resumed run counts only what is left', async () => {
    const c = cluster(30)
    for (const v of c.all(SECRETS)) v.object.metadata.labels = {app: 'web'}
    expect((await run(c, {labelSelector: 'app=web'}).promise).estimate?.resources).toEqual([
      {resource: 'secrets', objects: null, bytes: null},
    ])
    // a selector that selects one object needs no count
    const one = cluster(1, ['alpha'])
    expect((await run(one, {labelSelector: 'x!=y'}).promise).estimate?.resources).toEqual([
      {resource: 'secrets', objects: 1, bytes: null},
    ])

    const c2 = cluster(30)
    const store = new MemoryCheckpointStore()
    const controller = new AbortController()
    c2.after = () => {
      if (c2.calls.replace === 12) controller.abort()
    }
    const first = await run(c2, {signal: controller.signal}, {store}).promise
    expect(first.interrupted).toBe(true)
    c2.after = undefined
    const resumed = await run(c2, {resume: true}, {store}).promise
    expect(resumed.resumed).toBe(true)
    expect(resumed.estimate!.resources[0]!.objects).toBe(60 - first.totals.listed)
  })

  it('--only-stale without a selector lists nothing: the estimate says the etcd scan counts', async () => {
    const c = cluster(5)
    const staleIndex: StaleObjectIndex = {staleObjects: async () => []}
    const result = await run(c, {onlyStale: true}, {staleIndex}).promise
    expect(c.calls.list).toBe(0)
    expect(result.estimate).toMatchObject({resources: [{resource: 'secrets', objects: null}], countedBy: 'etcd-scan'})
    expect(formatEstimate(result.estimate!)).toBe(
      'Estimate: 1 resource; the etcd scan finds what is stale, resource by resource (no count before it)',
    )
  })
})
