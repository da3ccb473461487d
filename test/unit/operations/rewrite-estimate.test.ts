import {describe, expect, it} from 'vitest'

import {
  rewrite,
  type RewriteEvent,
  type RewriteOptions,
  type StaleObjectIndex,
} from '../../../src/operations/rewrite.js'
import {
  buildEstimate,
  estimateSeconds,
  formatDuration,
  formatEstimate,
} from '../../../src/operations/rewrite-estimate.js'
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
        {resource: 'secrets', objects: 2000},
        {resource: 'configmaps', objects: null},
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

function cluster(perNamespace: number, namespaces = ['alpha', 'beta']): FakeCluster {
  const c = new FakeCluster()
  for (const ns of namespaces)
    for (let i = 0; i < perNamespace; i++) c.seed(SECRETS, ns, `s-${String(i).padStart(4, '0')}`, {v: `${ns}-${i}`})
  return c
}

function run(
  c: FakeCluster,
  options: Partial<RewriteOptions> = {},
  extra: {store?: MemoryCheckpointStore; staleIndex?: StaleObjectIndex; clock?: FakeClock} = {},
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
      {resource: 'secrets', objects: null},
    ])
    // a selector that selects one object needs no count
    const one = cluster(1, ['alpha'])
    expect((await run(one, {labelSelector: 'x!=y'}).promise).estimate?.resources).toEqual([
      {resource: 'secrets', objects: 1},
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
