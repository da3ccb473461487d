import {describe, expect, it} from 'vitest'

import {bytesPerObject, parsePrometheusText} from '../../../src/controlplane/metrics.js'

/** As kube-apiserver 1.34+ writes them (HELP and TYPE lines, the deprecated object count next to the new one). */
const METRICS = `# HELP apiserver_resource_objects [ALPHA] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.
# TYPE apiserver_resource_objects gauge
apiserver_resource_objects{group="",resource="secrets"} 12
apiserver_resource_objects{group="",resource="configmaps"} 0
apiserver_resource_objects{group="apps",resource="deployments"} 4
apiserver_resource_objects{group="",resource="events"} -1
# HELP apiserver_resource_size_estimate_bytes [ALPHA] Estimated size of stored objects in database. Estimate is based on sum of last observed sizes of serialized objects. In case of a fetching error, the value will be -1.
# TYPE apiserver_resource_size_estimate_bytes gauge
apiserver_resource_size_estimate_bytes{group="",resource="secrets"} 30000
apiserver_resource_size_estimate_bytes{group="",resource="configmaps"} 0
apiserver_resource_size_estimate_bytes{group="apps",resource="deployments"} 10000
apiserver_resource_size_estimate_bytes{group="",resource="events"} 5000
apiserver_resource_size_estimate_bytes{group="",resource="pods"} -1
apiserver_resource_size_estimate_bytes{group="",resource="nodes"} 2000
# HELP apiserver_storage_objects [STABLE] [DEPRECATED, consider using apiserver_resource_objects instead] Number of stored objects at the time of last check split by kind.
# TYPE apiserver_storage_objects gauge
apiserver_storage_objects{resource="secrets"} 99
apiserver_storage_objects{resource="pods"} 7
`

describe('bytesPerObject: stored size over object count, per group/resource', () => {
  it('divides the size estimate by the object count, keyed group/resource ("" for core)', () => {
    const averages = bytesPerObject(parsePrometheusText(METRICS))
    expect(Object.fromEntries(averages)).toEqual({
      // the new count wins over the deprecated one (99)
      '/secrets': 2500,
      'apps/deployments': 2500,
    })
  })

  it('leaves out what it cannot know: no objects, a count or size of -1 (failed count), no size, no count', () => {
    const averages = bytesPerObject(parsePrometheusText(METRICS))
    expect(averages.has('/configmaps')).toBe(false) // 0 objects
    expect(averages.has('/events')).toBe(false) // count -1
    expect(averages.has('/pods')).toBe(false) // size -1
    expect(averages.has('/nodes')).toBe(false) // no count
    expect(bytesPerObject([])).toEqual(new Map())
  })

  it('0 bytes for stored objects is a size not yet observed, not 0 bytes each', () => {
    const samples = parsePrometheusText(
      'apiserver_resource_objects{group="",resource="secrets"} 5\napiserver_resource_size_estimate_bytes{group="",resource="secrets"} 0\n',
    )
    expect(bytesPerObject(samples).size).toBe(0)
  })

  it('before apiserver_resource_objects (1.33): the count of apiserver_storage_objects{resource="plural.group"}', () => {
    const samples = parsePrometheusText(
      [
        'apiserver_storage_objects{resource="secrets"} 4',
        'apiserver_storage_objects{resource="pandas.awesome.bears.example"} 2',
        'apiserver_resource_size_estimate_bytes{group="",resource="secrets"} 4096',
        'apiserver_resource_size_estimate_bytes{group="awesome.bears.example",resource="pandas"} 3000',
      ].join('\n'),
    )
    expect(Object.fromEntries(bytesPerObject(samples))).toEqual({
      '/secrets': 1024,
      'awesome.bears.example/pandas': 1500,
    })
  })
})

describe('parsePrometheusText with names: only those metrics, parsed as without', () => {
  const text = `${METRICS}other_total{name="apiserver_resource_objects",group="",resource="secrets"} 3
apiserver_resource_objects_total 8
apiserver_resource_objects 9 1700000000000
`
  const names = new Set(['apiserver_resource_objects'])

  it('returns exactly the samples the full parse has under those names, in order', () => {
    const all = parsePrometheusText(text)
    expect(parsePrometheusText(text, names)).toEqual(all.filter((s) => names.has(s.name)))
    expect(parsePrometheusText(text, names).map((s) => s.value)).toEqual([12, 0, 4, -1, 9])
  })

  it('a name that only appears in a label value or as a longer name is not matched', () => {
    const found = parsePrometheusText(text, names)
    expect(found.some((s) => s.labels.name === 'apiserver_resource_objects')).toBe(false)
    expect(found.some((s) => s.name === 'apiserver_resource_objects_total')).toBe(false)
  })
})

describe('parsePrometheusText with names: where lines start and end', () => {
  it('finds a sample on the first line, reads CRLF lines and skips the HELP/TYPE comments', () => {
    const text =
      'apiserver_resource_objects{group="",resource="secrets"} 2\r\n# HELP apiserver_resource_objects x\r\n# TYPE apiserver_resource_objects gauge\r\napiserver_resource_objects{group="apps",resource="deployments"} 3'
    const names = new Set(['apiserver_resource_objects'])
    expect(parsePrometheusText(text, names)).toEqual([
      {name: 'apiserver_resource_objects', labels: {group: '', resource: 'secrets'}, value: 2},
      {name: 'apiserver_resource_objects', labels: {group: 'apps', resource: 'deployments'}, value: 3},
    ])
    expect(parsePrometheusText(text, names)).toEqual(parsePrometheusText(text))
  })
})
