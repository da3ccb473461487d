import {createHash} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {encodeEncryptedObject} from '../../../src/encryption/storage/kms-v2-object.js'

import type {EtcdKeyValue, EtcdReader} from '../../../src/etcd/etcd-reader.js'
import {EtcdStaleIndex, isCurrentValue} from '../../../src/usecases/rewrite/stale-index.js'
import {PANDAS, SECRETS} from '../helpers/fake-cluster.js'

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
  it('a KMS v2 value is current only under the key ID the apiservers report, when that is known', () => {
    const value = (keyID: string) =>
      Buffer.concat([
        Buffer.from('k8s:enc:kms:v2:vault:'),
        encodeEncryptedObject({
          encryptedData: Buffer.alloc(60, 1),
          keyID,
          encryptedDEKSource: Buffer.alloc(40, 2),
          annotations: new Map(),
          encryptedDEKSourceType: 1,
        }),
      ])
    const current = {vault: `sha256:${createHash('sha256').update('kek-2').digest('hex')}`}
    expect(isCurrentValue(value('kek-2'), 'kms:vault', current)).toBe(true)
    expect(isCurrentValue(value('kek-1'), 'kms:vault', current)).toBe(false)
    expect(isCurrentValue(value('kek-1'), 'kms:vault')).toBe(true) // not known: by name only
    expect(isCurrentValue(value('kek-2'), 'kms:other', current)).toBe(false)
  })

  it('judges values by the write provider prefix (docs/kubernetes-behaviour.md §3.7)', () => {
    expect(isCurrentValue(Buffer.from('k8s:enc:aescbc:v1:key2:\x01\x02'), 'aescbc:key2')).toBe(true)
    expect(isCurrentValue(Buffer.from('k8s:enc:aescbc:v1:key1:\x01\x02'), 'aescbc:key2')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s:enc:aesgcm:v1:key2:\x01'), 'aescbc:key2')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s\x00\x0a\x0c'), 'aescbc:key2')).toBe(false) // plaintext protobuf
    expect(isCurrentValue(Buffer.from('k8s\x00\x0a\x0c'), 'identity')).toBe(true)
    expect(isCurrentValue(Buffer.from('k8s:enc:secretbox:v1:k:'), 'identity')).toBe(false)
    expect(isCurrentValue(Buffer.from('k8s:enc:kms:v2:vault:\x0a'), 'kms:vault')).toBe(true)
  })

  it('reads where the shared key table puts a resource, under --etcd-prefix (docs/kubernetes-behaviour.md §12)', async () => {
    const r = reader({'/k8s/ingress/a/web': 'k8s\x00plain', '/k8s/minions/n1': 'k8s:enc:aescbc:v1:key2:xx'})
    const index = new EtcdStaleIndex(r, () => 'aescbc:key2', 'k8s/')
    expect(
      await index.staleObjects(
        {...SECRETS, group: 'networking.k8s.io', resource: 'ingresses', kind: 'Ingress'},
        undefined,
      ),
    ).toEqual([{namespace: 'a', name: 'web'}])
    expect(
      await index.staleObjects({...SECRETS, resource: 'nodes', kind: 'Node', namespaced: false}, undefined),
    ).toEqual([])
    expect(r.prefixes).toEqual(['/k8s/ingress/', '/k8s/minions/'])
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
    expect(r.prefixes).toEqual([
      '/registry/secrets/',
      '/registry/secrets/b/',
      '/registry/awesome.bears.example/pandas/',
    ])
    expect(index.scanned).toBe(4 + 2 + 1)
  })
})
