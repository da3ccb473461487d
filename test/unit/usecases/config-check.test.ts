/** `config check`: the readability decision per stored value, over a small fake etcd. */
import {randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import type {EncryptionConfiguration, ProviderSpec} from '../../../src/encryption/config/model.js'
import {ResourceTransformer} from '../../../src/encryption/transform/resource-transformer.js'
import type {EtcdKeyValue, EtcdReader} from '../../../src/etcd/etcd-reader.js'
import {checkConfigAgainstEtcd} from '../../../src/usecases/scan/config-check.js'
import {b64, vectors} from '../encryption/vectors-helper.js'

const OBJECT = b64(vectors.find((v) => v.id === 'identity-secret-protobuf')!.plaintext!)
const secret = (n = 32) => randomBytes(n).toString('base64')
const key1: ProviderSpec = {aescbc: {keys: [{name: 'key1', secret: secret()}]}}
const key2: ProviderSpec = {aescbc: {keys: [{name: 'key2', secret: secret()}]}}
const box: ProviderSpec = {secretbox: {keys: [{name: 'box', secret: secret()}]}}
const kms: ProviderSpec = {kms: {apiVersion: 'v2', name: 'vault', endpoint: 'unix:///k.sock'}}
const identity: ProviderSpec = {identity: {}}

const configOf = (...resources: Array<[string[], ProviderSpec[]]>): EncryptionConfiguration => ({
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: resources.map(([names, providers]) => ({resources: names, providers})),
})

const encrypt = (spec: ProviderSpec, key: string) =>
  ResourceTransformer.fromProviders([spec], undefined).write(OBJECT, key)
// A KMS v2 EncryptedObject that parses and validates (as in scan.test.ts).
const kmsValue = (name: string) =>
  Buffer.concat([
    Buffer.from(`k8s:enc:kms:v2:${name}:`),
    Buffer.from([0x0a, 0x01, 0x01, 0x12, 0x01, 0x6b, 0x1a, 0x01, 0x02]),
  ])

function fakeEtcd(entries: Array<[string, Buffer]>, seen: string[] = []): EtcdReader {
  const kvs: EtcdKeyValue[] = entries
    .map(([key, value], i) => ({key, value, modRevision: i + 1}))
    .sort((a, b) => a.key.localeCompare(b.key))
  return {
    get: async () => undefined,
    async *range(prefix, options) {
      seen.push(prefix)
      const matching = kvs.filter((e) => e.key.startsWith(prefix))
      const size = options?.pageSize ?? 500
      for (let i = 0; i < matching.length; i += size) yield matching.slice(i, i + size)
    },
    describe: () => ({transport: 'direct', endpoint: 'https://127.0.0.1:2379'}),
    close: async () => {},
  }
}

const check = (config: EncryptionConfiguration, entries: Array<[string, Buffer]>, seen?: string[]) =>
  checkConfigAgainstEtcd({file: 'enc.yaml', hash: 'sha256:00', config, reader: fakeEtcd(entries, seen), pageSize: 3})

const s = (name: string, spec?: ProviderSpec): [string, Buffer] => {
  const key = `/registry/secrets/default/${name}`
  return [key, spec ? encrypt(spec, key) : OBJECT]
}

describe('checkConfigAgainstEtcd', () => {
  it('reads every value under /registry/; all readable with the config that wrote them', async () => {
    const seen: string[] = []
    const r = await check(
      configOf([['secrets'], [key1, identity]]),
      [
        s('a', key1),
        s('b', key1),
        s('plain'),
        ['/registry/configmaps/default/c', OBJECT],
        ['/registry/ranges/serviceips', randomBytes(8)],
      ],
      seen,
    )
    expect(seen).toEqual(['/registry/'])
    expect(r).toMatchObject({
      readable: true,
      keys: 5,
      values: 4,
      unreadable: 0,
      examples: [],
      file: 'enc.yaml',
      hash: 'sha256:00',
    })
    expect(r.etcd).toEqual({transport: 'direct', endpoint: 'https://127.0.0.1:2379'})
    expect(r.resources.map((x) => [x.resource, x.values, x.unreadable, x.rule])).toEqual([
      ['configmaps', 1, 0, undefined],
      ['secrets', 3, 0, 'secrets'],
    ])
  })

  it('a removed key: its values are unreadable, counted per resource and provider:key, with examples', async () => {
    const entries = [...Array.from({length: 7}, (_, i) => s(`k1-${i}`, key1)), s('k2', key2)]
    const r = await check(configOf([['secrets'], [key2, identity]]), entries)
    expect(r).toMatchObject({readable: false, values: 8, unreadable: 7})
    const secrets = r.resources.find((x) => x.resource === 'secrets')!
    expect(secrets.unreadableAs).toEqual({'aescbc:key1': 7})
    expect(secrets.errors).toEqual({'no matching key was found for the provided AES transformer': 7})
    expect(secrets.examples).toHaveLength(5)
    expect(r.examples).toEqual(secrets.examples)
    expect(r.examples.every((k) => k.startsWith('/registry/secrets/default/k1-'))).toBe(true)
  })

  it('a key with the right name but another secret does not read the values', async () => {
    const replaced: ProviderSpec = {aescbc: {keys: [{name: 'key1', secret: secret()}]}}
    const boxReplaced: ProviderSpec = {secretbox: {keys: [{name: 'box', secret: secret()}]}}
    const r = await check(configOf([['secrets'], [replaced]], [['configmaps'], [boxReplaced]]), [
      s('a', key1),
      ['/registry/configmaps/default/c', encrypt(box, '/registry/configmaps/default/c')],
    ])
    expect(r.readable).toBe(false)
    expect(r.resources.find((x) => x.resource === 'secrets')!.unreadableAs).toEqual({'aescbc:key1': 1})
    expect(r.resources.find((x) => x.resource === 'configmaps')!.unreadableAs).toEqual({'secretbox:box': 1})
  })

  it('plaintext is readable only where the resource keeps identity, or is not covered', async () => {
    const values: Array<[string, Buffer]> = [
      s('plain'),
      ['/registry/configmaps/default/c', OBJECT],
      ['/registry/deployments/default/web', OBJECT],
    ]
    const withIdentity = await check(
      configOf([
        ['secrets', 'configmaps'],
        [key1, identity],
      ]),
      values,
    )
    expect(withIdentity.readable).toBe(true)
    const without = await check(configOf([['secrets'], [key1]], [['configmaps'], [key1, identity]]), values)
    expect(without).toMatchObject({readable: false, unreadable: 1, examples: ['/registry/secrets/default/plain']})
    const secrets = without.resources.find((x) => x.resource === 'secrets')!
    expect(secrets).toMatchObject({unreadableAs: {identity: 1}, errors: {'no matching prefix found': 1}})
    expect(without.resources.find((x) => x.resource === 'deployments.apps')).toMatchObject({unreadable: 0, values: 1})
  })

  it('an encrypted value of a resource the config no longer covers is unreadable', async () => {
    const r = await check(configOf([['configmaps'], [key1]]), [s('a', key1)])
    expect(r.resources[0]).toMatchObject({
      resource: 'secrets',
      unreadable: 1,
      unreadableAs: {'aescbc:key1': 1},
      errors: {'identity transformer tried to read encrypted data': 1},
    })
  })

  it('KMS values are readable when the config has that KMS provider for the resource (not decrypted), unreadable otherwise', async () => {
    const entries: Array<[string, Buffer]> = [['/registry/secrets/default/k', kmsValue('vault')]]
    const same = await check(configOf([['secrets'], [kms, identity]]), entries)
    expect(same).toMatchObject({readable: true, unreadable: 0, kmsNotDecrypted: 1})
    const other = await check(
      configOf([['secrets'], [{kms: {apiVersion: 'v2', name: 'other', endpoint: 'unix:///o.sock'}}, identity]]),
      entries,
    )
    expect(other).toMatchObject({readable: false, unreadable: 1, kmsNotDecrypted: 0})
    expect(other.resources[0].unreadableAs).toEqual({'kms:vault': 1})
    const elsewhere = await check(configOf([['configmaps'], [kms]], [['secrets'], [key1, identity]]), entries)
    expect(elsewhere).toMatchObject({readable: false, unreadable: 1})
  })

  it('the result never carries key material', async () => {
    const config = configOf([['secrets'], [key2, identity]])
    const r = await check(config, [s('a', key1), s('b', key2)])
    const text = JSON.stringify(r)
    for (const spec of [key1, key2]) expect(text).not.toContain(spec.aescbc!.keys[0].secret)
  })
})
