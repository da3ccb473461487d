import {describe, expect, it} from 'vitest'

import type {EtcdKeyValue, EtcdReader} from '../../src/etcd/etcd-reader.js'
import {EtcdStaleIndex, etcdResourcePrefix, isCurrentValue} from '../../src/operations/etcd-stale-index.js'
import {PANDAS, SECRETS} from './helpers/fake-cluster.js'

function reader(entries: Record<string, string>): EtcdReader & {prefixes: string[]} {
  const prefixes: string[] = []
  return {
    prefixes,
    async get() {
      return undefined
    },
    async *range(prefix: string) {
      prefixes.push(prefix)
      const kvs: EtcdKeyValue[] = Object.keys(entries)
        .filter((k) => k.startsWith(prefix))
        .sort()
        .map((key, i) => ({key, value: Buffer.from(entries[key]!, 'latin1'), modRevision: i + 1}))
      for (let i = 0; i < kvs.length; i += 2) yield kvs.slice(i, i + 2)
    },
    describe: () => ({transport: 'direct', endpoint: 'fake'}),
    async close() {},
  }
}

describe('etcd stale index', () => {
  it('judges values by the write provider prefix (spec §3.7)', () => {
    expect(isCurrentValue(Buffer.from('k8s:enc:aescbc:v1:key2:\x01\x02'), 'aescbc:key2')).toBe(true)
    expect(isCurrentValue(Buffer.from('k8s:enc:aescbc:v1:key1:\x01\x02'), 'aescbc:key2')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s:enc:aesgcm:v1:key2:\x01'), 'aescbc:key2')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s\x00\x0a\x0c'), 'aescbc:key2')).toBe(false) // plaintext protobuf
    expect(isCurrentValue(Buffer.from('k8s\x00\x0a\x0c'), 'identity')).toBe(true)
    expect(isCurrentValue(Buffer.from('k8s:enc:secretbox:v1:k:'), 'identity')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s:enc:kms:v2:vault:\x0a'), 'kms:vault')).toBe(true)
  })

  it('maps resources to their etcd locations (spec §12.2)', () => {
    expect(etcdResourcePrefix(SECRETS)).toBe('secrets')
    expect(etcdResourcePrefix({group: '', resource: 'nodes'})).toBe('minions')
    expect(etcdResourcePrefix({group: 'apps', resource: 'deployments'})).toBe('deployments')
    expect(etcdResourcePrefix({group: 'networking.k8s.io', resource: 'ingresses'})).toBe('ingress')
    expect(etcdResourcePrefix({group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions'})).toBe('apiextensions.k8s.io/customresourcedefinitions')
    expect(etcdResourcePrefix(PANDAS)).toBe('awesome.bears.example/pandas')
  })

  it('returns the stale objects of a resource, per namespace or everywhere', async () => {
    const r = reader({
      '/registry/secrets/a/one': 'k8s:enc:aescbc:v1:key1:xx',
      '/registry/secrets/a/two': 'k8s:enc:aescbc:v1:key2:xx',
      '/registry/secrets/b/three': 'k8s\x00plain',
      '/registry/secrets/b/four': 'k8s:enc:aescbc:v1:key2:xx',
      '/registry/secretsx/a/other': 'k8s\x00plain',
      '/registry/awesome.bears.example/pandas/p1': 'k8s:enc:aescbc:v1:key1:xx',
    })
    const index = new EtcdStaleIndex(r, () => 'aescbc:key2')
    expect(await index.staleObjects(SECRETS, undefined)).toEqual([
      {namespace: 'a', name: 'one'},
      {namespace: 'b', name: 'three'},
    ])
    expect(await index.staleObjects(SECRETS, 'b')).toEqual([{namespace: 'b', name: 'three'}])
    expect(await index.staleObjects(PANDAS, 'ignored')).toEqual([{name: 'p1'}])
    expect(r.prefixes).toEqual(['/registry/secrets/', '/registry/secrets/b/', '/registry/awesome.bears.example/pandas/'])
    expect(index.scanned).toBe(4 + 2 + 1)
  })
})
